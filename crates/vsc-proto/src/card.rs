//! Virtual smartcards.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

/// `POST /api/v1/users/{id}/cards`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IssueCardRequest {
    /// `v1` (authentication key) or `v2` (authentication + AdES signing key).
    #[serde(rename = "type")]
    pub card_type: String,
    /// Role codes from the catalogue, at least one, e.g. `["R8000"]`.
    pub roles: Vec<String>,
    /// Key algorithm of the card profile: `p256` (default) or `rsa2048`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_algorithm: Option<String>,
}

/// `POST /api/v1/cards/{serial}/revoke`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct RevokeCardRequest {
    /// Why the card is revoked (free text, audited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `POST /api/v1/cards/{serial}/suspend`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct SuspendCardRequest {
    /// Why the card is suspended (required, at most 500 characters, audited).
    pub reason: String,
}

/// `POST /api/v1/self/block`: the holder blocks (suspends) their own cards.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SelfBlockRequest {
    /// The card passcode (checked like a login: a wrong one counts toward the lock).
    pub passcode: String,
}

/// The answer to `POST /api/v1/self/block`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SelfBlocked {
    /// Serials of the cards suspended (every active or locked card of the holder).
    pub suspended: Vec<String>,
}

/// The card's certificates in PEM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CardCertificates {
    /// Authentication certificate (digitalSignature, clientAuth).
    pub authentication: String,
    /// AdES signing certificate (nonRepudiation); V2 cards only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing: Option<String>,
}

/// A card as the API shows it. Private keys never appear here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CardView {
    /// Card serial; V2 serials begin with `150`.
    pub serial: String,
    /// `v1` or `v2`.
    #[serde(rename = "type")]
    pub card_type: String,
    /// `issued`, `active`, `locked`, `suspended`, `revoked` or `expired`.
    pub state: String,
    /// Role codes on the card.
    pub roles: Vec<String>,
    /// Holder's user id.
    pub user_id: Uuid,
    /// Key algorithm: `p256` or `rsa2048`.
    pub key_algorithm: String,
    /// Issue time.
    #[serde(with = "time::serde::rfc3339")]
    pub issued_at: OffsetDateTime,
    /// Expiry time (also the certificates' notAfter).
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Revocation time, once revoked.
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<OffsetDateTime>,
    /// Revocation reason, once revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_reason: Option<String>,
    /// When the card was suspended (while it is).
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub suspended_at: Option<OffsetDateTime>,
    /// Why it was suspended (while it is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspension_reason: Option<String>,
    /// Certificates in PEM.
    pub certificates: CardCertificates,
}
