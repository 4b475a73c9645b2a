//! `/api/v1/organisations`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use vsc_proto::{CreateOrganisationRequest, ErrorBody, OrganisationView, RenameOrganisationRequest};

use super::auth::Staff;
use super::errors::ApiError;
use super::extract::ApiJson;
use crate::Vsc;

/// Create an organisation (operators only); the caller is granted it.
#[utoipa::path(post, path = "/api/v1/organisations", tag = "ra", security(("bearer" = [])),
    request_body = CreateOrganisationRequest,
    responses(
        (status = 201, body = OrganisationView),
        (status = 403, body = ErrorBody, description = "Not an operator"),
        (status = 409, body = ErrorBody,
            description = "Code or name (whatever its case) exists, or a domain belongs to another organisation"),
        (status = 422, body = ErrorBody, description = "Invalid field")))]
pub async fn create(
    State(vsc): State<Vsc>,
    Staff(who): Staff,
    ApiJson(req): ApiJson<CreateOrganisationRequest>,
) -> Result<(StatusCode, Json<OrganisationView>), ApiError> {
    Ok((StatusCode::CREATED, Json(vsc.create_organisation(&who, &req).await?)))
}

/// The caller's organisations.
#[utoipa::path(get, path = "/api/v1/organisations", tag = "ra", security(("bearer" = [])),
    responses((status = 200, body = Vec<OrganisationView>), (status = 401, body = ErrorBody)))]
pub async fn list(State(vsc): State<Vsc>, Staff(who): Staff) -> Result<Json<Vec<OrganisationView>>, ApiError> {
    Ok(Json(vsc.list_organisations(&who).await?))
}

/// Rename an organisation (operators only); names are unique whatever their case.
#[utoipa::path(patch, path = "/api/v1/organisations/{code}", tag = "ra", security(("bearer" = [])),
    params(("code" = String, Path, description = "Organisation code")),
    request_body = RenameOrganisationRequest,
    responses(
        (status = 200, body = OrganisationView),
        (status = 403, body = ErrorBody, description = "Not an operator"),
        (status = 404, body = ErrorBody, description = "No such organisation"),
        (status = 409, body = ErrorBody, description = "Another organisation has this name"),
        (status = 422, body = ErrorBody, description = "Invalid name")))]
pub async fn rename(
    State(vsc): State<Vsc>,
    Staff(who): Staff,
    Path(code): Path<String>,
    ApiJson(req): ApiJson<RenameOrganisationRequest>,
) -> Result<Json<OrganisationView>, ApiError> {
    Ok(Json(vsc.rename_organisation(&who, &code, &req).await?))
}
