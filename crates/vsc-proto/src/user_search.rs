//! `GET /api/v1/users`: the RA's users search.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// One of a user's cards in the users list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UserCardSummary {
    /// Card serial.
    pub serial: String,
    /// `issued`, `active`, `locked` or `revoked`.
    pub state: String,
    /// `v1` or `v2`.
    pub card_type: String,
    /// Expiry.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// A row of the users list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UserListItem {
    /// UUID.
    pub id: String,
    /// Forename.
    pub forename: String,
    /// Surname.
    pub surname: String,
    /// Subject CN.
    pub subject_cn: String,
    /// `<FORENAME> <SURNAME> (<SUBJECTCN>)`.
    pub display_name: String,
    /// Email.
    pub email: String,
    /// Organisation code.
    pub organisation: String,
    /// Created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last successful card login.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_active_at: Option<OffsetDateTime>,
    /// Earliest expiry among the cards that are not revoked.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub next_card_expiry: Option<OffsetDateTime>,
    /// The user's cards, oldest first.
    pub cards: Vec<UserCardSummary>,
}

/// A page of the users search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UserSearchPage {
    /// The users of this page.
    pub users: Vec<UserListItem>,
    /// Matching users, exact up to 10,000 (then 10,000 and `total_capped`).
    pub total: i64,
    /// Whether more than 10,000 users match.
    pub total_capped: bool,
    /// This page (1-based).
    pub page: u32,
    /// Rows per page.
    pub per_page: u32,
}

/// The query string of `GET /api/v1/users`, as written (validated by the service, which names the
/// field at fault).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserSearchQuery {
    /// Text (at least 3 characters) matched anywhere in `<FORENAME> <SURNAME> (<SUBJECTCN>)`,
    /// email, card serial or UUID, case-insensitively.
    pub q: Option<String>,
    /// Organisation code to narrow to (one of the caller's; default all of them).
    pub organisation: Option<String>,
    /// Only users with a card in this state: `issued`, `active`, `locked`, `suspended`, `revoked`.
    pub card_state: Option<String>,
    /// Only users with a card of this type: `v1`, `v2`.
    pub card_type: Option<String>,
    /// `pending` (a card issued, not yet enrolled), `enrolled` (an active or locked card), `none`.
    pub enrolment: Option<String>,
    /// `name` (default), `email`, `organisation`, `created`, `last_active`, `card_expiry`.
    pub sort: Option<String>,
    /// `asc` (default) or `desc`.
    pub dir: Option<String>,
    /// 1-based page, default 1.
    pub page: Option<String>,
    /// Rows per page, 1–200, default 50.
    pub per_page: Option<String>,
}
