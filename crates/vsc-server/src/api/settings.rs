//! The vRA Manager's settings over JSON (RA managers; agents get 403): `/api/v1/roles`,
//! `/api/v1/security-questions`, `/api/v1/organisations/{code}/policy` and
//! `/api/v1/organisations/{code}/email-domains`. Changing the catalogues and email domains is for
//! operators only (managers get 403 too).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use vsc_proto::{
    AddEmailDomainRequest, CreateQuestionRequest, CreateRoleRequest, ErrorBody, OrganisationPolicy,
    OrganisationPolicyView, OrganisationView, RenameRoleRequest, RoleView, SecurityQuestionView, UpdateQuestionRequest,
};

use super::auth::Staff;
use super::errors::ApiError;
use super::extract::ApiJson;
use crate::Vsc;

/// The role catalogue, with how many cards of the caller's organisations carry each role.
#[utoipa::path(get, path = "/api/v1/roles", tag = "ra", security(("bearer" = [])),
    responses((status = 200, body = Vec<RoleView>), (status = 403, body = ErrorBody, description = "Not an RA manager")))]
pub async fn list_roles(State(vsc): State<Vsc>, Staff(who): Staff) -> Result<Json<Vec<RoleView>>, ApiError> {
    Ok(Json(vsc.list_roles(&who).await?))
}

/// Add a role to the catalogue.
#[utoipa::path(post, path = "/api/v1/roles", tag = "ra", security(("bearer" = [])),
    request_body = CreateRoleRequest,
    responses(
        (status = 201, body = RoleView),
        (status = 403, body = ErrorBody, description = "Not an operator"),
        (status = 409, body = ErrorBody, description = "Code exists"),
        (status = 422, body = ErrorBody, description = "Invalid code or name")))]
pub async fn add_role(
    State(vsc): State<Vsc>,
    Staff(who): Staff,
    ApiJson(req): ApiJson<CreateRoleRequest>,
) -> Result<(StatusCode, Json<RoleView>), ApiError> {
    Ok((StatusCode::CREATED, Json(vsc.add_role(&who, &req).await?)))
}

/// Rename a role.
#[utoipa::path(patch, path = "/api/v1/roles/{code}", tag = "ra", security(("bearer" = [])),
    params(("code" = String, Path, description = "Role code, e.g. R8000")),
    request_body = RenameRoleRequest,
    responses(
        (status = 200, body = RoleView),
        (status = 403, body = ErrorBody, description = "Not an operator"),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "Invalid name")))]
pub async fn rename_role(
    State(vsc): State<Vsc>,
    Staff(who): Staff,
    Path(code): Path<String>,
    ApiJson(req): ApiJson<RenameRoleRequest>,
) -> Result<Json<RoleView>, ApiError> {
    Ok(Json(vsc.rename_role(&who, &code, &req).await?))
}

/// Delete a role; default roles and roles on cards are refused.
#[utoipa::path(delete, path = "/api/v1/roles/{code}", tag = "ra", security(("bearer" = [])),
    params(("code" = String, Path, description = "Role code")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, body = ErrorBody, description = "Not an operator"),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "A default role, or a role on cards")))]
pub async fn delete_role(
    State(vsc): State<Vsc>,
    Staff(who): Staff,
    Path(code): Path<String>,
) -> Result<StatusCode, ApiError> {
    vsc.delete_role(&who, &code).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The security-question catalogue, retired questions included.
#[utoipa::path(get, path = "/api/v1/security-questions", tag = "ra", security(("bearer" = [])),
    responses((status = 200, body = Vec<SecurityQuestionView>), (status = 403, body = ErrorBody)))]
pub async fn list_questions(
    State(vsc): State<Vsc>,
    Staff(who): Staff,
) -> Result<Json<Vec<SecurityQuestionView>>, ApiError> {
    Ok(Json(vsc.list_questions(&who).await?))
}

/// Add a security question.
#[utoipa::path(post, path = "/api/v1/security-questions", tag = "ra", security(("bearer" = [])),
    request_body = CreateQuestionRequest,
    responses(
        (status = 201, body = SecurityQuestionView),
        (status = 403, body = ErrorBody, description = "Not an operator"),
        (status = 409, body = ErrorBody, description = "The question exists"),
        (status = 422, body = ErrorBody)))]
