//! The forgotten-passcode reset (`/api/v1/self/reset…`): request a link, answer the security
//! questions, pass the second factor, choose a new passcode.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::{AnswerInput, QuestionView};

/// `POST /api/v1/self/reset`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ResetRequest {
    /// The email address the card was issued to.
    pub email: String,
}

/// The answer to a reset request: always the same, whether or not the address has a card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ResetAccepted {
    /// Always `accepted`.
    pub status: String,
    /// What happens now.
    pub message: String,
}

/// `GET /api/v1/self/reset/{token}`: where a reset link stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ResetView {
    /// `questions`, `second_factor` or `new_passcode`.
    pub step: String,
    /// Holder's forename.
    pub forename: String,
    /// The holder's 3 security questions (to answer at step `questions`).
    pub questions: Vec<QuestionView>,
    /// `push` or `sms` once the second factor was started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub second_factor: Option<String>,
    /// Whether the holder has an active authenticator (push and app code) rather than SMS.
    pub has_authenticator: bool,
    /// Where an SMS code goes, e.g. `•••• 0123`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mobile_hint: Option<String>,
    /// When the link stops working.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// `POST /api/v1/self/reset/{token}/questions`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ResetAnswersRequest {
    /// The answers to the holder's 3 questions.
    pub answers: Vec<AnswerInput>,
}

/// The second factor of a reset: a push to the authenticator, or an SMS code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ResetFactorView {
    /// `push` (approve on the phone, or type the app code) or `sms` (type the texted code).
    pub second_factor: String,
    /// `pending`, `approved` (go on to the new passcode), `denied` or `expired` (start it again).
    pub state: String,
    /// The number to pick on the authenticator (push with number matching).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<u8>,
    /// Where the SMS code went.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mobile_hint: Option<String>,
    /// When the push or code stops working.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// `POST /api/v1/self/reset/{token}/passcode`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ResetPasscodeRequest {
    /// The new passcode: 4–8 letters and digits, at least one of each, not the current one.
    pub passcode: String,
}
