//! The portal's home page: the holder, their cards and devices.

use askama::Template;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use vsc_proto::HolderView;

use super::{SignedIn, card_type_name, card_type_use};
use crate::Vsc;
use crate::portals::csrf::Csrf;
use crate::portals::errors::PageError;
use crate::portals::{date, render};

/// A card as the home page lists it.
struct CardLine {
    /// 1 for the newest card: its elements carry the plain ids (`serial`, `card-state`).
    n: usize,
    serial: String,
    /// "V2".
    label: &'static str,
    /// What it is for.
    kind: &'static str,
    state: String,
    expires: String,
    roles: String,
}

#[derive(Template)]
#[template(path = "self_service/home.html")]
struct HomePage<'a> {
    csrf: &'a str,
    h: &'a HolderView,
    cards: Vec<CardLine>,
    note: Option<&'static str>,
}

/// `GET /self-service/`.
pub async fn show(
    State(vsc): State<Vsc>,
    SignedIn { holder }: SignedIn,
    uri: Uri,
    Csrf(csrf): Csrf,
) -> Result<Response, PageError> {
    let h = vsc.holder_view(&holder).await?;
    let cards = h
        .cards
        .iter()
        .enumerate()
        .map(|(i, c)| CardLine {
            n: i + 1,
            serial: c.serial.clone(),
            label: card_type_name(&c.card_type),
            kind: card_type_use(&c.card_type),
            state: c.state.clone(),
            expires: date(c.expires_at),
            roles: c.roles.join(", "),
        })
        .collect();
    let note = match uri.query() {
        Some("done=questions") => Some("your security questions have been changed"),
        Some("done=email-sent") => Some("we have sent a confirmation link to your email address"),
        Some("done=mobile-verified") => Some("your mobile number is confirmed"),
        _ => None,
    };
    render(StatusCode::OK, &HomePage { csrf: &csrf, h: &h, cards, note })
}
