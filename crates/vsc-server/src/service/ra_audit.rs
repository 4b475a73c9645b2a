//! The vRA Manager's audit log viewer (`/ra/audit`, `/ra/audit.csv`): the events of the staff
//! member's organisations, filtered by actor, user, action, outcome and date range, newest first.
//!
//! Outcome rule: an action whose name contains `failed`, `refused`, `denied`, `throttled`,
//! `locked` or `replayed` is a failure; every other action is a success.

use serde::Deserialize;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::{Date, OffsetDateTime};
use vsc_core::DomainError;
use vsc_store::audit_search::{self, ActionMatch, AuditFilter};
use vsc_store::users;

use super::{Principal, Vsc, ts};
use crate::ServiceError;

/// Events on a page of the viewer.
pub const AUDIT_PAGE_ROWS: i64 = 50;
/// The most rows of a CSV export.
pub const AUDIT_CSV_ROWS: i64 = 10_000;

const DAY: i64 = 86_400;
const DATE_INPUT: &[BorrowedFormatItem<'static>] = format_description!("[year]-[month]-[day]");

/// The viewer's filters as typed (query string); empty fields mean "any".
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuditQuery {
    /// Actor substring.
    pub actor: Option<String>,
    /// User UUID or email.
    pub user: Option<String>,
    /// Action, exact, or a prefix ending with `.` or `*` (e.g. `card.`).
    pub action: Option<String>,
    /// `success` or `failure`.
    pub outcome: Option<String>,
    /// First day (`YYYY-MM-DD`, UTC).
    pub from: Option<String>,
    /// Last day (`YYYY-MM-DD`, UTC, inclusive).
    pub to: Option<String>,
    /// Cursor: only events with an id below this.
    pub before: Option<String>,
}

/// The user filter, checked: a UUID, or an email to look up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserFilter {
    /// A user id.
    Id(String),
    /// An email address (lower-cased).
    Email(String),
}

/// The filters, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckedAudit {
    /// Actor substring.
    pub actor: Option<String>,
    /// User.
    pub user: Option<UserFilter>,
    /// Action.
    pub action: Option<ActionMatch>,
    /// `Some(true)`: failures only.
    pub failure: Option<bool>,
    /// From (Unix seconds, start of day UTC).
    pub from: Option<i64>,
    /// Until (Unix seconds, exclusive: the day after `to`).
    pub until: Option<i64>,
    /// Cursor.
    pub before_id: Option<i64>,
}

fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn day(field: &'static str, v: &str) -> Result<i64, DomainError> {
    Date::parse(v, DATE_INPUT)
        .map(|d| d.midnight().assume_utc().unix_timestamp())
        .map_err(|_| DomainError::invalid(field, format!("the {field} date must be a real date like 2026-01-31")))
}

/// Check the filters: dates are `YYYY-MM-DD` with `from` not after `to`, the outcome is
/// `success` or `failure`, the user a UUID or an email address, the cursor a whole number.
pub fn check_audit_query(q: &AuditQuery) -> Result<CheckedAudit, DomainError> {
    let from = given(&q.from).map(|v| day("from", v)).transpose()?;
    let to = given(&q.to).map(|v| day("to", v)).transpose()?;
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err(DomainError::invalid("from", "the from date must not be after the to date"));
    }
    let failure = match given(&q.outcome) {
        None => None,
        Some("success") => Some(false),
        Some("failure") => Some(true),
        Some(_) => return Err(DomainError::invalid("outcome", "outcome must be success or failure")),
    };
    let user = match given(&q.user) {
        None => None,
        Some(u) => match uuid::Uuid::parse_str(u) {
            Ok(id) => Some(UserFilter::Id(id.to_string())),
            Err(_) if u.contains('@') => Some(UserFilter::Email(u.to_lowercase())),
            Err(_) => {
                return Err(DomainError::invalid("user", "user must be a user's UUID or email address"));
            }
        },
    };
    let action = given(&q.action).map(|a| match a.strip_suffix('*') {
        Some(p) => ActionMatch::Prefix(p.to_string()),
        None if a.ends_with('.') => ActionMatch::Prefix(a.to_string()),
        None => ActionMatch::Exact(a.to_string()),
    });
    let before_id = match given(&q.before) {
        None => None,
        Some(b) => Some(b.parse::<i64>().map_err(|_| DomainError::invalid("before", "before must be a whole number"))?),
    };
    Ok(CheckedAudit {
        actor: given(&q.actor).map(str::to_string),
        user,
        action,
        failure,
        from,
        until: to.map(|t| t.saturating_add(DAY)),
        before_id,
    })
}

