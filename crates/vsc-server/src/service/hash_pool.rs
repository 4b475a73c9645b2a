//! The Argon2id workers: one long-lived thread per core takes verifications from a queue, so a
//! finished hash is followed by the next one at once (no hand-off through the async runtime
//! between two hashes) and each thread reuses its hashing memory. This is what keeps the cores busy
//! with the passcode hash — nearly all the cost of a login.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// A fixed set of hashing threads fed from one queue.
#[derive(Clone)]
pub(crate) struct HashPool {
    queue: mpsc::Sender<Job>,
    /// Jobs run since start: how much hashing requests caused (tests compare doors by it).
    runs: Arc<AtomicU64>,
}

impl HashPool {
    /// Start `threads` workers (named `vsc-argon2`); they end when the last handle is dropped.
    pub fn start(threads: usize) -> Result<HashPool, std::io::Error> {
        let (queue, jobs) = mpsc::channel::<Job>();
        let jobs = Arc::new(Mutex::new(jobs));
        for _ in 0..threads.max(1) {
            let jobs = jobs.clone();
            std::thread::Builder::new().name("vsc-argon2".into()).spawn(move || {
                loop {
                    let job = match jobs.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                }
            })?;
        }
        Ok(HashPool { queue, runs: Arc::new(AtomicU64::new(0)) })
    }

    /// Run `f` on a hashing thread and wait for its result.
    pub async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        let runs = self.runs.clone();
        self.queue
            .send(Box::new(move || {
                runs.fetch_add(1, Ordering::Relaxed);
                let _ = tx.send(f());
            }))
            .ok()?;
        rx.await.ok()
    }

    /// Jobs run since start.
    pub fn runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }
}
