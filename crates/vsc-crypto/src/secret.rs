//! Low-entropy secrets typed by people (passcodes, security answers): Argon2id with a random salt,
//! m = 19 MiB, t = 2, p = 1 (OWASP's recommended minimum), stored as a PHC string.

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use crate::CryptoError;

/// m = 19 MiB in 1 KiB blocks.
const M_COST: u32 = 19 * 1024;

fn params() -> Result<Params, CryptoError> {
    Params::new(M_COST, 2, 1, None).map_err(|e| CryptoError::Library(e.to_string()))
}

/// Working memory for Argon2id, kept by a hashing thread and reused by every hash it computes,
/// so that hashing allocates once per thread instead of 19 MiB per hash (memory stays threads ×
/// 19 MiB however many hashes run, and the allocator has nothing to fragment).
#[derive(Default)]
pub struct HashMemory(Vec<Block>);

impl HashMemory {
    /// Empty; grows to what the first hash needs.
    pub fn new() -> HashMemory {
        HashMemory(Vec::new())
    }

    fn blocks(&mut self, params: &Params) -> &mut [Block] {
        let needed = params.block_count();
        if self.0.len() < needed {
            self.0.resize(needed, Block::default());
        }
        self.0.as_mut_slice()
    }
}

/// Hash a secret for storage.
pub fn hash(secret: &str) -> Result<String, CryptoError> {
    hash_in(&mut HashMemory::new(), secret)
}

/// [`hash`] in a thread's reused memory.
pub fn hash_in(memory: &mut HashMemory, secret: &str) -> Result<String, CryptoError> {
    let lib = |e: &dyn std::fmt::Display| CryptoError::Library(e.to_string());
    let params = params()?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let salt = SaltString::encode_b64(&crate::random::bytes::<16>()).map_err(|e| lib(&e))?;
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(|e| lib(&e))?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon
        .hash_password_into_with_memory(secret.as_bytes(), salt_bytes, &mut out, memory.blocks(&params))
        .map_err(|e| lib(&e))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| lib(&e))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| lib(&e))?),
    };
    Ok(phc.to_string())
}

/// Whether `secret` matches a stored hash (false for a malformed hash).
pub fn verify(secret: &str, stored: &str) -> bool {
    verify_in(&mut HashMemory::new(), secret, stored)
}

/// [`verify`] in a thread's reused memory. The stored hash's own algorithm, version and
/// parameters are used; the comparison is constant-time.
pub fn verify_in(memory: &mut HashMemory, secret: &str, stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let argon = Argon2::new(algorithm, version, params.clone());
    if argon.hash_password_into_with_memory(secret.as_bytes(), salt_bytes, &mut out, memory.blocks(&params)).is_err() {
        return false;
    }
    // `Output` compares in constant time.
    Output::new(&out).is_ok_and(|o| o == expected)
}

/// Spend the time of one verification without a stored hash, so that "no such account" answers
/// as slowly as "wrong passcode".
pub fn verify_dummy(secret: &str) {
    verify_dummy_in(&mut HashMemory::new(), secret);
}

/// [`verify_dummy`] in a thread's reused memory.
pub fn verify_dummy_in(memory: &mut HashMemory, secret: &str) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let stored = DUMMY.get_or_init(|| hash("dummy-passcode-0").unwrap_or_default());
    let _ = verify_in(memory, secret, stored);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_are_salted() {
        let a = hash("ab12").unwrap();
        let b = hash("ab12").unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b);
        assert!(verify("ab12", &a));
        assert!(!verify("ab13", &a));
        assert!(!verify("ab12", "not a hash"));
    }

    #[test]
    fn reused_memory_gives_the_same_answers_as_fresh_memory() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let mut memory = HashMemory::new();
        let a = hash_in(&mut memory, "ab12").unwrap();
        // The library's own verifier accepts our PHC string, and ours accepts the library's.
        let lib = Argon2::new(Algorithm::Argon2id, Version::V0x13, params().unwrap());
        assert!(lib.verify_password(b"ab12", &PasswordHash::new(&a).unwrap()).is_ok());
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let theirs = lib.hash_password(b"xy98", &salt).unwrap().to_string();
        assert!(verify_in(&mut memory, "xy98", &theirs), "dirty memory, same result");
        assert!(!verify_in(&mut memory, "xy99", &theirs));
        assert!(verify_in(&mut memory, "ab12", &a));
        // Other parameters in a stored hash are honoured (memory grows as needed).
        let bigger = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(M_COST * 2, 1, 1, None).unwrap());
        let big = bigger.hash_password(b"cd34", &salt).unwrap().to_string();
        assert!(verify_in(&mut memory, "cd34", &big));
        assert!(!verify_in(&mut memory, "cd34", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$"));
        verify_dummy_in(&mut memory, "x");
    }

    #[test]
    fn rfc9106_argon2id_vector() {
        // RFC 9106 §5.3: Argon2id, m=32 KiB, t=3, p=4, secret 8×0x03, associated data 12×0x04.
        let params = argon2::ParamsBuilder::new()
            .m_cost(32)
            .t_cost(3)
            .p_cost(4)
            .output_len(32)
            .data(argon2::AssociatedData::new(&[4u8; 12]).unwrap())
            .build()
            .unwrap();
        let a = Argon2::new_with_secret(&[3u8; 8], Algorithm::Argon2id, Version::V0x13, params).unwrap();
        let mut out = [0u8; 32];
        a.hash_password_into(&[1u8; 32], &[2u8; 16], &mut out).unwrap();
        assert_eq!(hex::encode(out), "0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659");
    }
}
