//! Per-source regulation of failed credential attempts: wrong passcodes, codes, answers, PINs,
//! staff passwords and bad tickets are counted per client address; past the limit within
//! [`WINDOW_SECONDS`] that address is blocked from the credential routes for
//! [`FIRST_BLOCK_SECONDS`], doubling at each repeat up to [`MAX_BLOCK_SECONDS`]. Successes are
//! never counted, so a whole site behind one NAT address keeps working while one attacker among
//! them is slowed.
//!
//! The table is node-local and in memory (a restart forgets it; each node of a cluster counts
//! its own traffic): it bounds the cost one source can impose on this node, while the per-holder
//! ledgers in the database bound what any number of sources can learn about one holder. Memory
//! is bounded: at [`MAX_SOURCES`] addresses the least recently seen are dropped.
//!
//! Before an address is blocked it is already a *suspect* once it has a tenth of the limit
//! (5 of the default 50) failures in the window: suspects' credential requests in flight, all addresses together, are
//! limited to half the hash queue (more are refused with 503 at once), so that the other half
//! stays for everyone else — the holder who types the right passcode during an attack waits
//! behind at most half a queue, while the suspects' failures go on being counted until they are
//! blocked.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use vsc_core::{Actor, AuditRecord};
use vsc_store::StoreError;

use super::Vsc;
use crate::ServiceError;

/// The window failures are counted in.
pub const WINDOW_SECONDS: i64 = 5 * 60;
/// The first block of an address.
pub const FIRST_BLOCK_SECONDS: i64 = 5 * 60;
/// The longest block (repeats double up to this).
pub const MAX_BLOCK_SECONDS: i64 = 60 * 60;
/// A block that starts within this time after the previous one ended is a repeat.
const REPEAT_MEMORY_SECONDS: i64 = 24 * 60 * 60;
/// Addresses remembered at most.
pub const MAX_SOURCES: usize = 65_536;

/// What is known about one address.
#[derive(Debug, Clone, Copy, Default)]
struct Source {
    /// Start of the current counting window.
    window_start: i64,
    /// Failures in it.
    failures: u32,
    /// End of the current (or last) block; 0 if never blocked.
    blocked_until: i64,
    /// Consecutive blocks (for doubling).
    blocks: u32,
    /// Last failure or block, for eviction.
    last_seen: i64,
}

/// A block that a failure has just started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Block {
    /// Seconds it lasts.
    pub seconds: i64,
    /// Its number among consecutive blocks of the address (1 for the first).
    pub repeat: u32,
}

/// The per-address failure counts of this node.
pub(crate) struct FailureRegulator {
    limit: u32,
    /// Failures in the window that make an address a suspect (a tenth of the limit).
    suspect_at: u32,
    capacity: usize,
    sources: Mutex<HashMap<IpAddr, Source>>,
    /// Places for suspects' requests in flight (half the hash queue).
    suspect_places: Arc<Semaphore>,
    blocks: AtomicU64,
    refused: AtomicU64,
}

impl FailureRegulator {
    /// A regulator blocking an address at `limit` failures within the window, letting suspects
    /// have at most half of a hash queue of `hash_queue`.
    pub fn new(limit: u32, hash_queue: usize) -> FailureRegulator {
        FailureRegulator::with_capacity(limit, hash_queue, MAX_SOURCES)
    }

