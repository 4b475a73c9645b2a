//! Per-signature approvals: a "Sign document X?" push with the document's name and digest to the
//! holder's authenticators, answered Yes/No with a device signature like a login challenge, then
//! spent once by the signature it approved.

use std::time::Duration;

use vsc_crypto::TokenHash;
use vsc_proto::{AnswerOutcome, ApprovalView, ChallengeAnswer, ChallengeView};
use vsc_store::approvals::{self, ApprovalRow};
use vsc_store::signing::SigningContext;
use vsc_store::{StoreError, devices, logins, users};

use super::events::{login_topic, user_topic};
use super::holder::holder_event;
use super::login::{
    CHALLENGE_SECONDS, PUSH_WINDOW_SECONDS, RequestOrigin, answer_decision, answer_verifies, number_choices,
    parse_choices, random_number,
};
use super::{DeviceIdentity, Vsc, new_id, ts};
use crate::ServiceError;

/// Approval ids start with this, so a device's answer finds its table without a lookup.
pub(crate) const APPROVAL_PREFIX: &str = "sig-";

/// An approved signature must be made within this many seconds of the Yes.
const USE_WITHIN_SECONDS: i64 = 120;

/// What a signature asks approval for.
pub(super) struct ApprovalAsk<'a> {
    /// `authentication` / `signing`.
    pub purpose: &'a str,
    /// `raw` / `cades`.
    pub operation: &'a str,
    /// SHA-256 of the document, hex.
    pub digest_hex: &'a str,
    /// Document name.
    pub document: &'a str,
    /// The client's own description (shown on the authenticator).
    pub client: &'a str,
}

/// The state an approval shows now.
fn state_of(a: &ApprovalRow, now: i64) -> &'static str {
    match (a.state.as_str(), a.used_at) {
        ("approved", Some(_)) => "used",
        ("approved", None) => "approved",
        ("denied", _) => "denied",
        _ if a.expires_at <= now => "expired",
        _ => "pending",
    }
}

fn view(a: &ApprovalRow, now: i64) -> ApprovalView {
    ApprovalView {
        approval: a.id.clone(),
        state: state_of(a, now).into(),
        document: a.document.clone(),
        digest: a.digest_hex.clone(),
        key: a.key_purpose.clone(),
        number: a.number.and_then(|n| u8::try_from(n).ok()),
        expires_at: ts(a.expires_at),
    }
}

/// What a device is shown of an approval.
pub(super) fn challenge_view(a: &ApprovalRow) -> ChallengeView {
    ChallengeView {
        id: a.id.clone(),
        nonce: a.nonce.clone(),
        purpose: "signature".into(),
        method: "push".into(),
        client: a.client.clone(),
        ip: a.ip.clone(),
        card: None,
        choices: parse_choices(a.choices.as_deref()),
        document: Some(a.document.clone()),
        digest: Some(a.digest_hex.clone()),
        created_at: ts(a.created_at),
        expires_at: ts(a.expires_at),
    }
}

/// A document name as the authenticator shows it: trimmed, no control characters, at most 120
/// characters; `fallback` when empty.
pub(super) fn document_name(name: Option<&str>, fallback: &str) -> String {
    let clean: String = name.unwrap_or("").chars().filter(|c| !c.is_control()).take(120).collect();
    let clean = clean.trim();
    if clean.is_empty() { fallback.to_string() } else { clean.to_string() }
}

/// The signature an approval is to release: it must be the one the approval was given for.
pub(super) struct Releasing<'a> {
    /// `authentication` or `signing`.
    pub(super) purpose: &'a str,
    /// `raw` or `cades`.
    pub(super) operation: &'a str,
    /// SHA-256 of the document, hex.
    pub(super) digest_hex: &'a str,
}

