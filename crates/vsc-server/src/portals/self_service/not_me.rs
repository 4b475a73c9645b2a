//! "This was not me": the link in the notice of an approved change to the holder's account. The
//! link opens a page that says what changed and asks to confirm (a mail scanner following the
//! link must not block a card); confirming suspends the holder's cards.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::portals::csrf::Csrf;
use crate::portals::errors::PageError;
use crate::portals::render;
use crate::{ServiceError, Vsc};

#[derive(Template)]
#[template(path = "self_service/not_me.html")]
struct NotMeConfirm<'a> {
    csrf: &'a str,
    token: &'a str,
    forename: String,
    what: String,
}

/// The page of an unusable link, or the usual error page.
fn link_problem(e: ServiceError) -> Response {
    match e {
        ServiceError::LinkExpired(m) => {
            PageError::message_page(StatusCode::GONE, "This link has expired", m, None).into_response()
        }
        ServiceError::LinkUsed(m) => {
            PageError::message_page(StatusCode::GONE, "This link has already been used", m, None).into_response()
        }
        ServiceError::NotFound { message, .. } => {
            PageError::message_page(StatusCode::NOT_FOUND, "This link is not valid", message, None).into_response()
        }
        other => PageError::from(other).into_response(),
    }
}

/// `GET /self-service/not-me/{token}`: what changed, and "Block my card".
pub async fn show(State(vsc): State<Vsc>, Csrf(csrf): Csrf, Path(token): Path<String>) -> Response {
    match vsc.not_me_page(&token).await {
        Ok(p) => {
            render(StatusCode::OK, &NotMeConfirm { csrf: &csrf, token: &token, forename: p.forename, what: p.what })
                .unwrap_or_else(IntoResponse::into_response)
        }
        Err(e) => link_problem(e),
    }
}

/// `POST /self-service/not-me/{token}`: suspend the holder's cards.
pub async fn confirm(State(vsc): State<Vsc>, Path(token): Path<String>) -> Response {
    match vsc.report_not_me(&token).await {
        Ok(outcome) => {
            let cards = if outcome.suspended.is_empty() {
                "you have no card in use to block".to_string()
            } else {
                format!("card {} is blocked: nobody can use it now", outcome.suspended.join(", "))
            };
            PageError::message_page(
                StatusCode::OK,
                "Your card is blocked",
                format!("{cards}. Contact your Registration Authority (RA): they will check with you, undo what you did not ask for, and resume your card"),
                None,
            )
            .into_response()
        }
        Err(e) => link_problem(e),
    }
}
