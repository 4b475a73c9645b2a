//! Bearer-token authentication of RA staff.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::errors::ApiError;
use crate::{Principal, Vsc};

/// The authenticated RA staff member of a request.
pub struct Staff(pub Principal);

impl FromRequestParts<Vsc> for Staff {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, vsc: &Vsc) -> Result<Self, Self::Rejection> {
        let header = parts.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(ApiError::unauthenticated)?;
        match vsc.authenticate_token(token).await? {
            Some(p) => Ok(Staff(p)),
            None => Err(ApiError::unauthenticated()),
        }
    }
}
