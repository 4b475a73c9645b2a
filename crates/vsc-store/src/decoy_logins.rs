//! Decoy logins: what a passwordless login request for an email that cannot log in gets, so that
//! the answer (a login id that stays pending, then expires) does not tell which emails have cards.

use sqlx::Row;

use crate::{Conn, StoreError};

/// A decoy login as stored.
#[derive(Debug, Clone)]
pub struct DecoyLogin {
    /// SHA-256 of the login id.
    pub token_hash: Vec<u8>,
    /// Wrong codes answered so far.
    pub code_attempts: i64,
    /// When it expires.
    pub expires_at: i64,
}

/// Record a decoy (and drop those expired for a day).
pub async fn insert(
    conn: &mut Conn,
    token_hash: &[u8],
    email_hash: &[u8],
    at: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM decoy_logins WHERE expires_at < $1").bind(at - 86_400).execute(&mut *conn).await?;
    sqlx::query("INSERT INTO decoy_logins (token_hash, email_hash, created_at, expires_at) VALUES ($1, $2, $3, $4)")
        .bind(token_hash.to_vec())
        .bind(email_hash.to_vec())
        .bind(at)
        .bind(expires_at)
        .execute(conn)
        .await?;
    Ok(())
}

/// Decoys for this email since `since` (they count like unanswered pushes).
pub async fn recent(conn: &mut Conn, email_hash: &[u8], since: i64) -> Result<i64, StoreError> {
    let r = sqlx::query("SELECT COUNT(*) AS n FROM decoy_logins WHERE email_hash = $1 AND created_at >= $2")
        .bind(email_hash.to_vec())
        .bind(since)
        .fetch_one(conn)
        .await?;
    Ok(r.try_get("n")?)
}

/// The decoy with this token hash.
pub async fn by_token_hash(conn: &mut Conn, token_hash: &[u8]) -> Result<Option<DecoyLogin>, StoreError> {
    let r = sqlx::query("SELECT token_hash, code_attempts, expires_at FROM decoy_logins WHERE token_hash = $1")
        .bind(token_hash.to_vec())
        .fetch_optional(conn)
        .await?;
    r.map(|r| {
        Ok(DecoyLogin {
            token_hash: r.try_get("token_hash")?,
            code_attempts: r.try_get("code_attempts")?,
            expires_at: r.try_get("expires_at")?,
        })
    })
    .transpose()
}

/// Count a code answered to a decoy (while fewer than `max`); the new count, or `None`.
pub async fn count_code(conn: &mut Conn, token_hash: &[u8], max: i64) -> Result<Option<i64>, StoreError> {
    let r = sqlx::query(
        "UPDATE decoy_logins SET code_attempts = code_attempts + 1 WHERE token_hash = $1 AND code_attempts < $2 \
         RETURNING code_attempts",
    )
    .bind(token_hash.to_vec())
    .bind(max)
    .fetch_optional(conn)
    .await?;
    r.map(|r| Ok(r.try_get("code_attempts")?)).transpose()
}
