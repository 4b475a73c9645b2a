//! Forgotten passcode: an emailed single-use link (on request, on a card lock, or from an RA
//! unlock) → the holder's 3 security questions (skipped for an RA unlock; 3 failed rounds void
//! the link) → the second factor (push or app code from an authenticator, else an SMS code) → a
//! new passcode. Success unlocks the holder's locked cards, clears the failure count and ends
//! every open card session, in one transaction with its email and audit event.

use std::time::Duration;

use time::OffsetDateTime;
use vsc_core::change_request::ChangeAction;
use vsc_core::enrolment::{self as rules, Passcode};
use vsc_core::{Actor, AuditRecord, CardState, DomainError, EmailAddress};
use vsc_crypto::{SecretToken, SystemRng, TokenHash};
use vsc_proto::{AnswerInput, CardView, QuestionView, ResetAccepted, ResetFactorView, ResetView};
use vsc_store::cards::CardRow;
use vsc_store::code_ledger::{self, CodeChallenge};
use vsc_store::resets::{self, MAX_QUESTION_ROUNDS, NewReset, ResetRow};
use vsc_store::users::UserRow;
use vsc_store::{Conn, StoreError, channels, devices, holders, logins, users};

use super::change_requests::Outcome;
use super::enrolment::{code_hash, code_matches};
use super::events::{login_topic, user_topic};
use super::holder::holder_event;
use super::login::{AppCode, LoginStart, PUSH_WINDOW_SECONDS, pending_login, state_of};
use super::second_factor::CodeTurn;
use super::verified_channels::{EMAIL_UNCONFIRMED_RA, MOBILE_UNCONFIRMED, SmsFactor};
use super::{Principal, RequestOrigin, Vsc, new_id, ts, views};
use crate::ServiceError;
use crate::notify::templates;

/// A reset link works this long.
pub const RESET_SECONDS: i64 = 24 * 60 * 60;

/// Reset links a holder may request per hour; more requests are answered alike but send nothing.
pub const REQUESTS_PER_HOUR: i64 = 3;

/// How the authenticator names the requester of a reset push.
const RESET_CLIENT: &str = "Passcode reset (Self-Service Portal)";

/// The one answer to every reset request.
pub const RESET_ACCEPTED: &str = "if this address has a virtual smartcard, we have sent it a link to choose a new passcode; the link works once, for 24 hours";

/// The step a link is at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Questions,
    SecondFactor,
    NewPasscode,
}

impl Step {
    fn as_str(self) -> &'static str {
        match self {
            Step::Questions => "questions",
            Step::SecondFactor => "second_factor",
            Step::NewPasscode => "new_passcode",
        }
    }
}

/// An RA unlock is for active or locked cards.
fn unlockable(card: &CardRow) -> Result<(), ServiceError> {
    if card.state != CardState::Locked.as_str() && card.state != CardState::Active.as_str() {
        return Err(
            DomainError::InvalidState(format!("card {} is {}, not active or locked", card.serial, card.state)).into()
        );
    }
    Ok(())
}

fn too_many_rounds() -> ServiceError {
    ServiceError::Forbidden(
        "the security questions were answered wrongly 3 times, so this link no longer works; contact your \
         Registration Authority (RA) to unlock your card"
            .into(),
    )
}

fn invalid_link() -> ServiceError {
    ServiceError::not_found("token", "this reset link is not valid; check that you copied all of it")
}

impl Vsc {
    /// The absolute reset link for a token.
    fn reset_link(&self, token: &str) -> String {
        format!("{}/self-service/reset/{token}", self.config.public_url())
    }

    /// Inside the caller's transaction: a new reset link for `user_id` (the previous one dies) →
    /// (link, expiry). The caller sends it.
    pub(crate) async fn issue_reset_link(
        &self,
        conn: &mut Conn,
        user_id: &str,
        origin: &'static str,
        skip_questions: bool,
        now: i64,
    ) -> Result<(String, OffsetDateTime), ServiceError> {
        let token = SecretToken::generate("vrp");
        let expires_at = now + RESET_SECONDS;
        let row = NewReset {
            id: &new_id(),
            token_hash: &token.hash().0,
            user_id,
            origin,
            skip_questions,
            at: now,
            expires_at,
        };
        resets::replace(conn, &row).await?;
        Ok((self.reset_link(token.expose()), ts(expires_at)))
    }

