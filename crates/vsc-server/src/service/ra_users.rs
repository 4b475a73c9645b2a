//! What the vRA Manager's user page needs beyond the JSON API's user view: last activity, the
//! user's authenticator devices and audit trail, and deleting a device on the holder's behalf.

use time::OffsetDateTime;
use vsc_core::AuditRecord;
use vsc_proto::{AuditEventView, DeviceView, UserView};
use vsc_store::StoreError;
use vsc_store::devices;

use super::devices::device_view;
use super::{Principal, Vsc, ts, views};
use crate::ServiceError;

/// The most audit events the user page shows.
pub const USER_AUDIT_LIMIT: i64 = 50;

/// A user as RA staff see them on the user page.
#[derive(Debug, Clone)]
pub struct StaffUserPage {
    /// Details and cards.
    pub user: UserView,
    /// Last successful card login.
    pub last_active_at: Option<OffsetDateTime>,
    /// Authenticator devices in every state, oldest first.
    pub devices: Vec<DeviceView>,
    /// The user's audit events (their own and their cards'), newest first.
    pub audit: Vec<AuditEventView>,
}

impl Vsc {
    /// A user of one of the principal's organisations, with devices and audit trail.
    pub async fn staff_user_page(&self, who: &Principal, id: &str) -> Result<StaffUserPage, ServiceError> {
        let mut conn = self.store.conn().await?;
        let row = self.visible_user(&mut conn, who, id).await?;
        let org_id = row.org_id.clone();
        let user_id = row.id.clone();
        let user = views::load_user(&mut conn, row, self.now()).await?;
        let last_active_at = vsc_store::user_search::last_active(&mut conn, &user_id).await?.map(ts);
        let devices = devices::for_user(&mut conn, &user_id).await?.iter().map(device_view).collect();
        let serials: Vec<String> = user.cards.iter().map(|c| c.serial.clone()).collect();
        let audit = vsc_store::audit::for_user(&mut conn, &org_id, &user_id, &serials, USER_AUDIT_LIMIT)
            .await?
            .into_iter()
            .map(|r| AuditEventView {
                id: r.id,
                at: ts(r.at),
                actor: r.actor,
                action: r.action,
                organisation: r.org_code,
                target: r.target,
                detail: serde_json::from_str(&r.detail).unwrap_or(serde_json::Value::String(r.detail)),
            })
            .collect();
        Ok(StaffUserPage { user, last_active_at, devices, audit })
    }

    /// The role catalogue as (code, name), by code, for the user page's issue form.
    pub async fn staff_role_catalogue(&self) -> Result<Vec<(String, String)>, ServiceError> {
        let mut conn = self.store.conn().await?;
        Ok(vsc_store::roles::list(&mut conn).await?.into_iter().map(|r| (r.code, r.name)).collect())
    }

    /// Delete one of a user's authenticator devices, in any state (also one that never finished
    /// registering), for RA staff of the user's organisation; audited as `device.deleted`.
    pub async fn staff_delete_device(
        &self,
        who: &Principal,
        user_id: &str,
        device_id: &str,
    ) -> Result<(), ServiceError> {
        let mut tx = self.store.begin().await?;
        let user = self.visible_user(&mut tx, who, user_id).await?;
        let not_found = || ServiceError::not_found("device", "no such device");
        let d = devices::by_id(&mut tx, device_id).await?.filter(|d| d.user_id == user.id).ok_or_else(not_found)?;
        if !devices::delete(&mut tx, &user.id, &d.id).await? {
            return Err(not_found());
        }
        let detail = serde_json::json!({ "device": d.id, "name": d.name, "state": d.state });
        self.audit(
            &mut tx,
            AuditRecord {
                actor: who.actor(),
                action: "device.deleted",
                org_id: Some(user.org_id.clone()),
                target: Some(format!("user:{}", user.id)),
                detail: detail.to_string(),
            },
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }
}
