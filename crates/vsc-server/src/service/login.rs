//! Card login: email + passcode (or push only, where the organisation allows it) → a challenge to
//! the holder's authenticators (push with number matching, or a scanned QR) or a TOTP code → a
//! decided login the client turns into a card session.

use std::time::Duration;

use vsc_core::{Actor, AuditRecord, EmailAddress};
use vsc_crypto::device_token;
use vsc_crypto::totp::TotpSecret;
use vsc_crypto::{SealedKey, SecretToken, TokenHash};
use vsc_proto::{
    AnswerOutcome, CardLoginRequest, CardLoginView, ChallengeAnswer, ChallengeView, LoginRole, LoginStateView,
};
use vsc_store::code_ledger::CodeChallenge;
use vsc_store::logins::LoginRow;
use vsc_store::{StoreError, devices, holders, logins, organisations, users};

use super::approvals::APPROVAL_PREFIX;
use super::events::{login_topic, user_topic};
use super::passcode::PasscodeCheck;
use super::second_factor::CodeTurn;
use super::{DeviceIdentity, Vsc, new_id, ts};
use crate::ServiceError;

/// A challenge (and so a login) lives this long.
pub const CHALLENGE_SECONDS: i64 = 120;

/// Window over which unanswered pushes are counted for throttling.
pub(crate) const PUSH_WINDOW_SECONDS: i64 = 600;

/// The answer once too many pushes of a holder went unanswered.
pub(crate) const PUSH_THROTTLED: &str = "too many login requests were not answered; wait a few minutes and try again";

const LOGIN_FAILED: &str =
    "the email or passcode is wrong, or the card cannot be used; if it is locked, you were emailed";

/// Where a login request came from.
#[derive(Debug, Clone, Default)]
pub struct RequestOrigin {
    /// Client IP address.
    pub ip: String,
}

/// A login method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Push,
    Code,
    Qr,
}

impl Method {
    fn parse(s: &str) -> Result<Method, ServiceError> {
        match s {
            "push" => Ok(Method::Push),
            "code" => Ok(Method::Code),
            "qr" => Ok(Method::Qr),
            _ => Err(vsc_core::DomainError::invalid("method", "method must be push, code or qr").into()),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Method::Push => "push",
            Method::Code => "code",
            Method::Qr => "qr",
        }
    }
}

use super::holder::{holder_event as login_event, holder_event_of};

/// Three distinct 2-digit numbers, one of them `number`, in random order.
pub(super) fn number_choices(number: u8) -> Vec<u8> {
    let mut choices = vec![number];
    while choices.len() < 3 {
        let n = random_number();
        if !choices.contains(&n) {
            choices.push(n);
        }
    }
    let shift = usize::from(vsc_crypto::random::bytes::<1>()[0]) % 3;
    choices.rotate_left(shift);
    choices
}

/// A uniformly random number 10–99.
pub(super) fn random_number() -> u8 {
    loop {
        let b = vsc_crypto::random::bytes::<1>()[0];
        // 180 = 2 × 90: reject the tail so every number is equally likely.
        if b < 180 {
            return 10 + b % 90;
        }
    }
}

pub(super) fn parse_choices(s: Option<&str>) -> Option<Vec<u8>> {
    s.map(|s| s.split(',').filter_map(|n| n.parse().ok()).collect())
}

/// The decision of a device's answer: `approve` or `deny`.
pub(super) fn answer_decision(answer: &ChallengeAnswer) -> Result<&str, ServiceError> {
    match answer.decision.as_str() {
        "approve" | "deny" => Ok(answer.decision.as_str()),
        _ => Err(vsc_core::DomainError::invalid("decision", "decision must be approve or deny").into()),
    }
}

/// Whether a device's answer to challenge `id` carries the challenge's nonce and a signature by
/// that device's key over (id, nonce, decision, number).
pub(super) fn answer_verifies(
    device: &DeviceIdentity,
    id: &str,
    nonce: &str,
    decision: &str,
    answer: &ChallengeAnswer,
) -> bool {
    let signature = device_token::unb64(&answer.signature).unwrap_or_default();
    let message = device_token::answer_message(id, &answer.nonce, decision, answer.number);
    TokenHash::of(&answer.nonce).matches(&TokenHash::of(nonce))
        && vsc_crypto::device::verify(&device.public_key, &message, &signature)
}

