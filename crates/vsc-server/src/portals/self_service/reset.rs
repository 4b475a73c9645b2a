//! "Forgotten your passcode?": the email form (always the same answer), then from the emailed
//! link the holder's security questions, the second factor (approve on the phone or type the app
//! code, else the SMS code) and the new passcode (twice).

use std::time::Duration;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::header::CONTENT_SECURITY_POLICY;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use vsc_core::enrolment::Passcode;
use vsc_proto::ResetView;

use super::{QuestionAnswers, see_other};
use crate::portals::csrf::{Csrf, PortalForm};
use crate::portals::errors::{FormProblem, Inline, PageError, SIGN_IN_PATH, inline};
use crate::portals::{SCRIPTED_PAGE_CSP, render};
use crate::service::RequestOrigin;
use crate::{ServiceError, Vsc};

/// Where a holder asks for a reset link.
const REQUEST_PATH: &str = "/self-service/reset";

/// The email form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RequestForm {
    email: String,
}

/// The second factor's form: `action=start` (send the push or code), `action=continue` (after
/// approving on the phone), or a code.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct FactorForm {
    action: String,
    code: String,
}

/// The new passcode, twice.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PasscodeForm {
    passcode: String,
    confirm: String,
}

/// The client's address (see `client_ip`), for the push the holder's phone shows.
use crate::client_ip::ClientIp as PeerIp;

#[derive(Template)]
#[template(path = "self_service/reset_request.html")]
struct RequestPage<'a> {
    csrf: &'a str,
}

#[derive(Template)]
#[template(path = "self_service/reset_questions.html")]
struct QuestionsPage<'a> {
    csrf: &'a str,
    token: &'a str,
    v: &'a ResetView,
    problem: FormProblem,
}

#[derive(Template)]
#[template(path = "self_service/reset_factor.html")]
struct FactorPage<'a> {
    csrf: &'a str,
    token: &'a str,
    /// `push`, `sms`, or empty before it was started.
    second_factor: &'a str,
    number: Option<u8>,
    /// A push is pending: the page's script waits for the answer.
    waiting: bool,
    has_authenticator: bool,
    mobile_hint: Option<&'a str>,
    problem: FormProblem,
}

#[derive(Template)]
#[template(path = "self_service/reset_passcode.html")]
struct PasscodePage<'a> {
    csrf: &'a str,
    token: &'a str,
    problem: FormProblem,
}

/// A page of its own for a link that cannot be used, saying what to do instead.
fn link_problem(e: ServiceError) -> PageError {
    let again = Some((REQUEST_PATH, "Ask for a new link"));
    match e {
        ServiceError::NotFound { field: Some("token"), message } => {
            PageError::message_page(StatusCode::NOT_FOUND, "This link is not valid", message, again)
        }
        ServiceError::LinkExpired(message) => {
            PageError::message_page(StatusCode::GONE, "This link no longer works", message, again)
        }
        ServiceError::LinkUsed(message) => PageError::message_page(
            StatusCode::GONE,
            "This link has already been used",
            message,
            Some((SIGN_IN_PATH, "Sign in")),
        ),
        ServiceError::Forbidden(message) => {
            PageError::message_page(StatusCode::FORBIDDEN, "This link no longer works", message, None)
        }
        other => other.into(),
    }
}

/// What a form shows inline, or the page of its own for a link that cannot be used.
fn form_problem(e: ServiceError) -> Result<Inline, PageError> {
    match e {
        e @ (ServiceError::NotFound { .. }
        | ServiceError::LinkExpired(_)
        | ServiceError::LinkUsed(_)
        | ServiceError::Forbidden(_)) => Err(link_problem(e)),
        e => inline(e),
    }
}

/// `GET /self-service/reset`: the email form.
pub async fn request_form(Csrf(csrf): Csrf) -> Result<Response, PageError> {
    render(StatusCode::OK, &RequestPage { csrf: &csrf })
}

/// `POST /self-service/reset`: always the same page, whether or not the address has a card.
pub async fn request(State(vsc): State<Vsc>, PortalForm(form): PortalForm<RequestForm>) -> Result<Response, PageError> {
    let accepted = vsc.request_reset(form.email.trim()).await?;
    Ok(PageError::message_page(
        StatusCode::OK,
        "Check your email",
        accepted.message,
        Some((SIGN_IN_PATH, "Back to sign in")),
    )
    .into_response())
}

