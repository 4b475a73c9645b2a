//! Creating a user (`/ra/users/new`) and editing one (`/ra/users/{id}/edit`: names, mobile and
//! subject CN; the email through its own form posted to `/ra/users/{id}/email`) in the vRA Manager. Problems are shown
//! beside the field at fault (422), with what was typed kept.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use vsc_core::DomainError;
use vsc_proto::{CreateUserRequest, UserView};

use super::StaffSignedIn;
use super::users::{is_missing, no_such_user};
use crate::portals::csrf::{Csrf, PortalForm};
use crate::portals::errors::PageError;
use crate::portals::render;
use crate::portals::self_service::see_other;
use crate::service::user_edit::UpdateUserRequest;
use crate::service::{Outcome, StaffMember};
use crate::{ServiceError, Vsc};

/// One text field of a form.
struct Field {
    name: &'static str,
    label: &'static str,
    hint: Option<&'static str>,
    value: String,
    error: Option<String>,
    kind: &'static str,
    autocomplete: &'static str,
    max: u32,
}

impl Field {
    fn new(name: &'static str, label: &'static str, value: &str, problem: &Problem) -> Self {
        let error = problem.as_ref().filter(|(f, _)| f == name).map(|(_, m)| m.clone());
        Field { name, label, hint: None, value: value.to_string(), error, kind: "text", autocomplete: "off", max: 200 }
    }

    fn hint(mut self, hint: &'static str) -> Self {
        self.hint = Some(hint);
        self
    }

    fn kind(mut self, kind: &'static str, autocomplete: &'static str, max: u32) -> Self {
        self.kind = kind;
        self.autocomplete = autocomplete;
        self.max = max;
        self
    }
}

/// (field at fault, message).
type Problem = Option<(String, String)>;

#[derive(Template)]
#[template(path = "ra/user_new.html")]
struct NewUserPage<'a> {
    csrf: &'a str,
    staff: &'a StaffMember,
    problem: Problem,
    organisation: String,
    organisation_error: Option<String>,
    fields: Vec<Field>,
}

#[derive(Template)]
#[template(path = "ra/user_edit.html")]
struct EditUserPage<'a> {
    csrf: &'a str,
    problem: Problem,
    id: &'a str,
    name: String,
    name_fields: Vec<Field>,
    email_fields: Vec<Field>,
}

/// The create form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NewUserForm {
    organisation: String,
    forename: String,
    surname: String,
    email: String,
    mobile: String,
    subject_cn: String,
    directory_account: String,
}

/// The details form: names, and (when the form has them) mobile and subject CN.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NamesForm {
    forename: String,
    surname: String,
    /// Empty: remove the number; absent: keep it.
    mobile: Option<String>,
    subject_cn: Option<String>,
}

/// The email form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct EmailForm {
    email: String,
}

/// A problem the staff member can fix, as (field, message); anything else is a page of its own.
fn field_problem(e: ServiceError, default_field: &str) -> Result<(String, String), PageError> {
    match e {
        ServiceError::Domain(DomainError::Invalid { field, message }) => Ok((field.to_string(), message)),
        ServiceError::Conflict { field, message } => Ok((field.unwrap_or(default_field).to_string(), message)),
        ServiceError::NotFound { field: Some("organisation"), message } => Ok(("organisation".into(), message)),
        ServiceError::Domain(DomainError::InvalidState(message)) => Ok((default_field.to_string(), message)),
        other => Err(other.into()),
    }
}

fn optional(s: &str) -> Option<String> {
    Some(s.trim().to_string()).filter(|s| !s.is_empty())
}

fn new_page(csrf: &str, staff: &StaffMember, form: &NewUserForm, problem: Problem) -> Result<Response, PageError> {
    let organisation_error = problem.as_ref().filter(|(f, _)| f == "organisation").map(|(_, m)| m.clone());
    let fields = vec![
        Field::new("forename", "Forename", &form.forename, &problem).kind("text", "off", 200),
        Field::new("surname", "Surname", &form.surname, &problem).kind("text", "off", 200),
        Field::new("email", "Email address", &form.email, &problem)
            .hint("The domain must be one your organisation allows.")
            .kind("email", "off", 254),
        Field::new("mobile", "Mobile phone (optional)", &form.mobile, &problem)
            .hint("For text message codes, e.g. +447700900123.")
            .kind("tel", "off", 20),
        Field::new("subject_cn", "Subject CN (optional)", &form.subject_cn, &problem)
            .hint("Leave empty to have one generated."),
        Field::new("directory_account", "Directory account name (optional)", &form.directory_account, &problem)
            .hint("Up to 64 letters, digits, dots, hyphens, underscores, @ or \\.")
            .kind("text", "off", 64),
    ];
    let status = if problem.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let organisation = if form.organisation.is_empty() {
        staff.organisations.first().map(|(c, _)| c.clone()).unwrap_or_default()
    } else {
        form.organisation.clone()
    };
    let page = NewUserPage { csrf, staff, problem, organisation, organisation_error, fields };
    render(status, &page)
}

/// `GET /ra/users/new`.
pub async fn new_form(StaffSignedIn { staff }: StaffSignedIn, Csrf(csrf): Csrf) -> Result<Response, PageError> {
    new_page(&csrf, &staff, &NewUserForm::default(), None)
}

