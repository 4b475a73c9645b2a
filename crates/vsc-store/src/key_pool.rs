//! Pre-generated key pairs, sealed like card keys, taken by issuance so that slow key types (RSA)
//! do not slow it down.

use sqlx::Row;

use crate::{Backend, Conn, StoreError};

/// Add a sealed key to the pool.
pub async fn insert(conn: &mut Conn, id: &str, algorithm: &str, sealed: &[u8], at: i64) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO key_pool (id, algorithm, sealed_private_key, created_at) VALUES ($1, $2, $3, $4)")
        .bind(id)
        .bind(algorithm)
        .bind(sealed.to_vec())
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

/// Remove and return the oldest pooled key of `algorithm` (id, sealed bytes). On PostgreSQL,
/// concurrent takers skip each other's locked rows; SQLite transactions are already serialised.
pub async fn take(conn: &mut Conn, algorithm: &str) -> Result<Option<(String, Vec<u8>)>, StoreError> {
    let sql = match Backend::of(conn) {
        Backend::Sqlite => {
            "DELETE FROM key_pool WHERE id = (SELECT id FROM key_pool WHERE algorithm = $1 ORDER BY created_at, id LIMIT 1) \
             RETURNING id, sealed_private_key"
        }
        Backend::Postgres => {
            "DELETE FROM key_pool WHERE id = (SELECT id FROM key_pool WHERE algorithm = $1 ORDER BY created_at, id LIMIT 1 \
             FOR UPDATE SKIP LOCKED) RETURNING id, sealed_private_key"
        }
    };
    let row = sqlx::query(sql).bind(algorithm).fetch_optional(conn).await?;
    match row {
        Some(r) => Ok(Some((r.try_get("id")?, r.try_get("sealed_private_key")?))),
        None => Ok(None),
    }
}

/// How many keys of `algorithm` are pooled.
pub async fn count(conn: &mut Conn, algorithm: &str) -> Result<i64, StoreError> {
    Ok(sqlx::query("SELECT COUNT(*) AS n FROM key_pool WHERE algorithm = $1")
        .bind(algorithm)
        .fetch_one(conn)
        .await?
        .try_get("n")?)
}
