//! Restarting the issuance of a card that is issued but not enrolled: new key pairs and
//! certificates (the old ones revoked as superseded, a new CRL), a new expiry, and a fresh
//! enrolment link sent in a new invitation — the old link and any enrolment progress are dead.
//! All in one transaction.

use vsc_core::card::card_expiry;
use vsc_core::change_request::ChangeAction;
use vsc_core::{AuditRecord, CardState, DomainError};
use vsc_proto::CardView;
use vsc_store::cards::CardRow;
use vsc_store::{Conn, StoreError, cards, users};

use super::change_requests::Outcome;
use super::{Principal, Vsc, views};
use crate::ServiceError;

impl Vsc {
    /// Restart the issuance of an issued, not yet enrolled card (see the module comment). When the
    /// holder has another, enrolled card under dual control, it is a change request.
    pub async fn restart_issuance(&self, who: &Principal, serial: &str) -> Result<Outcome<CardView>, ServiceError> {
        let mut tx = self.store.begin().await?;
        let card = self.visible_card(&mut tx, who, serial).await?;
        restartable(&card)?;
        let user = users::by_id(&mut tx, &card.user_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("card {} has no holder", card.serial)))?;
        if self.needs_approval(&mut tx, who, &user).await? {
            let payload = serde_json::json!({ "detail": { "card": card.serial, "email": user.email } });
            let request =
                self.request_change(&mut tx, who, &user, ChangeAction::Restart, &card.serial, payload).await?;
            tx.commit().await.map_err(StoreError::from)?;
            return Ok(Outcome::Requested(vec![request]));
        }
        self.restart_now(&mut tx, who, &card).await?;
        let row = cards::by_id(&mut tx, &card.id).await?.ok_or_else(|| StoreError::Corrupt("card vanished".into()))?;
        let view = views::load_card(&mut tx, &row, self.now()).await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.wake_outbox();
        Ok(Outcome::Done(view))
    }

    /// New keys, certificates, expiry and invitation for an issued card, audited as `who`
    /// (caller's transaction).
    pub(crate) async fn restart_now(&self, tx: &mut Conn, who: &Principal, card: &CardRow) -> Result<(), ServiceError> {
        let now = self.now();
        let expires_at = card_expiry(now, self.config.card_validity_days);
        restartable(card)?;
        let (old, renewed) = self.rekey(tx, card, now, expires_at).await?;
        cards::set_expiry(tx, &card.id, expires_at.unix_timestamp()).await?;
        self.publish_crl(tx, now).await?;
        let user = users::by_id(tx, &card.user_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("card {} has no holder", card.serial)))?;
        let row = cards::by_id(tx, &card.id).await?.ok_or_else(|| StoreError::Corrupt("card vanished".into()))?;
        self.start_enrolment(tx, &row, &user).await?;
        self.audit(
            tx,
            AuditRecord {
                actor: who.actor(),
                action: "card.issuance_restarted",
                org_id: Some(card.org_id.clone()),
                target: Some(format!("card:{}", card.serial)),
                detail: serde_json::json!({
                    "email": user.email,
                    "superseded": old.iter().map(|k| &k.cert_serial).collect::<Vec<_>>(),
                    "certificates": renewed.iter().map(|k| &k.cert_serial).collect::<Vec<_>>(),
                    "expires_at": expires_at,
                })
                .to_string(),
            },
        )
        .await?;
        Ok(())
    }
}

/// Only an issued card that is not enrolled yet restarts its issuance.
fn restartable(card: &CardRow) -> Result<(), ServiceError> {
    if card.state != CardState::Issued.as_str() {
        return Err(DomainError::InvalidState(format!(
            "card {} is {}: only an issued card that is not enrolled yet can restart issuance",
            card.serial, card.state
        ))
        .into());
    }
    Ok(())
}
