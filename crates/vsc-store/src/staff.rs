//! RA staff accounts and the organisations they are granted.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Conn, StoreError};

/// A stored staff account.
#[derive(Debug, Clone, PartialEq)]
pub struct StaffRow {
    /// UUID.
    pub id: String,
    /// Email.
    pub email: String,
    /// Display name.
    pub display_name: String,
    /// `manager` / `agent`.
    pub role: String,
}

pub(crate) fn row(r: &AnyRow) -> Result<StaffRow, StoreError> {
    Ok(StaffRow {
        id: r.try_get("id")?,
        email: r.try_get("email")?,
        display_name: r.try_get("display_name")?,
        role: r.try_get("role")?,
    })
}

/// Insert a staff account.
pub async fn insert(
    conn: &mut Conn,
    id: &str,
    email: &str,
    email_key: &str,
    display_name: &str,
    role: &str,
    at: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO staff (id, email, email_key, display_name, role, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(email)
    .bind(email_key)
    .bind(display_name)
    .bind(role)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Find staff by lower-cased email.
pub async fn by_email_key(conn: &mut Conn, email_key: &str) -> Result<Option<StaffRow>, StoreError> {
    sqlx::query("SELECT id, email, display_name, role FROM staff WHERE email_key = $1")
        .bind(email_key)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(row)
        .transpose()
}

/// Grant an organisation (no-op when already granted); returns whether it was new.
pub async fn grant(conn: &mut Conn, staff_id: &str, org_id: &str) -> Result<bool, StoreError> {
    let done = sqlx::query("INSERT INTO staff_organisations (staff_id, org_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(staff_id)
        .bind(org_id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Whether staff is granted an organisation.
pub async fn is_granted(conn: &mut Conn, staff_id: &str, org_id: &str) -> Result<bool, StoreError> {
    Ok(sqlx::query("SELECT 1 FROM staff_organisations WHERE staff_id = $1 AND org_id = $2")
        .bind(staff_id)
        .bind(org_id)
        .fetch_optional(conn)
        .await?
        .is_some())
}
