//! Public PKI material.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

use super::errors::ApiError;
use crate::Vsc;

/// The CA chain (issuing CA, then root) in PEM; public.
#[utoipa::path(get, path = "/api/v1/pki/ca.pem", tag = "pki",
    responses((status = 200, description = "PEM certificates", content_type = "application/x-pem-file", body = String)))]
pub async fn ca_pem(State(vsc): State<Vsc>) -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/x-pem-file")], vsc.ca_chain_pem())
}

/// The current CRL of the issuing CA (DER), signed anew at every revocation and at half its
/// lifetime; public.
#[utoipa::path(get, path = "/api/v1/pki/crl.der", tag = "pki",
    responses((status = 200, description = "DER CRL", content_type = "application/pkix-crl", body = Vec<u8>)))]
pub async fn crl(State(vsc): State<Vsc>) -> Result<impl IntoResponse, ApiError> {
    Ok(([(CONTENT_TYPE, "application/pkix-crl")], vsc.crl().await?))
}

/// The OCSP responder (RFC 6960): a DER `OCSPRequest` in, a DER `OCSPResponse` signed by the
/// issuing CA out (`good`, `revoked` with time and reason, or `unknown` per certificate).
#[utoipa::path(post, path = "/api/v1/pki/ocsp", tag = "pki",
    request_body(content = Vec<u8>, content_type = "application/ocsp-request"),
    responses((status = 200, description = "DER OCSP response", content_type = "application/ocsp-response", body = Vec<u8>)))]
pub async fn ocsp(State(vsc): State<Vsc>, body: Bytes) -> Result<impl IntoResponse, ApiError> {
    Ok(([(CONTENT_TYPE, "application/ocsp-response")], vsc.ocsp(&body).await?))
}
