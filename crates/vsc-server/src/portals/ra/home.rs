//! The staff member's home page (`/ra`): the users list of their organisations — one search box,
//! filters, a table sortable by every column, pages. With htmx, the form and the sort and page
//! links fetch only the results region (`HX-Request`), which replaces itself in place.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::header::{CONTENT_SECURITY_POLICY, VARY};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use vsc_core::DomainError;
use vsc_proto::{UserSearchPage, UserSearchQuery};

use super::StaffSignedIn;
use super::listing::{self, Column, SortHeader};
use crate::portals::csrf::Csrf;
use crate::portals::errors::PageError;
use crate::portals::{SCRIPTED_PAGE_CSP, render};
use crate::service::StaffMember;
use crate::{ServiceError, Vsc};

/// Rows per page of the users list.
pub const PER_PAGE: u32 = 25;

/// The table's columns, in order: (heading, sort key).
const COLUMNS: [Column; 6] = [
    Column { label: "Name", key: "name" },
    Column { label: "Email", key: "email" },
    Column { label: "Organisation", key: "organisation" },
    Column { label: "Card", key: "card_expiry" },
    Column { label: "Created", key: "created" },
    Column { label: "Last active", key: "last_active" },
];

/// Card states a staff member filters by: (value, label).
const CARD_STATES: [(&str, &str); 5] = [
    ("issued", "Issued"),
    ("active", "Active"),
    ("locked", "Locked"),
    ("suspended", "Suspended"),
    ("revoked", "Revoked"),
];
/// Card types: (value, label).
const CARD_TYPES: [(&str, &str); 2] = [("v1", "V1"), ("v2", "V2")];
/// Enrolment states: (value, label).
const ENROLMENT: [(&str, &str); 3] = [("pending", "Awaiting enrolment"), ("enrolled", "Enrolled"), ("none", "No card")];

/// The results region: the table (or its empty state), or the problem with the search.
#[derive(Template)]
#[template(path = "ra/_users_results.html")]
struct Results {
    /// The filled-in search, for links.
    search: listing::Search,
    /// Set for an htmx request: the form's hidden sort fields are replaced out of band.
    oob: bool,
    problem: Option<(String, String)>,
    headers: Vec<SortHeader>,
    rows: Vec<listing::UserLine>,
    total: i64,
    empty: String,
    summary: String,
    prev: Option<String>,
    next: Option<String>,
}

#[derive(Template)]
#[template(path = "ra/home.html")]
struct HomePage<'a> {
    csrf: &'a str,
    staff: &'a StaffMember,
    role: &'static str,
    search: &'a listing::Search,
    card_states: &'static [(&'static str, &'static str)],
    card_types: &'static [(&'static str, &'static str)],
    enrolment: &'static [(&'static str, &'static str)],
    results: &'a Results,
    results_html: String,
    /// A notice after an action that ends on this page (`?done=`).
    note: Option<&'static str>,
}

/// `?done=` after an action that ends on the users list.
#[derive(serde::Deserialize)]
pub struct Done {
    done: Option<String>,
}

/// The notice for `?done=`.
fn done_note(done: &Done) -> Option<&'static str> {
    match done.done.as_deref()? {
        "user_deleted" => Some("The user was deleted: their cards were revoked and their devices removed."),
        _ => None,
    }
}

impl HomePage<'_> {
    fn q_error(&self) -> Option<&str> {
        self.results.problem.as_ref().filter(|(f, _)| f == "q").map(|(_, m)| m.as_str())
    }
}

/// `GET /ra`: the users list; only the results region for an htmx request.
pub async fn show(
    State(vsc): State<Vsc>,
    StaffSignedIn { staff }: StaffSignedIn,
    Csrf(csrf): Csrf,
    headers: HeaderMap,
    Query(mut query): Query<UserSearchQuery>,
    Query(done): Query<Done>,
) -> Result<Response, PageError> {
    // htmx asks with `HX-Request`; restoring history after a cache miss wants the whole page.
    let fragment = headers.contains_key("hx-request") && !headers.contains_key("hx-history-restore-request");
    query.per_page = Some(PER_PAGE.to_string());
    let search = listing::Search::from(&query);
    let (found, problem) = match vsc.search_users(&staff.principal(), &query).await {
        Ok(page) => (Some(page), None),
        Err(ServiceError::Domain(DomainError::Invalid { field, message })) => {
            (None, Some((field.to_string(), message)))
        }
        Err(ServiceError::NotFound { field: Some("organisation"), message }) => {
            (None, Some(("organisation".to_string(), message)))
        }
        Err(e) => return Err(e.into()),
    };
    let status = if problem.is_some() && !fragment { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let results = results(search.clone(), fragment, problem, found.as_ref());
    let mut response = if fragment {
        render(status, &results)?
    } else {
        let role = match staff.role {
            vsc_core::StaffRole::Manager => "RA Manager",
            vsc_core::StaffRole::Agent => "RA Agent",
        };
        let page = HomePage {
            csrf: &csrf,
            staff: &staff,
            role,
            search: &search,
            card_states: &CARD_STATES,
            card_types: &CARD_TYPES,
            enrolment: &ENROLMENT,
            results: &results,
            results_html: results.render()?,
            note: done_note(&done),
        };
        render(status, &page)?
    };
    response.headers_mut().insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(SCRIPTED_PAGE_CSP));
    response.headers_mut().insert(VARY, HeaderValue::from_static("HX-Request"));
    Ok(response)
}

fn results(
    search: listing::Search,
    oob: bool,
    problem: Option<(String, String)>,
    found: Option<&UserSearchPage>,
) -> Results {
    let headers = listing::sort_headers(&search, &COLUMNS);
    let (rows, total, capped) = match found {
        Some(p) => (p.users.iter().map(listing::UserLine::from).collect(), p.total, p.total_capped),
        None => (Vec::new(), 0, false),
    };
    let page = search.page_number();
    let pages = listing::page_count(total, PER_PAGE);
    let summary = listing::summary(total, capped, page, pages);
    let has_more = capped || i64::from(page) < pages;
    let prev = (page > 1 && found.is_some()).then(|| search.href(&search.sort, &search.dir, page - 1));
    let next = (has_more && found.is_some()).then(|| search.href(&search.sort, &search.dir, page + 1));
    let empty = if search.is_filtered() {
        match search.q.as_str() {
            "" => "No users match these filters.".to_string(),
            q => format!("No users match “{q}”."),
        }
    } else {
        "No users yet.".to_string()
    };
    Results { search, oob, problem, headers, rows, total, empty, summary, prev, next }
}
