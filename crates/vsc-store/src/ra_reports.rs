//! The vRA Manager's reports: users with a card issued but not yet enrolled (pending), and cards
//! expiring soon. Both are limited to a set of organisations and capped at a number of rows.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Conn, StoreError};

/// A card issued but not yet enrolled, with its holder and invitation.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingRow {
    /// User UUID.
    pub user_id: String,
    /// `<FORENAME> <SURNAME> (<SUBJECTCN>)`.
    pub display_name: String,
    /// Email.
    pub email: String,
    /// Organisation code.
    pub org_code: String,
    /// Card serial.
    pub serial: String,
    /// `v1` / `v2`.
    pub card_type: String,
    /// When the current invitation was sent.
    pub invited_at: i64,
    /// Last reminder.
    pub reminded_at: Option<i64>,
    /// When the enrolment link expires.
    pub link_expires_at: i64,
}

/// A card (not revoked) expiring soon, with its holder.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpiringRow {
    /// User UUID.
    pub user_id: String,
    /// `<FORENAME> <SURNAME> (<SUBJECTCN>)`.
    pub display_name: String,
    /// Email.
    pub email: String,
    /// Organisation code.
    pub org_code: String,
    /// Card serial.
    pub serial: String,
    /// `v1` / `v2`.
    pub card_type: String,
    /// Stored state (`issued`, `active`, `locked`).
    pub state: String,
    /// Card expiry.
    pub expires_at: i64,
}

/// Order of the expiring-cards report; ties are broken by serial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExpiringSort {
    /// Soonest expiry first.
    #[default]
    Expiry,
    /// Surname, then forename.
    Name,
}

/// Rows of a report, and whether more rows matched than were read.
#[derive(Debug, Clone, PartialEq)]
pub struct Report<T> {
    /// The rows, at most the limit asked for.
    pub rows: Vec<T>,
    /// Whether rows beyond the limit were left out.
    pub truncated: bool,
}

/// `$1, $2, …` for the organisation ids, starting after `before` other binds.
fn org_marks(org_ids: &[String], before: usize) -> String {
    (1..=org_ids.len()).map(|i| format!("${}", before + i)).collect::<Vec<_>>().join(", ")
}

fn display(r: &AnyRow) -> Result<String, StoreError> {
    let forename: String = r.try_get("forename")?;
    let surname: String = r.try_get("surname")?;
    let cn: String = r.try_get("subject_cn")?;
    Ok(format!("{forename} {surname} ({cn})"))
}

fn cap<T>(mut rows: Vec<T>, limit: i64) -> Report<T> {
    let limit = usize::try_from(limit).unwrap_or(0);
    let truncated = rows.len() > limit;
    rows.truncate(limit);
    Report { rows, truncated }
}

/// Cards in state `issued` whose enrolment has not completed, in the given organisations, newest
/// invitation first (at most `limit`).
pub async fn pending(conn: &mut Conn, org_ids: &[String], limit: i64) -> Result<Report<PendingRow>, StoreError> {
    if org_ids.is_empty() {
        return Ok(Report { rows: Vec::new(), truncated: false });
    }
    let sql = format!(
        "SELECT u.id AS user_id, u.forename, u.surname, u.subject_cn, u.email, o.code AS org_code, c.serial, \
         c.card_type, e.invited_at, e.reminded_at, e.expires_at AS link_expires_at \
         FROM cards c JOIN enrolments e ON e.card_id = c.id JOIN users u ON u.id = c.user_id \
         JOIN organisations o ON o.id = u.org_id \
         WHERE c.state = 'issued' AND e.completed_at IS NULL AND u.org_id IN ({}) \
         ORDER BY e.invited_at DESC, c.serial LIMIT $1",
        org_marks(org_ids, 1)
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(limit.saturating_add(1));
    for id in org_ids {
        q = q.bind(id.as_str());
    }
    let rows = q.fetch_all(conn).await?;
    let rows = rows
        .iter()
        .map(|r| {
            Ok(PendingRow {
                user_id: r.try_get("user_id")?,
                display_name: display(r)?,
                email: r.try_get("email")?,
                org_code: r.try_get("org_code")?,
                serial: r.try_get("serial")?,
                card_type: r.try_get("card_type")?,
                invited_at: r.try_get("invited_at")?,
                reminded_at: r.try_get("reminded_at")?,
                link_expires_at: r.try_get("link_expires_at")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(cap(rows, limit))
}

/// Cards not revoked whose expiry is after `now` and at most `until`, in the given organisations
/// (at most `limit`), in the order asked for.
pub async fn expiring(
    conn: &mut Conn,
    org_ids: &[String],
    now: i64,
    until: i64,
    sort: ExpiringSort,
    descending: bool,
    limit: i64,
) -> Result<Report<ExpiringRow>, StoreError> {
    if org_ids.is_empty() {
        return Ok(Report { rows: Vec::new(), truncated: false });
    }
    let dir = if descending { "DESC" } else { "ASC" };
    let order = match sort {
        ExpiringSort::Expiry => format!("c.expires_at {dir}, c.serial {dir}"),
        ExpiringSort::Name => format!("u.surname {dir}, u.forename {dir}, c.expires_at ASC, c.serial ASC"),
    };
    let sql = format!(
        "SELECT u.id AS user_id, u.forename, u.surname, u.subject_cn, u.email, o.code AS org_code, c.serial, \
         c.card_type, c.state, c.expires_at \
         FROM cards c JOIN users u ON u.id = c.user_id JOIN organisations o ON o.id = u.org_id \
         WHERE c.state <> 'revoked' AND c.expires_at > $1 AND c.expires_at <= $2 AND u.org_id IN ({}) \
         ORDER BY {order} LIMIT $3",
        org_marks(org_ids, 3)
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now).bind(until).bind(limit.saturating_add(1));
    for id in org_ids {
        q = q.bind(id.as_str());
    }
    let rows = q.fetch_all(conn).await?;
    let rows = rows
        .iter()
        .map(|r| {
            Ok(ExpiringRow {
                user_id: r.try_get("user_id")?,
                display_name: display(r)?,
                email: r.try_get("email")?,
                org_code: r.try_get("org_code")?,
                serial: r.try_get("serial")?,
                card_type: r.try_get("card_type")?,
                state: r.try_get("state")?,
                expires_at: r.try_get("expires_at")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(cap(rows, limit))
}
