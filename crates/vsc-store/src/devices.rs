//! Authenticator devices: adding (email code, then a registration token), registration (public
//! key, sealed TOTP secret), the one-time ids of device tokens, and TOTP step reuse.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Backend, Conn, StoreError};

/// At most this many active devices per holder.
pub const MAX_ACTIVE_DEVICES: i64 = 3;

/// A device row.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceRow {
    /// Device id.
    pub id: String,
    /// Holder's user id.
    pub user_id: String,
    /// Name given by the holder.
    pub name: String,
    /// `phone`, `tablet`, `desktop`.
    pub device_type: String,
    /// Authenticator app type.
    pub authenticator_type: String,
    /// `pending_code`, `pending_registration`, `active`.
    pub state: String,
    /// Hash of the emailed code.
    pub code_hash: Option<Vec<u8>>,
    /// When the emailed code expires.
    pub code_expires_at: Option<i64>,
    /// Wrong codes typed.
    pub code_attempts: i64,
    /// When the registration token expires.
    pub registration_expires_at: Option<i64>,
    /// The registration token's hash.
    pub registration_hash: Option<Vec<u8>>,
    /// SEC1 public key (active devices).
    pub public_key: Option<Vec<u8>>,
    /// The sealed TOTP secret (active devices).
    pub sealed_totp: Option<Vec<u8>>,
    /// The last TOTP step accepted from this device.
    pub totp_last_step: i64,
    /// Client version.
    pub client_version: Option<String>,
    /// Platform.
    pub platform: Option<String>,
    /// Platform version.
    pub platform_version: Option<String>,
    /// When adding started.
    pub created_at: i64,
    /// When registration finished.
    pub registered_at: Option<i64>,
    /// Last use.
    pub last_used_at: Option<i64>,
    /// Whether an authenticator PIN is set (the hash itself is read only where it is checked).
    pub has_pin: bool,
}

const COLUMNS: &str = "id, user_id, name, device_type, authenticator_type, state, code_hash, code_expires_at, \
    code_attempts, registration_hash, registration_expires_at, public_key, sealed_totp, totp_last_step, \
    client_version, platform, platform_version, created_at, registered_at, last_used_at, pin_hash";

fn row(r: &AnyRow) -> Result<DeviceRow, StoreError> {
    Ok(DeviceRow {
        id: r.try_get("id")?,
        user_id: r.try_get("user_id")?,
        name: r.try_get("name")?,
        device_type: r.try_get("device_type")?,
        authenticator_type: r.try_get("authenticator_type")?,
        state: r.try_get("state")?,
        code_hash: r.try_get("code_hash")?,
        code_expires_at: r.try_get("code_expires_at")?,
        code_attempts: r.try_get("code_attempts")?,
        registration_hash: r.try_get("registration_hash")?,
        registration_expires_at: r.try_get("registration_expires_at")?,
        public_key: r.try_get("public_key")?,
        sealed_totp: r.try_get("sealed_totp")?,
        totp_last_step: r.try_get("totp_last_step")?,
        client_version: r.try_get("client_version")?,
        platform: r.try_get("platform")?,
        platform_version: r.try_get("platform_version")?,
        created_at: r.try_get("created_at")?,
        registered_at: r.try_get("registered_at")?,
        last_used_at: r.try_get("last_used_at")?,
        has_pin: r.try_get::<Option<String>, _>("pin_hash")?.is_some(),
    })
}

/// A device being added.
pub struct NewDevice<'a> {
    /// Device id.
    pub id: &'a str,
    /// Holder.
    pub user_id: &'a str,
    /// Name.
    pub name: &'a str,
    /// Device type.
    pub device_type: &'a str,
    /// Authenticator type.
    pub authenticator_type: &'a str,
    /// Hash of the emailed code.
    pub code_hash: &'a [u8],
    /// When the code expires.
    pub code_expires_at: i64,
    /// Now.
    pub created_at: i64,
}

/// Insert a device in state `pending_code`.
pub async fn insert(conn: &mut Conn, d: &NewDevice<'_>) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO devices (id, user_id, name, device_type, authenticator_type, state, code_hash, code_expires_at, \
         created_at) VALUES ($1, $2, $3, $4, $5, 'pending_code', $6, $7, $8)",
    )
    .bind(d.id)
    .bind(d.user_id)
    .bind(d.name)
    .bind(d.device_type)
    .bind(d.authenticator_type)
    .bind(d.code_hash)
    .bind(d.code_expires_at)
    .bind(d.created_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// A device by id.
pub async fn by_id(conn: &mut Conn, id: &str) -> Result<Option<DeviceRow>, StoreError> {
    let r = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM devices WHERE id = $1")))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    r.as_ref().map(row).transpose()
}

/// A device by the hash of its registration token.
pub async fn by_registration_hash(conn: &mut Conn, hash: &[u8]) -> Result<Option<DeviceRow>, StoreError> {
    let r = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM devices WHERE registration_hash = $1")))
        .bind(hash)
        .fetch_optional(conn)
        .await?;
    r.as_ref().map(row).transpose()
}

/// A holder's devices (every state), oldest first.
pub async fn for_user(conn: &mut Conn, user_id: &str) -> Result<Vec<DeviceRow>, StoreError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM devices WHERE user_id = $1 ORDER BY created_at, id"
    )))
    .bind(user_id)
    .fetch_all(conn)
    .await?;
    rows.iter().map(row).collect()
}

/// A holder's active devices, oldest first.
pub async fn active_for_user(conn: &mut Conn, user_id: &str) -> Result<Vec<DeviceRow>, StoreError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM devices WHERE user_id = $1 AND state = 'active' ORDER BY created_at, id"
    )))
    .bind(user_id)
    .fetch_all(conn)
    .await?;
    rows.iter().map(row).collect()
}

