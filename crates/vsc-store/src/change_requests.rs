//! Change requests of dual control (`change_requests`) and the "This was not me" links of the
//! holder's notices (`not_me_links`, single-use, stored as SHA-256).

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Conn, StoreError};

/// A stored change request, with its holder's names and organisation code.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeRequestRow {
    /// UUID.
    pub id: String,
    /// The holder's organisation.
    pub org_id: String,
    /// Its code.
    pub org_code: String,
    /// The holder.
    pub user_id: String,
    /// "Forename Surname" of the holder.
    pub user_name: String,
    /// What to do (`vsc_core::change_request::ChangeAction` name).
    pub action: String,
    /// What it acts on: the user id, a card serial or a device id.
    pub target: String,
    /// JSON: what the action applies, and the old → new values shown to approvers.
    pub payload: String,
    /// `pending`, `approved`, `rejected` or `expired`.
    pub state: String,
    /// Staff id of the requester (empty for the operator's console).
    pub requested_by: String,
    /// Their email.
    pub requested_by_email: String,
    /// When.
    pub requested_at: i64,
    /// A pending request expires then.
    pub expires_at: i64,
    /// Who approved or rejected it.
    pub decided_by_email: Option<String>,
    /// When.
    pub decided_at: Option<i64>,
    /// Why it was rejected.
    pub reason: Option<String>,
}

/// A new request.
#[derive(Debug, Clone, PartialEq)]
pub struct NewChangeRequest<'a> {
    /// UUID.
    pub id: &'a str,
    /// The holder's organisation.
    pub org_id: &'a str,
    /// The holder.
    pub user_id: &'a str,
    /// Action name.
    pub action: &'a str,
    /// User id, card serial or device id.
    pub target: &'a str,
    /// JSON payload.
    pub payload: &'a str,
    /// Requester's staff id ("" for the console).
    pub requested_by: &'a str,
    /// Requester's email.
    pub requested_by_email: &'a str,
    /// Now.
    pub requested_at: i64,
    /// Expiry.
    pub expires_at: i64,
}

const SELECT: &str = "SELECT cr.id, cr.org_id, o.code AS org_code, cr.user_id, u.forename, u.surname, cr.action, \
    cr.target, cr.payload, cr.state, cr.requested_by, cr.requested_by_email, cr.requested_at, cr.expires_at, \
    cr.decided_by_email, cr.decided_at, cr.reason \
    FROM change_requests cr JOIN users u ON u.id = cr.user_id JOIN organisations o ON o.id = cr.org_id";

fn row(r: &AnyRow) -> Result<ChangeRequestRow, StoreError> {
    let forename: String = r.try_get("forename")?;
    let surname: String = r.try_get("surname")?;
    Ok(ChangeRequestRow {
        id: r.try_get("id")?,
        org_id: r.try_get("org_id")?,
        org_code: r.try_get("org_code")?,
        user_id: r.try_get("user_id")?,
        user_name: format!("{forename} {surname}"),
        action: r.try_get("action")?,
        target: r.try_get("target")?,
        payload: r.try_get("payload")?,
        state: r.try_get("state")?,
        requested_by: r.try_get("requested_by")?,
        requested_by_email: r.try_get("requested_by_email")?,
        requested_at: r.try_get("requested_at")?,
        expires_at: r.try_get("expires_at")?,
        decided_by_email: r.try_get("decided_by_email")?,
        decided_at: r.try_get("decided_at")?,
        reason: r.try_get("reason")?,
    })
}

