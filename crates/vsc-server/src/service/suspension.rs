//! Card suspension (reversible) and resume. A suspended card cannot log in, open sessions, issue
//! tickets or sign; its open sessions end and its certificates go on hold (`certificateHold` on
//! the CRL, signed again in the same transaction, and in OCSP). Resuming restores the state the
//! card was suspended from (`active` or `locked`) and releases the certificates: the CRLs of the
//! next CRL lifetime list them as `removeFromCRL`, OCSP answers good.
//!
//! Ways in: RA staff (`suspend_card` / `resume_card`), the holder blocking their own cards in the
//! Self-Service Portal (`self_block`, passcode checked through the counted passcode check), and
//! other flows in their own transaction (`suspend_holder_cards`, `apply_card_resume`).

use time::OffsetDateTime;
use vsc_core::change_request::ChangeAction;
use vsc_core::{Actor, AuditRecord, CardState, DomainError};
use vsc_proto::CardView;
use vsc_store::cards::{self, CardRow};
use vsc_store::{Conn, StoreError, certificates, holders, logins, users};

use super::change_requests::Outcome;
use super::passcode::{PasscodeCheck, passcode_refused};
use super::{Holder, Principal, Vsc, holder, views};
use crate::ServiceError;
use crate::notify::templates;

/// The longest suspension reason (as for revocations).
const MAX_REASON_CHARS: usize = 500;

/// The reason recorded when the holder blocks their own cards.
const SELF_BLOCK_REASON: &str = "blocked by the holder in the Self-Service Portal";

/// A suspension reason: required, trimmed, at most [`MAX_REASON_CHARS`] characters.
fn checked_reason(reason: &str) -> Result<&str, DomainError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(DomainError::invalid("reason", "a reason for the suspension is required"));
    }
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(DomainError::invalid("reason", "a suspension reason has at most 500 characters"));
    }
    Ok(reason)
}

fn stored_state(card: &CardRow) -> Result<CardState, ServiceError> {
    CardState::parse(&card.state).ok_or_else(|| StoreError::Corrupt(format!("card state {:?}", card.state)).into())
}

