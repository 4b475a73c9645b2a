//! `/api/v1/users`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use vsc_proto::{ChangeRequested, CreateUserRequest, ErrorBody, UserSearchPage, UserSearchQuery, UserView};

use super::auth::Staff;
use super::change_requests::answer;
use super::errors::ApiError;
use super::extract::ApiJson;
use crate::Vsc;
use crate::service::Outcome;

/// Create a user in one of the caller's organisations.
#[utoipa::path(post, path = "/api/v1/users", tag = "ra", security(("bearer" = [])),
    request_body = CreateUserRequest,
    responses(
        (status = 201, body = UserView),
        (status = 404, body = ErrorBody, description = "Organisation not among the caller's"),
        (status = 409, body = ErrorBody, description = "Email or subject CN taken"),
        (status = 422, body = ErrorBody, description = "Invalid field, e.g. email domain not allowed")))]
pub async fn create(
    State(vsc): State<Vsc>,
    Staff(who): Staff,
    ApiJson(req): ApiJson<CreateUserRequest>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    Ok((StatusCode::CREATED, Json(vsc.create_user(&who, &req).await?)))
}

/// A user with their cards.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "ra", security(("bearer" = [])),
    params(("id" = String, Path, description = "User UUID")),
    responses((status = 200, body = UserView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(vsc): State<Vsc>,
    Staff(who): Staff,
    Path(id): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    Ok(Json(vsc.get_user(&who, &id).await?))
}

/// Search the users of the caller's organisations: text, filters, sort and page.
#[utoipa::path(get, path = "/api/v1/users", tag = "ra", security(("bearer" = [])),
    params(UserSearchQuery),
    responses(
        (status = 200, body = UserSearchPage),
        (status = 404, body = ErrorBody, description = "Organisation not among the caller's"),
        (status = 422, body = ErrorBody, description = "Invalid parameter, named in the error")))]
pub async fn search(
    State(vsc): State<Vsc>,
    Staff(who): Staff,
    Query(q): Query<UserSearchQuery>,
) -> Result<Json<UserSearchPage>, ApiError> {
    Ok(Json(vsc.search_users(&who, &q).await?))
}

/// Change a user's names, mobile (an empty string removes it), subject CN (must be free) and/or
/// email; each change is audited old → new, and for an email change the holder is emailed at both
/// the old and the new address. For a holder with an enrolled card under dual control, an email
/// or mobile change is a change request (202) that applies when a second staff member approves.
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "ra", security(("bearer" = [])),
    params(("id" = String, Path, description = "User UUID")),
    request_body = vsc_proto::user::UpdateUserRequest,
    responses(
        (status = 200, body = UserView),
        (status = 202, body = ChangeRequested, description = "Email or mobile change waiting for approval (other fields applied)"),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "Email or subject CN taken"),
        (status = 422, body = ErrorBody, description = "Invalid field, e.g. email domain not allowed")))]
pub async fn update(
    State(vsc): State<Vsc>,
    Staff(who): Staff,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<vsc_proto::user::UpdateUserRequest>,
) -> Result<Response, ApiError> {
    Ok(answer(StatusCode::OK, vsc.update_user(&who, &id, &req).await?))
}

/// Delete a user: their cards are revoked (and listed on a new CRL), their devices and directory
/// accounts removed; the audit trail is kept.
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "ra", security(("bearer" = [])),
    params(("id" = String, Path, description = "User UUID")),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody)))]
pub async fn delete(State(vsc): State<Vsc>, Staff(who): Staff, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    vsc.delete_user(&who, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete one of a user's authenticator devices, in any state (also one that never finished
/// registering); audited as `device.deleted`, like the vRA Manager's delete button.
#[utoipa::path(delete, path = "/api/v1/users/{id}/devices/{device}", tag = "ra", security(("bearer" = [])),
    params(("id" = String, Path, description = "User UUID"), ("device" = String, Path, description = "Device id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 202, body = ChangeRequested, description = "The last active authenticator of an enrolled holder under dual control: waiting for approval"),
        (status = 404, body = ErrorBody, description = "No such user among the caller's organisations, or no such device of theirs")))]
pub async fn delete_device(
    State(vsc): State<Vsc>,
    Staff(who): Staff,
    Path((id, device)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    Ok(match vsc.staff_delete_device(&who, &id, &device).await? {
        Outcome::Done(()) => StatusCode::NO_CONTENT.into_response(),
        requested => answer(StatusCode::NO_CONTENT, requested),
    })
}
