//! `GET /api/v1/reports/…`: the RA's pending-users and expiring-cards reports.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// A user with a card issued but not yet enrolled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PendingUser {
    /// User UUID.
    pub user_id: String,
    /// `<FORENAME> <SURNAME> (<SUBJECTCN>)`.
    pub name: String,
    /// Email.
    pub email: String,
    /// Organisation code.
    pub organisation: String,
    /// Card serial.
    pub serial: String,
    /// `v1` or `v2`.
    pub card_type: String,
    /// When the current invitation was sent.
    #[serde(with = "time::serde::rfc3339")]
    pub invited_at: OffsetDateTime,
    /// Last reminder (none yet: `null`).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub reminded_at: Option<OffsetDateTime>,
    /// When the enrolment link expires.
    #[serde(with = "time::serde::rfc3339")]
    pub link_expires_at: OffsetDateTime,
}

/// The pending-users report, newest invitation first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PendingReport {
    /// The pending users (one row per card).
    pub users: Vec<PendingUser>,
    /// Whether more rows matched than the report holds (10,000).
    pub truncated: bool,
}

/// A card (not revoked) expiring soon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ExpiringCard {
    /// Holder's UUID.
    pub user_id: String,
    /// `<FORENAME> <SURNAME> (<SUBJECTCN>)`.
    pub name: String,
    /// Email.
    pub email: String,
    /// Organisation code.
    pub organisation: String,
    /// Card serial.
    pub serial: String,
    /// `v1` or `v2`.
    pub card_type: String,
    /// `issued`, `active` or `locked`.
    pub state: String,
    /// Expiry.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Whole days left until expiry (0: expires within a day).
    pub days_left: i64,
}

/// The expiring-cards report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ExpiringReport {
    /// The window in days.
    pub days: u32,
    /// The cards, in the order asked for.
    pub cards: Vec<ExpiringCard>,
    /// Whether more rows matched than the report holds (10,000).
    pub truncated: bool,
}

/// The query string of `GET /api/v1/reports/expiring`, as written (validated by the service).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExpiringQuery {
    /// Window in days, 1–365 (default 30).
    pub days: Option<String>,
    /// `expiry` (default) or `name`.
    pub sort: Option<String>,
    /// `asc` (default) or `desc`.
    pub dir: Option<String>,
}
