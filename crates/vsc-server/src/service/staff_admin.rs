//! Staff management by RA managers and operators: list the staff sharing their organisations,
//! invite staff (the one-time password link emailed to the invitee, never returned), change a
//! role, grant and revoke organisations (only among the manager's own; everyone keeps at least
//! one), disable and enable accounts (disabling ends sessions and pending sign-ins and stops API
//! tokens), and email a new password link to the account's own address. A manager acts on an
//! account only when they cover every organisation it has, and never on an operator's; operators
//! administer any account. Agents are refused; every change is audited in its transaction, with
//! the email in the same transaction.

use std::collections::BTreeSet;

use vsc_core::{AuditRecord, DomainError, EmailAddress, PersonName, StaffRole};
use vsc_proto::{InviteStaffRequest, StaffInvited, StaffView, UpdateStaffRequest};
use vsc_store::organisations::{self, OrganisationRow};
use vsc_store::{Conn, StoreError, staff, staff_auth};

use super::staff_auth::{NewStaff, PASSWORD_LINK_SECONDS};
use super::{Principal, Vsc, ts};
use crate::ServiceError;
use crate::notify::templates;

/// What agents are told.
pub const MANAGERS_ONLY: &str = "staff management is for RA managers";

/// "RA Manager" / "RA Agent".
pub fn role_label(role: StaffRole) -> &'static str {
    match role {
        StaffRole::Manager => "RA Manager",
        StaffRole::Agent => "RA Agent",
    }
}

/// What a manager is told about an account beyond their reach.
pub const BEYOND_REACH: &str = "this staff account also has organisations you do not manage (or is an operator's); \
     an RA manager of all of them, or an operator, can change it";

/// The id of the staff member the caller manages as ("" for operators, who see everyone);
/// agents are refused.
fn manager_view(who: &Principal) -> Result<&str, ServiceError> {
    match who {
        Principal::Operator | Principal::Staff { operator: true, .. } => Ok(""),
        Principal::Staff { id, role: StaffRole::Manager, .. } => Ok(id),
        Principal::Staff { .. } => Err(ServiceError::Forbidden(MANAGERS_ONLY.into())),
    }
}

fn no_such_staff() -> ServiceError {
    ServiceError::not_found("id", "there is no staff member with this id in your organisations")
}

fn view(s: staff::StaffSummary, grants: &[staff::Grant]) -> Result<StaffView, ServiceError> {
    let id = uuid::Uuid::parse_str(&s.id).map_err(|e| ServiceError::Startup(format!("a stored staff id: {e}")))?;
    Ok(StaffView {
        organisations: grants.iter().filter(|g| g.staff_id == s.id).map(|g| g.code.clone()).collect(),
        id,
        email: s.email,
        name: s.display_name,
        role: s.role,
        operator: s.operator,
        password_set: s.has_password,
        totp_set: s.has_totp,
        disabled: s.disabled_at.is_some(),
        last_sign_in: s.last_sign_in.map(ts),
    })
}

impl Vsc {
    /// The staff sharing at least one organisation with the caller (a manager), by name; each
    /// with the granted organisations the caller may see.
    pub async fn list_staff(&self, who: &Principal) -> Result<Vec<StaffView>, ServiceError> {
        let viewer = manager_view(who)?;
        let mut conn = self.store.conn().await?;
        let rows = staff::visible(&mut conn, viewer, "").await?;
        let grants = staff::visible_grants(&mut conn, viewer, "").await?;
        rows.into_iter().map(|s| view(s, &grants)).collect()
    }

    /// One staff member sharing an organisation with the caller (a manager).
    pub async fn get_staff(&self, who: &Principal, id: &str) -> Result<StaffView, ServiceError> {
        let viewer = manager_view(who)?;
        let mut conn = self.store.conn().await?;
        self.visible_staff(&mut conn, viewer, id).await
    }

