//! Audit records: who did what to what, written in the same transaction as the change.

use std::fmt;

/// Who performed an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// An RA staff member (by email).
    Staff(String),
    /// A card holder (by email).
    Holder(String),
    /// The operator at the `vsc admin` command line.
    Operator,
    /// The service itself (jobs, start-up).
    System,
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Staff(email) => write!(f, "staff:{email}"),
            Actor::Holder(email) => write!(f, "holder:{email}"),
            Actor::Operator => f.write_str("operator"),
            Actor::System => f.write_str("system"),
        }
    }
}

/// An event to append to the audit log.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    /// Who.
    pub actor: Actor,
    /// What, as a dotted verb such as `card.issued`.
    pub action: &'static str,
    /// Organisation id the event belongs to, if any.
    pub org_id: Option<String>,
    /// Target such as `card:150…` or `user:<uuid>`.
    pub target: Option<String>,
    /// JSON detail (never secrets).
    pub detail: String,
}
