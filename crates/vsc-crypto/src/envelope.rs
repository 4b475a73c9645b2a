//! Envelope encryption: each private key is encrypted with its own random AES-256-GCM data key; the
//! data key is wrapped (AES-256-GCM) under the KEK. A context string (e.g. `card:<id>:signing`) is
//! bound as associated data, so a sealed key copied to another row does not open.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use zeroize::Zeroizing;

use crate::{CryptoError, Kek};

const MAGIC: &[u8; 4] = b"VSE1";
const TAG_LEN: usize = 16;
const WRAPPED_LEN: usize = 32 + TAG_LEN;
const HEADER_LEN: usize = 4 + 8 + NONCE_LEN + WRAPPED_LEN + NONCE_LEN;

/// Sealed (encrypted) private-key bytes as stored in the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedKey(pub Vec<u8>);

fn aead(key: &[u8]) -> Result<LessSafeKey, CryptoError> {
    UnboundKey::new(&AES_256_GCM, key).map(LessSafeKey::new).map_err(|_| CryptoError::Library("aes key".into()))
}

fn nonce() -> [u8; NONCE_LEN] {
    crate::random::bytes::<NONCE_LEN>()
}

impl SealedKey {
    /// Encrypt `secret` under a fresh data key wrapped by `kek`, bound to `context`.
    pub fn seal(kek: &Kek, context: &str, secret: &[u8]) -> Result<Self, CryptoError> {
        let dek = Zeroizing::new(crate::random::bytes::<32>());
        let kek_id = kek.id();
        let wrap_aad = [kek_id.as_slice(), context.as_bytes()].concat();

        let wrap_nonce = nonce();
        let mut wrapped = dek.to_vec();
        aead(kek.key_bytes())?
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(wrap_nonce), Aad::from(&wrap_aad), &mut wrapped)
            .map_err(|_| CryptoError::Library("wrap".into()))?;

        let data_nonce = nonce();
        let mut body = secret.to_vec();
        aead(dek.as_slice())?
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(data_nonce),
                Aad::from(context.as_bytes()),
                &mut body,
            )
            .map_err(|_| CryptoError::Library("seal".into()))?;

        let mut out = Vec::with_capacity(HEADER_LEN + body.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&kek_id);
        out.extend_from_slice(&wrap_nonce);
        out.extend_from_slice(&wrapped);
        out.extend_from_slice(&data_nonce);
        out.extend_from_slice(&body);
        Ok(SealedKey(out))
    }

    /// Decrypt with `kek`, checking that it was sealed for `context`.
    pub fn open(&self, kek: &Kek, context: &str) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let b = self.0.as_slice();
        if b.len() < HEADER_LEN + TAG_LEN || b.get(..4) != Some(MAGIC.as_slice()) {
            return Err(CryptoError::Format);
        }
        let (kek_id, rest) = b.get(4..).ok_or(CryptoError::Format)?.split_at(8);
        if kek_id != kek.id() {
            return Err(CryptoError::WrongKek { expected: kek.id_hex(), found: hex::encode(kek_id) });
        }
        let (wrap_nonce, rest) = rest.split_at(NONCE_LEN);
        let (wrapped, rest) = rest.split_at(WRAPPED_LEN);
        let (data_nonce, body) = rest.split_at(NONCE_LEN);
        let to_nonce = |n: &[u8]| Nonce::try_assume_unique_for_key(n).map_err(|_| CryptoError::Format);

        let wrap_aad = [kek_id, context.as_bytes()].concat();
        let mut dek = Zeroizing::new(wrapped.to_vec());
        let dek_len = aead(kek.key_bytes())?
            .open_in_place(to_nonce(wrap_nonce)?, Aad::from(&wrap_aad), &mut dek)
            .map_err(|_| CryptoError::Unseal)?
            .len();
        let dek = dek.get(..dek_len).ok_or(CryptoError::Unseal)?;

        let mut plain = Zeroizing::new(body.to_vec());
        let len = aead(dek)?
            .open_in_place(to_nonce(data_nonce)?, Aad::from(context.as_bytes()), &mut plain)
            .map_err(|_| CryptoError::Unseal)?
            .len();
        plain.truncate(len);
        Ok(plain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_ciphertext_hides_the_secret() {
        let kek = Kek::generate();
        let secret = b"-----BEGIN PRIVATE KEY----- not really";
        let sealed = SealedKey::seal(&kek, "card:1:authentication", secret).unwrap();
        assert!(!sealed.0.windows(secret.len()).any(|w| w == secret));
        assert_eq!(sealed.open(&kek, "card:1:authentication").unwrap().as_slice(), secret);
    }

    #[test]
    fn wrong_kek_wrong_context_and_tampering_fail() {
        let kek = Kek::generate();
        let sealed = SealedKey::seal(&kek, "ctx", b"secret").unwrap();
        assert!(matches!(sealed.open(&Kek::generate(), "ctx"), Err(CryptoError::WrongKek { .. })));
        assert!(matches!(sealed.open(&kek, "other"), Err(CryptoError::Unseal)));
        for i in [12usize, 30, sealed.0.len() - 1] {
            let mut t = sealed.clone();
            t.0[i] ^= 1;
            assert!(t.open(&kek, "ctx").is_err(), "byte {i}");
        }
        assert!(matches!(SealedKey(b"junk".to_vec()).open(&kek, "ctx"), Err(CryptoError::Format)));
    }
}
