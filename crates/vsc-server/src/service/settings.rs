//! The vRA Manager's settings (RA managers and operators): the role and security-question
//! catalogues (service-wide: managers see them, only operators change them), each organisation's
//! allowed email domains (only operators change them: a domain belongs to one organisation), and
//! the login and reminder policy of each organisation the manager is granted. Every change is
//! audited with what it was and what it became.

use vsc_core::{AuditRecord, DomainError, EmailDomain, RoleCode, StaffRole};
use vsc_proto::{
    CreateQuestionRequest, CreateRoleRequest, EffectivePolicy, OrganisationPolicy, OrganisationPolicyView,
    OrganisationView, RenameRoleRequest, RoleView, SecurityQuestionView, UpdateQuestionRequest,
};
use vsc_store::organisations::{self, OrganisationRow, Policy};
use vsc_store::{Conn, StoreError, Tx, questions, roles};

use super::{Principal, Vsc, views};
use crate::ServiceError;

/// Enrolment asks each holder for this many distinct questions, so at least this many stay offered.
pub const MIN_ACTIVE_QUESTIONS: usize = 3;

/// What an agent (or anyone else but a manager) is told.
const MANAGERS_ONLY: &str = "settings are for RA managers";

/// The whole settings page: both catalogues and the principal's organisations with their policy.
#[derive(Debug, Clone)]
pub struct SettingsOverview {
    /// The role catalogue.
    pub roles: Vec<RoleView>,
    /// The security-question catalogue.
    pub questions: Vec<SecurityQuestionView>,
    /// Each organisation with its policy.
    pub organisations: Vec<(OrganisationView, OrganisationPolicyView)>,
    /// Whether each organisation (same order) has dual control on.
    pub dual_control: Vec<bool>,
}

fn manager_only(who: &Principal) -> Result<(), ServiceError> {
    match who {
        Principal::Staff { role: StaffRole::Agent, operator: false, .. } => {
            Err(ServiceError::Forbidden(MANAGERS_ONLY.into()))
        }
        _ => Ok(()),
    }
}

/// What only operators may do with the catalogues.
const CATALOGUES: &str = "change the role and security-question catalogues";
/// What only operators may do with email domains.
const DOMAINS: &str = "change an organisation's email domains";

/// A name or question text: whitespace collapsed, 1 to `max` characters, no control characters.
fn text(field: &'static str, what: &str, input: &str, max: usize) -> Result<String, DomainError> {
    let t = input.split_whitespace().collect::<Vec<_>>().join(" ");
    if t.is_empty() || t.chars().count() > max || t.chars().any(char::is_control) {
        return Err(DomainError::invalid(field, format!("{what} has 1 to {max} characters")));
    }
    Ok(t)
}

fn role_view(r: roles::RoleRow, cards: i64) -> RoleView {
    RoleView { code: r.code, name: r.name, is_default: r.is_default, cards }
}

fn question_view(q: questions::QuestionRow) -> SecurityQuestionView {
    SecurityQuestionView { id: q.id, text: q.text, active: q.active, answered_by: q.answered_by }
}

/// Question `id` of the catalogue `all`.
fn question_of(all: &[questions::QuestionRow], id: i64) -> Result<questions::QuestionRow, ServiceError> {
    all.iter()
        .find(|q| q.id == id)
        .cloned()
        .ok_or_else(|| ServiceError::not_found("id", format!("no security question {id}")))
}

fn policy_settings(p: &Policy) -> OrganisationPolicy {
    OrganisationPolicy {
        push_only: p.push_only,
        number_matching: p.number_matching,
        session_minutes: p.session_minutes,
        idle_minutes: p.idle_minutes,
        reminder_days: p.reminder_days,
    }
}

fn audit_detail(p: &Policy) -> serde_json::Value {
    serde_json::to_value(policy_settings(p)).unwrap_or_default()
}