    /// "Forgotten your passcode?": email a reset link to a holder with this address. Always the
    /// same answer after the same work (one Argon2id-cost step either way), whether or not the
    /// address exists; at most [`REQUESTS_PER_HOUR`] links per holder an hour (audited). No link
    /// goes to an address the holder has not confirmed (audited why; the answer is the same).
    pub async fn request_reset(&self, email: &str) -> Result<ResetAccepted, ServiceError> {
        let now = self.now().unix_timestamp();
        // The same slow step on every path hides the database work that differs.
        self.verify_secret(email, None).await?;
        let email_key = EmailAddress::parse("email", email).map(|e| e.key()).unwrap_or_default();
        let mut tx = self.store.begin().await?;
        let user = if email_key.is_empty() { None } else { users::by_email_key(&mut tx, &email_key).await? };
        let enrolled = match &user {
            Some(u) => holders::credentials(&mut tx, &u.id).await?.is_some(),
            None => false,
        };
        match user.filter(|_| enrolled) {
            None => {
                let rec = AuditRecord {
                    actor: Actor::Holder(email.trim().chars().take(320).collect()),
                    action: "holder.reset_requested",
                    org_id: None,
                    target: None,
                    detail: serde_json::json!({ "outcome": "unknown email or not enrolled" }).to_string(),
                };
                self.audit(&mut tx, rec).await?;
            }
            Some(user) if resets::count_since(&mut tx, &user.id, "request", now - 3600).await? >= REQUESTS_PER_HOUR => {
                let detail = serde_json::json!({ "outcome": "rate limited", "per_hour": REQUESTS_PER_HOUR });
                self.audit(&mut tx, holder_event(&user, "holder.reset_rate_limited", detail)).await?;
            }
            // Same answer, no link: a reset link goes only to a confirmed address.
            Some(user) if !channels::verified(&mut tx, &user.id).await?.email() => {
                let detail = serde_json::json!({ "outcome": "email address not confirmed; no link sent" });
                self.audit(&mut tx, holder_event(&user, "holder.reset_requested", detail)).await?;
            }
            Some(user) => {
                let (link, expires) = self.issue_reset_link(&mut tx, &user.id, "request", false, now).await?;
                let name = format!("{} {}", user.forename, user.surname);
                let mail = templates::passcode_reset(&user.email, &name, &link, expires, false)
                    .map_err(ServiceError::Startup)?;
                self.enqueue_email(&mut tx, "passcode_reset", &mail).await?;
                let detail = serde_json::json!({ "outcome": "link sent" });
                self.audit(&mut tx, holder_event(&user, "holder.reset_requested", detail)).await?;
            }
        }
        tx.commit().await.map_err(StoreError::from)?;
        self.wake_outbox();
        Ok(ResetAccepted { status: "accepted".into(), message: RESET_ACCEPTED.into() })
    }

    /// RA unlock: email the card's holder a reset link that skips the security questions (the
    /// second factor is still needed). The card must be active or locked, and the holder's email
    /// address confirmed (409 otherwise: the link would go to an address nobody has proved).
    /// Under dual control (always an enrolled holder here) it is a change request.
    pub async fn issue_reset_link_for_unlock(
        &self,
        who: &Principal,
        serial: &str,
    ) -> Result<Outcome<CardView>, ServiceError> {
        let mut tx = self.store.begin().await?;
        let card = self.visible_card(&mut tx, who, serial).await?;
        unlockable(&card)?;
        let user = users::by_id(&mut tx, &card.user_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("card without user".into()))?;
        self.require_confirmed_email(&mut tx, &user.id, EMAIL_UNCONFIRMED_RA).await?;
        if self.needs_approval(&mut tx, who, &user).await? {
            let payload = serde_json::json!({ "detail": { "card": card.serial, "state": card.state } });
            let request = self.request_change(&mut tx, who, &user, ChangeAction::Unlock, &card.serial, payload).await?;
            tx.commit().await.map_err(StoreError::from)?;
            return Ok(Outcome::Requested(vec![request]));
        }
        self.unlock_now(&mut tx, who, &card).await?;
        let view = views::load_card(&mut tx, &card, self.now()).await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.wake_outbox();
        Ok(Outcome::Done(view))
    }

