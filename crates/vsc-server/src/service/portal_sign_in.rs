//! The Self-Service Portal's authenticator second factor. After the passcode, a holder with an
//! active authenticator gets a push (a `card_logins` row of purpose `portal`, number matching as
//! for card logins) and approves it on the phone, or types the app's current code instead; either
//! way the sign-in then opens one portal session. Holders without an authenticator keep the SMS
//! code (service/holder.rs).

use std::time::Duration;

use vsc_core::enrolment as rules;
use vsc_crypto::{SecretToken, TokenHash};
use vsc_proto::{SessionView, SignInStateView, SignInView};
use vsc_store::code_ledger::CodeChallenge;
use vsc_store::logins::LoginRow;
use vsc_store::{Conn, StoreError, Tx, devices, holders, logins, users};

use super::events::{login_topic, user_topic};
use super::holder::holder_event;
use super::login::{AppCode, LoginStart, PUSH_WINDOW_SECONDS, pending_login, state_of};
use super::second_factor::CodeTurn;
use super::{RequestOrigin, Vsc, ts};
use crate::ServiceError;

/// How the authenticator names the requester of a portal sign-in.
const PORTAL_CLIENT: &str = "Self-Service Portal";

/// What sign-in step 1 did about a push.
pub(super) enum PushStart {
    /// A push went to the holder's devices (not yet committed).
    Sent(PushSent),
    /// The holder has no active authenticator.
    NoDevices,
    /// Too many pushes to the holder went unanswered lately.
    Throttled,
}

/// A push sign-in written in the caller's transaction.
pub(super) struct PushSent {
    token: SecretToken,
    login_id: String,
    number: Option<u8>,
}

fn expired() -> ServiceError {
    ServiceError::SignInFailed("this sign-in has expired; start again".into())
}

/// The error for a sign-in whose push can no longer be approved.
fn closed(state: &str) -> ServiceError {
    if state == "denied" {
        ServiceError::SignInFailed("the sign-in was denied on your phone; start again".into())
    } else {
        expired()
    }
}

fn number_of(l: &LoginRow) -> Option<u8> {
    l.number.and_then(|n| u8::try_from(n).ok())
}

impl Vsc {
    /// Sign-in step 1, passcode right: push to the holder's authenticators when there is one
    /// (inside the caller's transaction).
    pub(super) async fn start_sign_in_push(
        &self,
        tx: &mut Conn,
        user: &users::UserRow,
        origin: &RequestOrigin,
        now: i64,
    ) -> Result<PushStart, ServiceError> {
        if devices::active_count(tx, &user.id).await? == 0 {
            return Ok(PushStart::NoDevices);
        }
        let (unanswered, number_matching) = logins::push_guard(tx, &user.id, now - PUSH_WINDOW_SECONDS).await?;
        if unanswered >= self.config.login.push_limit {
            return Ok(PushStart::Throttled);
        }
        let start = LoginStart {
            purpose: "portal",
            user_id: &user.id,
            card_id: None,
            method: "push",
            client: PORTAL_CLIENT,
            ip: &origin.ip,
        };
        // The login's own token is never handed out: the sign-in token stands for it.
        let (_, login) = pending_login(&start, number_matching.unwrap_or(self.config.login.number_matching), now);
        logins::insert(tx, &login).await?;
        let token = SecretToken::generate("vsi");
        holders::create_push_sign_in(tx, &token.hash().0, &user.id, &login.id, now, now + rules::CODE_TTL_SECONDS)
            .await?;
        Ok(PushStart::Sent(PushSent { token, number: number_of(&login), login_id: login.id }))
    }

