//! The vRA Manager's settings page (`/ra/settings`, RA managers only; agents get a 403 page): the
//! role catalogue (add, rename, delete — default roles show a disabled Delete), the
//! security-question catalogue (add, edit, retire, offer again, delete unanswered), and per
//! organisation its allowed email domains and its login and reminder policy. The catalogue and
//! domain forms are shown to operators only (managers see the catalogues and domains as text). Each form posts to
//! its own address under `/ra/settings/…`; a problem re-shows the page with the message beside the
//! form at fault, a success returns to the page with a notice.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use vsc_core::DomainError;
use vsc_proto::{
    CreateQuestionRequest, CreateRoleRequest, OrganisationPolicy, RenameRoleRequest, UpdateQuestionRequest,
};

use super::{HOME_PATH, MessagePage, StaffSignedIn};
use crate::portals::csrf::{Csrf, PortalForm};
use crate::portals::errors::PageError;
use crate::portals::render;
use crate::portals::self_service::see_other;
use crate::service::StaffMember;
use crate::service::settings::SettingsOverview;
use crate::{ServiceError, Vsc};

/// Where the page lives.
const PATH: &str = "/ra/settings";

/// A form's problem: (form key, field, message).
type Problem = Option<(String, String, String)>;

/// What was typed into the form at fault, shown again.
#[derive(Debug, Default, Clone)]
struct Typed {
    form: String,
    values: Vec<(String, String)>,
}

impl Typed {
    fn get(&self, form: &str, field: &str) -> Option<String> {
        (self.form == form).then(|| self.values.iter().find(|(f, _)| f == field).map(|(_, v)| v.clone())).flatten()
    }
}

struct RoleItem {
    code: String,
    name: String,
    is_default: bool,
    cards: i64,
    rename: String,
    error: Option<String>,
}

struct QuestionItem {
    id: i64,
    text: String,
    active: bool,
    answered_by: i64,
    edit: String,
    error: Option<String>,
}

/// One policy number: the organisation's own value (empty: the default) and what is in effect.
struct PolicyNumber {
    name: &'static str,
    label: &'static str,
    unit: &'static str,
    value: String,
    effective: i64,
    is_default: bool,
    min: i64,
    max: i64,
    error: Option<String>,
}

struct OrgItem {
    code: String,
    name: String,
    domains: Vec<String>,
    domain: String,
    domain_error: Option<String>,
    push_only: bool,
    number_matching: String,
    number_matching_effective: bool,
    number_matching_default: bool,
    numbers: Vec<PolicyNumber>,
    policy_error: Option<String>,
    /// Sensitive changes to enrolled holders need a second staff member.
    dual_control: bool,
}

#[derive(Template)]
#[template(path = "ra/settings.html")]
struct SettingsPage<'a> {
    csrf: &'a str,
    /// Whether the catalogue and email-domain forms are shown (operators only).
    operator: bool,
    notice: Option<&'static str>,
    problem: Option<(String, String)>,
    roles: Vec<RoleItem>,
    role_code: String,
    role_name: String,
    role_error: Option<(String, String)>,
    questions: Vec<QuestionItem>,
    question_text: String,
    question_error: Option<String>,
    organisations: Vec<OrgItem>,
}

/// `?saved=…` after a change.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SavedQuery {
    saved: String,
}

fn notice_for(saved: &str) -> Option<&'static str> {
    Some(match saved {
        "role-added" => "The role was added.",
        "role-renamed" => "The role was renamed.",
        "role-deleted" => "The role was deleted.",
        "question-added" => "The security question was added.",
        "question-changed" => "The security question was changed.",
        "question-retired" => "The security question was retired: holders who chose it keep it.",
        "question-reactivated" => "The security question is offered again.",
        "question-deleted" => "The security question was deleted.",
        "domain-added" => "The email domain was added.",
        "domain-removed" => "The email domain was removed. Existing users keep their addresses.",
        "policy-saved" => "The policy was saved. New card sessions and logins use it.",
        "dual-control-saved" => "Dual control was changed (audited). Pending requests stay pending.",
        _ => return None,
    })
}

