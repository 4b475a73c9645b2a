//! The JSON error format every API error uses, with stable codes clients can match on.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Stable error codes: clients and tests match these, never the message text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum ErrorCode {
    /// A field failed validation; `field` names it.
    #[serde(rename = "IN0001InvalidInput")]
    InvalidInput,
    /// The body is not valid JSON or does not match the expected shape.
    #[serde(rename = "IN0002MalformedRequest")]
    MalformedRequest,
    /// No valid credential was presented.
    #[serde(rename = "AU0001Unauthenticated")]
    Unauthenticated,
    /// The caller is authenticated but may not do this.
    #[serde(rename = "AU0002Forbidden")]
    Forbidden,
    /// The thing asked for does not exist (or is outside the caller's organisations).
    #[serde(rename = "NF0001NotFound")]
    NotFound,
    /// The request conflicts with existing data (duplicate email, code, …).
    #[serde(rename = "CF0001Conflict")]
    Conflict,
    /// The action is not allowed in the object's current state (e.g. revoking a revoked card).
    #[serde(rename = "ST0001InvalidState")]
    InvalidState,
    /// The authenticator must set its PIN first (`POST /api/v1/authenticator/pin`): the second
    /// factor needs one before the device may approve, reset or read anything else.
    #[serde(rename = "ST0002PinRequired")]
    PinRequired,
    /// The sign-in failed: wrong email or passcode (never says which), or sign-in is locked.
    #[serde(rename = "AU0003SignInFailed")]
    SignInFailed,
    /// The enrolment or reset link has expired.
    #[serde(rename = "EN0001LinkExpired")]
    LinkExpired,
    /// The link was already used.
    #[serde(rename = "EN0002LinkUsed")]
    LinkUsed,
    /// Too many requests; retry later.
    #[serde(rename = "RL0001RateLimited")]
    RateLimited,
    /// Dual control: the requester of a change request cannot approve it.
    #[serde(rename = "CR0001OwnRequest")]
    OwnChangeRequest,
    /// Dual control: only a manager of the holder's organisation, or an operator, approves.
    #[serde(rename = "CR0002NotAnApprover")]
    NotAnApprover,
    /// Dual control: the change request is no longer pending (approved, rejected or expired).
    #[serde(rename = "CR0003NotPending")]
    ChangeRequestNotPending,
    /// Something failed inside the service; `id` identifies the logged detail.
    #[serde(rename = "SV0001Internal")]
    Internal,
    /// A dependency (database, key store) does not answer.
    #[serde(rename = "SV0002Unavailable")]
    Unavailable,
}

/// The body of every error response: `{"error": {...}}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// The error itself.
    pub error: ErrorDetail,
}

/// What went wrong, for machines (`code`, `field`) and for people (`message`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable code.
    pub code: ErrorCode,
    /// Human-readable explanation.
    pub message: String,
    /// The request field at fault, when one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Error id to quote to an operator (internal errors only; details are in the server log).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}
