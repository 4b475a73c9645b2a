//! Relying applications (registered by the operator, authenticated by an API key) and the
//! single-use tickets a card session issues for one of them.

use sqlx::Row;

use crate::{Conn, StoreError};

/// A relying app.
#[derive(Debug, Clone, PartialEq)]
pub struct AppRow {
    /// Id.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Hash of its API key.
    pub key_hash: Vec<u8>,
}

/// Register an app.
pub async fn insert(conn: &mut Conn, id: &str, name: &str, key_hash: &[u8], at: i64) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO relying_apps (id, name, key_hash, created_at) VALUES ($1, $2, $3, $4)")
        .bind(id)
        .bind(name)
        .bind(key_hash)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

/// An active app by name.
pub async fn by_name(conn: &mut Conn, name: &str) -> Result<Option<AppRow>, StoreError> {
    let r = sqlx::query("SELECT id, name, key_hash FROM relying_apps WHERE name = $1 AND revoked_at IS NULL")
        .bind(name)
        .fetch_optional(conn)
        .await?;
    r.map(|r| Ok(AppRow { id: r.try_get("id")?, name: r.try_get("name")?, key_hash: r.try_get("key_hash")? }))
        .transpose()
}

/// An active app by the hash of its key.
pub async fn by_key_hash(conn: &mut Conn, key_hash: &[u8]) -> Result<Option<AppRow>, StoreError> {
    let r = sqlx::query("SELECT id, name, key_hash FROM relying_apps WHERE key_hash = $1 AND revoked_at IS NULL")
        .bind(key_hash)
        .fetch_optional(conn)
        .await?;
    r.map(|r| Ok(AppRow { id: r.try_get("id")?, name: r.try_get("name")?, key_hash: r.try_get("key_hash")? }))
        .transpose()
}

/// Issue a ticket.
pub async fn insert_ticket(
    conn: &mut Conn,
    hash: &[u8],
    session_id: &str,
    app_id: &str,
    at: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO tickets (token_hash, session_id, app_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(hash)
    .bind(session_id)
    .bind(app_id)
    .bind(at)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// A ticket: (session id, app id, expires at, used at).
pub async fn ticket(conn: &mut Conn, hash: &[u8]) -> Result<Option<(String, String, i64, Option<i64>)>, StoreError> {
    let r = sqlx::query("SELECT session_id, app_id, expires_at, used_at FROM tickets WHERE token_hash = $1")
        .bind(hash)
        .fetch_optional(conn)
        .await?;
    r.map(|r| Ok((r.try_get("session_id")?, r.try_get("app_id")?, r.try_get("expires_at")?, r.try_get("used_at")?)))
        .transpose()
}

/// Spend a ticket; false when it was used already.
pub async fn use_ticket(conn: &mut Conn, hash: &[u8], at: i64) -> Result<bool, StoreError> {
    let r = sqlx::query("UPDATE tickets SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL")
        .bind(hash)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(r.rows_affected() == 1)
}
