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
    /// Whether the account is an operator (service-wide).
    pub operator: bool,
}

pub(crate) fn row(r: &AnyRow) -> Result<StaffRow, StoreError> {
    Ok(StaffRow {
        id: r.try_get("id")?,
        email: r.try_get("email")?,
        display_name: r.try_get("display_name")?,
        role: r.try_get("role")?,
        operator: r.try_get::<i64, _>("operator")? != 0,
    })
}

/// Run a statement that changes at most one row; whether it changed one.
async fn changed_one(
    conn: &mut Conn,
    q: sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments>,
) -> Result<bool, StoreError> {
    Ok(q.execute(conn).await?.rows_affected() == 1)
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
    sqlx::query("SELECT id, email, display_name, role, operator FROM staff WHERE email_key = $1")
        .bind(email_key)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(row)
        .transpose()
}

/// Grant an organisation (no-op when already granted); returns whether it was new.
pub async fn grant(conn: &mut Conn, staff_id: &str, org_id: &str) -> Result<bool, StoreError> {
    changed_one(
        conn,
        sqlx::query("INSERT INTO staff_organisations (staff_id, org_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(staff_id)
            .bind(org_id),
    )
    .await
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

/// A staff account as staff management lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct StaffSummary {
    /// UUID.
    pub id: String,
    /// Email.
    pub email: String,
    /// Display name.
    pub display_name: String,
    /// `manager` / `agent`.
    pub role: String,
    /// Whether the account is an operator.
    pub operator: bool,
    /// Whether a password is set.
    pub has_password: bool,
    /// Whether the TOTP second factor is set up.
    pub has_totp: bool,
    /// When the account was disabled (None: enabled).
    pub disabled_at: Option<i64>,
    /// When the account last opened a portal session.
    pub last_sign_in: Option<i64>,
    /// When the account was created.
    pub created_at: i64,
}

/// Staff the viewer may see (all of them for `viewer` ""; otherwise those sharing an
/// organisation with the viewer), by name; `only` ("" for all) narrows to one id.
pub async fn visible(conn: &mut Conn, viewer: &str, only: &str) -> Result<Vec<StaffSummary>, StoreError> {
    let rows = sqlx::query(
        "SELECT s.id, s.email, s.display_name, s.role, s.operator, s.password_hash, s.sealed_totp, s.disabled_at, s.created_at, \
           (SELECT MAX(x.created_at) FROM staff_sessions x WHERE x.staff_id = s.id) AS last_sign_in \
         FROM staff s \
         WHERE ($1 = '' OR EXISTS (SELECT 1 FROM staff_organisations g \
             JOIN staff_organisations mine ON mine.org_id = g.org_id \
             WHERE g.staff_id = s.id AND mine.staff_id = $1)) \
           AND ($2 = '' OR s.id = $2) \
         ORDER BY s.display_name, s.email_key",
    )
    .bind(viewer)
    .bind(only)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            let password: Option<String> = r.try_get("password_hash")?;
            let totp: Option<Vec<u8>> = r.try_get("sealed_totp")?;
            Ok(StaffSummary {
                id: r.try_get("id")?,
                email: r.try_get("email")?,
                display_name: r.try_get("display_name")?,
                role: r.try_get("role")?,
                operator: r.try_get::<i64, _>("operator")? != 0,
                has_password: password.is_some(),
                has_totp: totp.is_some(),
                disabled_at: r.try_get("disabled_at")?,
                last_sign_in: r.try_get("last_sign_in")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .collect()
}

/// One organisation granted to a staff member.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    /// The staff member.
    pub staff_id: String,
    /// Organisation id.
    pub org_id: String,
    /// Organisation code.
    pub code: String,
    /// Organisation name.
    pub name: String,
}

/// Grants the viewer may see (every grant for `viewer` ""; otherwise grants of the viewer's own
/// organisations), by code; `only` ("" for all) narrows to one staff member.
pub async fn visible_grants(conn: &mut Conn, viewer: &str, only: &str) -> Result<Vec<Grant>, StoreError> {
    let rows = sqlx::query(
        "SELECT g.staff_id, o.id, o.code, o.name FROM staff_organisations g JOIN organisations o ON o.id = g.org_id \
         WHERE ($1 = '' OR g.org_id IN (SELECT mine.org_id FROM staff_organisations mine WHERE mine.staff_id = $1)) \
           AND ($2 = '' OR g.staff_id = $2) \
         ORDER BY o.code",
    )
    .bind(viewer)
    .bind(only)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Grant {
                staff_id: r.try_get("staff_id")?,
                org_id: r.try_get("id")?,
                code: r.try_get("code")?,
                name: r.try_get("name")?,
            })
        })
        .collect()
}