    fn with_capacity(limit: u32, hash_queue: usize, capacity: usize) -> FailureRegulator {
        FailureRegulator {
            limit: limit.max(1),
            suspect_at: (limit / 10).max(1),
            capacity: capacity.max(1),
            sources: Mutex::new(HashMap::new()),
            suspect_places: Arc::new(Semaphore::new((hash_queue / 2).max(1))),
            blocks: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    /// Seconds `ip` stays blocked at `now`, if it is (and counts the refusal).
    pub fn blocked(&self, ip: IpAddr, now: i64) -> Option<i64> {
        let sources = self.sources.lock().ok()?;
        let left = sources.get(&ip).map(|s| s.blocked_until - now).filter(|left| *left > 0)?;
        self.refused.fetch_add(1, Ordering::Relaxed);
        Some(left)
    }

    /// Whether `ip` has failed often enough in the current window to be refused first under load.
    pub fn suspect(&self, ip: IpAddr, now: i64) -> bool {
        let Ok(sources) = self.sources.lock() else { return false };
        sources.get(&ip).is_some_and(|s| {
            s.blocked_until > now || (now - s.window_start < WINDOW_SECONDS && s.failures >= self.suspect_at)
        })
    }

    /// Count one failure of `ip` at `now`; returns the block it starts, if it reaches the limit.
    pub fn fail(&self, ip: IpAddr, now: i64) -> Option<Block> {
        let mut sources = self.sources.lock().ok()?;
        if !sources.contains_key(&ip) && sources.len() >= self.capacity {
            evict(&mut sources, self.capacity, now);
        }
        let s = sources.entry(ip).or_default();
        s.last_seen = now;
        if s.blocked_until > now {
            // Requests admitted before the block began: already answered for.
            return None;
        }
        if now - s.window_start >= WINDOW_SECONDS {
            s.window_start = now;
            s.failures = 0;
        }
        s.failures += 1;
        if s.failures < self.limit {
            return None;
        }
        let repeat = if s.blocks > 0 && now - s.blocked_until < REPEAT_MEMORY_SECONDS { s.blocks + 1 } else { 1 };
        let seconds = FIRST_BLOCK_SECONDS
            .saturating_mul(1i64.checked_shl(repeat.saturating_sub(1)).unwrap_or(i64::MAX))
            .clamp(FIRST_BLOCK_SECONDS, MAX_BLOCK_SECONDS);
        s.blocks = repeat;
        s.blocked_until = now + seconds;
        s.failures = 0;
        s.window_start = now;
        self.blocks.fetch_add(1, Ordering::Relaxed);
        Some(Block { seconds, repeat })
    }

    /// Addresses remembered now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.sources.lock().map(|s| s.len()).unwrap_or(0)
    }
}

/// Make room: forget addresses with nothing left to remember, then the least recently seen
/// eighth, addresses not blocked now first (so that eviction runs once per many new addresses,
/// not at each, and a flood of new addresses does not lift blocks).
fn evict(sources: &mut HashMap<IpAddr, Source>, capacity: usize, now: i64) {
    sources.retain(|_, s| {
        s.blocked_until > now
            || now - s.window_start < WINDOW_SECONDS
            || (s.blocks > 0 && now - s.blocked_until < REPEAT_MEMORY_SECONDS)
    });
    if sources.len() < capacity {
        return;
    }
    let rank = |s: &Source| (s.blocked_until > now, s.last_seen);
    let mut ranks: Vec<(bool, i64)> = sources.values().map(rank).collect();
    ranks.sort_unstable();
    let cut = ranks.get(capacity / 8).copied().unwrap_or((true, i64::MAX));
    sources.retain(|_, s| rank(s) > cut);
}

/// Counters of the regulator since this node started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureRegulation {
    /// Blocks started.
    pub blocks: u64,
    /// Requests refused while their address was blocked.
    pub refused: u64,
}

impl Vsc {
    /// Seconds the credential routes stay closed to `ip`, if they are (the refusal is counted).
    pub(crate) fn credential_block(&self, ip: IpAddr) -> Option<i64> {
        self.failures.blocked(ip, self.now().unix_timestamp())
    }

    /// Admission of a credential request from `ip`: `Ok(None)` for an address in good standing,
    /// `Ok(Some(place))` for a suspect (hold the place while the request runs), and
    /// [`ServiceError::Busy`] when every place for suspects is taken (see the module comment).
    pub(crate) fn admit_source(&self, ip: IpAddr) -> Result<Option<OwnedSemaphorePermit>, ServiceError> {
        if !self.failures.suspect(ip, self.now().unix_timestamp()) {
            return Ok(None);
        }
        match self.failures.suspect_places.clone().try_acquire_owned() {
            Ok(place) => Ok(Some(place)),
            Err(_) => Err(ServiceError::Busy(1)),
        }
    }

