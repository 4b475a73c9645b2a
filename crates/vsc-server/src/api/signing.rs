//! `/api/v1/card/sign`, `/api/v1/card/sign/batch`, `/api/v1/card/cades`, `/api/v1/card/approvals/{id}` and
//! `/api/v1/card/certificates`: card operations with an open card session (`Authorization: Bearer`).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use vsc_proto::{
    ApprovalView, CadesSignRequest, CadesSignature, CardCertificatesView, CardSignBatchRequest, CardSignRequest,
    CardSignature, CardSignatureBatch, ErrorBody,
};

use super::card::{Bearer, ClientIp, WaitQuery};
use super::errors::ApiError;
use super::extract::ApiJson;
use crate::Vsc;
use crate::service::{RequestOrigin, SignOutcome};

fn respond<T: serde::Serialize>(outcome: SignOutcome<T>) -> Response {
    match outcome {
        SignOutcome::Signed(s) => (StatusCode::OK, Json(s)).into_response(),
        SignOutcome::NeedsApproval(a) => (StatusCode::ACCEPTED, Json(a)).into_response(),
    }
}

/// A raw signature with the card's authentication (default) or signing key, over a SHA-256
/// digest (hex) or data (base64). When the signing policy asks for the holder's approval, the
/// answer is `202` with the approval to wait for; repeat the request with `approval` once approved.
#[utoipa::path(post, path = "/api/v1/card/sign", tag = "card", security(("bearer" = [])),
    request_body = CardSignRequest,
    responses((status = 200, body = CardSignature), (status = 202, body = ApprovalView, description = "approval needed"),
        (status = 401, body = ErrorBody, description = "no open card session"),
        (status = 409, body = ErrorBody, description = "card locked, revoked or expired; no signing key (V1)"),
        (status = 422, body = ErrorBody, description = "bad digest, data, key, algorithm or approval"),
        (status = 429, body = ErrorBody, description = "too many unanswered approvals")))]
pub async fn sign(
    State(vsc): State<Vsc>,
    Bearer(token): Bearer,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<CardSignRequest>,
) -> Result<Response, ApiError> {
    Ok(respond(vsc.card_sign(&token, &req, &RequestOrigin { ip }).await?))
}

/// A CAdES-BES signature (CMS SignedData with signing-certificate-v2, signing-time, content-type
/// and message-digest) with a V2 card's signing key; detached by default. Needs the holder's
/// approval under the default policy (`202`, then repeat with `approval`).
#[utoipa::path(post, path = "/api/v1/card/cades", tag = "card", security(("bearer" = [])),
    request_body = CadesSignRequest,
    responses((status = 200, body = CadesSignature), (status = 202, body = ApprovalView, description = "approval needed"),
        (status = 401, body = ErrorBody, description = "no open card session"),
        (status = 409, body = ErrorBody, description = "V1 card (no signing key); card locked, revoked or expired"),
        (status = 422, body = ErrorBody, description = "bad digest, data or approval"),
        (status = 429, body = ErrorBody, description = "too many unanswered approvals")))]
pub async fn cades(
    State(vsc): State<Vsc>,
    Bearer(token): Bearer,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<CadesSignRequest>,
) -> Result<Response, ApiError> {
    Ok(respond(vsc.card_cades(&token, &req, &RequestOrigin { ip }).await?))
}

/// A signature approval's state (`pending`, `approved`, `denied`, `expired`, `used`); with
/// `wait`, answers as soon as the holder answers (long-poll, at most 60 s).
#[utoipa::path(get, path = "/api/v1/card/approvals/{id}", tag = "card", security(("bearer" = [])),
    params(("id" = String, Path, description = "Approval id"),
        ("wait" = Option<u64>, Query, description = "Seconds to wait while pending (0–60)")),
    responses((status = 200, body = ApprovalView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn approval(
    State(vsc): State<Vsc>,
    Bearer(token): Bearer,
    Path(id): Path<String>,
    Query(q): Query<WaitQuery>,
) -> Result<Json<ApprovalView>, ApiError> {
    Ok(Json(vsc.card_approval(&token, &id, q.duration()).await?))
}

/// The session's card certificates, the CA chain and where to check their status.
#[utoipa::path(get, path = "/api/v1/card/certificates", tag = "card", security(("bearer" = [])),
    responses((status = 200, body = CardCertificatesView), (status = 401, body = ErrorBody)))]
pub async fn certificates(
    State(vsc): State<Vsc>,
    Bearer(token): Bearer,
) -> Result<Json<CardCertificatesView>, ApiError> {
    Ok(Json(vsc.card_certificates(&token).await?))
}

/// Raw signatures of 1–256 SHA-256 digests with one card key in one request (like the CSC API's
/// signHash), in the order given, each audited as a `card.signed` event; all or none are
/// released. For keys the policy lets sign within the session (the authentication key by
/// default); a key that needs the holder's approval per signature is refused (`409`).
#[utoipa::path(post, path = "/api/v1/card/sign/batch", tag = "card", security(("bearer" = [])),
    request_body = CardSignBatchRequest,
    responses((status = 200, body = CardSignatureBatch),
        (status = 401, body = ErrorBody, description = "no open card session"),
        (status = 409, body = ErrorBody, description = "the key needs an approval per signature; card locked, revoked or expired; no signing key (V1)"),
        (status = 422, body = ErrorBody, description = "no digests, more than 256, a bad digest, key, algorithm or app")))]
pub async fn sign_batch(
    State(vsc): State<Vsc>,
    Bearer(token): Bearer,
    ApiJson(req): ApiJson<CardSignBatchRequest>,
) -> Result<Json<CardSignatureBatch>, ApiError> {
    Ok(Json(vsc.card_sign_batch(&token, &req).await?))
}
