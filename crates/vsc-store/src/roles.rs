//! The role catalogue.

use sqlx::Row;

use crate::{Conn, StoreError};

/// A catalogue role.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleRow {
    /// Code, e.g. `R8000`.
    pub code: String,
    /// Name.
    pub name: String,
    /// Seeded default (cannot be deleted).
    pub is_default: bool,
}

/// All roles, by code.
pub async fn list(conn: &mut Conn) -> Result<Vec<RoleRow>, StoreError> {
    let rows = sqlx::query("SELECT code, name, is_default FROM roles ORDER BY code").fetch_all(conn).await?;
    rows.iter()
        .map(|r| {
            let d: i64 = r.try_get("is_default")?;
            Ok(RoleRow { code: r.try_get("code")?, name: r.try_get("name")?, is_default: d != 0 })
        })
        .collect()
}

/// Add a role to the catalogue.
pub async fn insert(conn: &mut Conn, code: &str, name: &str, at: i64) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO roles (code, name, is_default, created_at) VALUES ($1, $2, 0, $3)")
        .bind(code)
        .bind(name)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

/// Delete a role. Default roles are refused by a trigger in the database itself.
pub async fn delete(conn: &mut Conn, code: &str) -> Result<bool, StoreError> {
    Ok(sqlx::query("DELETE FROM roles WHERE code = $1").bind(code).execute(conn).await?.rows_affected() == 1)
}

/// A role by code.
pub async fn by_code(conn: &mut Conn, code: &str) -> Result<Option<RoleRow>, StoreError> {
    let r =
        sqlx::query("SELECT code, name, is_default FROM roles WHERE code = $1").bind(code).fetch_optional(conn).await?;
    r.map(|r| {
        let d: i64 = r.try_get("is_default")?;
        Ok(RoleRow { code: r.try_get("code")?, name: r.try_get("name")?, is_default: d != 0 })
    })
    .transpose()
}

/// Rename a role; false for an unknown code.
pub async fn rename(conn: &mut Conn, code: &str, name: &str) -> Result<bool, StoreError> {
    let r = sqlx::query("UPDATE roles SET name = $2 WHERE code = $1").bind(code).bind(name).execute(conn).await?;
    Ok(r.rows_affected() == 1)
}

/// How many cards (of any state) carry a role.
pub async fn cards_with(conn: &mut Conn, code: &str) -> Result<i64, StoreError> {
    let r = sqlx::query("SELECT COUNT(*) AS n FROM card_roles WHERE role_code = $1").bind(code).fetch_one(conn).await?;
    Ok(r.try_get("n")?)
}

/// How many cards (of any state) of the organisations granted to `staff_id` carry a role.
pub async fn cards_with_for_staff(conn: &mut Conn, code: &str, staff_id: &str) -> Result<i64, StoreError> {
    let r = sqlx::query(
        "SELECT COUNT(*) AS n FROM card_roles cr JOIN cards c ON c.id = cr.card_id JOIN users u ON u.id = c.user_id \
         JOIN staff_organisations g ON g.org_id = u.org_id AND g.staff_id = $2 WHERE cr.role_code = $1",
    )
    .bind(code)
    .bind(staff_id)
    .fetch_one(conn)
    .await?;
    Ok(r.try_get("n")?)
}
