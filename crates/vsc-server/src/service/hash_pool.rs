//! The Argon2id workers: one long-lived thread per core takes hashing jobs from a queue, so a
//! finished hash is followed by the next one at once (no hand-off through the async runtime
//! between two hashes) and each thread reuses its hashing memory. This is what keeps the cores busy
//! with the passcode hash — nearly all the cost of a login. Each thread keeps one Argon2id working
//! memory ([`HashMemory`]) for every job it runs: no 19 MiB allocation per hash.
//!
//! The queue is bounded: a job is admitted only while fewer than `queue_limit` wait, and refused
//! at once otherwise, before anything is allocated for it. Memory for hashing is thus bounded by
//! threads × 19 MiB, and waiting by the limit, however many requests arrive.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;
use vsc_crypto::secret::HashMemory;

type Job = Box<dyn FnOnce(&mut HashMemory) + Send>;

/// A fixed set of hashing threads fed from one bounded queue.
#[derive(Clone)]
pub(crate) struct HashPool {
    queue: mpsc::Sender<Job>,
    waiting: Arc<AtomicUsize>,
    queue_limit: usize,
    /// Jobs run since start: how much hashing requests caused (tests compare doors by it).
    runs: Arc<AtomicU64>,
}

/// Why a job did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HashRefusal {
    /// The queue is full: try again shortly.
    Busy,
    /// The workers have stopped (the service is shutting down).
    Stopped,
}

/// A place in the queue, held from admission until a worker takes the job (or the place is
/// given up unused).
pub(crate) struct HashSlot {
    queue: mpsc::Sender<Job>,
    place: QueuePlace,
    runs: Arc<AtomicU64>,
}

/// One counted waiting job; dropping it frees the place.
struct QueuePlace(Arc<AtomicUsize>);

impl Drop for QueuePlace {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl HashPool {
    /// Start `threads` workers (named `vsc-argon2`) with room for `queue_limit` waiting jobs; they
    /// end when the last handle is dropped.
    pub fn start(threads: usize, queue_limit: usize) -> Result<HashPool, std::io::Error> {
        let (queue, jobs) = mpsc::channel::<Job>();
        let jobs = Arc::new(Mutex::new(jobs));
        for _ in 0..threads.max(1) {
            let jobs = jobs.clone();
            std::thread::Builder::new().name("vsc-argon2".into()).spawn(move || {
                let mut memory = HashMemory::new();
                loop {
                    let job = match jobs.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(&mut memory),
                        Err(_) => return,
                    }
                }
            })?;
        }
        Ok(HashPool {
            queue,
            waiting: Arc::new(AtomicUsize::new(0)),
            queue_limit: queue_limit.max(1),
            runs: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Take a place in the queue, or be refused at once when it is full.
    pub fn admit(&self) -> Result<HashSlot, HashRefusal> {
        let before = self.waiting.fetch_add(1, Ordering::AcqRel);
        let place = QueuePlace(self.waiting.clone());
        if before >= self.queue_limit {
            return Err(HashRefusal::Busy);
        }
        Ok(HashSlot { queue: self.queue.clone(), place, runs: self.runs.clone() })
    }

    /// Jobs run since start.
    pub fn runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }

    /// Run `f` on a hashing thread and wait for its result (admitted now, or refused).
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut HashMemory) -> T + Send + 'static,
    ) -> Result<T, HashRefusal> {
        self.admit()?.run(f).await
    }

    /// Jobs admitted and not yet taken by a worker.
    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }
}

impl HashSlot {
    /// Run `f` on a hashing thread in this place and wait for its result. A job whose caller
    /// has gone (the client hung up) is skipped when its turn comes.
    pub async fn run<T: Send + 'static>(
        self,
        f: impl FnOnce(&mut HashMemory) -> T + Send + 'static,
    ) -> Result<T, HashRefusal> {
        let (tx, rx) = oneshot::channel();
        let (place, runs) = (self.place, self.runs);
        self.queue
            .send(Box::new(move |memory: &mut HashMemory| {
                drop(place);
                if !tx.is_closed() {
                    runs.fetch_add(1, Ordering::Relaxed);
                    let _ = tx.send(f(memory));
                }
            }))
            .map_err(|_| HashRefusal::Stopped)?;
        rx.await.map_err(|_| HashRefusal::Stopped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_refuses_at_once_and_frees_its_places() {
        let pool = HashPool::start(1, 2).unwrap();
        // Hold the only worker until told.
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let busy = pool.admit().unwrap();
        let worker = tokio::spawn(busy.run(move |_| hold.recv().is_ok()));
        while pool.waiting() > 0 {
            tokio::task::yield_now().await;
        }
        let a = pool.admit().unwrap();
        let b = pool.admit().unwrap();
        assert_eq!(pool.admit().err(), Some(HashRefusal::Busy));
        assert_eq!(pool.waiting(), 2, "a refusal keeps no place");
        drop(b);
        let queued = tokio::spawn(a.run(|_| 7));
        let c = pool.admit().unwrap();
        assert_eq!(pool.admit().err(), Some(HashRefusal::Busy));
        release.send(()).unwrap();
        assert!(worker.await.unwrap().unwrap());
        assert_eq!(queued.await.unwrap(), Ok(7));
        assert_eq!(c.run(|_| 8).await, Ok(8));
        assert_eq!(pool.waiting(), 0);
    }
}
