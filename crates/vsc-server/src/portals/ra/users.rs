//! The user page of the vRA Manager (`/ra/users/{id}`): details, cards, authenticator devices
//! (each deletable after a confirmation step, whatever its state), directory accounts (added and
//! removed here) and the user's audit trail (also served alone at `/ra/users/{id}/audit`, which the
//! page polls with htmx); card actions (issue, resend the invitation, renew, revoke, unlock) and a
//! device's PIN reset, each answered with a note on the page or the page again with the problem
//! beside the form (422).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::header::CONTENT_SECURITY_POLICY;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use std::collections::HashMap;
use vsc_core::DomainError;
use vsc_proto::IssueCardRequest;

use super::{HOME_PATH, MessagePage, StaffSignedIn};
use crate::portals::csrf::{Csrf, PortalForm};
use crate::portals::errors::PageError;
use crate::portals::self_service::see_other;
use crate::portals::{SCRIPTED_PAGE_CSP, date, date_time, render};
use crate::service::{IssueCard, Outcome, StaffMember, StaffUserPage, USER_AUDIT_LIMIT, ts};
use crate::{ServiceError, Vsc};

/// A card row.
struct CardLine {
    serial: String,
    card_type: String,
    state: String,
    roles: String,
    issued: String,
    expires: String,
    /// The problem with this card's last action, if any.
    error: Option<String>,
}

/// A device row.
struct DeviceLine {
    id: String,
    name: String,
    device_type: String,
    client_version: String,
    platform: String,
    platform_version: String,
    registered: String,
    last_used: String,
    state: &'static str,
    tag: &'static str,
}

/// A directory account row.
struct DirectoryLine {
    name: String,
    state: String,
    created: String,
    activated: String,
}

/// An audit row.
struct AuditLine {
    at: String,
    actor: String,
    action: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "ra/user.html")]
struct UserPage<'a> {
    /// Changes waiting for approval.
    pending: Vec<super::approvals::RequestLine>,
    csrf: &'a str,
    staff: &'a StaffMember,
    note: Option<String>,
    /// Why the issue form was refused.
    issue_error: Option<String>,
    /// The role catalogue: (code, name).
    roles: Vec<(String, String)>,
    /// A PIN-reset token just issued: (device name, token, valid until).
    pin_token: Option<(String, String, String)>,
    id: String,
    name: String,
    email: String,
    /// Whether the holder has confirmed the email address (links and renewal need it).
    email_verified: bool,
    mobile: String,
    /// Whether the holder has confirmed the mobile number (no SMS goes to an unconfirmed one);
    /// `None` without a number.
    mobile_confirmed: Option<bool>,
    organisation: String,
    subject_cn: String,
    created: String,
    last_active: String,
    cards: Vec<CardLine>,
    devices: Vec<DeviceLine>,
    directory_accounts: Vec<DirectoryLine>,
    /// The add-account form's typed name and problem.
    directory_value: String,
    directory_error: Option<String>,
    audit: Vec<AuditLine>,
    audit_limit: i64,
    /// Always false here (the audit fragment's "user gone" state).
    gone: bool,
}

/// The user's audit log alone (polled by the user page).
#[derive(Template)]
#[template(path = "ra/_user_audit.html")]
struct AuditFragment {
    id: String,
    audit: Vec<AuditLine>,
    audit_limit: i64,
    /// The user is gone: no more polling.
    gone: bool,
}

