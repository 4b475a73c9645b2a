//! The authenticator PIN (`/api/v1/authenticator/pin…`, device-signed), the passcode reset from
//! the authenticator, and the RA's PIN reset (`/api/v1/devices/{id}/pin-reset`, staff bearer).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use vsc_proto::{DeviceResetPasscodeRequest, ErrorBody, PinResetIssued, PinResetRequest, SetPinRequest};

use super::auth::Staff;
use super::device_auth::{DeviceAuth, PinlessDeviceAuth};
use super::errors::ApiError;
use super::extract::ApiJson;
use crate::Vsc;

/// Choose a new card passcode from a registered authenticator (its PIN too, once set): the same
/// policy and effects as the emailed reset (unlocks a locked card, ends card sessions).
#[utoipa::path(post, path = "/api/v1/authenticator/reset-passcode", tag = "authenticator", security(("device" = [])),
    request_body = DeviceResetPasscodeRequest,
    responses((status = 204), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "PIN locked (5 wrong PINs)"),
        (status = 409, body = ErrorBody, description = "ST0002PinRequired: the device must set its PIN first"),
        (status = 422, body = ErrorBody, description = "passcode policy, the current passcode, PIN missing or wrong")))]
pub async fn reset_passcode(
    State(vsc): State<Vsc>,
    DeviceAuth(device): DeviceAuth,
    ApiJson(req): ApiJson<DeviceResetPasscodeRequest>,
) -> Result<StatusCode, ApiError> {
    vsc.reset_passcode_from_device(&device, &req).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Set the authenticator's PIN (4–8 digits); changing it needs the current PIN. The one device
/// request a PIN-less device may make while `authenticator.require_pin` is on.
#[utoipa::path(post, path = "/api/v1/authenticator/pin", tag = "authenticator", security(("device" = [])),
    request_body = SetPinRequest,
    responses((status = 204), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "PIN locked (5 wrong PINs)"),
        (status = 422, body = ErrorBody, description = "not 4–8 digits, current PIN missing or wrong")))]
pub async fn set_pin(
    State(vsc): State<Vsc>,
    PinlessDeviceAuth(device): PinlessDeviceAuth,
    ApiJson(req): ApiJson<SetPinRequest>,
) -> Result<StatusCode, ApiError> {
    vsc.set_device_pin(&device, &req).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Redeem the RA's PIN-reset token with a new PIN: clears the lock; the token works once and
/// only for this device.
#[utoipa::path(post, path = "/api/v1/authenticator/pin/reset", tag = "authenticator", security(("device" = [])),
    request_body = PinResetRequest,
    responses((status = 204), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "unknown token, or another device's"),
        (status = 409, body = ErrorBody, description = "ST0002PinRequired: the device must set its PIN first"),
        (status = 410, body = ErrorBody, description = "EN0001LinkExpired (older or expired) / EN0002LinkUsed"),
        (status = 422, body = ErrorBody, description = "not 4–8 digits")))]
pub async fn reset_pin(
    State(vsc): State<Vsc>,
    DeviceAuth(device): DeviceAuth,
    ApiJson(req): ApiJson<PinResetRequest>,
) -> Result<StatusCode, ApiError> {
    vsc.reset_device_pin(&device, &req).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Issue a single-use PIN-reset token for a holder's active device (older ones are void); the RA
/// reads it out to the holder.
#[utoipa::path(post, path = "/api/v1/devices/{id}/pin-reset", tag = "ra", security(("bearer" = [])),
    params(("id" = String, Path, description = "Device id")),
    responses((status = 201, body = PinResetIssued), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no such active device in the caller's organisations")))]
pub async fn issue_pin_reset(
    State(vsc): State<Vsc>,
    Staff(who): Staff,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<PinResetIssued>), ApiError> {
    Ok((StatusCode::CREATED, Json(vsc.issue_pin_reset(&who, &id).await?)))
}
