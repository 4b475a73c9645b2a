//! API tokens of staff accounts, stored only as SHA-256 hashes.

use sqlx::Row;

use crate::staff::StaffRow;
use crate::{Conn, StoreError};

/// Store a new token hash.
pub async fn insert(conn: &mut Conn, id: &str, staff_id: &str, token_hash: &[u8], at: i64) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO api_tokens (id, staff_id, token_hash, created_at) VALUES ($1, $2, $3, $4)")
        .bind(id)
        .bind(staff_id)
        .bind(token_hash.to_vec())
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

/// The staff account owning an unrevoked token with this hash, with the stored hash (for the
/// caller's constant-time comparison) and the token id.
pub async fn find(conn: &mut Conn, token_hash: &[u8]) -> Result<Option<(StaffRow, Vec<u8>, String)>, StoreError> {
    let row = sqlx::query(
        "SELECT s.id, s.email, s.display_name, s.role, s.operator, t.token_hash, t.id AS token_id FROM api_tokens t \
         JOIN staff s ON s.id = t.staff_id WHERE t.token_hash = $1 AND t.revoked_at IS NULL",
    )
    .bind(token_hash.to_vec())
    .fetch_optional(conn)
    .await?;
    match row {
        Some(r) => Ok(Some((crate::staff::row(&r)?, r.try_get("token_hash")?, r.try_get("token_id")?))),
        None => Ok(None),
    }
}

/// Record use of a token (at most once a minute, to keep reads cheap).
pub async fn touch(conn: &mut Conn, token_id: &str, at: i64) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE api_tokens SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $3)",
    )
    .bind(token_id)
    .bind(at)
    .bind(at - 60)
    .execute(conn)
    .await?;
    Ok(())
}
