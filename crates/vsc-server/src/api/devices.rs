//! Authenticator devices: the holder adds, confirms, lists and deletes them
//! (`/api/v1/self/devices…`, holder session); the authenticator registers from the scanned URI and
//! reads its own view (`/api/v1/authenticator/…`, device-signed tokens).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use vsc_proto::{
    AddDeviceRequest, AuthenticatorView, CodeRequest, DeviceCreated, DeviceList, DeviceRegistrationView, ErrorBody,
    RegisterDeviceRequest, RegisteredDevice,
};

use super::device_auth::DeviceAuth;
use super::errors::ApiError;
use super::extract::ApiJson;
use super::holder::HolderAuth;
use crate::Vsc;

/// Start adding a device: a 6-digit code is emailed to the holder (10 minutes, 5 tries).
#[utoipa::path(post, path = "/api/v1/self/devices", tag = "self-service", security(("bearer" = [])),
    request_body = AddDeviceRequest,
    responses((status = 201, body = DeviceCreated), (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "CF0001Conflict: already 3 active devices"),
        (status = 422, body = ErrorBody)))]
pub async fn add(
    State(vsc): State<Vsc>,
    HolderAuth(holder, _): HolderAuth,
    ApiJson(req): ApiJson<AddDeviceRequest>,
) -> Result<(StatusCode, Json<DeviceCreated>), ApiError> {
    Ok((StatusCode::CREATED, Json(vsc.add_device(&holder, &req).await?)))
}

/// The holder's devices in every state, oldest first.
#[utoipa::path(get, path = "/api/v1/self/devices", tag = "self-service", security(("bearer" = [])),
    responses((status = 200, body = DeviceList), (status = 401, body = ErrorBody)))]
pub async fn list(State(vsc): State<Vsc>, HolderAuth(holder, _): HolderAuth) -> Result<Json<DeviceList>, ApiError> {
    Ok(Json(vsc.list_devices(&holder).await?))
}

/// Delete one of the holder's devices, in any state.
#[utoipa::path(delete, path = "/api/v1/self/devices/{id}", tag = "self-service", security(("bearer" = [])),
    params(("id" = String, Path, description = "Device id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(vsc): State<Vsc>,
    HolderAuth(holder, _): HolderAuth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    vsc.delete_device(&holder, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The emailed code → the registration URI and QR code for the authenticator (single-use,
/// 10 minutes).
#[utoipa::path(post, path = "/api/v1/self/devices/{id}/verify", tag = "self-service", security(("bearer" = [])),
    params(("id" = String, Path, description = "Device id")),
    request_body = CodeRequest,
    responses((status = 200, body = DeviceRegistrationView), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "ST0001InvalidState: code expired, voided or already used"),
        (status = 422, body = ErrorBody, description = "Wrong code")))]
pub async fn verify(
    State(vsc): State<Vsc>,
    HolderAuth(holder, _): HolderAuth,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<CodeRequest>,
) -> Result<Json<DeviceRegistrationView>, ApiError> {
    Ok(Json(vsc.verify_device_code(&holder, &id, &req.code).await?))
}

/// Register the authenticator with the scanned token, its public key, a proof of possession, the
/// holder's passcode and the device's own PIN; answers the device's TOTP secret once.
#[utoipa::path(post, path = "/api/v1/authenticator/register", tag = "authenticator",
    request_body = RegisterDeviceRequest,
    responses((status = 200, body = RegisteredDevice),
        (status = 404, body = ErrorBody, description = "Unknown token"),
        (status = 409, body = ErrorBody, description = "Already 3 active devices, or the card is locked"),
        (status = 410, body = ErrorBody, description = "EN0001LinkExpired / EN0002LinkUsed"),
        (status = 422, body = ErrorBody, description = "Bad public key or proof, wrong passcode, or the PIN missing (authenticator.require_pin) or not 4–8 digits")))]
pub async fn register(
    State(vsc): State<Vsc>,
    ApiJson(req): ApiJson<RegisterDeviceRequest>,
) -> Result<Json<RegisteredDevice>, ApiError> {
    Ok(Json(vsc.register_device(&req).await?))
}

/// The calling device, its holder and the holder's cards.
#[utoipa::path(get, path = "/api/v1/authenticator/me", tag = "authenticator", security(("device" = [])),
    responses((status = 200, body = AuthenticatorView), (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "ST0002PinRequired: the device must set its PIN first")))]
pub async fn me(State(vsc): State<Vsc>, DeviceAuth(device): DeviceAuth) -> Result<Json<AuthenticatorView>, ApiError> {
    Ok(Json(vsc.authenticator_view(&device).await?))
}