/// `POST /ra/users/new`: create the user, then show their page.
pub async fn create(
    State(vsc): State<Vsc>,
    StaffSignedIn { staff }: StaffSignedIn,
    Csrf(csrf): Csrf,
    PortalForm(form): PortalForm<NewUserForm>,
) -> Result<Response, PageError> {
    let req = CreateUserRequest {
        organisation: form.organisation.trim().to_string(),
        forename: form.forename.clone(),
        surname: form.surname.clone(),
        email: form.email.clone(),
        mobile: optional(&form.mobile),
        subject_cn: optional(&form.subject_cn),
        directory_account: optional(&form.directory_account),
    };
    match vsc.create_user(&staff.principal(), &req).await {
        Ok(user) => Ok(see_other(&format!("/ra/users/{}", user.id), &[], vsc.config())),
        Err(e) => {
            let problem = field_problem(e, "email")?;
            new_page(&csrf, &staff, &form, Some(problem))
        }
    }
}

/// The user, or the not-found page.
async fn load(vsc: &Vsc, staff: &StaffMember, id: &str) -> Result<Result<UserView, Response>, PageError> {
    match vsc.get_user(&staff.principal(), id).await {
        Ok(u) => Ok(Ok(u)),
        Err(e) if is_missing(&e) => Ok(Err(no_such_user()?)),
        Err(e) => Err(e.into()),
    }
}

/// The edit page; typed values (names or email) replace the stored ones where given.
fn edit_page(
    csrf: &str,
    user: &UserView,
    names: Option<&NamesForm>,
    email: Option<&str>,
    problem: Problem,
) -> Result<Response, PageError> {
    let id = user.id.to_string();
    let forename = names.map_or(user.forename.as_str(), |n| n.forename.as_str());
    let surname = names.map_or(user.surname.as_str(), |n| n.surname.as_str());
    let mobile = names.and_then(|n| n.mobile.as_deref()).or(user.mobile.as_deref()).unwrap_or_default();
    let subject_cn = names.and_then(|n| n.subject_cn.as_deref()).unwrap_or(&user.subject_cn);
    let page = EditUserPage {
        csrf,
        id: &id,
        name: format!("{} {}", user.forename, user.surname),
        name_fields: vec![
            Field::new("forename", "Forename", forename, &problem),
            Field::new("surname", "Surname", surname, &problem),
            Field::new("mobile", "Mobile phone (optional)", mobile, &problem)
                .hint("For text message codes, e.g. +447700900123. Leave empty to remove the number.")
                .kind("tel", "off", 20),
            Field::new("subject_cn", "Subject CN", subject_cn, &problem)
                .hint("Must be unique; used in certificates issued from now on.")
                .kind("text", "off", 64),
        ],
        email_fields: vec![
            Field::new("email", "Email address", email.unwrap_or(&user.email), &problem)
                .hint("The domain must be one the user's organisation allows.")
                .kind("email", "off", 254),
        ],
        problem,
    };
    let status = if page.problem.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    render(status, &page)
}

/// `GET /ra/users/{id}/edit`.
pub async fn edit_form(
    State(vsc): State<Vsc>,
    StaffSignedIn { staff }: StaffSignedIn,
    Csrf(csrf): Csrf,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    match load(&vsc, &staff, &id).await? {
        Ok(user) => edit_page(&csrf, &user, None, None, None),
        Err(page) => Ok(page),
    }
}

/// `POST /ra/users/{id}/edit`: change the names, mobile and subject CN.
pub async fn save_names(
    State(vsc): State<Vsc>,
    StaffSignedIn { staff }: StaffSignedIn,
    Csrf(csrf): Csrf,
    Path(id): Path<String>,
    PortalForm(form): PortalForm<NamesForm>,
) -> Result<Response, PageError> {
    let user = match load(&vsc, &staff, &id).await? {
        Ok(user) => user,
        Err(page) => return Ok(page),
    };
    let req = UpdateUserRequest {
        forename: Some(form.forename.clone()),
        surname: Some(form.surname.clone()),
        email: None,
        mobile: form.mobile.clone(),
        subject_cn: form.subject_cn.clone(),
    };
    match vsc.update_user(&staff.principal(), &id, &req).await {
        Ok(Outcome::Requested(_)) => Ok(see_other(&format!("/ra/users/{id}?done=change_requested"), &[], vsc.config())),
        Ok(Outcome::Done(_)) => Ok(see_other(&format!("/ra/users/{id}?done=names_changed"), &[], vsc.config())),
        Err(e) if is_missing(&e) => no_such_user(),
        Err(e) => {
            let problem = field_problem(e, "forename")?;
            edit_page(&csrf, &user, Some(&form), None, Some(problem))
        }
    }
}

/// `POST /ra/users/{id}/email`: change the email (the old address is told; the new one gets a
/// confirmation link and stays unconfirmed until the holder opens it).
pub async fn save_email(
    State(vsc): State<Vsc>,
    StaffSignedIn { staff }: StaffSignedIn,
    Csrf(csrf): Csrf,
    Path(id): Path<String>,
    PortalForm(form): PortalForm<EmailForm>,
) -> Result<Response, PageError> {
    let user = match load(&vsc, &staff, &id).await? {
        Ok(user) => user,
        Err(page) => return Ok(page),
    };
    let req = UpdateUserRequest { email: Some(form.email.clone()), ..UpdateUserRequest::default() };
    match vsc.update_user(&staff.principal(), &id, &req).await {
        Ok(Outcome::Requested(_)) => Ok(see_other(&format!("/ra/users/{id}?done=change_requested"), &[], vsc.config())),
        Ok(Outcome::Done(_)) => Ok(see_other(&format!("/ra/users/{id}?done=email_changed"), &[], vsc.config())),
        Err(e) if is_missing(&e) => no_such_user(),
        Err(e) => {
            let problem = field_problem(e, "email")?;
            edit_page(&csrf, &user, None, Some(&form.email), Some(problem))
        }
    }
}
