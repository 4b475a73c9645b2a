//! Staff management in the vRA Manager (RA managers and operators): the staff list (`/ra/staff`),
//! the invitation form (`/ra/staff/new`, the password link emailed to the invitee and never shown
//! here), and each staff member's page (`/ra/staff/{id}`: role, organisations, disable / enable, a
//! new password link emailed to the account's own address). A manager who does not cover every
//! organisation of an account (or it is an operator's) sees it without the controls. Agents get a
//! page saying this is for managers (403).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use vsc_core::{DomainError, StaffRole};
use vsc_proto::{InviteStaffRequest, StaffView, UpdateStaffRequest};

use super::{HOME_PATH, MessagePage, StaffSignedIn};
use crate::portals::csrf::{Csrf, PortalForm};
use crate::portals::errors::PageError;
use crate::portals::self_service::see_other;
use crate::portals::{date_time, render};
use crate::service::StaffMember;
use crate::service::staff_admin::role_label;
use crate::{ServiceError, Vsc};

/// (field at fault, message).
type Problem = Option<(String, String)>;

/// A row of the staff list.
struct Row {
    id: String,
    name: String,
    email: String,
    role: &'static str,
    organisations: String,
    status: &'static str,
    tag: &'static str,
    last_sign_in: String,
}

/// An organisation checkbox.
struct OrgChoice {
    code: String,
    name: String,
    checked: bool,
}

#[derive(Template)]
#[template(path = "ra/staff.html")]
struct ListPage<'a> {
    csrf: &'a str,
    rows: Vec<Row>,
    note: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "ra/staff_new.html")]
struct NewPage<'a> {
    csrf: &'a str,
    problem: Problem,
    email: &'a str,
    name: &'a str,
    role: &'a str,
    orgs: Vec<OrgChoice>,
}

#[derive(Template)]
#[template(path = "ra/staff_invited.html")]
struct InvitedPage<'a> {
    csrf: &'a str,
    title: &'static str,
    name: &'a str,
    email: &'a str,
    id: &'a str,
}

#[derive(Template)]
#[template(path = "ra/staff_member.html")]
struct MemberPage<'a> {
    csrf: &'a str,
    problem: Problem,
    note: Option<&'static str>,
    row: Row,
    role: &'a str,
    myself: bool,
    /// Whether the viewer may change this account (covers all its organisations, or is an operator).
    in_reach: bool,
    operator: bool,
    disabled: bool,
    password_set: bool,
    orgs: Vec<OrgChoice>,
}

/// `?done=…` after a change.
#[derive(Debug, Default, Deserialize)]
pub struct Done {
    #[serde(default)]
    done: Option<String>,
}

/// What agents see.
fn managers_only() -> Result<Response, PageError> {
    render(
        StatusCode::FORBIDDEN,
        &MessagePage {
            title: "Staff management is for RA managers",
            message: "Only RA managers can invite staff and change their roles, organisations or access.",
            advice: Some("Ask an RA manager of your organisation."),
            link: (HOME_PATH, "Go to the users list"),
        },
    )
}

fn no_such_staff() -> Result<Response, PageError> {
    render(
        StatusCode::NOT_FOUND,
        &MessagePage {
            title: "Staff member not found",
            message: "There is no staff member at this address in your organisations.",
            advice: None,
            link: ("/ra/staff", "Go to the staff list"),
        },
    )
}

fn row(s: &StaffView) -> Row {
    let (status, tag) = if s.disabled {
        ("Disabled", "revoked")
    } else if !s.password_set {
        ("Invited", "issued")
    } else if !s.totp_set {
        ("Password set", "issued")
    } else {
        ("Active", "active")
    };
    let role = StaffRole::parse("role", &s.role).map(role_label).unwrap_or("RA Agent");
    Row {
        id: s.id.to_string(),
        name: s.name.clone(),
        email: s.email.clone(),
        role,
        organisations: s.organisations.join(", "),
        status,
        tag,
        last_sign_in: s.last_sign_in.map_or_else(|| "Never".to_string(), date_time),
    }
}

