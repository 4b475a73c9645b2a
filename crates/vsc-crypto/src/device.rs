//! Authenticator device keys: P-256 key pairs made on the device (the private key never leaves
//! it); the server keeps the public key and verifies the device's signatures with it.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair, UnparsedPublicKey};
use zeroize::Zeroizing;

use crate::CryptoError;

/// A device's key pair (held by the authenticator).
pub struct DeviceKey {
    pair: EcdsaKeyPair,
    pkcs8: Zeroizing<Vec<u8>>,
}

impl DeviceKey {
    /// A fresh key pair.
    pub fn generate() -> Result<Self, CryptoError> {
        let doc = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new())
            .map_err(|_| CryptoError::Library("device key generation".into()))?;
        Self::from_pkcs8(doc.as_ref())
    }

    /// Load from PKCS#8 (the authenticator's state file).
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, CryptoError> {
        let pair = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, der)
            .map_err(|_| CryptoError::Library("not a P-256 PKCS#8 key".into()))?;
        Ok(DeviceKey { pair, pkcs8: Zeroizing::new(der.to_vec()) })
    }

    /// PKCS#8 for the device's own storage.
    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The public key as an uncompressed SEC1 point (65 bytes), what the server stores.
    pub fn public_key(&self) -> Vec<u8> {
        self.pair.public_key().as_ref().to_vec()
    }

    /// Sign `message` (ECDSA P-256 SHA-256, DER signature).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.pair
            .sign(&SystemRandom::new(), message)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| CryptoError::Library("device signature".into()))
    }
}

/// Whether `signature` over `message` was made by the device whose public key (SEC1 point) is
/// `public_key`.
pub fn verify(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, public_key).verify(message, signature).is_ok()
}

/// Whether bytes are a well-formed P-256 public key (an uncompressed SEC1 point on the curve).
pub fn is_valid_public_key(public_key: &[u8]) -> bool {
    public_key.len() == 65
        && public_key.first() == Some(&4)
        && UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, public_key).parse().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_only_for_their_key_and_message() {
        let a = DeviceKey::generate().unwrap();
        let b = DeviceKey::generate().unwrap();
        let msg = b"challenge-id|nonce|approve";
        let sig = a.sign(msg).unwrap();
        assert!(verify(&a.public_key(), msg, &sig));
        assert!(!verify(&b.public_key(), msg, &sig), "another device's key");
        assert!(!verify(&a.public_key(), b"challenge-id|nonce|deny", &sig), "another decision");
        let again = DeviceKey::from_pkcs8(a.pkcs8()).unwrap();
        assert!(verify(&again.public_key(), msg, &again.sign(msg).unwrap()));
    }

    #[test]
    fn public_keys_are_checked() {
        let k = DeviceKey::generate().unwrap().public_key();
        assert!(is_valid_public_key(&k));
        assert!(!is_valid_public_key(&k[..64]));
        let mut off_curve = k.clone();
        off_curve[64] ^= 1;
        assert!(!is_valid_public_key(&off_curve));
        assert!(!is_valid_public_key(&[4u8; 65]));
    }
}
