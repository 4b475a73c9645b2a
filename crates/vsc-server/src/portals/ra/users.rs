//! The user page of the vRA Manager (`/ra/users/{id}`): details, cards, authenticator devices
//! (each deletable, whatever its state) and the user's audit trail.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use vsc_core::DomainError;

use super::{HOME_PATH, MessagePage, StaffSignedIn};
use crate::portals::csrf::Csrf;
use crate::portals::errors::PageError;
use crate::portals::self_service::see_other;
use crate::portals::{date, date_time, render};
use crate::service::{StaffMember, StaffUserPage, USER_AUDIT_LIMIT};
use crate::{ServiceError, Vsc};

/// A card row.
struct CardLine {
    serial: String,
    card_type: String,
    state: String,
    roles: String,
    issued: String,
    expires: String,
}

/// A device row.
struct DeviceLine {
    id: String,
    name: String,
    device_type: String,
    client_version: String,
    platform: String,
    platform_version: String,
    registered: String,
    last_used: String,
    state: &'static str,
    tag: &'static str,
}

/// An audit row.
struct AuditLine {
    at: String,
    actor: String,
    action: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "ra/user.html")]
struct UserPage<'a> {
    csrf: &'a str,
    staff: &'a StaffMember,
    note: Option<&'static str>,
    id: String,
    name: String,
    email: String,
    mobile: String,
    organisation: String,
    subject_cn: String,
    created: String,
    last_active: String,
    cards: Vec<CardLine>,
    devices: Vec<DeviceLine>,
    audit: Vec<AuditLine>,
    audit_limit: i64,
}

/// `?done=` after an action on the page.
#[derive(Deserialize)]
pub struct Done {
    done: Option<String>,
}

fn or_dash(v: Option<&str>) -> String {
    v.filter(|s| !s.is_empty()).map_or_else(|| "—".to_string(), str::to_string)
}

fn device_state(state: &str) -> (&'static str, &'static str) {
    match state {
        "active" => ("Active", "active"),
        "pending_code" => ("Waiting for the emailed code", "issued"),
        "pending_registration" => ("Waiting for the app to register", "issued"),
        _ => ("Unknown", "locked"),
    }
}

fn lines(staff: &StaffMember, csrf: &str, p: StaffUserPage, note: Option<&'static str>) -> Result<String, PageError> {
    let u = p.user;
    let page = UserPage {
        csrf,
        staff,
        note,
        id: u.id.to_string(),
        // As the users list shows it.
        name: format!("{} {} ({})", u.forename, u.surname, u.subject_cn),
        email: u.email,
        mobile: or_dash(u.mobile.as_deref()),
        organisation: u.organisation,
        subject_cn: u.subject_cn,
        created: date_time(u.created_at),
        last_active: p.last_active_at.map_or_else(|| "Never".to_string(), date_time),
        cards: u
            .cards
            .into_iter()
            .map(|c| CardLine {
                serial: c.serial,
                card_type: c.card_type.to_uppercase(),
                state: c.state,
                roles: if c.roles.is_empty() { "—".into() } else { c.roles.join(", ") },
                issued: date(c.issued_at),
                expires: date(c.expires_at),
            })
            .collect(),
        devices: p
            .devices
            .into_iter()
            .map(|d| {
                let (state, tag) = device_state(&d.state);
                DeviceLine {
                    name: d.name,
                    device_type: d.device_type,
                    client_version: or_dash(d.client_version.as_deref()),
                    platform: or_dash(d.platform.as_deref()),
                    platform_version: or_dash(d.platform_version.as_deref()),
                    registered: d.registered_at.map_or_else(|| "Not yet".to_string(), date_time),
                    last_used: d.last_used_at.map_or_else(|| "Never".to_string(), date_time),
                    id: d.id,
                    state,
                    tag,
                }
            })
            .collect(),
        audit: p
            .audit
            .into_iter()
            .map(|a| AuditLine {
                at: date_time(a.at),
                actor: a.actor,
                action: a.action,
                detail: match &a.detail {
                    serde_json::Value::Object(m) if m.is_empty() => String::new(),
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                },
            })
            .collect(),
        audit_limit: USER_AUDIT_LIMIT,
    };
    Ok(page.render()?)
}

/// The page for a user the staff member cannot see or that does not exist.
fn no_such_user() -> Result<Response, PageError> {
    render(
        StatusCode::NOT_FOUND,
        &MessagePage {
            title: "User not found",
            message: "There is no user at this address in your organisations.",
            advice: Some("Search for the user in the users list."),
            link: (HOME_PATH, "Go to the users list"),
        },
    )
}

/// Not found, or not a user id at all: the same page.
fn is_missing(e: &ServiceError) -> bool {
    matches!(
        e,
        ServiceError::NotFound { field: Some("id"), .. }
            | ServiceError::Domain(DomainError::Invalid { field: "id", .. })
    )
}

/// `GET /ra/users/{id}`.
pub async fn show(
    State(vsc): State<Vsc>,
    StaffSignedIn { staff }: StaffSignedIn,
    Csrf(csrf): Csrf,
    Path(id): Path<String>,
    Query(done): Query<Done>,
) -> Result<Response, PageError> {
    let page = match vsc.staff_user_page(&staff.principal(), &id).await {
        Ok(p) => p,
        Err(e) if is_missing(&e) => return no_such_user(),
        Err(e) => return Err(e.into()),
    };
    let note = match done.done.as_deref() {
        Some("device_deleted") => Some("The device was deleted."),
        _ => None,
    };
    let html = lines(&staff, &csrf, page, note)?;
    Ok((StatusCode::OK, Html(html)).into_response())
}

/// `POST /ra/users/{id}/devices/{device}/delete` (the CSRF middleware has checked the form).
pub async fn delete_device(
    State(vsc): State<Vsc>,
    StaffSignedIn { staff }: StaffSignedIn,
    Path((id, device)): Path<(String, String)>,
) -> Result<Response, PageError> {
    match vsc.staff_delete_device(&staff.principal(), &id, &device).await {
        Ok(()) => Ok(see_other(&format!("/ra/users/{id}?done=device_deleted"), &[], vsc.config())),
        Err(e) if is_missing(&e) => no_such_user(),
        Err(e) => Err(e.into()),
    }
}
