//! Card holders in the Self-Service Portal: sign-in (passcode, then a push to the holder's
//! authenticator — service/portal_sign_in.rs — or else the SMS code), sessions,
//! the holder's own view, sign-out and changing security questions.

use time::Duration;
use vsc_core::enrolment::{self as rules};
use vsc_core::{Actor, AuditRecord, EmailAddress};
use vsc_crypto::{SecretToken, SystemRng, TokenHash};
use vsc_proto::{ChangeQuestionsRequest, HolderView, SessionView, SignInView};
use vsc_store::{Conn, StoreError, holders, organisations, users};

use super::enrolment::code_hash;
use super::portal_sign_in::PushStart;
use super::verified_channels::{MOBILE_UNCONFIRMED, SmsFactor};
use super::{RequestOrigin, Vsc, new_id, ts, views};
use crate::ServiceError;
use crate::notify::templates;

/// An email-verification link is valid this long.
const EMAIL_VERIFICATION_SECONDS: i64 = 24 * 60 * 60;

/// Why a confirmation link opened without the holder's session confirms nothing.
pub const SIGN_IN_TO_CONFIRM: &str =
    "sign in to the Self-Service Portal as the card holder, then open this confirmation link again";

const SIGN_IN_FAILED: &str = "the email or passcode is wrong, or sign-in is locked for a while after repeated failures";

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
    /// Open a holder session (inside the caller's transaction).
    pub(crate) async fn open_session(&self, conn: &mut Conn, user_id: &str) -> Result<SessionView, ServiceError> {
        let now = self.now();
        let expires = now + Duration::seconds(rules::SESSION_SECONDS);
        let token = SecretToken::generate("vss");
        holders::create_session(
            conn,
            &new_id(),
            &token.hash().0,
            user_id,
            now.unix_timestamp(),
            expires.unix_timestamp(),
        )
        .await?;
        Ok(SessionView { session: token.expose().to_string(), expires_at: expires })
    }

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
        let (user, creds) = {
            let mut conn = self.store.conn().await?;
            let user = if email_key.is_empty() { None } else { users::by_email_key(&mut conn, &email_key).await? };
            let creds = match &user {
                Some(u) => holders::credentials(&mut conn, &u.id).await?,
                None => None,
            };
            (user, creds)
        };
        let presented = passcode.to_string();
        let stored = creds.as_ref().map(|c| c.passcode_hash.clone());
        let matches = tokio::task::spawn_blocking(move || match stored {
            Some(h) => vsc_crypto::secret::verify(&presented, &h),
            None => {
                vsc_crypto::secret::verify_dummy(&presented);
                false
            }
        })
        .await
        .map_err(|e| ServiceError::Startup(format!("verification task failed: {e}")))?;

        let (Some(user), Some(creds)) = (user, creds) else {
            self.audit_sign_in(None, email, "holder.sign_in_failed", "unknown email or not enrolled").await?;
            return Err(ServiceError::SignInFailed(SIGN_IN_FAILED.into()));
        };
        if creds.sign_in_locked_until.is_some_and(|t| t > now) {
            self.audit_sign_in(Some(&user), email, "holder.sign_in_failed", "locked").await?;
            return Err(ServiceError::SignInFailed(SIGN_IN_FAILED.into()));
        }
        let mut tx = self.store.begin().await?;
        if !matches {
            let failures = holders::count_sign_in_failure(&mut tx, &user.id).await?;
            let mut reason = "wrong passcode";
            if failures >= rules::SIGN_IN_MAX_FAILURES {
                let until = now + rules::SIGN_IN_LOCK_SECONDS;
                holders::lock_sign_in(&mut tx, &user.id, until).await?;
                let mail = templates::portal_locked(
                    &user.email,
                    &format!("{} {}", user.forename, user.surname),
                    ts(until),
                    &format!("{}/self-service/", self.config.public_url()),
                )
                .map_err(ServiceError::Startup)?;
                self.enqueue_email(&mut tx, "portal_locked", &mail).await?;
                reason = "wrong passcode; sign-in locked";
            }
            self.audit(
                &mut tx,
                holder_event(
                    &user,
                    "holder.sign_in_failed",
                    serde_json::json!({ "reason": reason, "failures": failures }),
                ),
            )
            .await?;
            tx.commit().await.map_err(StoreError::from)?;
            self.wake_outbox();
            return Err(ServiceError::SignInFailed(SIGN_IN_FAILED.into()));
        }
        holders::reset_sign_in_failures(&mut tx, &user.id).await?;
        let throttled = match self.start_sign_in_push(&mut tx, &user, origin, now).await? {
            PushStart::Sent(sent) => return self.push_sent(tx, &user, sent).await,
            PushStart::NoDevices => false,
            PushStart::Throttled => true,
        };
        // An SMS code goes only to a confirmed number.
        let mobile = match self.sms_factor(&mut tx, &user).await? {
            SmsFactor::Confirmed(mobile) => mobile,
            _ if throttled => {
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
        let ok = match (rules::clean_code(code), &s.code_hash) {
            (Some(c), Some(stored)) => {
                let presented = code_hash(&hex::encode(hash.0), &c);
                TokenHash::from_slice(stored).zip(TokenHash::from_slice(&presented)).is_some_and(|(a, b)| a.matches(&b))
            }
            _ => false,
        };
        let user = users::by_id(&mut tx, &user_id).await?.ok_or_else(expired)?;
        if !ok {
            let attempts = holders::count_wrong_sign_in_code(&mut tx, &hash.0).await?;
            self.audit(
                &mut tx,
                holder_event(
                    &user,
                    "holder.sign_in_failed",
                    serde_json::json!({ "reason": "wrong code", "attempts": attempts }),
                ),
            )
            .await?;
            tx.commit().await.map_err(StoreError::from)?;
            let left = rules::CODE_MAX_ATTEMPTS - attempts;
            return Err(vsc_core::DomainError::invalid(
                "code",
                if left > 0 {
                    format!("the code is wrong; {left} attempt(s) left")
                } else {
                    "the code is wrong; start again".into()
                },
            )
            .into());
        }
        if !holders::complete_sign_in(&mut tx, &hash.0, now).await? {
            return Err(expired());
        }
        let session = self.open_session(&mut tx, &user.id).await?;
        self.audit(&mut tx, holder_event(&user, "holder.signed_in", serde_json::json!({ "method": "sms" }))).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(session)
    }

    /// The holder of a live session token.
    pub async fn holder_session(&self, token: &str) -> Result<Holder, ServiceError> {
        let presented = TokenHash::of(token);
        let mut conn = self.store.conn().await?;
        let unauth = || ServiceError::Unauthenticated("sign in to the Self-Service Portal".into());
        let (user_id, stored) =
            holders::session(&mut conn, &presented.0, self.now().unix_timestamp()).await?.ok_or_else(unauth)?;
        if !TokenHash::from_slice(&stored).is_some_and(|s| s.matches(&presented)) {
            return Err(unauth());
        }
        Ok(Holder { user_id })
    }

    /// End a session.
    pub async fn sign_out(&self, token: &str) -> Result<(), ServiceError> {
        let mut conn = self.store.conn().await?;
        holders::end_session(&mut conn, &TokenHash::of(token).0, self.now().unix_timestamp()).await?;
        Ok(())
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
        let (user, creds, catalogue) = {
            let mut conn = self.store.conn().await?;
            let user = users::by_id(&mut conn, &holder.user_id)
                .await?
                .ok_or_else(|| ServiceError::Unauthenticated("no such holder".into()))?;
            let creds = holders::credentials(&mut conn, &user.id)
                .await?
                .ok_or_else(|| ServiceError::Unauthenticated("not enrolled".into()))?;
            (user, creds, holders::questions(&mut conn).await?)
        };
        if let Some((q, _)) = answers.iter().find(|(q, _)| !catalogue.iter().any(|c| c.id == *q)) {
            return Err(
                vsc_core::DomainError::invalid("answers", format!("question {q} is not in the catalogue")).into()
            );
        }
        if !self.verify_secret(&req.passcode, Some(creds.passcode_hash)).await? {
            return Err(vsc_core::DomainError::invalid("passcode", "the passcode is wrong").into());
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