    async fn visible_staff(&self, conn: &mut Conn, viewer: &str, id: &str) -> Result<StaffView, ServiceError> {
        let id = id.trim();
        if id.is_empty() {
            return Err(no_such_staff());
        }
        let row = staff::visible(conn, viewer, id).await?.into_iter().next().ok_or_else(no_such_staff)?;
        let grants = staff::visible_grants(conn, viewer, id).await?;
        view(row, &grants)
    }

    /// Fail unless the caller (as `viewer`) may act on staff account `id`: operators on any; a
    /// manager only on an account whose organisations they all cover and that is not an
    /// operator's (403).
    async fn ensure_reach(&self, conn: &mut Conn, viewer: &str, s: &StaffView) -> Result<(), ServiceError> {
        if viewer.is_empty() {
            return Ok(());
        }
        if s.operator || staff::grants_beyond(conn, viewer, &s.id.to_string()).await? > 0 {
            return Err(ServiceError::Forbidden(BEYOND_REACH.into()));
        }
        Ok(())
    }

    /// Whether the caller may act on staff account `id` (operators on any; a manager only when
    /// covering all its organisations and it is not an operator's).
    pub async fn staff_in_reach(&self, who: &Principal, id: &str) -> Result<bool, ServiceError> {
        let viewer = manager_view(who)?;
        let mut conn = self.store.conn().await?;
        let s = self.visible_staff(&mut conn, viewer, id).await?;
        match self.ensure_reach(&mut conn, viewer, &s).await {
            Ok(()) => Ok(true),
            Err(ServiceError::Forbidden(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The caller's organisations named by `codes` (at least one; unknown codes and organisations
    /// of others answer alike), sorted by code.
    async fn own_organisations(
        &self,
        conn: &mut Conn,
        viewer: &str,
        codes: &[String],
    ) -> Result<Vec<OrganisationRow>, ServiceError> {
        let codes: BTreeSet<String> =
            codes.iter().map(|c| c.trim().to_ascii_uppercase()).filter(|c| !c.is_empty()).collect();
        if codes.is_empty() {
            return Err(DomainError::invalid("organisations", "choose at least one organisation").into());
        }
        let mut out = Vec::new();
        for code in codes {
            let missing = || ServiceError::not_found("organisations", format!("no organisation {code}"));
            let org = organisations::by_code(conn, &code).await?.ok_or_else(missing)?;
            if !viewer.is_empty() && !staff::is_granted(conn, viewer, &org.id).await? {
                return Err(missing());
            }
            out.push(org);
        }
        Ok(out)
    }

    /// Queue the invitation (or a new link, `resent`) to the staff member (caller's transaction).
    #[allow(clippy::too_many_arguments)]
    async fn email_password_link(
        &self,
        conn: &mut Conn,
        email: &str,
        name: &str,
        role: StaffRole,
        orgs: &[String],
        link: &str,
        resent: bool,
    ) -> Result<(), ServiceError> {
        let expires = self.now() + time::Duration::seconds(PASSWORD_LINK_SECONDS);
        let mail = templates::staff_invitation(email, name, role_label(role), &orgs.join(", "), link, expires, resent)
            .map_err(ServiceError::Startup)?;
        self.enqueue_email(conn, "staff_invitation", &mail).await
    }

    /// Invite a new staff member into some of the caller's organisations: the account, its grants,
    /// the password link and the email carrying it commit together; only the email carries the
    /// link.
    pub async fn invite_staff_member(
        &self,
        who: &Principal,
        req: &InviteStaffRequest,
    ) -> Result<StaffInvited, ServiceError> {
        let viewer = manager_view(who)?;
        let email = EmailAddress::parse("email", &req.email)?;
        let name = PersonName::parse("name", &req.name)?;
        let role = StaffRole::parse("role", &req.role)?;
        let mut tx = self.store.begin().await?;
        let orgs = self.own_organisations(&mut tx, viewer, &req.organisations).await?;
        let new = NewStaff { email: &email, name: Some(name.as_str()), role, orgs: &orgs };
        let added = self.add_staff(&mut tx, who, &new, false).await?;
        let codes: Vec<String> = orgs.iter().map(|o| o.code.clone()).collect();
        self.email_password_link(&mut tx, email.as_str(), name.as_str(), role, &codes, &added.password_link, false)
            .await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.wake_outbox();
        let id = uuid::Uuid::parse_str(&added.id).map_err(|e| ServiceError::Startup(format!("a new staff id: {e}")))?;
        Ok(StaffInvited { id, email: email.to_string(), role: role.as_str().into(), organisations: codes })
    }

    /// Change a staff member's role, organisations (among the caller's own) and/or disabled state
    /// in one transaction. Managers cannot demote or disable themselves.
    pub async fn update_staff(
        &self,
        who: &Principal,
        id: &str,
        req: &UpdateStaffRequest,
    ) -> Result<StaffView, ServiceError> {
        let viewer = manager_view(who)?;
        let role = req.role.as_deref().map(|r| StaffRole::parse("role", r)).transpose()?;
        let myself = who.staff_id() == Some(id.trim());
        let mut tx = self.store.begin().await?;
        let before = self.visible_staff(&mut tx, viewer, id).await?;
        self.ensure_reach(&mut tx, viewer, &before).await?;
        let id = before.id.to_string();
        let target = format!("staff:{}", before.email);
        // The caller's organisation that the events are filed under.
        let home = organisations::by_code(&mut tx, before.organisations.first().map_or("", String::as_str))
            .await?
            .map(|o| o.id);
        let event = |action: &'static str, org_id: Option<String>, detail: serde_json::Value| AuditRecord {
            actor: who.actor(),
            action,
            org_id,
            target: Some(target.clone()),
            detail: detail.to_string(),
        };
        if let Some(role) = role
            && role.as_str() != before.role
        {
            if myself {
                return Err(ServiceError::conflict("role", "you cannot change your own role; another RA manager can"));
            }
            staff::set_role(&mut tx, &id, role.as_str()).await?;
            let detail = serde_json::json!({ "old": before.role, "new": role.as_str() });
            self.audit(&mut tx, event("staff.role_changed", home.clone(), detail)).await?;
        }
        if let Some(codes) = &req.organisations {
            let wanted = self.own_organisations(&mut tx, viewer, codes).await?;
            let current = staff::visible_grants(&mut tx, viewer, &id).await?;
            for org in &wanted {
                if staff::grant(&mut tx, &id, &org.id).await? {
                    let detail = serde_json::json!({ "organisation": org.code });
                    self.audit(&mut tx, event("staff.granted", Some(org.id.clone()), detail)).await?;
                }
            }
            for g in current.iter().filter(|g| !wanted.iter().any(|o| o.id == g.org_id)) {
                if staff::revoke(&mut tx, &id, &g.org_id).await? {
                    let detail = serde_json::json!({ "organisation": g.code });
                    self.audit(&mut tx, event("staff.revoked", Some(g.org_id.clone()), detail)).await?;
                }
            }
            if staff::grant_count(&mut tx, &id).await? == 0 {
                return Err(
                    DomainError::invalid("organisations", "a staff member needs at least one organisation").into()
                );
            }
        }
        match req.disabled {
            Some(true) if !before.disabled => {
                if myself {
                    return Err(ServiceError::conflict(
                        "disabled",
                        "you cannot disable your own account; another RA manager can",
                    ));
                }
                let now = self.now().unix_timestamp();
                staff::disable(&mut tx, &id, now).await?;
                let sessions = staff_auth::end_sessions(&mut tx, &id, now).await?;
                staff_auth::end_sign_ins(&mut tx, &id, now).await?;
                let detail = serde_json::json!({ "sessions_ended": sessions });
                self.audit(&mut tx, event("staff.disabled", home.clone(), detail)).await?;
            }
            Some(false) if before.disabled => {
                staff::enable(&mut tx, &id).await?;
                self.audit(&mut tx, event("staff.enabled", home.clone(), serde_json::json!({}))).await?;
            }
            _ => {}
        }
        let after = self.visible_staff(&mut tx, viewer, &id).await;
        tx.commit().await.map_err(StoreError::from)?;
        // Revoking every organisation the caller shares leaves the member out of sight.
        after.or(Ok(StaffView { organisations: Vec::new(), ..before }))
    }

    /// A new one-time password link for a staff member (older links stop working), emailed to
    /// the account's own address only: the caller never sees it. Not for disabled accounts.
    pub async fn resend_staff_link(&self, who: &Principal, id: &str) -> Result<(), ServiceError> {
        let viewer = manager_view(who)?;
        let mut tx = self.store.begin().await?;
        let s = self.visible_staff(&mut tx, viewer, id).await?;
        self.ensure_reach(&mut tx, viewer, &s).await?;
        if s.disabled {
            return Err(DomainError::InvalidState("the account is disabled; enable it first".into()).into());
        }
        let role = StaffRole::parse("role", &s.role)?;
        let id = s.id.to_string();
        let home = organisations::by_code(&mut tx, s.organisations.first().map_or("", String::as_str)).await?;
        let link = self.issue_password_link(&mut tx, who, &id, &s.email, home.as_ref().map(|o| o.id.as_str())).await?;
        self.email_password_link(&mut tx, &s.email, &s.name, role, &s.organisations, &link, true).await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.wake_outbox();
        Ok(())
    }

    /// Disable (`disabled`) or enable the staff account of `email` (operator).
    pub async fn set_staff_disabled(&self, email: &str, disabled: bool) -> Result<StaffView, ServiceError> {
        let email = EmailAddress::parse("email", email)?;
        let found = {
            let mut conn = self.store.conn().await?;
            staff::by_email_key(&mut conn, &email.key()).await?
        };
        let s = found.ok_or_else(|| ServiceError::not_found("email", format!("no RA account with email {email}")))?;
        let req = UpdateStaffRequest { disabled: Some(disabled), ..UpdateStaffRequest::default() };
        self.update_staff(&Principal::Operator, &s.id, &req).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_managers_and_the_operator_manage_staff() {
        assert_eq!(manager_view(&Principal::Operator).ok(), Some(""));
        let staff =
            |role, operator| Principal::Staff { id: "s1".into(), email: "s@example.org".into(), role, operator };
        assert_eq!(manager_view(&staff(StaffRole::Manager, false)).ok(), Some("s1"));
        assert!(
            matches!(manager_view(&staff(StaffRole::Agent, false)), Err(ServiceError::Forbidden(m)) if m == MANAGERS_ONLY)
        );
        assert_eq!(manager_view(&staff(StaffRole::Manager, true)).ok(), Some(""), "operators see every account");
        assert_eq!(manager_view(&staff(StaffRole::Agent, true)).ok(), Some(""));
    }

    #[test]
    fn the_invitation_names_role_organisations_link_and_expiry() {
        let link = "https://vsc.example.org/ra/set-password/vsp_abc";
        let at = time::macros::datetime!(2026-12-07 14:05 UTC);
        let m = templates::staff_invitation("a@example.org", "Alex O'Agent", "RA Agent", "RX1, RX2", link, at, false)
            .unwrap();
        assert_eq!(m.subject, "You are invited to the vRA Manager");
        for part in ["as RA Agent for RX1, RX2", link, "14:05 UTC on 7 December 2026", "Dear Alex O'Agent"] {
            assert!(m.text.contains(part), "{part} in {}", m.text);
        }
        assert!(m.html.contains(link) && (m.html.contains("O&#39;Agent") || m.html.contains("O&#x27;Agent")));
        let again = templates::staff_invitation("a@example.org", "Alex", "RA Agent", "RX1", link, at, true).unwrap();
        assert!(again.text.contains("Older links no longer work"), "{}", again.text);
        assert!(templates::staff_invitation("a@example.org", "A", "RA Agent", "RX1", "/relative", at, false).is_err());
    }
}