/// The page for the link's current step.
async fn step_page(vsc: &Vsc, csrf: &str, token: &str, problem: Option<Inline>) -> Result<Response, PageError> {
    let v = vsc.reset_state(token).await.map_err(link_problem)?;
    let problem = FormProblem(problem);
    match v.step.as_str() {
        "questions" => {
            let page = QuestionsPage { csrf, token, v: &v, problem };
            render(page.problem.status(), &page)
        }
        "second_factor" => {
            let (number, waiting) = match v.second_factor.as_deref() {
                Some("push") => {
                    let f = vsc.reset_factor_state(token, Duration::ZERO).await.map_err(link_problem)?;
                    (f.number, f.state == "pending")
                }
                _ => (None, false),
            };
            let page = FactorPage {
                csrf,
                token,
                second_factor: v.second_factor.as_deref().unwrap_or_default(),
                number,
                waiting,
                has_authenticator: v.has_authenticator,
                mobile_hint: v.mobile_hint.as_deref(),
                problem,
            };
            let mut response = render(page.problem.status(), &page)?;
            if waiting {
                // The page's own policy lets the waiting script run and call the JSON API.
                response.headers_mut().insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(SCRIPTED_PAGE_CSP));
            }
            Ok(response)
        }
        _ => {
            let page = PasscodePage { csrf, token, problem };
            render(page.problem.status(), &page)
        }
    }
}

fn to_step(vsc: &Vsc, token: &str) -> Response {
    see_other(&format!("/self-service/reset/{token}"), &[], vsc.config())
}

/// `GET` of a step's form address (e.g. reloading after a post): back to the link's page.
pub async fn to_step_page(State(vsc): State<Vsc>, Path(token): Path<String>) -> Response {
    to_step(&vsc, &token)
}

/// `GET /self-service/reset/{token}`: the step the link is at.
pub async fn show(State(vsc): State<Vsc>, Path(token): Path<String>, Csrf(csrf): Csrf) -> Result<Response, PageError> {
    step_page(&vsc, &csrf, &token, None).await
}

/// `POST /self-service/reset/{token}/questions`.
pub async fn questions(
    State(vsc): State<Vsc>,
    Path(token): Path<String>,
    Csrf(csrf): Csrf,
    PortalForm(form): PortalForm<QuestionAnswers>,
) -> Result<Response, PageError> {
    let problem = match form.inputs() {
        Err(p) => p,
        Ok(answers) => match vsc.reset_answer_questions(&token, &answers).await {
            Ok(_) => return Ok(to_step(&vsc, &token)),
            Err(e) => form_problem(e)?,
        },
    };
    step_page(&vsc, &csrf, &token, Some(problem)).await
}

/// `POST /self-service/reset/{token}/second-factor`: start it, continue after approving on the
/// phone, or check a code.
pub async fn second_factor(
    State(vsc): State<Vsc>,
    Path(token): Path<String>,
    PeerIp(ip): PeerIp,
    Csrf(csrf): Csrf,
    PortalForm(form): PortalForm<FactorForm>,
) -> Result<Response, PageError> {
    let problem = match form.action.as_str() {
        "start" => match vsc.reset_start_second_factor(&token, &RequestOrigin { ip }).await {
            Ok(_) => return Ok(to_step(&vsc, &token)),
            Err(e) => form_problem(e)?,
        },
        "continue" => match vsc.reset_factor_state(&token, Duration::ZERO).await {
            Ok(f) if f.state == "approved" => return Ok(to_step(&vsc, &token)),
            Ok(f) if f.state == "pending" => {
                Inline::note("not approved yet: approve the request on your phone, or type the code from the app")
            }
            Ok(_) => Inline {
                status: StatusCode::CONFLICT,
                field: None,
                message: "the request was denied or has expired; send a new one".into(),
            },
            Err(e) => form_problem(e)?,
        },
        _ => match vsc.reset_verify_second_factor(&token, &form.code).await {
            Ok(_) => return Ok(to_step(&vsc, &token)),
            Err(e) => form_problem(e)?,
        },
    };
    step_page(&vsc, &csrf, &token, Some(problem)).await
}

/// `POST /self-service/reset/{token}/passcode`: the new passcode, typed twice.
pub async fn passcode(
    State(vsc): State<Vsc>,
    Path(token): Path<String>,
    Csrf(csrf): Csrf,
    PortalForm(form): PortalForm<PasscodeForm>,
) -> Result<Response, PageError> {
    let checked = Passcode::parse("passcode", &form.passcode).map_err(|e| match e {
        vsc_core::DomainError::Invalid { field, message } => Inline::field(field, message),
        other => Inline::field("passcode", other.to_string()),
    });
    let problem = match checked {
        Err(p) => p,
        Ok(_) if form.passcode != form.confirm => {
            Inline::field("confirm", "the two passcodes are different; type the same passcode twice")
        }
        Ok(_) => match vsc.reset_set_passcode(&token, &form.passcode).await {
            Ok(()) => {
                return Ok(PageError::message_page(
                    StatusCode::OK,
                    "Your passcode is changed",
                    "your card is unlocked and every open card session has ended; log in again with the new passcode",
                    Some((SIGN_IN_PATH, "Sign in")),
                )
                .into_response());
            }
            Err(e) => form_problem(e)?,
        },
    };
    step_page(&vsc, &csrf, &token, Some(problem)).await
}