/// The refusal a manager sees for what only operators do.
fn operators_only() -> Result<Response, PageError> {
    render(
        StatusCode::FORBIDDEN,
        &MessagePage {
            title: "This is for operators",
            message: "Only operators change the role and security-question catalogues and the email domains of organisations.",
            advice: Some("Ask an operator of the service."),
            link: (PATH, "Go to settings"),
        },
    )
}

/// The refusal an RA agent (or any non-manager) sees.
fn managers_only() -> Result<Response, PageError> {
    render(
        StatusCode::FORBIDDEN,
        &MessagePage {
            title: "Settings are for RA managers",
            message: "Settings are for RA managers. Your account is an RA agent: you can manage users, cards and devices.",
            advice: Some("Ask an RA manager of your organisation if a setting needs changing."),
            link: (HOME_PATH, "Go to users"),
        },
    )
}

fn error_of(problem: &Problem, form: &str) -> Option<String> {
    problem.as_ref().filter(|(f, _, _)| f == form).map(|(_, _, m)| m.clone())
}

fn page(
    csrf: &str,
    operator: bool,
    o: SettingsOverview,
    notice: Option<&'static str>,
    problem: Problem,
    typed: &Typed,
    status: StatusCode,
) -> Result<Response, PageError> {
    let roles = o
        .roles
        .into_iter()
        .map(|r| {
            let key = format!("role-{}", r.code);
            RoleItem {
                rename: typed.get(&key, "name").unwrap_or_else(|| r.name.clone()),
                error: error_of(&problem, &key),
                name: r.name,
                code: r.code,
                is_default: r.is_default,
                cards: r.cards,
            }
        })
        .collect();
    let questions = o
        .questions
        .into_iter()
        .map(|q| {
            let key = format!("question-{}", q.id);
            QuestionItem {
                edit: typed.get(&key, "text").unwrap_or_else(|| q.text.clone()),
                error: error_of(&problem, &key),
                text: q.text,
                id: q.id,
                active: q.active,
                answered_by: q.answered_by,
            }
        })
        .collect();
    let organisations = o
        .organisations
        .into_iter()
        .zip(o.dual_control.iter().copied().chain(std::iter::repeat(true)))
        .map(|((org, p), dual_control)| {
            let domain_key = format!("domains-{}", org.code);
            let policy_key = format!("policy-{}", org.code);
            let policy_field = problem.as_ref().filter(|(f, _, _)| *f == policy_key).map(|(_, field, _)| field.clone());
            let own = |field: &str, v: Option<i64>| {
                typed.get(&policy_key, field).unwrap_or_else(|| v.map(|n| n.to_string()).unwrap_or_default())
            };
            let number =
                |name: &'static str, label: &'static str, unit: &'static str, v: Option<i64>, eff: i64| PolicyNumber {
                    name,
                    label,
                    unit,
                    value: own(name, v),
                    effective: eff,
                    is_default: v.is_none(),
                    min: 1,
                    max: if name == "reminder_days" { 14 } else { 10_080 },
                    error: policy_field.as_deref().filter(|f| *f == name).and_then(|_| error_of(&problem, &policy_key)),
                };
            let numbers = vec![
                number(
                    "session_minutes",
                    "Card session lifetime",
                    "minutes",
                    p.settings.session_minutes,
                    p.effective.session_minutes,
                ),
                number(
                    "idle_minutes",
                    "Card session idle timeout",
                    "minutes",
                    p.settings.idle_minutes,
                    p.effective.idle_minutes,
                ),
                number(
                    "reminder_days",
                    "Enrolment reminder every",
                    "days",
                    p.settings.reminder_days,
                    p.effective.reminder_days,
                ),
            ];
            let numbers_claim_error = numbers.iter().any(|n| n.error.is_some());
            OrgItem {
                domain: typed.get(&domain_key, "domain").unwrap_or_default(),
                domain_error: error_of(&problem, &domain_key),
                push_only: typed.get(&policy_key, "push_only").map_or(p.settings.push_only, |v| v == "on"),
                number_matching: typed.get(&policy_key, "number_matching").unwrap_or_else(|| {
                    match p.settings.number_matching {
                        None => "default",
                        Some(true) => "on",
                        Some(false) => "off",
                    }
                    .to_string()
                }),
                number_matching_effective: p.effective.number_matching,
                number_matching_default: p.settings.number_matching.is_none(),
                policy_error: if numbers_claim_error { None } else { error_of(&problem, &policy_key) },
                numbers,
                dual_control,
                code: org.code,
                name: org.name,
                domains: org.email_domains,
            }
        })
        .collect();
    let role_error =
        problem.as_ref().filter(|(f, _, _)| f == "role-add").map(|(_, field, m)| (field.clone(), m.clone()));
    let summary = problem.as_ref().map(|(form, _, m)| (form.clone(), m.clone()));
    let view = SettingsPage {
        csrf,
        operator,
        notice,
        problem: summary,
        roles,
        role_code: typed.get("role-add", "code").unwrap_or_default(),
        role_name: typed.get("role-add", "name").unwrap_or_default(),
        role_error,
        questions,
        question_text: typed.get("question-add", "text").unwrap_or_default(),
        question_error: error_of(&problem, "question-add"),
        organisations,
    };
    render(status, &view)
}

