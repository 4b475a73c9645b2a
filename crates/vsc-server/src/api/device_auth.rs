//! The `Authorization: Device <token>` extractor for authenticator requests.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::errors::ApiError;
use crate::Vsc;
use crate::service::DeviceIdentity;

/// The device that signed the request.
pub struct DeviceAuth(pub DeviceIdentity);

impl FromRequestParts<Vsc> for DeviceAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, vsc: &Vsc) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|h| h.strip_prefix("Device "))
            .map(str::trim)
            .ok_or_else(ApiError::unauthenticated)?;
        let identity = vsc.authenticate_device(token, parts.method.as_str(), parts.uri.path()).await?;
        Ok(DeviceAuth(identity))
    }
}
