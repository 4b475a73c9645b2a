//! The holder is told of every approved change at the address the change could not take away
//! (the old email, and the old mobile when the mobile changes), with a "This was not me" link:
//! single-use, 7 days, stored as SHA-256. Following it suspends the holder's cards until the RA
//! has checked with them.

use askama::Template;
use time::Duration;
use vsc_core::change_request::{ChangeAction, NOT_ME_SECONDS};
use vsc_core::{Actor, AuditRecord};
use vsc_crypto::{SecretToken, TokenHash};
use vsc_proto::NotMeOutcome;
use vsc_store::change_requests::{self as store, ChangeRequestRow, NotMeLink};
use vsc_store::users::UserRow;
use vsc_store::{Conn, StoreError, users};

use super::super::Vsc;
use super::detail_str;
use crate::ServiceError;
use crate::notify::email::EmailMessage;
use crate::notify::sms::SmsMessage;
use crate::notify::templates::time_and_date;

/// What the "change approved" email needs.
struct ChangeMail<'a> {
    subject: String,
    holder_name: &'a str,
    /// "14:05 UTC on 7 December 2026".
    at: String,
    /// What changed, in a sentence.
    what: String,
    link: &'a str,
}

#[derive(Template)]
#[template(path = "email/change_approved.txt")]
struct ChangeText<'a> {
    m: &'a ChangeMail<'a>,
}

#[derive(Template)]
#[template(path = "email/change_approved.html")]
struct ChangeHtml<'a> {
    m: &'a ChangeMail<'a>,
}

/// What the "This was not me" page shows before the holder confirms.
#[derive(Debug, Clone)]
pub struct NotMePage {
    /// The holder's forename.
    pub forename: String,
    /// What changed, in a sentence.
    pub what: String,
}

/// The change in a sentence, for the holder.
fn what_changed(action: ChangeAction, target: &str, payload: &serde_json::Value) -> String {
    let old = detail_str(payload, "old").unwrap_or("none");
    let new = detail_str(payload, "new").unwrap_or("none");
    match action {
        ChangeAction::Email => format!("The email address of your account was changed from {old} to {new}."),
        ChangeAction::Mobile => format!("The mobile number of your account was changed from {old} to {new}."),
        ChangeAction::DeleteLastDevice => format!(
            "Your authenticator \"{}\" was deleted: you have no authenticator now.",
            detail_str(payload, "name").unwrap_or("device")
        ),
        ChangeAction::Unlock => {
            format!("Card {target} is being unlocked: a link to choose a new passcode was sent to your email address.")
        }
        ChangeAction::Restart => {
            format!("The issuance of card {target} was restarted: new keys, and a new invitation to set it up.")
        }
        ChangeAction::Resume => format!("Card {target}, which was suspended, was resumed."),
    }
}

fn invalid_link() -> ServiceError {
    ServiceError::not_found("token", "this link is not valid; check that you copied all of it")
}

impl Vsc {
    /// Queue the notice of an approved request to the holder's old email (and, for a mobile
    /// change, an SMS to the old mobile), with a new "This was not me" link (caller's transaction).
    pub(super) async fn notify_change_approved(
        &self,
        tx: &mut Conn,
        user: &UserRow,
        row: &ChangeRequestRow,
        action: ChangeAction,
        payload: &serde_json::Value,
    ) -> Result<(), ServiceError> {
        let now = self.now();
        let token = SecretToken::generate("vsn");
        let expires = now + Duration::seconds(NOT_ME_SECONDS);
        store::insert_not_me(tx, &token.hash().0, &user.id, &row.id, now.unix_timestamp(), expires.unix_timestamp())
            .await?;
        let link = format!("{}/self-service/not-me/{}", self.config.public_url(), token.expose());
        let name = format!("{} {}", user.forename, user.surname);
        let m = ChangeMail {
            subject: "A change to your virtual smartcard account".into(),
            holder_name: name.trim(),
            at: time_and_date(now).map_err(ServiceError::Startup)?,
            what: what_changed(action, &row.target, payload),
            link: &link,
        };
        let render = |e: askama::Error| ServiceError::Startup(format!("rendering the change notice: {e}"));
        let text = ChangeText { m: &m }.render().map_err(render)?;
        let html = ChangeHtml { m: &m }.render().map_err(render)?;
        // `user` is the holder as they were before the change: the old address.
        let mail = EmailMessage { to: user.email.trim().to_string(), subject: m.subject.clone(), text, html };
        self.enqueue_email(tx, "change_approved", &mail).await?;
        if action == ChangeAction::Mobile
            && let Some(old) = &user.mobile
        {
            let sms = SmsMessage {
                to: old.clone(),
                body: format!(
                    "The mobile number of your vsc smartcard account was changed. Not you? Block your card: {link}"
                ),
            };
            self.enqueue_sms(tx, "change_approved", &sms).await?;
        }
        Ok(())
    }

