//! Enrolment: the invitation link sent at issuance, the holder's passcode and security answers,
//! the SMS code, and completion (card active, credentials stored, session opened) — each step one
//! transaction with its audit event and messages.

use time::Duration;
use vsc_core::enrolment::{self as rules, Passcode};
use vsc_core::{AuditRecord, CardState, CardType, DomainError, Mobile};
use vsc_crypto::{SecretToken, SystemRng, TokenHash};
use vsc_proto::{CardView, CodeSent, EnrolmentRequest, EnrolmentView, QuestionView, SessionView};
use vsc_store::cards::CardRow;
use vsc_store::code_ledger::CodeChallenge;
use vsc_store::enrolments::{self, EnrolmentRow};
use vsc_store::users::UserRow;
use vsc_store::{Conn, StoreError, cards, holders, users};

use super::holder::holder_event;
use super::second_factor::CodeTurn;
use super::{Principal, Vsc, ts, views};
use crate::ServiceError;
use crate::notify::templates;

/// Hash binding a one-time code to what it unlocks.
pub(crate) fn code_hash(scope: &str, code: &str) -> Vec<u8> {
    vsc_crypto::token::sha256(format!("{scope}:{code}").as_bytes()).to_vec()
}

/// Whether `code` (as typed: spaces allowed) is the one-time code stored as `stored` for
/// `scope`, compared in constant time; `false` when nothing is stored.
pub(crate) fn code_matches(scope: &str, code: &str, stored: Option<&[u8]>) -> bool {
    let (Some(code), Some(stored)) = (rules::clean_code(code), stored) else { return false };
    let presented = code_hash(scope, &code);
    TokenHash::from_slice(stored).zip(TokenHash::from_slice(&presented)).is_some_and(|(a, b)| a.matches(&b))
}

/// The scope of an enrolment code: the card and the number it was sent to, so the code that
/// completes enrolment confirms exactly that number.
fn enrolment_code_scope(card_id: &str, mobile: &str) -> String {
    format!("{card_id}:{mobile}")
}

fn card_type(c: &CardRow) -> CardType {
    if c.card_type == "v2" { CardType::V2 } else { CardType::V1 }
}

/// What a valid link leads to.
struct Opened {
    enrolment: EnrolmentRow,
    card: CardRow,
    user: UserRow,
}

impl Vsc {
    /// The absolute link for an enrolment token.
    fn enrolment_link(&self, token: &str) -> String {
        format!("{}/self-service/enrol/{token}", self.config.public_url())
    }

    /// Inside the issuing (or resending) transaction: a new single-use link (the old one dies) and
    /// the invitation email.
    pub(crate) async fn start_enrolment(
        &self,
        conn: &mut Conn,
        card: &CardRow,
        user: &UserRow,
    ) -> Result<(), ServiceError> {
        let now = self.now();
        let expires = now + Duration::days(rules::LINK_DAYS);
        let token = SecretToken::generate("vse");
        enrolments::upsert_link(conn, &card.id, &token.hash().0, now.unix_timestamp(), expires.unix_timestamp())
            .await?;
        let name = format!("{} {}", user.forename, user.surname);
        let mail = templates::invitation(
            &user.email,
            &name,
            card_type(card),
            &card.serial,
            &self.enrolment_link(token.expose()),
            expires,
        )
        .map_err(ServiceError::Startup)?;
        self.enqueue_email(conn, "invitation", &mail).await
    }

    /// RA: send a new invitation for a card that is not enrolled yet (the previous link dies).
    pub async fn resend_invitation(&self, who: &Principal, serial: &str) -> Result<CardView, ServiceError> {
        let mut tx = self.store.begin().await?;
        let card = self.visible_card(&mut tx, who, serial).await?;
        if card.state != CardState::Issued.as_str() {
            return Err(DomainError::InvalidState(format!(
                "card {} is {}, not awaiting enrolment",
                card.serial, card.state
            ))
            .into());
        }
        let user = users::by_id(&mut tx, &card.user_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("card without user".into()))?;
        self.start_enrolment(&mut tx, &card, &user).await?;
        self.audit(
            &mut tx,
            AuditRecord {
                actor: who.actor(),
                action: "enrolment.invitation_resent",
                org_id: Some(card.org_id.clone()),
                target: Some(format!("card:{}", card.serial)),
                detail: serde_json::json!({ "email": user.email }).to_string(),
            },
        )
        .await?;
        let view = views::load_card(&mut tx, &card, self.now()).await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.wake_outbox();
        Ok(view)
    }

