//! The system CSPRNG behind the domain's `RandomSource`.

use vsc_core::RandomSource;

/// Operating-system randomness (via aws-lc).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemRng;

impl RandomSource for SystemRng {
    fn fill(&mut self, buf: &mut [u8]) {
        fill(buf);
    }
}

/// Fill `buf` from the system CSPRNG. aws-lc's generator does not fail on supported platforms; if
/// it ever reported an error we abort rather than continue with predictable bytes.
pub fn fill(buf: &mut [u8]) {
    if aws_lc_rs::rand::fill(buf).is_err() {
        std::process::abort();
    }
}

/// `N` random bytes.
pub fn bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    fill(&mut b);
    b
}
