//! Card login, card sessions and relying-app tickets.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// `POST /api/v1/card/login`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CardLoginRequest {
    /// The holder's email.
    pub email: String,
    /// The VSC passcode (may be omitted only under the organisation's push-only policy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passcode: Option<String>,
    /// `push`, `code` or `qr`.
    pub method: String,
    /// How the client describes itself to the holder (shown on the authenticator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
}

/// A started login.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CardLoginView {
    /// The login id (a secret: it opens the session once approved).
    pub login: String,
    /// `push`, `code` or `qr`.
    pub method: String,
    /// With push and number matching: the number the holder picks on the authenticator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<u8>,
    /// With `qr`: the URI to scan with the authenticator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qr_uri: Option<String>,
    /// With `qr`: the URI as a QR code (SVG).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qr_svg: Option<String>,
    /// When the login expires unless approved.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// A role the holder may pick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LoginRole {
    /// Role code, e.g. `R8000`.
    pub code: String,
    /// Role name.
    pub name: String,
}

/// `GET /api/v1/card/login/{login}?wait=S`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LoginStateView {
    /// `pending`, `approved`, `denied` or `expired`.
    pub state: String,
    /// Once approved: the card serial.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<String>,
    /// Once approved: the card's roles (pick one when there are several).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<LoginRole>>,
    /// Once decided: how (`push`, `code`, `qr`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    /// When the login expires unless approved.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// `POST /api/v1/card/login/{login}/session`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct OpenSessionRequest {
    /// The role to act in; required when the card has several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// An open card session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CardSessionView {
    /// Session token (bearer).
    pub session: String,
    /// The selected role code.
    pub role: String,
    /// The card serial.
    pub card: String,
    /// Absolute end of the session.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// `GET /api/v1/card/session`: the session behind a bearer token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CardSessionStatus {
    /// The holder's display name.
    pub holder: String,
    /// The holder's email.
    pub email: String,
    /// The card serial.
    pub card: String,
    /// `v1` or `v2`.
    pub card_type: String,
    /// The selected role code.
    pub role: String,
    /// How the login was approved.
    pub method: String,
    /// Absolute end of the session.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// The session ends if unused until then.
    #[serde(with = "time::serde::rfc3339")]
    pub idle_expires_at: OffsetDateTime,
}

/// `POST /api/v1/card/ticket`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TicketRequest {
    /// The relying app's name.
    pub app: String,
}

/// A ticket for one relying app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TicketView {
    /// The ticket (single-use).
    pub ticket: String,
    /// When it expires.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// `POST /api/v1/tickets/validate` (authenticated by the app's key).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ValidateTicketRequest {
    /// The ticket the holder's client handed over.
    pub ticket: String,
}

/// The organisation of a validated ticket's holder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TicketOrganisation {
    /// Organisation code.
    pub code: String,
    /// Organisation name.
    pub name: String,
}

/// Who a valid ticket stands for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TicketValidation {
    /// The holder's UUID.
    pub user_id: String,
    /// Forename.
    pub forename: String,
    /// Surname.
    pub surname: String,
    /// `<FORENAME> <SURNAME> (<SUBJECTCN>)`.
    pub display_name: String,
    /// Subject CN.
    pub subject_cn: String,
    /// Card serial.
    pub card_serial: String,
    /// The role selected at login.
    pub role: String,
    /// The holder's organisation.
    pub organisation: TicketOrganisation,
    /// When the card session (and so this identity assertion) expires.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// `vsc admin app create NAME`: a registered relying app and its key (shown once).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AppCreated {
    /// App id.
    pub id: String,
    /// App name.
    pub name: String,
    /// The app's API key for `POST /api/v1/tickets/validate` (bearer).
    pub key: String,
}