/// Revoke an organisation; returns whether it was granted.
pub async fn revoke(conn: &mut Conn, staff_id: &str, org_id: &str) -> Result<bool, StoreError> {
    changed_one(
        conn,
        sqlx::query("DELETE FROM staff_organisations WHERE staff_id = $1 AND org_id = $2").bind(staff_id).bind(org_id),
    )
    .await
}

/// How many organisations a staff member is granted.
pub async fn grant_count(conn: &mut Conn, staff_id: &str) -> Result<i64, StoreError> {
    let r = sqlx::query("SELECT COUNT(*) AS n FROM staff_organisations WHERE staff_id = $1")
        .bind(staff_id)
        .fetch_one(conn)
        .await?;
    Ok(r.try_get("n")?)
}

/// Change the role; returns whether it changed.
pub async fn set_role(conn: &mut Conn, staff_id: &str, role: &str) -> Result<bool, StoreError> {
    changed_one(conn, sqlx::query("UPDATE staff SET role = $2 WHERE id = $1 AND role <> $2").bind(staff_id).bind(role))
        .await
}

/// Disable an enabled account at `at`; returns whether it was enabled.
pub async fn disable(conn: &mut Conn, staff_id: &str, at: i64) -> Result<bool, StoreError> {
    changed_one(
        conn,
        sqlx::query("UPDATE staff SET disabled_at = $2 WHERE id = $1 AND disabled_at IS NULL").bind(staff_id).bind(at),
    )
    .await
}

/// Enable a disabled account; returns whether it was disabled.
pub async fn enable(conn: &mut Conn, staff_id: &str) -> Result<bool, StoreError> {
    changed_one(
        conn,
        sqlx::query("UPDATE staff SET disabled_at = NULL WHERE id = $1 AND disabled_at IS NOT NULL").bind(staff_id),
    )
    .await
}

/// Whether the account is disabled (false for an unknown id).
pub async fn is_disabled(conn: &mut Conn, staff_id: &str) -> Result<bool, StoreError> {
    Ok(sqlx::query("SELECT 1 FROM staff WHERE id = $1 AND disabled_at IS NOT NULL")
        .bind(staff_id)
        .fetch_optional(conn)
        .await?
        .is_some())
}

/// Make an account an operator (`on`) or not; returns whether it changed.
pub async fn set_operator(conn: &mut Conn, staff_id: &str, on: bool) -> Result<bool, StoreError> {
    changed_one(
        conn,
        sqlx::query("UPDATE staff SET operator = $2 WHERE id = $1 AND operator <> $2")
            .bind(staff_id)
            .bind(i64::from(on)),
    )
    .await
}

/// How many of `staff_id`'s organisations `viewer` is not granted (0: the viewer covers them all).
pub async fn grants_beyond(conn: &mut Conn, viewer: &str, staff_id: &str) -> Result<i64, StoreError> {
    let r = sqlx::query(
        "SELECT COUNT(*) AS n FROM staff_organisations g WHERE g.staff_id = $2 \
         AND NOT EXISTS (SELECT 1 FROM staff_organisations mine WHERE mine.staff_id = $1 AND mine.org_id = g.org_id)",
    )
    .bind(viewer)
    .bind(staff_id)
    .fetch_one(conn)
    .await?;
    Ok(r.try_get("n")?)
}
