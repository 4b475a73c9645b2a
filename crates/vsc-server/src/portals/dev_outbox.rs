//! `/dev/outbox`: the messages vsc sent or kept, for development without a mail server or SMS
//! gateway. Served only in development mode (`dev_mode`); 404 otherwise.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::errors::PageError;
use super::{date_time, render};
use crate::Vsc;
use crate::service::OutboxMessage;

/// A message as the page lists it.
struct Line {
    m: OutboxMessage,
    created: String,
}

#[derive(Template)]
#[template(path = "dev/outbox.html")]
struct OutboxPage {
    messages: Vec<Line>,
}

/// `GET /dev/outbox`: the newest 200 messages, newest last.
pub async fn show(State(vsc): State<Vsc>) -> Result<Response, PageError> {
    if !vsc.config().dev_mode {
        return Err(PageError::not_found());
    }
    let messages =
        vsc.outbox(None, 200).await?.into_iter().map(|m| Line { created: date_time(m.created_at), m }).collect();
    render(StatusCode::OK, &OutboxPage { messages })
}