/// An audit event as the viewer shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// Id (the cursor).
    pub id: i64,
    /// When.
    pub at: OffsetDateTime,
    /// Actor.
    pub actor: String,
    /// Action.
    pub action: String,
    /// Whether the action records a failure.
    pub failure: bool,
    /// Organisation code.
    pub organisation: String,
    /// Target.
    pub target: String,
    /// Authentication method from the detail (`push`, `code`, `sms`, …).
    pub method: String,
    /// Device from the detail.
    pub device: String,
    /// The JSON detail.
    pub detail: String,
}

/// A page of events, and the cursor of the next (older) page when there is one.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditPage {
    /// Events, newest first.
    pub entries: Vec<AuditEntry>,
    /// `before=` for older events.
    pub older: Option<i64>,
}

fn detail_text(detail: &serde_json::Value, key: &str) -> String {
    match detail.get(key) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

impl Vsc {
    /// Audit events of the caller's organisations matching `q`, newest first, at most `limit`.
    pub async fn audit_search(&self, who: &Principal, q: &CheckedAudit, limit: i64) -> Result<AuditPage, ServiceError> {
        let mut conn = self.store.conn().await?;
        let target = match &q.user {
            None => None,
            Some(UserFilter::Id(id)) => Some(format!("user:{id}")),
            Some(UserFilter::Email(email)) => match users::by_email_key(&mut conn, email).await? {
                Some(u) => Some(format!("user:{}", u.id)),
                // Nobody has that email: nothing matches.
                None => Some("user:".to_string()),
            },
        };
        let filter = AuditFilter {
            staff_id: who.staff_id().map(str::to_string),
            actor: q.actor.clone(),
            target,
            action: q.action.clone(),
            failure: q.failure,
            from: q.from,
            until: q.until,
            before_id: q.before_id,
        };
        let mut rows = audit_search::search(&mut conn, &filter, limit.saturating_add(1)).await?;
        let more = i64::try_from(rows.len()).unwrap_or(i64::MAX) > limit;
        rows.truncate(usize::try_from(limit).unwrap_or(0));
        let older = if more { rows.last().map(|r| r.id) } else { None };
        let entries = rows
            .into_iter()
            .map(|r| {
                let detail: serde_json::Value = serde_json::from_str(&r.detail).unwrap_or(serde_json::Value::Null);
                AuditEntry {
                    id: r.id,
                    at: ts(r.at),
                    failure: audit_search::is_failure(&r.action),
                    method: detail_text(&detail, "method"),
                    device: detail_text(&detail, "device"),
                    actor: r.actor,
                    action: r.action,
                    organisation: r.org_code.unwrap_or_default(),
                    target: r.target.unwrap_or_default(),
                    detail: r.detail,
                }
            })
            .collect();
        Ok(AuditPage { entries, older })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(from: &str, to: &str) -> AuditQuery {
        AuditQuery { from: Some(from.into()), to: Some(to.into()), ..AuditQuery::default() }
    }

    #[test]
    fn filters_are_checked() {
        assert!(check_audit_query(&q("2026-02-30", "")).is_err());
        assert!(check_audit_query(&q("2026-03-02", "2026-03-01")).is_err());
        let ok = check_audit_query(&q("2026-03-01", "2026-03-01")).unwrap();
        assert_eq!(ok.until.unwrap() - ok.from.unwrap(), DAY);
        let a = AuditQuery { action: Some("card.".into()), outcome: Some("failure".into()), ..AuditQuery::default() };
        let c = check_audit_query(&a).unwrap();
        assert_eq!(c.action, Some(ActionMatch::Prefix("card.".into())));
        assert_eq!(c.failure, Some(true));
        let bad = AuditQuery { user: Some("bob".into()), ..AuditQuery::default() };
        assert!(check_audit_query(&bad).is_err());
    }
}
