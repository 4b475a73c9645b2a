//! First start and every start: data dir, key-encryption key, database, and the internal CA.
//! Nodes sharing a database must share the KEK; a node with another KEK refuses to start and never
//! creates a second CA.

use std::sync::Arc;

use vsc_core::{Actor, AuditRecord, Clock, KeyAlgorithm};
use vsc_crypto::{CaBundle, GeneratedKey, IssuingCa, Kek, SealedKey};
use vsc_store::{Store, StoreError, ca, system};

use super::Vsc;
use crate::notify::email::EmailChannel;
use crate::notify::sms::SmsChannel;
use crate::{Config, ServiceError};

const KEK_ID: &str = "kek_id";
const CA_NAME: &str = "ca_name";
const CANARY: &str = "kek_canary";
const CANARY_CONTEXT: &str = "system:kek-canary";
const CANARY_PLAIN: &[u8] = b"vsc key store canary";

fn ca_context(role: &str) -> String {
    format!("ca:{role}")
}

pub(super) async fn open(config: Config, clock: Arc<dyn Clock>) -> Result<Vsc, ServiceError> {
    create_private_dir(&config.data_dir)?;
    let url = config.database_url();
    let store = Store::connect(&url)
        .await
        .map_err(|e| ServiceError::Startup(format!("cannot open database {}: {e}", vsc_store::redact_url(&url))))?;
    let kek = load_kek(&store, &config).await?;
    let ca = load_or_create_ca(&store, &kek, &config, clock.as_ref()).await?;
    let email = EmailChannel::from_config(&config).map_err(ServiceError::Startup)?;
    let sms = SmsChannel::from_config(&config).map_err(ServiceError::Startup)?;
    let hash_pool = super::hash_pool::HashPool::start(crate::config::cores(), config.limits.hash_queue())
        .map_err(|e| ServiceError::Startup(format!("cannot start the passcode verification workers: {e}")))?;
    let failures =
        super::failure_regulator::FailureRegulator::new(config.limits.failures_per_ip, config.limits.hash_queue());
    Ok(Vsc {
        store,
        kek: Arc::new(kek),
        ca: Arc::new(ca),
        clock,
        config: Arc::new(config),
        email: Arc::new(email),
        sms: Arc::new(sms),
        outbox_wake: Arc::new(tokio::sync::Notify::new()),
        events: super::events::Events::new(),
        signers: Default::default(),
        device_keys: Default::default(),
        batcher: Default::default(),
        imports: Default::default(),
        hash_pool,
        failures: Arc::new(failures),
    })
}

/// The node's KEK. A new key file is made only for a database that has none yet: a node joining an
/// initialised database must be given the existing key, and is told so.
async fn load_kek(store: &Store, config: &Config) -> Result<Kek, ServiceError> {
    let path = config.kek_path();
    let startup = |e: vsc_crypto::CryptoError| ServiceError::Startup(e.to_string());
    if let Some(kek) = Kek::load(&path).map_err(startup)? {
        return Ok(kek);
    }
    let mut conn = store.conn().await?;
    if let Some(id) = system::get(&mut conn, KEK_ID).await? {
        return Err(ServiceError::Startup(format!(
            "key-encryption key file {} does not exist, but the database is already initialised with key id {id}: \
             give this node the same key file (VSC_KEK_FILE) as the node that created it",
            path.display()
        )));
    }
    let (kek, created) = Kek::load_or_create(&path).map_err(startup)?;
    if created {
        tracing::info!(path = %path.display(), kek_id = %kek.id_hex(), "created key-encryption key");
    }
    Ok(kek)
}

fn create_private_dir(dir: &std::path::Path) -> Result<(), ServiceError> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir).map_err(|e| ServiceError::Startup(format!("cannot create data dir {}: {e}", dir.display())))
}

fn mismatch(ours: &Kek, theirs: &str) -> ServiceError {
    ServiceError::Startup(format!(
        "the key-encryption key of this node (id {}) does not match the database (id {theirs}); \
         nodes sharing a database must use the same key file (VSC_KEK_FILE)",
        ours.id_hex()
    ))
}

