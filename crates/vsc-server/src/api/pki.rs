//! Public PKI material.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

use crate::Vsc;

/// The CA chain (issuing CA, then root) in PEM; public.
#[utoipa::path(get, path = "/api/v1/pki/ca.pem", tag = "pki",
    responses((status = 200, description = "PEM certificates", content_type = "application/x-pem-file", body = String)))]
pub async fn ca_pem(State(vsc): State<Vsc>) -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/x-pem-file")], vsc.ca_chain_pem())
}
