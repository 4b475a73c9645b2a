//! Organisations and their allowed email domains.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Conn, StoreError};

/// A stored organisation.
#[derive(Debug, Clone, PartialEq)]
pub struct OrganisationRow {
    /// UUID.
    pub id: String,
    /// Upper-case code.
    pub code: String,
    /// Display name.
    pub name: String,
    /// Allowed email domains, sorted.
    pub email_domains: Vec<String>,
}

/// The case-folded name the unique index compares (organisation names are unique whatever their case).
pub fn name_key(name: &str) -> String {
    name.to_lowercase()
}

/// Insert an organisation with its domains. A name (whatever its case), code or domain another
/// organisation holds is a [`StoreError::Constraint`].
pub async fn insert(
    conn: &mut Conn,
    id: &str,
    code: &str,
    name: &str,
    domains: &[String],
    at: i64,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO organisations (id, code, name, name_key, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(id)
        .bind(code)
        .bind(name)
        .bind(name_key(name))
        .bind(at)
        .execute(&mut *conn)
        .await?;
    for d in domains {
        sqlx::query("INSERT INTO organisation_email_domains (org_id, domain) VALUES ($1, $2)")
            .bind(id)
            .bind(d)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Rename an organisation; false for an unknown one. A name another organisation holds (whatever
/// its case) is a [`StoreError::Constraint`].
pub async fn rename(conn: &mut Conn, org_id: &str, name: &str) -> Result<bool, StoreError> {
    let done = sqlx::query("UPDATE organisations SET name = $2, name_key = $3 WHERE id = $1")
        .bind(org_id)
        .bind(name)
        .bind(name_key(name))
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// The organisation named `name` (whatever its case), if any.
pub async fn by_name(conn: &mut Conn, name: &str) -> Result<Option<OrganisationRow>, StoreError> {
    let rows = sqlx::query("SELECT id, code, name FROM organisations WHERE name_key = $1")
        .bind(name_key(name))
        .fetch_all(&mut *conn)
        .await?;
    Ok(with_domains(conn, rows).await?.pop())
}

/// The id of the organisation that holds an email domain, if any.
pub async fn domain_holder(conn: &mut Conn, domain: &str) -> Result<Option<String>, StoreError> {
    let r = sqlx::query("SELECT org_id FROM organisation_email_domains WHERE domain = $1")
        .bind(domain)
        .fetch_optional(conn)
        .await?;
    Ok(r.map(|r| r.try_get("org_id")).transpose()?)
}

/// Allow another email domain; returns whether it was added (false when this or another
/// organisation holds it already: a domain belongs to one organisation).
pub async fn add_domain(conn: &mut Conn, org_id: &str, domain: &str) -> Result<bool, StoreError> {
    let done =
        sqlx::query("INSERT INTO organisation_email_domains (org_id, domain) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(org_id)
            .bind(domain)
            .execute(conn)
            .await?;
    Ok(done.rows_affected() == 1)
}

async fn with_domains(conn: &mut Conn, rows: Vec<AnyRow>) -> Result<Vec<OrganisationRow>, StoreError> {
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let id: String = r.try_get("id")?;
        let email_domains = domains(conn, &id).await?;
        out.push(OrganisationRow { id, code: r.try_get("code")?, name: r.try_get("name")?, email_domains });
    }
    Ok(out)
}

/// The allowed domains of an organisation, sorted.
pub async fn domains(conn: &mut Conn, org_id: &str) -> Result<Vec<String>, StoreError> {
    let rows = sqlx::query("SELECT domain FROM organisation_email_domains WHERE org_id = $1 ORDER BY domain")
        .bind(org_id)
        .fetch_all(conn)
        .await?;
    rows.iter().map(|r| Ok(r.try_get("domain")?)).collect()
}

/// Find an organisation by code.
pub async fn by_code(conn: &mut Conn, code: &str) -> Result<Option<OrganisationRow>, StoreError> {
    let rows = sqlx::query("SELECT id, code, name FROM organisations WHERE code = $1")
        .bind(code)
        .fetch_all(&mut *conn)
        .await?;
    Ok(with_domains(conn, rows).await?.pop())
}

/// Find an organisation by id.
pub async fn by_id(conn: &mut Conn, id: &str) -> Result<Option<OrganisationRow>, StoreError> {
    let rows =
        sqlx::query("SELECT id, code, name FROM organisations WHERE id = $1").bind(id).fetch_all(&mut *conn).await?;
    Ok(with_domains(conn, rows).await?.pop())
}

/// The organisations a staff account is granted, by code.
pub async fn for_staff(conn: &mut Conn, staff_id: &str) -> Result<Vec<OrganisationRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT o.id, o.code, o.name FROM organisations o \
         JOIN staff_organisations s ON s.org_id = o.id WHERE s.staff_id = $1 ORDER BY o.code",
    )
    .bind(staff_id)
    .fetch_all(&mut *conn)
    .await?;
    with_domains(conn, rows).await
}

/// Every organisation, by code (operator view).
pub async fn all(conn: &mut Conn) -> Result<Vec<OrganisationRow>, StoreError> {
    let rows = sqlx::query("SELECT id, code, name FROM organisations ORDER BY code").fetch_all(&mut *conn).await?;
    with_domains(conn, rows).await
}

/// Whether the organisation allows push-only (passwordless) card login.
pub async fn push_only(conn: &mut Conn, org_id: &str) -> Result<bool, StoreError> {
    let r = sqlx::query("SELECT push_only FROM organisations WHERE id = $1").bind(org_id).fetch_optional(conn).await?;
    Ok(r.map(|r| r.try_get::<i64, _>("push_only")).transpose()?.unwrap_or(0) != 0)
}

/// Allow or forbid push-only (passwordless) card login; false for an unknown organisation.
pub async fn set_push_only(conn: &mut Conn, org_id: &str, on: bool) -> Result<bool, StoreError> {
    let r = sqlx::query("UPDATE organisations SET push_only = $2 WHERE id = $1")
        .bind(org_id)
        .bind(i64::from(on))
        .execute(conn)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// An organisation's own login and reminder policy; `None` means the service default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Policy {
    /// Push-only (passwordless) card login allowed.
    pub push_only: bool,
    /// Pushes ask the holder to match a number.
    pub number_matching: Option<bool>,
    /// Card session lifetime (minutes).
    pub session_minutes: Option<i64>,
    /// Card session idle timeout (minutes).
    pub idle_minutes: Option<i64>,
    /// Days between enrolment reminders.
    pub reminder_days: Option<i64>,
}

/// An organisation's policy; `None` for an unknown organisation.
pub async fn policy(conn: &mut Conn, org_id: &str) -> Result<Option<Policy>, StoreError> {
    let r = sqlx::query(
        "SELECT push_only, number_matching, session_minutes, idle_minutes, reminder_days FROM organisations \
         WHERE id = $1",
    )
    .bind(org_id)
    .fetch_optional(conn)
    .await?;
    r.map(|r| {
        Ok(Policy {
            push_only: r.try_get::<i64, _>("push_only")? != 0,
            number_matching: r.try_get::<Option<i64>, _>("number_matching")?.map(|n| n != 0),
            session_minutes: r.try_get("session_minutes")?,
            idle_minutes: r.try_get("idle_minutes")?,
            reminder_days: r.try_get("reminder_days")?,
        })
    })
    .transpose()
}

/// Replace an organisation's policy; false for an unknown organisation.
pub async fn set_policy(conn: &mut Conn, org_id: &str, p: &Policy) -> Result<bool, StoreError> {
    let r = sqlx::query(
        "UPDATE organisations SET push_only = $2, number_matching = $3, session_minutes = $4, idle_minutes = $5, \
         reminder_days = $6 WHERE id = $1",
    )
    .bind(org_id)
    .bind(i64::from(p.push_only))
    .bind(p.number_matching.map(i64::from))
    .bind(p.session_minutes)
    .bind(p.idle_minutes)
    .bind(p.reminder_days)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Stop allowing an email domain; returns whether it was allowed.
pub async fn remove_domain(conn: &mut Conn, org_id: &str, domain: &str) -> Result<bool, StoreError> {
    let done = sqlx::query("DELETE FROM organisation_email_domains WHERE org_id = $1 AND domain = $2")
        .bind(org_id)
        .bind(domain)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}