impl Vsc {
    /// Suspend one card inside the caller's transaction: state (remembering the one to restore),
    /// open sessions ended, certificates on hold, the `card.suspended` event. The caller signs the
    /// CRL (once for all its cards) and commits.
    async fn suspend_one(
        &self,
        tx: &mut Conn,
        actor: &Actor,
        card: &CardRow,
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<(), ServiceError> {
        let state = stored_state(card)?;
        state.suspend()?;
        if state.effective(super::ts(card.expires_at), now) == "expired" {
            return Err(DomainError::InvalidState("the card has expired: there is nothing to suspend".into()).into());
        }
        let at = now.unix_timestamp();
        let Some(from) = cards::suspend(tx, &card.id, at, reason).await? else {
            return Err(DomainError::InvalidState("the card changed meanwhile; look at it again".into()).into());
        };
        let sessions = logins::end_sessions_for_card(tx, &card.user_id, &card.id, at).await?;
        // Whoever is signed in to the holder's portal is signed out with the card.
        let portal_sessions = holders::end_sessions_for_user(tx, &card.user_id, at).await?;
        let held = certificates::hold_for_card(tx, &card.id, at).await?;
        self.audit(
            tx,
            AuditRecord {
                actor: actor.clone(),
                action: "card.suspended",
                org_id: Some(card.org_id.clone()),
                target: Some(format!("card:{}", card.serial)),
                detail: serde_json::json!({
                    "reason": reason,
                    "previous_state": from,
                    "sessions_ended": sessions.len(),
                    "portal_sessions_ended": portal_sessions,
                    "certificates_on_hold": held,
                })
                .to_string(),
            },
        )
        .await?;
        Ok(())
    }

    /// Email the holder of `card` that the RA suspended it (`resumed_to` `None`) or resumed it.
    async fn tell_holder(
        &self,
        tx: &mut Conn,
        card: &CardRow,
        resumed_to: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<(), ServiceError> {
        let user =
            users::by_id(tx, &card.user_id).await?.ok_or_else(|| StoreError::Corrupt("card without holder".into()))?;
        let mail = templates::card_suspension(
            &user.email,
            &format!("{} {}", user.forename, user.surname),
            &card.serial,
            now,
            resumed_to,
            &format!("{}/self-service/", self.config.public_url()),
        )
        .map_err(ServiceError::Startup)?;
        let kind = if resumed_to.is_some() { "card_resumed" } else { "card_suspended" };
        self.enqueue_email(tx, kind, &mail).await
    }

    /// RA: suspend an active or locked card of the caller's organisations, with a reason (409 in
    /// other states). Sessions end, certificates go on hold, the CRL is signed again and the holder
    /// is emailed, all in one transaction.
    pub async fn suspend_card(&self, who: &Principal, serial: &str, reason: &str) -> Result<CardView, ServiceError> {
        let reason = checked_reason(reason)?;
        let now = self.now();
        let mut tx = self.store.begin().await?;
        let card = self.visible_card(&mut tx, who, serial).await?;
        self.suspend_one(&mut tx, &who.actor(), &card, reason, now).await?;
        self.publish_crl(&mut tx, now).await?;
        self.tell_holder(&mut tx, &card, None, now).await?;
        let row = cards::by_id(&mut tx, &card.id).await?.ok_or_else(|| StoreError::Corrupt("card vanished".into()))?;
        let view = views::load_card(&mut tx, &row, now).await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.wake_outbox();
        Ok(view)
    }

    /// Suspend every active or locked card of holder `user_id` inside the caller's transaction
    /// (sessions ended, certificates on hold, each card audited as `card.suspended` by `actor`,
    /// ONE CRL signed when any card was suspended); returns the serials suspended. Sends no
    /// message: the caller tells whom it needs to, then commits and wakes the outbox.
    pub(crate) async fn suspend_holder_cards(
        &self,
        tx: &mut Conn,
        actor: Actor,
        user_id: &str,
        reason: &str,
    ) -> Result<Vec<String>, ServiceError> {
        let reason = checked_reason(reason)?;
        let now = self.now();
        let mut suspended = Vec::new();
        for card in cards::for_user(tx, user_id).await? {
            // Expired cards are left as they are: their certificates have lapsed anyway.
            let usable = matches!(CardState::parse(&card.state), Some(CardState::Active | CardState::Locked));
            if usable && card.expires_at > now.unix_timestamp() {
                self.suspend_one(tx, &actor, &card, reason, now).await?;
                suspended.push(card.serial);
            }
        }
        if !suspended.is_empty() {
            self.publish_crl(tx, now).await?;
        }
        Ok(suspended)
    }

    /// Resume a suspended card inside the caller's transaction: back to the state it was suspended
    /// from, certificates released (the CRL, signed again here, lists them as removeFromCRL), the
    /// `card.resumed` event and the holder's email. 409 unless the card is suspended. `card` is the
    /// row as read in this transaction (the update is conditional on it still being suspended).
    pub(crate) async fn apply_card_resume(
        &self,
        tx: &mut Conn,
        who: &Principal,
        card: &CardRow,
    ) -> Result<(), ServiceError> {
        let now = self.now();
        stored_state(card)?.resume(card.suspended_from.as_deref())?;
        let Some(restored) = cards::resume(tx, &card.id).await? else {
            return Err(DomainError::InvalidState("the card is no longer suspended".into()).into());
        };
        let released = certificates::release_for_card(tx, &card.id, now.unix_timestamp()).await?;
        self.publish_crl(tx, now).await?;
        self.audit(
            tx,
            AuditRecord {
                actor: who.actor(),
                action: "card.resumed",
                org_id: Some(card.org_id.clone()),
                target: Some(format!("card:{}", card.serial)),
                detail: serde_json::json!({
                    "previous_state": card.state,
                    "state": restored,
                    "suspended_at": card.suspended_at.map(super::ts),
                    "suspension_reason": card.suspended_reason,
                    "certificates_released": released,
                })
                .to_string(),
            },
        )
        .await?;
        self.tell_holder(tx, card, Some(&restored), now).await
    }

    /// RA: resume a suspended card of the caller's organisations (see [`Vsc::apply_card_resume`]),
    /// in its own transaction. The holder is enrolled, so under dual control it is a change
    /// request that a second staff member approves.
    pub async fn resume_card(&self, who: &Principal, serial: &str) -> Result<Outcome<CardView>, ServiceError> {
        let mut tx = self.store.begin().await?;
        let card = self.visible_card(&mut tx, who, serial).await?;
        stored_state(&card)?.resume(card.suspended_from.as_deref())?;
        let user = users::by_id(&mut tx, &card.user_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("card {} has no holder", card.serial)))?;
        if self.needs_approval(&mut tx, who, &user).await? {
            let payload = serde_json::json!({ "detail": { "card": card.serial, "reason": card.suspended_reason } });
            let request = self.request_change(&mut tx, who, &user, ChangeAction::Resume, &card.serial, payload).await?;
            tx.commit().await.map_err(StoreError::from)?;
            return Ok(Outcome::Requested(vec![request]));
        }
        self.apply_card_resume(&mut tx, who, &card).await?;
        let row = cards::by_id(&mut tx, &card.id).await?.ok_or_else(|| StoreError::Corrupt("card vanished".into()))?;
        let view = views::load_card(&mut tx, &row, self.now()).await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.wake_outbox();
        Ok(Outcome::Done(view))
    }

    /// The holder blocks their own cards: the passcode goes through the counted passcode check (a
    /// wrong one counts toward the lock), then every active or locked card of theirs is suspended
    /// (`holder.card_blocked`); returns the serials suspended.
    pub async fn self_block(&self, who: &Holder, passcode: &str) -> Result<Vec<String>, ServiceError> {
        let user = {
            let mut conn = self.store.conn().await?;
            users::by_id(&mut conn, &who.user_id)
                .await?
                .ok_or_else(|| ServiceError::Unauthenticated("no such holder".into()))?
        };
        match self.check_card_passcode_deferred(&user, passcode, "card_block").await? {
            PasscodeCheck::Right => {}
            PasscodeCheck::Wrong | PasscodeCheck::Refused => return Err(passcode_refused()),
        }
        let mut tx = self.store.begin().await?;
        // The right passcode's reserved attempt is cleared with the step it unlocks.
        holders::clear_passcode_failures(&mut tx, &user.id).await?;
        let actor = Actor::Holder(user.email.clone());
        let serials = self.suspend_holder_cards(&mut tx, actor, &user.id, SELF_BLOCK_REASON).await?;
        self.audit(
            &mut tx,
            holder::holder_event(&user, "holder.card_blocked", serde_json::json!({ "cards": serials })),
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(serials)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_required_and_bounded() {
        assert!(checked_reason("  ").is_err());
        assert_eq!(checked_reason(" lost phone ").ok(), Some("lost phone"));
        assert!(checked_reason(&"é".repeat(500)).is_ok());
        assert!(checked_reason(&"é".repeat(501)).is_err());
    }
}
