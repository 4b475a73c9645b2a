//! `/api/v1/users/{id}/cards` and `/api/v1/cards/{serial}`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use vsc_proto::{
    CardView, ChangeRequested, ErrorBody, ErrorCode, IssueCardRequest, RevokeCardRequest, SuspendCardRequest,
};

use super::auth::Staff;
use super::change_requests::answer;
use super::errors::ApiError;
use super::extract::ApiJson;
use crate::Vsc;
use crate::service::IssueCard;

/// Issue a V1 or V2 card: keys, certificates and roles in one transaction.
#[utoipa::path(post, path = "/api/v1/users/{id}/cards", tag = "ra", security(("bearer" = [])),
    params(("id" = String, Path, description = "User UUID")),
    request_body = IssueCardRequest,
    responses(
        (status = 201, body = CardView),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "Invalid type, role or key algorithm")))]
pub async fn issue(
    State(vsc): State<Vsc>,
    Staff(who): Staff,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<IssueCardRequest>,
) -> Result<(StatusCode, Json<CardView>), ApiError> {
    let req = IssueCard::parse(&req)?;
    Ok((StatusCode::CREATED, Json(vsc.issue_card(&who, &id, &req).await?)))
}

/// A card with its certificates.
#[utoipa::path(get, path = "/api/v1/cards/{serial}", tag = "ra", security(("bearer" = [])),
    params(("serial" = String, Path, description = "Card serial")),
    responses((status = 200, body = CardView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(vsc): State<Vsc>,
    Staff(who): Staff,
    Path(serial): Path<String>,
) -> Result<Json<CardView>, ApiError> {
    Ok(Json(vsc.get_card(&who, &serial).await?))
}

/// Revoke a card (body optional: `{"reason": "…"}`).
#[utoipa::path(post, path = "/api/v1/cards/{serial}/revoke", tag = "ra", security(("bearer" = [])),
    params(("serial" = String, Path, description = "Card serial")),
    request_body(content = Option<RevokeCardRequest>),
    responses(
        (status = 200, body = CardView),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "Already revoked")))]
pub async fn revoke(
    State(vsc): State<Vsc>,
    Staff(who): Staff,
    Path(serial): Path<String>,
    body: Bytes,
) -> Result<Json<CardView>, ApiError> {
    let req: RevokeCardRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RevokeCardRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::MalformedRequest, format!("invalid JSON body: {e}"), None)
        })?
    };
    Ok(Json(vsc.revoke_card(&who, &serial, req.reason.as_deref()).await?))
}

/// Suspend an active or locked card (reversible): its sessions end and its certificates go on
/// hold (certificateHold on the CRL, signed again at once, and in OCSP); the holder is emailed.
#[utoipa::path(post, path = "/api/v1/cards/{serial}/suspend", tag = "ra", security(("bearer" = [])),
    params(("serial" = String, Path, description = "Card serial")),
    request_body = SuspendCardRequest,
    responses(
        (status = 200, body = CardView),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "Not active or locked"),
        (status = 422, body = ErrorBody, description = "Reason missing or longer than 500 characters")))]
pub async fn suspend(
    State(vsc): State<Vsc>,
    Staff(who): Staff,
    Path(serial): Path<String>,
    ApiJson(req): ApiJson<SuspendCardRequest>,
) -> Result<Json<CardView>, ApiError> {
    Ok(Json(vsc.suspend_card(&who, &serial, &req.reason).await?))
}

/// Resume a suspended card into the state it was suspended from (active or locked); its
/// certificates are valid again (listed as removeFromCRL on the CRLs of the next CRL lifetime).
#[utoipa::path(post, path = "/api/v1/cards/{serial}/resume", tag = "ra", security(("bearer" = [])),
    params(("serial" = String, Path, description = "Card serial")),
    responses(
        (status = 200, body = CardView),
        (status = 202, body = ChangeRequested, description = "Under dual control (the holder is enrolled): waiting for a second staff member's approval"),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "Not suspended")))]
pub async fn resume(
    State(vsc): State<Vsc>,
    Staff(who): Staff,
    Path(serial): Path<String>,
) -> Result<Response, ApiError> {
    Ok(answer(StatusCode::OK, vsc.resume_card(&who, &serial).await?))
}

/// Renew a card before it expires: new keys and certificates for the same card; the old
/// certificates are revoked as superseded in the same transaction.
#[utoipa::path(post, path = "/api/v1/cards/{serial}/renew", tag = "ra", security(("bearer" = [])),
    params(("serial" = String, Path, description = "Card serial")),
    responses(
        (status = 200, body = CardView),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "Revoked or expired")))]
pub async fn renew(
    State(vsc): State<Vsc>,
    Staff(who): Staff,
    Path(serial): Path<String>,
) -> Result<Json<CardView>, ApiError> {
    Ok(Json(vsc.renew_card(&who, &serial).await?))
}

/// Send a new enrolment invitation for a card awaiting enrolment; the previous link stops working.
#[utoipa::path(post, path = "/api/v1/cards/{serial}/invitation", tag = "ra", security(("bearer" = [])),
    params(("serial" = String, Path, description = "Card serial")),
    responses(
        (status = 202, body = CardView),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "Card is not awaiting enrolment")))]
pub async fn resend_invitation(
    State(vsc): State<Vsc>,
    Staff(who): Staff,
    Path(serial): Path<String>,
) -> Result<(StatusCode, Json<CardView>), ApiError> {
    Ok((StatusCode::ACCEPTED, Json(vsc.resend_invitation(&who, &serial).await?)))
}

/// Restart the issuance of a card that is issued but not enrolled: new keys and certificates (the
/// old ones superseded on the CRL) and a new invitation; the previous link stops working.
#[utoipa::path(post, path = "/api/v1/cards/{serial}/restart", tag = "ra", security(("bearer" = [])),
    params(("serial" = String, Path, description = "Card serial")),
    responses(
        (status = 202, body = CardView, description = "Restarted; or, for a holder with an enrolled card under dual control, `{change_request}` (ChangeRequested) waiting for approval"),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "Card is not awaiting enrolment")))]
pub async fn restart_issuance(
    State(vsc): State<Vsc>,
    Staff(who): Staff,
    Path(serial): Path<String>,
) -> Result<Response, ApiError> {
    Ok(answer(StatusCode::ACCEPTED, vsc.restart_issuance(&who, &serial).await?))
}
