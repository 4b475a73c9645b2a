//! Cryptography for vsc: randomness, token hashing, the key-encryption key, envelope encryption of
//! private keys, key generation, the internal certificate authority (certificates, CRLs, OCSP) and
//! card signatures (raw and CAdES-BES).

mod asn1;
pub mod ca;
pub mod cades;
pub mod card_signer;
pub mod crl;
pub mod device;
pub mod device_token;
pub mod envelope;
pub mod error;
pub mod kek;
pub mod keys;
pub mod ocsp;
pub mod pem;
pub mod random;
pub mod secret;
pub mod token;
pub mod totp;
pub mod verify;

#[cfg(test)]
mod test_support;

pub use ca::{CaBundle, CardSubject, IssuedCertificate, IssuingCa};
pub use cades::{CadesContent, CadesRequest, cades_bes};
pub use card_signer::{CardSigner, SignatureScheme, sha256};
pub use crl::{RevocationReason, RevokedEntry};
pub use envelope::SealedKey;
pub use error::CryptoError;
pub use kek::Kek;
pub use keys::GeneratedKey;
pub use ocsp::{CertStatus, OcspQuery, OcspRequest, ocsp_error, parse_request};
pub use random::SystemRng;
pub use token::{SecretToken, TokenHash};
pub use verify::{
    CrlReport, CrlStatus, VerifiedSignature, VerifyError, certificate_subject_cn, crl_check, crl_status,
    pem_certificates, verify_cms,
};