async fn load_or_create_ca(
    store: &Store,
    kek: &Kek,
    config: &Config,
    clock: &dyn Clock,
) -> Result<IssuingCa, ServiceError> {
    // Two attempts: if another node creates the CA between our read and our write, the second
    // pass loads theirs.
    for _ in 0..2 {
        let mut conn = store.conn().await?;
        match system::get(&mut conn, KEK_ID).await? {
            Some(id) if id != kek.id_hex() => return Err(mismatch(kek, &id)),
            Some(_) => {
                if let Some(ca) = load_ca(&mut conn, kek).await? {
                    return Ok(ca);
                }
            }
            None => {}
        }
        drop(conn);
        match create_ca(store, kek, config, clock).await {
            Ok(ca) => return Ok(ca),
            Err(ServiceError::Store(StoreError::Constraint(_))) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(ServiceError::Startup("could not create or load the internal CA (concurrent start-up?)".into()))
}

async fn load_ca(conn: &mut vsc_store::Conn, kek: &Kek) -> Result<Option<IssuingCa>, ServiceError> {
    let (Some(root), Some(issuing), Some(name)) =
        (ca::get(conn, "root").await?, ca::get(conn, "issuing").await?, system::get(conn, CA_NAME).await?)
    else {
        return Ok(None);
    };
    let key_der = SealedKey(issuing.sealed_key).open(kek, &ca_context("issuing"))?;
    let key = GeneratedKey::from_pkcs8(KeyAlgorithm::P256, &key_der)?;
    Ok(Some(IssuingCa::new(&name, issuing.cert_der, key, root.cert_der)))
}

async fn create_ca(store: &Store, kek: &Kek, config: &Config, clock: &dyn Clock) -> Result<IssuingCa, ServiceError> {
    let now = clock.now();
    let bundle = CaBundle::create(&config.ca_name, now)?;
    let root_sealed = SealedKey::seal(kek, &ca_context("root"), bundle.root_key.pkcs8_der())?;
    let issuing_sealed = SealedKey::seal(kek, &ca_context("issuing"), bundle.issuing_key.pkcs8_der())?;
    let canary = SealedKey::seal(kek, CANARY_CONTEXT, CANARY_PLAIN)?;

    let mut tx = store.begin().await?;
    if !system::insert_if_absent(&mut tx, KEK_ID, &kek.id_hex()).await? {
        // Another node got there first; it may hold a different key.
        match system::get(&mut tx, KEK_ID).await? {
            Some(id) if id != kek.id_hex() => return Err(mismatch(kek, &id)),
            _ => {}
        }
    }
    let at = now.unix_timestamp();
    system::insert_if_absent(&mut tx, CANARY, &hex::encode(&canary.0)).await?;
    if !system::insert_if_absent(&mut tx, CA_NAME, &config.ca_name).await? {
        return Err(StoreError::Constraint("CA already being created".into()).into());
    }
    ca::insert(&mut tx, "root", &bundle.root_cert_der, &root_sealed.0, at).await?;
    ca::insert(&mut tx, "issuing", &bundle.issuing_cert_der, &issuing_sealed.0, at).await?;
    vsc_store::audit::append(
        &mut tx,
        at,
        &AuditRecord {
            actor: Actor::System,
            action: "ca.created",
            org_id: None,
            target: Some(format!("ca:{}", config.ca_name)),
            detail: serde_json::json!({ "kek_id": kek.id_hex() }).to_string(),
        },
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    tracing::info!(ca = %config.ca_name, "created internal CA (root + issuing)");
    let CaBundle { root_cert_der, issuing_cert_der, issuing_key, .. } = bundle;
    Ok(IssuingCa::new(&config.ca_name, issuing_cert_der, issuing_key, root_cert_der))
}

pub(super) async fn check_canary(store: &Store, kek: &Kek) -> Result<(), ServiceError> {
    let mut conn = store.conn().await?;
    let hex_value = system::get(&mut conn, CANARY)
        .await?
        .ok_or_else(|| ServiceError::Startup("key store canary missing".into()))?;
    let sealed = hex::decode(hex_value).map_err(|_| ServiceError::Startup("key store canary damaged".into()))?;
    let plain = SealedKey(sealed).open(kek, CANARY_CONTEXT)?;
    if plain.as_slice() != CANARY_PLAIN {
        return Err(ServiceError::Startup("key store canary does not match".into()));
    }
    Ok(())
}