fn choices(staff: &StaffMember, chosen: &[String]) -> Vec<OrgChoice> {
    staff
        .organisations
        .iter()
        .map(|(code, name)| OrgChoice { code: code.clone(), name: name.clone(), checked: chosen.contains(code) })
        .collect()
}

/// A problem the manager can fix beside a field; anything else is a page of its own.
fn field_problem(e: ServiceError, default_field: &'static str) -> Result<(String, String), PageError> {
    match e {
        ServiceError::Domain(DomainError::Invalid { field, message }) => Ok((field.to_string(), message)),
        ServiceError::Conflict { field, message } => Ok((field.unwrap_or(default_field).to_string(), message)),
        ServiceError::NotFound { field: Some("organisations"), message } => Ok(("organisations".into(), message)),
        ServiceError::Domain(DomainError::InvalidState(message)) => Ok((default_field.to_string(), message)),
        other => Err(other.into()),
    }
}

fn is_missing(e: &ServiceError) -> bool {
    matches!(e, ServiceError::NotFound { field: Some("id"), .. })
}

fn values(form: &[(String, String)], key: &str) -> Vec<String> {
    form.iter().filter(|(k, _)| k == key).map(|(_, v)| v.trim().to_string()).collect()
}

fn value(form: &[(String, String)], key: &str) -> String {
    values(form, key).into_iter().next().unwrap_or_default()
}

/// `GET /ra/staff`.
pub async fn list(
    State(vsc): State<Vsc>,
    StaffSignedIn { staff }: StaffSignedIn,
    Csrf(csrf): Csrf,
    Query(done): Query<Done>,
) -> Result<Response, PageError> {
    if !staff.manages_staff() {
        return managers_only();
    }
    let all = vsc.list_staff(&staff.principal()).await?;
    let note = match done.done.as_deref() {
        Some("organisations") => {
            Some("The organisations were saved; the staff member no longer shares an organisation with you.")
        }
        _ => None,
    };
    render(StatusCode::OK, &ListPage { csrf: &csrf, rows: all.iter().map(row).collect(), note })
}

fn new_page(
    csrf: &str,
    staff: &StaffMember,
    form: &[(String, String)],
    problem: Problem,
) -> Result<Response, PageError> {
    let chosen = values(form, "organisations");
    let chosen = if form.is_empty() && staff.organisations.len() == 1 {
        staff.organisations.iter().map(|(c, _)| c.clone()).collect()
    } else {
        chosen
    };
    let (email, name, role) = (value(form, "email"), value(form, "name"), value(form, "role"));
    let status = if problem.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let role = if role.is_empty() { "agent" } else { role.as_str() };
    let page = NewPage { csrf, problem, email: &email, name: &name, role, orgs: choices(staff, &chosen) };
    render(status, &page)
}

/// `GET /ra/staff/new`.
pub async fn new_form(StaffSignedIn { staff }: StaffSignedIn, Csrf(csrf): Csrf) -> Result<Response, PageError> {
    if !staff.manages_staff() {
        return managers_only();
    }
    new_page(&csrf, &staff, &[], None)
}

/// `POST /ra/staff/new`: invite (the link goes to the invitee's email only).
pub async fn invite(
    State(vsc): State<Vsc>,
    StaffSignedIn { staff }: StaffSignedIn,
    Csrf(csrf): Csrf,
    PortalForm(form): PortalForm<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    if !staff.manages_staff() {
        return managers_only();
    }
    let req = InviteStaffRequest {
        email: value(&form, "email"),
        name: value(&form, "name"),
        role: value(&form, "role"),
        organisations: values(&form, "organisations"),
    };
    match vsc.invite_staff_member(&staff.principal(), &req).await {
        Ok(out) => {
            let id = out.id.to_string();
            let page =
                InvitedPage { csrf: &csrf, title: "Staff member invited", name: &req.name, email: &out.email, id: &id };
            render(StatusCode::CREATED, &page)
        }
        Err(e) => {
            let problem = field_problem(e, "email")?;
            new_page(&csrf, &staff, &form, Some(problem))
        }
    }
}

