//! RA staff: the operator's bootstrap, API tokens and token authentication.

use vsc_core::{AuditRecord, DomainError, EmailAddress, OrgCode, PersonName, StaffRole};
use vsc_crypto::{SecretToken, TokenHash};
use vsc_store::{StoreError, organisations, staff, tokens};

use super::organisations::{domain_held, domains, lost_race, org_name};
use super::staff_auth::NewStaff;
use super::{Principal, Vsc, new_id};
use crate::ServiceError;

/// What `vsc admin bootstrap` did.
#[derive(Debug)]
pub struct BootstrapOutcome {
    /// Organisation code.
    pub organisation: String,
    /// Whether the organisation was created now.
    pub organisation_created: bool,
    /// Manager email.
    pub ra_email: String,
    /// Whether the manager account was created now.
    pub staff_created: bool,
    /// Whether the account is an operator (always: bootstrap makes it one).
    pub operator: bool,
    /// The new API token (shown once).
    pub token: String,
    /// The one-time link (valid 24 h) to set the manager's password for the vRA Manager.
    pub password_link: String,
}

fn staff_name(input: &str) -> Result<String, DomainError> {
    PersonName::parse("ra_name", input).map(|n| n.as_str().to_string())
}

impl Vsc {
    /// Create (when new) an organisation and an RA manager for it, and issue the manager a token.
    /// Running it again for another organisation grants that organisation too.
    pub async fn bootstrap(
        &self,
        org_code: &str,
        org_name_input: &str,
        email_domains: &[String],
        ra_email: &str,
        ra_name: &str,
    ) -> Result<BootstrapOutcome, ServiceError> {
        let code = OrgCode::parse("org", org_code)?;
        let name = org_name(org_name_input)?;
        let domains = domains("email_domain", email_domains)?;
        let email = EmailAddress::parse("ra_email", ra_email)?;
        let display = staff_name(ra_name)?;
        let at = self.now().unix_timestamp();
        let actor = Principal::Operator.actor();

        let mut tx = self.store.begin().await?;
        let (org_id, organisation_created) = match organisations::by_code(&mut tx, code.as_str()).await? {
            Some(o) => {
                let mut added = Vec::new();
                for d in &domains {
                    if organisations::add_domain(&mut tx, &o.id, d).await? {
                        added.push(d.clone());
                    } else if organisations::domain_holder(&mut tx, d).await?.is_some_and(|h| h != o.id) {
                        return Err(domain_held(d));
                    }
                }
                if !added.is_empty() {
                    self.audit(
                        &mut tx,
                        AuditRecord {
                            actor: actor.clone(),
                            action: "organisation.domains_added",
                            org_id: Some(o.id.clone()),
                            target: Some(format!("organisation:{code}")),
                            detail: serde_json::json!({ "email_domains": added }).to_string(),
                        },
                    )
                    .await?;
                }
                (o.id, false)
            }
            None => {
                let id = new_id();
                self.check_new_organisation(&mut tx, &name, &domains).await?;
                organisations::insert(&mut tx, &id, code.as_str(), &name, &domains, at)
                    .await
                    .map_err(|e| lost_race(e, &name))?;
                self.audit(
                    &mut tx,
                    AuditRecord {
                        actor: actor.clone(),
                        action: "organisation.created",
                        org_id: Some(id.clone()),
                        target: Some(format!("organisation:{code}")),
                        detail: serde_json::json!({ "code": code.as_str(), "name": name, "email_domains": domains })
                            .to_string(),
                    },
                )
                .await?;
                (id, true)
            }
        };
        if staff::by_email_key(&mut tx, &email.key()).await?.is_some_and(|s| s.role != StaffRole::Manager.as_str()) {
            return Err(ServiceError::conflict("ra_email", format!("{email} is an RA agent, not a manager")));
        }
        let org = organisations::by_id(&mut tx, &org_id)
            .await?
            .ok_or_else(|| ServiceError::Startup(format!("organisation {code} vanished")))?;
        let new = NewStaff { email: &email, name: Some(&display), role: StaffRole::Manager, orgs: &[org] };
        let added = self.add_staff(&mut tx, &Principal::Operator, &new, true).await?;
        // The installation's first accounts come from here: they run it.
        self.grant_operator(&mut tx, &Principal::Operator, &added.id, email.as_str(), true).await?;
        let (staff_created, password_link) = (added.created, added.password_link);
        let token = self.new_token(&mut tx, &added.id, &email, Some(&org_id)).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(BootstrapOutcome {
            organisation: code.to_string(),
            organisation_created,
            ra_email: email.to_string(),
            staff_created,
            operator: true,
            token,
            password_link,
        })
    }

    async fn new_token(
        &self,
        conn: &mut vsc_store::Conn,
        staff_id: &str,
        email: &EmailAddress,
        org_id: Option<&str>,
    ) -> Result<String, ServiceError> {
        let token = SecretToken::generate("vsc");
        let id = new_id();
        tokens::insert(conn, &id, staff_id, &token.hash().0, self.now().unix_timestamp()).await?;
        self.audit(
            conn,
            AuditRecord {
                actor: Principal::Operator.actor(),
                action: "token.created",
                org_id: org_id.map(str::to_string),
                target: Some(format!("staff:{email}")),
                detail: serde_json::json!({ "token_id": id }).to_string(),
            },
        )
        .await?;
        Ok(token.expose().to_string())
    }

    /// Issue a new API token to an existing RA account (operator).
    pub async fn create_token(&self, email: &str) -> Result<String, ServiceError> {
        let email = EmailAddress::parse("email", email)?;
        let mut tx = self.store.begin().await?;
        let s = staff::by_email_key(&mut tx, &email.key())
            .await?
            .ok_or_else(|| ServiceError::not_found("email", format!("no RA account with email {email}")))?;
        let token = self.new_token(&mut tx, &s.id, &email, None).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(token)
    }

    /// The staff member holding `token`, or `None` for an unknown or revoked token.
    pub async fn authenticate_token(&self, token: &str) -> Result<Option<Principal>, ServiceError> {
        let presented = TokenHash::of(token);
        let mut conn = self.store.conn().await?;
        let Some((s, stored, token_id)) = tokens::find(&mut conn, &presented.0).await? else {
            return Ok(None);
        };
        let Some(stored) = TokenHash::from_slice(&stored) else {
            return Ok(None);
        };
        if !stored.matches(&presented) {
            return Ok(None);
        }
        if staff::is_disabled(&mut conn, &s.id).await? {
            return Ok(None);
        }
        tokens::touch(&mut conn, &token_id, self.now().unix_timestamp()).await?;
        let role = StaffRole::parse("role", &s.role)?;
        Ok(Some(Principal::Staff { id: s.id, email: s.email, role, operator: s.operator }))
    }
}
