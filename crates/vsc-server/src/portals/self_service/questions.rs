//! Changing the security questions (the current passcode is required).

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use vsc_proto::ChangeQuestionsRequest;

use super::{QuestionAnswers, QuestionSlot, SignedIn, question_slots, see_other};
use crate::Vsc;
use crate::portals::csrf::{Csrf, PortalForm};
use crate::portals::errors::{FormProblem, PageError, inline};
use crate::portals::render;

/// The form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct QuestionsForm {
    passcode: String,
    #[serde(flatten)]
    questions: QuestionAnswers,
}

#[derive(Template)]
#[template(path = "self_service/questions.html")]
struct QuestionsPage<'a> {
    csrf: &'a str,
    slots: Vec<QuestionSlot>,
    problem: FormProblem,
}

/// `GET /self-service/questions`.
pub async fn show(State(vsc): State<Vsc>, _: SignedIn, Csrf(csrf): Csrf) -> Result<Response, PageError> {
    let catalogue = vsc.questions().await?;
    render(
        StatusCode::OK,
        &QuestionsPage {
            csrf: &csrf,
            slots: question_slots(&catalogue, ["", "", ""]),
            problem: FormProblem::default(),
        },
    )
}

/// `POST /self-service/questions`.
pub async fn submit(
    State(vsc): State<Vsc>,
    SignedIn { holder }: SignedIn,
    Csrf(csrf): Csrf,
    PortalForm(form): PortalForm<QuestionsForm>,
) -> Result<Response, PageError> {
    let problem = match form.questions.inputs() {
        Err(p) => p,
        Ok(answers) => {
            let req = ChangeQuestionsRequest { passcode: form.passcode.clone(), answers };
            match vsc.change_questions(&holder, &req).await {
                Ok(()) => return Ok(see_other("/self-service/?done=questions", &[], vsc.config())),
                Err(e) => inline(e)?,
            }
        }
    };
    let catalogue = vsc.questions().await?;
    let page = QuestionsPage {
        csrf: &csrf,
        slots: question_slots(&catalogue, form.questions.chosen()),
        problem: FormProblem(Some(problem)),
    };
    render(page.problem.status(), &page)
}
