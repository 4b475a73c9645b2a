//! `/api/v1/authenticator/challenges…`: what a device is asked, and its signed answers.

use axum::Json;
use axum::extract::{Path, Query, State};
use vsc_proto::{AnswerOutcome, ChallengeAnswer, ChallengeList, ChallengeView, ErrorBody};

use super::card::WaitQuery;
use super::device_auth::DeviceAuth;
use super::errors::ApiError;
use super::extract::ApiJson;
use crate::Vsc;

/// Pending challenges for the device's holder; with `wait`, answers the moment one is made.
#[utoipa::path(get, path = "/api/v1/authenticator/challenges", tag = "authenticator",
    params(("wait" = Option<u64>, Query, description = "Seconds to wait for a challenge (0–60)")),
    responses((status = 200, body = ChallengeList), (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "ST0002PinRequired: the device must set its PIN first")))]
pub async fn list(
    State(vsc): State<Vsc>,
    DeviceAuth(device): DeviceAuth,
    Query(q): Query<WaitQuery>,
) -> Result<Json<ChallengeList>, ApiError> {
    Ok(Json(ChallengeList { challenges: vsc.device_challenges(&device, q.duration()).await? }))
}

/// One challenge of the device's holder (after scanning a QR login).
#[utoipa::path(get, path = "/api/v1/authenticator/challenges/{id}", tag = "authenticator",
    params(("id" = String, Path, description = "Challenge id")),
    responses((status = 200, body = ChallengeView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "ST0002PinRequired: the device must set its PIN first")))]
pub async fn get(
    State(vsc): State<Vsc>,
    DeviceAuth(device): DeviceAuth,
    Path(id): Path<String>,
) -> Result<Json<ChallengeView>, ApiError> {
    Ok(Json(vsc.device_challenge(&device, &id).await?))
}

/// Answer a challenge Yes/No, signed with the device key; accepted once.
#[utoipa::path(post, path = "/api/v1/authenticator/challenges/{id}/answer", tag = "authenticator",
    params(("id" = String, Path, description = "Challenge id")),
    request_body = ChallengeAnswer,
    responses((status = 200, body = AnswerOutcome), (status = 401, body = ErrorBody, description = "bad signature"),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "ST0001InvalidState: expired or already answered; ST0002PinRequired: the device must set its PIN first")))]
pub async fn answer(
    State(vsc): State<Vsc>,
    DeviceAuth(device): DeviceAuth,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ChallengeAnswer>,
) -> Result<Json<AnswerOutcome>, ApiError> {
    Ok(Json(vsc.answer_challenge(&device, &id, &req).await?))
}
