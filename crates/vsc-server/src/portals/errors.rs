//! The one mapping from service errors to what a holder sees in the portal: a message beside
//! the form field at fault ([`Inline`]), an error page, or a redirect to sign-in ([`PageError`]).
//! Under `/ra` the same pages are shown in the vRA Manager's layout ([`ra_layout`]).

use std::fmt::Display;

use askama::Template;
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::{Html, IntoResponse, Response};
use vsc_core::DomainError;

use crate::ServiceError;

/// Where the holder signs in.
pub const SIGN_IN_PATH: &str = "/self-service/sign-in";

/// A request the portal cannot answer with the page asked for.
#[derive(Debug)]
pub enum PageError {
    /// An error page.
    Page(ErrorPage),
    /// No valid session: sign in first.
    SignIn,
}

/// An error page's content.
#[derive(Debug, Clone, Template)]
#[template(path = "self_service/message.html")]
pub struct ErrorPage {
    /// HTTP status.
    status: StatusCode,
    /// Heading.
    pub title: &'static str,
    /// What happened (usually the service's own words).
    pub message: String,
    /// What to do next.
    pub advice: Option<&'static str>,
    /// A way on: (href, text).
    pub link: Option<(&'static str, &'static str)>,
    /// The id an internal error was logged under.
    pub error_id: Option<String>,
    /// Seconds to wait before retrying (`Retry-After`), when the service is busy or limiting
    /// (`u16`: at most an hour is ever asked, and the page stays small).
    pub retry_after: Option<u16>,
}

impl ErrorPage {
    /// The message as a sentence: service messages are lower-case phrases without a full stop
    /// (the stylesheet capitalises the first letter).
    pub fn sentence(&self) -> String {
        let m = self.message.trim_end();
        if m.ends_with(['.', '!', '?']) { m.to_string() } else { format!("{m}.") }
    }
}

impl PageError {
    /// A page with a message of its own (a confirmation, or a link problem outside enrolment).
    pub fn message_page(
        status: StatusCode,
        title: &'static str,
        message: impl Into<String>,
        link: Option<(&'static str, &'static str)>,
    ) -> Self {
        PageError::Page(ErrorPage {
            status,
            title,
            message: message.into(),
            advice: None,
            link,
            error_id: None,
            retry_after: None,
        })
    }

    fn page(status: StatusCode, title: &'static str, message: impl Into<String>) -> Self {
        PageError::Page(ErrorPage {
            status,
            title,
            message: message.into(),
            advice: None,
            link: None,
            error_id: None,
            retry_after: None,
        })
    }

    fn advice(self, advice: &'static str) -> Self {
        match self {
            PageError::Page(p) => PageError::Page(ErrorPage { advice: Some(advice), ..p }),
            other => other,
        }
    }

    /// The page with a `Retry-After` header of `seconds`.
    pub fn retry_after(self, seconds: u64) -> Self {
        match self {
            PageError::Page(p) => {
                PageError::Page(ErrorPage { retry_after: Some(u16::try_from(seconds).unwrap_or(u16::MAX)), ..p })
            }
            other => other,
        }
    }

    fn link(self, href: &'static str, text: &'static str) -> Self {
        match self {
            PageError::Page(p) => PageError::Page(ErrorPage { link: Some((href, text)), ..p }),
            other => other,
        }
    }

    /// The form's CSRF token is missing or does not match the cookie.
    pub fn csrf() -> Self {
        PageError::page(
            StatusCode::FORBIDDEN,
            "This form could not be accepted",
            "for your security, forms work only from the page they were shown on, and only for a while",
        )
        .advice("Go back, reload the page and try again. If you opened the page from another site or a bookmark, open it again from the Self-Service Portal.")
        .link("/self-service/", "Go to the Self-Service Portal")
    }

