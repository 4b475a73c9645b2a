//! Group commit for signatures: signatures made at the same moment are authorised and audited
//! together, in one transaction with a fixed number of statements, instead of one transaction
//! each. Each caller waits for the commit that covers its own signature before releasing it.

use std::sync::{Arc, OnceLock};

use tokio::sync::{mpsc, oneshot};
use vsc_core::Clock;
use vsc_store::signing::{self, BatchItem};
use vsc_store::{Store, StoreError};

use super::Vsc;
use crate::ServiceError;

/// Signatures authorised in one transaction at most.
const MAX_BATCH: usize = 128;

struct Pending {
    item: BatchItem,
    reply: oneshot::Sender<Result<bool, String>>,
}

/// The node's queue of signatures waiting for their transaction (started on first use).
#[derive(Clone, Default)]
pub(crate) struct SignBatcher {
    queue: Arc<OnceLock<mpsc::UnboundedSender<Pending>>>,
}

/// What the batch worker needs (not the whole service: the worker must not keep it alive).
struct Worker {
    store: Store,
    clock: Arc<dyn Clock>,
    touch_every: i64,
}

impl Worker {
    async fn run(self, mut rx: mpsc::UnboundedReceiver<Pending>) {
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(p) => batch.push(p),
                    Err(_) => break,
                }
            }
            let items: Vec<BatchItem> = batch.iter().map(|p| p.item.clone()).collect();
            match self.commit(&items).await {
                Ok(ok) => {
                    for (p, ok) in batch.into_iter().zip(ok) {
                        let _ = p.reply.send(Ok(ok));
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, signatures = items.len(), "signature batch failed; nothing released");
                    for p in batch {
                        let _ = p.reply.send(Err(e.to_string()));
                    }
                }
            }
        }
    }

    async fn commit(&self, items: &[BatchItem]) -> Result<Vec<bool>, StoreError> {
        let now = self.clock.now().unix_timestamp();
        let mut tx = self.store.begin().await?;
        let ok = signing::audit_batch(&mut tx, items, now, now - self.touch_every).await?;
        tx.commit().await?;
        Ok(ok)
    }
}

impl Vsc {
    /// Authorise and audit one signature in the next batch; `true` once committed, `false` when
    /// the session or card can no longer sign.
    pub(super) async fn authorise_in_batch(&self, item: BatchItem, touch_every: i64) -> Result<bool, ServiceError> {
        let queue = self.batcher.queue.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            let worker = Worker { store: self.store.clone(), clock: self.clock.clone(), touch_every };
            tokio::spawn(worker.run(rx));
            tx
        });
        let (reply, answer) = oneshot::channel();
        queue
            .send(Pending { item, reply })
            .map_err(|_| ServiceError::Startup("the signature queue has stopped".into()))?;
        answer
            .await
            .map_err(|_| ServiceError::Startup("the signature queue has stopped".into()))?
            .map_err(|e| ServiceError::Startup(format!("the signature could not be recorded: {e}")))
    }
}