    async fn open_link(&self, conn: &mut Conn, token: &str) -> Result<Opened, ServiceError> {
        let invalid =
            || ServiceError::not_found("token", "this enrolment link is not valid; check that you copied all of it");
        let presented = TokenHash::of(token);
        let (enrolment, stored) = enrolments::by_token(conn, &presented.0).await?.ok_or_else(invalid)?;
        if !TokenHash::from_slice(&stored).is_some_and(|s| s.matches(&presented)) {
            return Err(invalid());
        }
        if enrolment.completed_at.is_some() {
            return Err(ServiceError::LinkUsed(
                "this enrolment link has already been used; sign in to the Self-Service Portal instead".into(),
            ));
        }
        let card = cards::by_id(conn, &enrolment.card_id).await?.ok_or_else(invalid)?;
        if card.state != CardState::Issued.as_str() {
            return Err(ServiceError::LinkUsed(format!(
                "this card is {}; contact your Registration Authority (RA)",
                card.state
            )));
        }
        if self.now().unix_timestamp() >= enrolment.expires_at {
            return Err(ServiceError::LinkExpired(format!(
                "this enrolment link expired on {}; contact your Registration Authority (RA) for a new one",
                ts(enrolment.expires_at).date()
            )));
        }
        let user = users::by_id(conn, &card.user_id).await?.ok_or_else(invalid)?;
        Ok(Opened { enrolment, card, user })
    }

    /// What the holder sees on opening the link.
    pub async fn enrolment(&self, token: &str) -> Result<EnrolmentView, ServiceError> {
        let mut conn = self.store.conn().await?;
        let o = self.open_link(&mut conn, token).await?;
        let questions = holders::questions(&mut conn).await?;
        let now = self.now().unix_timestamp();
        let code_live = o.enrolment.passcode_hash.is_some()
            && o.enrolment.code_hash.is_some()
            && o.enrolment.code_expires_at.is_some_and(|t| t > now)
            && o.enrolment.code_attempts < rules::CODE_MAX_ATTEMPTS;
        let mobile = o.enrolment.mobile.clone().or(o.user.mobile.clone());
        Ok(EnrolmentView {
            forename: o.user.forename,
            surname: o.user.surname,
            serial: o.card.serial,
            card_type: o.card.card_type,
            expires_at: ts(o.enrolment.expires_at),
            step: if code_live { "code" } else { "choose" }.into(),
            needs_mobile: o.user.mobile.is_none(),
            mobile_hint: mobile.as_deref().map(rules::mobile_hint),
            questions: questions.into_iter().map(|q| QuestionView { id: q.id, text: q.text }).collect(),
        })
    }

