//! Installation-wide settings (the KEK id, the CA's name, the key-store canary).

use sqlx::Row;

use crate::{Conn, StoreError};

/// Read a setting.
pub async fn get(conn: &mut Conn, key: &str) -> Result<Option<String>, StoreError> {
    let row = sqlx::query("SELECT value FROM system_settings WHERE key = $1").bind(key).fetch_optional(conn).await?;
    Ok(match row {
        Some(r) => Some(r.try_get("value")?),
        None => None,
    })
}

/// Insert a setting unless it exists; returns whether this call inserted it.
pub async fn insert_if_absent(conn: &mut Conn, key: &str, value: &str) -> Result<bool, StoreError> {
    let done = sqlx::query("INSERT INTO system_settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
        .bind(key)
        .bind(value)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}