/// The state a login shows now.
pub(crate) fn state_of(l: &LoginRow, now: i64) -> &'static str {
    match l.state.as_str() {
        "approved" => "approved",
        "denied" => "denied",
        _ if l.expires_at <= now => "expired",
        _ => "pending",
    }
}

/// What a new login is for and where it came from.
pub(crate) struct LoginStart<'a> {
    /// `card` or `portal`.
    pub purpose: &'static str,
    /// Holder.
    pub user_id: &'a str,
    /// The card being logged in to (card logins).
    pub card_id: Option<&'a str>,
    /// `push`, `code` or `qr`.
    pub method: &'static str,
    /// Requesting client, as the devices show it.
    pub client: &'a str,
    /// Requesting IP.
    pub ip: &'a str,
}

/// A pending login (with a number to match for pushes when `number_matching` is on) and the
/// token its client holds.
pub(crate) fn pending_login(start: &LoginStart<'_>, number_matching: bool, now: i64) -> (SecretToken, LoginRow) {
    let number = (start.method == "push" && number_matching).then(random_number);
    let token = SecretToken::generate(if start.purpose == "portal" { "vpl" } else { "vcl" });
    let login = LoginRow {
        id: new_id(),
        token_hash: token.hash().0.to_vec(),
        purpose: start.purpose.into(),
        user_id: start.user_id.into(),
        card_id: start.card_id.map(String::from),
        method: start.method.into(),
        state: "pending".into(),
        nonce: hex::encode(vsc_crypto::random::bytes::<16>()),
        number: number.map(i64::from),
        choices: number.map(|n| number_choices(n).iter().map(u8::to_string).collect::<Vec<_>>().join(",")),
        client: start.client.into(),
        ip: start.ip.into(),
        code_attempts: 0,
        decided_by: None,
        decided_method: None,
        created_at: now,
        expires_at: now + CHALLENGE_SECONDS,
        decided_at: None,
        session_opened_at: None,
        card_serial: None,
        card_state: None,
        card_expires_at: None,
        holder_email: String::new(),
        holder_org_id: String::new(),
        org_session_minutes: None,
        org_idle_minutes: None,
        card_roles: Vec::new(),
    };
    (token, login)
}

/// What an app code (an authenticator's TOTP) turned out to be.
pub(crate) enum AppCode {
    /// The current code of this device, not used before (now spent).
    Accepted(String),
    /// A device's code, but that step was used already.
    Reused,
    /// No active device's code.
    Wrong,
}

/// The registration / login QR URI base: `vsc-auth://<what>?v=1&url=<public url>`.
pub(crate) fn auth_uri(what: &str, public_url: &str) -> String {
    format!("vsc-auth://{what}?v=1&url={}", percent_encode(public_url))
}

/// Percent-encode everything but unreserved characters (RFC 3986).
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What a device is shown of a login. The nonce of a QR login is left out: the device must have
/// it from the scanned code.
fn challenge_view(l: &LoginRow) -> ChallengeView {
    ChallengeView {
        id: l.id.clone(),
        nonce: if l.method == "qr" { String::new() } else { l.nonce.clone() },
        purpose: l.purpose.clone(),
        method: l.method.clone(),
        client: l.client.clone(),
        ip: l.ip.clone(),
        card: l.card_serial.clone(),
        choices: parse_choices(l.choices.as_deref()),
        document: None,
        digest: None,
        created_at: ts(l.created_at),
        expires_at: ts(l.expires_at),
    }
}

