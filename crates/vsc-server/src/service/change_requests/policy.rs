//! The per-organisation `dual_control` setting: on by default; only an operator turns it off (or
//! on again), audited `organisation.dual_control_changed`.

use vsc_core::AuditRecord;
use vsc_proto::DualControlView;
use vsc_store::change_requests as store;
use vsc_store::{StoreError, organisations};

use super::super::{Principal, Vsc};
use crate::ServiceError;

impl Vsc {
    /// Whether dual control is on for an organisation the caller is granted (any, for operators).
    pub async fn dual_control(&self, who: &Principal, code: &str) -> Result<DualControlView, ServiceError> {
        let mut conn = self.store.conn().await?;
        let org = self.organisation_in_reach(&mut conn, who, code).await?;
        Ok(DualControlView { organisation: org.code, dual_control: store::dual_control(&mut conn, &org.id).await? })
    }

    /// Turn dual control on or off for an organisation (operators only).
    pub async fn set_dual_control(
        &self,
        who: &Principal,
        code: &str,
        on: bool,
    ) -> Result<DualControlView, ServiceError> {
        if !who.is_operator() {
            return Err(ServiceError::Forbidden("only an operator changes dual control".into()));
        }
        let mut tx = self.store.begin().await?;
        let org = self.organisation_in_reach(&mut tx, who, code).await?;
        let old = store::dual_control(&mut tx, &org.id).await?;
        if old != on {
            store::set_dual_control(&mut tx, &org.id, on).await?;
            self.audit(
                &mut tx,
                AuditRecord {
                    actor: who.actor(),
                    action: "organisation.dual_control_changed",
                    org_id: Some(org.id.clone()),
                    target: Some(format!("organisation:{}", org.code)),
                    detail: serde_json::json!({ "old": old, "new": on }).to_string(),
                },
            )
            .await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        Ok(DualControlView { organisation: org.code, dual_control: on })
    }

    /// An organisation by code that the caller may see (operators: any); others answer as unknown.
    async fn organisation_in_reach(
        &self,
        conn: &mut vsc_store::Conn,
        who: &Principal,
        code: &str,
    ) -> Result<organisations::OrganisationRow, ServiceError> {
        let code = code.trim().to_ascii_uppercase();
        let missing = || ServiceError::not_found("code", format!("no organisation {code}"));
        let org = organisations::by_code(conn, &code).await?.ok_or_else(missing)?;
        if who.is_operator() || self.ensure_org(conn, who, &org.id).await? {
            return Ok(org);
        }
        Err(missing())
    }
}
