//! Searching the audit log for the vRA Manager's audit viewer: events of the organisations
//! granted to a staff member (the scoping rule of [`crate::audit::list`]), filtered by actor,
//! target, action, outcome and time, newest first, a page at a time (keyset on the id).

use crate::audit::{AUDIT_SELECT, AuditRow, audit_row};
use crate::{Conn, StoreError};

/// Words that mark an action as a failure: an action whose name contains one of them (for
/// example `card.login_denied`, `staff.sign_in_locked`, `device.token_replayed`) failed; every
/// other action succeeded.
pub const FAILURE_MARKERS: [&str; 6] = ["failed", "refused", "denied", "throttled", "locked", "replayed"];

/// Whether `action` records a failure (see [`FAILURE_MARKERS`]).
pub fn is_failure(action: &str) -> bool {
    FAILURE_MARKERS.iter().any(|m| action.contains(m))
}

/// How an action filter matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionMatch {
    /// The action is exactly this.
    Exact(String),
    /// The action starts with this (e.g. `card.`).
    Prefix(String),
}

/// The filters of an audit search; `None` means "any".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only events of the organisations granted to this staff member (`None`: all events).
    pub staff_id: Option<String>,
    /// The actor contains this (case-insensitive).
    pub actor: Option<String>,
    /// The target is exactly this (e.g. `user:<uuid>`).
    pub target: Option<String>,
    /// The action matches this.
    pub action: Option<ActionMatch>,
    /// `Some(true)`: failures only; `Some(false)`: successes only.
    pub failure: Option<bool>,
    /// At or after this time (Unix seconds).
    pub from: Option<i64>,
    /// Before this time (Unix seconds).
    pub until: Option<i64>,
    /// Only events with an id below this (the cursor of the next, older, page).
    pub before_id: Option<i64>,
}

/// `value` with the LIKE wildcards (and the escape character `\`) escaped.
fn like_escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

enum Bind {
    Text(String),
    Int(i64),
}

/// Push a bind; its `$n` placeholder.
fn mark(binds: &mut Vec<Bind>, b: Bind) -> String {
    binds.push(b);
    format!("${}", binds.len())
}

/// Events matching `filter`, newest first, at most `limit`.
pub async fn search(conn: &mut Conn, filter: &AuditFilter, limit: i64) -> Result<Vec<AuditRow>, StoreError> {
    let mut conds: Vec<String> = Vec::new();
    let mut binds: Vec<Bind> = Vec::new();
    if let Some(staff) = &filter.staff_id {
        let m = mark(&mut binds, Bind::Text(staff.clone()));
        conds.push(format!("a.org_id IN (SELECT org_id FROM staff_organisations WHERE staff_id = {m})"));
    }
    if let Some(actor) = &filter.actor {
        let m = mark(&mut binds, Bind::Text(format!("%{}%", like_escape(&actor.to_lowercase()))));
        conds.push(format!("LOWER(a.actor) LIKE {m} ESCAPE '\\'"));
    }
    if let Some(target) = &filter.target {
        let m = mark(&mut binds, Bind::Text(target.clone()));
        conds.push(format!("a.target = {m}"));
    }
    match &filter.action {
        Some(ActionMatch::Exact(a)) => {
            let m = mark(&mut binds, Bind::Text(a.clone()));
            conds.push(format!("a.action = {m}"));
        }
        Some(ActionMatch::Prefix(p)) => {
            let m = mark(&mut binds, Bind::Text(format!("{}%", like_escape(p))));
            conds.push(format!("a.action LIKE {m} ESCAPE '\\'"));
        }
        None => {}
    }
    if let Some(failure) = filter.failure {
        // The markers are constants of this module (no user input reaches this SQL text).
        let any = FAILURE_MARKERS.iter().map(|w| format!("a.action LIKE '%{w}%'")).collect::<Vec<_>>().join(" OR ");
        conds.push(if failure { format!("({any})") } else { format!("NOT ({any})") });
    }
    if let Some(from) = filter.from {
        let m = mark(&mut binds, Bind::Int(from));
        conds.push(format!("a.at >= {m}"));
    }
    if let Some(until) = filter.until {
        let m = mark(&mut binds, Bind::Int(until));
        conds.push(format!("a.at < {m}"));
    }
    if let Some(before) = filter.before_id {
        let m = mark(&mut binds, Bind::Int(before));
        conds.push(format!("a.id < {m}"));
    }
    let limit_mark = mark(&mut binds, Bind::Int(limit));
    let where_ = if conds.is_empty() { String::new() } else { format!("WHERE {}", conds.join(" AND ")) };
    let sql = format!("{AUDIT_SELECT} {where_} ORDER BY a.id DESC LIMIT {limit_mark}");
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for b in binds {
        q = match b {
            Bind::Text(s) => q.bind(s),
            Bind::Int(n) => q.bind(n),
        };
    }
    let rows = q.fetch_all(conn).await?;
    rows.iter().map(audit_row).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_named_by_their_actions() {
        for a in ["card.login_denied", "staff.sign_in_failed", "device.token_replayed", "staff.sign_in_locked"] {
            assert!(is_failure(a), "{a}");
        }
        for a in ["card.login_approved", "card.issued", "user.created"] {
            assert!(!is_failure(a), "{a}");
        }
    }

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(like_escape("a_b%c\\"), "a\\_b\\%c\\\\");
    }
}