/// Mark the holder's pending requests for `action` on `target` that are past their expiry as
/// `expired`, so a new one may be made.
pub async fn expire_stale(
    conn: &mut Conn,
    user_id: &str,
    action: &str,
    target: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE change_requests SET state = 'expired' WHERE user_id = $1 AND action = $2 AND target = $3 \
         AND state = 'pending' AND expires_at <= $4",
    )
    .bind(user_id)
    .bind(action)
    .bind(target)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Record a new pending request (a second live one for the same holder, action and target
/// breaks a unique index: [`StoreError::Constraint`]).
pub async fn insert(conn: &mut Conn, r: &NewChangeRequest<'_>) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO change_requests (id, org_id, user_id, action, target, payload, state, requested_by, \
         requested_by_email, requested_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8, $9, $10)",
    )
    .bind(r.id)
    .bind(r.org_id)
    .bind(r.user_id)
    .bind(r.action)
    .bind(r.target)
    .bind(r.payload)
    .bind(r.requested_by)
    .bind(r.requested_by_email)
    .bind(r.requested_at)
    .bind(r.expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// One request.
pub async fn by_id(conn: &mut Conn, id: &str) -> Result<Option<ChangeRequestRow>, StoreError> {
    let r =
        sqlx::query(sqlx::AssertSqlSafe(format!("{SELECT} WHERE cr.id = $1"))).bind(id).fetch_optional(conn).await?;
    r.as_ref().map(row).transpose()
}

/// The live pending request of the holder for `action` on `target`, if any.
pub async fn live(
    conn: &mut Conn,
    user_id: &str,
    action: &str,
    target: &str,
    now: i64,
) -> Result<Option<ChangeRequestRow>, StoreError> {
    let r = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE cr.user_id = $1 AND cr.action = $2 AND cr.target = $3 AND cr.state = 'pending' \
         AND cr.expires_at > $4"
    )))
    .bind(user_id)
    .bind(action)
    .bind(target)
    .bind(now)
    .fetch_optional(conn)
    .await?;
    r.as_ref().map(row).transpose()
}

/// The holder's live pending requests, oldest first.
pub async fn pending_for_user(conn: &mut Conn, user_id: &str, now: i64) -> Result<Vec<ChangeRequestRow>, StoreError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE cr.user_id = $1 AND cr.state = 'pending' AND cr.expires_at > $2 ORDER BY cr.requested_at, cr.id"
    )))
    .bind(user_id)
    .bind(now)
    .fetch_all(conn)
    .await?;
    rows.iter().map(row).collect()
}

/// The SQL condition of a state as shown (a pending request past its expiry is `expired`).
fn state_condition(state: &str) -> &'static str {
    match state {
        "pending" => "cr.state = 'pending' AND cr.expires_at > $2",
        "expired" => "(cr.state = 'expired' OR (cr.state = 'pending' AND cr.expires_at <= $2))",
        "approved" => "cr.state = 'approved' AND $2 = $2",
        _ => "cr.state = 'rejected' AND $2 = $2",
    }
}

/// The SQL condition of what the viewer sees: staff `$1`'s organisations, or all for "".
const VIEWER: &str = "($1 = '' OR cr.org_id IN (SELECT so.org_id FROM staff_organisations so WHERE so.staff_id = $1))";

/// Requests in `state` (as shown) that the viewer sees (staff id, or "" for all), newest
/// first, at most `limit`.
pub async fn list(
    conn: &mut Conn,
    viewer: &str,
    state: &str,
    now: i64,
    limit: i64,
) -> Result<Vec<ChangeRequestRow>, StoreError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE {VIEWER} AND {} ORDER BY cr.requested_at DESC, cr.id LIMIT $3",
        state_condition(state)
    )))
    .bind(viewer)
    .bind(now)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter().map(row).collect()
}

/// Whether the holder has a live pending request.
pub async fn has_pending(conn: &mut Conn, user_id: &str, now: i64) -> Result<bool, StoreError> {
    let r = sqlx::query(
        "SELECT 1 AS x FROM change_requests WHERE user_id = $1 AND state = 'pending' AND expires_at > $2 LIMIT 1",
    )
    .bind(user_id)
    .bind(now)
    .fetch_optional(conn)
    .await?;
    Ok(r.is_some())
}

/// Approve a live pending request, only when the approver is not its requester; returns
/// whether this call decided it (the conditional update is dual control's commit point: of two
/// racing approvers one wins, and the requester never does).
pub async fn approve(conn: &mut Conn, id: &str, by_id: &str, by_email: &str, at: i64) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE change_requests SET state = 'approved', decided_by_email = $3, decided_at = $4 \
         WHERE id = $1 AND state = 'pending' AND expires_at > $4 AND requested_by <> $2",
    )
    .bind(id)
    .bind(by_id)
    .bind(by_email)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Reject (or withdraw) a live pending request; returns whether this call decided it.
pub async fn reject(conn: &mut Conn, id: &str, by_email: &str, at: i64, reason: &str) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE change_requests SET state = 'rejected', decided_by_email = $2, decided_at = $3, reason = $4 \
         WHERE id = $1 AND state = 'pending' AND expires_at > $3",
    )
    .bind(id)
    .bind(by_email)
    .bind(at)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A "This was not me" link.
