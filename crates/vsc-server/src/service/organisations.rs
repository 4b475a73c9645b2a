//! Creating, renaming and listing organisations. Only operators create and rename them; names
//! are unique whatever their case, and an email domain belongs to one organisation (the database
//! enforces both, so two concurrent requests cannot both win).

use vsc_core::{AuditRecord, DomainError, EmailDomain, OrgCode, StaffRole};
use vsc_proto::{CreateOrganisationRequest, OrganisationView, RenameOrganisationRequest};
use vsc_store::organisations::{self, OrganisationRow};
use vsc_store::{Conn, StoreError};

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

/// The answer when a domain belongs to another organisation (which is not named).
pub(super) fn domain_held(domain: &str) -> ServiceError {
    ServiceError::conflict("email_domains", format!("the email domain {domain} belongs to another organisation"))
}

fn name_taken(name: &str) -> ServiceError {
    ServiceError::conflict("name", format!("an organisation named {name} already exists"))
}

/// A unique index refused a new organisation or name: a concurrent request took the name or a
/// domain first (the 409 the checks before it would have given).
pub(super) fn lost_race(e: StoreError, name: &str) -> ServiceError {
    match e {
        StoreError::Constraint(_) => ServiceError::conflict(
            "name",
            format!(
                "the name {name}, the code or one of the email domains was taken meanwhile by another organisation"
            ),
        ),
        other => other.into(),
    }
}

impl Vsc {
    /// Refuse a new organisation whose name (whatever its case) or any domain another holds.
    pub(super) async fn check_new_organisation(
        &self,
        conn: &mut Conn,
        name: &str,
        domains: &[String],
    ) -> Result<(), ServiceError> {
        if organisations::by_name(conn, name).await?.is_some() {
            return Err(name_taken(name));
        }
        for d in domains {
            if organisations::domain_holder(conn, d).await?.is_some() {
                return Err(domain_held(d));
            }
        }
        Ok(())
    }

    /// Any organisation by code, for an operator (managers and agents are refused).
    pub(super) async fn operated_org(
        &self,
        conn: &mut Conn,
        who: &Principal,
        what: &str,
        code: &str,
    ) -> Result<OrganisationRow, ServiceError> {
        who.operator_only(what)?;
        let code = code.trim().to_ascii_uppercase();
        organisations::by_code(conn, &code)
            .await?
            .ok_or_else(|| ServiceError::not_found("organisation", format!("no organisation {code}")))
    }

    /// Rename an organisation (operators only); the name is unique whatever its case.
    pub async fn rename_organisation(
        &self,
        who: &Principal,
        code: &str,
        req: &RenameOrganisationRequest,
    ) -> Result<OrganisationView, ServiceError> {
        who.operator_only("rename organisations")?;
        let name = org_name(&req.name)?;
        let mut tx = self.store.begin().await?;
        let org = self.operated_org(&mut tx, who, "rename organisations", code).await?;
        if org.name != name {
            if organisations::by_name(&mut tx, &name).await?.is_some_and(|o| o.id != org.id) {
                return Err(name_taken(&name));
            }
            match organisations::rename(&mut tx, &org.id, &name).await {
                Ok(_) => {}
                Err(StoreError::Constraint(_)) => return Err(name_taken(&name)),
                Err(e) => return Err(e.into()),
            }
            self.audit(
                &mut tx,
                AuditRecord {
                    actor: who.actor(),
                    action: "organisation.renamed",
                    org_id: Some(org.id.clone()),
                    target: Some(format!("organisation:{}", org.code)),
                    detail: serde_json::json!({ "old": org.name, "new": name }).to_string(),
                },
            )
            .await?;
        }
        let row = organisations::by_id(&mut tx, &org.id).await?;
        tx.commit().await.map_err(StoreError::from)?;
        views::organisation(row.ok_or_else(|| ServiceError::Startup("organisation vanished".into()))?)
    }

    /// Create an organisation (operators only); a staff operator creating it is granted it.
    pub async fn create_organisation(
        &self,
        who: &Principal,
        req: &CreateOrganisationRequest,
    ) -> Result<OrganisationView, ServiceError> {
        who.operator_only("create organisations")?;
        let code = OrgCode::parse("code", &req.code)?;
        let name = org_name(&req.name)?;
        let domains = domains("email_domains", &req.email_domains)?;
        let id = new_id();
        let at = self.now().unix_timestamp();

        let mut tx = self.store.begin().await?;
        if organisations::by_code(&mut tx, code.as_str()).await?.is_some() {
            return Err(ServiceError::conflict("code", format!("an organisation with code {code} already exists")));
        }
        self.check_new_organisation(&mut tx, &name, &domains).await?;
        organisations::insert(&mut tx, &id, code.as_str(), &name, &domains, at)
            .await
            .map_err(|e| lost_race(e, &name))?;
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
