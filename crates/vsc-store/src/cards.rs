//! Cards, their roles and their keys (sealed) and certificates.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Conn, StoreError};

/// A card to insert.
#[derive(Debug, Clone)]
pub struct NewCard<'a> {
    /// UUID.
    pub id: &'a str,
    /// Serial.
    pub serial: &'a str,
    /// Holder.
    pub user_id: &'a str,
    /// `v1` / `v2`.
    pub card_type: &'a str,
    /// Initial state.
    pub state: &'a str,
    /// `p256` / `rsa2048`.
    pub key_algorithm: &'a str,
    /// Issue time.
    pub issued_at: i64,
    /// Expiry time.
    pub expires_at: i64,
}

/// A key of a card with its certificate. `sealed_private_key` is envelope-encrypted.
#[derive(Debug, Clone)]
pub struct CardKeyRow {
    /// Card id.
    pub card_id: String,
    /// `authentication` / `signing`.
    pub purpose: String,
    /// Algorithm.
    pub algorithm: String,
    /// SubjectPublicKeyInfo DER.
    pub public_key_der: Vec<u8>,
    /// Sealed PKCS#8.
    pub sealed_private_key: Vec<u8>,
    /// Certificate DER.
    pub cert_der: Vec<u8>,
    /// Certificate serial (hex).
    pub cert_serial: String,
    /// Certificate notBefore.
    pub not_before: i64,
    /// Certificate notAfter.
    pub not_after: i64,
}

/// A stored card.
#[derive(Debug, Clone, PartialEq)]
pub struct CardRow {
    /// UUID.
    pub id: String,
    /// Serial.
    pub serial: String,
    /// Holder.
    pub user_id: String,
    /// Holder's organisation id.
    pub org_id: String,
    /// `v1` / `v2`.
    pub card_type: String,
    /// Stored state.
    pub state: String,
    /// Key algorithm.
    pub key_algorithm: String,
    /// Issue time.
    pub issued_at: i64,
    /// Expiry time.
    pub expires_at: i64,
    /// Revocation time.
    pub revoked_at: Option<i64>,
    /// Revocation reason.
    pub revocation_reason: Option<String>,
    /// When the card was suspended (while it is).
    pub suspended_at: Option<i64>,
    /// Why it was suspended (while it is).
    pub suspended_reason: Option<String>,
    /// The state resuming restores, `active` or `locked` (while it is suspended).
    pub suspended_from: Option<String>,
}