    /// Count a failed credential attempt from `ip`; a block it starts is audited.
    pub(crate) async fn count_credential_failure(&self, ip: IpAddr) -> Result<(), ServiceError> {
        let Some(block) = self.failures.fail(ip, self.now().unix_timestamp()) else { return Ok(()) };
        tracing::warn!(ip = %ip, seconds = block.seconds, repeat = block.repeat, "client address blocked after failures");
        let mut tx = self.store.begin().await?;
        self.audit(
            &mut tx,
            AuditRecord {
                actor: Actor::System,
                action: "client.blocked",
                org_id: None,
                target: Some(format!("ip:{ip}")),
                detail: serde_json::json!({
                    "ip": ip.to_string(),
                    "seconds": block.seconds,
                    "repeat": block.repeat,
                    "failures": self.failures.limit,
                    "window_seconds": WINDOW_SECONDS,
                })
                .to_string(),
            },
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }

    /// How often this node has blocked addresses and refused their requests.
    pub fn failure_regulation(&self) -> FailureRegulation {
        FailureRegulation {
            blocks: self.failures.blocks.load(Ordering::Relaxed),
            refused: self.failures.refused.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_limit_blocks_for_five_minutes_and_repeats_double_up_to_an_hour() {
        let r = FailureRegulator::new(3, 64);
        let a = ip("203.0.113.1");
        assert_eq!(r.fail(a, 100), None);
        assert_eq!(r.fail(a, 101), None);
        assert_eq!(r.blocked(a, 101), None);
        assert_eq!(r.fail(a, 102), Some(Block { seconds: 300, repeat: 1 }));
        assert_eq!(r.blocked(a, 102), Some(300));
        assert_eq!(r.blocked(a, 401), Some(1));
        assert_eq!(r.blocked(a, 402), None);
        // Failures while blocked (requests already under way) do not count.
        let mut at = 402;
        for (seconds, repeat) in [(600, 2), (1200, 3), (2400, 4), (3600, 5), (3600, 6)] {
            assert_eq!(r.fail(a, at), None);
            assert_eq!(r.fail(a, at), None);
            assert_eq!(r.fail(a, at), Some(Block { seconds, repeat }));
            assert_eq!(r.fail(a, at + 1), None, "blocked: not counted");
            at += seconds;
        }
        assert_eq!(r.failure_counts(), (6, 2));
        assert!(r.suspect(a, at - 1), "blocked addresses are suspects");
        // Another address is not affected.
        assert_eq!(r.blocked(ip("203.0.113.2"), at - 1), None);
    }

    #[test]
    fn an_address_failing_often_is_a_suspect_until_the_window_ends() {
        let r = FailureRegulator::new(50, 64);
        let a = ip("192.0.2.1");
        for _ in 1..5 {
            assert_eq!(r.fail(a, 10), None);
        }
        assert!(!r.suspect(a, 10), "a few typos are not suspicious");
        assert_eq!(r.fail(a, 10), None);
        assert!(r.suspect(a, 10));
        assert!(!r.suspect(a, 10 + WINDOW_SECONDS));
        assert!(!r.suspect(ip("192.0.2.2"), 10));
        assert_eq!(FailureRegulator::new(10_000, 64).suspect_at, 1000, "a tenth of the limit");
        assert_eq!(FailureRegulator::new(3, 64).suspect_at, 1);
    }

    #[test]
    fn failures_outside_the_window_and_blocks_long_ago_are_forgotten() {
        let r = FailureRegulator::new(2, 64);
        let a = ip("2001:db8::1");
        assert_eq!(r.fail(a, 0), None);
        assert_eq!(r.fail(a, WINDOW_SECONDS), None, "a new window");
        assert_eq!(r.fail(a, WINDOW_SECONDS + 1).map(|b| b.seconds), Some(300));
        let later = WINDOW_SECONDS + 1 + 300 + REPEAT_MEMORY_SECONDS;
        assert_eq!(r.fail(a, later), None);
        assert_eq!(r.fail(a, later).map(|b| (b.seconds, b.repeat)), Some((300, 1)), "not a repeat after a day");
    }

    #[test]
    fn the_table_is_bounded_and_keeps_blocked_addresses() {
        let r = FailureRegulator::with_capacity(2, 64, 64);
        let blocked = ip("198.51.100.1");
        assert!(r.fail(blocked, 0).is_none());
        assert!(r.fail(blocked, 0).is_some());
        for i in 0..1000u32 {
            let other = IpAddr::from((0x0a00_0000u32 + i).to_be_bytes());
            let _ = r.fail(other, 1 + i64::from(i) / 100);
            assert!(r.len() <= 64, "{}", r.len());
        }
        assert!(r.blocked(blocked, 10).is_some(), "a blocked address outlives a flood of new ones");
    }

    impl FailureRegulator {
        fn failure_counts(&self) -> (u64, u64) {
            (self.blocks.load(Ordering::Relaxed), self.refused.load(Ordering::Relaxed))
        }
    }
}
