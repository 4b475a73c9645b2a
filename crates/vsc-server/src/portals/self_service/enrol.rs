//! Enrolment from the invitation link: choose a passcode and three security questions (and give
//! a mobile number when none is on record), then type the code sent by SMS; the holder is then
//! signed in to the portal.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::Response;
use serde::Deserialize;
use vsc_core::enrolment::Passcode;
use vsc_proto::{EnrolmentRequest, EnrolmentView};

use super::{QuestionAnswers, QuestionSlot, card_type_name, card_type_use, open_session, question_slots, see_other};
use crate::Vsc;
use crate::portals::csrf::{Csrf, PortalForm};
use crate::portals::errors::{FormProblem, Inline, PageError, inline};
use crate::portals::{date, render};

/// Step 1's form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct EnrolForm {
    passcode: String,
    confirm: String,
    mobile: String,
    #[serde(flatten)]
    questions: QuestionAnswers,
}

/// Step 2's form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CodeForm {
    code: String,
}

#[derive(Template)]
#[template(path = "self_service/enrol_form.html")]
struct EnrolFormPage<'a> {
    csrf: &'a str,
    token: &'a str,
    v: &'a EnrolmentView,
    card_type: &'static str,
    card_use: &'static str,
    link_expires: String,
    slots: Vec<QuestionSlot>,
    mobile: &'a str,
    problem: FormProblem,
}

#[derive(Template)]
#[template(path = "self_service/enrol_code.html")]
struct EnrolCodePage<'a> {
    csrf: &'a str,
    token: &'a str,
    mobile_hint: &'a str,
    /// A code is live (otherwise: ask for a new one).
    live: bool,
    problem: FormProblem,
}

fn form_page(
    csrf: &str,
    token: &str,
    v: &EnrolmentView,
    form: &EnrolForm,
    problem: FormProblem,
) -> Result<Response, PageError> {
    let page = EnrolFormPage {
        csrf,
        token,
        v,
        card_type: card_type_name(&v.card_type),
        card_use: card_type_use(&v.card_type),
        link_expires: date(v.expires_at),
        slots: question_slots(&v.questions, form.questions.chosen()),
        mobile: &form.mobile,
        problem,
    };
    render(page.problem.status(), &page)
}

fn code_page_for(csrf: &str, token: &str, v: &EnrolmentView, problem: FormProblem) -> Result<Response, PageError> {
    let page = EnrolCodePage {
        csrf,
        token,
        mobile_hint: v.mobile_hint.as_deref().unwrap_or("your mobile phone"),
        live: v.step == "code",
        problem,
    };
    render(page.problem.status(), &page)
}

/// `GET /self-service/enrol/{token}`: the form, or the code page once a code was sent (`?again`
/// shows the form anyway, to choose differently).
pub async fn show(
    State(vsc): State<Vsc>,
    Path(token): Path<String>,
    uri: Uri,
    Csrf(csrf): Csrf,
) -> Result<Response, PageError> {
    let v = vsc.enrolment(&token).await?;
    let again = uri.query().is_some_and(|q| q.split('&').any(|p| p == "again" || p.starts_with("again=")));
    if v.step == "code" && !again {
        return code_page_for(&csrf, &token, &v, FormProblem::default());
    }
    form_page(&csrf, &token, &v, &EnrolForm::default(), FormProblem::default())
}

/// The request for the service, or the problem the form shows first.
fn check(form: &EnrolForm) -> Result<EnrolmentRequest, Inline> {
    // The service checks the passcode too; checking here first lets a broken rule win over a
    // mismatched confirmation, which is the more useful message.
    Passcode::parse("passcode", &form.passcode).map_err(|e| match e {
        vsc_core::DomainError::Invalid { field, message } => Inline::field(field, message),
        other => Inline::field("passcode", other.to_string()),
    })?;
    if form.passcode != form.confirm {
        return Err(Inline::field("confirm", "the two passcodes are different; type the same passcode twice"));
    }
    Ok(EnrolmentRequest {
        passcode: form.passcode.clone(),
        answers: form.questions.inputs()?,
        mobile: Some(form.mobile.trim().to_string()).filter(|m| !m.is_empty()),
    })
}

/// `POST /self-service/enrol/{token}`: save the choices and send the code.
pub async fn submit(
    State(vsc): State<Vsc>,
    Path(token): Path<String>,
    Csrf(csrf): Csrf,
    PortalForm(form): PortalForm<EnrolForm>,
) -> Result<Response, PageError> {
    let problem = match check(&form) {
        Err(p) => p,
        Ok(req) => match vsc.submit_enrolment(&token, &req).await {
            Ok(_) => return Ok(see_other(&format!("/self-service/enrol/{token}/code"), &[], vsc.config())),
            Err(e) => inline(e)?,
        },
    };
    let v = vsc.enrolment(&token).await?;
    form_page(&csrf, &token, &v, &form, FormProblem(Some(problem)))
}

/// `GET /self-service/enrol/{token}/code`.
pub async fn code_page(
    State(vsc): State<Vsc>,
    Path(token): Path<String>,
    Csrf(csrf): Csrf,
) -> Result<Response, PageError> {
    let v = vsc.enrolment(&token).await?;
    code_page_for(&csrf, &token, &v, FormProblem::default())
}

/// `POST /self-service/enrol/{token}/code`: the right code completes enrolment and signs in.
pub async fn verify(
    State(vsc): State<Vsc>,
    Path(token): Path<String>,
    Csrf(csrf): Csrf,
    PortalForm(form): PortalForm<CodeForm>,
) -> Result<Response, PageError> {
    match vsc.verify_enrolment(&token, &form.code).await {
        Ok(session) => Ok(open_session(&session, None, vsc.config())),
        Err(e) => {
            let problem = inline(e)?;
            let v = vsc.enrolment(&token).await?;
            code_page_for(&csrf, &token, &v, FormProblem(Some(problem)))
        }
    }
}

/// `GET /self-service/enrol/{token}/resend` (e.g. the address bar after asking for a new code):
/// back to the code page.
pub async fn to_code_page(State(vsc): State<Vsc>, Path(token): Path<String>) -> Result<Response, PageError> {
    vsc.enrolment(&token).await?;
    Ok(see_other(&format!("/self-service/enrol/{token}/code"), &[], vsc.config()))
}

/// `POST /self-service/enrol/{token}/resend`: a new code (rate-limited by the service).
pub async fn resend(
    State(vsc): State<Vsc>,
    Path(token): Path<String>,
    Csrf(csrf): Csrf,
) -> Result<Response, PageError> {
    let problem = match vsc.resend_enrolment_code(&token).await {
        Ok(sent) => Inline::note(format!("we sent a new code to {}", sent.mobile_hint)),
        Err(e) => inline(e)?,
    };
    let v = vsc.enrolment(&token).await?;
    code_page_for(&csrf, &token, &v, FormProblem(Some(problem)))
}
