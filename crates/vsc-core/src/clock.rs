//! Time and randomness come in from the edge so rules can be tested with controlled values.

use time::OffsetDateTime;

/// Source of the current time.
pub trait Clock: Send + Sync {
    /// The current time (UTC).
    fn now(&self) -> OffsetDateTime;
}

/// Source of random bytes (a CSPRNG in production).
pub trait RandomSource {
    /// Fill `buf` with random bytes.
    fn fill(&mut self, buf: &mut [u8]);

    /// A uniformly distributed number below `bound` (bound > 0), without modulo bias.
    fn below(&mut self, bound: u64) -> u64 {
        let bound = bound.max(1);
        let zone = u64::MAX - (u64::MAX % bound);
        loop {
            let mut b = [0u8; 8];
            self.fill(&mut b);
            let v = u64::from_le_bytes(b);
            if v < zone {
                return v % bound;
            }
        }
    }

    /// `n` random decimal digits.
    fn digits(&mut self, n: usize) -> String {
        (0..n).map(|_| char::from(b'0' + self.below(10) as u8)).collect()
    }
}