    /// Step 1: passcode, three answers and (when missing) a mobile number; sends the SMS code.
    pub async fn submit_enrolment(&self, token: &str, req: &EnrolmentRequest) -> Result<CodeSent, ServiceError> {
        let passcode = Passcode::parse("passcode", &req.passcode)?;
        let answers = rules::check_answers(
            "answers",
            &req.answers.iter().map(|a| (a.question, a.answer.clone())).collect::<Vec<_>>(),
        )?;
        let given_mobile =
            req.mobile.as_deref().filter(|m| !m.trim().is_empty()).map(|m| Mobile::parse("mobile", m)).transpose()?;
        {
            let mut conn = self.store.conn().await?;
            let o = self.open_link(&mut conn, token).await?;
            if o.user.mobile.is_none() && given_mobile.is_none() {
                return Err(
                    DomainError::invalid("mobile", "enter a mobile number to receive the verification code").into()
                );
            }
            let catalogue = holders::questions(&mut conn).await?;
            if let Some((q, _)) = answers.iter().find(|(q, _)| !catalogue.iter().any(|c| c.id == *q)) {
                return Err(DomainError::invalid("answers", format!("question {q} is not in the catalogue")).into());
            }
        }
        // Argon2id is deliberately slow: hash outside the transaction, on the hash pool.
        let passcode_hash = self.hash_secret(passcode.expose()).await?;
        let mut answer_hashes = Vec::with_capacity(answers.len());
        for (q, ans) in &answers {
            answer_hashes.push((*q, self.hash_secret(ans).await?));
        }
        let answers_json = serde_json::to_string(&answer_hashes).map_err(|e| ServiceError::Startup(e.to_string()))?;

        let mut tx = self.store.begin().await?;
        let o = self.open_link(&mut tx, token).await?;
        let mobile = o.user.mobile.clone().or(given_mobile.as_ref().map(|m| m.as_str().to_string()));
        let mobile = mobile.ok_or_else(|| DomainError::invalid("mobile", "enter a mobile number"))?;
        enrolments::save_choices(
            &mut tx,
            &o.card.id,
            &passcode_hash,
            &answers_json,
            given_mobile.as_ref().filter(|_| o.user.mobile.is_none()).map(Mobile::as_str),
        )
        .await?;
        let sent = self.send_enrolment_code(&mut tx, &o, &mobile, false).await?;
        self.audit(
            &mut tx,
            AuditRecord {
                actor: vsc_core::Actor::Holder(o.user.email.clone()),
                action: "enrolment.choices_saved",
                org_id: Some(o.card.org_id.clone()),
                target: Some(format!("card:{}", o.card.serial)),
                detail: serde_json::json!({ "questions": answers.iter().map(|(q, _)| q).collect::<Vec<_>>() })
                    .to_string(),
            },
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.wake_outbox();
        Ok(sent)
    }

    /// Send a code unless one was sent within the resend interval (`force` errors instead of
    /// quietly keeping the live code).
    async fn send_enrolment_code(
        &self,
        conn: &mut Conn,
        o: &Opened,
        mobile: &str,
        force: bool,
    ) -> Result<CodeSent, ServiceError> {
        let now = self.now().unix_timestamp();
        if let (Some(sent), Some(expires)) = (o.enrolment.code_sent_at, o.enrolment.code_expires_at) {
            let wait = sent + rules::CODE_RESEND_SECONDS - now;
            if wait > 0 {
                if force {
                    return Err(ServiceError::RateLimited(format!(
                        "a code was just sent; you can ask for another in {wait} s"
                    )));
                }
                if expires > now && o.enrolment.code_attempts < rules::CODE_MAX_ATTEMPTS {
                    return Ok(CodeSent {
                        status: "code_sent".into(),
                        mobile_hint: rules::mobile_hint(mobile),
                        expires_at: ts(expires),
                    });
                }
            }
        }
        let code = rules::one_time_code(&mut SystemRng);
        let expires = now + rules::CODE_TTL_SECONDS;
        let hash = code_hash(&enrolment_code_scope(&o.card.id, mobile), &code);
        enrolments::save_code(conn, &o.card.id, &hash, now, expires).await?;
        self.enqueue_sms(conn, "enrolment_code", &templates::sms_code(mobile, &code)).await?;
        Ok(CodeSent { status: "code_sent".into(), mobile_hint: rules::mobile_hint(mobile), expires_at: ts(expires) })
    }

    /// Send a fresh code (rate-limited).
    pub async fn resend_enrolment_code(&self, token: &str) -> Result<CodeSent, ServiceError> {
        let mut tx = self.store.begin().await?;
        let o = self.open_link(&mut tx, token).await?;
        if o.enrolment.passcode_hash.is_none() {
            return Err(DomainError::InvalidState("choose your passcode and security questions first".into()).into());
        }
        let mobile = o
            .enrolment
            .mobile
            .clone()
            .or(o.user.mobile.clone())
            .ok_or_else(|| DomainError::invalid("mobile", "no mobile number"))?;
        let sent = self.send_enrolment_code(&mut tx, &o, &mobile, true).await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.wake_outbox();
        Ok(sent)
    }

    /// Step 2: the SMS code. Completes enrolment once, however many requests race.
    pub async fn verify_enrolment(&self, token: &str, code: &str) -> Result<SessionView, ServiceError> {
        let now = self.now().unix_timestamp();
        let mut tx = self.store.begin().await?;
        let o = self.open_link(&mut tx, token).await?;
        let (Some(passcode_hash), Some(answers_json)) =
            (o.enrolment.passcode_hash.clone(), o.enrolment.answers.clone())
        else {
            return Err(DomainError::InvalidState("choose your passcode and security questions first".into()).into());
        };
        let live = o.enrolment.code_hash.is_some()
            && o.enrolment.code_expires_at.is_some_and(|t| t > now)
            && o.enrolment.code_attempts < rules::CODE_MAX_ATTEMPTS;
        if !live {
            return Err(DomainError::InvalidState("this code is no longer valid; ask for a new code".into()).into());
        }
        // The number the code went to (as resending picks it); a code sent to a number that has
        // changed since no longer matches.
        let sent_to = o.enrolment.mobile.clone().or(o.user.mobile.clone()).unwrap_or_default();
        let turn = self.reserve_code_check(&mut tx, &o.user.id, CodeChallenge::Enrolment(&o.card.id)).await?;
        let ok = matches!(turn, CodeTurn::Check { .. })
            && code_matches(&enrolment_code_scope(&o.card.id, &sent_to), code, o.enrolment.code_hash.as_deref());
        if !ok {
            let wrong = self.settle_wrong_code(&mut tx, &o.user, turn, "enrolment").await?;
            let mut detail = wrong.detail();
            if let Some(map) = detail.as_object_mut() {
                map.insert("card".into(), o.card.serial.clone().into());
            }
            self.audit(&mut tx, holder_event(&o.user, "enrolment.code_wrong", detail)).await?;
            tx.commit().await.map_err(StoreError::from)?;
            self.wake_outbox();
            return Err(wrong.error("it is now void; ask for a new code"));
        }
        self.settle_right_code(&mut tx, &o.user.id).await?;
        if !enrolments::complete(&mut tx, &o.card.id, now).await? {
            return Err(ServiceError::LinkUsed("this enrolment link has already been used".into()));
        }
        let answers: Vec<(i64, String)> =
            serde_json::from_str(&answers_json).map_err(|_| StoreError::Corrupt("enrolment answers".into()))?;
        holders::set_passcode(&mut tx, &o.user.id, &passcode_hash, now).await?;
        holders::set_answers(&mut tx, &o.user.id, &answers).await?;
        if o.user.mobile.is_none()
            && let Some(m) = &o.enrolment.mobile
        {
            users::set_mobile(&mut tx, &o.user.id, m).await?;
        }
        if !cards::set_state(&mut tx, &o.card.id, CardState::Issued.as_str(), CardState::Active.as_str()).await? {
            return Err(ServiceError::LinkUsed("this card is no longer awaiting enrolment".into()));
        }
        let activated = holders::activate_directory_accounts(&mut tx, &o.user.id, now).await?;
        // The holder opened a link that was sent to this address: it is verified. The SMS code
        // they typed was sent to this number: it is verified too.
        holders::set_email_verified(&mut tx, &o.user.id, &o.user.email, now).await?;
        vsc_store::channels::set_mobile_verified(&mut tx, &o.user.id, &sent_to, now).await?;
        let session = self.open_session(&mut tx, &o.user.id).await?;
        let name = format!("{} {}", o.user.forename, o.user.surname);
        let mail = templates::setup_complete(
            &o.user.email,
            &name,
            card_type(&o.card),
            &o.card.serial,
            &format!("{}/self-service/", self.config.public_url()),
        )
        .map_err(ServiceError::Startup)?;
        self.enqueue_email(&mut tx, "setup_complete", &mail).await?;
        self.audit(
            &mut tx,
            AuditRecord {
                actor: vsc_core::Actor::Holder(o.user.email.clone()),
                action: "enrolment.completed",
                org_id: Some(o.card.org_id.clone()),
                target: Some(format!("card:{}", o.card.serial)),
                detail: serde_json::json!({ "card_state": "active", "directory_accounts_activated": activated })
                    .to_string(),
            },
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.wake_outbox();
        Ok(session)
    }

    /// Remind holders who have not enrolled after their organisation's reminder period, else the
    /// configured one (at most once per period, never after the link expired). A reminder carries
    /// a fresh link with the same expiry: links are stored only as hashes, so the old one cannot be
    /// re-sent, and it stops working.
    pub async fn send_reminders(&self) -> Result<usize, ServiceError> {
        let now = self.now();
        let period = self.config.reminder_days * 86_400;
        let due = {
            let mut conn = self.store.conn().await?;
            enrolments::due_reminders(&mut conn, now.unix_timestamp(), period, 100).await?
        };
        let mut sent = 0;
        for e in due {
            let mut tx = self.store.begin().await?;
            // Re-check inside the transaction: another node may have reminded already.
            let Some(fresh) = enrolments::by_card(&mut tx, &e.card_id).await? else { continue };
            if fresh.completed_at.is_some() || fresh.reminded_at != e.reminded_at {
                continue;
            }
            let Some(card) = cards::by_id(&mut tx, &e.card_id).await? else { continue };
            let Some(user) = users::by_id(&mut tx, &card.user_id).await? else { continue };
            let token = SecretToken::generate("vse");
            enrolments::replace_token(&mut tx, &card.id, &token.hash().0, now.unix_timestamp()).await?;
            let name = format!("{} {}", user.forename, user.surname);
            let mail = templates::reminder(
                &user.email,
                &name,
                card_type(&card),
                &card.serial,
                &self.enrolment_link(token.expose()),
                ts(e.expires_at),
            )
            .map_err(ServiceError::Startup)?;
            self.enqueue_email(&mut tx, "reminder", &mail).await?;
            self.audit(
                &mut tx,
                AuditRecord {
                    actor: vsc_core::Actor::System,
                    action: "enrolment.reminded",
                    org_id: Some(card.org_id.clone()),
                    target: Some(format!("card:{}", card.serial)),
                    detail: serde_json::json!({ "email": user.email }).to_string(),
                },
            )
            .await?;
            tx.commit().await.map_err(StoreError::from)?;
            sent += 1;
        }
        if sent > 0 {
            self.wake_outbox();
        }
        Ok(sent)
    }
}
