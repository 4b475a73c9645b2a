//! Cross-node wake-ups: PostgreSQL `LISTEN/NOTIFY` on one channel. A topic names what changed
//! (e.g. `user:<id>` for a new challenge, `login:<id>` for a decision); waiters re-read the
//! database when woken, so a lost or duplicated wake-up costs a read, never correctness.

use sqlx::postgres::PgListener;

use crate::{Backend, Conn, StoreError};

/// The PostgreSQL channel vsc nodes listen on.
pub const CHANNEL: &str = "vsc_events";

/// Tell every node about `topic` (PostgreSQL only; inside a transaction it is sent at commit).
pub async fn notify(conn: &mut Conn, topic: &str) -> Result<(), StoreError> {
    if Backend::of(conn) == Backend::Postgres {
        sqlx::query("SELECT pg_notify($1, $2)").bind(CHANNEL).bind(topic).execute(conn).await?;
    }
    Ok(())
}

/// A PostgreSQL listener on [`CHANNEL`]; reconnects by itself after a dropped connection.
pub struct Listener(PgListener);

impl Listener {
    /// Connect to `url` (a `postgres://` URL) and listen.
    pub async fn connect(url: &str) -> Result<Listener, StoreError> {
        let mut l = PgListener::connect(url).await?;
        l.listen(CHANNEL).await?;
        Ok(Listener(l))
    }

    /// The next topic. After a reconnect it returns an empty topic ("something may have been
    /// missed"), so waiters re-check.
    pub async fn recv(&mut self) -> Result<String, StoreError> {
        match self.0.try_recv().await? {
            Some(n) => Ok(n.payload().to_string()),
            None => Ok(String::new()),
        }
    }
}
