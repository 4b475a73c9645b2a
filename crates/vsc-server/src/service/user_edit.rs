//! Editing a card holder: names (`user.names_changed`), mobile (`user.mobile_changed`; the new
//! number is unconfirmed until the holder types the code sent to it at their next portal
//! sign-in), subject CN (`user.subject_cn_changed`, unique) and email (`user.email_changed`: the
//! old address is told, the new one is unconfirmed and gets a confirmation link; through the
//! outbox, in the same transaction).

use askama::Template;
use vsc_core::change_request::ChangeAction;
use vsc_core::{AuditRecord, EmailAddress, Mobile, PersonName, SubjectCn};
use vsc_proto::UserView;
use vsc_store::{Conn, channels, holders, organisations, users};

use super::change_requests::Outcome;
use super::{Principal, Vsc, views};
use crate::ServiceError;
use crate::notify::email::EmailMessage;

pub use vsc_proto::user::UpdateUserRequest;

/// What the "email changed" email needs.
struct EmailChangedMail<'a> {
    subject: String,
    holder_name: &'a str,
    old: &'a str,
    new: &'a str,
}

#[derive(Template)]
#[template(path = "email/email_changed.txt")]
struct EmailChangedText<'a> {
    m: &'a EmailChangedMail<'a>,
}

#[derive(Template)]
#[template(path = "email/email_changed.html")]
struct EmailChangedHtml<'a> {
    m: &'a EmailChangedMail<'a>,
}

/// "Your email address was changed from `old` to `new`", to `to`.
fn email_changed(to: &str, holder_name: &str, old: &str, new: &str) -> Result<EmailMessage, ServiceError> {
    let m = EmailChangedMail {
        subject: "The email address of your virtual smartcard account was changed".into(),
        holder_name: holder_name.trim(),
        old,
        new,
    };
    let render = |e: askama::Error| ServiceError::Startup(format!("rendering the email-changed email: {e}"));
    let text = EmailChangedText { m: &m }.render().map_err(render)?;
    let html = EmailChangedHtml { m: &m }.render().map_err(render)?;
    Ok(EmailMessage { to: to.trim().to_string(), subject: m.subject.clone(), text, html })
}

impl Vsc {
    /// Change a user's names, mobile, subject CN and/or email (see [`UpdateUserRequest`]) in one
    /// transaction, each change audited old → new. The new subject CN must be free; the new
    /// email must be allowed by the organisation's domains and unique (case-insensitively); the
    /// old address is told and the new one, unconfirmed, gets a confirmation link. A new mobile
    /// number is unconfirmed until the holder confirms it. For an enrolled holder under dual
    /// control, the email and mobile changes become change requests (the others apply at once).
    pub async fn update_user(
        &self,
        who: &Principal,
        id: &str,
        req: &UpdateUserRequest,
    ) -> Result<Outcome<UserView>, ServiceError> {
        let forename = req.forename.as_deref().map(|f| PersonName::parse("forename", f)).transpose()?;
        let surname = req.surname.as_deref().map(|s| PersonName::parse("surname", s)).transpose()?;
        let email = req.email.as_deref().map(|e| EmailAddress::parse("email", e)).transpose()?;
        // Some(None): remove the number.
        let mobile = req
            .mobile
            .as_deref()
            .map(|m| if m.trim().is_empty() { Ok(None) } else { Mobile::parse("mobile", m).map(Some) })
            .transpose()?;
        let subject_cn = req.subject_cn.as_deref().map(|c| SubjectCn::parse("subject_cn", c)).transpose()?;
        let now = self.now();
        let mut tx = self.store.begin().await?;
        let user = self.visible_user(&mut tx, who, id).await?;
        if forename.is_some() || surname.is_some() {
            let new_fore = forename.as_ref().map_or(user.forename.as_str(), PersonName::as_str);
            let new_sur = surname.as_ref().map_or(user.surname.as_str(), PersonName::as_str);
            if new_fore != user.forename || new_sur != user.surname {
                users::set_names(&mut tx, &user.id, new_fore, new_sur).await?;
                self.audit(
                    &mut tx,
                    AuditRecord {
                        actor: who.actor(),
                        action: "user.names_changed",
                        org_id: Some(user.org_id.clone()),
                        target: Some(format!("user:{}", user.id)),
                        detail: serde_json::json!({
                            "old": format!("{} {}", user.forename, user.surname),
                            "new": format!("{new_fore} {new_sur}"),
                        })
                        .to_string(),
                    },
                )
                .await?;
            }
        }
        // Email and mobile of an enrolled holder under dual control become change requests.
        let approval = self.needs_approval(&mut tx, who, &user).await?;
        let mut requested = Vec::new();
        if let Some(mobile) = &mobile {
            let new = mobile.as_ref().map(Mobile::as_str);
            if new != user.mobile.as_deref() {
                if approval {
                    let payload = serde_json::json!({ "detail": { "old": user.mobile, "new": new } });
                    requested
                        .push(self.request_change(&mut tx, who, &user, ChangeAction::Mobile, &user.id, payload).await?);
                } else {
                    self.change_mobile(&mut tx, who, &user, mobile.as_ref()).await?;
                }
            }
        }
        if let Some(cn) = &subject_cn
            && cn.as_str() != user.subject_cn
        {
            let taken = || ServiceError::conflict("subject_cn", format!("subject CN {} is taken", cn.as_str()));
            if users::subject_cn_taken(&mut tx, cn.as_str()).await? {
                return Err(taken());
            }
            match holders::set_holder_subject_cn(&mut tx, &user.id, cn.as_str()).await {
                Err(vsc_store::StoreError::Constraint(_)) => return Err(taken()),
                r => r?,
            }
            let detail = serde_json::json!({ "old": user.subject_cn, "new": cn.as_str() });
            self.audit_user_change(&mut tx, who, &user, "user.subject_cn_changed", detail).await?;
        }
        let mut changed_email = false;
        if let Some(email) = &email
            && email.as_str() != user.email
        {
            if approval {
                // Refuse what the approval would refuse (domain, uniqueness) before asking anyone.
                self.check_new_email(&mut tx, who, &user, email).await?;
                let payload = serde_json::json!({ "detail": { "old": user.email, "new": email.as_str() } });
                requested.push(self.request_change(&mut tx, who, &user, ChangeAction::Email, &user.id, payload).await?);
            } else {
                self.change_email(&mut tx, who, &user, email, forename.as_ref(), surname.as_ref()).await?;
                changed_email = true;
            }
        }
        let row =
            users::by_id(&mut tx, &user.id).await?.ok_or_else(|| ServiceError::Startup("user vanished".into()))?;
        let view = views::load_user(&mut tx, row, now).await?;
        tx.commit().await.map_err(vsc_store::StoreError::from)?;
        if changed_email {
            self.wake_outbox();
        }
        Ok(if requested.is_empty() { Outcome::Done(view) } else { Outcome::Requested(requested) })
    }