async fn member_page(
    vsc: &Vsc,
    csrf: &str,
    staff: &StaffMember,
    s: &StaffView,
    problem: Problem,
    note: Option<&'static str>,
) -> Result<Response, PageError> {
    let status = if problem.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let in_reach = vsc.staff_in_reach(&staff.principal(), &s.id.to_string()).await?;
    let page = MemberPage {
        in_reach,
        operator: s.operator,
        csrf,
        problem,
        note,
        row: row(s),
        role: &s.role,
        myself: s.id.to_string() == staff.id,
        disabled: s.disabled,
        password_set: s.password_set,
        orgs: choices(staff, &s.organisations),
    };
    render(status, &page)
}

/// `GET /ra/staff/{id}`.
pub async fn show(
    State(vsc): State<Vsc>,
    StaffSignedIn { staff }: StaffSignedIn,
    Csrf(csrf): Csrf,
    Path(id): Path<String>,
    Query(done): Query<Done>,
) -> Result<Response, PageError> {
    if !staff.manages_staff() {
        return managers_only();
    }
    let s = match vsc.get_staff(&staff.principal(), &id).await {
        Ok(s) => s,
        Err(e) if is_missing(&e) => return no_such_staff(),
        Err(e) => return Err(e.into()),
    };
    let note = match done.done.as_deref() {
        Some("role") => Some("The role was changed."),
        Some("organisations") => Some("The organisations were saved."),
        Some("disabled") => Some("The account was disabled: its sessions ended and its API tokens stopped working."),
        Some("enabled") => Some("The account was enabled."),
        Some("link") => {
            Some("A new password link was emailed to the staff member's own address; older links no longer work.")
        }
        _ => None,
    };
    member_page(&vsc, &csrf, &staff, &s, None, note).await
}

/// `POST /ra/staff/{id}/{action}`: `role`, `organisations`, `disable`, `enable` or `link`.
pub async fn act(
    State(vsc): State<Vsc>,
    StaffSignedIn { staff }: StaffSignedIn,
    Csrf(csrf): Csrf,
    Path((id, action)): Path<(String, String)>,
    PortalForm(form): PortalForm<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    if !staff.manages_staff() {
        return managers_only();
    }
    let who = staff.principal();
    let (req, field) = match action.as_str() {
        "role" => (UpdateStaffRequest { role: Some(value(&form, "role")), ..Default::default() }, "role"),
        "organisations" => (
            UpdateStaffRequest { organisations: Some(values(&form, "organisations")), ..Default::default() },
            "organisations",
        ),
        "disable" => (UpdateStaffRequest { disabled: Some(true), ..Default::default() }, "disabled"),
        "enable" => (UpdateStaffRequest { disabled: Some(false), ..Default::default() }, "disabled"),
        "link" => {
            return match vsc.resend_staff_link(&who, &id).await {
                Ok(()) => Ok(see_other(&format!("/ra/staff/{id}?done=link"), &[], vsc.config())),
                Err(e) if is_missing(&e) => no_such_staff(),
                Err(e) => {
                    let problem = field_problem(e, "link")?;
                    let s = vsc.get_staff(&who, &id).await?;
                    member_page(&vsc, &csrf, &staff, &s, Some(problem), None).await
                }
            };
        }
        _ => return no_such_staff(),
    };
    match vsc.update_staff(&who, &id, &req).await {
        Ok(s) if s.organisations.is_empty() => Ok(see_other("/ra/staff?done=organisations", &[], vsc.config())),
        Ok(_) => {
            let done = match action.as_str() {
                "disable" => "disabled",
                "enable" => "enabled",
                other => other,
            };
            Ok(see_other(&format!("/ra/staff/{id}?done={done}"), &[], vsc.config()))
        }
        Err(e) if is_missing(&e) => no_such_staff(),
        Err(e) => {
            let problem = field_problem(e, field)?;
            let s = vsc.get_staff(&who, &id).await?;
            member_page(&vsc, &csrf, &staff, &s, Some(problem), None).await
        }
    }
}