    /// Email the holder of `card` (active or locked) an RA unlock link, audited as `who`
    /// (caller's transaction); the holder's second-factor ledger starts again.
    pub(crate) async fn unlock_now(&self, tx: &mut Conn, who: &Principal, card: &CardRow) -> Result<(), ServiceError> {
        let now = self.now().unix_timestamp();
        unlockable(card)?;
        let user =
            users::by_id(tx, &card.user_id).await?.ok_or_else(|| StoreError::Corrupt("card without user".into()))?;
        self.require_confirmed_email(tx, &user.id, EMAIL_UNCONFIRMED_RA).await?;
        // The link's second factor must be checkable: an RA unlock clears the holder's
        // second-factor ledger (10 wrong codes lock the cards and stop code checks for 24 h).
        code_ledger::clear_holder_failures(tx, &user.id).await?;
        let (link, expires) = self.issue_reset_link(tx, &user.id, "ra", true, now).await?;
        let mail = templates::passcode_reset(
            &user.email,
            &format!("{} {}", user.forename, user.surname),
            &link,
            expires,
            true,
        )
        .map_err(ServiceError::Startup)?;
        self.enqueue_email(tx, "passcode_reset", &mail).await?;
        self.audit(
            tx,
            AuditRecord {
                actor: who.actor(),
                action: "card.unlock_link_issued",
                org_id: Some(card.org_id.clone()),
                target: Some(format!("card:{}", card.serial)),
                detail: serde_json::json!({ "email": user.email, "state": card.state }).to_string(),
            },
        )
        .await?;
        Ok(())
    }

    /// A live link and its holder, or why not.
    async fn open_reset(&self, conn: &mut Conn, token: &str) -> Result<(ResetRow, UserRow), ServiceError> {
        let presented = TokenHash::of(token);
        let r = resets::by_token_hash(conn, &presented.0).await?.ok_or_else(invalid_link)?;
        if !TokenHash::from_slice(&r.token_hash).is_some_and(|s| s.matches(&presented)) {
            return Err(invalid_link());
        }
        if r.used_at.is_some() {
            return Err(ServiceError::LinkUsed(
                "this reset link has already been used; ask for a new one if you need to".into(),
            ));
        }
        if r.question_rounds_failed >= MAX_QUESTION_ROUNDS {
            return Err(too_many_rounds());
        }
        if r.voided_at.is_some() {
            return Err(ServiceError::LinkExpired(
                "this reset link no longer works: a newer link was sent, or codes were entered wrongly too often; \
                 use the newest link or ask for a new one"
                    .into(),
            ));
        }
        if r.expires_at <= self.now().unix_timestamp() {
            return Err(ServiceError::LinkExpired("this reset link has expired; ask for a new one".into()));
        }
        let user = users::by_id(conn, &r.user_id).await?.ok_or_else(invalid_link)?;
        Ok((r, user))
    }

    /// Whether the second factor of a link is passed (an app or SMS code, or an approved push).
    async fn factor_passed(&self, conn: &mut Conn, r: &ResetRow) -> Result<bool, ServiceError> {
        if r.factor_passed_at.is_some() {
            return Ok(true);
        }
        let Some(login_id) = &r.login_id else { return Ok(false) };
        let login = logins::by_id(conn, login_id).await?.filter(|l| l.user_id == r.user_id && l.purpose == "portal");
        Ok(login.is_some_and(|l| state_of(&l, self.now().unix_timestamp()) == "approved"))
    }

    async fn step_of(&self, conn: &mut Conn, r: &ResetRow) -> Result<Step, ServiceError> {
        Ok(if !r.skip_questions && r.questions_passed_at.is_none() {
            Step::Questions
        } else if !self.factor_passed(conn, r).await? {
            Step::SecondFactor
        } else {
            Step::NewPasscode
        })
    }

