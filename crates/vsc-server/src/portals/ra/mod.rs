//! The vRA Manager, the RA staff portal under `/ra`: setting a password from a one-time link,
//! sign-in with email, password and a TOTP code (set up at the first sign-in), sign-out, and the
//! staff member's home page: the users list (search, filters, sorting, pages; htmx updates it in
//! place), and each user's page (details, cards, devices, audit log).

mod approvals;
mod audit;
mod home;
mod import;
mod listing;
mod password;
mod reports;
mod settings;
mod sign_in;
mod staff;
mod user_delete;
mod user_edit;
mod users;

use askama::Template;
use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{any, get, post};

use super::cookies::SetCookie;
use super::errors::PageError;
use super::render;
use super::self_service::see_other;
use crate::api::holder::cookie;
use crate::service::StaffMember;
use crate::{ServiceError, Vsc};

/// The staff member's home page.
pub const HOME_PATH: &str = "/ra";
/// Where staff sign in.
pub const SIGN_IN_PATH: &str = "/ra/sign-in";
/// The staff session (the cookie lives 12 hours; the server also ends it after 30 idle minutes).
pub const SESSION_COOKIE: &str = "vsc_ra";
/// The sign-in awaiting its TOTP step.
pub const SIGN_IN_COOKIE: &str = "vsc_ra_sign_in";

/// The vRA Manager's routes; their error pages are shown in the vRA Manager's layout, and every
/// page carries the count of pending approvals.
pub fn routes(vsc: Vsc) -> Router<Vsc> {
    pages()
        // Any other address under /ra: the not-found page, in the vRA Manager's layout.
        .route("/ra/{*rest}", any(|| async { PageError::not_found() }))
        .layer(axum::middleware::map_response(super::errors::ra_layout))
        .layer(axum::middleware::from_fn_with_state(vsc, approvals::badge))
}

/// The vRA Manager's pages.
fn pages() -> Router<Vsc> {
    Router::new()
        .route("/ra", get(home::show))
        .route("/ra/", get(|| async { Redirect::to(HOME_PATH) }))
        .route("/ra/users/new", get(user_edit::new_form).post(user_edit::create))
        .route("/ra/users/{id}", get(users::show))
        .route("/ra/users/{id}/edit", get(user_edit::edit_form).post(user_edit::save_names))
        .route("/ra/users/{id}/email", post(user_edit::save_email))
        .route("/ra/users/{id}/delete", post(user_delete::submit))
        .route("/ra/users/{id}/devices/{device}/delete", get(users::confirm_delete_device).post(users::delete_device))
        .route("/ra/users/{id}/directory-accounts", post(users::add_directory_account))
        .route(
            "/ra/users/{id}/directory-accounts/remove",
            get(users::confirm_remove_directory_account).post(users::remove_directory_account),
        )
        .route("/ra/users/{id}/audit", get(users::audit_log))
        .route("/ra/users/{id}/cards", post(users::issue_card))
        .route("/ra/users/{id}/cards/{serial}/{action}", post(users::card_action))
        .route("/ra/users/{id}/devices/{device}/pin-reset", post(users::pin_reset))
        .route("/ra/set-password/{token}", get(password::show).post(password::submit))
        .route("/ra/sign-in", get(sign_in::show).post(sign_in::submit))
        .route("/ra/totp-setup", get(sign_in::totp_page).post(sign_in::totp_confirm))
        .route("/ra/sign-in/code", get(sign_in::code_page).post(sign_in::verify))
        .route("/ra/sign-out", get(|| async { Redirect::to(HOME_PATH) }).post(sign_in::sign_out))
        .route("/ra/pending", get(reports::pending))
        .route("/ra/pending.csv", get(reports::pending_csv))
        .route("/ra/expiring", get(reports::expiring))
        .route("/ra/expiring.csv", get(reports::expiring_csv))
        .route("/ra/approvals", get(approvals::show))
        .route("/ra/approvals/{id}/{action}", post(approvals::act))
        .route("/ra/audit", get(audit::show))
        .route("/ra/audit.csv", get(audit::export_csv))
        .route("/ra/settings", get(settings::show))
        .route("/ra/settings/roles", post(settings::add_role))
        .route("/ra/settings/roles/{code}/rename", post(settings::rename_role))
        .route("/ra/settings/roles/{code}/delete", post(settings::delete_role))
        .route("/ra/settings/questions", post(settings::add_question))
        .route("/ra/settings/questions/{id}/{action}", post(settings::question_action))
        .route("/ra/settings/organisations/{code}/domains/{action}", post(settings::domain_action))
        .route("/ra/settings/organisations/{code}/policy", post(settings::save_policy))
        .route("/ra/settings/organisations/{code}/dual-control", post(settings::save_dual_control))
        .route("/ra/staff", get(staff::list))
        .route("/ra/staff/new", get(staff::new_form).post(staff::invite))
        .route("/ra/staff/{id}", get(staff::show))
        .route("/ra/staff/{id}/{action}", post(staff::act))
        .route(
            "/ra/import",
            get(import::form)
                .post(import::upload)
                .layer(axum::extract::DefaultBodyLimit::max(import::UPLOAD_REQUEST_LIMIT)),
        )
        .route("/ra/import/sample.csv", get(import::sample))
        .route("/ra/import/{id}", get(import::status))
        .route("/ra/import/{id}/progress", get(import::progress))
}

