//! Signing in to the portal: email and passcode, then the second factor on one page — approve
//! the push on the phone (or type the app code) when the holder has an authenticator, else the
//! code sent by SMS; and signing out.

use std::time::Duration;

use askama::Template;
use axum::extract::State;
use axum::http::header::CONTENT_SECURITY_POLICY;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use vsc_proto::SignInStateView;

use super::mobile::MOBILE_PATH;
use super::{HOME_PATH, SessionToken, open_session, open_session_at, see_other};
use crate::api::holder::cookie;
use crate::portals::cookies::{SESSION_COOKIE, SIGN_IN_COOKIE, SetCookie};
use crate::portals::csrf::{Csrf, PortalForm};
use crate::portals::errors::{FormProblem, Inline, PageError, SIGN_IN_PATH, inline};
use crate::portals::{SCRIPTED_PAGE_CSP, render};
use crate::service::RequestOrigin;
use crate::{ServiceError, Vsc};

const CODE_PATH: &str = "/self-service/sign-in/code";

/// The form field that asks to continue after approving on the phone (instead of a code).
const CONTINUE: &str = "continue";

/// Step 1's form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SignInForm {
    email: String,
    passcode: String,
}

/// Step 2's form: a code (SMS or app), or `action=continue` after approving on the phone.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CodeForm {
    code: String,
    action: String,
}

#[derive(Template)]
#[template(path = "self_service/sign_in.html")]
struct SignInPage<'a> {
    csrf: &'a str,
    email: &'a str,
    problem: FormProblem,
}

#[derive(Template)]
#[template(path = "self_service/sign_in_code.html")]
struct SignInCodePage<'a> {
    csrf: &'a str,
    /// The last digits of the mobile number the code went to.
    mobile_tail: &'a str,
    problem: FormProblem,
}

#[derive(Template)]
#[template(path = "self_service/sign_in_push.html")]
struct SignInPushPage<'a> {
    csrf: &'a str,
    /// The sign-in id, for the script that waits for the decision.
    sign_in: &'a str,
    /// The number to pick on the phone.
    number: Option<u8>,
    /// Denied or expired: only starting again helps.
    finished: bool,
    problem: FormProblem,
}

/// The client's address (see `client_ip`), for the push the holder's phone shows.
use crate::client_ip::ClientIp as PeerIp;

/// The sign-in awaiting its code, from its cookie: (sign-in id, last digits of the mobile).
pub struct PendingSignIn {
    id: String,
    mobile_tail: String,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for PendingSignIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        let value = cookie(parts, SIGN_IN_COOKIE)
            .ok_or_else(|| (StatusCode::SEE_OTHER, [(axum::http::header::LOCATION, SIGN_IN_PATH)]).into_response())?;
        let (id, tail) = value.split_once('|').unwrap_or((value.as_str(), ""));
        Ok(PendingSignIn { id: id.to_string(), mobile_tail: tail.chars().filter(char::is_ascii_digit).collect() })
    }
}

/// `GET /self-service/sign-in` (a holder already signed in goes home).
pub async fn show(
    State(vsc): State<Vsc>,
    SessionToken(token): SessionToken,
    Csrf(csrf): Csrf,
) -> Result<Response, PageError> {
    if let Some(t) = token
        && vsc.holder_session(&t).await.is_ok()
    {
        return Ok(see_other(HOME_PATH, &[], vsc.config()));
    }
    render(StatusCode::OK, &SignInPage { csrf: &csrf, email: "", problem: FormProblem::default() })
}

/// `POST /self-service/sign-in`: check the passcode and send the code.
pub async fn submit(
    State(vsc): State<Vsc>,
    PeerIp(ip): PeerIp,
    Csrf(csrf): Csrf,
    PortalForm(form): PortalForm<SignInForm>,
) -> Result<Response, PageError> {
    match vsc.sign_in(form.email.trim(), &form.passcode, &RequestOrigin { ip }).await {
        Ok(view) => {
            let tail: String = view.mobile_hint.chars().filter(char::is_ascii_digit).collect();
            let pending = SetCookie::new(
                SIGN_IN_COOKIE,
                format!("{}|{tail}", view.sign_in),
                Some(vsc_core::enrolment::CODE_TTL_SECONDS),
            );
            Ok(see_other(CODE_PATH, &[pending], vsc.config()))
        }
        Err(e) => {
            let page = SignInPage { csrf: &csrf, email: form.email.trim(), problem: FormProblem(Some(inline(e)?)) };
            render(page.problem.status(), &page)
        }
    }
}

