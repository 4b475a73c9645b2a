//! Verified channels: links and codes go only to an email address and a mobile number the holder
//! has confirmed. Email: enrolment from the emailed link or the confirmation link confirms an
//! address; an RA change leaves the new one unconfirmed, and while it is, RA unlock, adding a
//! device and renewal are refused (409) and no reset link is sent. Mobile: a number counts as a
//! second factor only once the holder has proved they receive SMS there: the enrolment code does
//! it, and after an RA change the holder is asked at their next portal sign-in for a code sent to
//! the new number (6 digits, single-use, 10 minutes, 5 attempts counted before each check, resent
//! at most once a minute). SMS second factors (portal sign-in, passcode reset) go only to a
//! confirmed number.

use vsc_core::DomainError;
use vsc_core::enrolment::{self as rules};
use vsc_crypto::SystemRng;
use vsc_proto::CodeSent;
use vsc_store::{Conn, StoreError, channels, users};

use super::enrolment::{code_hash, code_matches};
use super::holder::holder_event;
use super::second_factor::CodeTurn;
use super::{Holder, Vsc, ts};
use crate::ServiceError;
use crate::notify::templates;

/// Why no SMS goes to a number the holder has not confirmed.
pub(crate) const MOBILE_UNCONFIRMED: &str = "your mobile number was changed and is not confirmed yet, so no code can be \
                                             sent to it; contact your Registration Authority (RA)";

/// Why an RA action that emails the holder a link, or certifies their identity, is refused.
pub(crate) const EMAIL_UNCONFIRMED_RA: &str = "the holder's email address is not confirmed yet; ask them to open the \
                                               confirmation link emailed to it (they can ask for a new one in the \
                                               Self-Service Portal), then try again";

/// Why a holder is not emailed a device code.
pub(crate) const EMAIL_UNCONFIRMED_HOLDER: &str = "your email address is not confirmed yet, so no code can be emailed \
                                                   to it; open the confirmation link we sent you, or ask for a new one \
                                                   on the home page, then try again";

/// Why a card is not renewed.
pub(crate) const EMAIL_UNCONFIRMED_RENEWAL: &str = "the holder's email address is not confirmed yet, and a renewed \
                                                    certificate certifies only a confirmed identity; ask them to open \
                                                    the confirmation link emailed to it, then renew";

/// Where an SMS second factor may go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SmsFactor {
    /// The holder's confirmed mobile number.
    Confirmed(String),
    /// The holder's number, not confirmed yet: nothing but its confirmation code goes there.
    Unconfirmed(String),
    /// No mobile number on record.
    Missing,
}

/// The scope binding a mobile code to its holder and number.
fn mobile_scope(user_id: &str, mobile: &str) -> String {
    format!("mobile:{user_id}:{mobile}")
}

impl Vsc {
    /// Refuse (409, `why`) unless `user_id`'s current email address is confirmed.
    pub(crate) async fn require_confirmed_email(
        &self,
        conn: &mut Conn,
        user_id: &str,
        why: &str,
    ) -> Result<(), ServiceError> {
        if channels::verified(conn, user_id).await?.email() {
            return Ok(());
        }
        Err(DomainError::InvalidState(why.into()).into())
    }

    /// Where an SMS second factor for `user` may go (in the caller's connection or transaction).
    pub(crate) async fn sms_factor(&self, conn: &mut Conn, user: &users::UserRow) -> Result<SmsFactor, ServiceError> {
        let Some(mobile) = user.mobile.clone() else { return Ok(SmsFactor::Missing) };
        Ok(if channels::verified(conn, &user.id).await?.mobile() {
            SmsFactor::Confirmed(mobile)
        } else {
            SmsFactor::Unconfirmed(mobile)
        })
    }

