//! `/api/v1/organisations`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use vsc_proto::{CreateOrganisationRequest, ErrorBody, OrganisationView};

use super::auth::Staff;
use super::errors::ApiError;
use super::extract::ApiJson;
use crate::Vsc;

/// Create an organisation (RA managers); the caller is granted it.
#[utoipa::path(post, path = "/api/v1/organisations", tag = "ra", security(("bearer" = [])),
    request_body = CreateOrganisationRequest,
    responses(
        (status = 201, body = OrganisationView),
        (status = 409, body = ErrorBody, description = "Code exists"),
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