/// Insert a card row.
pub async fn insert(conn: &mut Conn, c: &NewCard<'_>) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO cards (id, serial, user_id, card_type, state, key_algorithm, issued_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(c.id)
    .bind(c.serial)
    .bind(c.user_id)
    .bind(c.card_type)
    .bind(c.state)
    .bind(c.key_algorithm)
    .bind(c.issued_at)
    .bind(c.expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Put a catalogue role on a card; `false` when the role is not in the catalogue.
pub async fn add_role(conn: &mut Conn, card_id: &str, role: &str) -> Result<bool, StoreError> {
    let done = sqlx::query("INSERT INTO card_roles (card_id, role_code) SELECT $1, code FROM roles WHERE code = $2")
        .bind(card_id)
        .bind(role)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Store a card key with its certificate.
pub async fn insert_key(conn: &mut Conn, k: &CardKeyRow) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO card_keys (card_id, purpose, algorithm, public_key_der, sealed_private_key, cert_der, cert_serial, \
         not_before, not_after) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(k.card_id.as_str())
    .bind(k.purpose.as_str())
    .bind(k.algorithm.as_str())
    .bind(k.public_key_der.clone())
    .bind(k.sealed_private_key.clone())
    .bind(k.cert_der.clone())
    .bind(k.cert_serial.as_str())
    .bind(k.not_before)
    .bind(k.not_after)
    .execute(conn)
    .await?;
    Ok(())
}

const SELECT: &str = "SELECT c.id, c.serial, c.user_id, u.org_id, c.card_type, c.state, c.key_algorithm, c.issued_at, \
                      c.expires_at, c.revoked_at, c.revocation_reason, c.suspended_at, c.suspended_reason, \
                      c.suspended_from FROM cards c JOIN users u ON u.id = c.user_id";

fn row(r: &AnyRow) -> Result<CardRow, StoreError> {
    Ok(CardRow {
        id: r.try_get("id")?,
        serial: r.try_get("serial")?,
        user_id: r.try_get("user_id")?,
        org_id: r.try_get("org_id")?,
        card_type: r.try_get("card_type")?,
        state: r.try_get("state")?,
        key_algorithm: r.try_get("key_algorithm")?,
        issued_at: r.try_get("issued_at")?,
        expires_at: r.try_get("expires_at")?,
        revoked_at: r.try_get("revoked_at")?,
        revocation_reason: r.try_get("revocation_reason")?,
        suspended_at: r.try_get("suspended_at")?,
        suspended_reason: r.try_get("suspended_reason")?,
        suspended_from: r.try_get("suspended_from")?,
    })
}

/// Find a card by serial.
pub async fn by_serial(conn: &mut Conn, serial: &str) -> Result<Option<CardRow>, StoreError> {
    let q = sqlx::AssertSqlSafe(format!("{SELECT} WHERE c.serial = $1"));
    sqlx::query(q).bind(serial).fetch_optional(conn).await?.as_ref().map(row).transpose()
}

/// A user's cards, newest first.
pub async fn for_user(conn: &mut Conn, user_id: &str) -> Result<Vec<CardRow>, StoreError> {
    let q = sqlx::AssertSqlSafe(format!("{SELECT} WHERE c.user_id = $1 ORDER BY c.issued_at DESC, c.serial"));
    sqlx::query(q).bind(user_id).fetch_all(conn).await?.iter().map(row).collect()
}

/// Whether a serial is taken.
pub async fn serial_taken(conn: &mut Conn, serial: &str) -> Result<bool, StoreError> {
    Ok(sqlx::query("SELECT 1 FROM cards WHERE serial = $1").bind(serial).fetch_optional(conn).await?.is_some())
}

/// The role codes on a card, sorted.
pub async fn roles(conn: &mut Conn, card_id: &str) -> Result<Vec<String>, StoreError> {
    let rows = sqlx::query("SELECT role_code FROM card_roles WHERE card_id = $1 ORDER BY role_code")
        .bind(card_id)
        .fetch_all(conn)
        .await?;
    rows.iter().map(|r| Ok(r.try_get("role_code")?)).collect()
}

/// A card's roles with their catalogue names, by code.
pub async fn roles_named(conn: &mut Conn, card_id: &str) -> Result<Vec<(String, String)>, StoreError> {
    let rows = sqlx::query(
        "SELECT cr.role_code, COALESCE(r.name, '') AS name FROM card_roles cr LEFT JOIN roles r ON r.code = cr.role_code \
         WHERE cr.card_id = $1 ORDER BY cr.role_code",
    )
    .bind(card_id)
    .fetch_all(conn)
    .await?;
    rows.iter().map(|r| Ok((r.try_get("role_code")?, r.try_get("name")?))).collect()
}

/// The keys and certificates of a card (authentication first).
pub async fn keys(conn: &mut Conn, card_id: &str) -> Result<Vec<CardKeyRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT card_id, purpose, algorithm, public_key_der, sealed_private_key, cert_der, cert_serial, not_before, \
         not_after FROM card_keys WHERE card_id = $1 ORDER BY purpose",
    )
    .bind(card_id)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(CardKeyRow {
                card_id: r.try_get("card_id")?,
                purpose: r.try_get("purpose")?,
                algorithm: r.try_get("algorithm")?,
                public_key_der: r.try_get("public_key_der")?,
                sealed_private_key: r.try_get("sealed_private_key")?,
                cert_der: r.try_get("cert_der")?,
                cert_serial: r.try_get("cert_serial")?,
                not_before: r.try_get("not_before")?,
                not_after: r.try_get("not_after")?,
            })
        })
        .collect()
}

/// Mark a card revoked unless it already is; returns whether this call revoked it.
pub async fn revoke(conn: &mut Conn, card_id: &str, at: i64, reason: Option<&str>) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE cards SET state = 'revoked', revoked_at = $2, revocation_reason = $3, suspended_at = NULL, \
         suspended_reason = NULL, suspended_from = NULL WHERE id = $1 AND state <> 'revoked'",
    )
    .bind(card_id)
    .bind(at)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Number of cards (for tests and benchmarks).