/// "Are you sure?" before deleting or removing something.
#[derive(Template)]
#[template(path = "ra/confirm.html")]
struct ConfirmPage<'a> {
    csrf: &'a str,
    title: String,
    lead: String,
    /// What is about to go: (label, value).
    rows: Vec<(&'static str, String)>,
    action: String,
    /// Hidden form fields: (name, value).
    hidden: Vec<(&'static str, String)>,
    button: &'static str,
    back: String,
}

/// `?done=` (and `card=`) after an action on the page.
#[derive(Deserialize)]
pub struct Done {
    done: Option<String>,
    card: Option<String>,
    account: Option<String>,
}

/// What to show besides the user's data: a note, a problem beside a form, a new PIN-reset token.
#[derive(Default)]
struct Extras {
    note: Option<String>,
    issue_error: Option<String>,
    /// (serial, problem).
    card_error: Option<(String, String)>,
    /// (device id, token, valid until).
    pin_token: Option<(String, String, String)>,
    /// (typed directory account name, problem).
    directory_error: Option<(String, String)>,
}

fn or_dash(v: Option<&str>) -> String {
    v.filter(|s| !s.is_empty()).map_or_else(|| "—".to_string(), str::to_string)
}

fn device_state(state: &str) -> (&'static str, &'static str) {
    match state {
        "active" => ("Active", "active"),
        "pending_code" => ("Waiting for the emailed code", "issued"),
        "pending_registration" => ("Waiting for the app to register", "issued"),
        _ => ("Unknown", "locked"),
    }
}

fn lines(
    staff: &StaffMember,
    csrf: &str,
    p: StaffUserPage,
    roles: Vec<(String, String)>,
    extras: Extras,
) -> Result<String, PageError> {
    let u = p.user;
    let pin_token = extras.pin_token.map(|(device, token, until)| {
        let name = p.devices.iter().find(|d| d.id == device).map_or(device, |d| d.name.clone());
        (name, token, until)
    });
    let card_error = extras.card_error;
    let pending = super::approvals::lines(staff, &p.pending_changes);
    let page = UserPage {
        pending,
        csrf,
        staff,
        note: extras.note,
        issue_error: extras.issue_error,
        roles,
        pin_token,
        id: u.id.to_string(),
        // As the users list shows it.
        name: format!("{} {} ({})", u.forename, u.surname, u.subject_cn),
        email: u.email,
        email_verified: u.email_verified,
        mobile_confirmed: u.mobile.as_ref().map(|_| u.mobile_verified),
        mobile: or_dash(u.mobile.as_deref()),
        organisation: u.organisation,
        subject_cn: u.subject_cn,
        created: date_time(u.created_at),
        last_active: p.last_active_at.map_or_else(|| "Never".to_string(), date_time),
        cards: u
            .cards
            .into_iter()
            .map(|c| CardLine {
                error: card_error.as_ref().filter(|(s, _)| *s == c.serial).map(|(_, m)| m.clone()),
                serial: c.serial,
                card_type: c.card_type.to_uppercase(),
                state: c.state,
                roles: if c.roles.is_empty() { "—".into() } else { c.roles.join(", ") },
                issued: date(c.issued_at),
                expires: date(c.expires_at),
            })
            .collect(),
        devices: p
            .devices
            .into_iter()
            .map(|d| {
                let (state, tag) = device_state(&d.state);
                DeviceLine {
                    name: d.name,
                    device_type: d.device_type,
                    client_version: or_dash(d.client_version.as_deref()),
                    platform: or_dash(d.platform.as_deref()),
                    platform_version: or_dash(d.platform_version.as_deref()),
                    registered: d.registered_at.map_or_else(|| "Not yet".to_string(), date_time),
                    last_used: d.last_used_at.map_or_else(|| "Never".to_string(), date_time),
                    id: d.id,
                    state,
                    tag,
                }
            })
            .collect(),
        directory_accounts: p
            .directory_accounts
            .into_iter()
            .map(|a| DirectoryLine {
                name: a.name,
                state: a.state,
                created: date_time(ts(a.created_at)),
                activated: a.activated_at.map_or_else(|| "Not yet".to_string(), |at| date_time(ts(at))),
            })
            .collect(),
        directory_value: extras.directory_error.as_ref().map(|(v, _)| v.clone()).unwrap_or_default(),
        directory_error: extras.directory_error.map(|(_, m)| m),
        audit: audit_lines(p.audit),
        audit_limit: USER_AUDIT_LIMIT,
        gone: false,
    };
    Ok(page.render()?)
}

/// The audit events as table rows.
fn audit_lines(events: Vec<vsc_proto::AuditEventView>) -> Vec<AuditLine> {
    events
        .into_iter()
        .map(|a| AuditLine {
            at: date_time(a.at),
            actor: a.actor,
            action: a.action,
            detail: match &a.detail {
                serde_json::Value::Object(m) if m.is_empty() => String::new(),
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            },
        })
        .collect()
}

/// The page for a user the staff member cannot see or that does not exist.
pub(super) fn no_such_user() -> Result<Response, PageError> {
    render(
        StatusCode::NOT_FOUND,
        &MessagePage {
            title: "User not found",
            message: "There is no user at this address in your organisations.",
            advice: Some("Search for the user in the users list."),
            link: (HOME_PATH, "Go to the users list"),
        },
    )
}

/// A card, device or action this user does not have.
fn nothing_here() -> Result<Response, PageError> {
    render(
        StatusCode::NOT_FOUND,
        &MessagePage {
            title: "Not found",
            message: "This user has no such card, device or action.",
            advice: Some("Go back to the user page and try again."),
            link: (HOME_PATH, "Go to the users list"),
        },
    )
}

/// Not found, or not a user id at all: the same page.
pub(super) fn is_missing(e: &ServiceError) -> bool {
    matches!(
        e,
        ServiceError::NotFound { field: Some("id"), .. }
            | ServiceError::Domain(DomainError::Invalid { field: "id", .. })
    )
}

/// The note for `?done=…&card=…`, worded from the page's data.
fn done_note(done: &Done, p: &StaffUserPage) -> Option<String> {
    let card = done.card.as_deref().and_then(|s| p.user.cards.iter().find(|c| c.serial == s));
    let email = &p.user.email;
    match (done.done.as_deref()?, card) {
        ("device_deleted", _) => Some("The device was deleted.".into()),
        ("change_requested", _) => Some(
            "Change requested: the holder has an enrolled card, so it takes effect when another RA manager approves it (Pending approvals)."
                .into(),
        ),
        ("names_changed", _) => Some("The details were saved.".into()),
        ("directory_account_added", _) => Some(match done.account.as_deref() {
            Some(a) => format!("Directory account {a} was added."),
            None => "The directory account was added.".into(),
        }),
        ("directory_account_removed", _) => Some(match done.account.as_deref() {
            Some(a) => format!("Directory account {a} was removed."),
            None => "The directory account was removed.".into(),
        }),
        ("email_changed", _) => Some(format!(
            "The email address is now {email}; the old address was told, and the new one was sent a confirmation link (unconfirmed until the holder opens it)."
        )),
        ("card_issued", Some(c)) => Some(format!(
            "Card {} ({}) issued; the invitation was sent to {email}.",
            c.serial,
            c.card_type.to_uppercase()
        )),
        ("invitation_resent", Some(c)) => Some(format!(
            "A new invitation for card {} was sent to {email}; the previous link no longer works.",
            c.serial
        )),
        ("issuance_restarted", Some(c)) => Some(format!(
            "Issuance of card {} restarted: new certificates, and a new invitation was sent to {email}; the previous link no longer works.",
            c.serial
        )),
        ("card_renewed", Some(c)) => {
            Some(format!("Card {} renewed; new certificates until {}.", c.serial, date(c.expires_at)))
        }
        ("card_revoked", Some(c)) => Some(format!("Card {} revoked.", c.serial)),
        ("card_suspended", Some(c)) => Some(format!(
            "Card {} suspended: its sessions ended and its certificates are on hold; the holder was emailed.",
            c.serial
        )),
        ("card_resumed", Some(c)) => Some(format!("Card {} resumed; it is {} again.", c.serial, c.state)),
        ("unlock_sent", Some(c)) => Some(format!(
            "Card {}: a passcode reset link was sent to {email}; the holder sets a new passcode to unlock it.",
            c.serial
        )),
        _ => None,
    }
}

/// The user page with extras, or the not-found page.
async fn page_with(
    vsc: &Vsc,
    staff: &StaffMember,
    csrf: &str,
    id: &str,
    status: StatusCode,
    extras: Extras,
) -> Result<Response, PageError> {
    let page = match vsc.staff_user_page(&staff.principal(), id).await {
        Ok(p) => p,
        Err(e) if is_missing(&e) => return no_such_user(),
        Err(e) => return Err(e.into()),
    };
    let roles = vsc.staff_role_catalogue().await?;
    let html = lines(staff, csrf, page, roles, extras)?;
    Ok(scripted(status, html))
}

/// The user page with the policy that lets it load htmx (the page updates in place).
fn scripted(status: StatusCode, html: String) -> Response {
    let mut response = (status, Html(html)).into_response();
    response.headers_mut().insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(SCRIPTED_PAGE_CSP));
    response
}

