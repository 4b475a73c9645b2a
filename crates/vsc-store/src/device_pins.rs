//! Authenticator PINs (`devices.pin_hash`, `devices.pin_failures`) and RA-issued PIN-reset
//! tokens (`device_pin_resets`): single-use, stored as SHA-256, one live token per device.

use sqlx::Row;

use crate::{Conn, StoreError};

/// Wrong PINs that lock a device's PIN until an RA PIN reset.
pub const PIN_MAX_FAILURES: i64 = 5;

/// A device's PIN state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinState {
    /// The Argon2id hash of the PIN, when one is set.
    pub pin_hash: Option<String>,
    /// Consecutive wrong PINs.
    pub failures: i64,
}

impl PinState {
    /// Whether a PIN is set.
    pub fn is_set(&self) -> bool {
        self.pin_hash.is_some()
    }

    /// Whether wrong PINs have locked it.
    pub fn is_locked(&self) -> bool {
        self.pin_hash.is_some() && self.failures >= PIN_MAX_FAILURES
    }
}

/// A device's PIN state; `None` for an unknown device.
pub async fn state(conn: &mut Conn, device_id: &str) -> Result<Option<PinState>, StoreError> {
    let r = sqlx::query("SELECT pin_hash, pin_failures FROM devices WHERE id = $1")
        .bind(device_id)
        .fetch_optional(conn)
        .await?;
    r.map(|r| Ok(PinState { pin_hash: r.try_get("pin_hash")?, failures: r.try_get("pin_failures")? })).transpose()
}

/// Reserve one PIN check before running it (counted as wrong up front) → (the count, the
/// stored hash); `None` when the device has no PIN or it is locked. Atomic, so concurrent wrong
/// PINs never exceed [`PIN_MAX_FAILURES`].
pub async fn reserve_attempt(conn: &mut Conn, device_id: &str) -> Result<Option<(i64, String)>, StoreError> {
    let r = sqlx::query(
        "UPDATE devices SET pin_failures = pin_failures + 1 WHERE id = $1 AND pin_hash IS NOT NULL \
         AND pin_failures < $2 RETURNING pin_failures, pin_hash",
    )
    .bind(device_id)
    .bind(PIN_MAX_FAILURES)
    .fetch_optional(conn)
    .await?;
    r.map(|r| Ok((r.try_get("pin_failures")?, r.try_get("pin_hash")?))).transpose()
}

/// A right PIN: clear the count.
pub async fn clear_failures(conn: &mut Conn, device_id: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE devices SET pin_failures = 0 WHERE id = $1 AND pin_failures <> 0")
        .bind(device_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Set a device's PIN hash and clear its count. With `expected`, only while the stored hash is
/// still that one (`None`: no PIN yet); false when it changed meanwhile.
pub async fn set_pin(
    conn: &mut Conn,
    device_id: &str,
    pin_hash: &str,
    expected: Option<&str>,
) -> Result<bool, StoreError> {
    let done = match expected {
        Some(old) => {
            sqlx::query("UPDATE devices SET pin_hash = $2, pin_failures = 0 WHERE id = $1 AND pin_hash = $3")
                .bind(device_id)
                .bind(pin_hash)
                .bind(old)
                .execute(conn)
                .await?
        }
        None => {
            sqlx::query("UPDATE devices SET pin_hash = $2, pin_failures = 0 WHERE id = $1 AND pin_hash IS NULL")
                .bind(device_id)
                .bind(pin_hash)
                .execute(conn)
                .await?
        }
    };
    Ok(done.rows_affected() == 1)
}

/// Set a device's PIN hash and clear its count whatever was there (after an RA PIN reset).
pub async fn replace_pin(conn: &mut Conn, device_id: &str, pin_hash: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE devices SET pin_hash = $2, pin_failures = 0 WHERE id = $1")
        .bind(device_id)
        .bind(pin_hash)
        .execute(conn)
        .await?;
    Ok(())
}

/// A new PIN-reset token.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPinReset<'a> {
    /// Id.
    pub id: &'a str,
    /// Device.
    pub device_id: &'a str,
    /// SHA-256 of the token.
    pub token_hash: &'a [u8],
    /// Who issued it (the audit actor).
    pub issued_by: &'a str,
    /// Created.
    pub at: i64,
    /// Expires.
    pub expires_at: i64,
}

/// Void the device's live PIN-reset tokens and record a new one.
pub async fn replace_reset(conn: &mut Conn, n: &NewPinReset<'_>) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE device_pin_resets SET voided_at = $2 WHERE device_id = $1 AND used_at IS NULL AND voided_at IS NULL",
    )
    .bind(n.device_id)
    .bind(n.at)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO device_pin_resets (id, device_id, token_hash, issued_by, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(n.id)
    .bind(n.device_id)
    .bind(n.token_hash.to_vec())
    .bind(n.issued_by)
    .bind(n.at)
    .bind(n.expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// A PIN-reset token as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct PinResetRow {
    /// Id.
    pub id: String,
    /// Device.
    pub device_id: String,
    /// SHA-256 of the token.
    pub token_hash: Vec<u8>,
    /// Expires.
    pub expires_at: i64,
    /// Used.
    pub used_at: Option<i64>,
    /// Voided by a newer token.
    pub voided_at: Option<i64>,
}

/// A PIN-reset token by its hash.
pub async fn reset_by_token_hash(conn: &mut Conn, token_hash: &[u8]) -> Result<Option<PinResetRow>, StoreError> {
    let r = sqlx::query(
        "SELECT id, device_id, token_hash, expires_at, used_at, voided_at FROM device_pin_resets WHERE token_hash = $1",
    )
    .bind(token_hash.to_vec())
    .fetch_optional(conn)
    .await?;
    r.map(|r| {
        Ok(PinResetRow {
            id: r.try_get("id")?,
            device_id: r.try_get("device_id")?,
            token_hash: r.try_get("token_hash")?,
            expires_at: r.try_get("expires_at")?,
            used_at: r.try_get("used_at")?,
            voided_at: r.try_get("voided_at")?,
        })
    })
    .transpose()
}

/// Use a live PIN-reset token of `device_id` once; false when it was used, voided or expired
/// meanwhile.
pub async fn use_reset(conn: &mut Conn, id: &str, device_id: &str, at: i64) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE device_pin_resets SET used_at = $3 WHERE id = $1 AND device_id = $2 AND used_at IS NULL \
         AND voided_at IS NULL AND expires_at > $3",
    )
    .bind(id)
    .bind(device_id)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Void a holder's live forgotten-passcode links (the passcode was changed another way).
pub async fn void_passcode_links(conn: &mut Conn, user_id: &str, at: i64) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "UPDATE passcode_resets SET voided_at = $2 WHERE user_id = $1 AND used_at IS NULL AND voided_at IS NULL",
    )
    .bind(user_id)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}