    /// What the holder sees on opening a reset link: the step, their 3 questions and which
    /// second factor they have.
    pub async fn reset_state(&self, token: &str) -> Result<ResetView, ServiceError> {
        let mut conn = self.store.conn().await?;
        let (r, user) = self.open_reset(&mut conn, token).await?;
        let step = self.step_of(&mut conn, &r).await?;
        let chosen = holders::answers(&mut conn, &user.id).await?;
        // Retired questions too: a holder keeps the questions they answered.
        let questions = vsc_store::questions::all(&mut conn)
            .await?
            .into_iter()
            .filter(|q| chosen.iter().any(|(id, _)| *id == q.id))
            .map(|q| QuestionView { id: q.id, text: q.text })
            .collect();
        let has_authenticator = devices::active_count(&mut conn, &user.id).await? > 0;
        let mobile_hint = match self.sms_factor(&mut conn, &user).await? {
            SmsFactor::Confirmed(m) => Some(rules::mobile_hint(&m)),
            _ => None,
        };
        let second_factor = if r.login_id.is_some() {
            Some("push")
        } else if r.code_hash.is_some() {
            Some("sms")
        } else {
            None
        };
        Ok(ResetView {
            step: step.as_str().into(),
            forename: user.forename.clone(),
            questions,
            second_factor: second_factor.map(String::from),
            has_authenticator,
            mobile_hint,
            expires_at: ts(r.expires_at),
        })
    }

