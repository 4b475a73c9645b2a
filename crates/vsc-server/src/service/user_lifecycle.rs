//! Deleting a user: their cards are revoked (certificates kept and listed on a new CRL), their
//! devices and directory accounts removed, and the user is gone; the audit trail stays.

use vsc_core::{AuditRecord, CardState};
use vsc_crypto::RevocationReason;
use vsc_store::{StoreError, cards, certificates, user_lifecycle};

use super::{Principal, Vsc};
use crate::ServiceError;

/// The revocation reason recorded on the cards of a deleted user (their certificates say
/// `cessationOfOperation`).
const REASON: &str = "user deleted";

impl Vsc {
    /// Delete a user in one transaction: revoke every card that is not yet revoked (card state,
    /// certificates and a new CRL), delete their devices and directory accounts, then their cards
    /// and the user row, with a `user.deleted` audit event naming the revoked cards. Certificates
    /// and audit events are kept.
    pub async fn delete_user(&self, who: &Principal, user_id: &str) -> Result<(), ServiceError> {
        let now = self.now();
        let at = now.unix_timestamp();
        let mut tx = self.store.begin().await?;
        let user = self.visible_user(&mut tx, who, user_id).await?;
        vsc_store::devices::lock_holder(&mut tx, &user.id).await?;
        let mut revoked = Vec::new();
        let mut serials = Vec::new();
        for card in cards::for_user(&mut tx, &user.id).await? {
            serials.push(card.serial.clone());
            if CardState::parse(&card.state) == Some(CardState::Revoked) {
                continue;
            }
            cards::revoke(&mut tx, &card.id, at, Some(REASON)).await?;
            certificates::revoke_for_card(&mut tx, &card.id, at, RevocationReason::CessationOfOperation.as_str())
                .await?;
            revoked.push(card.serial);
        }
        if !revoked.is_empty() {
            self.publish_crl(&mut tx, now).await?;
        }
        let devices = user_lifecycle::delete_devices(&mut tx, &user.id).await?;
        let accounts = user_lifecycle::delete_directory_accounts(&mut tx, &user.id).await?;
        user_lifecycle::delete_cards(&mut tx, &user.id).await?;
        if !user_lifecycle::delete_user(&mut tx, &user.id).await? {
            return Err(StoreError::Corrupt(format!("user {} vanished", user.id)).into());
        }
        self.audit(
            &mut tx,
            AuditRecord {
                actor: who.actor(),
                action: "user.deleted",
                org_id: Some(user.org_id.clone()),
                target: Some(format!("user:{}", user.id)),
                detail: serde_json::json!({
                    "email": user.email,
                    "subject_cn": user.subject_cn,
                    "name": format!("{} {}", user.forename, user.surname),
                    "revoked_cards": revoked,
                    "cards": serials,
                    "devices_deleted": devices,
                    "directory_accounts_deleted": accounts.iter().map(|(n, s)| serde_json::json!({"name": n, "state": s})).collect::<Vec<_>>(),
                })
                .to_string(),
            },
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }
}
