//! The holder's authenticator devices: the list (with Delete), "Add device", the emailed code,
//! and the QR code the authenticator scans.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use serde::Deserialize;
use vsc_proto::{AddDeviceRequest, DeviceView};

use super::{SignedIn, see_other};
use crate::portals::csrf::{Csrf, PortalForm};
use crate::portals::errors::{FormProblem, Inline, PageError, inline};
use crate::portals::{date_time, render};
use crate::{ServiceError, Vsc};

/// The device list.
pub const DEVICES_PATH: &str = "/self-service/devices";

/// The device types a holder picks from: (value, label).
const DEVICE_TYPES: [(&str, &str); 3] = [("phone", "Phone"), ("tablet", "Tablet"), ("desktop", "Desktop computer")];

/// The authenticator apps a holder picks from: (value, label).
const AUTHENTICATOR_TYPES: [(&str, &str); 1] = [("vsc", "vsc Authenticator")];

fn label(options: &[(&'static str, &'static str)], value: &str) -> String {
    options.iter().find(|(v, _)| *v == value).map_or_else(|| value.to_string(), |(_, l)| (*l).to_string())
}

/// A device as the list shows it.
struct DeviceLine {
    id: String,
    name: String,
    device_type: String,
    authenticator_type: String,
    /// The state in words, and the tag style.
    state: &'static str,
    tag: &'static str,
    /// Waiting for the emailed code (the holder can still type it).
    awaits_code: bool,
    client: String,
    registered: String,
    last_used: String,
}

impl DeviceLine {
    fn of(d: &DeviceView) -> DeviceLine {
        let (state, tag) = match d.state.as_str() {
            "active" => ("active", "active"),
            "pending_code" => ("waiting for the emailed code", "issued"),
            _ => ("waiting for the authenticator", "issued"),
        };
        let client = match (&d.client_version, &d.platform, &d.platform_version) {
            (Some(v), Some(p), Some(pv)) => format!("{v} on {p} {pv}"),
            (Some(v), Some(p), None) => format!("{v} on {p}"),
            (Some(v), None, _) => v.clone(),
            _ => "–".into(),
        };
        DeviceLine {
            id: d.id.clone(),
            name: d.name.clone(),
            device_type: label(&DEVICE_TYPES, &d.device_type),
            authenticator_type: label(&AUTHENTICATOR_TYPES, &d.authenticator_type),
            state,
            tag,
            awaits_code: d.state == "pending_code",
            client,
            registered: d.registered_at.map_or_else(|| "not yet".into(), date_time),
            last_used: d.last_used_at.map_or_else(|| "never".into(), date_time),
        }
    }
}

#[derive(Template)]
#[template(path = "self_service/devices.html")]
struct DevicesPage<'a> {
    csrf: &'a str,
    devices: Vec<DeviceLine>,
    active: usize,
    note: Option<&'static str>,
}

/// An option of a select.
struct Choice {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

fn choices(options: &[(&'static str, &'static str)], chosen: &str) -> Vec<Choice> {
    options.iter().map(|(value, label)| Choice { value, label, selected: *value == chosen }).collect()
}

#[derive(Template)]
#[template(path = "self_service/devices_add.html")]
struct AddPage<'a> {
    csrf: &'a str,
    name: &'a str,
    device_types: Vec<Choice>,
    authenticator_types: Vec<Choice>,
    problem: FormProblem,
}

#[derive(Template)]
#[template(path = "self_service/devices_code.html")]
struct CodePage<'a> {
    csrf: &'a str,
    id: &'a str,
    name: &'a str,
    problem: FormProblem,
}

#[derive(Template)]
#[template(path = "self_service/devices_qr.html")]
struct QrPage<'a> {
    csrf: &'a str,
    name: &'a str,
    uri: &'a str,
    /// Our own SVG (made by the service from the URI: no user text), placed inline.
    svg: &'a str,
    expires: String,
}

/// The add form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AddForm {
    name: String,
    device_type: String,
    authenticator_type: String,
}

/// The code form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CodeForm {
    code: String,
}

/// `GET /self-service/devices`.
pub async fn list(
    State(vsc): State<Vsc>,
    SignedIn { holder }: SignedIn,
    uri: Uri,
    Csrf(csrf): Csrf,
) -> Result<Response, PageError> {
    let devices = vsc.list_devices(&holder).await?.devices;
    let note = match uri.query() {
        Some("done=deleted") => Some("the device has been deleted"),
        _ => None,
    };
    let active = devices.iter().filter(|d| d.state == "active").count();
    render(
        StatusCode::OK,
        &DevicesPage { csrf: &csrf, devices: devices.iter().map(DeviceLine::of).collect(), active, note },
    )
}

