//! `/api/v1/card/…`: card login, card sessions and relying-app tickets; and
//! `/api/v1/tickets/validate` for relying apps.

use std::time::Duration;

use axum::Json;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::Deserialize;
use vsc_proto::{
    CardLoginRequest, CardLoginView, CardSessionStatus, CardSessionView, CodeRequest, ErrorBody, LoginStateView,
    OpenSessionRequest, TicketRequest, TicketValidation, TicketView, ValidateTicketRequest,
};

use super::errors::ApiError;
use super::extract::ApiJson;
use super::holder::session_token;
use crate::Vsc;
use crate::service::RequestOrigin;

pub use crate::client_ip::ClientIp;

/// The bearer token of a request (a card session or an app key).
pub struct Bearer(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Bearer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        session_token(parts).map(Bearer).ok_or_else(ApiError::unauthenticated)
    }
}

/// `?wait=S` of a long-poll.
#[derive(Debug, Deserialize)]
pub struct WaitQuery {
    /// Seconds to wait (0–60).
    #[serde(default)]
    pub wait: Option<u64>,
}

impl WaitQuery {
    /// The wait as a duration.
    pub fn duration(&self) -> Duration {
        Duration::from_secs(self.wait.unwrap_or(0))
    }
}

/// Start a card login: email + passcode (+ method). Unknown email, wrong passcode and a locked
/// card give the same answer.
#[utoipa::path(post, path = "/api/v1/card/login", tag = "card",
    request_body = CardLoginRequest,
    responses((status = 200, body = CardLoginView), (status = 401, body = ErrorBody, description = "AU0003SignInFailed"),
        (status = 409, body = ErrorBody, description = "no authenticator registered"),
        (status = 429, body = ErrorBody, description = "too many unanswered pushes; or RL0001RateLimited: too many failed attempts from this address (Retry-After)"),
        (status = 503, body = ErrorBody, description = "SV0002Unavailable: too busy to check now (Retry-After)")))]
pub async fn login(
    State(vsc): State<Vsc>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<CardLoginRequest>,
) -> Result<Json<CardLoginView>, ApiError> {
    Ok(Json(vsc.start_card_login(&req, &RequestOrigin { ip }).await?))
}

/// A login's state; with `wait`, answers as soon as it is decided (long-poll, at most 60 s).
#[utoipa::path(get, path = "/api/v1/card/login/{login}", tag = "card",
    params(("login" = String, Path, description = "The login id from POST /api/v1/card/login"),
        ("wait" = Option<u64>, Query, description = "Seconds to wait while pending (0–60)")),
    responses((status = 200, body = LoginStateView), (status = 404, body = ErrorBody)))]
pub async fn login_state(
    State(vsc): State<Vsc>,
    Path(login): Path<String>,
    Query(q): Query<WaitQuery>,
) -> Result<Json<LoginStateView>, ApiError> {
    Ok(Json(vsc.card_login_state(&login, q.duration()).await?))
}

/// Approve a login with the current code of one of the holder's authenticators.
#[utoipa::path(post, path = "/api/v1/card/login/{login}/code", tag = "card",
    params(("login" = String, Path, description = "The login id")),
    request_body = CodeRequest,
    responses((status = 200, body = LoginStateView), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "not pending"), (status = 422, body = ErrorBody, description = "wrong code"),
        (status = 429, body = ErrorBody, description = "RL0001RateLimited: too many failed attempts from this address (Retry-After)"),
        (status = 503, body = ErrorBody, description = "SV0002Unavailable: too busy to check now (Retry-After)")))]
pub async fn login_code(
    State(vsc): State<Vsc>,
    Path(login): Path<String>,
    ApiJson(req): ApiJson<CodeRequest>,
) -> Result<Json<LoginStateView>, ApiError> {
    Ok(Json(vsc.card_login_code(&login, &req.code).await?))
}

/// Open the card session of an approved login (once), choosing the role when the card has several.
#[utoipa::path(post, path = "/api/v1/card/login/{login}/session", tag = "card",
    params(("login" = String, Path, description = "The login id")),
    request_body = OpenSessionRequest,
    responses((status = 200, body = CardSessionView), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "not approved"), (status = 410, body = ErrorBody, description = "already used"),
        (status = 422, body = ErrorBody, description = "role missing or unknown"),
        (status = 429, body = ErrorBody, description = "RL0001RateLimited: too many failed attempts from this address (Retry-After)"),
        (status = 503, body = ErrorBody, description = "SV0002Unavailable: too busy to check now (Retry-After)")))]
pub async fn open_session(
    State(vsc): State<Vsc>,
    Path(login): Path<String>,
    ApiJson(req): ApiJson<OpenSessionRequest>,
) -> Result<Json<CardSessionView>, ApiError> {
    Ok(Json(vsc.open_card_session(&login, req.role.as_deref()).await?))
}

/// The card session behind the bearer token.
#[utoipa::path(get, path = "/api/v1/card/session", tag = "card", security(("bearer" = [])),
    responses((status = 200, body = CardSessionStatus), (status = 401, body = ErrorBody)))]
pub async fn session(State(vsc): State<Vsc>, Bearer(token): Bearer) -> Result<Json<CardSessionStatus>, ApiError> {
    Ok(Json(vsc.card_session_status(&token).await?))
}

/// End the card session.
#[utoipa::path(post, path = "/api/v1/card/logout", tag = "card", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn logout(State(vsc): State<Vsc>, Bearer(token): Bearer) -> Result<StatusCode, ApiError> {
    vsc.card_logout(&token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A single-use, short-lived ticket for one relying app.
#[utoipa::path(post, path = "/api/v1/card/ticket", tag = "card", security(("bearer" = [])),
    request_body = TicketRequest,
    responses((status = 200, body = TicketView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn ticket(
    State(vsc): State<Vsc>,
    Bearer(token): Bearer,
    ApiJson(req): ApiJson<TicketRequest>,
) -> Result<Json<TicketView>, ApiError> {
    Ok(Json(vsc.create_ticket(&token, &req.app).await?))
}

/// A relying app (bearer: its key) validates a ticket once and learns who the holder is.
#[utoipa::path(post, path = "/api/v1/tickets/validate", tag = "card", security(("bearer" = [])),
    request_body = ValidateTicketRequest,
    responses((status = 200, body = TicketValidation),
        (status = 401, body = ErrorBody, description = "bad app key (AU0001) or ticket refused (AU0003) with the reason"),
        (status = 429, body = ErrorBody, description = "RL0001RateLimited: too many failed attempts from this address (Retry-After)"),
        (status = 503, body = ErrorBody, description = "SV0002Unavailable: too busy to check now (Retry-After)")))]
pub async fn validate_ticket(
    State(vsc): State<Vsc>,
    Bearer(key): Bearer,
    ApiJson(req): ApiJson<ValidateTicketRequest>,
) -> Result<Json<TicketValidation>, ApiError> {
    Ok(Json(vsc.validate_ticket(&key, &req.ticket).await?))
}