    /// Audit a change of one of the user's details, old → new (caller's transaction).
    async fn audit_user_change(
        &self,
        tx: &mut Conn,
        who: &Principal,
        user: &users::UserRow,
        action: &'static str,
        detail: serde_json::Value,
    ) -> Result<(), ServiceError> {
        self.audit(
            tx,
            AuditRecord {
                actor: who.actor(),
                action,
                org_id: Some(user.org_id.clone()),
                target: Some(format!("user:{}", user.id)),
                detail: detail.to_string(),
            },
        )
        .await
    }

    /// Set (or with `None` remove) the user's mobile number, unconfirmed: no SMS code or second
    /// factor goes to it until the holder confirms it with a code sent there (see
    /// service/verified_channels.rs). Audited old → new in the caller's transaction; `false`
    /// (nothing done) when the number is unchanged.
    pub(crate) async fn change_mobile(
        &self,
        tx: &mut Conn,
        who: &Principal,
        user: &users::UserRow,
        new: Option<&Mobile>,
    ) -> Result<bool, ServiceError> {
        let new = new.map(Mobile::as_str);
        if new == user.mobile.as_deref() {
            return Ok(false);
        }
        channels::set_mobile_unverified(tx, &user.id, new).await?;
        let ended = self.end_holder_sessions(tx, &user.id, self.now().unix_timestamp()).await?;
        let detail = serde_json::json!({
            "old": user.mobile, "new": new, "mobile_verified": false, "sessions_ended": ended.detail(),
        });
        self.audit_user_change(tx, who, user, "user.mobile_changed", detail).await?;
        Ok(true)
    }

    /// The new email must be allowed by the holder's organisation and used by nobody else.
    async fn check_new_email(
        &self,
        tx: &mut Conn,
        who: &Principal,
        user: &users::UserRow,
        email: &EmailAddress,
    ) -> Result<(), ServiceError> {
        let org = organisations::by_code(tx, &user.org_code)
            .await?
            .ok_or_else(|| ServiceError::Startup("organisation vanished".into()))?;
        super::users::allowed_email_domain(&org, email)?;
        if let Some(other) = users::by_email_key(tx, &email.key()).await?
            && other.id != user.id
        {
            return Err(self.email_taken(tx, who, &other.org_id, email).await?);
        }
        Ok(())
    }

    /// Check and set the new email, unconfirmed; audit it; queue the "email changed" notice to
    /// the old address and a confirmation link to the new one (caller's transaction; the caller
    /// wakes the outbox after committing).
    pub(crate) async fn change_email(
        &self,
        tx: &mut Conn,
        who: &Principal,
        user: &users::UserRow,
        email: &EmailAddress,
        forename: Option<&PersonName>,
        surname: Option<&PersonName>,
    ) -> Result<(), ServiceError> {
        self.check_new_email(tx, who, user, email).await?;
        users::set_email(tx, &user.id, email.as_str(), &email.key()).await?;
        let ended = self.end_holder_sessions(tx, &user.id, self.now().unix_timestamp()).await?;
        self.audit(
            tx,
            AuditRecord {
                actor: who.actor(),
                action: "user.email_changed",
                org_id: Some(user.org_id.clone()),
                target: Some(format!("user:{}", user.id)),
                detail: serde_json::json!({
                    "old": user.email,
                    "new": email.as_str(),
                    "email_verified": false,
                    "confirmation_sent_to": email.as_str(),
                    "sessions_ended": ended.detail(),
                })
                .to_string(),
            },
        )
        .await?;
        let name = format!(
            "{} {}",
            forename.map_or(user.forename.as_str(), PersonName::as_str),
            surname.map_or(user.surname.as_str(), PersonName::as_str)
        );
        let mail = email_changed(&user.email, &name, &user.email, email.as_str())?;
        self.enqueue_email(tx, "email_changed", &mail).await?;
        // Links and codes go only to a confirmed address: the new one must prove it is the holder's.
        self.queue_email_verification(tx, &user.id, &name, email.as_str()).await?;
        Ok(())
    }
}
