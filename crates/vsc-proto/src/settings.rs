//! The vRA Manager's settings: the role and security-question catalogues, and each
//! organisation's allowed email domains and login policy.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A catalogue role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RoleView {
    /// Code, e.g. `R8000`.
    pub code: String,
    /// Name.
    pub name: String,
    /// A default role: it cannot be deleted.
    pub is_default: bool,
    /// Cards (of any state) that carry it; a role on cards cannot be deleted.
    pub cards: i64,
}

/// `POST /api/v1/roles`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateRoleRequest {
    /// Code: 2–16 letters and digits (stored upper-case), e.g. `R9001`.
    pub code: String,
    /// Name.
    pub name: String,
}

/// `PATCH /api/v1/roles/{code}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RenameRoleRequest {
    /// The new name.
    pub name: String,
}

/// A security question of the catalogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SecurityQuestionView {
    /// Id.
    pub id: i64,
    /// Text.
    pub text: String,
    /// Offered to holders choosing their questions (false: retired).
    pub active: bool,
    /// Holders who answered it (they keep it even when it is retired).
    pub answered_by: i64,
}

/// `POST /api/v1/security-questions`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateQuestionRequest {
    /// Text.
    pub text: String,
}

/// `PATCH /api/v1/security-questions/{id}`: change what is given.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct UpdateQuestionRequest {
    /// New text.
    #[serde(default)]
    pub text: Option<String>,
    /// `false` retires the question, `true` offers it again.
    #[serde(default)]
    pub active: Option<bool>,
}

/// An organisation's own policy (`PUT /api/v1/organisations/{code}/policy`); `null` means the
/// service default from the configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OrganisationPolicy {
    /// Push-only (passwordless) card login allowed.
    #[serde(default)]
    pub push_only: bool,
    /// Pushes ask the holder to match a number.
    #[serde(default)]
    pub number_matching: Option<bool>,
    /// Card session lifetime, 1–10080 minutes.
    #[serde(default)]
    pub session_minutes: Option<i64>,
    /// Card session idle timeout, 1 minute to the session lifetime.
    #[serde(default)]
    pub idle_minutes: Option<i64>,
    /// Days between enrolment reminders, 1–14.
    #[serde(default)]
    pub reminder_days: Option<i64>,
}

/// The policy in effect (the organisation's own values, else the service defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EffectivePolicy {
    /// Push-only (passwordless) card login allowed.
    pub push_only: bool,
    /// Pushes ask the holder to match a number.
    pub number_matching: bool,
    /// Card session lifetime (minutes).
    pub session_minutes: i64,
    /// Card session idle timeout (minutes).
    pub idle_minutes: i64,
    /// Days between enrolment reminders.
    pub reminder_days: i64,
}

/// An organisation's policy as set and as in effect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OrganisationPolicyView {
    /// Organisation code.
    pub organisation: String,
    /// What the organisation sets (`null`: the service default).
    pub settings: OrganisationPolicy,
    /// What is in effect.
    pub effective: EffectivePolicy,
}

/// `POST /api/v1/organisations/{code}/email-domains`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AddEmailDomainRequest {
    /// Domain, e.g. `nhs.net`.
    pub domain: String,
}