impl Vsc {
    /// Ask the holder's authenticators to approve one signature; returns the pending approval.
    pub(super) async fn request_approval(
        &self,
        ctx: &SigningContext,
        ask: &ApprovalAsk<'_>,
        origin: &RequestOrigin,
    ) -> Result<ApprovalView, ServiceError> {
        let now = self.now().unix_timestamp();
        let mut tx = self.store.begin().await?;
        if devices::active_count(&mut tx, &ctx.user_id).await? == 0 {
            return Err(vsc_core::DomainError::InvalidState(
                "this signature needs approval on an authenticator, and none is registered".into(),
            )
            .into());
        }
        let user = users::by_id(&mut tx, &ctx.user_id)
            .await?
            .ok_or_else(|| ServiceError::Unauthenticated("the holder is gone".into()))?;
        if approvals::unanswered_since(&mut tx, &ctx.user_id, now - PUSH_WINDOW_SECONDS).await?
            >= self.config.login.push_limit
        {
            self.audit(
                &mut tx,
                holder_event(&user, "card.signature_throttled", serde_json::json!({ "session": ctx.session_id })),
            )
            .await?;
            tx.commit().await.map_err(StoreError::from)?;
            return Err(ServiceError::RateLimited(
                "too many signature requests were not answered; wait a few minutes and try again".into(),
            ));
        }
        let number = ctx.number_matching.unwrap_or(self.config.login.number_matching).then(random_number);
        let row = ApprovalRow {
            id: format!("{APPROVAL_PREFIX}{}", new_id()),
            session_id: ctx.session_id.clone(),
            user_id: ctx.user_id.clone(),
            card_id: ctx.card_id.clone(),
            key_purpose: ask.purpose.into(),
            operation: ask.operation.into(),
            digest_hex: ask.digest_hex.into(),
            document: ask.document.into(),
            nonce: hex::encode(vsc_crypto::random::bytes::<16>()),
            number: number.map(i64::from),
            choices: number.map(|n| number_choices(n).iter().map(u8::to_string).collect::<Vec<_>>().join(",")),
            client: ask.client.chars().take(80).collect(),
            ip: origin.ip.clone(),
            state: "pending".into(),
            decided_by: None,
            created_at: now,
            expires_at: now + CHALLENGE_SECONDS,
            decided_at: None,
            used_at: None,
        };
        approvals::insert(&mut tx, &row).await?;
        self.audit(
            &mut tx,
            holder_event(
                &user,
                "card.signature_approval_requested",
                serde_json::json!({
                    "approval": row.id, "session": ctx.session_id, "card": ctx.card_serial, "key": ask.purpose,
                    "operation": ask.operation, "document": ask.document, "digest": ask.digest_hex, "ip": origin.ip,
                }),
            ),
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.publish(user_topic(&ctx.user_id)).await;
        Ok(view(&row, now))
    }

    /// Spend an approval for the signature it approved (inside the authorising transaction).
    pub(super) async fn spend_approval(
        &self,
        conn: &mut vsc_store::Conn,
        id: &str,
        ctx: &SigningContext,
        signature: &Releasing<'_>,
        now: i64,
    ) -> Result<(), ServiceError> {
        let spent_for = approvals::SpentFor {
            session_id: &ctx.session_id,
            key_purpose: signature.purpose,
            operation: signature.operation,
            digest_hex: signature.digest_hex,
            decided_after: now - USE_WITHIN_SECONDS,
        };
        if approvals::spend(conn, id, &spent_for, now).await? {
            return Ok(());
        }
        Err(vsc_core::DomainError::invalid(
            "approval",
            "this approval does not allow this signature: it is not (or no longer) approved, was used already, or was \
             given for another document, key, kind of signature (raw or CAdES) or session",
        )
        .into())
    }

    /// An approval's state for the session that asked, waiting up to `wait` while it is pending.
    pub async fn card_approval(&self, token: &str, id: &str, wait: Duration) -> Result<ApprovalView, ServiceError> {
        let presented = TokenHash::of(token);
        let session = {
            let mut conn = self.store.conn().await?;
            logins::session_by_token_hash(&mut conn, &presented.0)
                .await?
                .filter(|s| TokenHash::from_slice(&s.token_hash).is_some_and(|h| h.matches(&presented)))
                .ok_or_else(|| ServiceError::Unauthenticated("no open card session; log in again".into()))?
        };
        let a = self
            .wait_for(&login_topic(id), wait, |last| {
                let session_id = session.id.clone();
                async move {
                    let mut conn = self.store.conn().await?;
                    let a = approvals::by_id(&mut conn, id)
                        .await?
                        .filter(|a| a.session_id == session_id)
                        .ok_or_else(|| ServiceError::not_found("approval", "no such approval in this session"))?;
                    let pending = state_of(&a, self.now().unix_timestamp()) == "pending";
                    Ok((!pending || last).then_some(a))
                }
            })
            .await?;
        Ok(view(&a, self.now().unix_timestamp()))
    }

    /// One approval of the device's holder.
    pub(super) async fn approval_challenge(
        &self,
        device: &DeviceIdentity,
        id: &str,
    ) -> Result<ChallengeView, ServiceError> {
        let mut conn = self.store.conn().await?;
        approvals::by_id(&mut conn, id)
            .await?
            .filter(|a| a.user_id == device.user_id)
            .map(|a| challenge_view(&a))
            .ok_or_else(|| ServiceError::not_found("id", "no such challenge for this device"))
    }

    /// A device's signed Yes/No to a signature approval: verified with that device's key, once.
    pub(super) async fn answer_approval(
        &self,
        device: &DeviceIdentity,
        id: &str,
        answer: &ChallengeAnswer,
    ) -> Result<AnswerOutcome, ServiceError> {
        let now = self.now().unix_timestamp();
        let mut tx = self.store.begin().await?;
        let user = users::by_id(&mut tx, &device.user_id)
            .await?
            .ok_or_else(|| ServiceError::Unauthenticated("unknown device".into()))?;
        let refuse = |reason: &'static str| {
            holder_event(
                &user,
                "card.signature_answer_refused",
                serde_json::json!({ "approval": id, "device": device.device_id, "reason": reason }),
            )
        };
        let Some(a) = approvals::by_id(&mut tx, id).await?.filter(|a| a.user_id == device.user_id) else {
            self.audit(&mut tx, refuse("unknown approval or another holder's")).await?;
            tx.commit().await.map_err(StoreError::from)?;
            return Err(ServiceError::not_found("id", "no such challenge for this device"));
        };
        let decision = answer_decision(answer)?;
        if !answer_verifies(device, id, &a.nonce, decision, answer) {
            self.audit(&mut tx, refuse("bad signature or nonce")).await?;
            tx.commit().await.map_err(StoreError::from)?;
            return Err(ServiceError::SignInFailed(
                "the answer's signature does not verify with this device's key".into(),
            ));
        }
        let state = state_of(&a, now);
        if state != "pending" {
            self.audit(&mut tx, refuse(if state == "expired" { "expired" } else { "already answered (replay)" }))
                .await?;
            tx.commit().await.map_err(StoreError::from)?;
            return Err(vsc_core::DomainError::InvalidState(format!(
                "this challenge is {state}; it cannot be answered"
            ))
            .into());
        }
        let wrong_number = decision == "approve" && a.number.is_some() && a.number != answer.number.map(i64::from);
        let outcome = if decision == "approve" && !wrong_number { "approved" } else { "denied" };
        if !approvals::decide(&mut tx, id, outcome, &device.device_id, now).await? {
            self.audit(&mut tx, refuse("already answered (replay)")).await?;
            tx.commit().await.map_err(StoreError::from)?;
            return Err(vsc_core::DomainError::InvalidState("this challenge was already answered".into()).into());
        }
        devices::touch(&mut tx, &device.device_id, now).await?;
        self.audit(
            &mut tx,
            holder_event(
                &user,
                if outcome == "approved" { "card.signature_approved" } else { "card.signature_denied" },
                serde_json::json!({
                    "approval": id, "device": device.device_id, "document": a.document, "digest": a.digest_hex,
                    "key": a.key_purpose, "reason": if wrong_number { "wrong number picked" } else { decision },
                }),
            ),
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.publish(login_topic(id)).await;
        Ok(AnswerOutcome { state: outcome.into() })
    }
}
