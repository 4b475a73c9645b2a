//! RA staff accounts as RA managers manage them: invite, role, organisations, disable.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

/// A staff account as an RA manager sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StaffView {
    /// Staff id.
    pub id: Uuid,
    /// Email.
    pub email: String,
    /// Display name.
    pub name: String,
    /// `manager` or `agent`.
    pub role: String,
    /// Whether the account is an operator (service-wide: organisations, their email domains and
    /// names, the role and security-question catalogues, any staff account).
    #[serde(default)]
    pub operator: bool,
    /// Codes of the granted organisations the caller may see, sorted.
    pub organisations: Vec<String>,
    /// Whether the password has been set.
    pub password_set: bool,
    /// Whether the TOTP second factor has been set up.
    pub totp_set: bool,
    /// Whether the account is disabled (no sign-in, no sessions, API tokens refused).
    pub disabled: bool,
    /// When the account last signed in to the vRA Manager, if ever.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_sign_in: Option<OffsetDateTime>,
}

/// `GET /api/v1/staff`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StaffList {
    /// Staff sharing at least one organisation with the caller, by name.
    pub staff: Vec<StaffView>,
}

/// `POST /api/v1/staff`: invite a new staff member.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteStaffRequest {
    /// Email of the new staff member.
    pub email: String,
    /// Full name.
    pub name: String,
    /// `manager` or `agent`.
    pub role: String,
    /// Codes of organisations to grant (one or more of the caller's own).
    pub organisations: Vec<String>,
}

/// A staff member invited: the one-time link to set the password is emailed to them (and never
/// returned).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StaffInvited {
    /// Staff id.
    pub id: Uuid,
    /// Email.
    pub email: String,
    /// `manager` or `agent`.
    pub role: String,
    /// Codes of the granted organisations, sorted.
    pub organisations: Vec<String>,
}

/// `PATCH /api/v1/staff/{id}`: what to change (absent fields are kept).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateStaffRequest {
    /// New role: `manager` or `agent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The organisations (codes) granted among the caller's own; the caller's other
    /// organisations are revoked, organisations the caller does not manage are kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organisations: Option<Vec<String>>,
    /// Disable (true) or enable (false) the account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
}

/// `POST /api/v1/staff/{id}/password-link` (202): a new one-time link was emailed to the account's
/// own address (older links stop working); the link itself is never returned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StaffLinkSent {
    /// `sent`.
    pub status: String,
}
