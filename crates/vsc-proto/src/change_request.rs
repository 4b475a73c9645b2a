//! Dual control: change requests on an enrolled holder's identity, approved by a second staff
//! member (`/api/v1/change-requests`).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// A change request as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChangeRequestView {
    /// Request id.
    pub id: Uuid,
    /// `email_change`, `mobile_change`, `device_delete`, `unlock`, `restart` or `resume`.
    pub action: String,
    /// `pending`, `approved`, `rejected` or `expired`.
    pub state: String,
    /// The holder's UUID.
    pub user_id: Uuid,
    /// The holder's name.
    pub user_name: String,
    /// The holder's organisation code.
    pub organisation: String,
    /// What it acts on: the user id, a card serial or a device id.
    pub target: String,
    /// What changes, old → new where there is one (e.g. `{"old": …, "new": …}`).
    pub detail: serde_json::Value,
    /// Email of the staff member who asked.
    pub requested_by: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub requested_at: OffsetDateTime,
    /// A pending request expires then (72 hours after it was made).
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Who approved or rejected it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    /// When.
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<OffsetDateTime>,
    /// Why it was rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `202 Accepted`: the action waits for a second staff member's approval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChangeRequested {
    /// The request made.
    pub change_request: ChangeRequestView,
    /// Every request the call made (an update of both email and mobile makes two).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub change_requests: Vec<ChangeRequestView>,
}

/// `GET /api/v1/change-requests` query.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChangeRequestQuery {
    /// `pending` (default), `approved`, `rejected` or `expired`.
    #[serde(default)]
    pub state: Option<String>,
}

/// `GET /api/v1/change-requests`: newest first, at most 200.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChangeRequestList {
    /// The requests.
    pub change_requests: Vec<ChangeRequestView>,
}

/// `POST /api/v1/change-requests/{id}/approve` → the request, approved, and what applying it gave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChangeApproved {
    /// The request, now `approved`.
    pub change_request: ChangeRequestView,
    /// The applied result: the user (email, mobile, device delete) or the card (unlock, restart,
    /// resume) as it is now.
    pub result: serde_json::Value,
}

/// `POST /api/v1/change-requests/{id}/reject`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectChangeRequest {
    /// Why (1–500 characters).
    pub reason: String,
}

/// `POST /api/v1/self/not-me/{token}`: what the "This was not me" link did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NotMeOutcome {
    /// Serials of the cards now suspended.
    pub suspended: Vec<String>,
}

/// `GET|PUT /api/v1/organisations/{code}/dual-control`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DualControlView {
    /// Organisation code.
    pub organisation: String,
    /// Sensitive changes to an enrolled holder need a second staff member.
    pub dual_control: bool,
}

/// `PUT /api/v1/organisations/{code}/dual-control` (operators only).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetDualControl {
    /// On (the default) or off.
    pub dual_control: bool,
}
