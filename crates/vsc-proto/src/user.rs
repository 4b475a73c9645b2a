//! Card holders.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::card::CardView;

/// `POST /api/v1/users`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateUserRequest {
    /// Organisation code the user belongs to.
    pub organisation: String,
    /// Forename (may be long and contain apostrophes).
    pub forename: String,
    /// Surname (may be long and contain apostrophes).
    pub surname: String,
    /// Email; its domain must be one of the organisation's allowed domains.
    pub email: String,
    /// Optional mobile number (digits, optional leading `+`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mobile: Option<String>,
    /// Optional subject CN; a unique 12-digit one is generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_cn: Option<String>,
    /// Optional directory (AD) account name, activated when the holder completes enrolment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory_account: Option<String>,
}

/// A user as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UserView {
    /// The user's UUID, shown to the holder.
    pub id: Uuid,
    /// Organisation code.
    pub organisation: String,
    /// Forename.
    pub forename: String,
    /// Surname.
    pub surname: String,
    /// Email as entered.
    pub email: String,
    /// Mobile number, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mobile: Option<String>,
    /// Whether the holder has confirmed this email address (reset and unlock links, device codes
    /// and renewal need a confirmed one).
    #[serde(default)]
    pub email_verified: bool,
    /// Whether the holder has confirmed this mobile number (SMS codes go only to a confirmed one).
    #[serde(default)]
    pub mobile_verified: bool,
    /// Subject CN used in certificates.
    pub subject_cn: String,
    /// `<FORENAME> <SURNAME> (<SUBJECTCN>)`.
    pub display_name: String,
    /// When the user was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The user's cards, newest first.
    #[serde(default)]
    pub cards: Vec<CardView>,
}

/// `PATCH /api/v1/users/{id}`: what to change (absent fields are kept).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    /// New forename.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forename: Option<String>,
    /// New surname.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub surname: Option<String>,
    /// New email; its domain must be allowed by the user's organisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// New mobile number (digits, optional leading `+`); an empty string removes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mobile: Option<String>,
    /// New subject CN for future certificates; must not be taken by another user (409).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_cn: Option<String>,
}