/// `GET /ra/users/{id}`.
pub async fn show(
    State(vsc): State<Vsc>,
    StaffSignedIn { staff }: StaffSignedIn,
    Csrf(csrf): Csrf,
    Path(id): Path<String>,
    Query(done): Query<Done>,
) -> Result<Response, PageError> {
    let page = match vsc.staff_user_page(&staff.principal(), &id).await {
        Ok(p) => p,
        Err(e) if is_missing(&e) => return no_such_user(),
        Err(e) => return Err(e.into()),
    };
    let note = done_note(&done, &page);
    let roles = vsc.staff_role_catalogue().await?;
    let html = lines(&staff, &csrf, page, roles, Extras { note, ..Extras::default() })?;
    Ok(scripted(StatusCode::OK, html))
}

/// `GET /ra/users/{id}/audit`: the user's audit log alone, for the page to refresh in place (a
/// user deleted meanwhile: a last fragment that says so and stops the polling).
pub async fn audit_log(
    State(vsc): State<Vsc>,
    StaffSignedIn { staff }: StaffSignedIn,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let fragment = match vsc.staff_user_audit(&staff.principal(), &id).await {
        Ok(events) => AuditFragment { id, audit: audit_lines(events), audit_limit: USER_AUDIT_LIMIT, gone: false },
        Err(e) if is_missing(&e) && headers.contains_key("hx-request") => {
            AuditFragment { id, audit: Vec::new(), audit_limit: USER_AUDIT_LIMIT, gone: true }
        }
        Err(e) if is_missing(&e) => return no_such_user(),
        Err(e) => return Err(e.into()),
    };
    render(StatusCode::OK, &fragment)
}

