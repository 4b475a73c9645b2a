//! CSV import of users in the vRA Manager: the upload form (`/ra/import`) with a sample file
//! (`/ra/import/sample.csv`), and the import's own page (`/ra/import/{id}`), which shows its
//! progress while it runs (refreshing itself each second without JavaScript; htmx polls
//! `/ra/import/{id}/progress` and swaps the result in) and then the result: how many users and
//! cards were imported, or the problems by row and column with nothing imported.

use askama::Template;
use axum::extract::{Multipart, Path, State};
use axum::http::header::CONTENT_SECURITY_POLICY;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use vsc_proto::ImportRowError;

use super::reports::csv_response;
use super::{HOME_PATH, MessagePage, StaffSignedIn};
use crate::Vsc;
use crate::portals::csrf::Csrf;
use crate::portals::errors::PageError;
use crate::portals::self_service::see_other;
use crate::portals::{SCRIPTED_PAGE_CSP, render};
use crate::service::{ImportState, MAX_IMPORT_BYTES, MAX_IMPORT_ROWS};

/// Largest upload request accepted by the route (the file plus the form around it); a file
/// over [`MAX_IMPORT_BYTES`] inside it is refused with its own message.
pub const UPLOAD_REQUEST_LIMIT: usize = MAX_IMPORT_BYTES + 1024 * 1024;
/// Problems listed on the page at most (the count says how many more there are).
const ERRORS_SHOWN: usize = 1000;

/// How a problem's row and column read in the table.
struct ErrorLine {
    row: String,
    column: String,
    reason: String,
}

impl From<&ImportRowError> for ErrorLine {
    fn from(e: &ImportRowError) -> Self {
        ErrorLine {
            row: if e.row == 0 { "–".into() } else { e.row.to_string() },
            column: if e.column.is_empty() { "(whole row)".into() } else { e.column.clone() },
            reason: e.reason.clone(),
        }
    }
}

/// What the page says about an import.
struct StateView {
    id: String,
    running: bool,
    /// "Checking rows", "Importing users", "Issuing cards".
    step: &'static str,
    value: usize,
    max: usize,
    /// (users, cards) when done.
    done: Option<(String, String)>,
    errors: Vec<ErrorLine>,
    more_errors: usize,
    failure: Option<String>,
}

impl StateView {
    fn new(id: &str, state: &ImportState) -> StateView {
        let mut v = StateView {
            id: id.to_string(),
            running: !state.finished(),
            step: "",
            value: 0,
            max: 0,
            done: None,
            errors: Vec::new(),
            more_errors: 0,
            failure: None,
        };
        match state {
            ImportState::Validating { done, total } => (v.step, v.value, v.max) = ("Checking rows", *done, *total),
            ImportState::Importing { done, total } => (v.step, v.value, v.max) = ("Importing users", *done, *total),
            ImportState::IssuingCards { done, total } => (v.step, v.value, v.max) = ("Issuing cards", *done, *total),
            ImportState::Done(r) => v.done = Some((grouped(r.imported), grouped(r.cards))),
            ImportState::Rejected(errors) => {
                v.errors = errors.iter().take(ERRORS_SHOWN).map(ErrorLine::from).collect();
                v.more_errors = errors.len().saturating_sub(ERRORS_SHOWN);
            }
            ImportState::Failed(_) => {
                v.failure = Some("The import failed because of a problem on our side. Nothing was imported.".into())
            }
        }
        v
    }

    /// The page title for this state.
    fn title(&self) -> &'static str {
        if self.running {
            "Importing users"
        } else if self.done.is_some() {
            "Users imported"
        } else {
            "Error: Import users"
        }
    }

    fn plural(n: &str, one: &'static str, many: &'static str) -> &'static str {
        if n == "1" { one } else { many }
    }

    fn value_text(&self) -> String {
        grouped(self.value)
    }

    fn max_text(&self) -> String {
        grouped(self.max)
    }
}

/// 12345 as "12,345".
fn grouped(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[derive(Template)]
#[template(path = "ra/import.html")]
struct ImportPage<'a> {
    csrf: &'a str,
    problem: Option<String>,
    max_rows: String,
}

#[derive(Template)]
#[template(path = "ra/import_status.html")]
struct StatusPage<'a> {
    csrf: &'a str,
    state: StateView,
    max_rows: String,
    /// Only in the htmx fragment: the document title once finished.
    fragment_title: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "ra/_import_state.html")]
