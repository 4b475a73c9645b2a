//! Organisations (e.g. NHS trusts) that own users.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// `POST /api/v1/organisations`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateOrganisationRequest {
    /// Short code, letters and digits (stored upper-case), e.g. `RX1`.
    pub code: String,
    /// Display name.
    pub name: String,
    /// Email domains the organisation's users may have, e.g. `["nhs.net"]`.
    pub email_domains: Vec<String>,
}

/// `PATCH /api/v1/organisations/{code}`: rename an organisation (operators only).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameOrganisationRequest {
    /// The new display name (unique whatever its case).
    pub name: String,
}

/// An organisation as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OrganisationView {
    /// Internal id.
    pub id: Uuid,
    /// Short code.
    pub code: String,
    /// Display name.
    pub name: String,
    /// Allowed email domains, sorted.
    pub email_domains: Vec<String>,
}