/// `GET /ra/users/{id}/devices/{device}/delete`: what is about to be deleted, and the button.
pub async fn confirm_delete_device(
    State(vsc): State<Vsc>,
    StaffSignedIn { staff }: StaffSignedIn,
    Csrf(csrf): Csrf,
    Path((id, device)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let page = match vsc.staff_user_page(&staff.principal(), &id).await {
        Ok(p) => p,
        Err(e) if is_missing(&e) => return no_such_user(),
        Err(e) => return Err(e.into()),
    };
    let Some(d) = page.devices.iter().find(|d| d.id == device) else {
        return nothing_here();
    };
    let u = &page.user;
    let confirm = ConfirmPage {
        csrf: &csrf,
        title: format!("Delete device {}?", d.name),
        lead: format!(
            "{} {} will no longer be able to use this device to sign in or approve requests. This cannot be undone.",
            u.forename, u.surname
        ),
        rows: vec![
            ("Name", d.name.clone()),
            ("Type", d.device_type.clone()),
            ("State", device_state(&d.state).0.to_string()),
            ("Platform", format!("{} {}", or_dash(d.platform.as_deref()), d.platform_version.as_deref().unwrap_or(""))),
            ("Client version", or_dash(d.client_version.as_deref())),
            ("Registered", d.registered_at.map_or_else(|| "Not yet".to_string(), date_time)),
            ("Last used", d.last_used_at.map_or_else(|| "Never".to_string(), date_time)),
        ],
        action: format!("/ra/users/{id}/devices/{device}/delete"),
        hidden: Vec::new(),
        button: "Delete device",
        back: format!("/ra/users/{id}#devices"),
    };
    render(StatusCode::OK, &confirm)
}

/// The directory account forms' field.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct AccountForm {
    name: String,
}