    /// Answer the holder's 3 security questions (all must be right). Each round is counted
    /// before it is checked; the third wrong round voids the link (audited).
    pub async fn reset_answer_questions(
        &self,
        token: &str,
        answers: &[AnswerInput],
    ) -> Result<ResetView, ServiceError> {
        let answers = rules::check_answers(
            "answers",
            &answers.iter().map(|a| (a.question, a.answer.clone())).collect::<Vec<_>>(),
        )?;
        let (r, user, stored) = {
            let mut conn = self.store.conn().await?;
            let (r, user) = self.open_reset(&mut conn, token).await?;
            if self.step_of(&mut conn, &r).await? != Step::Questions {
                return Err(DomainError::InvalidState("the security questions are answered already".into()).into());
            }
            let stored = holders::answers(&mut conn, &user.id).await?;
            (r, user, stored)
        };
        let mut mine: Vec<i64> = stored.iter().map(|(q, _)| *q).collect();
        let mut given: Vec<i64> = answers.iter().map(|(q, _)| *q).collect();
        mine.sort_unstable();
        given.sort_unstable();
        if mine != given {
            return Err(DomainError::invalid("answers", "answer your own 3 security questions").into());
        }
        let now = self.now().unix_timestamp();
        let round = {
            let mut conn = self.store.writer().await?;
            resets::reserve_question_round(&mut conn, &r.id, now).await?
        };
        let Some(round) = round else {
            // Used, voided or out of rounds meanwhile: say which.
            let mut conn = self.store.conn().await?;
            self.open_reset(&mut conn, token).await?;
            return Err(too_many_rounds());
        };
        let mut right = true;
        for (q, answer) in &answers {
            let hash = stored.iter().find(|(id, _)| id == q).map(|(_, h)| h.clone());
            // Check all three, whatever the first says: the time tells nothing.
            right &= self.verify_secret(answer, hash).await?;
        }
        let mut tx = self.store.begin().await?;
        if right {
            resets::pass_questions(&mut tx, &r.id, now).await?;
            self.audit(&mut tx, holder_event(&user, "holder.reset_questions_passed", serde_json::json!({}))).await?;
            tx.commit().await.map_err(StoreError::from)?;
            return self.reset_state(token).await;
        }
        let detail = serde_json::json!({ "round": round, "of": MAX_QUESTION_ROUNDS });
        self.audit(&mut tx, holder_event(&user, "holder.reset_questions_failed", detail)).await?;
        if round >= MAX_QUESTION_ROUNDS {
            resets::void(&mut tx, &r.id, now).await?;
            let detail = serde_json::json!({ "reason": "security questions answered wrongly 3 times" });
            self.audit(&mut tx, holder_event(&user, "holder.reset_voided", detail)).await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        if round >= MAX_QUESTION_ROUNDS {
            return Err(too_many_rounds());
        }
        let left = MAX_QUESTION_ROUNDS - round;
        Err(ServiceError::wrong_secret(
            "answers",
            format!(
                "one or more answers are not right; {left} attempt(s) left. If you cannot remember them, contact your \
                 Registration Authority (RA)"
            ),
        ))
    }

    /// Start the second factor: a push to the holder's authenticators (when they have one; a
    /// pending push is reused), else an SMS code (at most one a minute).
    pub async fn reset_start_second_factor(
        &self,
        token: &str,
        origin: &RequestOrigin,
    ) -> Result<ResetFactorView, ServiceError> {
        let now = self.now().unix_timestamp();
        let mut tx = self.store.begin().await?;
        let (r, user) = self.open_reset(&mut tx, token).await?;
        match self.step_of(&mut tx, &r).await? {
            Step::Questions => {
                return Err(DomainError::InvalidState("answer the security questions first".into()).into());
            }
            Step::NewPasscode => {
                drop(tx);
                return self.reset_factor_state(token, Duration::ZERO).await;
            }
            Step::SecondFactor => {}
        }
        if devices::active_count(&mut tx, &user.id).await? > 0 {
            if let Some(id) = &r.login_id
                && let Some(l) = logins::by_id(&mut tx, id).await?
                && state_of(&l, now) == "pending"
            {
                drop(tx);
                return self.reset_factor_state(token, Duration::ZERO).await;
            }
            let (unanswered, number_matching) =
                logins::push_guard(&mut tx, &user.id, now - PUSH_WINDOW_SECONDS).await?;
            if unanswered >= self.config.login.push_limit {
                return Err(ServiceError::RateLimited(
                    "too many requests to your phone were not answered; wait a few minutes, or type the code from \
                     the app"
                        .into(),
                ));
            }
            let start = LoginStart {
                purpose: "portal",
                user_id: &user.id,
                card_id: None,
                method: "push",
                client: RESET_CLIENT,
                ip: &origin.ip,
            };
            let number_matching = number_matching.unwrap_or(self.config.login.number_matching);
            let (_, login) = pending_login(&start, number_matching, now);
            logins::insert(&mut tx, &login).await?;
            resets::set_login(&mut tx, &r.id, &login.id).await?;
            let detail = serde_json::json!({ "second_factor": "push", "login": login.id });
            self.audit(&mut tx, holder_event(&user, "holder.reset_factor_started", detail)).await?;
            tx.commit().await.map_err(StoreError::from)?;
            self.publish(user_topic(&user.id)).await;
            return self.reset_factor_state(token, Duration::ZERO).await;
        }
        let mobile = match self.sms_factor(&mut tx, &user).await? {
            SmsFactor::Confirmed(mobile) => mobile,
            SmsFactor::Unconfirmed(_) => {
                let detail = serde_json::json!({ "reason": "mobile number not confirmed; no code sent" });
                self.audit(&mut tx, holder_event(&user, "holder.reset_factor_refused", detail)).await?;
                tx.commit().await.map_err(StoreError::from)?;
                return Err(DomainError::InvalidState(MOBILE_UNCONFIRMED.into()).into());
            }
            SmsFactor::Missing => {
                return Err(DomainError::InvalidState(
                    "no second factor is registered; contact your Registration Authority (RA)".into(),
                )
                .into());
            }
        };
        if let Some(sent) = r.code_sent_at {
            let wait = sent + rules::CODE_RESEND_SECONDS - now;
            if wait > 0 {
                return Err(ServiceError::RateLimited(format!(
                    "a code was just sent; you can ask for another in {wait} s"
                )));
            }
        }
        let code = rules::one_time_code(&mut SystemRng);
        let scope = hex::encode(&r.token_hash);
        resets::set_code(&mut tx, &r.id, &code_hash(&scope, &code), now, now + rules::CODE_TTL_SECONDS).await?;
        self.enqueue_sms(&mut tx, "reset_code", &templates::sms_code(&mobile, &code)).await?;
        let detail = serde_json::json!({ "second_factor": "sms" });
        self.audit(&mut tx, holder_event(&user, "holder.reset_factor_started", detail)).await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.wake_outbox();
        self.reset_factor_state(token, Duration::ZERO).await
    }

    /// Where the second factor stands; waits up to `wait` while a push is pending.
    pub async fn reset_factor_state(&self, token: &str, wait: Duration) -> Result<ResetFactorView, ServiceError> {
        let (r, user) = {
            let mut conn = self.store.conn().await?;
            self.open_reset(&mut conn, token).await?
        };
        let mobile_hint = user.mobile.as_deref().map(rules::mobile_hint);
        if let Some(login_id) = r.login_id.clone() {
            let topic = login_topic(&login_id);
            let login = self
                .wait_for(&topic, wait, |last| {
                    let id = login_id.clone();
                    async move {
                        let mut conn = self.store.conn().await?;
                        let l = logins::by_id(&mut conn, &id)
                            .await?
                            .ok_or_else(|| ServiceError::not_found("login", "no such push"))?;
                        let pending = state_of(&l, self.now().unix_timestamp()) == "pending";
                        Ok((!pending || last).then_some(l))
                    }
                })
                .await?;
            let state =
                if r.factor_passed_at.is_some() { "approved" } else { state_of(&login, self.now().unix_timestamp()) };
            return Ok(ResetFactorView {
                second_factor: "push".into(),
                state: state.into(),
                number: login.number.and_then(|n| u8::try_from(n).ok()),
                mobile_hint: None,
                expires_at: ts(login.expires_at),
            });
        }
        let now = self.now().unix_timestamp();
        let state = match r.code_expires_at {
            _ if r.factor_passed_at.is_some() => "approved",
            Some(t) if t > now && r.code_attempts < rules::CODE_MAX_ATTEMPTS => "pending",
            Some(_) => "expired",
            None => {
                return Err(DomainError::InvalidState("start the second factor first".into()).into());
            }
        };
        Ok(ResetFactorView {
            second_factor: "sms".into(),
            state: state.into(),
            number: None,
            mobile_hint,
            expires_at: ts(r.code_expires_at.unwrap_or(r.expires_at)),
        })
    }

    /// The second factor by code: the authenticator's app code (a holder with an active
    /// authenticator) or the SMS code. 5 wrong codes void the link.
    pub async fn reset_verify_second_factor(&self, token: &str, code: &str) -> Result<ResetView, ServiceError> {
        let now = self.now().unix_timestamp();
        let mut tx = self.store.begin().await?;
        let (r, user) = self.open_reset(&mut tx, token).await?;
        match self.step_of(&mut tx, &r).await? {
            Step::Questions => {
                return Err(DomainError::InvalidState("answer the security questions first".into()).into());
            }
            Step::NewPasscode => {
                drop(tx);
                return self.reset_state(token).await;
            }
            Step::SecondFactor => {}
        }
        let app = r.login_id.is_some() || devices::active_count(&mut tx, &user.id).await? > 0;
        let turn = self.reserve_code_check(&mut tx, &user.id, CodeChallenge::Reset(&r.id)).await?;
        let (ok, method, device, reason) = if !matches!(turn, CodeTurn::Check { .. }) {
            (false, if app { "app_code" } else { "sms" }, None, "no attempts left")
        } else if app {
            match self.check_app_code(&mut tx, &user.id, code, now).await? {
                AppCode::Accepted(d) => (true, "app_code", Some(d), ""),
                AppCode::Reused => (false, "app_code", None, "app code already used"),
                AppCode::Wrong => (false, "app_code", None, "wrong app code"),
            }
        } else {
            let live = r.code_expires_at.is_some_and(|t| t > now);
            let right = live && code_matches(&hex::encode(&r.token_hash), code, r.code_hash.as_deref());
            (right, "sms", None, if live { "wrong code" } else { "code expired or not sent" })
        };
        if ok {
            self.settle_right_code(&mut tx, &user.id).await?;
            resets::pass_factor(&mut tx, &r.id, now).await?;
            if let (Some(login_id), Some(d)) = (&r.login_id, &device) {
                logins::decide(&mut tx, login_id, "approved", Some(d), "code", now).await?;
            }
            let detail = serde_json::json!({ "method": method, "device": device });
            self.audit(&mut tx, holder_event(&user, "holder.reset_factor_passed", detail)).await?;
            tx.commit().await.map_err(StoreError::from)?;
            if let Some(login_id) = &r.login_id {
                self.publish(login_topic(login_id)).await;
            }
            return self.reset_state(token).await;
        }
        let wrong = self.settle_wrong_code(&mut tx, &user, turn, "reset").await?;
        let mut detail = wrong.detail();
        if let Some(map) = detail.as_object_mut() {
            map.insert("method".into(), method.into());
            map.insert("reason".into(), reason.into());
        }
        self.audit(&mut tx, holder_event(&user, "holder.reset_factor_failed", detail)).await?;
        if wrong.void {
            resets::void(&mut tx, &r.id, now).await?;
            if let Some(login_id) = &r.login_id {
                logins::decide(&mut tx, login_id, "denied", None, "code", now).await?;
            }
            let detail = serde_json::json!({ "reason": "wrong codes" });
            self.audit(&mut tx, holder_event(&user, "holder.reset_voided", detail)).await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        self.wake_outbox();
        let restart = "this link no longer works; ask for a new one";
        Err(if method == "app_code" { wrong.app_code_error(restart) } else { wrong.error(restart) })
    }

    /// The new passcode (the enrolment policy; not the current one). In one transaction: the
    /// passcode, the failure count cleared, locked cards unlocked, every open card session
    /// ended, the link used, the "passcode changed" email and the audit event.
    pub async fn reset_set_passcode(&self, token: &str, passcode: &str) -> Result<(), ServiceError> {
        let passcode = Passcode::parse("passcode", passcode)?;
        let user_id = {
            let mut conn = self.store.conn().await?;
            let (r, user) = self.open_reset(&mut conn, token).await?;
            if self.step_of(&mut conn, &r).await? != Step::NewPasscode {
                return Err(DomainError::InvalidState(
                    "answer the security questions and confirm on your phone first".into(),
                )
                .into());
            }
            user.id
        };
        let hash = self.hash_new_passcode(&user_id, &passcode, "passcode").await?;

        let at = self.now().unix_timestamp();
        let mut tx = self.store.begin().await?;
        let (r, user) = self.open_reset(&mut tx, token).await?;
        if self.step_of(&mut tx, &r).await? != Step::NewPasscode || !resets::mark_used(&mut tx, &r.id, at).await? {
            return Err(ServiceError::LinkUsed("this reset link has already been used".into()));
        }
        if let Some(login_id) = &r.login_id {
            logins::spend(&mut tx, login_id, at).await?;
        }
        self.apply_new_passcode(&mut tx, &user, &hash, serde_json::json!({ "origin": r.origin })).await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.wake_outbox();
        Ok(())
    }

    /// A new passcode for `user_id` checked against the current one (it must differ; the policy
    /// is checked by [`Passcode::parse`]) and hashed, before any write lock is taken. `field`
    /// names the request field in the error.
    pub(crate) async fn hash_new_passcode(
        &self,
        user_id: &str,
        passcode: &Passcode,
        field: &'static str,
    ) -> Result<String, ServiceError> {
        let current = {
            let mut conn = self.store.conn().await?;
            holders::credentials(&mut conn, user_id).await?.map(|c| c.passcode_hash)
        };
        if self.verify_secret(passcode.expose(), current).await? {
            return Err(DomainError::invalid(field, "choose a passcode different from your current one").into());
        }
        self.hash_secret(passcode.expose()).await
    }

    /// Inside the caller's transaction, the effects of a new passcode (`hash` from
    /// [`Vsc::hash_new_passcode`]): the passcode set, the failure count cleared, locked cards
    /// unlocked, every open card session ended, the "passcode changed" email and the
    /// `holder.passcode_reset` audit event (`detail` plus what was done). The caller commits and
    /// wakes the outbox.
    pub(crate) async fn apply_new_passcode(
        &self,
        tx: &mut Conn,
        user: &UserRow,
        hash: &str,
        mut detail: serde_json::Value,
    ) -> Result<(), ServiceError> {
        let now = self.now();
        let at = now.unix_timestamp();
        holders::set_passcode(tx, &user.id, hash, at).await?;
        holders::clear_passcode_failures(tx, &user.id).await?;
        code_ledger::clear_holder_failures(tx, &user.id).await?;
        let unlocked = resets::unlock_cards_for_user(tx, &user.id).await?;
        let ended = self.end_holder_sessions(tx, &user.id, at).await?;
        let mail = templates::passcode_changed(
            &user.email,
            &format!("{} {}", user.forename, user.surname),
            now,
            &format!("{}/self-service/", self.config.public_url()),
        )
        .map_err(ServiceError::Startup)?;
        self.enqueue_email(tx, "passcode_changed", &mail).await?;
        if let Some(map) = detail.as_object_mut() {
            map.insert("cards_unlocked".into(), serde_json::json!(unlocked));
            map.insert("card_sessions_ended".into(), serde_json::json!(ended.card));
            map.insert("portal_sessions_ended".into(), serde_json::json!(ended.portal));
        }
        self.audit(tx, holder_event(user, "holder.passcode_reset", detail)).await?;
        Ok(())
    }
}
