//! Staff sign-in: email and password, then the TOTP step — set-up with a QR code at the first
//! sign-in, else the code from the app — and sign-out.

use askama::Template;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;
use serde::Deserialize;

use super::{HOME_PATH, SESSION_COOKIE, SIGN_IN_COOKIE, SIGN_IN_PATH, SessionCookie};
use crate::api::holder::cookie;
use crate::portals::cookies::SetCookie;
use crate::portals::csrf::{Csrf, PortalForm};
use crate::portals::errors::{FormProblem, Inline, PageError, inline};
use crate::portals::render;
use crate::portals::self_service::see_other;
use crate::service::{STAFF_SESSION_SECONDS, STAFF_SIGN_IN_STEP_SECONDS};
use crate::{ServiceError, Vsc};

const TOTP_SETUP_PATH: &str = "/ra/totp-setup";
const CODE_PATH: &str = "/ra/sign-in/code";

/// Step 1's form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SignInForm {
    email: String,
    password: String,
}

/// Step 2's form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CodeForm {
    code: String,
}

/// What the sign-in page was sent after (`?password=set`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SignInQuery {
    password: String,
}

#[derive(Template)]
#[template(path = "ra/sign_in.html")]
struct SignInPage<'a> {
    csrf: &'a str,
    email: &'a str,
    problem: FormProblem,
}

#[derive(Template)]
#[template(path = "ra/totp_setup.html")]
struct TotpSetupPage<'a> {
    csrf: &'a str,
    svg: &'a str,
    secret: &'a str,
    problem: FormProblem,
}

#[derive(Template)]
#[template(path = "ra/sign_in_code.html")]
struct CodePage<'a> {
    csrf: &'a str,
    problem: FormProblem,
}

/// The sign-in awaiting its TOTP step (its cookie); without one, back to step 1.
pub struct PendingStaffSignIn(String);

impl FromRequestParts<Vsc> for PendingStaffSignIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, vsc: &Vsc) -> Result<Self, Self::Rejection> {
        cookie(parts, SIGN_IN_COOKIE).map(PendingStaffSignIn).ok_or_else(|| see_other(SIGN_IN_PATH, &[], vsc.config()))
    }
}

/// `GET /ra/sign-in` (staff already signed in go home).
pub async fn show(
    State(vsc): State<Vsc>,
    SessionCookie(session): SessionCookie,
    Query(q): Query<SignInQuery>,
    Csrf(csrf): Csrf,
) -> Result<Response, PageError> {
    if let Some(t) = session
        && vsc.staff_session(&t).await.is_ok()
    {
        return Ok(see_other(HOME_PATH, &[], vsc.config()));
    }
    let note = (q.password == "set").then(|| Inline::note("your password is set: sign in with it"));
    render(StatusCode::OK, &SignInPage { csrf: &csrf, email: "", problem: FormProblem(note) })
}

/// `POST /ra/sign-in`: check the password, then on to the TOTP step.
pub async fn submit(
    State(vsc): State<Vsc>,
    Csrf(csrf): Csrf,
    PortalForm(form): PortalForm<SignInForm>,
) -> Result<Response, PageError> {
    match vsc.staff_sign_in(form.email.trim(), &form.password).await {
        Ok(start) => {
            let next = if start.totp_setup { TOTP_SETUP_PATH } else { CODE_PATH };
            let pending = SetCookie::new(SIGN_IN_COOKIE, start.token, Some(STAFF_SIGN_IN_STEP_SECONDS));
            Ok(see_other(next, &[pending], vsc.config()))
        }
        Err(e) => {
            let page = SignInPage { csrf: &csrf, email: form.email.trim(), problem: FormProblem(Some(inline(e)?)) };
            render(page.problem.status(), &page)
        }
    }
}

/// The sign-in cannot go on: step 1 again, with why.
fn start_again(vsc: &Vsc, csrf: &str, e: ServiceError) -> Result<Response, PageError> {
    let page = SignInPage { csrf, email: "", problem: FormProblem(Some(inline(e)?)) };
    let mut response = render(page.problem.status(), &page)?;
    SetCookie::clear(SIGN_IN_COOKIE).apply(&mut response, vsc.config());
    Ok(response)
}

