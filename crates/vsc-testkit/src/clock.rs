//! A clock tests move: the real time plus an offset the test advances, so expiry, idle timeouts
//! and windows are tested by moving time instead of rewriting timestamps in the database.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use time::OffsetDateTime;
use vsc_core::Clock;
use vsc_server::clock::SystemClock;

/// The clock of a [`crate::TestServer`] started with [`crate::TestServer::start_with_clock`].
#[derive(Debug, Default)]
pub struct ManualClock {
    offset_seconds: AtomicI64,
}

impl ManualClock {
    /// Move the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let seconds = i64::try_from(by.as_secs()).expect("a test advances by less than i64::MAX seconds");
        self.offset_seconds.fetch_add(seconds, Ordering::SeqCst);
    }

    /// The clock's time as Unix seconds (what the server's `now` is).
    pub fn unix(&self) -> i64 {
        self.now().unix_timestamp()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        SystemClock.now() + time::Duration::seconds(self.offset_seconds.load(Ordering::SeqCst))
    }
}