#[derive(Debug, Clone, PartialEq)]
pub struct NotMeLink {
    /// SHA-256 of the token.
    pub token_hash: Vec<u8>,
    /// The holder.
    pub user_id: String,
    /// The approved request the notice was about.
    pub change_request_id: String,
    /// Expiry.
    pub expires_at: i64,
    /// Used.
    pub used_at: Option<i64>,
}

/// Store a new link.
pub async fn insert_not_me(
    conn: &mut Conn,
    token_hash: &[u8],
    user_id: &str,
    change_request_id: &str,
    now: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO not_me_links (token_hash, user_id, change_request_id, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(token_hash.to_vec())
    .bind(user_id)
    .bind(change_request_id)
    .bind(now)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// A link by its token's hash.
pub async fn not_me(conn: &mut Conn, token_hash: &[u8]) -> Result<Option<NotMeLink>, StoreError> {
    let r = sqlx::query(
        "SELECT token_hash, user_id, change_request_id, expires_at, used_at FROM not_me_links WHERE token_hash = $1",
    )
    .bind(token_hash.to_vec())
    .fetch_optional(conn)
    .await?;
    r.map(|r| {
        Ok(NotMeLink {
            token_hash: r.try_get("token_hash")?,
            user_id: r.try_get("user_id")?,
            change_request_id: r.try_get("change_request_id")?,
            expires_at: r.try_get("expires_at")?,
            used_at: r.try_get("used_at")?,
        })
    })
    .transpose()
}

/// Spend a live link; returns whether this call spent it.
pub async fn use_not_me(conn: &mut Conn, token_hash: &[u8], now: i64) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE not_me_links SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
    )
    .bind(token_hash.to_vec())
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Whether the organisation applies dual control.
pub async fn dual_control(conn: &mut Conn, org_id: &str) -> Result<bool, StoreError> {
    let r =
        sqlx::query("SELECT dual_control FROM organisations WHERE id = $1").bind(org_id).fetch_optional(conn).await?;
    Ok(r.map(|r| r.try_get::<i64, _>("dual_control")).transpose()?.unwrap_or(1) != 0)
}

/// Turn the organisation's dual control on or off.
pub async fn set_dual_control(conn: &mut Conn, org_id: &str, on: bool) -> Result<(), StoreError> {
    sqlx::query("UPDATE organisations SET dual_control = $2 WHERE id = $1")
        .bind(org_id)
        .bind(i64::from(on))
        .execute(conn)
        .await?;
    Ok(())
}

/// Whether the holder has an enrolled card (active, locked or suspended): the cards dual control
/// protects.
pub async fn holder_enrolled(conn: &mut Conn, user_id: &str) -> Result<bool, StoreError> {
    let r = sqlx::query(
        "SELECT 1 AS x FROM cards WHERE user_id = $1 AND state IN ('active', 'locked', 'suspended') LIMIT 1",
    )
    .bind(user_id)
    .fetch_optional(conn)
    .await?;
    Ok(r.is_some())
}

/// How many live pending requests the staff member of a live vRA Manager session sees (every
/// organisation's for an operator; 0 for no such session); the session is only read, not marked
/// as used.
pub async fn pending_count_for_session(
    conn: &mut Conn,
    token_hash: &[u8],
    now: i64,
    idle_since: i64,
    created_since: i64,
) -> Result<i64, StoreError> {
    let r = sqlx::query(
        "SELECT COUNT(*) AS n FROM staff_sessions ss JOIN staff s ON s.id = ss.staff_id \
         JOIN change_requests cr ON cr.state = 'pending' AND cr.expires_at > $2 AND (s.operator <> 0 \
         OR cr.org_id IN (SELECT so.org_id FROM staff_organisations so WHERE so.staff_id = ss.staff_id)) \
         WHERE ss.token_hash = $1 AND ss.ended_at IS NULL AND ss.last_seen_at > $3 AND ss.created_at > $4",
    )
    .bind(token_hash.to_vec())
    .bind(now)
    .bind(idle_since)
    .bind(created_since)
    .fetch_one(conn)
    .await?;
    Ok(r.try_get("n")?)
}