pub async fn count(conn: &mut Conn) -> Result<i64, StoreError> {
    Ok(sqlx::query("SELECT COUNT(*) AS n FROM cards").fetch_one(conn).await?.try_get("n")?)
}

/// Number of stored card keys.
pub async fn key_count(conn: &mut Conn) -> Result<i64, StoreError> {
    Ok(sqlx::query("SELECT COUNT(*) AS n FROM card_keys").fetch_one(conn).await?.try_get("n")?)
}

/// Move a card from `from` to `to`; returns whether it was in `from`.
pub async fn set_state(conn: &mut Conn, card_id: &str, from: &str, to: &str) -> Result<bool, StoreError> {
    let done = sqlx::query("UPDATE cards SET state = $3 WHERE id = $1 AND state = $2")
        .bind(card_id)
        .bind(from)
        .bind(to)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Find a card by id.
pub async fn by_id(conn: &mut Conn, id: &str) -> Result<Option<CardRow>, StoreError> {
    let q = sqlx::AssertSqlSafe(format!("{SELECT} WHERE c.id = $1"));
    sqlx::query(q).bind(id).fetch_optional(conn).await?.as_ref().map(row).transpose()
}

/// Lock every active card of a holder; returns the serials locked.
pub async fn lock_active_for_user(conn: &mut Conn, user_id: &str) -> Result<Vec<String>, StoreError> {
    let rows =
        sqlx::query("UPDATE cards SET state = 'locked' WHERE user_id = $1 AND state = 'active' RETURNING serial")
            .bind(user_id)
            .fetch_all(conn)
            .await?;
    rows.iter().map(|r| r.try_get("serial").map_err(StoreError::from)).collect()
}

/// Replace a card key and its certificate (renewal); returns whether the card had that key.
pub async fn replace_key(conn: &mut Conn, k: &CardKeyRow) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE card_keys SET algorithm = $3, public_key_der = $4, sealed_private_key = $5, cert_der = $6, \
         cert_serial = $7, not_before = $8, not_after = $9 WHERE card_id = $1 AND purpose = $2",
    )
    .bind(k.card_id.as_str())
    .bind(k.purpose.as_str())
    .bind(k.algorithm.as_str())
    .bind(k.public_key_der.clone())
    .bind(k.sealed_private_key.clone())
    .bind(k.cert_der.clone())
    .bind(k.cert_serial.as_str())
    .bind(k.not_before)
    .bind(k.not_after)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Set a card's expiry (renewal).
pub async fn set_expiry(conn: &mut Conn, card_id: &str, expires_at: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE cards SET expires_at = $2 WHERE id = $1").bind(card_id).bind(expires_at).execute(conn).await?;
    Ok(())
}

/// Suspend an active or locked card, remembering its state for resuming; returns that state, or
/// `None` when the card was in another state.
pub async fn suspend(conn: &mut Conn, card_id: &str, at: i64, reason: &str) -> Result<Option<String>, StoreError> {
    let r = sqlx::query(
        "UPDATE cards SET state = 'suspended', suspended_from = state, suspended_at = $2, suspended_reason = $3 \
         WHERE id = $1 AND state IN ('active', 'locked') RETURNING suspended_from",
    )
    .bind(card_id)
    .bind(at)
    .bind(reason)
    .fetch_optional(conn)
    .await?;
    r.map(|r| r.try_get("suspended_from").map_err(StoreError::from)).transpose()
}

/// Resume a suspended card into the state it was suspended from; returns that state, or `None`
/// when the card was not suspended.
pub async fn resume(conn: &mut Conn, card_id: &str) -> Result<Option<String>, StoreError> {
    let r = sqlx::query(
        "UPDATE cards SET state = suspended_from, suspended_from = NULL, suspended_at = NULL, suspended_reason = NULL \
         WHERE id = $1 AND state = 'suspended' RETURNING state",
    )
    .bind(card_id)
    .fetch_optional(conn)
    .await?;
    r.map(|r| r.try_get("state").map_err(StoreError::from)).transpose()
}