impl Vsc {
    /// The policy in effect for an organisation that sets `p`.
    fn effective(&self, p: &Policy) -> EffectivePolicy {
        let login = &self.config.login;
        let session_minutes = p.session_minutes.unwrap_or(login.session_minutes);
        EffectivePolicy {
            push_only: p.push_only,
            number_matching: p.number_matching.unwrap_or(login.number_matching),
            session_minutes,
            idle_minutes: p.idle_minutes.unwrap_or(login.idle_minutes).min(session_minutes),
            reminder_days: p.reminder_days.unwrap_or(self.config.reminder_days),
        }
    }

    /// An organisation's policy as set and as in effect.
    fn policy_view(&self, organisation: String, p: &Policy) -> OrganisationPolicyView {
        OrganisationPolicyView { organisation, settings: policy_settings(p), effective: self.effective(p) }
    }

    /// Audit an email-domain change of `org` and commit it; the organisation as it is now.
    async fn commit_domain_change(
        &self,
        mut tx: Tx,
        who: &Principal,
        org: &OrganisationRow,
        action: &'static str,
        detail: serde_json::Value,
    ) -> Result<OrganisationView, ServiceError> {
        let target = format!("organisation:{}", org.code);
        self.settings_audit(&mut tx, who, action, Some(&org.id), target, detail).await?;
        let row = organisations::by_id(&mut tx, &org.id).await?;
        tx.commit().await.map_err(StoreError::from)?;
        views::organisation(row.ok_or_else(|| ServiceError::Startup("organisation vanished".into()))?)
    }

    /// An organisation the principal is granted, by code; a missing one and another's answer alike.
    async fn granted_org(&self, conn: &mut Conn, who: &Principal, code: &str) -> Result<OrganisationRow, ServiceError> {
        let code = code.trim().to_ascii_uppercase();
        let missing = || ServiceError::not_found("organisation", format!("no organisation {code}"));
        let org = organisations::by_code(conn, &code).await?.ok_or_else(missing)?;
        if !self.ensure_org(conn, who, &org.id).await? {
            return Err(missing());
        }
        Ok(org)
    }

    async fn settings_audit(
        &self,
        conn: &mut Conn,
        who: &Principal,
        action: &'static str,
        org_id: Option<&str>,
        target: String,
        detail: serde_json::Value,
    ) -> Result<(), ServiceError> {
        let rec = AuditRecord {
            actor: who.actor(),
            action,
            org_id: org_id.map(String::from),
            target: Some(target),
            detail: detail.to_string(),
        };
        self.audit(conn, rec).await
    }

    /// Everything the settings page shows (managers only).
    pub async fn settings_overview(&self, who: &Principal) -> Result<SettingsOverview, ServiceError> {
        manager_only(who)?;
        let roles = self.list_roles(who).await?;
        let questions = self.list_questions(who).await?;
        let mut conn = self.store.conn().await?;
        let orgs = match who.staff_id() {
            Some(staff) => organisations::for_staff(&mut conn, staff).await?,
            None => organisations::all(&mut conn).await?,
        };
        let mut organisations = Vec::with_capacity(orgs.len());
        let mut dual_control = Vec::with_capacity(orgs.len());
        for o in orgs {
            let p = organisations::policy(&mut conn, &o.id).await?.unwrap_or_default();
            let view = self.policy_view(o.code.clone(), &p);
            dual_control.push(vsc_store::change_requests::dual_control(&mut conn, &o.id).await?);
            organisations.push((views::organisation(o)?, view));
        }
        Ok(SettingsOverview { roles, questions, organisations, dual_control })
    }

    /// The role catalogue with how many cards of the caller's organisations carry each role (of
    /// every organisation for `vsc admin`; managers only).
    pub async fn list_roles(&self, who: &Principal) -> Result<Vec<RoleView>, ServiceError> {
        manager_only(who)?;
        let mut conn = self.store.conn().await?;
        let mut out = Vec::new();
        for r in roles::list(&mut conn).await? {
            let cards = self.cards_seen(&mut conn, who, &r.code).await?;
            out.push(role_view(r, cards));
        }
        Ok(out)
    }

    /// How many cards carrying role `code` the principal may see.
    async fn cards_seen(&self, conn: &mut Conn, who: &Principal, code: &str) -> Result<i64, ServiceError> {
        Ok(match who.staff_id() {
            Some(staff) => roles::cards_with_for_staff(conn, code, staff).await?,
            None => roles::cards_with(conn, code).await?,
        })
    }

