//! The card passcode check with its lockout: 3 consecutive wrong passcodes lock the holder's
//! cards. Each check reserves its attempt atomically before Argon2id runs, so concurrent wrong
//! attempts are counted exactly, and no check runs once 3 are counted.

use vsc_core::AuditRecord;
use vsc_store::{Conn, StoreError, cards, channels, holders, users};

use super::hash_pool::{self, HashRefusal};
use super::{Vsc, ts};
use crate::ServiceError;
use crate::notify::templates::{self, LockCause};

/// The outcome of a card passcode check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PasscodeCheck {
    /// Right passcode; the failure count is cleared (by the caller of
    /// [`Vsc::check_card_passcode_deferred`], in the transaction of the step it unlocks).
    Right,
    /// Wrong passcode (counted; the third locks the cards).
    Wrong,
    /// No check ran: the holder has no usable card (locked, or not active).
    Refused,
}

impl Vsc {
    /// Verify a secret against a stored Argon2id hash on the hash pool (a dummy verification of
    /// the same cost when there is no hash). Refused at once with [`ServiceError::Busy`] when the
    /// pool's queue is full.
    pub(crate) async fn verify_secret(&self, presented: &str, stored: Option<String>) -> Result<bool, ServiceError> {
        self.verify_secret_in(self.hash_slot()?, presented, stored).await
    }

    /// Argon2id of a new secret (passcode, answer, PIN, staff password) on the hash pool; refused
    /// at once with [`ServiceError::Busy`] when its queue is full.
    pub(crate) async fn hash_secret(&self, secret: &str) -> Result<String, ServiceError> {
        let secret = secret.to_string();
        Ok(self.hash_pool.run(move |memory| vsc_crypto::secret::hash_in(memory, &secret)).await.map_err(refused)??)
    }

    /// A place in the hash pool's queue, taken before a check reserves a counted attempt: a
    /// check refused for load must not use up one of the holder's attempts.
    pub(crate) fn hash_slot(&self) -> Result<hash_pool::HashSlot, ServiceError> {
        self.hash_pool.admit().map_err(refused)
    }

    /// [`Vsc::verify_secret`] in a place taken earlier with [`Vsc::hash_slot`].
    pub(crate) async fn verify_secret_in(
        &self,
        slot: hash_pool::HashSlot,
        presented: &str,
        stored: Option<String>,
    ) -> Result<bool, ServiceError> {
        let presented = presented.to_string();
        slot.run(move |memory| match stored {
            Some(h) => vsc_crypto::secret::verify_in(memory, &presented, &h),
            None => {
                vsc_crypto::secret::verify_dummy_in(memory, &presented);
                false
            }
        })
        .await
        .map_err(refused)
    }

    /// Check `user`'s card passcode for `purpose` (e.g. `card_login`, `device_registration`),
    /// counting failures and locking the holder's cards at the third. Audits every outcome.
    pub(crate) async fn check_card_passcode(
        &self,
        user: &users::UserRow,
        passcode: &str,
        purpose: &'static str,
    ) -> Result<PasscodeCheck, ServiceError> {
        let check = self.check_card_passcode_deferred(user, passcode, purpose).await?;
        if check == PasscodeCheck::Right {
            let mut conn = self.store.writer().await?;
            holders::clear_passcode_failures(&mut conn, &user.id).await?;
        }
        Ok(check)
    }

