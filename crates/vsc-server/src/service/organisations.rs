//! Creating and listing organisations.

use vsc_core::{AuditRecord, DomainError, EmailDomain, OrgCode, StaffRole};
use vsc_proto::{CreateOrganisationRequest, OrganisationView};
use vsc_store::organisations;

use super::{Principal, Vsc, new_id, views};
use crate::ServiceError;

/// Validate an organisation's display name.
pub(super) fn org_name(input: &str) -> Result<String, DomainError> {
    let name = input.split_whitespace().collect::<Vec<_>>().join(" ");
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(DomainError::invalid("name", "an organisation name has 1 to 200 characters"));
    }
    Ok(name)
}

/// Validate a list of allowed domains: at least one, deduplicated, sorted.
pub(super) fn domains(field: &'static str, inputs: &[String]) -> Result<Vec<String>, DomainError> {
    if inputs.is_empty() {
        return Err(DomainError::invalid(field, "at least one allowed email domain is required"));
    }
    let mut out = inputs
        .iter()
        .map(|d| EmailDomain::parse(field, d).map(|d| d.as_str().to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    out.sort();
    out.dedup();
    Ok(out)
}

impl Vsc {
    /// Create an organisation; the creating RA manager is granted it. Agents may not.
    pub async fn create_organisation(
        &self,
        who: &Principal,
        req: &CreateOrganisationRequest,
    ) -> Result<OrganisationView, ServiceError> {
        if let Principal::Staff { role: StaffRole::Agent, .. } = who {
            return Err(ServiceError::Forbidden("only RA managers create organisations".into()));
        }
        let code = OrgCode::parse("code", &req.code)?;
        let name = org_name(&req.name)?;
        let domains = domains("email_domains", &req.email_domains)?;
        let id = new_id();
        let at = self.now().unix_timestamp();

        let mut tx = self.store.begin().await?;
        if organisations::by_code(&mut tx, code.as_str()).await?.is_some() {
            return Err(ServiceError::conflict("code", format!("an organisation with code {code} already exists")));
        }
        organisations::insert(&mut tx, &id, code.as_str(), &name, &domains, at).await?;
        if let Some(staff) = who.staff_id() {
            vsc_store::staff::grant(&mut tx, staff, &id).await?;
        }
        self.audit(
            &mut tx,
            AuditRecord {
                actor: who.actor(),
                action: "organisation.created",
                org_id: Some(id.clone()),
                target: Some(format!("organisation:{code}")),
                detail: serde_json::json!({ "code": code.as_str(), "name": name, "email_domains": domains })
                    .to_string(),
            },
        )
        .await?;
        let row = organisations::by_id(&mut tx, &id).await?;
        tx.commit().await.map_err(vsc_store::StoreError::from)?;
        views::organisation(row.ok_or_else(|| ServiceError::Startup("organisation vanished".into()))?)
    }

    /// The organisations the principal may act on (all, for the operator).
    pub async fn list_organisations(&self, who: &Principal) -> Result<Vec<OrganisationView>, ServiceError> {
        let mut conn = self.store.conn().await?;
        let rows = match who.staff_id() {
            Some(staff) => organisations::for_staff(&mut conn, staff).await?,
            None => organisations::all(&mut conn).await?,
        };
        rows.into_iter().map(views::organisation).collect()
    }

    /// Allow or forbid push-only (passwordless) card login for an organisation (managers and the
    /// operator).
    pub async fn set_push_only(&self, who: &Principal, code: &str, on: bool) -> Result<(), ServiceError> {
        if matches!(who, Principal::Staff { role: StaffRole::Agent, .. }) {
            return Err(ServiceError::Forbidden("only RA managers change login policy".into()));
        }
        let mut tx = self.store.begin().await?;
        let org = organisations::by_code(&mut tx, code.trim())
            .await?
            .ok_or_else(|| ServiceError::not_found("code", format!("no organisation {}", code.trim())))?;
        if !self.ensure_org(&mut tx, who, &org.id).await? {
            return Err(ServiceError::not_found("code", format!("no organisation {}", code.trim())));
        }
        organisations::set_push_only(&mut tx, &org.id, on).await?;
        self.audit(
            &mut tx,
            AuditRecord {
                actor: who.actor(),
                action: "organisation.policy_changed",
                org_id: Some(org.id.clone()),
                target: Some(format!("organisation:{}", org.code)),
                detail: serde_json::json!({ "push_only": on }).to_string(),
            },
        )
        .await?;
        tx.commit().await.map_err(vsc_store::StoreError::from)?;
        Ok(())
    }
}
