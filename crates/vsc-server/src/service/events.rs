//! Wake-ups for long-polls: a device waiting for challenges, a client waiting for its login's
//! decision. In-process through a broadcast channel; across nodes through PostgreSQL
//! `LISTEN/NOTIFY`, which a background task relays into the same channel.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::time::Instant;

use super::Vsc;
use crate::ServiceError;

/// Topic for "a new challenge for this holder".
pub(crate) fn user_topic(user_id: &str) -> String {
    format!("user:{user_id}")
}

/// Topic for "this login was decided".
pub(crate) fn login_topic(login_id: &str) -> String {
    format!("login:{login_id}")
}

/// Longest long-poll, in seconds.
pub const MAX_WAIT_SECONDS: u64 = 60;

/// The in-process side of wake-ups.
#[derive(Clone)]
pub(crate) struct Events {
    tx: broadcast::Sender<String>,
    closing: Arc<AtomicBool>,
}

/// The topic that ends every wait (the server is shutting down).
const CLOSING: &str = "\u{0}closing";

impl Events {
    /// A hub with room for bursts of wake-ups.
    pub(crate) fn new() -> Events {
        Events { tx: broadcast::channel(4096).0, closing: Arc::new(AtomicBool::new(false)) }
    }

    /// End every wait now and make later waits answer at once (graceful shutdown).
    pub(crate) fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
        let _ = self.tx.send(CLOSING.into());
    }

    /// Wake local waiters on `topic` (empty topic: everyone re-checks).
    pub(crate) fn wake(&self, topic: String) {
        let _ = self.tx.send(topic);
    }
}

impl Vsc {
    /// End long-polls so a graceful shutdown does not wait for them.
    pub fn end_waits(&self) {
        self.events.close();
    }

    /// Announce `topic` after a commit: local waiters at once, other nodes through NOTIFY.
    pub(crate) async fn publish(&self, topic: String) {
        if self.store.backend() == vsc_store::Backend::Postgres {
            match self.store.conn().await {
                Ok(mut conn) => {
                    if let Err(e) = vsc_store::events::notify(&mut conn, &topic).await {
                        tracing::warn!(error = %e, "could not notify other nodes");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not notify other nodes"),
            }
        }
        self.events.wake(topic);
    }

    /// Run `check` until it returns something or `wait` runs out, re-running it whenever `topic`
    /// (or an unspecific wake-up) is announced.
    pub(crate) async fn wait_for<T, F, Fut>(&self, topic: &str, wait: Duration, check: F) -> Result<T, ServiceError>
    where
        F: FnMut(bool) -> Fut,
        Fut: Future<Output = Result<Option<T>, ServiceError>>,
    {
        self.wait_subscribed(self.subscribe(), topic, wait, check).await
    }

    /// Listen for wake-ups from now on: a caller that subscribes before its first read and
    /// passes the subscription to [`Vsc::wait_subscribed`] misses nothing after that read.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<String> {
        self.events.tx.subscribe()
    }

    /// [`Vsc::wait_for`] on a subscription taken earlier.
    pub(crate) async fn wait_subscribed<T, F, Fut>(
        &self,
        mut rx: broadcast::Receiver<String>,
        topic: &str,
        wait: Duration,
        mut check: F,
    ) -> Result<T, ServiceError>
    where
        F: FnMut(bool) -> Fut,
        Fut: Future<Output = Result<Option<T>, ServiceError>>,
    {
        let mut deadline = Instant::now() + wait.min(Duration::from_secs(MAX_WAIT_SECONDS));
        loop {
            if self.events.closing.load(Ordering::SeqCst) {
                deadline = Instant::now();
            }
            let last = Instant::now() >= deadline;
            if let Some(v) = check(last).await? {
                return Ok(v);
            }
            // `check(true)` must answer; keep the loop total anyway.
            if last {
                return Err(ServiceError::Startup("long-poll ended without an answer".into()));
            }
            loop {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Err(_) => break,
                    Ok(Ok(t)) if t == topic || t.is_empty() || t == CLOSING => break,
                    Ok(Ok(_)) => continue,
                    Ok(Err(broadcast::error::RecvError::Lagged(_))) => break,
                    Ok(Err(broadcast::error::RecvError::Closed)) => {
                        tokio::time::sleep_until(deadline).await;
                        break;
                    }
                }
            }
        }
    }
}

/// Relay PostgreSQL notifications into the in-process hub until the process ends.
pub async fn relay_notifications(vsc: Vsc) {
    if vsc.store.backend() != vsc_store::Backend::Postgres {
        return;
    }
    let url = vsc.config.database_url();
    loop {
        match vsc_store::events::Listener::connect(&url).await {
            Ok(mut listener) => {
                vsc.events.wake(String::new());
                loop {
                    match listener.recv().await {
                        Ok(topic) => vsc.events.wake(topic),
                        Err(e) => {
                            tracing::warn!(error = %e, "notification listener failed; reconnecting");
                            break;
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not listen for notifications; retrying"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
