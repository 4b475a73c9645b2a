//! Setting a staff password from the one-time link (`/ra/set-password/{token}`).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::{SIGN_IN_PATH, link_problem};
use crate::portals::csrf::{Csrf, PortalForm};
use crate::portals::errors::{FormProblem, Inline, PageError, inline};
use crate::portals::render;
use crate::portals::self_service::see_other;
use crate::{ServiceError, Vsc};

/// The form: the password, typed twice.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PasswordForm {
    password: String,
    confirm: String,
}

#[derive(Template)]
#[template(path = "ra/set_password.html")]
struct SetPasswordPage<'a> {
    csrf: &'a str,
    token: &'a str,
    email: &'a str,
    problem: FormProblem,
}

/// A link token as it may appear in a URL (anything else is simply not a link of ours).
fn plausible(token: &str) -> bool {
    (16..=128).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `GET /ra/set-password/{token}`.
pub async fn show(State(vsc): State<Vsc>, Path(token): Path<String>, Csrf(csrf): Csrf) -> Result<Response, PageError> {
    if !plausible(&token) {
        return link_problem(ServiceError::not_found("token", "not a link"));
    }
    match vsc.staff_password_link(&token).await {
        Ok(email) => render(
            StatusCode::OK,
            &SetPasswordPage { csrf: &csrf, token: &token, email: &email, problem: FormProblem::default() },
        ),
        Err(e) => link_problem(e),
    }
}

/// `POST /ra/set-password/{token}`: set the password, then sign in.
pub async fn submit(
    State(vsc): State<Vsc>,
    Path(token): Path<String>,
    Csrf(csrf): Csrf,
    PortalForm(form): PortalForm<PasswordForm>,
) -> Result<Response, PageError> {
    if !plausible(&token) {
        return link_problem(ServiceError::not_found("token", "not a link"));
    }
    let problem: Inline = match vsc.set_staff_password(&token, &form.password, &form.confirm).await {
        Ok(()) => return Ok(see_other(&format!("{SIGN_IN_PATH}?password=set"), &[], vsc.config())),
        Err(e @ (ServiceError::NotFound { .. } | ServiceError::LinkExpired(_) | ServiceError::LinkUsed(_))) => {
            return link_problem(e);
        }
        Err(e) => inline(e)?,
    };
    let email = match vsc.staff_password_link(&token).await {
        Ok(email) => email,
        Err(e) => return link_problem(e),
    };
    let page = SetPasswordPage { csrf: &csrf, token: &token, email: &email, problem: FormProblem(Some(problem)) };
    render(page.problem.status(), &page)
}
