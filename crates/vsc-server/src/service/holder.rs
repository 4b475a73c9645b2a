//! Card holders in the Self-Service Portal: sign-in (passcode, then a push to the holder's
//! authenticator — service/portal_sign_in.rs — or else the SMS code), sessions,
//! the holder's own view, sign-out and changing security questions.

use time::Duration;
use vsc_core::enrolment::{self as rules};
use vsc_core::{Actor, AuditRecord, EmailAddress};
use vsc_crypto::{SecretToken, SystemRng, TokenHash};
use vsc_proto::{ChangeQuestionsRequest, HolderView, SessionView, SignInView};
use vsc_store::code_ledger::CodeChallenge;
use vsc_store::{Conn, StoreError, holders, organisations, users};

use super::enrolment::{code_hash, code_matches};
use super::passcode::{PasscodeCheck, passcode_refused};
use super::portal_sign_in::PushStart;
use super::second_factor::CodeTurn;
use super::verified_channels::{MOBILE_UNCONFIRMED, SmsFactor};
use super::{RequestOrigin, Vsc, views};
use crate::ServiceError;
use crate::notify::templates;

/// An email-verification link is valid this long.
const EMAIL_VERIFICATION_SECONDS: i64 = 24 * 60 * 60;

/// Why a confirmation link opened without the holder's session confirms nothing.
pub const SIGN_IN_TO_CONFIRM: &str =
    "sign in to the Self-Service Portal as the card holder, then open this confirmation link again";

const SIGN_IN_FAILED: &str =
    "the email or passcode is wrong, or your card is locked or not active; if it is locked, we have emailed you";

/// An audit event about a holder, by the holder.
pub(super) fn holder_event(user: &users::UserRow, action: &'static str, detail: serde_json::Value) -> AuditRecord {
    holder_event_of(&user.email, &user.org_id, &user.id, action, detail)
}

/// [`holder_event`] from the holder's email, organisation and id (as joined into another row).
pub(super) fn holder_event_of(
    email: &str,
    org_id: &str,
    user_id: &str,
    action: &'static str,
    detail: serde_json::Value,
) -> AuditRecord {
    AuditRecord {
        actor: Actor::Holder(email.to_string()),
        action,
        org_id: Some(org_id.to_string()),
        target: Some(format!("user:{user_id}")),
        detail: detail.to_string(),
    }
}

/// An authenticated card holder.
#[derive(Debug, Clone, PartialEq)]
pub struct Holder {
    /// User id.
    pub user_id: String,
}