/// The TOTP set-up page, with a problem to show.
async fn totp_setup(
    vsc: &Vsc,
    csrf: &str,
    pending: &PendingStaffSignIn,
    problem: Option<Inline>,
) -> Result<Response, PageError> {
    match vsc.staff_totp_setup(&pending.0).await {
        Ok(view) => {
            let page = TotpSetupPage { csrf, svg: &view.qr_svg, secret: &view.secret, problem: FormProblem(problem) };
            render(page.problem.status(), &page)
        }
        // Set up already (e.g. the page reloaded after another tab finished): ask for a code.
        Err(ServiceError::Domain(vsc_core::DomainError::InvalidState(_))) => {
            Ok(see_other(CODE_PATH, &[], vsc.config()))
        }
        Err(e @ ServiceError::SignInFailed(_)) => start_again(vsc, csrf, e),
        Err(e) => Err(e.into()),
    }
}

/// `GET /ra/totp-setup`: the QR code and key of the new second factor.
pub async fn totp_page(
    State(vsc): State<Vsc>,
    pending: PendingStaffSignIn,
    Csrf(csrf): Csrf,
) -> Result<Response, PageError> {
    totp_setup(&vsc, &csrf, &pending, None).await
}

/// A session has opened: set its cookie, forget the sign-in, go home.
fn open_session(vsc: &Vsc, session: String) -> Response {
    let cookies =
        [SetCookie::new(SESSION_COOKIE, session, Some(STAFF_SESSION_SECONDS)), SetCookie::clear(SIGN_IN_COOKIE)];
    see_other(HOME_PATH, &cookies, vsc.config())
}

/// `POST /ra/totp-setup`: the first code confirms the new second factor and signs in.
pub async fn totp_confirm(
    State(vsc): State<Vsc>,
    pending: PendingStaffSignIn,
    Csrf(csrf): Csrf,
    PortalForm(form): PortalForm<CodeForm>,
) -> Result<Response, PageError> {
    match vsc.staff_verify_code(&pending.0, &form.code).await {
        Ok(session) => Ok(open_session(&vsc, session)),
        Err(e @ ServiceError::SignInFailed(_)) => start_again(&vsc, &csrf, e),
        Err(e) => totp_setup(&vsc, &csrf, &pending, Some(inline(e)?)).await,
    }
}

/// `GET /ra/sign-in/code`.
pub async fn code_page(
    State(vsc): State<Vsc>,
    pending: PendingStaffSignIn,
    Csrf(csrf): Csrf,
) -> Result<Response, PageError> {
    match vsc.staff_sign_in_sets_up_totp(&pending.0).await {
        Ok(true) => Ok(see_other(TOTP_SETUP_PATH, &[], vsc.config())),
        Ok(false) => render(StatusCode::OK, &CodePage { csrf: &csrf, problem: FormProblem::default() }),
        Err(e @ ServiceError::SignInFailed(_)) => start_again(&vsc, &csrf, e),
        Err(e) => Err(e.into()),
    }
}

/// `POST /ra/sign-in/code`: the right code (each used once) opens a session.
pub async fn verify(
    State(vsc): State<Vsc>,
    pending: PendingStaffSignIn,
    Csrf(csrf): Csrf,
    PortalForm(form): PortalForm<CodeForm>,
) -> Result<Response, PageError> {
    match vsc.staff_verify_code(&pending.0, &form.code).await {
        Ok(session) => Ok(open_session(&vsc, session)),
        Err(e @ ServiceError::SignInFailed(_)) => start_again(&vsc, &csrf, e),
        Err(e) => {
            let page = CodePage { csrf: &csrf, problem: FormProblem(Some(inline(e)?)) };
            render(page.problem.status(), &page)
        }
    }
}

/// `POST /ra/sign-out`: end the session and forget the cookie.
pub async fn sign_out(State(vsc): State<Vsc>, SessionCookie(session): SessionCookie) -> Result<Response, PageError> {
    if let Some(t) = session {
        vsc.staff_sign_out(&t).await?;
    }
    Ok(see_other(SIGN_IN_PATH, &[SetCookie::clear(SESSION_COOKIE)], vsc.config()))
}