/// The sign-in's state, or `None` when it is unknown (start again).
async fn state_of(vsc: &Vsc, pending: &PendingSignIn) -> Result<Option<SignInStateView>, PageError> {
    match vsc.sign_in_state(&pending.id, Duration::ZERO).await {
        Ok(state) => Ok(Some(state)),
        Err(ServiceError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Back to step 1, forgetting an unknown sign-in.
fn start_again(vsc: &Vsc) -> Response {
    see_other(SIGN_IN_PATH, &[SetCookie::clear(SIGN_IN_COOKIE)], vsc.config())
}

/// The push page (its own CSP lets the waiting script run and call the JSON API).
fn push_page(
    csrf: &str,
    pending: &PendingSignIn,
    number: Option<u8>,
    problem: Option<Inline>,
) -> Result<Response, PageError> {
    let finished = problem.as_ref().is_some_and(|p| p.status == StatusCode::UNAUTHORIZED);
    let page = SignInPushPage { csrf, sign_in: &pending.id, number, finished, problem: FormProblem(problem) };
    let mut response = render(page.problem.status(), &page)?;
    response.headers_mut().insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(SCRIPTED_PAGE_CSP));
    Ok(response)
}

/// What a push in `state` means for the holder, if it is not simply pending.
fn push_problem(state: &str) -> Option<Inline> {
    let refused = |message: &str| Inline { status: StatusCode::UNAUTHORIZED, field: None, message: message.into() };
    match state {
        "approved" => Some(Inline::note("approved on your phone: continue to sign in")),
        "denied" => Some(refused("the sign-in was denied on your phone; start again")),
        "expired" => Some(refused("this sign-in has expired; start again")),
        _ => None,
    }
}

/// `GET /self-service/sign-in/code`: approve on the phone, or type the code.
pub async fn code_page(
    State(vsc): State<Vsc>,
    pending: PendingSignIn,
    Csrf(csrf): Csrf,
) -> Result<Response, PageError> {
    let Some(state) = state_of(&vsc, &pending).await? else { return Ok(start_again(&vsc)) };
    if state.second_factor == "push" {
        return push_page(&csrf, &pending, state.number, push_problem(&state.state));
    }
    render(
        StatusCode::OK,
        &SignInCodePage { csrf: &csrf, mobile_tail: &pending.mobile_tail, problem: FormProblem::default() },
    )
}

/// `POST /self-service/sign-in/code`: the right code, or an approved push, opens a session.
pub async fn verify(
    State(vsc): State<Vsc>,
    pending: PendingSignIn,
    Csrf(csrf): Csrf,
    PortalForm(form): PortalForm<CodeForm>,
) -> Result<Response, PageError> {
    let outcome = if form.action == CONTINUE {
        vsc.complete_sign_in(&pending.id).await
    } else {
        vsc.verify_sign_in(&pending.id, &form.code).await
    };
    let e = match outcome {
        Ok(session) => {
            // A mobile number the RA changed is confirmed first, before the home page.
            let holder = vsc.holder_session(&session.session).await?;
            if vsc.mobile_needs_verification(&holder).await? {
                return Ok(open_session_at(MOBILE_PATH, &session, Some(SIGN_IN_COOKIE), vsc.config()));
            }
            return Ok(open_session(&session, Some(SIGN_IN_COOKIE), vsc.config()));
        }
        Err(e) => e,
    };
    let problem = match e {
        // "Not approved yet" is news, not a mistake.
        ServiceError::Domain(vsc_core::DomainError::InvalidState(m)) if form.action == CONTINUE => Inline::note(m),
        e => inline(e)?,
    };
    let Some(state) = state_of(&vsc, &pending).await? else { return Ok(start_again(&vsc)) };
    if state.second_factor == "push" {
        return push_page(&csrf, &pending, state.number, Some(problem));
    }
    let page = SignInCodePage { csrf: &csrf, mobile_tail: &pending.mobile_tail, problem: FormProblem(Some(problem)) };
    render(page.problem.status(), &page)
}

/// `POST /self-service/sign-out`: end the session and forget the cookie.
pub async fn sign_out(State(vsc): State<Vsc>, SessionToken(token): SessionToken) -> Result<Response, PageError> {
    if let Some(t) = token {
        vsc.sign_out(&t).await?;
    }
    Ok(see_other(SIGN_IN_PATH, &[SetCookie::clear(SESSION_COOKIE)], vsc.config()))
}
