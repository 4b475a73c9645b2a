//! Card and CA key pairs. Private keys exist in clear only in memory (zeroized on drop) and are
//! stored sealed (see `envelope`).

use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256, PKCS_RSA_SHA256, PublicKeyData, RsaKeySize, SignatureAlgorithm};
use rustls_pki_types::PrivatePkcs8KeyDer;
use vsc_core::KeyAlgorithm;
use zeroize::Zeroizing;

use crate::{CardSigner, CryptoError};

/// A key pair with its PKCS#8 encoding (for sealing) and a signer for certificates.
pub struct GeneratedKey {
    /// Algorithm of the key.
    pub algorithm: KeyAlgorithm,
    pkcs8: Zeroizing<Vec<u8>>,
    pub(crate) pair: KeyPair,
}

fn signature_algorithm(alg: KeyAlgorithm) -> &'static SignatureAlgorithm {
    match alg {
        KeyAlgorithm::P256 => &PKCS_ECDSA_P256_SHA256,
        KeyAlgorithm::Rsa2048 => &PKCS_RSA_SHA256,
    }
}

impl GeneratedKey {
    /// Generate a new key pair.
    pub fn generate(algorithm: KeyAlgorithm) -> Result<Self, CryptoError> {
        let pair = match algorithm {
            KeyAlgorithm::P256 => KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?,
            KeyAlgorithm::Rsa2048 => KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_2048)?,
        };
        let pkcs8 = Zeroizing::new(pair.serialize_der());
        Ok(GeneratedKey { algorithm, pkcs8, pair })
    }

    /// Rebuild from unsealed PKCS#8 bytes.
    pub fn from_pkcs8(algorithm: KeyAlgorithm, der: &[u8]) -> Result<Self, CryptoError> {
        let pair =
            KeyPair::from_pkcs8_der_and_sign_algo(&PrivatePkcs8KeyDer::from(der), signature_algorithm(algorithm))?;
        Ok(GeneratedKey { algorithm, pkcs8: Zeroizing::new(der.to_vec()), pair })
    }

    /// PKCS#8 DER of the private key: only ever passed to `SealedKey::seal`.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// SubjectPublicKeyInfo DER of the public key.
    pub fn public_key_der(&self) -> Vec<u8> {
        self.pair.subject_public_key_info()
    }

    /// A signer over this key (for tests and benchmarks; the server signs with keys it unsealed).
    pub fn signer(&self) -> Result<CardSigner, CryptoError> {
        CardSigner::from_pkcs8(self.algorithm, &self.pkcs8)
    }

    pub(crate) fn pair(&self) -> &KeyPair {
        &self.pair
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p256_keys_round_trip_through_pkcs8() {
        let k = GeneratedKey::generate(KeyAlgorithm::P256).unwrap();
        let again = GeneratedKey::from_pkcs8(KeyAlgorithm::P256, k.pkcs8_der()).unwrap();
        assert_eq!(k.public_key_der(), again.public_key_der());
        assert!(GeneratedKey::from_pkcs8(KeyAlgorithm::Rsa2048, k.pkcs8_der()).is_err());
    }
}
