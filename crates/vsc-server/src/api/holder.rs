//! `/api/v1/self/…`: the JSON mirror of the Self-Service Portal.

use axum::Json;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::StatusCode;
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;
use vsc_proto::{
    ChangeQuestionsRequest, CodeRequest, CodeSent, ErrorBody, HolderView, SelfBlockRequest, SelfBlocked, SessionView,
    SignInRequest, SignInStateView, SignInView,
};

use super::card::{ClientIp, WaitQuery};
use super::errors::ApiError;
use super::extract::ApiJson;
use crate::Vsc;
use crate::service::{Holder, RequestOrigin};

/// Cookie carrying the portal session.
pub const SESSION_COOKIE: &str = "vsc_session";

/// The session token of a request: `Authorization: Bearer` or the portal cookie.
pub fn session_token(parts: &Parts) -> Option<String> {
    let bearer = parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
        .map(|t| t.trim().to_string());
    bearer.or_else(|| cookie(parts, SESSION_COOKIE))
}

/// A cookie's value.
pub fn cookie(parts: &Parts, name: &str) -> Option<String> {
    parts.headers.get_all(COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        (k == name && !v.is_empty()).then(|| v.to_string())
    })
}

/// The authenticated holder of a request, with the session token.
pub struct HolderAuth(pub Holder, pub String);

impl FromRequestParts<Vsc> for HolderAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, vsc: &Vsc) -> Result<Self, Self::Rejection> {
        let token = session_token(parts).ok_or_else(ApiError::unauthenticated)?;
        Ok(HolderAuth(vsc.holder_session(&token).await?, token))
    }
}

/// The holder of a request when it carries a live session (bearer or portal cookie), else `None`.
pub struct MaybeHolder(pub Option<Holder>);

impl FromRequestParts<Vsc> for MaybeHolder {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, vsc: &Vsc) -> Result<Self, Self::Rejection> {
        let Some(token) = session_token(parts) else { return Ok(MaybeHolder(None)) };
        match vsc.holder_session(&token).await {
            Ok(holder) => Ok(MaybeHolder(Some(holder))),
            Err(crate::ServiceError::Unauthenticated(_)) => Ok(MaybeHolder(None)),
            Err(e) => Err(e.into()),
        }
    }
}

/// Sign-in step 1: email and passcode. Wrong email and wrong passcode give the same answer. A
/// holder with an authenticator gets a push (`second_factor: push`), others an SMS code.
#[utoipa::path(post, path = "/api/v1/self/sign-in", tag = "self-service",
    request_body = SignInRequest,
    responses((status = 200, body = SignInView), (status = 401, body = ErrorBody, description = "AU0003SignInFailed"),
        (status = 429, body = ErrorBody, description = "too many unanswered pushes and no mobile on record; or RL0001RateLimited: too many failed attempts from this address (Retry-After)"),
        (status = 503, body = ErrorBody, description = "SV0002Unavailable: too busy to check now (Retry-After)")))]
pub async fn sign_in(
    State(vsc): State<Vsc>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<SignInRequest>,
) -> Result<Json<SignInView>, ApiError> {
    Ok(Json(vsc.sign_in(&req.email, &req.passcode, &RequestOrigin { ip }).await?))
}

/// Where a sign-in's second factor stands; with `wait`, answers as soon as the push is decided
/// (long-poll, at most 60 s).
#[utoipa::path(get, path = "/api/v1/self/sign-in/{sign_in}", tag = "self-service",
    params(("sign_in" = String, Path, description = "From step 1"),
        ("wait" = Option<u64>, Query, description = "Seconds to wait while pending (0–60)")),
    responses((status = 200, body = SignInStateView), (status = 404, body = ErrorBody)))]
pub async fn sign_in_state(
    State(vsc): State<Vsc>,
    Path(sign_in): Path<String>,
    Query(q): Query<WaitQuery>,
) -> Result<Json<SignInStateView>, ApiError> {
    Ok(Json(vsc.sign_in_state(&sign_in, q.duration()).await?))
}

/// Sign-in step 2 after a push: once approved on the phone → a session (once).
#[utoipa::path(post, path = "/api/v1/self/sign-in/{sign_in}/complete", tag = "self-service",
    params(("sign_in" = String, Path, description = "From step 1")),
    responses((status = 200, body = SessionView), (status = 401, body = ErrorBody, description = "denied, expired or used"),
        (status = 409, body = ErrorBody, description = "not approved yet"),
        (status = 429, body = ErrorBody, description = "RL0001RateLimited: too many failed attempts from this address (Retry-After)"),
        (status = 503, body = ErrorBody, description = "SV0002Unavailable: too busy to check now (Retry-After)")))]
pub async fn complete_sign_in(
    State(vsc): State<Vsc>,
    Path(sign_in): Path<String>,
) -> Result<Json<SessionView>, ApiError> {
    Ok(Json(vsc.complete_sign_in(&sign_in).await?))
}

/// Sign-in step 2: the SMS code, or for a push sign-in the authenticator's app code → a session.
#[utoipa::path(post, path = "/api/v1/self/sign-in/{sign_in}/verify", tag = "self-service",
    params(("sign_in" = String, Path, description = "From step 1")),
    request_body = CodeRequest,
    responses((status = 200, body = SessionView), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody, description = "RL0001RateLimited: too many failed attempts from this address (Retry-After)"),
        (status = 503, body = ErrorBody, description = "SV0002Unavailable: too busy to check now (Retry-After)")))]
