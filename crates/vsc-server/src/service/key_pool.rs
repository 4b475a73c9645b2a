//! The pool of pre-generated RSA keys: a background task keeps it filled so that RSA card profiles
//! issue as fast as P-256 ones; an empty pool falls back to generating inline.

use vsc_core::KeyAlgorithm;
use vsc_crypto::{GeneratedKey, Kek, SealedKey};
use vsc_store::{Conn, key_pool};

use super::{Vsc, new_id};
use crate::ServiceError;

fn pool_context(algorithm: KeyAlgorithm) -> String {
    format!("pool:{}", algorithm.as_str())
}

/// Take a pooled key inside the issuing transaction (a rollback puts it back), or generate one.
pub(super) async fn take_or_generate(
    conn: &mut Conn,
    kek: &Kek,
    algorithm: KeyAlgorithm,
) -> Result<GeneratedKey, ServiceError> {
    if algorithm != KeyAlgorithm::P256 {
        if let Some((_, sealed)) = key_pool::take(conn, algorithm.as_str()).await? {
            let der = SealedKey(sealed).open(kek, &pool_context(algorithm))?;
            return Ok(GeneratedKey::from_pkcs8(algorithm, &der)?);
        }
        tracing::info!(algorithm = algorithm.as_str(), "key pool empty; generating inline");
    }
    generate(algorithm).await
}

async fn generate(algorithm: KeyAlgorithm) -> Result<GeneratedKey, ServiceError> {
    if algorithm == KeyAlgorithm::P256 {
        return Ok(GeneratedKey::generate(algorithm)?);
    }
    tokio::task::spawn_blocking(move || GeneratedKey::generate(algorithm))
        .await
        .map_err(|e| ServiceError::Startup(format!("key generation task failed: {e}")))?
        .map_err(ServiceError::from)
}

/// Top the RSA pool up to the configured size; returns how many keys were added.
pub async fn refill_rsa_pool(vsc: &Vsc) -> Result<usize, ServiceError> {
    let algorithm = KeyAlgorithm::Rsa2048;
    let target = vsc.config.rsa_pool_size;
    let mut added = 0;
    loop {
        let have = {
            let mut conn = vsc.store.conn().await?;
            key_pool::count(&mut conn, algorithm.as_str()).await?
        };
        if have >= target {
            return Ok(added);
        }
        let key = generate(algorithm).await?;
        let sealed = SealedKey::seal(&vsc.kek, &pool_context(algorithm), key.pkcs8_der())?;
        let mut writer = vsc.store.writer().await?;
        key_pool::insert(&mut writer, &new_id(), algorithm.as_str(), &sealed.0, vsc.now().unix_timestamp()).await?;
        added += 1;
    }
}