/// `POST /ra/users/{id}/directory-accounts`: add a directory account (pending until the holder
/// completes enrolment); a bad or duplicate name is shown beside the form (422).
pub async fn add_directory_account(
    State(vsc): State<Vsc>,
    StaffSignedIn { staff }: StaffSignedIn,
    Csrf(csrf): Csrf,
    Path(id): Path<String>,
    PortalForm(form): PortalForm<AccountForm>,
) -> Result<Response, PageError> {
    match vsc.staff_add_directory_account(&staff.principal(), &id, &form.name).await {
        Ok(a) => Ok(see_other(
            &format!("/ra/users/{id}?done=directory_account_added&account={}", urlencoding(&a.name)),
            &[],
            vsc.config(),
        )),
        Err(e) if is_missing(&e) => no_such_user(),
        Err(e) => match inline_problem(&e) {
            Some(m) => {
                let extras = Extras { directory_error: Some((form.name.clone(), m)), ..Extras::default() };
                page_with(&vsc, &staff, &csrf, &id, StatusCode::UNPROCESSABLE_ENTITY, extras).await
            }
            None => Err(e.into()),
        },
    }
}

/// `?name=` of the remove confirmation.
#[derive(Deserialize)]
pub struct AccountQuery {
    name: Option<String>,
}

/// `GET /ra/users/{id}/directory-accounts/remove?name=…`: the account, and the button.
pub async fn confirm_remove_directory_account(
    State(vsc): State<Vsc>,
    StaffSignedIn { staff }: StaffSignedIn,
    Csrf(csrf): Csrf,
    Path(id): Path<String>,
    Query(q): Query<AccountQuery>,
) -> Result<Response, PageError> {
    let page = match vsc.staff_user_page(&staff.principal(), &id).await {
        Ok(p) => p,
        Err(e) if is_missing(&e) => return no_such_user(),
        Err(e) => return Err(e.into()),
    };
    let Some(a) = page.directory_accounts.iter().find(|a| Some(&a.name) == q.name.as_ref()) else {
        return nothing_here();
    };
    let u = &page.user;
    let confirm = ConfirmPage {
        csrf: &csrf,
        title: format!("Remove directory account {}?", a.name),
        lead: format!("The account is removed from {} {}'s record.", u.forename, u.surname),
        rows: vec![
            ("Account name", a.name.clone()),
            ("State", a.state.clone()),
            ("Created", date_time(ts(a.created_at))),
            ("Activated", a.activated_at.map_or_else(|| "Not yet".to_string(), |at| date_time(ts(at)))),
        ],
        action: format!("/ra/users/{id}/directory-accounts/remove"),
        hidden: vec![("name", a.name.clone())],
        button: "Remove account",
        back: format!("/ra/users/{id}#directory-accounts"),
    };
    render(StatusCode::OK, &confirm)
}

/// `POST /ra/users/{id}/directory-accounts/remove` (field `name`).
pub async fn remove_directory_account(
    State(vsc): State<Vsc>,
    StaffSignedIn { staff }: StaffSignedIn,
    Path(id): Path<String>,
    PortalForm(form): PortalForm<AccountForm>,
) -> Result<Response, PageError> {
    match vsc.staff_remove_directory_account(&staff.principal(), &id, &form.name).await {
        Ok(()) => Ok(see_other(
            &format!("/ra/users/{id}?done=directory_account_removed&account={}", urlencoding(&form.name)),
            &[],
            vsc.config(),
        )),
        Err(e) if is_missing(&e) => no_such_user(),
        Err(ServiceError::NotFound { .. }) => nothing_here(),
        Err(e) => Err(e.into()),
    }
}

