//! Confirming the holder's mobile number after an RA changed it: the portal asks right after
//! sign-in (before the home page); "Send code" texts a 6-digit code to the new number and the
//! code confirms it. Until then no sign-in or reset code goes to that number.

use askama::Template;
use axum::extract::State;
use axum::http::Uri;
use axum::response::Response;
use serde::Deserialize;
use vsc_core::enrolment::mobile_hint;

use super::{HOME_PATH, SignedIn, see_other};
use crate::Vsc;
use crate::portals::csrf::{Csrf, PortalForm};
use crate::portals::errors::{FormProblem, Inline, PageError, inline};
use crate::portals::render;

/// The page asking for the code.
pub const MOBILE_PATH: &str = "/self-service/mobile-verification";

#[derive(Template)]
#[template(path = "self_service/mobile_verification.html")]
struct MobilePage<'a> {
    csrf: &'a str,
    /// The last digits of the number, e.g. `•••• 0123`.
    mobile_hint: &'a str,
    problem: FormProblem,
}

/// The code form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CodeForm {
    code: String,
}

/// The page for `holder`, or home when there is nothing to confirm.
async fn page(
    vsc: &Vsc,
    holder: &crate::service::Holder,
    csrf: &str,
    problem: FormProblem,
) -> Result<Response, PageError> {
    let h = vsc.holder_view(holder).await?;
    let (Some(mobile), false) = (h.mobile.as_deref(), h.mobile_verified) else {
        return Ok(see_other(HOME_PATH, &[], vsc.config()));
    };
    let hint = mobile_hint(mobile);
    let page = MobilePage { csrf, mobile_hint: &hint, problem };
    render(page.problem.status(), &page)
}

/// `GET /self-service/mobile-verification`.
pub async fn show(
    State(vsc): State<Vsc>,
    SignedIn { holder }: SignedIn,
    uri: Uri,
    Csrf(csrf): Csrf,
) -> Result<Response, PageError> {
    let problem = match uri.query() {
        Some("sent=1") => Some(Inline::note("we have sent a 6-digit code to your mobile; it is valid for 10 minutes")),
        _ => None,
    };
    page(&vsc, &holder, &csrf, FormProblem(problem)).await
}

/// `POST /self-service/mobile-verification`: text a code to the number.
pub async fn send(
    State(vsc): State<Vsc>,
    SignedIn { holder }: SignedIn,
    Csrf(csrf): Csrf,
    PortalForm(_): PortalForm<CodeForm>,
) -> Result<Response, PageError> {
    match vsc.send_mobile_verification(&holder).await {
        Ok(_) => Ok(see_other(&format!("{MOBILE_PATH}?sent=1"), &[], vsc.config())),
        Err(e) => page(&vsc, &holder, &csrf, FormProblem(Some(inline(e)?))).await,
    }
}

/// `POST /self-service/mobile-verification/verify`: the code confirms the number.
pub async fn verify(
    State(vsc): State<Vsc>,
    SignedIn { holder }: SignedIn,
    Csrf(csrf): Csrf,
    PortalForm(form): PortalForm<CodeForm>,
) -> Result<Response, PageError> {
    match vsc.verify_mobile(&holder, &form.code).await {
        Ok(()) => Ok(see_other(&format!("{HOME_PATH}?done=mobile-verified"), &[], vsc.config())),
        Err(e) => page(&vsc, &holder, &csrf, FormProblem(Some(inline(e)?))).await,
    }
}
