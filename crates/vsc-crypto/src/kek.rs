//! The key-encryption key (KEK): 256 bits kept in a file (mode 0600) outside the database. Every
//! private key in the database is sealed under a data key wrapped by it.

use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use crate::CryptoError;

/// A loaded key-encryption key and its public id (a fingerprint, safe to store and log).
pub struct Kek {
    key: Zeroizing<[u8; 32]>,
    id: [u8; 8],
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Kek({})", self.id_hex())
    }
}

impl Kek {
    /// Build from raw key bytes.
    pub fn from_bytes(key: [u8; 32]) -> Self {
        let mut input = b"vsc kek id v1".to_vec();
        input.extend_from_slice(&key);
        let digest = crate::token::sha256(&input);
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest[..8]);
        Kek { key: Zeroizing::new(key), id }
    }

    /// A fresh random key.
    pub fn generate() -> Self {
        Kek::from_bytes(crate::random::bytes::<32>())
    }

    /// Load the key from `path`; `None` when the file does not exist.
    pub fn load(path: &Path) -> Result<Option<Self>, CryptoError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::decode(&text)
                .map(Some)
                .map_err(|reason| CryptoError::KekFile { path: path.display().to_string(), reason }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(CryptoError::KekFile { path: path.display().to_string(), reason: e.to_string() }),
        }
    }

    /// Load the key from `path`, creating it (mode 0600, never overwriting) when it does not exist.
    /// Returns the key and whether it was created.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), CryptoError> {
        let err = |reason: String| CryptoError::KekFile { path: path.display().to_string(), reason };
        match std::fs::read_to_string(path) {
            Ok(text) => Ok((Self::decode(&text).map_err(err)?, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let kek = Kek::generate();
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    opts.mode(0o600);
                }
                match opts.open(path) {
                    Ok(mut f) => {
                        let line = Zeroizing::new(format!("{}\n", STANDARD.encode(kek.key.as_slice())));
                        f.write_all(line.as_bytes()).map_err(|e| err(e.to_string()))?;
                        f.sync_all().map_err(|e| err(e.to_string()))?;
                        Ok((kek, true))
                    }
                    // Another process created it between our read and our create: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::load_or_create(path),
                    Err(e) => Err(err(e.to_string())),
                }
            }
            Err(e) => Err(err(e.to_string())),
        }
    }

    fn decode(text: &str) -> Result<Self, String> {
        let raw = Zeroizing::new(
            STANDARD
                .decode(text.trim())
                .map_err(|_| "is not base64 (expected 32 random bytes in base64)".to_string())?,
        );
        let key: [u8; 32] = raw.as_slice().try_into().map_err(|_| format!("holds {} bytes, expected 32", raw.len()))?;
        Ok(Kek::from_bytes(key))
    }

    /// The key id as hex (a fingerprint; not secret).
    pub fn id_hex(&self) -> String {
        hex::encode(self.id)
    }

    pub(crate) fn id(&self) -> [u8; 8] {
        self.id
    }

    pub(crate) fn key_bytes(&self) -> &[u8; 32] {
        &self.key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_file_is_private_and_reloads_to_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kek");
        let (a, created) = Kek::load_or_create(&path).unwrap();
        assert!(created);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let (b, created) = Kek::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(a.id_hex(), b.id_hex());
        assert_ne!(a.id_hex(), Kek::generate().id_hex());
    }

    #[test]
    fn a_damaged_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kek");
        std::fs::write(&path, "not-a-key").unwrap();
        let e = Kek::load_or_create(&path).unwrap_err().to_string();
        assert!(e.contains("base64"), "{e}");
    }
}