    /// [`Vsc::check_card_passcode`], except that a right passcode's reserved attempt stays
    /// counted: the caller clears it (`holders::clear_passcode_failures`) in the transaction of
    /// the step it unlocks, and commits that transaction whatever the step decides.
    pub(crate) async fn check_card_passcode_deferred(
        &self,
        user: &users::UserRow,
        passcode: &str,
        purpose: &'static str,
    ) -> Result<PasscodeCheck, ServiceError> {
        let now = self.now();
        let slot = self.hash_slot()?;
        let reserved = {
            let mut conn = self.store.writer().await?;
            holders::reserve_passcode_attempt(&mut conn, &user.id, now.unix_timestamp()).await?
        };
        let Some((attempt, stored)) = reserved else {
            // The same work as a check, so a locked card answers in the time a wrong passcode does.
            self.verify_secret_in(slot, passcode, None).await?;
            let mut tx = self.store.begin().await?;
            self.audit(&mut tx, passcode_event(user, "card.passcode_refused", purpose, serde_json::json!({}))).await?;
            tx.commit().await.map_err(StoreError::from)?;
            return Ok(PasscodeCheck::Refused);
        };
        let right = self.verify_secret_in(slot, passcode, Some(stored)).await?;
        if right {
            // No audit: a right passcode is audited by the step it unlocks.
            return Ok(PasscodeCheck::Right);
        }
        let mut tx = self.store.begin().await?;
        self.audit(
            &mut tx,
            passcode_event(user, "card.passcode_wrong", purpose, serde_json::json!({ "failures": attempt })),
        )
        .await?;
        if attempt >= holders::CARD_PASSCODE_MAX_FAILURES {
            let detail = serde_json::json!({ "purpose": purpose });
            self.lock_holder_cards(&mut tx, user, LockCause::Passcode, "card.locked", detail).await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        self.wake_outbox();
        Ok(PasscodeCheck::Wrong)
    }

    /// Lock the holder's active cards (in the caller's transaction) for `cause`: every portal and
    /// card session ends, the holder is emailed — with a reset link after wrong passcodes when the
    /// address is confirmed — and `action` is audited with `detail` plus what was done. Nothing
    /// happens when no card is active.
    pub(crate) async fn lock_holder_cards(
        &self,
        tx: &mut Conn,
        user: &users::UserRow,
        cause: LockCause,
        action: &'static str,
        mut detail: serde_json::Value,
    ) -> Result<Vec<String>, ServiceError> {
        let now = self.now().unix_timestamp();
        let locked = cards::lock_active_for_user(tx, &user.id).await?;
        if locked.is_empty() {
            return Ok(locked);
        }
        let sessions = self.end_holder_sessions(tx, &user.id, now).await?;
        // The lock email carries a reset link (choosing a new passcode unlocks the card), but only
        // to a confirmed address, and not after wrong codes: a reset needs a code, and the codes
        // are refused until the ledger's window ends or an RA unlocks.
        let confirmed = channels::verified(tx, &user.id).await?.email();
        let link = if confirmed && cause == LockCause::Passcode {
            Some(self.issue_reset_link(tx, &user.id, "locked", false, now).await?.0)
        } else {
            None
        };
        let mail = templates::card_locked(
            &user.email,
            &format!("{} {}", user.forename, user.surname),
            ts(now),
            link.as_deref(),
            cause,
        )
        .map_err(ServiceError::Startup)?;
        self.enqueue_email(tx, "card_locked", &mail).await?;
        if let Some(map) = detail.as_object_mut() {
            map.insert("cards".into(), serde_json::json!(locked));
            map.insert("reset_link_sent".into(), link.is_some().into());
            map.insert("sessions_ended".into(), sessions.detail());
        }
        self.audit(tx, super::holder::holder_event(user, action, detail)).await?;
        Ok(locked)
    }
}

/// The one answer of a door that re-checks the passcode (`field` passcode, 422) when the check
/// failed or could not run: a locked card answers as a wrong passcode does.
pub(crate) fn passcode_refused() -> ServiceError {
    ServiceError::wrong_secret(
        "passcode",
        "the passcode is wrong, or your card is locked or not active; 3 wrong passcodes in a row lock the card",
    )
}

/// Seconds a client refused for load is asked to wait (the queue drains in well under that).
const BUSY_RETRY_SECONDS: u64 = 1;

fn refused(r: HashRefusal) -> ServiceError {
    match r {
        HashRefusal::Busy => ServiceError::Busy(BUSY_RETRY_SECONDS),
        HashRefusal::Stopped => ServiceError::Startup("the hashing workers have stopped".into()),
    }
}

fn passcode_event(
    user: &users::UserRow,
    action: &'static str,
    purpose: &'static str,
    mut detail: serde_json::Value,
) -> AuditRecord {
    if let Some(map) = detail.as_object_mut() {
        map.insert("purpose".into(), purpose.into());
    }
    super::holder::holder_event(user, action, detail)
}
