//! High-entropy bearer tokens: 256 random bits shown once, stored only as SHA-256, compared in
//! constant time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// A freshly generated token, to be shown to its owner once.
pub struct SecretToken(Zeroizing<String>);

/// SHA-256 of a token: what the database keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenHash(pub [u8; 32]);

impl SecretToken {
    /// A new token `"<prefix>_<43 base64url chars>"` carrying 256 random bits.
    pub fn generate(prefix: &str) -> Self {
        let raw = Zeroizing::new(crate::random::bytes::<32>());
        SecretToken(Zeroizing::new(format!("{prefix}_{}", URL_SAFE_NO_PAD.encode(raw.as_slice()))))
    }

    /// The token text (show once, never log).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Its hash for storage.
    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }
}

impl TokenHash {
    /// SHA-256 of a presented token.
    pub fn of(token: &str) -> Self {
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        TokenHash(out)
    }

    /// From stored bytes (`None` when the length is wrong).
    pub fn from_slice(b: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(b).ok().map(TokenHash)
    }

    /// Constant-time equality.
    pub fn matches(&self, other: &TokenHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

/// SHA-256 of arbitrary bytes.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hash_stably() {
        let a = SecretToken::generate("vsc");
        let b = SecretToken::generate("vsc");
        assert_ne!(a.expose(), b.expose());
        assert!(a.expose().starts_with("vsc_"));
        assert_eq!(a.expose().len(), 4 + 43);
        assert!(a.hash().matches(&TokenHash::of(a.expose())));
        assert!(!a.hash().matches(&b.hash()));
    }

    #[test]
    fn sha256_matches_the_standard_vector() {
        // FIPS 180-2 "abc".
        assert_eq!(hex::encode(sha256(b"abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
