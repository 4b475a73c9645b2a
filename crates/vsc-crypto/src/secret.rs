//! Low-entropy secrets typed by people (passcodes, security answers): Argon2id with a random salt,
//! m = 19 MiB, t = 2, p = 1 (OWASP's recommended minimum), stored as a PHC string.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::CryptoError;

fn hasher() -> Result<Argon2<'static>, CryptoError> {
    let params = Params::new(19 * 1024, 2, 1, None).map_err(|e| CryptoError::Library(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hash a secret for storage.
pub fn hash(secret: &str) -> Result<String, CryptoError> {
    let salt =
        SaltString::encode_b64(&crate::random::bytes::<16>()).map_err(|e| CryptoError::Library(e.to_string()))?;
    Ok(hasher()?.hash_password(secret.as_bytes(), &salt).map_err(|e| CryptoError::Library(e.to_string()))?.to_string())
}

/// Whether `secret` matches a stored hash (false for a malformed hash).
pub fn verify(secret: &str, stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    match hasher() {
        Ok(h) => h.verify_password(secret.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// Spend the time of one verification without a stored hash, so that "no such account" answers
/// as slowly as "wrong passcode".
pub fn verify_dummy(secret: &str) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let stored = DUMMY.get_or_init(|| hash("dummy-passcode-0").unwrap_or_default());
    let _ = verify(secret, stored);
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
