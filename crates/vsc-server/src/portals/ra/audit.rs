//! The vRA Manager's audit log viewer: `/ra/audit` (filters, newest first, 50 a page with an
//! "older" link) and `/ra/audit.csv` (the same filters, up to 10,000 rows).

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};

use super::StaffSignedIn;
use super::reports::{csv, csv_response, iso, message};
use crate::Vsc;
use crate::portals::csrf::Csrf;
use crate::portals::errors::PageError;
use crate::portals::{date_time, render};
use crate::service::ra_audit::{AUDIT_CSV_ROWS, AUDIT_PAGE_ROWS, AuditEntry, AuditQuery, check_audit_query};

/// An event as the page shows it.
struct EventLine {
    time: String,
    actor: String,
    action: String,
    outcome: &'static str,
    organisation: String,
    target: String,
    method: String,
    device: String,
    detail: String,
}

/// The filters as typed, kept in the form.
#[derive(Default)]
struct Typed {
    actor: String,
    user: String,
    action: String,
    outcome: String,
    from: String,
    to: String,
}

#[derive(Template)]
#[template(path = "ra/audit.html")]
struct AuditViewPage<'a> {
    csrf: &'a str,
    f: Typed,
    error: Option<String>,
    error_field: &'static str,
    rows: Vec<EventLine>,
    older_href: Option<String>,
    csv_href: String,
}

fn outcome(e: &AuditEntry) -> &'static str {
    if e.failure { "failure" } else { "success" }
}

/// Percent-encode a query-string value.
fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn typed(q: &AuditQuery) -> Typed {
    let t = |v: &Option<String>| v.as_deref().map(str::trim).unwrap_or_default().to_string();
    Typed {
        actor: t(&q.actor),
        user: t(&q.user),
        action: t(&q.action),
        outcome: t(&q.outcome),
        from: t(&q.from),
        to: t(&q.to),
    }
}

/// The filters as a query string (without the cursor).
fn query_string(f: &Typed) -> String {
    [
        ("actor", &f.actor),
        ("user", &f.user),
        ("action", &f.action),
        ("outcome", &f.outcome),
        ("from", &f.from),
        ("to", &f.to),
    ]
    .iter()
    .filter(|(_, v)| !v.is_empty())
    .map(|(k, v)| format!("{k}={}", enc(v)))
    .collect::<Vec<_>>()
    .join("&")
}

fn field_of(e: &vsc_core::DomainError) -> &'static str {
    match e {
        vsc_core::DomainError::Invalid { field, .. } => field,
        _ => "from",
    }
}

/// `GET /ra/audit?actor=&user=&action=&outcome=&from=&to=&before=`.
pub async fn show(
    State(vsc): State<Vsc>,
    StaffSignedIn { staff }: StaffSignedIn,
    Csrf(csrf): Csrf,
    Query(q): Query<AuditQuery>,
) -> Result<Response, PageError> {
    let f = typed(&q);
    let qs = query_string(&f);
    let csv_href = if qs.is_empty() { "/ra/audit.csv".to_string() } else { format!("/ra/audit.csv?{qs}") };
    let (rows, older_href, error_field, error) = match check_audit_query(&q) {
        Err(e) => (Vec::new(), None, Some(field_of(&e)), Some(message(e))),
        Ok(checked) => {
            let page = vsc.audit_search(&staff.principal(), &checked, AUDIT_PAGE_ROWS).await?;
            let older = page.older.map(|id| {
                if qs.is_empty() { format!("/ra/audit?before={id}") } else { format!("/ra/audit?{qs}&before={id}") }
            });
            let rows = page
                .entries
                .into_iter()
                .map(|e| EventLine {
                    time: date_time(e.at),
                    outcome: outcome(&e),
                    actor: e.actor,
                    action: e.action,
                    organisation: e.organisation,
                    target: e.target,
                    method: e.method,
                    device: e.device,
                    detail: e.detail,
                })
                .collect();
            (rows, older, None, None)
        }
    };
    let status = if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let page =
        AuditViewPage { csrf: &csrf, f, error, error_field: error_field.unwrap_or("from"), rows, older_href, csv_href };
    render(status, &page)
}

/// The CSV columns.
const CSV_HEADER: [&str; 9] =
    ["time", "actor", "action", "outcome", "organisation", "target", "method", "device", "detail"];

/// `GET /ra/audit.csv` with the filters of the page (up to 10,000 rows).
pub async fn export_csv(
    State(vsc): State<Vsc>,
    StaffSignedIn { staff }: StaffSignedIn,
    Query(q): Query<AuditQuery>,
) -> Result<Response, PageError> {
    let checked = match check_audit_query(&q) {
        Ok(c) => c,
        Err(e) => {
            return Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                [(CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!("{}\n", message(e)),
            )
                .into_response());
        }
    };
    let page = vsc.audit_search(&staff.principal(), &checked, AUDIT_CSV_ROWS).await?;
    let body = csv(
        &CSV_HEADER,
        page.entries.into_iter().map(|e| {
            vec![
                iso(e.at),
                e.actor.clone(),
                e.action.clone(),
                outcome(&e).to_string(),
                e.organisation,
                e.target,
                e.method,
                e.device,
                e.detail,
            ]
        }),
    );
    Ok(csv_response("audit-log.csv", body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_carried_in_links() {
        let f = Typed { action: "card.".into(), user: "a+b@x.uk".into(), ..Typed::default() };
        assert_eq!(query_string(&f), "user=a%2Bb%40x.uk&action=card.");
    }
}
