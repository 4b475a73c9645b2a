//! Signing with a card's private key: raw signatures over SHA-256 digests (ECDSA P-256, RSA
//! PKCS#1 v1.5 and RSA-PSS).

use aws_lc_rs::digest::{self, Digest};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, RSA_PKCS1_SHA256, RSA_PSS_SHA256, RsaKeyPair,
};
use vsc_core::KeyAlgorithm;

use crate::CryptoError;

/// A signature scheme a card key can make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureScheme {
    /// ECDSA over P-256 with SHA-256, DER-encoded signature.
    EcdsaP256Sha256,
    /// RSA PKCS#1 v1.5 with SHA-256.
    RsaPkcs1Sha256,
    /// RSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt.
    RsaPssSha256,
}

impl SignatureScheme {
    /// Parse a wire name: "ecdsa-sha256", "rsa-pkcs1-sha256", "rsa-pss-sha256" (case-insensitive;
    /// also "ES256", "RS256", "PS256").
    pub fn parse(s: &str) -> Option<SignatureScheme> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ecdsa-sha256" | "es256" => Some(SignatureScheme::EcdsaP256Sha256),
            "rsa-pkcs1-sha256" | "rs256" => Some(SignatureScheme::RsaPkcs1Sha256),
            "rsa-pss-sha256" | "ps256" => Some(SignatureScheme::RsaPssSha256),
            _ => None,
        }
    }

    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureScheme::EcdsaP256Sha256 => "ecdsa-sha256",
            SignatureScheme::RsaPkcs1Sha256 => "rsa-pkcs1-sha256",
            SignatureScheme::RsaPssSha256 => "rsa-pss-sha256",
        }
    }

    /// The default scheme for a key algorithm (P256 → ecdsa-sha256, Rsa2048 → rsa-pkcs1-sha256).
    pub fn default_for(alg: KeyAlgorithm) -> SignatureScheme {
        match alg {
            KeyAlgorithm::P256 => SignatureScheme::EcdsaP256Sha256,
            KeyAlgorithm::Rsa2048 => SignatureScheme::RsaPkcs1Sha256,
        }
    }

    /// Whether this scheme works with keys of `alg`.
    pub fn fits(self, alg: KeyAlgorithm) -> bool {
        match self {
            SignatureScheme::EcdsaP256Sha256 => alg == KeyAlgorithm::P256,
            SignatureScheme::RsaPkcs1Sha256 | SignatureScheme::RsaPssSha256 => alg == KeyAlgorithm::Rsa2048,
        }
    }
}

impl std::fmt::Display for SignatureScheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

enum Key {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

/// A card private key ready to sign, built from unsealed PKCS#8. The key lives inside aws-lc,
/// which clears it when this value is dropped; no copy of the PKCS#8 bytes is kept.
pub struct CardSigner {
    algorithm: KeyAlgorithm,
    key: Key,
}

impl std::fmt::Debug for CardSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardSigner").field("algorithm", &self.algorithm).finish_non_exhaustive()
    }
}

/// SHA-256 of data.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

