//! The one SQLite connection that writes. SQLite allows one writer at a time, so this process's
//! writers take turns on a dedicated connection instead of checking pool connections out and back
//! in (each check-in pings the connection's worker thread: a round trip per write).

use std::sync::Arc;

use sqlx::{AnyConnection, Executor};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::{Conn, StoreError};

/// The writer connection and whether a transaction is open on it.
#[derive(Debug)]
pub(crate) struct WriterSlot {
    conn: AnyConnection,
    /// A transaction was begun and neither committed nor rolled back yet.
    in_tx: bool,
    closed: bool,
}

/// The writer connection behind its turn lock.
#[derive(Clone, Debug)]
pub(crate) struct SqliteWriter(Arc<Mutex<WriterSlot>>);

impl SqliteWriter {
    /// Take over `conn` as the writer.
    pub fn new(conn: AnyConnection) -> SqliteWriter {
        SqliteWriter(Arc::new(Mutex::new(WriterSlot { conn, in_tx: false, closed: false })))
    }

    /// Wait for the writer's turn; a transaction a dropped [`WriterTurn`] left open is rolled back
    /// first.
    pub async fn turn(&self) -> Result<WriterTurn, StoreError> {
        let mut slot = self.0.clone().lock_owned().await;
        if slot.closed {
            return Err(StoreError::Database(sqlx::Error::PoolClosed));
        }
        if slot.in_tx {
            // Fails only when SQLite already ended the transaction itself (after some errors):
            // either way none is open afterwards.
            if let Err(e) = slot.conn.execute("ROLLBACK").await {
                tracing::debug!(error = %e, "rolling back a dropped write transaction");
            }
            slot.in_tx = false;
        }
        Ok(WriterTurn { slot })
    }

    /// Refuse further writes (the connection closes when the last handle is dropped).
    pub async fn close(&self) {
        self.0.lock().await.closed = true;
    }
}

/// The writer's turn: the connection, for one autocommit statement or one transaction.
#[derive(Debug)]
pub struct WriterTurn {
    slot: OwnedMutexGuard<WriterSlot>,
}

impl WriterTurn {
    /// `BEGIN IMMEDIATE`: the write lock at once, so the transaction never fails on lock upgrade.
    pub(crate) async fn begin(&mut self) -> Result<(), StoreError> {
        if let Err(e) = self.slot.conn.execute("BEGIN IMMEDIATE").await {
            // A transaction the bookkeeping missed (a failed commit): end it and begin again, once.
            if !e.to_string().contains("within a transaction") {
                return Err(e.into());
            }
            self.slot.conn.execute("ROLLBACK").await?;
            self.slot.conn.execute("BEGIN IMMEDIATE").await?;
        }
        self.slot.in_tx = true;
        Ok(())
    }

    /// Commit the open transaction.
    pub(crate) async fn commit(&mut self) -> Result<(), sqlx::Error> {
        self.slot.conn.execute("COMMIT").await?;
        self.slot.in_tx = false;
        Ok(())
    }
}

impl std::ops::Deref for WriterTurn {
    type Target = Conn;

    fn deref(&self) -> &Conn {
        &self.slot.conn
    }
}

impl std::ops::DerefMut for WriterTurn {
    fn deref_mut(&mut self) -> &mut Conn {
        &mut self.slot.conn
    }
}

impl Drop for WriterTurn {
    /// A transaction still open (an error or early return before `commit`) is rolled back by a
    /// task that takes the next turn; should another writer get the turn first, [`SqliteWriter::turn`]
    /// rolls it back before handing the connection over.
    fn drop(&mut self) {
        if !self.slot.in_tx {
            return;
        }
        let writer = OwnedMutexGuard::mutex(&self.slot).clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let mut slot = writer.lock().await;
                if slot.in_tx {
                    if let Err(e) = slot.conn.execute("ROLLBACK").await {
                        tracing::debug!(error = %e, "rolling back a dropped write transaction");
                    }
                    slot.in_tx = false;
                }
            });
        }
    }
}