/// `GET /ra/settings`.
pub async fn show(
    State(vsc): State<Vsc>,
    StaffSignedIn { staff }: StaffSignedIn,
    Csrf(csrf): Csrf,
    Query(q): Query<SavedQuery>,
) -> Result<Response, PageError> {
    match vsc.settings_overview(&staff.principal()).await {
        Ok(o) => page(&csrf, staff.operator, o, notice_for(&q.saved), None, &Typed::default(), StatusCode::OK),
        Err(ServiceError::Forbidden(_)) => managers_only(),
        Err(e) => Err(e.into()),
    }
}

/// After a change: back to the page with a notice, or the page again with the problem beside
/// the form `form` (whose typed values are kept).
async fn done<T>(
    vsc: &Vsc,
    staff: &StaffMember,
    csrf: &str,
    outcome: Result<T, ServiceError>,
    saved: &str,
    anchor: &str,
    typed: Typed,
) -> Result<Response, PageError> {
    let e = match outcome {
        Ok(_) => return Ok(see_other(&format!("{PATH}?saved={saved}#{anchor}"), &[], vsc.config())),
        Err(ServiceError::Forbidden(_)) if staff.manages_staff() => return operators_only(),
        Err(ServiceError::Forbidden(_)) => return managers_only(),
        Err(e) => e,
    };
    let (status, field, message) = match e {
        ServiceError::Domain(DomainError::Invalid { field, message }) => {
            (StatusCode::UNPROCESSABLE_ENTITY, field.to_string(), message)
        }
        ServiceError::Conflict { field, message } => (StatusCode::CONFLICT, field.unwrap_or("").to_string(), message),
        ServiceError::NotFound { field: Some(field), message } if field != "organisation" => {
            (StatusCode::UNPROCESSABLE_ENTITY, field.to_string(), message)
        }
        other => return Err(other.into()),
    };
    let o = vsc.settings_overview(&staff.principal()).await.map_err(PageError::from)?;
    let form = typed.form.clone();
    page(csrf, staff.operator, o, None, Some((form, field, message)), &typed, status)
}

fn typed(form: String, values: &[(&str, &str)]) -> Typed {
    Typed { form, values: values.iter().map(|(f, v)| (f.to_string(), v.to_string())).collect() }
}

/// The add-role form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RoleForm {
    code: String,
    name: String,
}