    /// Add a role to the catalogue.
    pub async fn add_role(&self, who: &Principal, req: &CreateRoleRequest) -> Result<RoleView, ServiceError> {
        who.operator_only(CATALOGUES)?;
        let code = RoleCode::parse("code", &req.code)?;
        let name = text("name", "a role name", &req.name, 100)?;
        let at = self.now().unix_timestamp();
        let mut tx = self.store.begin().await?;
        let exists = || ServiceError::conflict("code", format!("a role with code {} exists already", code.as_str()));
        if roles::by_code(&mut tx, code.as_str()).await?.is_some() {
            return Err(exists());
        }
        match roles::insert(&mut tx, code.as_str(), &name, at).await {
            Err(StoreError::Constraint(_)) => return Err(exists()),
            r => r?,
        }
        let detail = serde_json::json!({ "code": code.as_str(), "name": name });
        self.settings_audit(&mut tx, who, "settings.role_added", None, format!("role:{}", code.as_str()), detail)
            .await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(RoleView { code: code.as_str().to_string(), name, is_default: false, cards: 0 })
    }

    /// Rename a role (default roles too).
    pub async fn rename_role(
        &self,
        who: &Principal,
        code: &str,
        req: &RenameRoleRequest,
    ) -> Result<RoleView, ServiceError> {
        who.operator_only(CATALOGUES)?;
        let name = text("name", "a role name", &req.name, 100)?;
        let mut tx = self.store.begin().await?;
        let role = self.role(&mut tx, code).await?;
        roles::rename(&mut tx, &role.code, &name).await?;
        let detail = serde_json::json!({ "code": role.code, "name": { "old": role.name, "new": name } });
        self.settings_audit(&mut tx, who, "settings.role_renamed", None, format!("role:{}", role.code), detail).await?;
        let cards = self.cards_seen(&mut tx, who, &role.code).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(RoleView { name, ..role_view(role, cards) })
    }

    /// Delete a role: never a default role, nor one that cards carry.
    pub async fn delete_role(&self, who: &Principal, code: &str) -> Result<(), ServiceError> {
        who.operator_only(CATALOGUES)?;
        let mut tx = self.store.begin().await?;
        let role = self.role(&mut tx, code).await?;
        if role.is_default {
            return Err(ServiceError::conflict("code", format!("default roles cannot be deleted ({})", role.code)));
        }
        let cards = roles::cards_with(&mut tx, &role.code).await?;
        if cards > 0 {
            return Err(ServiceError::conflict(
                "code",
                format!(
                    "role {} is on {cards} card{}; it cannot be deleted (rename it instead)",
                    role.code,
                    if cards == 1 { "" } else { "s" }
                ),
            ));
        }
        roles::delete(&mut tx, &role.code).await?;
        let detail = serde_json::json!({ "code": role.code, "name": role.name });
        self.settings_audit(&mut tx, who, "settings.role_deleted", None, format!("role:{}", role.code), detail).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }

    async fn role(&self, conn: &mut Conn, code: &str) -> Result<roles::RoleRow, ServiceError> {
        let code = code.trim().to_ascii_uppercase();
        roles::by_code(conn, &code).await?.ok_or_else(|| ServiceError::not_found("code", format!("no role {code}")))
    }

    /// The security-question catalogue, retired questions included (managers only).
    pub async fn list_questions(&self, who: &Principal) -> Result<Vec<SecurityQuestionView>, ServiceError> {
        manager_only(who)?;
        let mut conn = self.store.conn().await?;
        Ok(questions::all(&mut conn).await?.into_iter().map(question_view).collect())
    }