    /// No such page.
    pub fn not_found() -> Self {
        PageError::page(StatusCode::NOT_FOUND, "Page not found", "there is no page at this address")
            .advice("If you typed the address, check it is correct. If you pasted it, check you copied all of it.")
            .link("/self-service/", "Go to the Self-Service Portal")
    }

    /// A form that could not be read at all (not one a portal page sent).
    pub fn bad_form(reason: impl Display) -> Self {
        PageError::page(StatusCode::BAD_REQUEST, "This form could not be read", reason.to_string())
            .advice("Go back, reload the page and try again.")
    }

    /// Something failed inside the service: log it under a random id and show only the id.
    pub fn internal(e: &dyn Display) -> Self {
        PageError::internal_with(e, StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn internal_with(e: &dyn Display, status: StatusCode) -> Self {
        let id = hex::encode(vsc_crypto::random::bytes::<6>());
        tracing::error!(error_id = %id, error = %e, "portal request failed");
        PageError::Page(ErrorPage {
            status,
            title: "Sorry, there is a problem with the service",
            message: "something went wrong on our side; nothing you entered caused it".into(),
            advice: Some(
                "Try again later. If it keeps happening, contact your Registration Authority (RA) and quote the error id below.",
            ),
            link: None,
            error_id: Some(id),
            retry_after: None,
        })
    }
}

impl From<ServiceError> for PageError {
    fn from(e: ServiceError) -> Self {
        let e = e.answered();
        match e {
            ServiceError::Domain(DomainError::Invalid { message, .. }) => {
                PageError::page(StatusCode::UNPROCESSABLE_ENTITY, "There is a problem with what you entered", message)
                    .advice("Go back and check what you entered.")
            }
            ServiceError::Domain(DomainError::InvalidState(message)) => {
                PageError::page(StatusCode::CONFLICT, "This cannot be done now", message)
                    .link("/self-service/", "Go to the Self-Service Portal")
            }
            ServiceError::NotFound { field: Some("token"), message } => {
                PageError::page(StatusCode::NOT_FOUND, "This link is not valid", message)
                    .advice("Open the link from your most recent invitation email: sending a new invitation makes older links stop working. If it still does not work, contact your Registration Authority (RA).")
            }
            ServiceError::NotFound { .. } => PageError::not_found(),
            ServiceError::Conflict { message, .. } => {
                PageError::page(StatusCode::CONFLICT, "This cannot be done now", message)
            }
            ServiceError::Forbidden(message) => PageError::page(StatusCode::FORBIDDEN, "You cannot do this", message),
            ServiceError::DualControl { refusal: crate::error::DualControlRefusal::NotPending, message } => {
                PageError::page(StatusCode::CONFLICT, "This request is no longer pending", message)
            }
            ServiceError::DualControl { message, .. } => {
                PageError::page(StatusCode::FORBIDDEN, "You cannot approve this request", message)
            }
            ServiceError::LinkExpired(message) => PageError::page(StatusCode::GONE, "This link has expired", message)
                .advice("Links to set up a card work for 14 days from the invitation. Your RA can send you a new invitation with a new link."),
            ServiceError::LinkUsed(message) => {
                PageError::page(StatusCode::GONE, "This link has already been used", message)
                    .advice("If you have set up your card, sign in with your email address and passcode.")
                    .link(SIGN_IN_PATH, "Sign in to the Self-Service Portal")
            }
            ServiceError::RateLimited(message) => {
                PageError::page(StatusCode::TOO_MANY_REQUESTS, "Too many attempts", message)
                    .advice("Wait a little, then try again.")
            }
            ServiceError::Busy(seconds) => PageError::page(
                StatusCode::SERVICE_UNAVAILABLE,
                "The service is busy",
                "too many requests are being handled right now; nothing you entered was checked",
            )
            .advice("Wait a moment, then try again.")
            .retry_after(seconds),
            ServiceError::SignInFailed(message) => PageError::page(StatusCode::UNAUTHORIZED, "Sign-in failed", message)
                .link(SIGN_IN_PATH, "Sign in again"),
            ServiceError::Unauthenticated(_) => PageError::SignIn,
            // Only device requests (JSON) need a PIN; a page never gets here, but says so if it does.
            ServiceError::PinRequired(message) => {
                PageError::page(StatusCode::CONFLICT, "Set your authenticator's PIN first", message)
            }
            ServiceError::Store(vsc_store::StoreError::Constraint(_)) => PageError::page(
                StatusCode::CONFLICT,
                "This cannot be done now",
                "the request crossed with another change; go back and try again",
            ),
            ServiceError::Store(vsc_store::StoreError::Database(
                sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed,
            )) => PageError::internal_with(&e, StatusCode::SERVICE_UNAVAILABLE),
            other => PageError::internal(&other),
        }
    }
}

impl From<askama::Error> for PageError {
    fn from(e: askama::Error) -> Self {
        PageError::internal(&e)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::SignIn => {
                let mut r = (StatusCode::SEE_OTHER, [(LOCATION, SIGN_IN_PATH)]).into_response();
                r.extensions_mut().insert(SignInRedirect);
                r
            }
            PageError::Page(page) => {
                let mut r = render_page(&page);
                if let Some(seconds) = page.retry_after {
                    r.headers_mut().insert(axum::http::header::RETRY_AFTER, seconds.into());
                }
                // For the vRA Manager's layer to re-render in its own layout.
                r.extensions_mut().insert(page);
                r
            }
        }
    }
}

/// Marks the redirect to the self-service sign-in, which `/ra` sends to its own sign-in.
#[derive(Debug, Clone, Copy)]
struct SignInRedirect;

fn render_page<T: Template + HasStatus>(page: &T) -> Response {
    match page.render() {
        Ok(html) => (page.status(), Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "error page failed to render");
            (page.status(), "Sorry, there is a problem with the service.").into_response()
        }
    }
}

