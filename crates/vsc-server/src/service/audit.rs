//! Reading the audit log.

use vsc_proto::AuditEventView;
use vsc_store::audit::AuditRow;

use super::{Principal, Vsc, ts};
use crate::ServiceError;

impl Vsc {
    /// Newest events first, limited to the principal's organisations (all for the operator).
    pub async fn audit_log(&self, who: &Principal, limit: i64) -> Result<Vec<AuditEventView>, ServiceError> {
        if !(1..=1000).contains(&limit) {
            return Err(vsc_core::DomainError::invalid("limit", "limit must be between 1 and 1000").into());
        }
        let mut conn = self.store.conn().await?;
        let rows = vsc_store::audit::list(&mut conn, who.staff_id(), limit).await?;
        Ok(rows.into_iter().map(audit_view).collect())
    }
}

/// A stored event as the API shows it (the detail parsed as JSON, or kept as a string).
pub(super) fn audit_view(r: AuditRow) -> AuditEventView {
    AuditEventView {
        id: r.id,
        at: ts(r.at),
        actor: r.actor,
        action: r.action,
        organisation: r.org_code,
        target: r.target,
        detail: serde_json::from_str(&r.detail).unwrap_or(serde_json::Value::String(r.detail)),
    }
}