    /// Audit and commit a push sign-in, then wake the holder's waiting devices.
    pub(super) async fn push_sent(
        &self,
        mut tx: Tx,
        user: &users::UserRow,
        sent: PushSent,
    ) -> Result<SignInView, ServiceError> {
        self.audit(
            &mut tx,
            holder_event(
                user,
                "holder.sign_in_passcode_ok",
                serde_json::json!({ "second_factor": "push", "login": sent.login_id }),
            ),
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.publish(user_topic(&user.id)).await;
        Ok(SignInView {
            sign_in: sent.token.expose().to_string(),
            mobile_hint: user.mobile.as_deref().map(rules::mobile_hint).unwrap_or_default(),
            second_factor: Some("push".into()),
            number: sent.number,
        })
    }

    /// Where a sign-in's second factor stands, waiting up to `wait` while a push is pending.
    pub async fn sign_in_state(&self, sign_in: &str, wait: Duration) -> Result<SignInStateView, ServiceError> {
        let hash = TokenHash::of(sign_in);
        let unknown = || ServiceError::not_found("sign_in", "no such sign-in; start again");
        let first = {
            let mut conn = self.store.conn().await?;
            holders::sign_in(&mut conn, &hash.0).await?.ok_or_else(unknown)?
        };
        let Some(login_id) = first.login_id else {
            let now = self.now().unix_timestamp();
            let usable = first.user_id.is_some()
                && first.completed_at.is_none()
                && first.expires_at > now
                && first.attempts < rules::CODE_MAX_ATTEMPTS;
            return Ok(SignInStateView {
                state: if usable { "pending" } else { "expired" }.into(),
                second_factor: "sms".into(),
                number: None,
                expires_at: ts(first.expires_at),
            });
        };
        let topic = login_topic(&login_id);
        let login = self
            .wait_for(&topic, wait, |last| {
                let id = login_id.clone();
                async move {
                    let mut conn = self.store.conn().await?;
                    let l = logins::by_id(&mut conn, &id).await?.ok_or_else(unknown)?;
                    let pending = state_of(&l, self.now().unix_timestamp()) == "pending";
                    Ok((!pending || last).then_some(l))
                }
            })
            .await?;
        let s = {
            let mut conn = self.store.conn().await?;
            holders::sign_in(&mut conn, &hash.0).await?.ok_or_else(unknown)?
        };
        let now = self.now().unix_timestamp();
        let state = match state_of(&login, now) {
            _ if s.completed_at.is_some() || s.expires_at <= now => "expired",
            _ if s.attempts >= rules::CODE_MAX_ATTEMPTS => "denied",
            state => state,
        };
        Ok(SignInStateView {
            state: state.into(),
            second_factor: "push".into(),
            number: number_of(&login),
            expires_at: ts(login.expires_at),
        })
    }

    /// Turn an approved push into a portal session (once).
    pub async fn complete_sign_in(&self, sign_in: &str) -> Result<SessionView, ServiceError> {
        let now = self.now().unix_timestamp();
        let hash = TokenHash::of(sign_in);
        let mut tx = self.store.begin().await?;
        let s = holders::sign_in(&mut tx, &hash.0).await?.ok_or_else(expired)?;
        let Some(user_id) = s.user_id.clone() else { return Err(expired()) };
        let Some(login_id) = s.login_id.clone() else {
            return Err(vsc_core::DomainError::InvalidState(
                "this sign-in waits for the code sent by SMS, not for an approval".into(),
            )
            .into());
        };
        if s.completed_at.is_some() || s.expires_at <= now || s.attempts >= rules::CODE_MAX_ATTEMPTS {
            return Err(expired());
        }
        let login = logins::by_id(&mut tx, &login_id)
            .await?
            .filter(|l| l.user_id == user_id && l.purpose == "portal")
            .ok_or_else(expired)?;
        match state_of(&login, now) {
            "approved" => {}
            "pending" => {
                return Err(vsc_core::DomainError::InvalidState(
                    "not approved yet: approve the sign-in on your phone, or type the code from the app".into(),
                )
                .into());
            }
            other => return Err(closed(other)),
        }
        let user = users::by_id(&mut tx, &user_id).await?.ok_or_else(expired)?;
        let by = login.decided_by.clone();
        self.finish_sign_in(tx, &hash, &user, &login, "push", by.as_deref()).await
    }

    /// Sign-in step 2 for a push sign-in: the app code (the current TOTP of any active device,
    /// ±1 step, each step once) instead of tapping Yes. `tx` has checked the sign-in is live.
    pub(super) async fn verify_app_code(
        &self,
        mut tx: Tx,
        hash: &TokenHash,
        user: &users::UserRow,
        login_id: &str,
        code: &str,
    ) -> Result<SessionView, ServiceError> {
        let now = self.now().unix_timestamp();
        let login = logins::by_id(&mut tx, login_id).await?.filter(|l| l.user_id == user.id).ok_or_else(expired)?;
        let state = state_of(&login, now);
        if state != "pending" && state != "approved" {
            return Err(closed(state));
        }
        let turn = self.reserve_code_check(&mut tx, &user.id, CodeChallenge::SignIn(&hash.0)).await?;
        let checked = match turn {
            CodeTurn::Check { .. } => self.check_app_code(&mut tx, &user.id, code, now).await?,
            CodeTurn::ChallengeSpent | CodeTurn::HolderLimit => AppCode::Wrong,
        };
        let AppCode::Accepted(device_id) = checked else {
            let wrong = self.settle_wrong_code(&mut tx, user, turn, "portal_sign_in").await?;
            let reason = if matches!(checked, AppCode::Reused) { "app code already used" } else { "wrong app code" };
            if wrong.void {
                logins::decide(&mut tx, login_id, "denied", None, "code", now).await?;
            }
            let mut detail = wrong.detail();
            if let Some(map) = detail.as_object_mut() {
                map.insert("reason".into(), reason.into());
                map.insert("method".into(), "app_code".into());
            }
            self.audit(&mut tx, holder_event(user, "holder.sign_in_failed", detail)).await?;
            tx.commit().await.map_err(StoreError::from)?;
            self.wake_outbox();
            if wrong.void {
                self.publish(login_topic(login_id)).await;
            }
            return Err(wrong.app_code_error("start again"));
        };
        self.settle_right_code(&mut tx, &user.id).await?;
        // A push approved meanwhile stands; otherwise the code decides the challenge.
        if state == "pending" {
            logins::decide(&mut tx, login_id, "approved", Some(&device_id), "code", now).await?;
        }
        let login = logins::by_id(&mut tx, login_id).await?.ok_or_else(expired)?;
        let state = state_of(&login, now);
        if state != "approved" {
            return Err(closed(state));
        }
        self.finish_sign_in(tx, hash, user, &login, "app_code", Some(&device_id)).await
    }

    /// Spend an approved push login and its sign-in on a new portal session.
    async fn finish_sign_in(
        &self,
        mut tx: Tx,
        hash: &TokenHash,
        user: &users::UserRow,
        login: &LoginRow,
        method: &'static str,
        device: Option<&str>,
    ) -> Result<SessionView, ServiceError> {
        let now = self.now().unix_timestamp();
        if !logins::spend(&mut tx, &login.id, now).await? || !holders::complete_sign_in(&mut tx, &hash.0, now).await? {
            return Err(expired());
        }
        let session = self.open_session(&mut tx, &user.id).await?;
        self.audit(
            &mut tx,
            holder_event(
                user,
                "holder.signed_in",
                serde_json::json!({ "method": method, "device": device, "login": login.id }),
            ),
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.publish(login_topic(&login.id)).await;
        Ok(session)
    }
}
