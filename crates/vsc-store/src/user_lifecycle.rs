//! Removing a user: their devices, directory accounts, cards (with keys, enrolments and sessions
//! by cascade) and finally the user row. Certificates and audit events are kept (no foreign key).

use sqlx::Row;

use crate::{Conn, StoreError};

/// Delete every device of a user (registered or not); the number deleted.
pub async fn delete_devices(conn: &mut Conn, user_id: &str) -> Result<u64, StoreError> {
    let r = sqlx::query("DELETE FROM devices WHERE user_id = $1").bind(user_id).execute(conn).await?;
    Ok(r.rows_affected())
}

/// Delete a user's directory accounts; the names deleted, pending ones first, by name.
pub async fn delete_directory_accounts(conn: &mut Conn, user_id: &str) -> Result<Vec<(String, String)>, StoreError> {
    let rows = sqlx::query(
        "SELECT name, state FROM directory_accounts WHERE user_id = $1 ORDER BY CASE state WHEN 'pending' THEN 0 ELSE 1 END, name",
    )
    .bind(user_id)
    .fetch_all(&mut *conn)
    .await?;
    let names = rows
        .iter()
        .map(|r| Ok((r.try_get::<String, _>("name")?, r.try_get::<String, _>("state")?)))
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    sqlx::query("DELETE FROM directory_accounts WHERE user_id = $1").bind(user_id).execute(conn).await?;
    Ok(names)
}

/// Delete a user's cards (keys, roles, enrolments and sessions go with them); the number deleted.
pub async fn delete_cards(conn: &mut Conn, user_id: &str) -> Result<u64, StoreError> {
    let r = sqlx::query("DELETE FROM cards WHERE user_id = $1").bind(user_id).execute(conn).await?;
    Ok(r.rows_affected())
}

/// Delete the user row (the rest of their rows go by cascade); false if there was none.
pub async fn delete_user(conn: &mut Conn, user_id: &str) -> Result<bool, StoreError> {
    let r = sqlx::query("DELETE FROM users WHERE id = $1").bind(user_id).execute(conn).await?;
    Ok(r.rows_affected() == 1)
}