impl CardSigner {
    /// Load a private key of algorithm `alg` from PKCS#8 DER.
    pub fn from_pkcs8(alg: KeyAlgorithm, pkcs8_der: &[u8]) -> Result<CardSigner, CryptoError> {
        let key = match alg {
            KeyAlgorithm::P256 => Key::Ec(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8_der)
                    .map_err(|e| CryptoError::Malformed(format!("not a P-256 PKCS#8 key: {e}")))?,
            ),
            KeyAlgorithm::Rsa2048 => Key::Rsa(
                RsaKeyPair::from_pkcs8(pkcs8_der)
                    .map_err(|e| CryptoError::Malformed(format!("not an RSA PKCS#8 key: {e}")))?,
            ),
        };
        Ok(CardSigner { algorithm: alg, key })
    }

    /// Algorithm of the key.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// Sign a SHA-256 digest (32 bytes) with `scheme`, which must fit the key. ECDSA signatures
    /// are DER (ASN.1) encoded, as openssl expects.
    pub fn sign_digest(&self, scheme: SignatureScheme, digest: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if digest.len() != 32 {
            return Err(CryptoError::Malformed(format!("a SHA-256 digest is 32 bytes, this one has {}", digest.len())));
        }
        if !scheme.fits(self.algorithm) {
            return Err(CryptoError::Malformed(format!(
                "signature scheme {} does not fit a {} key",
                scheme.as_str(),
                self.algorithm.as_str()
            )));
        }
        let d = Digest::import_less_safe(digest, &digest::SHA256)
            .map_err(|_| CryptoError::Malformed("a SHA-256 digest is 32 bytes".into()))?;
        match (&self.key, scheme) {
            (Key::Ec(k), SignatureScheme::EcdsaP256Sha256) => k
                .sign_digest(&d)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| CryptoError::Library("ECDSA signing failed".into())),
            (Key::Rsa(k), SignatureScheme::RsaPkcs1Sha256 | SignatureScheme::RsaPssSha256) => {
                let padding = if scheme == SignatureScheme::RsaPssSha256 { &RSA_PSS_SHA256 } else { &RSA_PKCS1_SHA256 };
                let mut sig = vec![0u8; k.public_modulus_len()];
                k.sign_digest(padding, &d, &mut sig).map_err(|_| CryptoError::Library("RSA signing failed".into()))?;
                Ok(sig)
            }
            _ => Err(CryptoError::Malformed(format!(
                "signature scheme {} does not fit a {} key",
                scheme.as_str(),
                self.algorithm.as_str()
            ))),
        }
    }

    /// Hash `data` with SHA-256 and sign.
    pub fn sign(&self, scheme: SignatureScheme, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.sign_digest(scheme, &sha256(data))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
pub(crate) mod tests {
    use std::sync::OnceLock;

    use aws_lc_rs::signature::{
        ECDSA_P256_SHA256_ASN1, RSA_PKCS1_2048_8192_SHA256, RSA_PSS_2048_8192_SHA256, UnparsedPublicKey,
        VerificationAlgorithm,
    };

    use super::*;
    use crate::GeneratedKey;

    /// One RSA-2048 key for all tests (generation is slow), as PKCS#8.
    pub(crate) fn rsa_key() -> GeneratedKey {
        static PKCS8: OnceLock<Vec<u8>> = OnceLock::new();
        let der = PKCS8.get_or_init(|| GeneratedKey::generate(KeyAlgorithm::Rsa2048).unwrap().pkcs8_der().to_vec());
        GeneratedKey::from_pkcs8(KeyAlgorithm::Rsa2048, der).unwrap()
    }

    /// The raw subjectPublicKey bits of an SPKI.
    fn raw_key(spki: &[u8]) -> Vec<u8> {
        yasna::parse_der(spki, |r| {
            r.read_sequence(|r| {
                r.next().read_der()?;
                r.next().read_bitvec_bytes()
            })
        })
        .unwrap()
        .0
    }

    fn verify(alg: &'static dyn VerificationAlgorithm, key: &GeneratedKey, data: &[u8], sig: &[u8]) -> bool {
        UnparsedPublicKey::new(alg, raw_key(&key.public_key_der())).verify(data, sig).is_ok()
    }

    fn openssl_verify(key: &GeneratedKey, data: &[u8], sig: &[u8], pss: bool) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pub.pem"), crate::pem::encode("PUBLIC KEY", &key.public_key_der())).unwrap();
        std::fs::write(dir.path().join("sig"), sig).unwrap();
        std::fs::write(dir.path().join("file"), data).unwrap();
        let mut cmd = std::process::Command::new("openssl");
        cmd.current_dir(dir.path()).args(["dgst", "-sha256", "-verify", "pub.pem", "-signature", "sig"]);
        if pss {
            cmd.args(["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32"]);
        }
        let out = cmd.arg("file").output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("Verified OK"),
            "{stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn schemes_parse_and_fit() {
        assert_eq!(SignatureScheme::parse("ES256"), Some(SignatureScheme::EcdsaP256Sha256));
        assert_eq!(SignatureScheme::parse("RSA-PSS-SHA256"), Some(SignatureScheme::RsaPssSha256));
        assert_eq!(SignatureScheme::parse("rs256"), Some(SignatureScheme::RsaPkcs1Sha256));
        assert_eq!(SignatureScheme::parse("md5"), None);
        for s in [SignatureScheme::EcdsaP256Sha256, SignatureScheme::RsaPkcs1Sha256, SignatureScheme::RsaPssSha256] {
            assert_eq!(SignatureScheme::parse(s.as_str()), Some(s));
        }
        assert!(SignatureScheme::default_for(KeyAlgorithm::P256).fits(KeyAlgorithm::P256));
        assert!(SignatureScheme::default_for(KeyAlgorithm::Rsa2048).fits(KeyAlgorithm::Rsa2048));
        assert!(!SignatureScheme::RsaPssSha256.fits(KeyAlgorithm::P256));
    }

    #[test]
    fn p256_signs_data_and_digests() {
        let key = GeneratedKey::generate(KeyAlgorithm::P256).unwrap();
        let s = key.signer().unwrap();
        let data = b"hello card";
        let sig = s.sign(SignatureScheme::EcdsaP256Sha256, data).unwrap();
        assert!(verify(&ECDSA_P256_SHA256_ASN1, &key, data, &sig));
        let sig2 = s.sign_digest(SignatureScheme::EcdsaP256Sha256, &sha256(data)).unwrap();
        assert!(verify(&ECDSA_P256_SHA256_ASN1, &key, data, &sig2));
        assert!(!verify(&ECDSA_P256_SHA256_ASN1, &key, b"other", &sig2));
        openssl_verify(&key, data, &sig2, false);
        assert!(matches!(s.sign_digest(SignatureScheme::EcdsaP256Sha256, &[0; 31]), Err(CryptoError::Malformed(_))));
        assert!(matches!(s.sign(SignatureScheme::RsaPkcs1Sha256, data), Err(CryptoError::Malformed(_))));
        assert!(CardSigner::from_pkcs8(KeyAlgorithm::Rsa2048, key.pkcs8_der()).is_err());
    }

    #[test]
    fn rsa_signs_pkcs1_and_pss() {
        let key = rsa_key();
        let s = key.signer().unwrap();
        assert_eq!(s.algorithm(), KeyAlgorithm::Rsa2048);
        let data = b"hello rsa card";
        let sig = s.sign(SignatureScheme::RsaPkcs1Sha256, data).unwrap();
        assert_eq!(sig.len(), 256);
        assert!(verify(&RSA_PKCS1_2048_8192_SHA256, &key, data, &sig));
        let sig2 = s.sign_digest(SignatureScheme::RsaPkcs1Sha256, &sha256(data)).unwrap();
        assert_eq!(sig, sig2, "PKCS#1 v1.5 is deterministic");
        openssl_verify(&key, data, &sig2, false);
        let pss = s.sign_digest(SignatureScheme::RsaPssSha256, &sha256(data)).unwrap();
        assert!(verify(&RSA_PSS_2048_8192_SHA256, &key, data, &pss));
        assert!(!verify(&RSA_PKCS1_2048_8192_SHA256, &key, data, &pss));
        openssl_verify(&key, data, &pss, true);
        assert!(matches!(s.sign(SignatureScheme::EcdsaP256Sha256, data), Err(CryptoError::Malformed(_))));
    }
}
