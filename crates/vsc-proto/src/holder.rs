//! Enrolment and the Self-Service Portal's JSON mirror.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::CardView;

/// A security question of the catalogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct QuestionView {
    /// Id to answer with.
    pub id: i64,
    /// Question text.
    pub text: String,
}

/// `GET /api/v1/enrolment/{token}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EnrolmentView {
    /// Holder's forename.
    pub forename: String,
    /// Holder's surname.
    pub surname: String,
    /// Card serial.
    pub serial: String,
    /// `v1` or `v2`.
    pub card_type: String,
    /// When the link expires.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// `choose` (passcode and questions) or `code` (a code was sent; verify it).
    pub step: String,
    /// True when no mobile number is on record: `mobile` is then required.
    pub needs_mobile: bool,
    /// Where the code goes, e.g. `•••• 0123` (when a number is known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mobile_hint: Option<String>,
    /// The security-question catalogue.
    pub questions: Vec<QuestionView>,
}

/// One security answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AnswerInput {
    /// Question id from the catalogue.
    pub question: i64,
    /// The answer (compared trimmed and case-insensitively).
    pub answer: String,
}

/// `POST /api/v1/enrolment/{token}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EnrolmentRequest {
    /// New passcode: 4–8 letters and digits, at least one of each.
    pub passcode: String,
    /// Three answers to three different questions.
    pub answers: Vec<AnswerInput>,
    /// Mobile number for the code, required when none is on record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mobile: Option<String>,
}

/// A code was sent by SMS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CodeSent {
    /// Always `code_sent`.
    pub status: String,
    /// Where it went, e.g. `•••• 0123`.
    pub mobile_hint: String,
    /// When it stops working.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// `{code}` for a verification step.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CodeRequest {
    /// The 6-digit code.
    pub code: String,
}

/// A holder session, usable as `Authorization: Bearer` on `/api/v1/self/…`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SessionView {
    /// Session token (secret).
    pub session: String,
    /// Expiry.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// `POST /api/v1/self/sign-in`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SignInRequest {
    /// Email.
    pub email: String,
    /// VSC passcode.
    pub passcode: String,
}

/// A sign-in awaiting its second factor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SignInView {
    /// Sign-in id (secret) for the verify step.
    pub sign_in: String,
    /// Where an SMS code went (empty when none was sent and no mobile is on record).
    pub mobile_hint: String,
    /// `push` (approve on the authenticator, or type its app code) or `sms` (a code was texted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub second_factor: Option<String>,
    /// The number to pick on the authenticator (push with number matching).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<u8>,
}

/// `GET /api/v1/self/sign-in/{sign_in}`: where a sign-in's second factor stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SignInStateView {
    /// `pending`, `approved` (complete it), `denied` or `expired` (start again).
    pub state: String,
    /// `push` or `sms`.
    pub second_factor: String,
    /// The number to pick on the authenticator (push with number matching).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<u8>,
    /// When the pending second factor stops working.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// `GET /api/v1/self`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HolderView {
    /// UUID.
    pub id: Uuid,
    /// Forename.
    pub forename: String,
    /// Surname.
    pub surname: String,
    /// `<FORENAME> <SURNAME> (<SUBJECTCN>)`.
    pub display_name: String,
    /// Email.
    pub email: String,
    /// Mobile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mobile: Option<String>,
    /// Whether the holder has confirmed the email address (enrolling from the emailed link does).
    pub email_verified: bool,
    /// Whether the holder has confirmed the mobile number (enrolment's SMS code does; after an RA
    /// change, the code from `POST /api/v1/self/mobile-verification`). SMS codes go only to a
    /// confirmed number.
    #[serde(default)]
    pub mobile_verified: bool,
    /// Organisation name.
    pub organisation: String,
    /// Cards, newest first (certificates included).
    pub cards: Vec<CardView>,
    /// Authenticator devices.
    pub devices: Vec<crate::DeviceView>,
    /// Directory accounts as `{name, state}`.
    pub directory_accounts: Vec<serde_json::Value>,
}

/// `PUT /api/v1/self/questions`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChangeQuestionsRequest {
    /// Current passcode (re-entered).
    pub passcode: String,
    /// Three new answers.
    pub answers: Vec<AnswerInput>,
}