pub async fn add_question(
    State(vsc): State<Vsc>,
    Staff(who): Staff,
    ApiJson(req): ApiJson<CreateQuestionRequest>,
) -> Result<(StatusCode, Json<SecurityQuestionView>), ApiError> {
    Ok((StatusCode::CREATED, Json(vsc.add_question(&who, &req).await?)))
}

/// Change a question's text, retire it (`active: false`) or offer it again.
#[utoipa::path(patch, path = "/api/v1/security-questions/{id}", tag = "ra", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Question id")),
    request_body = UpdateQuestionRequest,
    responses(
        (status = 200, body = SecurityQuestionView),
        (status = 403, body = ErrorBody, description = "Not an operator"),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "Fewer than 3 questions would stay offered, or the text exists"),
        (status = 422, body = ErrorBody)))]
pub async fn update_question(
    State(vsc): State<Vsc>,
    Staff(who): Staff,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<UpdateQuestionRequest>,
) -> Result<Json<SecurityQuestionView>, ApiError> {
    Ok(Json(vsc.update_question(&who, id, &req).await?))
}

/// Delete a question nobody answered (retire an answered one instead).
#[utoipa::path(delete, path = "/api/v1/security-questions/{id}", tag = "ra", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Question id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, body = ErrorBody, description = "Not an operator"),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "Answered by holders, or fewer than 3 would stay offered")))]
pub async fn delete_question(
    State(vsc): State<Vsc>,
    Staff(who): Staff,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    vsc.delete_question(&who, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An organisation's login and reminder policy, as set and as in effect.
#[utoipa::path(get, path = "/api/v1/organisations/{code}/policy", tag = "ra", security(("bearer" = [])),
    params(("code" = String, Path, description = "Organisation code")),
    responses((status = 200, body = OrganisationPolicyView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_policy(
    State(vsc): State<Vsc>,
    Staff(who): Staff,
    Path(code): Path<String>,
) -> Result<Json<OrganisationPolicyView>, ApiError> {
    Ok(Json(vsc.org_policy(&who, &code).await?))
}

/// Replace an organisation's policy (`null`: the service default).
#[utoipa::path(put, path = "/api/v1/organisations/{code}/policy", tag = "ra", security(("bearer" = [])),
    params(("code" = String, Path, description = "Organisation code")),
    request_body = OrganisationPolicy,
    responses(
        (status = 200, body = OrganisationPolicyView),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "A value out of range")))]
pub async fn set_policy(
    State(vsc): State<Vsc>,
    Staff(who): Staff,
    Path(code): Path<String>,
    ApiJson(req): ApiJson<OrganisationPolicy>,
) -> Result<Json<OrganisationPolicyView>, ApiError> {
    Ok(Json(vsc.set_org_policy(&who, &code, &req).await?))
}

/// Allow another email domain for an organisation's users.
#[utoipa::path(post, path = "/api/v1/organisations/{code}/email-domains", tag = "ra", security(("bearer" = [])),
    params(("code" = String, Path, description = "Organisation code")),
    request_body = AddEmailDomainRequest,
    responses(
        (status = 201, body = OrganisationView),
        (status = 403, body = ErrorBody, description = "Not an operator"),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "Allowed already, or held by another organisation (not named)"),
        (status = 422, body = ErrorBody)))]
pub async fn add_email_domain(
    State(vsc): State<Vsc>,
    Staff(who): Staff,
    Path(code): Path<String>,
    ApiJson(req): ApiJson<AddEmailDomainRequest>,
) -> Result<(StatusCode, Json<OrganisationView>), ApiError> {
    Ok((StatusCode::CREATED, Json(vsc.add_email_domain(&who, &code, &req.domain).await?)))
}

/// Stop allowing an email domain (existing users keep their addresses; the last one stays).
#[utoipa::path(delete, path = "/api/v1/organisations/{code}/email-domains/{domain}", tag = "ra",
    security(("bearer" = [])),
    params(("code" = String, Path, description = "Organisation code"), ("domain" = String, Path, description = "Domain")),
    responses(
        (status = 200, body = OrganisationView),
        (status = 403, body = ErrorBody, description = "Not an operator"),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The last allowed domain")))]
pub async fn remove_email_domain(
    State(vsc): State<Vsc>,
    Staff(who): Staff,
    Path((code, domain)): Path<(String, String)>,
) -> Result<Json<OrganisationView>, ApiError> {
    Ok(Json(vsc.remove_email_domain(&who, &code, &domain).await?))
}
