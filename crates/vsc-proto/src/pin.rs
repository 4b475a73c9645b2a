//! The authenticator PIN (set, RA reset) and the passcode reset from the authenticator. The
//! protocol is described in `docs/authenticator.md`.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// `POST /api/v1/authenticator/pin`: set or change the device's PIN.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SetPinRequest {
    /// The new PIN: 4 to 8 digits.
    pub pin: String,
    /// The current PIN (required when one is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_pin: Option<String>,
}

/// `POST /api/v1/authenticator/pin/reset`: the device redeems an RA PIN-reset token.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PinResetRequest {
    /// The token the RA read out.
    pub token: String,
    /// The new PIN: 4 to 8 digits.
    pub new_pin: String,
}

/// `POST /api/v1/devices/{id}/pin-reset` → the token for the RA to give the holder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PinResetIssued {
    /// Device id.
    pub device_id: String,
    /// The single-use PIN-reset token (shown once; older tokens of the device are void).
    pub token: String,
    /// When the token expires.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// `POST /api/v1/authenticator/reset-passcode`: a new card passcode from the authenticator.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeviceResetPasscodeRequest {
    /// The new passcode (the enrolment policy; not the current one).
    pub new_passcode: String,
    /// The device's PIN (required once one is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<String>,
}
