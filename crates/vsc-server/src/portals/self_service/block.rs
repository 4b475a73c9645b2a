//! "Block my card": the holder suspends their own cards after re-entering the passcode (checked
//! like a login's, so wrong ones count toward the lock) and confirming; only the RA resumes them.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::SignedIn;
use crate::Vsc;
use crate::portals::csrf::{Csrf, PortalForm};
use crate::portals::errors::{FormProblem, Inline, PageError, inline};
use crate::portals::render;

/// The form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct BlockForm {
    passcode: String,
    /// The confirmation checkbox (`on` when ticked).
    confirm: String,
}

#[derive(Template)]
#[template(path = "self_service/block.html")]
struct BlockPage<'a> {
    csrf: &'a str,
    /// Serials of the cards that would be blocked (active or locked).
    cards: Vec<String>,
    problem: FormProblem,
}

#[derive(Template)]
#[template(path = "self_service/blocked.html")]
struct BlockedPage<'a> {
    csrf: &'a str,
    /// Serials of the holder's suspended cards.
    cards: Vec<String>,
}

/// The holder's cards in `states`.
async fn cards_in(vsc: &Vsc, signed_in: &SignedIn, states: &[&str]) -> Result<Vec<String>, PageError> {
    let h = vsc.holder_view(&signed_in.holder).await?;
    Ok(h.cards.into_iter().filter(|c| states.contains(&c.state.as_str())).map(|c| c.serial).collect())
}

/// `GET /self-service/block`.
pub async fn show(State(vsc): State<Vsc>, signed_in: SignedIn, Csrf(csrf): Csrf) -> Result<Response, PageError> {
    let cards = cards_in(&vsc, &signed_in, &["active", "locked"]).await?;
    render(StatusCode::OK, &BlockPage { csrf: &csrf, cards, problem: FormProblem::default() })
}

/// `POST /self-service/block`: both fields are required; then the service checks the passcode.
pub async fn submit(
    State(vsc): State<Vsc>,
    signed_in: SignedIn,
    Csrf(csrf): Csrf,
    PortalForm(form): PortalForm<BlockForm>,
) -> Result<Response, PageError> {
    let problem = if form.passcode.is_empty() {
        Inline::field("passcode", "enter your passcode")
    } else if form.confirm != "on" {
        Inline::field("confirm", "tick the box to confirm that you want to block your card")
    } else {
        match vsc.self_block(&signed_in.holder, &form.passcode).await {
            // Blocking ends every portal session, this one too: the answer is shown at once.
            Ok(cards) => return render(StatusCode::OK, &BlockedPage { csrf: &csrf, cards }),
            Err(e) => inline(e)?,
        }
    };
    let cards = cards_in(&vsc, &signed_in, &["active", "locked"]).await?;
    let page = BlockPage { csrf: &csrf, cards, problem: FormProblem(Some(problem)) };
    render(page.problem.status(), &page)
}
