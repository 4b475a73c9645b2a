//! `/api/v1/change-requests`: dual control's pending requests, approved or rejected by a second
//! staff member; and the 200-or-202 answer of the actions they guard.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use vsc_proto::{
    ChangeApproved, ChangeRequestList, ChangeRequestQuery, ChangeRequestView, ChangeRequested, DualControlView,
    ErrorBody, NotMeOutcome, RejectChangeRequest, SetDualControl,
};

use super::auth::Staff;
use super::errors::ApiError;
use super::extract::ApiJson;
use crate::Vsc;
use crate::service::Outcome;

/// `done` with the applied result, or 202 `{change_request}` when it waits for approval.
pub(super) fn answer<T: Serialize>(done: StatusCode, outcome: Outcome<T>) -> Response {
    match outcome {
        Outcome::Done(v) => (done, Json(v)).into_response(),
        Outcome::Requested(all) => match all.first().cloned() {
            None => StatusCode::NO_CONTENT.into_response(),
            Some(change_request) => {
                let change_requests = if all.len() > 1 { all } else { Vec::new() };
                (StatusCode::ACCEPTED, Json(ChangeRequested { change_request, change_requests })).into_response()
            }
        },
    }
}

/// Change requests in the caller's organisations (operators: all), newest first, at most 200.
#[utoipa::path(get, path = "/api/v1/change-requests", tag = "ra", security(("bearer" = [])),
    params(ChangeRequestQuery),
    responses(
        (status = 200, body = ChangeRequestList),
        (status = 422, body = ErrorBody, description = "Unknown state")))]
pub async fn list(
    State(vsc): State<Vsc>,
    Staff(who): Staff,
    Query(q): Query<ChangeRequestQuery>,
) -> Result<Json<ChangeRequestList>, ApiError> {
    Ok(Json(ChangeRequestList { change_requests: vsc.list_change_requests(&who, q.state.as_deref()).await? }))
}

/// Approve a pending request: applied at once, the holder told at the old address.
#[utoipa::path(post, path = "/api/v1/change-requests/{id}/approve", tag = "ra", security(("bearer" = [])),
    params(("id" = String, Path, description = "Change request id")),
    responses(
        (status = 200, body = ChangeApproved),
        (status = 403, body = ErrorBody, description = "CR0001OwnRequest: the requester cannot approve; CR0002NotAnApprover: not a manager of the holder's organisation nor an operator"),
        (status = 404, body = ErrorBody, description = "No such request in the caller's organisations"),
        (status = 409, body = ErrorBody, description = "CR0003NotPending: approved, rejected or expired already; ST0001InvalidState: the holder changed since the request (reject it)")))]
pub async fn approve(
    State(vsc): State<Vsc>,
    Staff(who): Staff,
    Path(id): Path<String>,
) -> Result<Json<ChangeApproved>, ApiError> {
    Ok(Json(vsc.approve_change_request(&who, &id).await?))
}

/// Reject a pending request with a reason (or withdraw one's own).
#[utoipa::path(post, path = "/api/v1/change-requests/{id}/reject", tag = "ra", security(("bearer" = [])),
    params(("id" = String, Path, description = "Change request id")),
    request_body = RejectChangeRequest,
    responses(
        (status = 200, body = ChangeRequestView),
        (status = 403, body = ErrorBody, description = "CR0002NotAnApprover"),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "CR0003NotPending"),
        (status = 422, body = ErrorBody, description = "Missing or too long reason")))]
pub async fn reject(
    State(vsc): State<Vsc>,
    Staff(who): Staff,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<RejectChangeRequest>,
) -> Result<Json<ChangeRequestView>, ApiError> {
    Ok(Json(vsc.reject_change_request(&who, &id, &req.reason).await?))
}

/// "This was not me": the link from the notice of an approved change suspends the holder's cards
/// (single-use, 7 days).
#[utoipa::path(post, path = "/api/v1/self/not-me/{token}", tag = "self-service",
    params(("token" = String, Path, description = "The token of the link")),
    responses(
        (status = 200, body = NotMeOutcome),
        (status = 404, body = ErrorBody, description = "Unknown link"),
        (status = 410, body = ErrorBody, description = "EN0001LinkExpired / EN0002LinkUsed")))]
pub async fn not_me(State(vsc): State<Vsc>, Path(token): Path<String>) -> Result<Json<NotMeOutcome>, ApiError> {
    Ok(Json(vsc.report_not_me(&token).await?))
}

/// Whether sensitive changes to this organisation's enrolled holders need a second staff member.
#[utoipa::path(get, path = "/api/v1/organisations/{code}/dual-control", tag = "ra", security(("bearer" = [])),
    params(("code" = String, Path, description = "Organisation code")),
    responses((status = 200, body = DualControlView), (status = 404, body = ErrorBody)))]
pub async fn get_dual_control(
    State(vsc): State<Vsc>,
    Staff(who): Staff,
    Path(code): Path<String>,
) -> Result<Json<DualControlView>, ApiError> {
    Ok(Json(vsc.dual_control(&who, &code).await?))
}

/// Turn dual control on or off for an organisation (operators only; audited).
#[utoipa::path(put, path = "/api/v1/organisations/{code}/dual-control", tag = "ra", security(("bearer" = [])),
    params(("code" = String, Path, description = "Organisation code")),
    request_body = SetDualControl,
    responses(
        (status = 200, body = DualControlView),
        (status = 403, body = ErrorBody, description = "AU0002Forbidden: not an operator"),
        (status = 404, body = ErrorBody)))]
pub async fn set_dual_control(
    State(vsc): State<Vsc>,
    Staff(who): Staff,
    Path(code): Path<String>,
    ApiJson(req): ApiJson<SetDualControl>,
) -> Result<Json<DualControlView>, ApiError> {
    Ok(Json(vsc.set_dual_control(&who, &code, req.dual_control).await?))
}
