//! Authenticator devices: adding one in the Self-Service Portal, registering it from the
//! authenticator, and the challenges it answers. The protocol is described in
//! `docs/authenticator.md`.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::CardView;

/// `POST /api/v1/self/devices`: start adding a device (a code is emailed to the holder).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AddDeviceRequest {
    /// A name the holder recognises, e.g. "Work phone".
    pub name: String,
    /// `phone`, `tablet` or `desktop`.
    pub device_type: String,
    /// Which authenticator app: `vsc` (the default, our CLI and apps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authenticator_type: Option<String>,
}

/// The id of a device being added.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeviceCreated {
    /// Device id.
    pub id: String,
}

/// `POST /api/v1/self/devices/{id}/verify` → what the authenticator scans.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeviceRegistrationView {
    /// `vsc-auth://register?v=1&url=…&t=…` (single-use, 10 minutes).
    pub registration_uri: String,
    /// The same URI as a QR code (SVG document).
    pub qr_svg: String,
    /// When the registration token expires.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// A holder's device as listed to the holder, the RA and the authenticator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeviceView {
    /// Device id.
    pub id: String,
    /// Name given when added.
    pub name: String,
    /// `phone`, `tablet` or `desktop`.
    pub device_type: String,
    /// Authenticator app type.
    pub authenticator_type: String,
    /// `pending_code` (email code not yet typed), `pending_registration` (QR shown, not yet
    /// registered) or `active`.
    pub state: String,
    /// Authenticator client version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_version: Option<String>,
    /// Platform, e.g. `linux`, `android`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// Platform version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_version: Option<String>,
    /// When adding started.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the authenticator registered.
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub registered_at: Option<OffsetDateTime>,
    /// Last time the device answered or authenticated.
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<OffsetDateTime>,
    /// Whether the device has a PIN (shown to the authenticator itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_set: Option<bool>,
    /// Whether wrong PINs have locked it (until an RA PIN reset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_locked: Option<bool>,
}

/// `GET /api/v1/self/devices`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeviceList {
    /// The holder's devices, oldest first.
    pub devices: Vec<DeviceView>,
}

/// `POST /api/v1/authenticator/register`: the authenticator registers from the scanned URI.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RegisterDeviceRequest {
    /// The `t` parameter of the registration URI.
    pub token: String,
    /// The device's P-256 public key, uncompressed SEC1 point, base64url without padding.
    pub public_key: String,
    /// Proof of possession: signature (DER, base64url) over `vsc-device-register-v1\n{token}`.
    pub proof: String,
    /// The holder's VSC passcode, typed into the authenticator.
    pub passcode: String,
    /// The authenticator's own PIN (4 to 8 digits), asked after the passcode; required while
    /// `authenticator.require_pin` is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<String>,
    /// Authenticator client version.
    pub client_version: String,
    /// Platform, e.g. `linux`.
    pub platform: String,
    /// Platform version.
    pub platform_version: String,
}

/// The TOTP parameters of a device secret (RFC 6238).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TotpParameters {
    /// The secret, base32 without padding.
    pub secret: String,
    /// Always `SHA1`.
    pub algorithm: String,
    /// Always 6.
    pub digits: u32,
    /// Always 30 (seconds).
    pub period: u32,
}

/// The answer to a successful registration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RegisteredDevice {
    /// Device id (used in device tokens).
    pub device_id: String,
    /// The device's TOTP secret, shown once.
    pub totp: TotpParameters,
    /// The holder's display name.
    pub holder: String,
    /// The holder's email.
    pub email: String,
}

/// `GET /api/v1/authenticator/me`: the device, its holder and their cards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuthenticatorView {
    /// This device.
    pub device: DeviceView,
    /// The holder's display name.
    pub holder: String,
    /// The holder's email.
    pub email: String,
    /// The holder's cards (with expiry dates).
    pub cards: Vec<CardView>,
}

/// A challenge for the holder's authenticator (a push, or a scanned QR login).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChallengeView {
    /// Challenge id.
    pub id: String,
    /// Random nonce, part of the signed answer.
    pub nonce: String,
    /// `card` (card login), `portal` (Self-Service Portal sign-in) or `signature` (approve one
    /// signature).
    pub purpose: String,
    /// `push` or `qr`.
    pub method: String,
    /// The requesting client as it described itself.
    pub client: String,
    /// The requesting client's IP address.
    pub ip: String,
    /// The card serial, for card logins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<String>,
    /// With number matching: the three numbers to pick the login's number from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choices: Option<Vec<u8>>,
    /// Signature approvals (purpose `signature`): the document's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
    /// Signature approvals: the document's SHA-256, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// When the login started.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the challenge expires (2 minutes after it was made).
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// `GET /api/v1/authenticator/challenges?wait=S`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChallengeList {
    /// Pending challenges, oldest first (empty when the wait ran out).
    pub challenges: Vec<ChallengeView>,
}

/// `POST /api/v1/authenticator/challenges/{id}/answer`: a signed Yes/No.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChallengeAnswer {
    /// `approve` or `deny`.
    pub decision: String,
    /// The number the holder picked (number matching; omit when there are no choices).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<u8>,
    /// The challenge nonce (from the push, or from the scanned QR).
    pub nonce: String,
    /// DER ECDSA signature, base64url, over
    /// `vsc-challenge-answer-v1\n{id}\n{nonce}\n{decision}\n{number or empty}`.
    pub signature: String,
    /// The device's PIN: required to approve once one is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<String>,
}

/// The outcome of an answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AnswerOutcome {
    /// The login's state after the answer: `approved` or `denied`.
    pub state: String,
}
