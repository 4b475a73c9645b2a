//! Signing in to the portal: email and passcode, then the code sent by SMS; and signing out.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{HOME_PATH, SessionToken, open_session, see_other};
use crate::Vsc;
use crate::api::holder::cookie;
use crate::portals::cookies::{SESSION_COOKIE, SIGN_IN_COOKIE, SetCookie};
use crate::portals::csrf::{Csrf, PortalForm};
use crate::portals::errors::{FormProblem, PageError, SIGN_IN_PATH, inline};
use crate::portals::render;

const CODE_PATH: &str = "/self-service/sign-in/code";

/// Step 1's form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SignInForm {
    email: String,
    passcode: String,
}

/// Step 2's form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CodeForm {
    code: String,
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
    Csrf(csrf): Csrf,
    PortalForm(form): PortalForm<SignInForm>,
) -> Result<Response, PageError> {
    match vsc.sign_in(form.email.trim(), &form.passcode).await {
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

/// `GET /self-service/sign-in/code`.
pub async fn code_page(pending: PendingSignIn, Csrf(csrf): Csrf) -> Result<Response, PageError> {
    render(
        StatusCode::OK,
        &SignInCodePage { csrf: &csrf, mobile_tail: &pending.mobile_tail, problem: FormProblem::default() },
    )
}

/// `POST /self-service/sign-in/code`: the right code opens a session.
pub async fn verify(
    State(vsc): State<Vsc>,
    pending: PendingSignIn,
    Csrf(csrf): Csrf,
    PortalForm(form): PortalForm<CodeForm>,
) -> Result<Response, PageError> {
    match vsc.verify_sign_in(&pending.id, &form.code).await {
        Ok(session) => Ok(open_session(&session, Some(SIGN_IN_COOKIE), vsc.config())),
        Err(e) => {
            let page = SignInCodePage {
                csrf: &csrf,
                mobile_tail: &pending.mobile_tail,
                problem: FormProblem(Some(inline(e)?)),
            };
            render(page.problem.status(), &page)
        }
    }
}

/// `POST /self-service/sign-out`: end the session and forget the cookie.
pub async fn sign_out(State(vsc): State<Vsc>, SessionToken(token): SessionToken) -> Result<Response, PageError> {
    if let Some(t) = token {
        vsc.sign_out(&t).await?;
    }
    Ok(see_other(SIGN_IN_PATH, &[SetCookie::clear(SESSION_COOKIE)], vsc.config()))
}