struct StateFragment<'a> {
    csrf: &'a str,
    state: StateView,
    max_rows: String,
    fragment_title: Option<&'static str>,
}

fn upload_page(csrf: &str, problem: Option<String>) -> Result<Response, PageError> {
    let status = if problem.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    render(status, &ImportPage { csrf, problem, max_rows: grouped(MAX_IMPORT_ROWS) })
}

/// `GET /ra/import`: the upload form.
pub async fn form(_: StaffSignedIn, Csrf(csrf): Csrf) -> Result<Response, PageError> {
    upload_page(&csrf, None)
}

/// `GET /ra/import/sample.csv`: a file that imports as it is.
pub async fn sample(State(vsc): State<Vsc>, StaffSignedIn { staff }: StaffSignedIn) -> Result<Response, PageError> {
    Ok(csv_response("users-sample.csv", vsc.user_import_sample(&staff.principal()).await?))
}

/// `POST /ra/import` (multipart, field `file`): start the import and show its page.
pub async fn upload(
    State(vsc): State<Vsc>,
    StaffSignedIn { staff }: StaffSignedIn,
    Csrf(csrf): Csrf,
    mut form: Multipart,
) -> Result<Response, PageError> {
    let mut file = None;
    while let Some(field) = form.next_field().await.map_err(|e| PageError::bad_form(e.body_text()))? {
        if field.name() == Some("file") {
            file = Some(field.bytes().await.map_err(|e| PageError::bad_form(e.body_text()))?);
        }
    }
    let file = match file {
        Some(f) if !f.is_empty() => f,
        _ => return upload_page(&csrf, Some("Choose a CSV file to import".into())),
    };
    if file.len() > MAX_IMPORT_BYTES {
        let mib = MAX_IMPORT_BYTES / 1024 / 1024;
        return upload_page(
            &csrf,
            Some(format!("The file is larger than {mib} MiB: split it into files of at most {mib} MiB")),
        );
    }
    let id = vsc.start_user_import(&staff.principal(), file.to_vec());
    Ok(see_other(&format!("/ra/import/{id}"), &[], vsc.config()))
}

/// The import's state, or the not-found page (unknown id, someone else's import, or one that
/// ran on another node or before a restart).
fn state_of(vsc: &Vsc, staff: &StaffSignedIn, id: &str) -> Result<Result<StateView, Response>, PageError> {
    match vsc.user_import_state(&staff.staff.principal(), id) {
        Some(state) => Ok(Ok(StateView::new(id, &state))),
        None => Ok(Err(render(
            StatusCode::NOT_FOUND,
            &MessagePage {
                title: "Import not found",
                message: "There is no import at this address that you started, or its result is no longer kept.",
                advice: Some("Look for the imported users in the users list, or import the file again."),
                link: (HOME_PATH, "Go to the users list"),
            },
        )?)),
    }
}

/// `GET /ra/import/{id}`: progress, then the result.
pub async fn status(
    State(vsc): State<Vsc>,
    staff: StaffSignedIn,
    Csrf(csrf): Csrf,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    match state_of(&vsc, &staff, &id)? {
        Ok(state) => {
            let mut response = render(
                StatusCode::OK,
                &StatusPage { csrf: &csrf, state, max_rows: grouped(MAX_IMPORT_ROWS), fragment_title: None },
            )?;
            // The page loads htmx (our own script) to poll for progress.
            response.headers_mut().insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(SCRIPTED_PAGE_CSP));
            Ok(response)
        }
        Err(page) => Ok(page),
    }
}

/// `GET /ra/import/{id}/progress`: the state part of the page, for htmx.
pub async fn progress(
    State(vsc): State<Vsc>,
    staff: StaffSignedIn,
    Csrf(csrf): Csrf,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    match state_of(&vsc, &staff, &id)? {
        Ok(state) => {
            // Once finished, htmx takes the new document title from the fragment.
            let fragment_title = (!state.running).then(|| state.title());
            let page = StateFragment { csrf: &csrf, state, max_rows: grouped(MAX_IMPORT_ROWS), fragment_title };
            render(StatusCode::OK, &page)
        }
        Err(page) => Ok(page),
    }
}

#[cfg(test)]
mod tests {
    use super::grouped;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(grouped(7), "7");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(20000), "20,000");
        assert_eq!(grouped(1234567), "1,234,567");
    }
}
