//! The Self-Service Portal for card holders: enrolment from the invitation link, sign-in with
//! passcode and SMS code, the home page with their cards, security questions, confirming a
//! changed mobile number, sign-out.

mod block;
mod devices;
mod email;
mod enrol;
mod home;
mod mobile;
mod not_me;
mod questions;
mod reset;
mod sign_in;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::header::LOCATION;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{any, get};
use serde::Deserialize;
use vsc_proto::{AnswerInput, QuestionView, SessionView};

use super::cookies::{SESSION_COOKIE, SetCookie};
use super::errors::{Inline, PageError};
use crate::api::holder::session_token;
use crate::service::Holder;
use crate::{Config, Vsc};

/// The portal's home page.
pub const HOME_PATH: &str = "/self-service/";

/// The Self-Service Portal's routes.
pub fn routes() -> Router<Vsc> {
    Router::new()
        .route("/self-service", get(|| async { Redirect::to(HOME_PATH) }))
        .route("/self-service/", get(home::show))
        .route("/self-service/enrol/{token}", get(enrol::show).post(enrol::submit))
        .route("/self-service/enrol/{token}/code", get(enrol::code_page).post(enrol::verify))
        .route("/self-service/enrol/{token}/resend", get(enrol::to_code_page).post(enrol::resend))
        .route("/self-service/sign-in", get(sign_in::show).post(sign_in::submit))
        .route("/self-service/sign-in/code", get(sign_in::code_page).post(sign_in::verify))
        .route("/self-service/reset", get(reset::request_form).post(reset::request))
        .route("/self-service/reset/{token}", get(reset::show))
        .route("/self-service/reset/{token}/questions", get(reset::to_step_page).post(reset::questions))
        .route("/self-service/reset/{token}/second-factor", get(reset::to_step_page).post(reset::second_factor))
        .route("/self-service/reset/{token}/passcode", get(reset::to_step_page).post(reset::passcode))
        .route("/self-service/sign-out", get(|| async { Redirect::to(HOME_PATH) }).post(sign_in::sign_out))
        .route("/self-service/questions", get(questions::show).post(questions::submit))
        .route("/self-service/block", get(block::show).post(block::submit))
        .route("/self-service/email-verification", get(|| async { Redirect::to(HOME_PATH) }).post(email::resend))
        .route("/self-service/verify-email/{token}", get(email::verify))
        .route("/self-service/not-me/{token}", get(not_me::show).post(not_me::confirm))
        .route(mobile::MOBILE_PATH, get(mobile::show).post(mobile::send))
        .route(
            "/self-service/mobile-verification/verify",
            get(|| async { Redirect::to(mobile::MOBILE_PATH) }).post(mobile::verify),
        )
        .route("/self-service/devices", get(devices::list))
        .route("/self-service/devices/add", get(devices::add_form).post(devices::add))
        .route("/self-service/devices/{id}/code", get(devices::code_page).post(devices::verify))
        .route(
            "/self-service/devices/{id}/delete",
            get(|| async { Redirect::to(devices::DEVICES_PATH) }).post(devices::delete),
        )
        .route("/self-service/{*rest}", any(not_found))
}

async fn not_found() -> PageError {
    PageError::not_found()
}

/// A signed-in holder (from the session cookie); without one, the request is redirected to
/// the sign-in page.
pub struct SignedIn {
    /// Who.
    pub holder: Holder,
}

impl FromRequestParts<Vsc> for SignedIn {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, vsc: &Vsc) -> Result<Self, Self::Rejection> {
        let token = session_token(parts).ok_or(PageError::SignIn)?;
        Ok(SignedIn { holder: vsc.holder_session(&token).await? })
    }
}

/// The session token of the request, if it carries one (valid or not).
pub struct SessionToken(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for SessionToken {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(SessionToken(session_token(parts)))
    }
}

/// 303 to `location`, setting cookies.
pub fn see_other(location: &str, cookies: &[SetCookie], config: &Config) -> Response {
    let Ok(to) = HeaderValue::from_str(location) else {
        return PageError::internal(&format!("redirect to an invalid location {location:?}")).into_response();
    };
    let mut response = (StatusCode::SEE_OTHER, [(LOCATION, to)]).into_response();
    for c in cookies {
        c.apply(&mut response, config);
    }
    response
}

/// A session has opened: set its cookie (and drop `also_clear`) and go home.
pub fn open_session(session: &SessionView, also_clear: Option<&'static str>, config: &Config) -> Response {
    open_session_at(HOME_PATH, session, also_clear, config)
}

/// [`open_session`], going to `location` instead of home.
pub fn open_session_at(
    location: &str,
    session: &SessionView,
    also_clear: Option<&'static str>,
    config: &Config,
) -> Response {
    let mut cookies =
        vec![SetCookie::new(SESSION_COOKIE, session.session.clone(), Some(vsc_core::enrolment::SESSION_SECONDS))];
    cookies.extend(also_clear.map(SetCookie::clear));
    see_other(location, &cookies, config)
}

/// The three question/answer pairs of a form (enrolment, changing questions).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct QuestionAnswers {
    question1: String,
    answer1: String,
    question2: String,
    answer2: String,
    question3: String,
    answer3: String,
}

impl QuestionAnswers {
    /// The question ids chosen, as sent (to keep the choices when the form is shown again).
    pub fn chosen(&self) -> [&str; 3] {
        [&self.question1, &self.question2, &self.question3]
    }

    /// The answers for the service, or the problem when a question was not chosen.
    pub fn inputs(&self) -> Result<Vec<AnswerInput>, Inline> {
        [(&self.question1, &self.answer1), (&self.question2, &self.answer2), (&self.question3, &self.answer3)]
            .into_iter()
            .map(|(q, a)| {
                let question = q
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| Inline::field("answers", "choose a question for each of the 3 answers"))?;
                Ok(AnswerInput { question, answer: a.clone() })
            })
            .collect()
    }
}

/// One of the three question pickers of a form.
pub struct QuestionSlot {
    /// 1, 2 or 3 (names the `questionN` and `answerN` fields).
    pub n: usize,
    /// The catalogue, with the holder's choice marked.
    pub options: Vec<QuestionOption>,
}

/// A question of the catalogue in a picker.
pub struct QuestionOption {
    /// Question id.
    pub id: i64,
    /// Its text.
    pub text: String,
    /// Whether the holder chose it here.
    pub selected: bool,
}

/// The three pickers, keeping the holder's choices.
pub fn question_slots(catalogue: &[QuestionView], chosen: [&str; 3]) -> Vec<QuestionSlot> {
    chosen
        .iter()
        .enumerate()
        .map(|(i, choice)| QuestionSlot {
            n: i + 1,
            options: catalogue
                .iter()
                .map(|q| QuestionOption { id: q.id, text: q.text.clone(), selected: choice.trim() == q.id.to_string() })
                .collect(),
        })
        .collect()
}

/// A card type's name as holders see it ("V2").
pub fn card_type_name(card_type: &str) -> &'static str {
    if card_type == "v2" { "V2" } else { "V1" }
}

/// What a card type is for.
pub fn card_type_use(card_type: &str) -> &'static str {
    if card_type == "v2" { "signing in and electronic signatures" } else { "signing in" }
}