    /// Add a security question (offered at once).
    pub async fn add_question(
        &self,
        who: &Principal,
        req: &CreateQuestionRequest,
    ) -> Result<SecurityQuestionView, ServiceError> {
        who.operator_only(CATALOGUES)?;
        let text = text("text", "a question", &req.text, 200)?;
        let mut tx = self.store.begin().await?;
        let exists = || ServiceError::conflict("text", "that question is in the catalogue already");
        if questions::all(&mut tx).await?.iter().any(|q| q.text.eq_ignore_ascii_case(&text)) {
            return Err(exists());
        }
        let id = match questions::insert(&mut tx, &text).await {
            Err(StoreError::Constraint(_)) => return Err(exists()),
            r => r?,
        };
        let detail = serde_json::json!({ "id": id, "text": text });
        self.settings_audit(&mut tx, who, "settings.question_added", None, format!("question:{id}"), detail).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(SecurityQuestionView { id, text, active: true, answered_by: 0 })
    }

    /// Change a question's text, retire it or offer it again. Holders who answered it keep it.
    pub async fn update_question(
        &self,
        who: &Principal,
        id: i64,
        req: &UpdateQuestionRequest,
    ) -> Result<SecurityQuestionView, ServiceError> {
        who.operator_only(CATALOGUES)?;
        let new_text = req.text.as_deref().map(|t| text("text", "a question", t, 200)).transpose()?;
        let mut tx = self.store.begin().await?;
        let all = questions::all(&mut tx).await?;
        let old = question_of(&all, id)?;
        let text = new_text.unwrap_or_else(|| old.text.clone());
        if all.iter().any(|q| q.id != id && q.text.eq_ignore_ascii_case(&text)) {
            return Err(ServiceError::conflict("text", "that question is in the catalogue already"));
        }
        let active = req.active.unwrap_or(old.active);
        if old.active && !active && all.iter().filter(|q| q.active).count() <= MIN_ACTIVE_QUESTIONS {
            return Err(ServiceError::conflict(
                "active",
                format!("at least {MIN_ACTIVE_QUESTIONS} questions must stay offered: holders choose 3 different ones"),
            ));
        }
        match questions::update(&mut tx, id, &text, active).await {
            Err(StoreError::Constraint(_)) => {
                return Err(ServiceError::conflict("text", "that question is in the catalogue already"));
            }
            r => r?,
        };
        let detail = serde_json::json!({
            "id": id,
            "text": { "old": old.text, "new": text },
            "active": { "old": old.active, "new": active },
        });
        let action = match (old.active, active) {
            (true, false) => "settings.question_retired",
            (false, true) => "settings.question_reactivated",
            _ => "settings.question_changed",
        };
        self.settings_audit(&mut tx, who, action, None, format!("question:{id}"), detail).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(SecurityQuestionView { id, text, active, answered_by: old.answered_by })
    }

    /// Delete a question nobody has answered (an answered one is retired instead).
    pub async fn delete_question(&self, who: &Principal, id: i64) -> Result<(), ServiceError> {
        who.operator_only(CATALOGUES)?;
        let mut tx = self.store.begin().await?;
        let all = questions::all(&mut tx).await?;
        let q = question_of(&all, id)?;
        if q.answered_by > 0 {
            return Err(ServiceError::conflict(
                "id",
                format!("{} holder(s) answered this question; retire it instead of deleting it", q.answered_by),
            ));
        }
        if q.active && all.iter().filter(|q| q.active).count() <= MIN_ACTIVE_QUESTIONS {
            return Err(ServiceError::conflict(
                "id",
                format!("at least {MIN_ACTIVE_QUESTIONS} questions must stay offered: holders choose 3 different ones"),
            ));
        }
        if !questions::delete_unanswered(&mut tx, id).await? {
            return Err(ServiceError::conflict("id", "the question was answered meanwhile; retire it instead"));
        }
        let detail = serde_json::json!({ "id": id, "text": q.text });
        self.settings_audit(&mut tx, who, "settings.question_deleted", None, format!("question:{id}"), detail).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }

    /// An organisation's policy, as set and as in effect (managers of it only).
    pub async fn org_policy(&self, who: &Principal, code: &str) -> Result<OrganisationPolicyView, ServiceError> {
        manager_only(who)?;
        let mut conn = self.store.conn().await?;
        let org = self.granted_org(&mut conn, who, code).await?;
        let p = organisations::policy(&mut conn, &org.id).await?.unwrap_or_default();
        Ok(self.policy_view(org.code, &p))
    }

