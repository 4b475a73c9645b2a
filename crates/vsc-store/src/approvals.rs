//! Per-signature approvals: a "Sign document X?" push to the holder's authenticators, approved
//! once and spent once, for exactly one session, key and digest.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Conn, StoreError};

/// A signature approval.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalRow {
    /// Id (also the challenge id the devices see).
    pub id: String,
    /// The card session that asked.
    pub session_id: String,
    /// Holder.
    pub user_id: String,
    /// Card.
    pub card_id: String,
    /// `authentication` / `signing`.
    pub key_purpose: String,
    /// `raw` / `cades`.
    pub operation: String,
    /// SHA-256 of the document, lower-case hex.
    pub digest_hex: String,
    /// Document name shown on the authenticator.
    pub document: String,
    /// Random nonce, part of the device's signed answer.
    pub nonce: String,
    /// Number to match.
    pub number: Option<i64>,
    /// Numbers the device offers, comma-separated.
    pub choices: Option<String>,
    /// Requesting client.
    pub client: String,
    /// Requesting IP.
    pub ip: String,
    /// `pending` / `approved` / `denied`.
    pub state: String,
    /// Device that answered.
    pub decided_by: Option<String>,
    /// Created.
    pub created_at: i64,
    /// Expires.
    pub expires_at: i64,
    /// Decided.
    pub decided_at: Option<i64>,
    /// Spent by the signature it approved.
    pub used_at: Option<i64>,
}

const COLUMNS: &str = "id, session_id, user_id, card_id, key_purpose, operation, digest_hex, document, nonce, number, \
                       choices, client, ip, state, decided_by, created_at, expires_at, decided_at, used_at";

fn row(r: &AnyRow) -> Result<ApprovalRow, StoreError> {
    Ok(ApprovalRow {
        id: r.try_get("id")?,
        session_id: r.try_get("session_id")?,
        user_id: r.try_get("user_id")?,
        card_id: r.try_get("card_id")?,
        key_purpose: r.try_get("key_purpose")?,
        operation: r.try_get("operation")?,
        digest_hex: r.try_get("digest_hex")?,
        document: r.try_get("document")?,
        nonce: r.try_get("nonce")?,
        number: r.try_get("number")?,
        choices: r.try_get("choices")?,
        client: r.try_get("client")?,
        ip: r.try_get("ip")?,
        state: r.try_get("state")?,
        decided_by: r.try_get("decided_by")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        decided_at: r.try_get("decided_at")?,
        used_at: r.try_get("used_at")?,
    })
}

/// Store a new (pending) approval.
pub async fn insert(conn: &mut Conn, a: &ApprovalRow) -> Result<(), StoreError> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO signature_approvals ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
         $14, $15, $16, $17, $18, $19)"
    )))
    .bind(a.id.as_str())
    .bind(a.session_id.as_str())
    .bind(a.user_id.as_str())
    .bind(a.card_id.as_str())
    .bind(a.key_purpose.as_str())
    .bind(a.operation.as_str())
    .bind(a.digest_hex.as_str())
    .bind(a.document.as_str())
    .bind(a.nonce.as_str())
    .bind(a.number)
    .bind(a.choices.as_deref())
    .bind(a.client.as_str())
    .bind(a.ip.as_str())
    .bind(a.state.as_str())
    .bind(a.decided_by.as_deref())
    .bind(a.created_at)
    .bind(a.expires_at)
    .bind(a.decided_at)
    .bind(a.used_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// An approval by id.
pub async fn by_id(conn: &mut Conn, id: &str) -> Result<Option<ApprovalRow>, StoreError> {
    sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM signature_approvals WHERE id = $1")))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(row)
        .transpose()
}

/// Record a device's answer to a pending, unexpired approval; returns whether this call decided it.
pub async fn decide(conn: &mut Conn, id: &str, state: &str, device_id: &str, now: i64) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE signature_approvals SET state = $2, decided_by = $3, decided_at = $4 \
         WHERE id = $1 AND state = 'pending' AND expires_at > $4",
    )
    .bind(id)
    .bind(state)
    .bind(device_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The signature an approval is spent on: it must be the one the approval was asked for.
#[derive(Debug, Clone, Copy)]
pub struct SpentFor<'a> {
    /// The card session signing.
    pub session_id: &'a str,
    /// `authentication` or `signing`.
    pub key_purpose: &'a str,
    /// `raw` or `cades`: a raw-signature approval never releases a CAdES signature, nor the reverse.
    pub operation: &'a str,
    /// SHA-256 of the document, hex.
    pub digest_hex: &'a str,
    /// Only approvals decided after this (Unix seconds).
    pub decided_after: i64,
}

/// Spend an approved approval for the signature it was asked for: same session, key, operation
/// and digest, not used before, approved after `decided_after`. Returns whether this call spent it.
pub async fn spend(conn: &mut Conn, id: &str, signature: &SpentFor<'_>, now: i64) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE signature_approvals SET used_at = $6 WHERE id = $1 AND session_id = $2 AND key_purpose = $3 \
         AND digest_hex = $4 AND operation = $7 AND state = 'approved' AND used_at IS NULL AND decided_at > $5",
    )
    .bind(id)
    .bind(signature.session_id)
    .bind(signature.key_purpose)
    .bind(signature.digest_hex)
    .bind(signature.decided_after)
    .bind(now)
    .bind(signature.operation)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Unanswered approvals of a holder since `since` (throttling).
pub async fn unanswered_since(conn: &mut Conn, user_id: &str, since: i64) -> Result<i64, StoreError> {
    let r = sqlx::query(
        "SELECT COUNT(*) AS n FROM signature_approvals WHERE user_id = $1 AND state = 'pending' AND created_at >= $2",
    )
    .bind(user_id)
    .bind(since)
    .fetch_one(conn)
    .await?;
    Ok(r.try_get("n")?)
}