    /// A live "This was not me" link, with its holder.
    async fn live_not_me(&self, conn: &mut Conn, token: &str) -> Result<(NotMeLink, UserRow), ServiceError> {
        let presented = TokenHash::of(token);
        let link = store::not_me(conn, &presented.0).await?.ok_or_else(invalid_link)?;
        if !TokenHash::from_slice(&link.token_hash).is_some_and(|s| s.matches(&presented)) {
            return Err(invalid_link());
        }
        if link.used_at.is_some() {
            return Err(ServiceError::LinkUsed(
                "this link has already been used: your card is blocked; contact your RA to resume it".into(),
            ));
        }
        if link.expires_at <= self.now().unix_timestamp() {
            return Err(ServiceError::LinkExpired(
                "this link has expired; if a change to your account was not you, contact your RA at once".into(),
            ));
        }
        let user = users::by_id(conn, &link.user_id).await?.ok_or_else(invalid_link)?;
        Ok((link, user))
    }

    /// What a live "This was not me" link is about (the page before the holder confirms).
    pub async fn not_me_page(&self, token: &str) -> Result<NotMePage, ServiceError> {
        let mut conn = self.store.conn().await?;
        let (link, user) = self.live_not_me(&mut conn, token).await?;
        let row = store::by_id(&mut conn, &link.change_request_id).await?.ok_or_else(invalid_link)?;
        let action = ChangeAction::parse(&row.action).ok_or_else(invalid_link)?;
        let payload: serde_json::Value = serde_json::from_str(&row.payload).unwrap_or_default();
        Ok(NotMePage { forename: user.forename, what: what_changed(action, &row.target, &payload) })
    }

    /// "This was not me": spend the link and suspend every active or locked card of the holder, in
    /// one transaction, audited `holder.reported_not_me`.
    pub async fn report_not_me(&self, token: &str) -> Result<NotMeOutcome, ServiceError> {
        let now = self.now().unix_timestamp();
        let mut tx = self.store.begin().await?;
        let (link, user) = self.live_not_me(&mut tx, token).await?;
        if !store::use_not_me(&mut tx, &link.token_hash, now).await? {
            return Err(ServiceError::LinkUsed("this link has already been used".into()));
        }
        let actor = Actor::Holder(user.email.clone());
        let suspended =
            self.suspend_holder_cards(&mut tx, actor.clone(), &user.id, "the holder reported: this was not me").await?;
        self.audit(
            &mut tx,
            AuditRecord {
                actor,
                action: "holder.reported_not_me",
                org_id: Some(user.org_id.clone()),
                target: Some(format!("user:{}", user.id)),
                detail: serde_json::json!({ "change_request": link.change_request_id, "suspended": suspended })
                    .to_string(),
            },
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(NotMeOutcome { suspended })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_notice_says_what_changed() {
        let p = serde_json::json!({ "detail": { "old": "a@x.org", "new": "b@x.org" } });
        assert_eq!(
            what_changed(ChangeAction::Email, "u", &p),
            "The email address of your account was changed from a@x.org to b@x.org."
        );
        let m = serde_json::json!({ "detail": { "old": "+447700900001", "new": null } });
        assert!(what_changed(ChangeAction::Mobile, "u", &m).ends_with("to none."));
        let d = serde_json::json!({ "detail": { "name": "Pixel" } });
        assert!(what_changed(ChangeAction::DeleteLastDevice, "dev", &d).contains("\"Pixel\""));
        assert!(what_changed(ChangeAction::Unlock, "1501", &p).contains("Card 1501"));
    }
}