/// A signed-in staff member (from the `vsc_ra` cookie); without a live session the request is
/// redirected to the sign-in page.
pub struct StaffSignedIn {
    /// Who.
    pub staff: StaffMember,
}

impl FromRequestParts<Vsc> for StaffSignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, vsc: &Vsc) -> Result<Self, Self::Rejection> {
        let to_sign_in = || see_other(SIGN_IN_PATH, &[SetCookie::clear(SESSION_COOKIE)], vsc.config());
        let token = cookie(parts, SESSION_COOKIE).ok_or_else(to_sign_in)?;
        match vsc.staff_session(&token).await {
            Ok(staff) => Ok(StaffSignedIn { staff }),
            Err(ServiceError::Unauthenticated(_)) => Err(to_sign_in()),
            Err(e) => Err(PageError::from(e).into_response()),
        }
    }
}

/// The staff session token of the request, if it carries one (live or not).
pub struct SessionCookie(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for SessionCookie {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(SessionCookie(cookie(parts, SESSION_COOKIE)))
    }
}

/// A page of the vRA Manager with a message and a way on (bad links).
#[derive(Template)]
#[template(path = "ra/message.html")]
struct MessagePage {
    title: &'static str,
    message: &'static str,
    advice: Option<&'static str>,
    link: (&'static str, &'static str),
}

/// A link that cannot be used: its own clear page; other errors as usual.
fn link_problem(e: ServiceError) -> Result<Response, PageError> {
    let (status, page) = match e {
        ServiceError::NotFound { field: Some("token"), .. } => (
            StatusCode::NOT_FOUND,
            MessagePage {
                title: "This link is not valid",
                message: "The link may be mistyped or cut short, or a newer link has replaced it.",
                advice: Some("Use the most recent link you were given, or ask your RA manager for a new one."),
                link: (SIGN_IN_PATH, "Go to sign-in"),
            },
        ),
        ServiceError::LinkExpired(_) => (
            StatusCode::GONE,
            MessagePage {
                title: "This link has expired",
                message: "Links to set a password work for 24 hours.",
                advice: Some("Ask your RA manager for a new link."),
                link: (SIGN_IN_PATH, "Go to sign-in"),
            },
        ),
        ServiceError::LinkUsed(_) => (
            StatusCode::GONE,
            MessagePage {
                title: "This link has already been used",
                message: "Each link sets a password once.",
                advice: Some(
                    "If you set your password, sign in with it. If you have forgotten it, ask your RA manager for a new link.",
                ),
                link: (SIGN_IN_PATH, "Sign in"),
            },
        ),
        other => return Err(other.into()),
    };
    render(status, &page)
}