/// `POST /ra/settings/roles`.
pub async fn add_role(
    State(vsc): State<Vsc>,
    StaffSignedIn { staff }: StaffSignedIn,
    Csrf(csrf): Csrf,
    PortalForm(f): PortalForm<RoleForm>,
) -> Result<Response, PageError> {
    let req = CreateRoleRequest { code: f.code.clone(), name: f.name.clone() };
    let r = vsc.add_role(&staff.principal(), &req).await;
    let t = typed("role-add".into(), &[("code", &f.code), ("name", &f.name)]);
    done(&vsc, &staff, &csrf, r, "role-added", "roles", t).await
}

/// The rename form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NameForm {
    name: String,
}

/// `POST /ra/settings/roles/{code}/rename`.
pub async fn rename_role(
    State(vsc): State<Vsc>,
    StaffSignedIn { staff }: StaffSignedIn,
    Csrf(csrf): Csrf,
    Path(code): Path<String>,
    PortalForm(f): PortalForm<NameForm>,
) -> Result<Response, PageError> {
    let r = vsc.rename_role(&staff.principal(), &code, &RenameRoleRequest { name: f.name.clone() }).await;
    let t = typed(format!("role-{code}"), &[("name", &f.name)]);
    done(&vsc, &staff, &csrf, r, "role-renamed", "roles", t).await
}

/// A form with only the CSRF token.
#[derive(Debug, Default, Deserialize)]
pub struct EmptyForm {}

/// `POST /ra/settings/roles/{code}/delete` (a default role is refused beside its row).
pub async fn delete_role(
    State(vsc): State<Vsc>,
    StaffSignedIn { staff }: StaffSignedIn,
    Csrf(csrf): Csrf,
    Path(code): Path<String>,
    PortalForm(_): PortalForm<EmptyForm>,
) -> Result<Response, PageError> {
    let r = vsc.delete_role(&staff.principal(), &code).await;
    let t = typed(format!("role-{code}"), &[]);
    done(&vsc, &staff, &csrf, r, "role-deleted", "roles", t).await
}

/// The question forms.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct QuestionForm {
    text: String,
}

/// `POST /ra/settings/questions`.
pub async fn add_question(
    State(vsc): State<Vsc>,
    StaffSignedIn { staff }: StaffSignedIn,
    Csrf(csrf): Csrf,
    PortalForm(f): PortalForm<QuestionForm>,
) -> Result<Response, PageError> {
    let r = vsc.add_question(&staff.principal(), &CreateQuestionRequest { text: f.text.clone() }).await;
    let t = typed("question-add".into(), &[("text", &f.text)]);
    done(&vsc, &staff, &csrf, r, "question-added", "questions", t).await
}

/// `POST /ra/settings/questions/{id}/{action}`: `edit`, `retire`, `reactivate` or `delete`.
pub async fn question_action(
    State(vsc): State<Vsc>,
    StaffSignedIn { staff }: StaffSignedIn,
    Csrf(csrf): Csrf,
    Path((id, action)): Path<(i64, String)>,
    PortalForm(f): PortalForm<QuestionForm>,
) -> Result<Response, PageError> {
    let who = staff.principal();
    let update = |text: Option<String>, active: Option<bool>| UpdateQuestionRequest { text, active };
    let (r, saved) = match action.as_str() {
        "edit" => {
            (vsc.update_question(&who, id, &update(Some(f.text.clone()), None)).await.map(drop), "question-changed")
        }
        "retire" => (vsc.update_question(&who, id, &update(None, Some(false))).await.map(drop), "question-retired"),
        "reactivate" => {
            (vsc.update_question(&who, id, &update(None, Some(true))).await.map(drop), "question-reactivated")
        }
        "delete" => (vsc.delete_question(&who, id).await, "question-deleted"),
        _ => return Err(PageError::not_found()),
    };
    let values: Vec<(&str, &str)> = if action == "edit" { vec![("text", f.text.as_str())] } else { vec![] };
    let t = typed(format!("question-{id}"), &values);
    done(&vsc, &staff, &csrf, r, saved, "questions", t).await
}

/// The domain forms.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DomainForm {
    domain: String,
}