impl Vsc {
    /// Start a card login. Unknown email, wrong passcode and a locked card answer alike.
    pub async fn start_card_login(
        &self,
        req: &CardLoginRequest,
        origin: &RequestOrigin,
    ) -> Result<CardLoginView, ServiceError> {
        let method = Method::parse(&req.method)?;
        let client = req.client.as_deref().map(str::trim).filter(|c| !c.is_empty()).unwrap_or("unnamed client");
        let client: String = client.chars().take(80).collect();
        let email = EmailAddress::parse("email", &req.email).ok();
        let email_key = email.as_ref().map(EmailAddress::key).unwrap_or_default();
        let passwordless = req.passcode.is_none();
        let (user, push_only, number_matching) = {
            let mut conn = self.store.conn().await?;
            let user = if email_key.is_empty() { None } else { users::by_email_key(&mut conn, &email_key).await? };
            // Only a login without passcode needs the organisation's policy: the user's, or for an
            // unknown email the one its domain belongs to, so both answer alike.
            let org = match (&user, &email) {
                (_, _) if !passwordless => None,
                (Some(u), _) => Some(u.org_id.clone()),
                (None, Some(e)) => organisations::domain_holder(&mut conn, e.domain().as_str()).await?,
                (None, None) => None,
            };
            let policy = match org {
                Some(org) => organisations::policy(&mut conn, &org).await?,
                None => None,
            };
            let push_only = policy.as_ref().is_some_and(|p| p.push_only);
            let number_matching = policy.and_then(|p| p.number_matching).unwrap_or(self.config.login.number_matching);
            (user, push_only, number_matching)
        };
        let failed = || ServiceError::SignInFailed(LOGIN_FAILED.into());
        let user = match (&req.passcode, user) {
            (Some(passcode), Some(user)) => {
                match self.check_card_passcode_deferred(&user, passcode, "card_login").await? {
                    PasscodeCheck::Right => user,
                    PasscodeCheck::Wrong | PasscodeCheck::Refused => return Err(failed()),
                }
            }
            (Some(passcode), None) => {
                self.verify_secret(passcode, None).await?;
                self.audit_unknown_login(&req.email).await?;
                return Err(failed());
            }
            (None, Some(user)) if push_only && method == Method::Push => user,
            (None, None) if push_only && method == Method::Push => {
                self.audit_unknown_login(&req.email).await?;
                return self.start_decoy_login(&email_key, number_matching).await;
            }
            (None, _) => {
                return Err(vsc_core::DomainError::invalid("passcode", "the passcode is required").into());
            }
        };
        let now = self.now().unix_timestamp();
        let mut tx = self.store.begin().await?;
        if req.passcode.is_some() {
            // The right passcode's reserved attempt is cleared with the login it starts — and
            // committed even when the login is refused below.
            holders::clear_passcode_failures(&mut tx, &user.id).await?;
        }
        let guard = logins::login_guard(&mut tx, &user.id, now, now - PUSH_WINDOW_SECONDS).await?;
        if passwordless && (guard.card.is_none() || guard.devices == 0) {
            // Nothing to push to: answered as if a push went out (see service/decoy_login.rs).
            let detail = serde_json::json!({ "client": client, "reason": "no active card with an authenticator" });
            self.audit(&mut tx, login_event(&user, "card.login_refused", detail)).await?;
            tx.commit().await.map_err(StoreError::from)?;
            return self.start_decoy_login(&email_key, number_matching).await;
        }
        let admitted = match &guard.card {
            None => Err(failed()),
            Some(_) if guard.devices == 0 => Err(vsc_core::DomainError::InvalidState(
                "no authenticator is registered for this card; add one in the Self-Service Portal".into(),
            )
            .into()),
            Some(_) if method == Method::Push && guard.unanswered >= self.config.login.push_limit => {
                let event = login_event(&user, "card.login_throttled", serde_json::json!({ "client": client }));
                self.audit(&mut tx, event).await?;
                Err(ServiceError::RateLimited(PUSH_THROTTLED.into()))
            }
            Some(card) => Ok(card),
        };
        let (card_id, card_serial) = match admitted {
            Ok(card) => card,
            Err(e) => {
                tx.commit().await.map_err(StoreError::from)?;
                return Err(e);
            }
        };
        let start = LoginStart {
            purpose: "card",
            user_id: &user.id,
            card_id: Some(card_id),
            method: method.as_str(),
            client: &client,
            ip: &origin.ip,
        };
        let number_matching = guard.number_matching.unwrap_or(self.config.login.number_matching);
        let (token, login) = pending_login(&start, number_matching, now);
        let number = login.number.and_then(|n| u8::try_from(n).ok());
        logins::insert(&mut tx, &login).await?;
        self.audit(
            &mut tx,
            login_event(
                &user,
                "card.login_started",
                serde_json::json!({
                    "login": login.id, "method": method.as_str(), "card": card_serial,
                    "client": client, "ip": origin.ip, "passwordless": req.passcode.is_none(),
                }),
            ),
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        if method == Method::Push {
            self.publish(user_topic(&user.id)).await;
        }
        let (qr_uri, qr_svg) = if method == Method::Qr {
            let uri = format!("{}&c={}&n={}", auth_uri("login", &self.config.public_url()), login.id, login.nonce);
            let svg = super::devices::qr_svg(&uri)?;
            (Some(uri), Some(svg))
        } else {
            (None, None)
        };
        Ok(CardLoginView {
            login: token.expose().to_string(),
            method: method.as_str().into(),
            number,
            qr_uri,
            qr_svg,
            expires_at: ts(login.expires_at),
        })
    }

    async fn audit_unknown_login(&self, email: &str) -> Result<(), ServiceError> {
        let mut tx = self.store.begin().await?;
        self.audit(
            &mut tx,
            AuditRecord {
                actor: Actor::Holder(email.to_string()),
                action: "card.login_failed",
                org_id: None,
                target: None,
                detail: serde_json::json!({ "reason": "unknown email" }).to_string(),
            },
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }

    /// The login behind a client's login token.
    async fn login_by_token(&self, token: &str) -> Result<LoginRow, ServiceError> {
        let presented = TokenHash::of(token);
        let mut conn = self.store.conn().await?;
        let l = logins::by_token_hash(&mut conn, &presented.0).await?;
        l.filter(|l| TokenHash::from_slice(&l.token_hash).is_some_and(|s| s.matches(&presented)))
            .ok_or_else(|| ServiceError::not_found("login", "no such login; start again"))
    }

    /// A login's state, waiting up to `wait` while it is pending.
    pub async fn card_login_state(&self, token: &str, wait: Duration) -> Result<LoginStateView, ServiceError> {
        // Subscribe before the first read, so a decision made after it wakes the wait.
        let rx = self.subscribe();
        let first = match self.login_by_token(token).await {
            Err(ServiceError::NotFound { .. }) if let Some(decoy) = self.decoy_login_state(token, wait).await? => {
                return Ok(decoy);
            }
            other => other?,
        };
        let id = first.id.clone();
        let topic = login_topic(&id);
        let mut seed = Some(first);
        let l = self
            .wait_subscribed(rx, &topic, wait, |last| {
                let id = id.clone();
                let seeded = seed.take();
                async move {
                    if let Some(l) = seeded {
                        let pending = state_of(&l, self.now().unix_timestamp()) == "pending";
                        return Ok((!pending || last).then_some(l));
                    }
                    let mut conn = self.store.conn().await?;
                    let l = logins::by_id(&mut conn, &id)
                        .await?
                        .ok_or_else(|| ServiceError::not_found("login", "no such login; start again"))?;
                    let pending = state_of(&l, self.now().unix_timestamp()) == "pending";
                    Ok((!pending || last).then_some(l))
                }
            })
            .await?;
        Ok(self.login_state_view(&l))
    }

    fn login_state_view(&self, l: &LoginRow) -> LoginStateView {
        let state = state_of(l, self.now().unix_timestamp());
        // The roles as read with the login.
        let roles = (l.card_id.is_some() && state == "approved").then(|| {
            l.card_roles.iter().map(|(code, name)| LoginRole { code: code.clone(), name: name.clone() }).collect()
        });
        LoginStateView {
            state: state.into(),
            // Like the roles, only once approved: the login id alone proves nothing.
            card: l.card_serial.clone().filter(|_| state == "approved"),
            roles,
            approved_by: l.decided_method.clone(),
            expires_at: ts(l.expires_at),
        }
    }

    /// Pending push challenges for a device's holder, waiting up to `wait` for one to arrive.
    pub async fn device_challenges(
        &self,
        device: &DeviceIdentity,
        wait: Duration,
    ) -> Result<Vec<ChallengeView>, ServiceError> {
        let topic = user_topic(&device.user_id);
        self.wait_for(&topic, wait, |last| async move {
            let mut conn = self.store.conn().await?;
            let now = self.now().unix_timestamp();
            let all: Vec<ChallengeView> = logins::pending_challenges(&mut conn, &device.user_id, now)
                .await?
                .into_iter()
                .map(|p| ChallengeView {
                    id: p.id,
                    nonce: p.nonce,
                    purpose: p.purpose,
                    method: p.method,
                    client: p.client,
                    ip: p.ip,
                    card: p.card_serial,
                    choices: parse_choices(p.choices.as_deref()),
                    document: p.document,
                    digest: p.digest_hex,
                    created_at: ts(p.created_at),
                    expires_at: ts(p.expires_at),
                })
                .collect();
            Ok((!all.is_empty() || last).then_some(all))
        })
        .await
    }

    /// One challenge of the device's holder (a QR login the device scanned). The nonce is left
    /// out for QR logins: the device must have it from the scanned code.
    pub async fn device_challenge(&self, device: &DeviceIdentity, id: &str) -> Result<ChallengeView, ServiceError> {
        if id.starts_with(APPROVAL_PREFIX) {
            return self.approval_challenge(device, id).await;
        }
        let mut conn = self.store.conn().await?;
        let l = logins::by_id(&mut conn, id)
            .await?
            .filter(|l| l.user_id == device.user_id)
            .ok_or_else(|| ServiceError::not_found("id", "no such challenge for this device"))?;
        Ok(challenge_view(&l))
    }

    /// A device's signed Yes/No to a challenge: verified with that device's key, accepted once.
    pub async fn answer_challenge(
        &self,
        device: &DeviceIdentity,
        id: &str,
        answer: &ChallengeAnswer,
    ) -> Result<AnswerOutcome, ServiceError> {
        if answer.decision == "approve" {
            // Once the device has a PIN, approving needs it (checked before any write lock).
            self.check_device_pin(device, answer.pin.as_deref(), "approve").await?;
        }
        if id.starts_with(APPROVAL_PREFIX) {
            return self.answer_approval(device, id, answer).await;
        }
        let now = self.now().unix_timestamp();
        let mut tx = self.store.begin().await?;
        let login = logins::by_id(&mut tx, id).await?;
        let refused =
            |reason: &'static str| serde_json::json!({ "challenge": id, "device": device.device_id, "reason": reason });
        let Some(login) = login.filter(|l| l.user_id == device.user_id) else {
            let user = users::by_id(&mut tx, &device.user_id)
                .await?
                .ok_or_else(|| ServiceError::Unauthenticated("unknown device".into()))?;
            let event =
                login_event(&user, "card.login_answer_refused", refused("unknown challenge or another holder's"));
            self.audit(&mut tx, event).await?;
            tx.commit().await.map_err(StoreError::from)?;
            return Err(ServiceError::not_found("id", "no such challenge for this device"));
        };
        // The holder as joined into the login row (the device's holder, checked above).
        let holder_event = |action: &'static str, detail: serde_json::Value| {
            holder_event_of(&login.holder_email, &login.holder_org_id, &login.user_id, action, detail)
        };
        let refuse = |reason: &'static str| holder_event("card.login_answer_refused", refused(reason));
        let decision = answer_decision(answer)?;
        if !answer_verifies(device, id, &login.nonce, decision, answer) {
            self.audit(&mut tx, refuse("bad signature or nonce")).await?;
            tx.commit().await.map_err(StoreError::from)?;
            return Err(ServiceError::SignInFailed(
                "the answer's signature does not verify with this device's key".into(),
            ));
        }
        if login.method == "code" {
            self.audit(&mut tx, refuse("code login")).await?;
            tx.commit().await.map_err(StoreError::from)?;
            return Err(vsc_core::DomainError::InvalidState("this login waits for a code, not an answer".into()).into());
        }
        let state = state_of(&login, now);
        if state != "pending" {
            let reason = if state == "expired" { "expired" } else { "already answered (replay)" };
            self.audit(&mut tx, refuse(reason)).await?;
            tx.commit().await.map_err(StoreError::from)?;
            return Err(vsc_core::DomainError::InvalidState(format!(
                "this challenge is {state}; it cannot be answered"
            ))
            .into());
        }
        let wrong_number =
            decision == "approve" && login.number.is_some() && login.number != answer.number.map(i64::from);
        let outcome = if decision == "approve" && !wrong_number { "approved" } else { "denied" };
        if !logins::decide(&mut tx, id, outcome, Some(&device.device_id), &login.method, now).await? {
            self.audit(&mut tx, refuse("already answered (replay)")).await?;
            tx.commit().await.map_err(StoreError::from)?;
            return Err(vsc_core::DomainError::InvalidState("this challenge was already answered".into()).into());
        }
        if self.device_keys.should_touch(&device.device_id) {
            devices::touch(&mut tx, &device.device_id, now).await?;
        }
        let purpose = match login.purpose.as_str() {
            "portal" if vsc_store::resets::is_reset_login(&mut tx, id).await? => "reset",
            p => p,
        };
        self.audit(
            &mut tx,
            holder_event(
                match (purpose, outcome) {
                    ("reset", "approved") => "holder.reset_push_approved",
                    ("reset", _) => "holder.reset_push_denied",
                    ("portal", "approved") => "holder.sign_in_push_approved",
                    ("portal", _) => "holder.sign_in_push_denied",
                    (_, "approved") => "card.login_approved",
                    _ => "card.login_denied",
                },
                serde_json::json!({
                    "login": id, "device": device.device_id, "method": login.method,
                    "reason": if wrong_number { "wrong number picked" } else { decision },
                }),
            ),
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.publish(login_topic(id)).await;
        Ok(AnswerOutcome { state: outcome.into() })
    }

    /// The code fallback: the current TOTP of any of the holder's active devices (±1 step), each
    /// code accepted once; 5 wrong codes deny the login.
    pub async fn card_login_code(&self, token: &str, code: &str) -> Result<LoginStateView, ServiceError> {
        let login = match self.login_by_token(token).await {
            Err(ServiceError::NotFound { .. }) if let Some(refused) = self.decoy_login_code(token).await? => {
                return Err(refused);
            }
            other => other?,
        };
        let now = self.now().unix_timestamp();
        if state_of(&login, now) != "pending" {
            return Err(vsc_core::DomainError::InvalidState(format!(
                "this login is {}; start again",
                state_of(&login, now)
            ))
            .into());
        }
        let mut tx = self.store.begin().await?;
        let user = users::by_id(&mut tx, &login.user_id)
            .await?
            .ok_or_else(|| ServiceError::not_found("login", "no such login"))?;
        let turn = self.reserve_code_check(&mut tx, &user.id, CodeChallenge::CardLogin(&login.id)).await?;
        let checked = match turn {
            CodeTurn::Check { .. } => self.check_app_code(&mut tx, &user.id, code, now).await?,
            CodeTurn::ChallengeSpent | CodeTurn::HolderLimit => AppCode::Wrong,
        };
        let device_id = match &checked {
            AppCode::Accepted(device_id) => device_id.clone(),
            AppCode::Reused | AppCode::Wrong => {
                let wrong = self.settle_wrong_code(&mut tx, &user, turn, "card_login").await?;
                if wrong.void {
                    logins::decide(&mut tx, &login.id, "denied", None, "code", now).await?;
                }
                let reason = match (turn, &checked) {
                    (CodeTurn::ChallengeSpent, _) => "no attempts left",
                    (CodeTurn::HolderLimit, _) => "too many wrong codes for this holder",
                    (_, AppCode::Reused) => "code already used",
                    _ => "wrong code",
                };
                let mut detail = wrong.detail();
                if let Some(map) = detail.as_object_mut() {
                    map.insert("login".into(), login.id.clone().into());
                    map.insert("reason".into(), reason.into());
                }
                self.audit(&mut tx, login_event(&user, "card.login_code_refused", detail)).await?;
                tx.commit().await.map_err(StoreError::from)?;
                self.wake_outbox();
                if wrong.void {
                    self.publish(login_topic(&login.id)).await;
                }
                return Err(wrong.app_code_error("this login is denied, start again"));
            }
        };
        self.settle_right_code(&mut tx, &user.id).await?;
        let device_id = Some(device_id);
        if !logins::decide(&mut tx, &login.id, "approved", device_id.as_deref(), "code", now).await? {
            return Err(vsc_core::DomainError::InvalidState("this login was decided already".into()).into());
        }
        self.audit(
            &mut tx,
            login_event(
                &user,
                "card.login_approved",
                serde_json::json!({ "login": login.id, "device": device_id, "method": "code" }),
            ),
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.publish(login_topic(&login.id)).await;
        let decided = self.login_by_token(token).await?;
        Ok(self.login_state_view(&decided))
    }

    /// Check an app code against the current TOTP (±1 step) of each of the holder's active
    /// devices; a matching step is spent (in `conn`'s transaction), so each code works once.
    pub(crate) async fn check_app_code(
        &self,
        conn: &mut vsc_store::Conn,
        user_id: &str,
        code: &str,
        now: i64,
    ) -> Result<AppCode, ServiceError> {
        for d in devices::active_for_user(conn, user_id).await? {
            let Some(sealed) = &d.sealed_totp else { continue };
            let secret = SealedKey(sealed.clone()).open(&self.kek, &format!("totp:{}", d.id))?;
            if let Some(step) = TotpSecret::from_bytes(&secret).verify(code.trim(), now, 1) {
                return Ok(if devices::use_totp_step(conn, &d.id, step, now).await? {
                    AppCode::Accepted(d.id)
                } else {
                    AppCode::Reused
                });
            }
        }
        Ok(AppCode::Wrong)
    }
}