/// How many active devices a holder has.
pub async fn active_count(conn: &mut Conn, user_id: &str) -> Result<i64, StoreError> {
    let r = sqlx::query("SELECT COUNT(*) AS n FROM devices WHERE user_id = $1 AND state = 'active'")
        .bind(user_id)
        .fetch_one(conn)
        .await?;
    Ok(r.try_get("n")?)
}

/// `pending_code` → `pending_registration` with a registration token; false if the device was
/// not waiting for its code.
pub async fn start_registration(conn: &mut Conn, id: &str, hash: &[u8], expires_at: i64) -> Result<bool, StoreError> {
    let r = sqlx::query(
        "UPDATE devices SET state = 'pending_registration', code_hash = NULL, registration_hash = $2, \
         registration_expires_at = $3 WHERE id = $1 AND state = 'pending_code'",
    )
    .bind(id)
    .bind(hash)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// What the authenticator reports when it registers.
pub struct Registration<'a> {
    /// SEC1 public key.
    pub public_key: &'a [u8],
    /// Sealed TOTP secret.
    pub sealed_totp: &'a [u8],
    /// Client version.
    pub client_version: &'a str,
    /// Platform.
    pub platform: &'a str,
    /// Platform version.
    pub platform_version: &'a str,
    /// Argon2id hash of the device's PIN, when one was given at registration.
    pub pin_hash: Option<&'a str>,
    /// Now.
    pub at: i64,
}

/// `pending_registration` → `active` (the token is spent: its hash stays, so presenting it again
/// is told apart from an unknown token); false if it was not pending.
pub async fn activate(conn: &mut Conn, id: &str, reg: &Registration<'_>) -> Result<bool, StoreError> {
    let r = sqlx::query(
        "UPDATE devices SET state = 'active', registration_expires_at = NULL, \
         public_key = $2, sealed_totp = $3, client_version = $4, platform = $5, platform_version = $6, \
         registered_at = $7, last_used_at = $7, pin_hash = $8, pin_failures = 0 \
         WHERE id = $1 AND state = 'pending_registration'",
    )
    .bind(id)
    .bind(reg.public_key)
    .bind(reg.sealed_totp)
    .bind(reg.client_version)
    .bind(reg.platform)
    .bind(reg.platform_version)
    .bind(reg.at)
    .bind(reg.pin_hash)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Serialise changes to a holder's devices until the transaction ends, so that two concurrent
/// registrations cannot both pass the active-device limit. PostgreSQL locks the user row; SQLite
/// write transactions (`BEGIN IMMEDIATE`) are serialised already.
pub async fn lock_holder(conn: &mut Conn, user_id: &str) -> Result<(), StoreError> {
    if Backend::of(conn) == Backend::Postgres {
        sqlx::query("SELECT id FROM users WHERE id = $1 FOR UPDATE").bind(user_id).fetch_optional(conn).await?;
    }
    Ok(())
}

/// Delete a holder's device; false if there was none.
pub async fn delete(conn: &mut Conn, user_id: &str, id: &str) -> Result<bool, StoreError> {
    let r =
        sqlx::query("DELETE FROM devices WHERE id = $1 AND user_id = $2").bind(id).bind(user_id).execute(conn).await?;
    Ok(r.rows_affected() == 1)
}

/// Record a use of the device.
pub async fn touch(conn: &mut Conn, id: &str, at: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE devices SET last_used_at = $2 WHERE id = $1").bind(id).bind(at).execute(conn).await?;
    Ok(())
}

/// Accept TOTP `step` from a device only if no later or equal step was accepted before (each code
/// works once); atomic, so two concurrent uses of one code cannot both pass.
pub async fn use_totp_step(conn: &mut Conn, id: &str, step: i64, at: i64) -> Result<bool, StoreError> {
    let r = sqlx::query(
        "UPDATE devices SET totp_last_step = $2, last_used_at = $3 WHERE id = $1 AND state = 'active' \
         AND totp_last_step < $2",
    )
    .bind(id)
    .bind(step)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Spend a device token's one-time id; false when it was already used (a replay).
pub async fn spend_jti(conn: &mut Conn, jti: &str, device_id: &str, expires_at: i64) -> Result<bool, StoreError> {
    let r = sqlx::query(
        "INSERT INTO device_token_jtis (jti, device_id, expires_at) VALUES ($1, $2, $3) ON CONFLICT (jti) DO NOTHING",
    )
    .bind(jti)
    .bind(device_id)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Spend a device token's one-time id only if the device is still active with `public_key` and
/// still has (or has not) a PIN — one statement that authenticates a request of a device whose key
/// the node knows. False when the id was spent before or the device changed (the caller then
/// checks in full).
pub async fn spend_jti_if_current(
    conn: &mut Conn,
    jti: &str,
    device_id: &str,
    public_key: &[u8],
    has_pin: bool,
    expires_at: i64,
) -> Result<bool, StoreError> {
    let r = sqlx::query(
        "INSERT INTO device_token_jtis (jti, device_id, expires_at) SELECT $1, id, $3 FROM devices \
         WHERE id = $2 AND state = 'active' AND public_key = $4 AND (pin_hash IS NOT NULL) = $5 \
         ON CONFLICT (jti) DO NOTHING",
    )
    .bind(jti)
    .bind(device_id)
    .bind(expires_at)
    .bind(public_key)
    .bind(has_pin)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Forget one-time ids of tokens that expired before `before`.
pub async fn prune_jtis(conn: &mut Conn, before: i64) -> Result<u64, StoreError> {
    let r = sqlx::query("DELETE FROM device_token_jtis WHERE expires_at < $1").bind(before).execute(conn).await?;
    Ok(r.rows_affected())
}
