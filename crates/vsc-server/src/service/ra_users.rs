//! What the vRA Manager's user page needs beyond the JSON API's user view: last activity, the
//! user's authenticator devices, directory accounts and audit trail; deleting a device on the
//! holder's behalf, and adding or removing a directory account.

use time::OffsetDateTime;
use vsc_core::AuditRecord;
use vsc_core::change_request::ChangeAction;
use vsc_proto::{AuditEventView, DeviceView, UserView};
use vsc_store::holders::{self, DirectoryAccount};
use vsc_store::users::UserRow;
use vsc_store::{Conn, StoreError, devices, users};

use super::change_requests::Outcome;
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
    /// Directory (AD) accounts, by name.
    pub directory_accounts: Vec<DirectoryAccount>,
    /// The user's audit events (their own and their cards'), newest first.
    pub audit: Vec<AuditEventView>,
    /// Changes to the user waiting for a second staff member's approval, oldest first.
    pub pending_changes: Vec<vsc_proto::ChangeRequestView>,
}

/// The user's audit trail (events targeting the user or one of their cards), newest first.
async fn audit_trail(
    conn: &mut Conn,
    user: &users::UserRow,
    serials: &[String],
) -> Result<Vec<AuditEventView>, ServiceError> {
    Ok(holders::audit_trail(conn, &user.org_id, &user.id, serials, USER_AUDIT_LIMIT)
        .await?
        .into_iter()
        .map(super::audit::audit_view)
        .collect())
}

/// A directory account name: 1 to 64 letters, digits, dots, hyphens, underscores, @ or \\.
pub(super) fn parse_directory_account(name: &str) -> Result<&str, ServiceError> {
    match super::users::directory_account_name(name) {
        Ok(Some(d)) => Ok(d),
        _ => Err(vsc_core::DomainError::invalid(
            "directory_account",
            "a directory account name has 1 to 64 letters, digits, dots, hyphens, underscores, @ or \\",
        )
        .into()),
    }
}

impl Vsc {
    /// A user of one of the principal's organisations, with devices and audit trail.
    pub async fn staff_user_page(&self, who: &Principal, id: &str) -> Result<StaffUserPage, ServiceError> {
        let mut conn = self.store.conn().await?;
        let row = self.visible_user(&mut conn, who, id).await?;
        let user = views::load_user(&mut conn, row.clone(), self.now()).await?;
        let serials: Vec<String> = user.cards.iter().map(|c| c.serial.clone()).collect();
        let audit = audit_trail(&mut conn, &row, &serials).await?;
        let directory_accounts = holders::directory_accounts(&mut conn, &row.id).await?;
        let last_active_at = vsc_store::user_search::last_active(&mut conn, &row.id).await?.map(ts);
        let devices = devices::for_user(&mut conn, &row.id).await?.iter().map(device_view).collect();
        let now = self.now().unix_timestamp();
        let pending_changes = vsc_store::change_requests::pending_for_user(&mut conn, &row.id, now)
            .await?
            .iter()
            .map(|r| super::change_requests::view(r, now))
            .collect::<Result<_, _>>()?;
        Ok(StaffUserPage { user, last_active_at, devices, directory_accounts, audit, pending_changes })
    }

    /// Just the audit trail of a user of one of the principal's organisations (the user page's
    /// self-refreshing part).
    pub async fn staff_user_audit(&self, who: &Principal, id: &str) -> Result<Vec<AuditEventView>, ServiceError> {
        let mut conn = self.store.conn().await?;
        let row = self.visible_user(&mut conn, who, id).await?;
        let serials: Vec<String> =
            vsc_store::cards::for_user(&mut conn, &row.id).await?.into_iter().map(|c| c.serial).collect();
        audit_trail(&mut conn, &row, &serials).await
    }

