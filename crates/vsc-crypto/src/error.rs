//! Errors from cryptographic operations. Messages never contain key material.

/// A cryptographic operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// Sealed data did not decrypt: wrong key-encryption key, wrong context or tampering.
    #[error("sealed key does not open with this key-encryption key (wrong key, wrong context or tampered data)")]
    Unseal,
    /// Sealed data is not in a format we know.
    #[error("sealed key has an unknown format")]
    Format,
    /// The sealed data was made under a different key-encryption key.
    #[error("sealed key was made under key-encryption key {found}, this node has {expected}")]
    WrongKek {
        /// Id of this node's key.
        expected: String,
        /// Id recorded in the data.
        found: String,
    },
    /// A device token, signature or key is not well formed.
    #[error("{0}")]
    Malformed(String),
    /// Key generation or signing failed in the crypto library.
    #[error("crypto library failure: {0}")]
    Library(String),
    /// Certificate generation failed.
    #[error("certificate generation failed: {0}")]
    Certificate(String),
    /// The key-encryption key file could not be read or written.
    #[error("key-encryption key file {path}: {reason}")]
    KekFile {
        /// File path.
        path: String,
        /// What went wrong.
        reason: String,
    },
}

impl From<rcgen::Error> for CryptoError {
    fn from(e: rcgen::Error) -> Self {
        CryptoError::Certificate(e.to_string())
    }
}