    /// Replace an organisation's policy (`None` values: the service default). Ranges as in the
    /// configuration: sessions 1–10080 minutes, idle 1 minute to the session lifetime in effect,
    /// reminders every 1–14 days.
    pub async fn set_org_policy(
        &self,
        who: &Principal,
        code: &str,
        req: &OrganisationPolicy,
    ) -> Result<OrganisationPolicyView, ServiceError> {
        manager_only(who)?;
        let new = Policy {
            push_only: req.push_only,
            number_matching: req.number_matching,
            session_minutes: req.session_minutes,
            idle_minutes: req.idle_minutes,
            reminder_days: req.reminder_days,
        };
        if new.session_minutes.is_some_and(|m| !(1..=7 * 24 * 60).contains(&m)) {
            return Err(DomainError::invalid(
                "session_minutes",
                "the session lifetime must be 1 to 10080 minutes (7 days)",
            )
            .into());
        }
        let session = new.session_minutes.unwrap_or(self.config.login.session_minutes);
        if new.idle_minutes.is_some_and(|m| !(1..=session).contains(&m)) {
            return Err(DomainError::invalid(
                "idle_minutes",
                format!("the idle timeout must be between 1 minute and the session lifetime ({session} minutes)"),
            )
            .into());
        }
        if new.reminder_days.is_some_and(|d| !(1..=14).contains(&d)) {
            return Err(DomainError::invalid("reminder_days", "the reminder period must be 1 to 14 days").into());
        }
        let mut tx = self.store.begin().await?;
        let org = self.granted_org(&mut tx, who, code).await?;
        let old = organisations::policy(&mut tx, &org.id).await?.unwrap_or_default();
        if old != new {
            organisations::set_policy(&mut tx, &org.id, &new).await?;
            let detail = serde_json::json!({ "old": audit_detail(&old), "new": audit_detail(&new) });
            let target = format!("organisation:{}", org.code);
            self.settings_audit(&mut tx, who, "settings.policy_changed", Some(&org.id), target, detail).await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        Ok(self.policy_view(org.code, &new))
    }

    /// Allow another email domain for an organisation's users.
    pub async fn add_email_domain(
        &self,
        who: &Principal,
        code: &str,
        domain: &str,
    ) -> Result<OrganisationView, ServiceError> {
        who.operator_only(DOMAINS)?;
        let domain = EmailDomain::parse("domain", domain)?;
        let mut tx = self.store.begin().await?;
        let org = self.operated_org(&mut tx, who, DOMAINS, code).await?;
        if !organisations::add_domain(&mut tx, &org.id, domain.as_str()).await? {
            if organisations::domain_holder(&mut tx, domain.as_str()).await?.is_some_and(|h| h != org.id) {
                return Err(ServiceError::conflict(
                    "domain",
                    format!("the email domain {} belongs to another organisation", domain.as_str()),
                ));
            }
            return Err(ServiceError::conflict("domain", format!("{} is allowed already", domain.as_str())));
        }
        let detail = serde_json::json!({ "domain": domain.as_str() });
        self.commit_domain_change(tx, who, &org, "settings.email_domain_added", detail).await
    }

    /// Stop allowing an email domain for new users and email changes (existing users keep their
    /// addresses). The last domain cannot be removed.
    pub async fn remove_email_domain(
        &self,
        who: &Principal,
        code: &str,
        domain: &str,
    ) -> Result<OrganisationView, ServiceError> {
        who.operator_only(DOMAINS)?;
        let domain = domain.trim().to_ascii_lowercase();
        let mut tx = self.store.begin().await?;
        let org = self.operated_org(&mut tx, who, DOMAINS, code).await?;
        if !org.email_domains.contains(&domain) {
            return Err(ServiceError::not_found(
                "domain",
                format!("{domain} is not an allowed domain of {}", org.code),
            ));
        }
        if org.email_domains.len() == 1 {
            return Err(ServiceError::conflict(
                "domain",
                "an organisation needs at least one allowed email domain; add another first",
            ));
        }
        organisations::remove_domain(&mut tx, &org.id, &domain).await?;
        let detail = serde_json::json!({ "domain": domain });
        self.commit_domain_change(tx, who, &org, "settings.email_domain_removed", detail).await
    }
}
