//! `/api/v1/self/reset…`: the JSON mirror of "Forgotten your passcode?", and the RA's unlock
//! (`/api/v1/cards/{serial}/unlock`), which emails a reset link that skips the questions.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use vsc_proto::{
    CardView, CodeRequest, ErrorBody, ResetAccepted, ResetAnswersRequest, ResetFactorView, ResetPasscodeRequest,
    ResetRequest, ResetView,
};

use super::auth::Staff;
use super::card::{ClientIp, WaitQuery};
use super::errors::ApiError;
use super::extract::ApiJson;
use crate::Vsc;
use crate::service::RequestOrigin;

/// Ask for a reset link. Always `202` with the same body, whether or not the address has a card
/// (at most 3 links per holder an hour; further requests send nothing but answer alike).
#[utoipa::path(post, path = "/api/v1/self/reset", tag = "self-service",
    request_body = ResetRequest,
    responses((status = 202, body = ResetAccepted),
        (status = 429, body = ErrorBody, description = "RL0001RateLimited: too many failed attempts from this address (Retry-After)"),
        (status = 503, body = ErrorBody, description = "SV0002Unavailable: too busy to check now (Retry-After)")))]
pub async fn request(
    State(vsc): State<Vsc>,
    ApiJson(req): ApiJson<ResetRequest>,
) -> Result<(StatusCode, Json<ResetAccepted>), ApiError> {
    Ok((StatusCode::ACCEPTED, Json(vsc.request_reset(&req.email).await?)))
}

/// Where a reset link stands (`step`: `questions`, `second_factor`, `new_passcode`) and the
/// holder's 3 security questions.
#[utoipa::path(get, path = "/api/v1/self/reset/{token}", tag = "self-service",
    params(("token" = String, Path, description = "Token from the emailed link")),
    responses((status = 200, body = ResetView), (status = 404, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "questions answered wrongly 3 times: contact the RA"),
        (status = 410, body = ErrorBody, description = "EN0001LinkExpired (expired or replaced) / EN0002LinkUsed")))]
pub async fn show(State(vsc): State<Vsc>, Path(token): Path<String>) -> Result<Json<ResetView>, ApiError> {
    Ok(Json(vsc.reset_state(&token).await?))
}

/// Answer the holder's 3 security questions (all must be right; the third wrong round voids
/// the link).
#[utoipa::path(post, path = "/api/v1/self/reset/{token}/questions", tag = "self-service",
    params(("token" = String, Path, description = "Token from the emailed link")),
    request_body = ResetAnswersRequest,
    responses((status = 200, body = ResetView), (status = 422, body = ErrorBody, description = "wrong answers"),
        (status = 403, body = ErrorBody, description = "3 wrong rounds: the link is void"),
        (status = 429, body = ErrorBody, description = "RL0001RateLimited: too many failed attempts from this address (Retry-After)"),
        (status = 503, body = ErrorBody, description = "SV0002Unavailable: too busy to check now (Retry-After)")))]
pub async fn questions(
    State(vsc): State<Vsc>,
    Path(token): Path<String>,
    ApiJson(req): ApiJson<ResetAnswersRequest>,
) -> Result<Json<ResetView>, ApiError> {
    Ok(Json(vsc.reset_answer_questions(&token, &req.answers).await?))
}

/// Start the second factor: a push to the holder's authenticator, or else an SMS code.
#[utoipa::path(post, path = "/api/v1/self/reset/{token}/second-factor", tag = "self-service",
    params(("token" = String, Path, description = "Token from the emailed link")),
    responses((status = 200, body = ResetFactorView), (status = 409, body = ErrorBody, description = "questions first"),
        (status = 429, body = ErrorBody, description = "RL0001RateLimited: too many failed attempts from this address (Retry-After)"),
        (status = 503, body = ErrorBody, description = "SV0002Unavailable: too busy to check now (Retry-After)")))]
pub async fn start_second_factor(
    State(vsc): State<Vsc>,
    ClientIp(ip): ClientIp,
    Path(token): Path<String>,
) -> Result<Json<ResetFactorView>, ApiError> {
    Ok(Json(vsc.reset_start_second_factor(&token, &RequestOrigin { ip }).await?))
}

/// The second factor's state; with `wait`, answers as soon as a push is decided (≤ 60 s).
#[utoipa::path(get, path = "/api/v1/self/reset/{token}/second-factor", tag = "self-service",
    params(("token" = String, Path, description = "Token from the emailed link"),
        ("wait" = Option<u64>, Query, description = "Seconds to wait while pending (0–60)")),
    responses((status = 200, body = ResetFactorView), (status = 409, body = ErrorBody, description = "not started")))]
pub async fn second_factor_state(
    State(vsc): State<Vsc>,
    Path(token): Path<String>,
    Query(q): Query<WaitQuery>,
) -> Result<Json<ResetFactorView>, ApiError> {
    Ok(Json(vsc.reset_factor_state(&token, q.duration()).await?))
}

/// The second factor by code: the authenticator's app code, or the SMS code (5 wrong codes void
/// the link).
#[utoipa::path(post, path = "/api/v1/self/reset/{token}/second-factor/verify", tag = "self-service",
    params(("token" = String, Path, description = "Token from the emailed link")),
    request_body = CodeRequest,
    responses((status = 200, body = ResetView), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody, description = "RL0001RateLimited: too many failed attempts from this address (Retry-After)"),
        (status = 503, body = ErrorBody, description = "SV0002Unavailable: too busy to check now (Retry-After)")))]
pub async fn verify_second_factor(
    State(vsc): State<Vsc>,
    Path(token): Path<String>,
    ApiJson(req): ApiJson<CodeRequest>,
) -> Result<Json<ResetView>, ApiError> {
    Ok(Json(vsc.reset_verify_second_factor(&token, &req.code).await?))
}

/// Choose the new passcode: unlocks locked cards, clears the failure count, ends every open
/// card session, uses the link.
#[utoipa::path(post, path = "/api/v1/self/reset/{token}/passcode", tag = "self-service",
    params(("token" = String, Path, description = "Token from the emailed link")),
    request_body = ResetPasscodeRequest,
    responses((status = 204), (status = 422, body = ErrorBody, description = "policy, or the current passcode"),
        (status = 409, body = ErrorBody, description = "earlier steps first"), (status = 410, body = ErrorBody),
        (status = 429, body = ErrorBody, description = "RL0001RateLimited: too many failed attempts from this address (Retry-After)"),
        (status = 503, body = ErrorBody, description = "SV0002Unavailable: too busy to check now (Retry-After)")))]
pub async fn set_passcode(
    State(vsc): State<Vsc>,
    Path(token): Path<String>,
    ApiJson(req): ApiJson<ResetPasscodeRequest>,
) -> Result<StatusCode, ApiError> {
    vsc.reset_set_passcode(&token, &req.passcode).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// RA unlock: email the holder a reset link that skips the security questions (the second
/// factor is still needed); the previous link stops working.
#[utoipa::path(post, path = "/api/v1/cards/{serial}/unlock", tag = "ra", security(("bearer" = [])),
    params(("serial" = String, Path, description = "Card serial")),
    responses(
        (status = 202, body = CardView, description = "The link is sent; or, under dual control, `{change_request}` (ChangeRequested) waiting for approval"),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "card not active or locked")))]
pub async fn unlock(
    State(vsc): State<Vsc>,
    Staff(who): Staff,
    Path(serial): Path<String>,
) -> Result<axum::response::Response, ApiError> {
    Ok(super::change_requests::answer(StatusCode::ACCEPTED, vsc.issue_reset_link_for_unlock(&who, &serial).await?))
}