/// The HTTP status an error page is answered with.
trait HasStatus {
    fn status(&self) -> StatusCode;
}

impl HasStatus for ErrorPage {
    fn status(&self) -> StatusCode {
        self.status
    }
}

/// An error page in the vRA Manager's layout.
#[derive(Debug, Template)]
#[template(path = "ra/error.html")]
struct RaErrorPage {
    page: ErrorPage,
}

impl HasStatus for RaErrorPage {
    fn status(&self) -> StatusCode {
        self.page.status
    }
}

/// The vRA Manager's users list, where its error pages lead.
const RA_HOME: (&str, &str) = ("/ra", "Go to the users list");

/// Response layer of the `/ra` routes: an error page is shown in the vRA Manager's layout (with
/// its links leading into the vRA Manager), and "sign in first" goes to the staff sign-in.
pub async fn ra_layout(response: Response) -> Response {
    if response.extensions().get::<SignInRedirect>().is_some() {
        return (StatusCode::SEE_OTHER, [(LOCATION, "/ra/sign-in")]).into_response();
    }
    let Some(page) = response.extensions().get::<ErrorPage>().cloned() else {
        return response;
    };
    let mut page = page;
    if page.link.is_some_and(|(href, _)| href.starts_with("/self-service")) {
        page.link = Some(RA_HOME);
    }
    if page.advice.is_some_and(|a| a.contains("Self-Service Portal") || a.contains("your Registration Authority")) {
        page.advice = Some(if page.error_id.is_some() {
            "Try again later. If it keeps happening, tell your service administrator and quote the error id below."
        } else {
            "Go back, reload the page and try again."
        });
    }
    let mut headers = response.headers().clone();
    let mut r = render_page(&RaErrorPage { page });
    headers.remove(axum::http::header::CONTENT_LENGTH);
    headers.remove(axum::http::header::CONTENT_TYPE);
    for (name, value) in headers.iter() {
        r.headers_mut().entry(name).or_insert_with(|| value.clone());
    }
    r
}

