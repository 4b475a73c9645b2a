//! Cryptography for vsc: randomness, token hashing, the key-encryption key, envelope encryption of
//! private keys, key generation, and the internal certificate authority.

pub mod ca;
pub mod device;
pub mod device_token;
pub mod envelope;
pub mod error;
pub mod kek;
pub mod keys;
pub mod pem;
pub mod random;
pub mod secret;
pub mod token;
pub mod totp;

pub use ca::{CaBundle, CardSubject, IssuingCa};
pub use envelope::SealedKey;
pub use error::CryptoError;
pub use kek::Kek;
pub use keys::GeneratedKey;
pub use random::SystemRng;
pub use token::{SecretToken, TokenHash};