    /// Send a code confirming the holder's mobile number (which must be on record and not yet
    /// confirmed); a new code replaces the previous one, at most once a minute.
    pub async fn send_mobile_verification(&self, holder: &Holder) -> Result<CodeSent, ServiceError> {
        let now = self.now().unix_timestamp();
        let mut tx = self.store.begin().await?;
        let user = users::by_id(&mut tx, &holder.user_id)
            .await?
            .ok_or_else(|| ServiceError::Unauthenticated("no such holder".into()))?;
        let mobile = match self.sms_factor(&mut tx, &user).await? {
            SmsFactor::Unconfirmed(mobile) => mobile,
            SmsFactor::Confirmed(_) => {
                return Err(DomainError::InvalidState("your mobile number is already confirmed".into()).into());
            }
            SmsFactor::Missing => {
                return Err(DomainError::InvalidState(
                    "no mobile number is registered; contact your Registration Authority (RA)".into(),
                )
                .into());
            }
        };
        if let Some(last) = channels::pending_mobile_code(&mut tx, &user.id).await? {
            let wait = last.sent_at + rules::CODE_RESEND_SECONDS - now;
            if wait > 0 {
                return Err(ServiceError::RateLimited(format!(
                    "a code was just sent; you can ask for another in {wait} s"
                )));
            }
        }
        let code = rules::one_time_code(&mut SystemRng);
        let expires = now + rules::CODE_TTL_SECONDS;
        let hash = code_hash(&mobile_scope(&user.id, &mobile), &code);
        channels::save_mobile_code(&mut tx, &user.id, &mobile, &hash, now, expires).await?;
        self.enqueue_sms(&mut tx, "mobile_verification_code", &templates::sms_code(&mobile, &code)).await?;
        let detail = serde_json::json!({ "mobile": mobile });
        self.audit(&mut tx, holder_event(&user, "holder.mobile_verification_sent", detail)).await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.wake_outbox();
        Ok(CodeSent { status: "code_sent".into(), mobile_hint: rules::mobile_hint(&mobile), expires_at: ts(expires) })
    }

    /// Confirm the holder's mobile number with the code sent to it. Each attempt is counted
    /// before it is checked; the fifth wrong one voids the code. Audited `holder.mobile_verified`.
    pub async fn verify_mobile(&self, holder: &Holder, code: &str) -> Result<(), ServiceError> {
        let now = self.now().unix_timestamp();
        let mut tx = self.store.begin().await?;
        let user = users::by_id(&mut tx, &holder.user_id)
            .await?
            .ok_or_else(|| ServiceError::Unauthenticated("no such holder".into()))?;
        let Some(sent) =
            channels::reserve_mobile_code_attempt(&mut tx, &user.id, now, rules::CODE_MAX_ATTEMPTS).await?
        else {
            let message = if channels::verified(&mut tx, &user.id).await?.mobile() {
                "your mobile number is already confirmed"
            } else if channels::pending_mobile_code(&mut tx, &user.id).await?.is_some() {
                "this code is no longer valid; ask for a new code"
            } else {
                "ask for a code first"
            };
            return Err(DomainError::InvalidState(message.into()).into());
        };
        let turn = self.reserve_holder_code(&mut tx, &user.id, sent.attempts).await?;
        let right = matches!(turn, CodeTurn::Check { .. })
            && code_matches(&mobile_scope(&user.id, &sent.mobile), code, Some(&sent.code_hash));
        if !right || user.mobile.as_deref() != Some(sent.mobile.as_str()) {
            let wrong = self.settle_wrong_code(&mut tx, &user, turn, "mobile_verification").await?;
            let mut detail = wrong.detail();
            if let Some(map) = detail.as_object_mut() {
                map.insert("reason".into(), "wrong code".into());
            }
            self.audit(&mut tx, holder_event(&user, "holder.mobile_verification_failed", detail)).await?;
            tx.commit().await.map_err(StoreError::from)?;
            self.wake_outbox();
            return Err(wrong.error("it is now void; ask for a new code"));
        }
        self.settle_right_code(&mut tx, &user.id).await?;
        channels::spend_mobile_code(&mut tx, &user.id).await?;
        if !channels::set_mobile_verified(&mut tx, &user.id, &sent.mobile, now).await? {
            return Err(DomainError::InvalidState("your mobile number has changed; ask for a new code".into()).into());
        }
        let detail = serde_json::json!({ "mobile": sent.mobile });
        self.audit(&mut tx, holder_event(&user, "holder.mobile_verified", detail)).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }

    /// Whether the holder has a mobile number still to confirm (the portal asks after sign-in).
    pub async fn mobile_needs_verification(&self, holder: &Holder) -> Result<bool, ServiceError> {
        let mut conn = self.store.conn().await?;
        let user = users::by_id(&mut conn, &holder.user_id)
            .await?
            .ok_or_else(|| ServiceError::Unauthenticated("no such holder".into()))?;
        Ok(matches!(self.sms_factor(&mut conn, &user).await?, SmsFactor::Unconfirmed(_)))
    }
}
