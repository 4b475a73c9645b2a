//! Unsealed card keys of live card sessions, kept in memory for a short time so that a session
//! signing many times does not read, unseal and parse its key for every signature — like the
//! session objects of an HSM. The cache never authorises anything: every signature is still
//! checked against the database (session live, card active, same certificate) in the transaction
//! that audits it, and an entry that fails that check is dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vsc_core::KeyPurpose;
use vsc_crypto::CardSigner;
use vsc_store::signing::{SigningContext, SigningKey};

/// How long an entry is used before the key is read again.
const TTL: Duration = Duration::from_secs(60);
/// Entries kept at most (older ones are dropped first when full).
const CAPACITY: usize = 10_000;

/// A session's signing context with its key unsealed and ready.
#[derive(Clone)]
pub(crate) struct CachedSigner {
    /// The session, holder and card as read (`key` emptied of its sealed bytes).
    pub ctx: Arc<SigningContext>,
    /// The key's certificate and algorithm.
    pub key: Arc<SigningKey>,
    /// The unsealed key.
    pub signer: Arc<CardSigner>,
    at: Instant,
}

type Key = ([u8; 32], KeyPurpose);

/// The cache (one per node).
#[derive(Clone, Default)]
pub(crate) struct SignerCache {
    entries: Arc<Mutex<HashMap<Key, CachedSigner>>>,
}

impl SignerCache {
    /// A fresh entry for a session token hash and key purpose.
    pub fn get(&self, token_hash: &[u8; 32], purpose: KeyPurpose) -> Option<CachedSigner> {
        let entries = self.entries.lock().ok()?;
        entries.get(&(*token_hash, purpose)).filter(|e| e.at.elapsed() < TTL).cloned()
    }

    /// Keep an entry.
    pub fn put(
        &self,
        token_hash: [u8; 32],
        purpose: KeyPurpose,
        ctx: SigningContext,
        key: SigningKey,
        signer: CardSigner,
    ) -> CachedSigner {
        let key = SigningKey { sealed_private_key: Vec::new(), ..key };
        let entry = CachedSigner {
            ctx: Arc::new(SigningContext { key: None, ..ctx }),
            key: Arc::new(key),
            signer: Arc::new(signer),
            at: Instant::now(),
        };
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= CAPACITY {
                entries.retain(|_, e| e.at.elapsed() < TTL);
                if entries.len() >= CAPACITY {
                    entries.clear();
                }
            }
            entries.insert((token_hash, purpose), entry.clone());
        }
        entry
    }

    /// Forget a session's entries (logout, a failed authorisation).
    pub fn forget(&self, token_hash: &[u8; 32]) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|(h, _), _| h != token_hash);
        }
    }
}