/// Percent-encode a query value.
fn urlencoding(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `POST /ra/users/{id}/devices/{device}/delete` (the CSRF middleware has checked the form).
pub async fn delete_device(
    State(vsc): State<Vsc>,
    StaffSignedIn { staff }: StaffSignedIn,
    Path((id, device)): Path<(String, String)>,
) -> Result<Response, PageError> {
    match vsc.staff_delete_device(&staff.principal(), &id, &device).await {
        Ok(Outcome::Done(())) => Ok(see_other(&format!("/ra/users/{id}?done=device_deleted"), &[], vsc.config())),
        Ok(Outcome::Requested(_)) => Ok(see_other(&format!("/ra/users/{id}?done=change_requested"), &[], vsc.config())),
        Err(e) if is_missing(&e) => no_such_user(),
        Err(e) => Err(e.into()),
    }
}

/// A problem the staff member can fix or should know about: its message, else `None`.
fn inline_problem(e: &ServiceError) -> Option<String> {
    match e {
        ServiceError::Domain(DomainError::Invalid { message, .. }) => Some(message.clone()),
        ServiceError::Domain(DomainError::InvalidState(message)) | ServiceError::Conflict { message, .. } => {
            Some(message.clone())
        }
        _ => None,
    }
}

/// The note to show: `done`, or that the action waits for approval.
fn requested_or<T>(outcome: Outcome<T>, done: &'static str) -> &'static str {
    match outcome {
        Outcome::Done(_) => done,
        Outcome::Requested(_) => "change_requested",
    }
}

/// Redirect to the user page with a note about a card.
fn done_redirect(vsc: &Vsc, id: &str, done: &str, serial: &str) -> Response {
    see_other(&format!("/ra/users/{id}?done={done}&card={serial}"), &[], vsc.config())
}

/// `POST /ra/users/{id}/cards`: issue a card (`card_type` v1|v2, a `role_<CODE>` field per
/// chosen role); the service sends the invitation.
pub async fn issue_card(
    State(vsc): State<Vsc>,
    StaffSignedIn { staff }: StaffSignedIn,
    Csrf(csrf): Csrf,
    Path(id): Path<String>,
    PortalForm(form): PortalForm<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let who = staff.principal();
    // The user first: staff of another organisation get the same 404 whatever they post.
    if let Err(e) = vsc.staff_user_page(&who, &id).await {
        return if is_missing(&e) { no_such_user() } else { Err(e.into()) };
    }
    let mut roles: Vec<String> = form.keys().filter_map(|k| k.strip_prefix("role_")).map(str::to_string).collect();
    roles.sort();
    let refuse = |message: String| Extras { issue_error: Some(message), ..Extras::default() };
    if roles.is_empty() {
        let extras = refuse("Choose at least one role for the card.".into());
        return page_with(&vsc, &staff, &csrf, &id, StatusCode::UNPROCESSABLE_ENTITY, extras).await;
    }
    let req =
        IssueCardRequest { card_type: form.get("card_type").cloned().unwrap_or_default(), roles, key_algorithm: None };
    let result = match IssueCard::parse(&req) {
        Ok(parsed) => vsc.issue_card(&who, &id, &parsed).await,
        Err(e) => Err(e.into()),
    };
    match result {
        Ok(card) => Ok(done_redirect(&vsc, &id, "card_issued", &card.serial)),
        Err(e) if is_missing(&e) => no_such_user(),
        Err(e) => match inline_problem(&e) {
            Some(m) => page_with(&vsc, &staff, &csrf, &id, StatusCode::UNPROCESSABLE_ENTITY, refuse(m)).await,
            None => Err(e.into()),
        },
    }
}

/// The revoke or suspend form's reason.
#[derive(Deserialize)]
pub struct CardActionForm {
    #[serde(default)]
    reason: String,
}

/// `POST /ra/users/{id}/cards/{serial}/{action}`, action one of `resend`, `restart` (new keys,
/// certificates and link for an issued card), `renew`, `revoke` (with
/// a `reason`), `unlock` (a locked card only: the holder is sent a passcode reset link), `suspend`
/// (with a `reason`) and `resume`.
pub async fn card_action(
    State(vsc): State<Vsc>,
    StaffSignedIn { staff }: StaffSignedIn,
    Csrf(csrf): Csrf,
    Path((id, serial, action)): Path<(String, String, String)>,
    PortalForm(form): PortalForm<CardActionForm>,
) -> Result<Response, PageError> {
    let who = staff.principal();
    let page = match vsc.staff_user_page(&who, &id).await {
        Ok(p) => p,
        Err(e) if is_missing(&e) => return no_such_user(),
        Err(e) => return Err(e.into()),
    };
    // Only this user's cards, through this user's page.
    let Some(card) = page.user.cards.iter().find(|c| c.serial == serial) else {
        return nothing_here();
    };
    let refuse = |message: String| Extras { card_error: Some((serial.clone(), message)), ..Extras::default() };
    let result = match action.as_str() {
        "resend" => vsc.resend_invitation(&who, &serial).await.map(|_| "invitation_resent"),
        "restart" => vsc.restart_issuance(&who, &serial).await.map(|o| requested_or(o, "issuance_restarted")),
        "renew" => vsc.renew_card(&who, &serial).await.map(|_| "card_renewed"),
        "revoke" => {
            let reason = form.reason.trim();
            if reason.is_empty() {
                let extras = refuse("Enter the reason for revoking the card.".into());
                return page_with(&vsc, &staff, &csrf, &id, StatusCode::UNPROCESSABLE_ENTITY, extras).await;
            }
            vsc.revoke_card(&who, &serial, Some(reason)).await.map(|_| "card_revoked")
        }
        "suspend" => {
            if form.reason.trim().is_empty() {
                let extras = refuse("Enter the reason for suspending the card.".into());
                return page_with(&vsc, &staff, &csrf, &id, StatusCode::UNPROCESSABLE_ENTITY, extras).await;
            }
            vsc.suspend_card(&who, &serial, &form.reason).await.map(|_| "card_suspended")
        }
        "resume" => vsc.resume_card(&who, &serial).await.map(|o| requested_or(o, "card_resumed")),
        "unlock" => {
            if card.state != "locked" {
                let extras =
                    refuse(format!("Card {serial} is {}, not locked: only a locked card can be unlocked.", card.state));
                return page_with(&vsc, &staff, &csrf, &id, StatusCode::UNPROCESSABLE_ENTITY, extras).await;
            }
            vsc.issue_reset_link_for_unlock(&who, &serial).await.map(|o| requested_or(o, "unlock_sent"))
        }
        _ => return Err(PageError::not_found()),
    };
    match result {
        Ok(done) => Ok(done_redirect(&vsc, &id, done, &serial)),
        Err(e) => match inline_problem(&e) {
            Some(m) => page_with(&vsc, &staff, &csrf, &id, StatusCode::UNPROCESSABLE_ENTITY, refuse(m)).await,
            None => Err(e.into()),
        },
    }
}

/// `POST /ra/users/{id}/devices/{device}/pin-reset`: a single-use PIN-reset token for an active
/// device, shown once on the page this answers with (never in an address).
pub async fn pin_reset(
    State(vsc): State<Vsc>,
    StaffSignedIn { staff }: StaffSignedIn,
    Csrf(csrf): Csrf,
    Path((id, device)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let who = staff.principal();
    let page = match vsc.staff_user_page(&who, &id).await {
        Ok(p) => p,
        Err(e) if is_missing(&e) => return no_such_user(),
        Err(e) => return Err(e.into()),
    };
    if !page.devices.iter().any(|d| d.id == device && d.state == "active") {
        return nothing_here();
    }
    let issued = vsc.issue_pin_reset(&who, &device).await?;
    let extras = Extras {
        note: Some("A PIN reset token was issued; read it out to the holder now, it is not shown again.".into()),
        pin_token: Some((issued.device_id, issued.token, date_time(issued.expires_at))),
        ..Extras::default()
    };
    page_with(&vsc, &staff, &csrf, &id, StatusCode::OK, extras).await
}
