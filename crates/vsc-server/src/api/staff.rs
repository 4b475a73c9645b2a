//! `/api/v1/staff`: staff management by RA managers and operators (agents get 403; a manager
//! acting on an account with organisations they do not all manage, or on an operator's, too).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use vsc_proto::{ErrorBody, InviteStaffRequest, StaffInvited, StaffLinkSent, StaffList, StaffView, UpdateStaffRequest};

use super::auth::Staff;
use super::errors::ApiError;
use super::extract::ApiJson;
use crate::Vsc;

/// The staff sharing at least one organisation with the caller, by name.
#[utoipa::path(get, path = "/api/v1/staff", tag = "ra", security(("bearer" = [])),
    responses((status = 200, body = StaffList), (status = 403, body = ErrorBody, description = "Not an RA manager")))]
pub async fn list(State(vsc): State<Vsc>, Staff(who): Staff) -> Result<Json<StaffList>, ApiError> {
    Ok(Json(StaffList { staff: vsc.list_staff(&who).await? }))
}

/// Invite a staff member into some of the caller's organisations; the one-time password link is
/// emailed to them (never returned).
#[utoipa::path(post, path = "/api/v1/staff", tag = "ra", security(("bearer" = [])),
    request_body = InviteStaffRequest,
    responses(
        (status = 201, body = StaffInvited),
        (status = 403, body = ErrorBody, description = "Not an RA manager"),
        (status = 404, body = ErrorBody, description = "Organisation not among the caller's"),
        (status = 409, body = ErrorBody,
            description = "A staff account with this email exists (named only when it shares an organisation with the caller)"),
        (status = 422, body = ErrorBody, description = "Invalid field")))]
pub async fn invite(
    State(vsc): State<Vsc>,
    Staff(who): Staff,
    ApiJson(req): ApiJson<InviteStaffRequest>,
) -> Result<(StatusCode, Json<StaffInvited>), ApiError> {
    Ok((StatusCode::CREATED, Json(vsc.invite_staff_member(&who, &req).await?)))
}

/// A staff member sharing an organisation with the caller.
#[utoipa::path(get, path = "/api/v1/staff/{id}", tag = "ra", security(("bearer" = [])),
    params(("id" = String, Path, description = "Staff id")),
    responses((status = 200, body = StaffView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(vsc): State<Vsc>,
    Staff(who): Staff,
    Path(id): Path<String>,
) -> Result<Json<StaffView>, ApiError> {
    Ok(Json(vsc.get_staff(&who, &id).await?))
}

/// Change a staff member's role, organisations (among the caller's own; at least one stays)
/// and/or disable or enable the account (disabling ends their sessions and stops their tokens).
#[utoipa::path(patch, path = "/api/v1/staff/{id}", tag = "ra", security(("bearer" = [])),
    params(("id" = String, Path, description = "Staff id")),
    request_body = UpdateStaffRequest,
    responses(
        (status = 200, body = StaffView),
        (status = 403, body = ErrorBody,
            description = "Not an RA manager, or the account has organisations the caller does not manage"),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "Demoting or disabling oneself"),
        (status = 422, body = ErrorBody, description = "Invalid field, e.g. no organisation left")))]
pub async fn update(
    State(vsc): State<Vsc>,
    Staff(who): Staff,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateStaffRequest>,
) -> Result<Json<StaffView>, ApiError> {
    Ok(Json(vsc.update_staff(&who, &id, &req).await?))
}

/// Email a new one-time password link to the staff account's own address (older links stop
/// working); the link is never returned: only `vsc admin` prints links.
#[utoipa::path(post, path = "/api/v1/staff/{id}/password-link", tag = "ra", security(("bearer" = [])),
    params(("id" = String, Path, description = "Staff id")),
    responses(
        (status = 202, body = StaffLinkSent, description = "The link was emailed to the account's address"),
        (status = 403, body = ErrorBody,
            description = "Not an RA manager, or the account has organisations the caller does not manage"),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The account is disabled")))]
pub async fn password_link(
    State(vsc): State<Vsc>,
    Staff(who): Staff,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<StaffLinkSent>), ApiError> {
    vsc.resend_staff_link(&who, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(StaffLinkSent { status: "sent".into() })))
}