impl Vsc {
    async fn audit_sign_in(
        &self,
        user: Option<&users::UserRow>,
        email: &str,
        action: &'static str,
        reason: &str,
    ) -> Result<(), ServiceError> {
        let mut tx = self.store.begin().await?;
        self.audit(
            &mut tx,
            AuditRecord {
                actor: Actor::Holder(email.to_string()),
                action,
                org_id: user.map(|u| u.org_id.clone()),
                target: user.map(|u| format!("user:{}", u.id)),
                detail: serde_json::json!({ "reason": reason }).to_string(),
            },
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }

    /// Portal sign-in, step 1. Wrong email and wrong passcode answer alike and take the same time
    /// (one Argon2id verification either way); repeated failures lock sign-in and email the holder.
    /// A holder with an active authenticator gets a push; otherwise an SMS code is sent.
    pub async fn sign_in(
        &self,
        email: &str,
        passcode: &str,
        origin: &RequestOrigin,
    ) -> Result<SignInView, ServiceError> {
        let now = self.now().unix_timestamp();
        let email_key = EmailAddress::parse("email", email).map(|e| e.key()).unwrap_or_default();
        let user = {
            let mut conn = self.store.conn().await?;
            if email_key.is_empty() { None } else { users::by_email_key(&mut conn, &email_key).await? }
        };
        let failed = || ServiceError::SignInFailed(SIGN_IN_FAILED.into());
        // Unknown email, wrong passcode, no active card, locked card: one Argon2id check and the
        // same answer. The passcode counts in the card's 3-strike ledger, as at card login.
        let Some(user) = user else {
            self.verify_secret(passcode, None).await?;
            self.audit_sign_in(None, email, "holder.sign_in_failed", "unknown email").await?;
            return Err(failed());
        };
        match self.check_card_passcode_deferred(&user, passcode, "portal_sign_in").await? {
            PasscodeCheck::Right => {}
            PasscodeCheck::Wrong | PasscodeCheck::Refused => return Err(failed()),
        }
        let mut tx = self.store.begin().await?;
        // The right passcode's reserved attempt is cleared with the sign-in it starts.
        holders::clear_passcode_failures(&mut tx, &user.id).await?;
        let throttled = match self.start_sign_in_push(&mut tx, &user, origin, now).await? {
            PushStart::Sent(sent) => return self.push_sent(tx, &user, sent).await,
            PushStart::NoDevices => false,
            PushStart::Throttled => true,
        };
        // An SMS code goes only to a confirmed number.
        let mobile = match self.sms_factor(&mut tx, &user).await? {
            SmsFactor::Confirmed(mobile) => mobile,
            _ if throttled => {
                tx.commit().await.map_err(StoreError::from)?;
                return Err(ServiceError::RateLimited(
                    "too many sign-in requests to your phone were not answered; wait a few minutes and try again"
                        .into(),
                ));
            }
            SmsFactor::Unconfirmed(_) => {
                let detail = serde_json::json!({ "reason": "mobile number not confirmed; no code sent" });
                self.audit(&mut tx, holder_event(&user, "holder.sign_in_refused", detail)).await?;
                tx.commit().await.map_err(StoreError::from)?;
                return Err(vsc_core::DomainError::InvalidState(MOBILE_UNCONFIRMED.into()).into());
            }
            SmsFactor::Missing => {
                tx.commit().await.map_err(StoreError::from)?;
                return Err(vsc_core::DomainError::InvalidState(
                    "no second factor is registered; contact your Registration Authority (RA)".into(),
                )
                .into());
            }
        };
        let token = SecretToken::generate("vsi");
        let scope = hex::encode(token.hash().0);
        let code = rules::one_time_code(&mut SystemRng);
        holders::create_sign_in(
            &mut tx,
            &token.hash().0,
            &user.id,
            &code_hash(&scope, &code),
            now,
            now + rules::CODE_TTL_SECONDS,
        )
        .await?;
        self.enqueue_sms(&mut tx, "sign_in_code", &templates::sms_code(&mobile, &code)).await?;
        self.audit(
            &mut tx,
            holder_event(
                &user,
                "holder.sign_in_passcode_ok",
                serde_json::json!({ "second_factor": "sms", "push_throttled": throttled }),
            ),
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.wake_outbox();
        Ok(SignInView {
            sign_in: token.expose().to_string(),
            mobile_hint: rules::mobile_hint(&mobile),
            second_factor: Some("sms".into()),
            number: None,
        })
    }

    /// Portal sign-in, step 2: the SMS code (or, for a push sign-in, the authenticator's app
    /// code) → a session.
    pub async fn verify_sign_in(&self, sign_in: &str, code: &str) -> Result<SessionView, ServiceError> {
        let now = self.now().unix_timestamp();
        let hash = TokenHash::of(sign_in);
        let mut tx = self.store.begin().await?;
        let expired = || ServiceError::SignInFailed("this sign-in has expired; start again".into());
        let s = holders::sign_in(&mut tx, &hash.0).await?.ok_or_else(expired)?;
        let Some(user_id) = s.user_id.clone() else { return Err(expired()) };
        if s.completed_at.is_some() || s.expires_at <= now || s.attempts >= rules::CODE_MAX_ATTEMPTS {
            return Err(expired());
        }
        if let Some(login_id) = &s.login_id {
            let user = users::by_id(&mut tx, &user_id).await?.ok_or_else(expired)?;
            return self.verify_app_code(tx, &hash, &user, login_id, code).await;
        }
        let user = users::by_id(&mut tx, &user_id).await?.ok_or_else(expired)?;
        let turn = self.reserve_code_check(&mut tx, &user.id, CodeChallenge::SignIn(&hash.0)).await?;
        let ok =
            matches!(turn, CodeTurn::Check { .. }) && code_matches(&hex::encode(hash.0), code, s.code_hash.as_deref());
        if !ok {
            let wrong = self.settle_wrong_code(&mut tx, &user, turn, "portal_sign_in").await?;
            let mut detail = wrong.detail();
            if let Some(map) = detail.as_object_mut() {
                map.insert("reason".into(), "wrong code".into());
            }
            self.audit(&mut tx, holder_event(&user, "holder.sign_in_failed", detail)).await?;
            tx.commit().await.map_err(StoreError::from)?;
            self.wake_outbox();
            return Err(wrong.error("start again"));
        }
        self.settle_right_code(&mut tx, &user.id).await?;
        if !holders::complete_sign_in(&mut tx, &hash.0, now).await? {
            return Err(expired());
        }
        let session = self.open_session(&mut tx, &user.id).await?;
        self.audit(&mut tx, holder_event(&user, "holder.signed_in", serde_json::json!({ "method": "sms" }))).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(session)
    }

    /// The holder's own details, cards and devices.
    pub async fn holder_view(&self, holder: &Holder) -> Result<HolderView, ServiceError> {
        let mut conn = self.store.conn().await?;
        let user = users::by_id(&mut conn, &holder.user_id)
            .await?
            .ok_or_else(|| ServiceError::Unauthenticated("no such holder".into()))?;
        let org = organisations::by_id(&mut conn, &user.org_id).await?.map(|o| o.name).unwrap_or_default();
        let directory = holders::directory_accounts(&mut conn, &user.id).await?;
        let devices = vsc_store::devices::for_user(&mut conn, &user.id).await?;
        let view = views::load_user(&mut conn, user, self.now()).await?;
        Ok(HolderView {
            id: view.id,
            forename: view.forename,
            surname: view.surname,
            display_name: view.display_name,
            email: view.email,
            mobile: view.mobile,
            organisation: org,
            cards: view.cards,
            email_verified: view.email_verified,
            mobile_verified: view.mobile_verified,
            devices: devices.iter().map(super::devices::device_view).collect(),
            directory_accounts: directory
                .into_iter()
                .map(|a| serde_json::json!({ "name": a.name, "state": a.state }))
                .collect(),
        })
    }

    /// Replace the security questions after re-checking the passcode.
    pub async fn change_questions(&self, holder: &Holder, req: &ChangeQuestionsRequest) -> Result<(), ServiceError> {
        let answers = rules::check_answers(
            "answers",
            &req.answers.iter().map(|a| (a.question, a.answer.clone())).collect::<Vec<_>>(),
        )?;
        let (user, catalogue) = {
            let mut conn = self.store.conn().await?;
            let user = users::by_id(&mut conn, &holder.user_id)
                .await?
                .ok_or_else(|| ServiceError::Unauthenticated("no such holder".into()))?;
            (user, holders::questions(&mut conn).await?)
        };
        if let Some((q, _)) = answers.iter().find(|(q, _)| !catalogue.iter().any(|c| c.id == *q)) {
            return Err(
                vsc_core::DomainError::invalid("answers", format!("question {q} is not in the catalogue")).into()
            );
        }
        // The passcode counts in the card's 3-strike ledger, as at every other door.
        match self.check_card_passcode(&user, &req.passcode, "questions_change").await? {
            PasscodeCheck::Right => {}
            PasscodeCheck::Wrong | PasscodeCheck::Refused => return Err(passcode_refused()),
        }
        let mut hashed = Vec::with_capacity(answers.len());
        for (q, a) in &answers {
            hashed.push((*q, self.hash_secret(a).await?));
        }
        let mut tx = self.store.begin().await?;
        holders::set_answers(&mut tx, &user.id, &hashed).await?;
        self.audit(
            &mut tx,
            AuditRecord {
                actor: Actor::Holder(user.email.clone()),
                action: "holder.questions_changed",
                org_id: Some(user.org_id.clone()),
                target: Some(format!("user:{}", user.id)),
                detail: serde_json::json!({ "questions": answers.iter().map(|(q, _)| q).collect::<Vec<_>>() })
                    .to_string(),
            },
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }

    /// Inside the caller's transaction: a new single-use link that confirms `email` as the address
    /// of `user_id` (valid 24 hours), emailed to that address. The caller audits and wakes the
    /// outbox after committing.
    pub(crate) async fn queue_email_verification(
        &self,
        tx: &mut Conn,
        user_id: &str,
        holder_name: &str,
        email: &str,
    ) -> Result<(), ServiceError> {
        let now = self.now();
        let token = SecretToken::generate("vsv");
        let expires = now + Duration::seconds(EMAIL_VERIFICATION_SECONDS);
        holders::create_email_verification(
            tx,
            &token.hash().0,
            user_id,
            email,
            now.unix_timestamp(),
            expires.unix_timestamp(),
        )
        .await?;
        let link = format!("{}/self-service/verify-email/{}", self.config.public_url(), token.expose());
        let mail = templates::email_verification(email, holder_name, &link, expires).map_err(ServiceError::Startup)?;
        self.enqueue_email(tx, "email_verification", &mail).await
    }

    /// Send (again) a link that confirms the holder's email address; at most once a minute.
    pub async fn send_email_verification(&self, holder: &Holder) -> Result<(), ServiceError> {
        let now = self.now();
        let mut tx = self.store.begin().await?;
        let user = users::by_id(&mut tx, &holder.user_id)
            .await?
            .ok_or_else(|| ServiceError::Unauthenticated("no such holder".into()))?;
        if let Some(last) = holders::last_email_verification_at(&mut tx, &user.id).await? {
            let wait = last + rules::CODE_RESEND_SECONDS - now.unix_timestamp();
            if wait > 0 {
                return Err(ServiceError::RateLimited(format!(
                    "a verification email was just sent; you can ask for another in {wait} s"
                )));
            }
        }
        let name = format!("{} {}", user.forename, user.surname);
        self.queue_email_verification(&mut tx, &user.id, &name, &user.email).await?;
        self.audit(
            &mut tx,
            holder_event(&user, "holder.email_verification_sent", serde_json::json!({ "email": user.email })),
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.wake_outbox();
        Ok(())
    }

    /// Confirm an email address from its single-use link, opened by the signed-in holder it was
    /// sent for; returns the address. The session matters: whoever reads the mailbox (say, an
    /// address an RA typed) proves nothing about the holder until the holder, signed in with
    /// passcode and second factor, opens the link.
    pub async fn verify_email(&self, token: &str, holder: Option<&Holder>) -> Result<String, ServiceError> {
        let now = self.now().unix_timestamp();
        let presented = TokenHash::of(token);
        let invalid =
            || ServiceError::not_found("token", "this confirmation link is not valid; check that you copied all of it");
        let mut tx = self.store.begin().await?;
        let (user_id, email, expires_at, used_at, stored) =
            holders::email_verification(&mut tx, &presented.0).await?.ok_or_else(invalid)?;
        if !TokenHash::from_slice(&stored).is_some_and(|s| s.matches(&presented)) {
            return Err(invalid());
        }
        if holder.is_none_or(|h| h.user_id != user_id) {
            return Err(ServiceError::Unauthenticated(SIGN_IN_TO_CONFIRM.into()));
        }
        if used_at.is_some() {
            return Err(ServiceError::LinkUsed("this confirmation link has already been used".into()));
        }
        if expires_at <= now {
            return Err(ServiceError::LinkExpired(
                "this confirmation link has expired; ask for a new one in the portal".into(),
            ));
        }
        if !holders::use_email_verification(&mut tx, &presented.0, now).await? {
            return Err(ServiceError::LinkUsed("this confirmation link has already been used".into()));
        }
        if !holders::set_email_verified(&mut tx, &user_id, &email, now).await? {
            return Err(ServiceError::LinkExpired(
                "your email address has changed since this link was sent; ask for a new one".into(),
            ));
        }
        let user = users::by_id(&mut tx, &user_id).await?.ok_or_else(invalid)?;
        self.audit(
            &mut tx,
            AuditRecord {
                actor: Actor::Holder(email.clone()),
                action: "holder.email_verified",
                org_id: Some(user.org_id.clone()),
                target: Some(format!("user:{}", user.id)),
                detail: serde_json::json!({ "email": email }).to_string(),
            },
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(email)
    }

    /// The security-question catalogue.
    pub async fn questions(&self) -> Result<Vec<vsc_proto::QuestionView>, ServiceError> {
        let mut conn = self.store.conn().await?;
        Ok(holders::questions(&mut conn)
            .await?
            .into_iter()
            .map(|q| vsc_proto::QuestionView { id: q.id, text: q.text })
            .collect())
    }
}
