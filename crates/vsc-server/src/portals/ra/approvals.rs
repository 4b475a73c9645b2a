//! "Pending approvals" of the vRA Manager (`/ra/approvals`): dual control's change requests in the
//! staff member's organisations, each approved or rejected (with a reason) by a second staff
//! member; and the count badge every vRA Manager page shows beside the link.

use askama::Template;
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::Response;
use serde::Deserialize;
use vsc_core::change_request::ChangeAction;
use vsc_proto::ChangeRequestView;

use super::{SESSION_COOKIE, StaffSignedIn};
use crate::api::holder::cookie;
use crate::portals::csrf::{Csrf, PortalForm};
use crate::portals::errors::PageError;
use crate::portals::self_service::see_other;
use crate::portals::{date_time, render};
use crate::service::StaffMember;
use crate::{ServiceError, Vsc};
use vsc_core::StaffRole;

/// Where the badge goes in the layout's header link.
pub const BADGE_MARK: &str = "<!--approvals-badge-->";
/// Largest page the badge layer rewrites (vRA Manager pages are far smaller).
const BADGE_MAX_BYTES: usize = 2 * 1024 * 1024;

/// One request on the page.
pub(super) struct RequestLine {
    pub id: String,
    pub user_id: String,
    pub user_name: String,
    pub organisation: String,
    pub action: &'static str,
    /// Old → new, or what it acts on.
    pub detail: String,
    pub requested_by: String,
    pub requested_at: String,
    pub expires: String,
    /// The viewer asked for it (no Approve; Withdraw instead).
    pub own: bool,
}

/// A request's "what" in words: old → new, the device or the card.
fn describe(r: &ChangeRequestView) -> String {
    let get = |k: &str| r.detail.get(k).and_then(serde_json::Value::as_str).map(str::to_string);
    match ChangeAction::parse(&r.action) {
        Some(ChangeAction::Email | ChangeAction::Mobile) => {
            format!("{} → {}", get("old").unwrap_or_else(|| "none".into()), get("new").unwrap_or_else(|| "none".into()))
        }
        Some(ChangeAction::DeleteLastDevice) => format!("device {}", get("name").unwrap_or_default()),
        _ => format!("card {}", r.target),
    }
}

/// The page's rows for `staff`.
pub(super) fn lines(staff: &StaffMember, requests: &[ChangeRequestView]) -> Vec<RequestLine> {
    requests
        .iter()
        .map(|r| RequestLine {
            id: r.id.to_string(),
            user_id: r.user_id.to_string(),
            user_name: r.user_name.clone(),
            organisation: r.organisation.clone(),
            action: ChangeAction::parse(&r.action).map_or("Change", ChangeAction::label),
            detail: describe(r),
            requested_by: r.requested_by.clone(),
            requested_at: date_time(r.requested_at),
            expires: date_time(r.expires_at),
            own: r.requested_by.eq_ignore_ascii_case(&staff.email),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "ra/approvals.html")]
struct ApprovalsPage<'a> {
    csrf: &'a str,
    /// Managers (and operators) approve; agents only see.
    approver: bool,
    note: Option<&'static str>,
    problem: Option<(&'static str, String)>,
    requests: Vec<RequestLine>,
}

/// `?done=…` after an action.
#[derive(Deserialize, Default)]
pub struct Done {
    #[serde(default)]
    done: Option<String>,
}

async fn page(
    vsc: &Vsc,
    staff: &StaffMember,
    csrf: &str,
    status: StatusCode,
    note: Option<&'static str>,
    problem: Option<String>,
) -> Result<Response, PageError> {
    let requests = vsc.list_change_requests(&staff.principal(), Some("pending")).await?;
    let page = ApprovalsPage {
        csrf,
        approver: staff.role == StaffRole::Manager || staff.principal().is_operator(),
        note,
        problem: problem.map(|m| ("requests", m)),
        requests: lines(staff, &requests),
    };
    render(status, &page)
}

/// `GET /ra/approvals`.
pub async fn show(
    State(vsc): State<Vsc>,
    StaffSignedIn { staff }: StaffSignedIn,
    Csrf(csrf): Csrf,
    Query(done): Query<Done>,
) -> Result<Response, PageError> {
    let note = match done.done.as_deref() {
        Some("approved") => Some("The change was approved and applied; the holder was told at their old address."),
        Some("rejected") => Some("The request was rejected."),
        _ => None,
    };
    page(&vsc, &staff, &csrf, StatusCode::OK, note, None).await
}

/// The reject form.
#[derive(Deserialize)]
pub struct RejectForm {
    #[serde(default)]
    reason: String,
}

/// `POST /ra/approvals/{id}/approve` and `POST /ra/approvals/{id}/reject` (with a `reason`).
pub async fn act(
    State(vsc): State<Vsc>,
    StaffSignedIn { staff }: StaffSignedIn,
    Csrf(csrf): Csrf,
    Path((id, action)): Path<(String, String)>,
    PortalForm(form): PortalForm<RejectForm>,
) -> Result<Response, PageError> {
    let who = staff.principal();
    let result = match action.as_str() {
        "approve" => vsc.approve_change_request(&who, &id).await.map(|_| "approved"),
        "reject" => vsc.reject_change_request(&who, &id, &form.reason).await.map(|_| "rejected"),
        _ => return Err(PageError::not_found()),
    };
    match result {
        Ok(done) => Ok(see_other(&format!("/ra/approvals?done={done}"), &[], vsc.config())),
        Err(ServiceError::NotFound { .. }) => Err(PageError::not_found()),
        Err(e @ (ServiceError::DualControl { .. } | ServiceError::Domain(_) | ServiceError::Conflict { .. })) => {
            let status = match &e {
                ServiceError::DualControl { refusal: crate::error::DualControlRefusal::NotPending, .. }
                | ServiceError::Conflict { .. } => StatusCode::CONFLICT,
                ServiceError::DualControl { .. } => StatusCode::FORBIDDEN,
                ServiceError::Domain(vsc_core::DomainError::InvalidState(_)) => StatusCode::CONFLICT,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            let message = match e {
                ServiceError::Domain(vsc_core::DomainError::Invalid { message, .. }) => message,
                other => other.to_string(),
            };
            page(&vsc, &staff, &csrf, status, None, Some(message)).await
        }
        Err(e) => Err(e.into()),
    }
}

/// Response layer of the vRA Manager: a signed-in staff member's HTML pages show how many change
/// requests wait in their organisations, beside the "Pending approvals" link (one count query;
/// pages without a live session are left as they are).
pub async fn badge(State(vsc): State<Vsc>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let token = cookie(&parts, SESSION_COOKIE);
    let request = Request::from_parts(parts, body);
    let response = next.run(request).await;
    let Some(token) = token else { return response };
    let html =
        response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("text/html"));
    if !html {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, BADGE_MAX_BYTES).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let text = String::from_utf8_lossy(&bytes);
    if !text.contains(BADGE_MARK) {
        return Response::from_parts(parts, Body::from(bytes));
    }
    let count = vsc.pending_change_count_for_session(&token).await.unwrap_or(0);
    let badge = if count > 0 {
        format!(" <span class=\"count-badge\" id=\"approvals-count\" aria-label=\"{count} waiting\">{count}</span>")
    } else {
        String::new()
    };
    let out = text.replace(BADGE_MARK, &badge);
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(out))
}
