//! The vRA Manager's reports: pending users (`/ra/pending`, a card issued but not yet enrolled)
//! and expiring smartcards (`/ra/expiring?days=N`), each with a CSV export.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use vsc_proto::{ExpiringQuery, ExpiringReport, PendingReport};
use vsc_store::ra_reports::ExpiringSort;

use super::StaffSignedIn;
use crate::Vsc;
use crate::portals::csrf::Csrf;
use crate::portals::errors::PageError;
use crate::portals::{date, date_time, render};
use crate::service::ra_reports::{MAX_EXPIRY_DAYS, REPORT_ROWS, expiry_days, expiry_sort};

/// A cell made safe for a spreadsheet (a leading `=`, `+`, `-`, `@`, tab or carriage return would
/// start a formula: such cells get a leading `'`) and quoted as RFC 4180 asks.
pub(super) fn csv_cell(value: &str) -> String {
    let value =
        if value.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{value}") } else { value.to_string() };
    if value.contains([',', '"', '\r', '\n']) || value.starts_with(' ') || value.ends_with(' ') {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

/// A CSV document: the header row, then the rows, each line ended by CRLF.
pub(super) fn csv(header: &[&str], rows: impl Iterator<Item = Vec<String>>) -> String {
    let mut out = header.iter().map(|h| csv_cell(h)).collect::<Vec<_>>().join(",");
    out.push_str("\r\n");
    for row in rows {
        out.push_str(&row.iter().map(|c| csv_cell(c)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    out
}

pub(super) fn csv_response(filename: &'static str, body: String) -> Response {
    (
        [
            (CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (CONTENT_DISPOSITION, format!("attachment; filename=\"{filename}\"")),
        ],
        body,
    )
        .into_response()
}

/// The words of a validation error, without the field name.
pub(super) fn message(e: vsc_core::DomainError) -> String {
    match e {
        vsc_core::DomainError::Invalid { message, .. } => message,
        other => other.to_string(),
    }
}

pub(super) fn iso(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

fn card_type(t: &str) -> String {
    t.to_uppercase()
}

/// A pending user as the page shows it.
struct PendingLine {
    name: String,
    email: String,
    organisation: String,
    serial: String,
    card_type: String,
    invited: String,
    reminded: String,
    link_expires: String,
}

#[derive(Template)]
#[template(path = "ra/pending.html")]
struct PendingPage<'a> {
    csrf: &'a str,
    rows: Vec<PendingLine>,
    truncated: bool,
    limit: i64,
}

const PENDING_HEADER: [&str; 8] =
    ["Name", "Email", "Organisation", "Card serial", "Type", "Invited", "Reminded", "Link expires"];

/// `GET /ra/pending`.
pub async fn pending(
    State(vsc): State<Vsc>,
    StaffSignedIn { staff }: StaffSignedIn,
    Csrf(csrf): Csrf,
) -> Result<Response, PageError> {
    let report: PendingReport = vsc.pending_report(&staff.principal()).await?;
    let rows = report
        .users
        .into_iter()
        .map(|u| PendingLine {
            name: u.name,
            email: u.email,
            organisation: u.organisation,
            serial: u.serial,
            card_type: card_type(&u.card_type),
            invited: date_time(u.invited_at),
            reminded: u.reminded_at.map(date_time).unwrap_or_else(|| "never".into()),
            link_expires: date_time(u.link_expires_at),
        })
        .collect();
    render(StatusCode::OK, &PendingPage { csrf: &csrf, rows, truncated: report.truncated, limit: REPORT_ROWS })
}

/// `GET /ra/pending.csv`.
pub async fn pending_csv(
    State(vsc): State<Vsc>,
    StaffSignedIn { staff }: StaffSignedIn,
) -> Result<Response, PageError> {
    let report = vsc.pending_report(&staff.principal()).await?;
    let body = csv(
        &PENDING_HEADER,
        report.users.into_iter().map(|u| {
            vec![
                u.name,
                u.email,
                u.organisation,
                u.serial,
                card_type(&u.card_type),
                iso(u.invited_at),
                u.reminded_at.map(iso).unwrap_or_else(|| "never".into()),
                iso(u.link_expires_at),
            ]
        }),
    );
    Ok(csv_response("pending-users.csv", body))
}

/// An expiring card as the page shows it.
struct ExpiringLine {
    name: String,
    email: String,
    organisation: String,
    serial: String,
    card_type: String,
    state: String,
    expires: String,
    days_left: i64,
}

/// A sortable column heading: its link and `aria-sort` value.
struct SortHeading {
    href: String,
    aria_sort: &'static str,
}

#[derive(Template)]
#[template(path = "ra/expiring.html")]
struct ExpiringPage<'a> {
    csrf: &'a str,
    /// The window as typed (kept in the form when it is wrong).
    days_input: String,
    /// The window in effect (when valid).
    days: u32,
    max_days: u32,
    error: Option<String>,
    rows: Vec<ExpiringLine>,
    truncated: bool,
    limit: i64,
    by_expiry: SortHeading,
    by_name: SortHeading,
    csv_href: String,
}

fn sort_heading(days: u32, column: ExpiringSort, current: (ExpiringSort, bool)) -> SortHeading {
    let name = match column {
        ExpiringSort::Expiry => "expiry",
        ExpiringSort::Name => "name",
    };
    let active = current.0 == column;
    // A click on the active column flips the direction; another column starts ascending.
    let next_desc = active && !current.1;
    let aria_sort = match (active, current.1) {
        (false, _) => "none",
        (true, false) => "ascending",
        (true, true) => "descending",
    };
    let dir = if next_desc { "desc" } else { "asc" };
    SortHeading { href: format!("/ra/expiring?days={days}&sort={name}&dir={dir}"), aria_sort }
}

/// `GET /ra/expiring?days=N&sort=expiry|name&dir=asc|desc`.
pub async fn expiring(
    State(vsc): State<Vsc>,
    StaffSignedIn { staff }: StaffSignedIn,
    Csrf(csrf): Csrf,
    Query(q): Query<ExpiringQuery>,
) -> Result<Response, PageError> {
    let days_input = q.days.clone().unwrap_or_default();
    let checked = expiry_days(q.days.as_deref())
        .and_then(|days| expiry_sort(q.sort.as_deref(), q.dir.as_deref()).map(|order| (days, order)));
    let (days, order, error) = match checked {
        Ok((days, order)) => (days, order, None),
        Err(e) => (0, (ExpiringSort::Expiry, false), Some(message(e))),
    };
    let (rows, truncated) = if error.is_none() {
        let report: ExpiringReport = vsc.expiring_report(&staff.principal(), &q).await?;
        let rows = report
            .cards
            .into_iter()
            .map(|c| ExpiringLine {
                name: c.name,
                email: c.email,
                organisation: c.organisation,
                serial: c.serial,
                card_type: card_type(&c.card_type),
                state: c.state,
                expires: date(c.expires_at),
                days_left: c.days_left,
            })
            .collect();
        (rows, report.truncated)
    } else {
        (Vec::new(), false)
    };
    let status = if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let (sort_name, dir) = match order {
        (ExpiringSort::Expiry, d) => ("expiry", d),
        (ExpiringSort::Name, d) => ("name", d),
    };
    let page = ExpiringPage {
        csrf: &csrf,
        days_input: if error.is_some() { days_input } else { days.to_string() },
        days,
        max_days: MAX_EXPIRY_DAYS,
        error,
        rows,
        truncated,
        limit: REPORT_ROWS,
        by_expiry: sort_heading(days, ExpiringSort::Expiry, order),
        by_name: sort_heading(days, ExpiringSort::Name, order),
        csv_href: format!("/ra/expiring.csv?days={days}&sort={sort_name}&dir={}", if dir { "desc" } else { "asc" }),
    };
    render(status, &page)
}

/// `GET /ra/expiring.csv?days=N&sort=…&dir=…`.
pub async fn expiring_csv(
    State(vsc): State<Vsc>,
    StaffSignedIn { staff }: StaffSignedIn,
    Query(q): Query<ExpiringQuery>,
) -> Result<Response, PageError> {
    let report = match vsc.expiring_report(&staff.principal(), &q).await {
        Ok(r) => r,
        Err(crate::ServiceError::Domain(e)) => {
            return Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                [(CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!("{}\n", message(e)),
            )
                .into_response());
        }
        Err(e) => return Err(e.into()),
    };
    let body = csv(
        &["Name", "Email", "Organisation", "Serial", "Type", "State", "Expires", "Days left"],
        report.cards.into_iter().map(|c| {
            vec![
                c.name,
                c.email,
                c.organisation,
                c.serial,
                card_type(&c.card_type),
                c.state,
                iso(c.expires_at),
                c.days_left.to_string(),
            ]
        }),
    );
    Ok(csv_response("expiring-cards.csv", body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_quoted_and_formulas_neutralised() {
        assert_eq!(csv_cell("Gráinne O'Neill"), "Gráinne O'Neill");
        assert_eq!(csv_cell("Smith, John"), "\"Smith, John\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=SUM(A1:A2)"), "'=SUM(A1:A2)");
        assert_eq!(csv_cell("+44"), "'+44");
        assert_eq!(csv_cell("-1"), "'-1");
        assert_eq!(csv_cell("@cmd"), "'@cmd");
        assert_eq!(csv_cell("=1,2"), "\"'=1,2\"");
        assert_eq!(csv_cell("a\nb"), "\"a\nb\"");
        assert_eq!(csv(&["A", "B"], std::iter::once(vec!["1".into(), "x,y".into()])), "A,B\r\n1,\"x,y\"\r\n");
    }

    #[test]
    fn sort_headings_flip_the_active_column() {
        let h = sort_heading(30, ExpiringSort::Expiry, (ExpiringSort::Expiry, false));
        assert_eq!(h.aria_sort, "ascending");
        assert_eq!(h.href, "/ra/expiring?days=30&sort=expiry&dir=desc");
        let h = sort_heading(30, ExpiringSort::Name, (ExpiringSort::Expiry, false));
        assert_eq!(h.aria_sort, "none");
        assert_eq!(h.href, "/ra/expiring?days=30&sort=name&dir=asc");
    }
}
