//! `/api/v1/enrolment/{token}`: the JSON mirror of the enrolment pages.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use vsc_proto::{CodeRequest, CodeSent, EnrolmentRequest, EnrolmentView, ErrorBody, SessionView};

use super::errors::ApiError;
use super::extract::ApiJson;
use crate::Vsc;

/// The holder's name, the card and the question catalogue for a valid link.
#[utoipa::path(get, path = "/api/v1/enrolment/{token}", tag = "enrolment",
    params(("token" = String, Path, description = "Token from the invitation link")),
    responses(
        (status = 200, body = EnrolmentView),
        (status = 404, body = ErrorBody, description = "Unknown link"),
        (status = 410, body = ErrorBody, description = "Expired (EN0001LinkExpired) or used (EN0002LinkUsed)")))]
pub async fn show(State(vsc): State<Vsc>, Path(token): Path<String>) -> Result<Json<EnrolmentView>, ApiError> {
    Ok(Json(vsc.enrolment(&token).await?))
}

/// Passcode, three security answers and (when none is on record) a mobile number; sends the SMS code.
#[utoipa::path(post, path = "/api/v1/enrolment/{token}", tag = "enrolment",
    params(("token" = String, Path, description = "Token from the invitation link")),
    request_body = EnrolmentRequest,
    responses(
        (status = 202, body = CodeSent),
        (status = 422, body = ErrorBody, description = "A rule broken: passcode, answers or mobile"),
        (status = 410, body = ErrorBody),
        (status = 429, body = ErrorBody, description = "RL0001RateLimited: too many failed attempts from this address (Retry-After)"),
        (status = 503, body = ErrorBody, description = "SV0002Unavailable: too busy to check now (Retry-After)")))]
pub async fn submit(
    State(vsc): State<Vsc>,
    Path(token): Path<String>,
    ApiJson(req): ApiJson<EnrolmentRequest>,
) -> Result<(StatusCode, Json<CodeSent>), ApiError> {
    Ok((StatusCode::ACCEPTED, Json(vsc.submit_enrolment(&token, &req).await?)))
}

/// Send a new SMS code (at most once a minute).
#[utoipa::path(post, path = "/api/v1/enrolment/{token}/resend-code", tag = "enrolment",
    params(("token" = String, Path, description = "Token from the invitation link")),
    responses((status = 202, body = CodeSent), (status = 429, body = ErrorBody, description = "a code was sent less than a minute ago; or RL0001RateLimited: too many failed attempts from this address (Retry-After)"),
        (status = 503, body = ErrorBody, description = "SV0002Unavailable: too busy to check now (Retry-After)")))]
pub async fn resend_code(
    State(vsc): State<Vsc>,
    Path(token): Path<String>,
) -> Result<(StatusCode, Json<CodeSent>), ApiError> {
    Ok((StatusCode::ACCEPTED, Json(vsc.resend_enrolment_code(&token).await?)))
}

/// The SMS code: completes enrolment (card active) and opens a holder session.
#[utoipa::path(post, path = "/api/v1/enrolment/{token}/verify", tag = "enrolment",
    params(("token" = String, Path, description = "Token from the invitation link")),
    request_body = CodeRequest,
    responses(
        (status = 200, body = SessionView),
        (status = 422, body = ErrorBody, description = "Wrong code"),
        (status = 410, body = ErrorBody, description = "Link already used"),
        (status = 429, body = ErrorBody, description = "RL0001RateLimited: too many failed attempts from this address (Retry-After)"),
        (status = 503, body = ErrorBody, description = "SV0002Unavailable: too busy to check now (Retry-After)")))]
pub async fn verify(
    State(vsc): State<Vsc>,
    Path(token): Path<String>,
    ApiJson(req): ApiJson<CodeRequest>,
) -> Result<Json<SessionView>, ApiError> {
    Ok(Json(vsc.verify_enrolment(&token, &req.code).await?))
}
