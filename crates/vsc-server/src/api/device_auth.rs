//! The `Authorization: Device <token>` extractor for authenticator requests.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::errors::ApiError;
use crate::Vsc;
use crate::service::DeviceIdentity;

/// The device that signed the request; while `authenticator.require_pin` is on, only a device
/// with a PIN (others get `409 ST0002PinRequired`).
pub struct DeviceAuth(pub DeviceIdentity);

/// The device that signed the request, with or without a PIN: only for setting the PIN.
pub struct PinlessDeviceAuth(pub DeviceIdentity);

async fn authenticate(parts: &Parts, vsc: &Vsc) -> Result<DeviceIdentity, ApiError> {
    let token = parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| h.strip_prefix("Device "))
        .map(str::trim)
        .ok_or_else(ApiError::unauthenticated)?;
    Ok(vsc.authenticate_device(token, parts.method.as_str(), parts.uri.path()).await?)
}

impl FromRequestParts<Vsc> for DeviceAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, vsc: &Vsc) -> Result<Self, Self::Rejection> {
        let identity = authenticate(parts, vsc).await?;
        vsc.require_device_pin(&identity)?;
        Ok(DeviceAuth(identity))
    }
}

impl FromRequestParts<Vsc> for PinlessDeviceAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, vsc: &Vsc) -> Result<Self, Self::Rejection> {
        Ok(PinlessDeviceAuth(authenticate(parts, vsc).await?))
    }
}