    /// Add a directory (AD) account to a user: pending until the holder completes enrolment, or
    /// active at once if they already have; audited as `directory_account.added`.
    pub async fn staff_add_directory_account(
        &self,
        who: &Principal,
        user_id: &str,
        name: &str,
    ) -> Result<DirectoryAccount, ServiceError> {
        let name = parse_directory_account(name)?;
        let now = self.now().unix_timestamp();
        let mut tx = self.store.begin().await?;
        let user = self.visible_user(&mut tx, who, user_id).await?;
        let taken =
            || ServiceError::conflict("directory_account", format!("the user already has directory account {name}"));
        if holders::directory_accounts(&mut tx, &user.id).await?.iter().any(|a| a.name == name) {
            return Err(taken());
        }
        let enrolled = holders::credentials(&mut tx, &user.id).await?.is_some();
        let added = if enrolled {
            holders::add_active_directory_account(&mut tx, &user.id, name, now).await
        } else {
            holders::add_directory_account(&mut tx, &user.id, name, now).await
        };
        match added {
            Err(StoreError::Constraint(_)) => return Err(taken()),
            r => r?,
        }
        let state = if enrolled { "active" } else { "pending" };
        self.audit(
            &mut tx,
            AuditRecord {
                actor: who.actor(),
                action: "directory_account.added",
                org_id: Some(user.org_id.clone()),
                target: Some(format!("user:{}", user.id)),
                detail: serde_json::json!({ "name": name, "state": state }).to_string(),
            },
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(DirectoryAccount {
            name: name.to_string(),
            state: state.into(),
            created_at: now,
            activated_at: enrolled.then_some(now),
        })
    }

    /// Remove one of a user's directory accounts; audited as `directory_account.removed`.
    pub async fn staff_remove_directory_account(
        &self,
        who: &Principal,
        user_id: &str,
        name: &str,
    ) -> Result<(), ServiceError> {
        let mut tx = self.store.begin().await?;
        let user = self.visible_user(&mut tx, who, user_id).await?;
        let Some(gone) = holders::remove_directory_account(&mut tx, &user.id, name).await? else {
            return Err(ServiceError::not_found("directory_account", format!("no directory account {name}")));
        };
        self.audit(
            &mut tx,
            AuditRecord {
                actor: who.actor(),
                action: "directory_account.removed",
                org_id: Some(user.org_id.clone()),
                target: Some(format!("user:{}", user.id)),
                detail: serde_json::json!({ "name": gone.name, "state": gone.state }).to_string(),
            },
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }

    /// The role catalogue as (code, name), by code, for the user page's issue form.
    pub async fn staff_role_catalogue(&self) -> Result<Vec<(String, String)>, ServiceError> {
        let mut conn = self.store.conn().await?;
        Ok(vsc_store::roles::list(&mut conn).await?.into_iter().map(|r| (r.code, r.name)).collect())
    }

    /// Delete one of a user's authenticator devices, in any state (also one that never finished
    /// registering), for RA staff of the user's organisation; audited as `device.deleted`. The
    /// last active device of an enrolled holder under dual control is a change request.
    pub async fn staff_delete_device(
        &self,
        who: &Principal,
        user_id: &str,
        device_id: &str,
    ) -> Result<Outcome<()>, ServiceError> {
        let mut tx = self.store.begin().await?;
        let user = self.visible_user(&mut tx, who, user_id).await?;
        // Two deletes racing must not both see "not the last one".
        devices::lock_holder(&mut tx, &user.id).await?;
        let not_found = || ServiceError::not_found("device", "no such device");
        let d = devices::by_id(&mut tx, device_id).await?.filter(|d| d.user_id == user.id).ok_or_else(not_found)?;
        if d.state == "active"
            && devices::active_count(&mut tx, &user.id).await? == 1
            && self.needs_approval(&mut tx, who, &user).await?
        {
            let payload = serde_json::json!({ "detail": { "device": d.id, "name": d.name } });
            let request =
                self.request_change(&mut tx, who, &user, ChangeAction::DeleteLastDevice, &d.id, payload).await?;
            tx.commit().await.map_err(StoreError::from)?;
            return Ok(Outcome::Requested(vec![request]));
        }
        self.delete_device_now(&mut tx, who, &user, &d.id).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(Outcome::Done(()))
    }

    /// Delete the holder's device `device_id`, audited as `who` (caller's transaction).
    pub(crate) async fn delete_device_now(
        &self,
        tx: &mut Conn,
        who: &Principal,
        user: &UserRow,
        device_id: &str,
    ) -> Result<(), ServiceError> {
        let not_found = || ServiceError::not_found("device", "no such device");
        let d = devices::by_id(tx, device_id).await?.filter(|d| d.user_id == user.id).ok_or_else(not_found)?;
        if !devices::delete(tx, &user.id, &d.id).await? {
            return Err(not_found());
        }
        let detail = serde_json::json!({ "device": d.id, "name": d.name, "state": d.state });
        self.audit(
            tx,
            AuditRecord {
                actor: who.actor(),
                action: "device.deleted",
                org_id: Some(user.org_id.clone()),
                target: Some(format!("user:{}", user.id)),
                detail: detail.to_string(),
            },
        )
        .await?;
        Ok(())
    }
}