fn add_page<'a>(csrf: &'a str, form: &'a AddForm, problem: FormProblem) -> AddPage<'a> {
    AddPage {
        csrf,
        name: &form.name,
        device_types: choices(&DEVICE_TYPES, &form.device_type),
        authenticator_types: choices(&AUTHENTICATOR_TYPES, &form.authenticator_type),
        problem,
    }
}

/// `GET /self-service/devices/add`.
pub async fn add_form(_: SignedIn, Csrf(csrf): Csrf) -> Result<Response, PageError> {
    let form = AddForm { authenticator_type: "vsc".into(), ..AddForm::default() };
    render(StatusCode::OK, &add_page(&csrf, &form, FormProblem::default()))
}

/// `POST /self-service/devices/add`: the code is emailed; on to the code page.
pub async fn add(
    State(vsc): State<Vsc>,
    SignedIn { holder }: SignedIn,
    Csrf(csrf): Csrf,
    PortalForm(form): PortalForm<AddForm>,
) -> Result<Response, PageError> {
    let req = AddDeviceRequest {
        name: form.name.clone(),
        device_type: form.device_type.clone(),
        authenticator_type: Some(form.authenticator_type.clone()).filter(|t| !t.is_empty()),
    };
    let problem = match vsc.add_device(&holder, &req).await {
        Ok(created) => return Ok(see_other(&format!("{DEVICES_PATH}/{}/code", created.id), &[], vsc.config())),
        // The 4th device: refused beside the form, in the service's words.
        Err(ServiceError::Conflict { message, .. }) => Inline { status: StatusCode::CONFLICT, field: None, message },
        Err(e) => inline(e)?,
    };
    let page = add_page(&csrf, &form, FormProblem(Some(problem)));
    render(page.problem.status(), &page)
}

/// The holder's device `id`, if it is waiting for its code.
async fn awaiting_code(vsc: &Vsc, holder: &crate::service::Holder, id: &str) -> Result<DeviceView, PageError> {
    let device =
        vsc.list_devices(holder).await?.devices.into_iter().find(|d| d.id == id).ok_or_else(PageError::not_found)?;
    if device.state != "pending_code" {
        return Err(PageError::message_page(
            StatusCode::CONFLICT,
            "This code has already been confirmed",
            "the code for this device has already been confirmed; to show a new QR code, delete the device and add it again",
            Some((DEVICES_PATH, "Go to your devices")),
        ));
    }
    Ok(device)
}

/// `GET /self-service/devices/{id}/code`.
pub async fn code_page(
    State(vsc): State<Vsc>,
    SignedIn { holder }: SignedIn,
    Path(id): Path<String>,
    Csrf(csrf): Csrf,
) -> Result<Response, PageError> {
    let device = awaiting_code(&vsc, &holder, &id).await?;
    render(
        StatusCode::OK,
        &CodePage { csrf: &csrf, id: &device.id, name: &device.name, problem: FormProblem::default() },
    )
}

/// `POST /self-service/devices/{id}/code`: the right code shows the QR code.
pub async fn verify(
    State(vsc): State<Vsc>,
    SignedIn { holder }: SignedIn,
    Path(id): Path<String>,
    Csrf(csrf): Csrf,
    PortalForm(form): PortalForm<CodeForm>,
) -> Result<Response, PageError> {
    let device = awaiting_code(&vsc, &holder, &id).await?;
    let problem = match vsc.verify_device_code(&holder, &id, &form.code).await {
        Ok(reg) => {
            return render(
                StatusCode::OK,
                &QrPage {
                    csrf: &csrf,
                    name: &device.name,
                    uri: &reg.registration_uri,
                    svg: &reg.qr_svg,
                    expires: date_time(reg.expires_at),
                },
            );
        }
        Err(e) => inline(e)?,
    };
    let page = CodePage { csrf: &csrf, id: &device.id, name: &device.name, problem: FormProblem(Some(problem)) };
    render(page.problem.status(), &page)
}

/// `POST /self-service/devices/{id}/delete`.
pub async fn delete(
    State(vsc): State<Vsc>,
    SignedIn { holder }: SignedIn,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    vsc.delete_device(&holder, &id).await?;
    Ok(see_other(&format!("{DEVICES_PATH}?done=deleted"), &[], vsc.config()))
}
