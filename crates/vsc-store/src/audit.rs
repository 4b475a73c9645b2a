//! The append-only audit log (UPDATE and DELETE are refused by database triggers).

use sqlx::Row;
use vsc_core::AuditRecord;

use crate::{Conn, StoreError};

/// A stored audit event with its organisation's code.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRow {
    /// Monotonic id.
    pub id: i64,
    /// Unix seconds.
    pub at: i64,
    /// Actor.
    pub actor: String,
    /// Action.
    pub action: String,
    /// Organisation code.
    pub org_code: Option<String>,
    /// Target.
    pub target: Option<String>,
    /// JSON detail.
    pub detail: String,
}

/// The columns [`audit_row`] reads: events with their organisation's code (alias `a` for the
/// events, `o` for the organisations); append the WHERE clause.
pub(crate) const AUDIT_SELECT: &str = "SELECT a.id, a.at, a.actor, a.action, o.code AS org_code, a.target, a.detail \
     FROM audit_events a LEFT JOIN organisations o ON o.id = a.org_id";

/// Append an event (inside the transaction of the change it records).
pub async fn append(conn: &mut Conn, at: i64, rec: &AuditRecord) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO audit_events (at, actor, action, org_id, target, detail) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(at)
        .bind(rec.actor.to_string())
        .bind(rec.action)
        .bind(rec.org_id.as_deref())
        .bind(rec.target.as_deref())
        .bind(rec.detail.as_str())
        .execute(conn)
        .await?;
    Ok(())
}

/// Newest events first. With `staff_id`, only events of organisations granted to that staff
/// member; without, all events (operator view).
pub async fn list(conn: &mut Conn, staff_id: Option<&str>, limit: i64) -> Result<Vec<AuditRow>, StoreError> {
    let sql = format!(
        "{AUDIT_SELECT} WHERE $1 IS NULL OR a.org_id IN (SELECT org_id FROM staff_organisations WHERE staff_id = $1) \
         ORDER BY a.id DESC LIMIT $2"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(staff_id).bind(limit).fetch_all(conn).await?;
    rows.iter().map(audit_row).collect()
}

/// A user's events, newest first: those whose target is the user or one of `serials` (their
/// cards), or whose detail names one of those serials. Only events of the user's organisation
/// are read, newest first through the `audit_org` index, until `limit` are found.
pub async fn for_user(
    conn: &mut Conn,
    org_id: &str,
    user_id: &str,
    serials: &[String],
    limit: i64,
) -> Result<Vec<AuditRow>, StoreError> {
    let mut conds = vec!["a.target = $2".to_string()];
    for i in 0..serials.len() {
        let n = i + 4;
        conds.push(format!("a.target = 'card:' || ${n} OR a.detail LIKE '%' || ${n} || '%'"));
    }
    let sql = format!("{AUDIT_SELECT} WHERE a.org_id = $1 AND ({}) ORDER BY a.id DESC LIMIT $3", conds.join(" OR "));
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(org_id).bind(format!("user:{user_id}")).bind(limit);
    for s in serials {
        q = q.bind(s.as_str());
    }
    let rows = q.fetch_all(conn).await?;
    rows.iter().map(audit_row).collect()
}

/// Map a row selected with [`AUDIT_SELECT`] to an [`AuditRow`].
pub(crate) fn audit_row(r: &sqlx::any::AnyRow) -> Result<AuditRow, StoreError> {
    Ok(AuditRow {
        id: r.try_get("id")?,
        at: r.try_get("at")?,
        actor: r.try_get("actor")?,
        action: r.try_get("action")?,
        org_code: r.try_get("org_code")?,
        target: r.try_get("target")?,
        detail: r.try_get("detail")?,
    })
}

/// Number of events with `action`.
pub async fn count_action(conn: &mut Conn, action: &str) -> Result<i64, StoreError> {
    let r =
        sqlx::query("SELECT COUNT(*) AS n FROM audit_events WHERE action = $1").bind(action).fetch_one(conn).await?;
    Ok(r.try_get("n")?)
}

/// The id and detail of each event with `action` after event `after`, oldest first.
pub async fn details_after(conn: &mut Conn, action: &str, after: i64) -> Result<Vec<(i64, String)>, StoreError> {
    let rows = sqlx::query("SELECT id, detail FROM audit_events WHERE action = $1 AND id > $2 ORDER BY id")
        .bind(action)
        .bind(after)
        .fetch_all(conn)
        .await?;
    rows.iter().map(|r| Ok((r.try_get("id")?, r.try_get("detail")?))).collect()
}
