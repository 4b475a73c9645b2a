//! Time-based one-time passwords (RFC 6238: HMAC-SHA-1, 6 digits, 30-second steps), the codes an
//! authenticator shows when push cannot reach it. The secret is 160 random bits, shown to the
//! authenticator once (base32) and stored sealed.

use aws_lc_rs::hmac;
use zeroize::Zeroizing;

/// Length of a step in seconds.
pub const STEP_SECONDS: i64 = 30;
/// Digits in a code.
pub const DIGITS: u32 = 6;

/// A TOTP secret.
pub struct TotpSecret(Zeroizing<Vec<u8>>);

impl TotpSecret {
    /// A fresh 160-bit secret.
    pub fn generate() -> Self {
        TotpSecret(Zeroizing::new(crate::random::bytes::<20>().to_vec()))
    }

    /// From raw bytes (e.g. unsealed from storage).
    pub fn from_bytes(bytes: &[u8]) -> Self {
        TotpSecret(Zeroizing::new(bytes.to_vec()))
    }

    /// Raw bytes (only for sealing).
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// RFC 4648 base32 without padding, as authenticator apps take it.
    pub fn base32(&self) -> String {
        base32(&self.0)
    }

    /// The step number of a Unix time.
    pub fn step(unix_seconds: i64) -> i64 {
        unix_seconds.div_euclid(STEP_SECONDS)
    }

    /// The code for a step.
    pub fn code_for_step(&self, step: i64) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &self.0);
        let tag = hmac::sign(&key, &step.to_be_bytes());
        let mac = tag.as_ref();
        let offset = usize::from(mac.last().copied().unwrap_or(0) & 0x0f);
        // Dynamic truncation (RFC 4226 §5.3): 31 bits from the offset the last nibble names.
        let word = mac
            .get(offset..offset + 4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map_or(0, |b| u32::from_be_bytes(b) & 0x7fff_ffff);
        format!("{:0width$}", word % 10u32.pow(DIGITS), width = DIGITS as usize)
    }

    /// The code at a Unix time.
    pub fn code_at(&self, unix_seconds: i64) -> String {
        self.code_for_step(Self::step(unix_seconds))
    }

    /// The step whose code equals `code`, looking `skew` steps either side of `now` (constant-time
    /// comparison of each candidate). The caller refuses a step it has accepted before.
    pub fn verify(&self, code: &str, now: i64, skew: i64) -> Option<i64> {
        let presented = crate::token::TokenHash::of(code.trim());
        let current = Self::step(now);
        // Every candidate is computed and compared, whichever matches.
        let mut found = None;
        for step in (current - skew)..=(current + skew) {
            let matches = crate::token::TokenHash::of(&self.code_for_step(step)).matches(&presented);
            if matches && found.is_none() {
                found = Some(step);
            }
        }
        found
    }
}

fn base32(data: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let symbol = |v: u32| char::from(ALPHABET.get((v & 31) as usize).copied().unwrap_or(b'A'));
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in data {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(symbol(buffer >> bits));
        }
    }
    if bits > 0 {
        out.push(symbol(buffer << (5 - bits)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 (the 8-digit values' last 6 digits).
    #[test]
    fn rfc6238_vectors() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890");
        for (t, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
            (20_000_000_000, "353130"),
        ] {
            assert_eq!(secret.code_at(t), code, "T = {t}");
        }
    }

    #[test]
    fn verification_allows_one_step_of_skew_and_names_the_step() {
        let s = TotpSecret::generate();
        let now = 1_700_000_000;
        let step = TotpSecret::step(now);
        assert_eq!(s.verify(&s.code_at(now), now, 1), Some(step));
        assert_eq!(s.verify(&s.code_at(now - 30), now, 1), Some(step - 1));
        assert_eq!(s.verify(&s.code_at(now + 30), now, 1), Some(step + 1));
        assert_eq!(s.verify(&s.code_at(now - 90), now, 1), None);
        assert_eq!(s.verify("abcdef", now, 1), None);
    }

    #[test]
    fn base32_matches_rfc4648() {
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32(b"12345678901234567890"), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(TotpSecret::generate().base32().len(), 32);
    }
}
