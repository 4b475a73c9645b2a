//! The append-only audit log.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// One audit event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditEventView {
    /// Monotonic id (newer events have larger ids).
    pub id: i64,
    /// When it happened.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Who did it: `staff:<email>`, `operator` (CLI) or `system`.
    pub actor: String,
    /// What happened, e.g. `card.issued`.
    pub action: String,
    /// Organisation code, when the event belongs to one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organisation: Option<String>,
    /// What it happened to, e.g. `card:1500000000000001`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Structured detail.
    pub detail: serde_json::Value,
}

/// `GET /api/v1/audit` — newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    /// Events, newest first.
    pub events: Vec<AuditEventView>,
}