/// `POST /ra/settings/organisations/{code}/domains/{action}`: `add` or `remove`.
pub async fn domain_action(
    State(vsc): State<Vsc>,
    StaffSignedIn { staff }: StaffSignedIn,
    Csrf(csrf): Csrf,
    Path((code, action)): Path<(String, String)>,
    PortalForm(f): PortalForm<DomainForm>,
) -> Result<Response, PageError> {
    let who = staff.principal();
    let (r, saved) = match action.as_str() {
        "add" => (vsc.add_email_domain(&who, &code, &f.domain).await, "domain-added"),
        "remove" => (vsc.remove_email_domain(&who, &code, &f.domain).await, "domain-removed"),
        _ => return Err(PageError::not_found()),
    };
    let values: Vec<(&str, &str)> = if action == "add" { vec![("domain", f.domain.as_str())] } else { vec![] };
    let anchor = format!("org-{code}");
    let t = typed(format!("domains-{code}"), &values);
    done(&vsc, &staff, &csrf, r, saved, &anchor, t).await
}

/// The policy form: empty numbers and `default` mean the service default.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PolicyForm {
    push_only: Option<String>,
    number_matching: String,
    session_minutes: String,
    idle_minutes: String,
    reminder_days: String,
}

fn number(field: &'static str, input: &str) -> Result<Option<i64>, ServiceError> {
    let t = input.trim();
    if t.is_empty() {
        return Ok(None);
    }
    t.parse().map(Some).map_err(|_| DomainError::invalid(field, "enter a whole number, or leave it empty").into())
}

fn policy_of(f: &PolicyForm) -> Result<OrganisationPolicy, ServiceError> {
    Ok(OrganisationPolicy {
        push_only: f.push_only.as_deref() == Some("on"),
        number_matching: match f.number_matching.as_str() {
            "on" => Some(true),
            "off" => Some(false),
            _ => None,
        },
        session_minutes: number("session_minutes", &f.session_minutes)?,
        idle_minutes: number("idle_minutes", &f.idle_minutes)?,
        reminder_days: number("reminder_days", &f.reminder_days)?,
    })
}

/// The dual-control form: `on` or `off`.
#[derive(Deserialize)]
pub struct DualControlForm {
    #[serde(default)]
    dual_control: String,
}

/// `POST /ra/settings/organisations/{code}/dual-control` (operators only).
pub async fn save_dual_control(
    State(vsc): State<Vsc>,
    StaffSignedIn { staff }: StaffSignedIn,
    Csrf(csrf): Csrf,
    Path(code): Path<String>,
    PortalForm(f): PortalForm<DualControlForm>,
) -> Result<Response, PageError> {
    let r = vsc.set_dual_control(&staff.principal(), &code, f.dual_control == "on").await;
    let t = typed(format!("dual-control-{code}"), &[("dual_control", &f.dual_control)]);
    done(&vsc, &staff, &csrf, r, "dual-control-saved", &format!("org-{code}"), t).await
}

/// `POST /ra/settings/organisations/{code}/policy`.
pub async fn save_policy(
    State(vsc): State<Vsc>,
    StaffSignedIn { staff }: StaffSignedIn,
    Csrf(csrf): Csrf,
    Path(code): Path<String>,
    PortalForm(f): PortalForm<PolicyForm>,
) -> Result<Response, PageError> {
    let r = match policy_of(&f) {
        Ok(p) => vsc.set_org_policy(&staff.principal(), &code, &p).await,
        Err(e) => Err(e),
    };
    let push_only = if f.push_only.as_deref() == Some("on") { "on" } else { "off" };
    let t = typed(
        format!("policy-{code}"),
        &[
            ("push_only", push_only),
            ("number_matching", &f.number_matching),
            ("session_minutes", &f.session_minutes),
            ("idle_minutes", &f.idle_minutes),
            ("reminder_days", &f.reminder_days),
        ],
    );
    done(&vsc, &staff, &csrf, r, "policy-saved", &format!("org-{code}"), t).await
}