/// A message to show beside a form field (or above the form when `field` is `None`), with the
/// status the re-rendered form answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Inline {
    /// HTTP status of the page showing it.
    pub status: StatusCode,
    /// The form field at fault.
    pub field: Option<String>,
    /// The service's (or the form's) words, shown verbatim.
    pub message: String,
}

impl Inline {
    /// A problem with one field of a form the portal checks itself (e.g. a confirmation).
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Inline { status: StatusCode::UNPROCESSABLE_ENTITY, field: Some(field.to_string()), message: message.into() }
    }

    /// A message about the whole form (e.g. "we sent a new code"), status 200.
    pub fn note(message: impl Into<String>) -> Self {
        Inline { status: StatusCode::OK, field: None, message: message.into() }
    }
}

/// Split a service error into what a form shows inline (rule broken, wrong code, wrong
/// passcode, too soon, sign-in refused) and what needs a page of its own.
pub fn inline(e: ServiceError) -> Result<Inline, PageError> {
    let (status, field, message) = match e.answered() {
        ServiceError::Domain(DomainError::Invalid { field, message }) => {
            (StatusCode::UNPROCESSABLE_ENTITY, Some(field.to_string()), message)
        }
        ServiceError::Domain(DomainError::InvalidState(message)) => (StatusCode::CONFLICT, None, message),
        ServiceError::RateLimited(message) => (StatusCode::TOO_MANY_REQUESTS, None, message),
        ServiceError::SignInFailed(message) => (StatusCode::UNAUTHORIZED, None, message),
        other => return Err(other.into()),
    };
    Ok(Inline { status, field, message })
}

/// The problem a form is re-rendered with, if any; templates ask it about each field.
#[derive(Debug, Clone, Default)]
pub struct FormProblem(pub Option<Inline>);

impl FormProblem {
    /// The message for `field`, if it is the one at fault.
    pub fn on(&self, field: &str) -> Option<&str> {
        self.0.as_ref().filter(|p| p.field.as_deref() == Some(field)).map(|p| p.message.as_str())
    }

    /// Whether there is anything to show.
    pub fn any(&self) -> bool {
        self.0.is_some()
    }

    /// Whether the message is good news (a note) rather than a problem.
    pub fn is_note(&self) -> bool {
        self.0.as_ref().is_some_and(|p| p.status.is_success())
    }

    /// The message for the summary at the top of the form.
    pub fn message(&self) -> &str {
        self.0.as_ref().map(|p| p.message.as_str()).unwrap_or_default()
    }

    /// The anchor the summary links to: the field at fault (answers go to the first question).
    pub fn anchor(&self) -> String {
        match self.0.as_ref().and_then(|p| p.field.as_deref()) {
            Some("answers") => "question1".into(),
            Some(f) => f.to_string(),
            None => "main".into(),
        }
    }

    /// The HTTP status of the page.
    pub fn status(&self) -> StatusCode {
        self.0.as_ref().map(|p| p.status).unwrap_or(StatusCode::OK)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_breaks_stay_inline_and_link_problems_get_pages() {
        let i = inline(DomainError::invalid("passcode", "the passcode needs at least one digit").into()).unwrap();
        assert_eq!(i.field.as_deref(), Some("passcode"));
        assert_eq!(FormProblem(Some(i)).on("passcode"), Some("the passcode needs at least one digit"));
        let r = inline(ServiceError::RateLimited("wait".into())).unwrap();
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
        for (e, status) in [
            (ServiceError::LinkExpired("x".into()), StatusCode::GONE),
            (ServiceError::LinkUsed("x".into()), StatusCode::GONE),
            (ServiceError::not_found("token", "x"), StatusCode::NOT_FOUND),
            (ServiceError::Startup("disk on fire".into()), StatusCode::INTERNAL_SERVER_ERROR),
        ] {
            match inline(e) {
                Err(PageError::Page(p)) => assert_eq!(p.status, status),
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(inline(ServiceError::Unauthenticated("x".into())), Err(PageError::SignIn)));
    }
}