pub async fn verify_sign_in(
    State(vsc): State<Vsc>,
    Path(sign_in): Path<String>,
    ApiJson(req): ApiJson<CodeRequest>,
) -> Result<Json<SessionView>, ApiError> {
    Ok(Json(vsc.verify_sign_in(&sign_in, &req.code).await?))
}

/// The holder's details, cards and devices.
#[utoipa::path(get, path = "/api/v1/self", tag = "self-service", security(("bearer" = [])),
    responses((status = 200, body = HolderView), (status = 401, body = ErrorBody)))]
pub async fn me(State(vsc): State<Vsc>, HolderAuth(holder, _): HolderAuth) -> Result<Json<HolderView>, ApiError> {
    Ok(Json(vsc.holder_view(&holder).await?))
}

/// End the session.
#[utoipa::path(post, path = "/api/v1/self/sign-out", tag = "self-service", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn sign_out(State(vsc): State<Vsc>, HolderAuth(_, token): HolderAuth) -> Result<StatusCode, ApiError> {
    vsc.sign_out(&token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Email the holder a link that confirms their address (at most once a minute).
#[utoipa::path(post, path = "/api/v1/self/email-verification", tag = "self-service", security(("bearer" = [])),
    responses((status = 202), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn send_email_verification(
    State(vsc): State<Vsc>,
    HolderAuth(holder, _): HolderAuth,
) -> Result<StatusCode, ApiError> {
    vsc.send_email_verification(&holder).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Confirm the email address with the token from the emailed link; the holder it was sent for
/// must be signed in (their session), so reading the mailbox alone confirms nothing.
#[utoipa::path(post, path = "/api/v1/self/email-verification/{token}", tag = "self-service", security(("bearer" = [])),
    params(("token" = String, Path, description = "Token from the emailed link")),
    responses((status = 200, description = "`{\"email\": …}`"),
        (status = 401, body = ErrorBody, description = "not signed in as the holder the link was sent for"),
        (status = 404, body = ErrorBody), (status = 410, body = ErrorBody)))]
pub async fn verify_email(
    State(vsc): State<Vsc>,
    MaybeHolder(holder): MaybeHolder,
    Path(token): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let email = vsc.verify_email(&token, holder.as_ref()).await?;
    Ok(Json(serde_json::json!({ "email": email, "verified": true })))
}

/// Send a code by SMS to the holder's mobile number when it is not confirmed yet (after an RA
/// changed it); at most once a minute. SMS second factors go only to a confirmed number.
#[utoipa::path(post, path = "/api/v1/self/mobile-verification", tag = "self-service", security(("bearer" = [])),
    responses((status = 202, body = CodeSent), (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "ST0001InvalidState: no mobile number, or already confirmed"),
        (status = 429, body = ErrorBody)))]
pub async fn send_mobile_verification(
    State(vsc): State<Vsc>,
    HolderAuth(holder, _): HolderAuth,
) -> Result<(StatusCode, Json<CodeSent>), ApiError> {
    Ok((StatusCode::ACCEPTED, Json(vsc.send_mobile_verification(&holder).await?)))
}

/// Confirm the mobile number with the code sent to it (single-use, 10 minutes, 5 attempts).
#[utoipa::path(post, path = "/api/v1/self/mobile-verification/verify", tag = "self-service",
    security(("bearer" = [])), request_body = CodeRequest,
    responses((status = 204), (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "ST0001InvalidState: no live code"),
        (status = 422, body = ErrorBody, description = "wrong code")))]
pub async fn verify_mobile(
    State(vsc): State<Vsc>,
    HolderAuth(holder, _): HolderAuth,
    ApiJson(req): ApiJson<CodeRequest>,
) -> Result<StatusCode, ApiError> {
    vsc.verify_mobile(&holder, &req.code).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replace the security questions (the current passcode is required).
#[utoipa::path(put, path = "/api/v1/self/questions", tag = "self-service", security(("bearer" = [])),
    request_body = ChangeQuestionsRequest,
    responses((status = 204), (status = 422, body = ErrorBody)))]
pub async fn change_questions(
    State(vsc): State<Vsc>,
    HolderAuth(holder, _): HolderAuth,
    ApiJson(req): ApiJson<ChangeQuestionsRequest>,
) -> Result<StatusCode, ApiError> {
    vsc.change_questions(&holder, &req).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Block (suspend) every active or locked card of the holder. The passcode is checked like a
/// login's (a wrong one counts toward the lock); only the RA can resume the cards.
#[utoipa::path(post, path = "/api/v1/self/block", tag = "self-service", security(("bearer" = [])),
    request_body = SelfBlockRequest,
    responses((status = 200, body = SelfBlocked), (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The card is locked or not active: the passcode cannot be checked"),
        (status = 422, body = ErrorBody, description = "Wrong passcode (counted)")))]
pub async fn block(
    State(vsc): State<Vsc>,
    HolderAuth(holder, _): HolderAuth,
    ApiJson(req): ApiJson<SelfBlockRequest>,
) -> Result<Json<SelfBlocked>, ApiError> {
    Ok(Json(SelfBlocked { suspended: vsc.self_block(&holder, &req.passcode).await? }))
}
