//! Applying an approved change request: each intent is re-checked against the holder as they are
//! now (an email changed meanwhile, a card no longer locked, a device gone) and applied through
//! the same code as an action without dual control, in the approval's transaction.

use vsc_core::change_request::ChangeAction;
use vsc_core::{DomainError, EmailAddress, Mobile};
use vsc_store::users::UserRow;
use vsc_store::{Conn, StoreError, cards, users};

use super::super::{Principal, Vsc, views};
use super::detail_str;
use crate::ServiceError;

/// The approval no longer fits the holder: it must be rejected and asked again.
fn stale(what: &str) -> ServiceError {
    DomainError::InvalidState(format!("{what} since this request was made; reject it and ask again")).into()
}

impl Vsc {
    /// Apply `action` on `target` for `user` as `who` (the approver); returns the user or card as
    /// it is now.
    pub(super) async fn apply_change(
        &self,
        tx: &mut Conn,
        who: &Principal,
        user: &UserRow,
        action: ChangeAction,
        target: &str,
        payload: &serde_json::Value,
    ) -> Result<serde_json::Value, ServiceError> {
        let now = self.now();
        match action {
            ChangeAction::Email => {
                if detail_str(payload, "old") != Some(user.email.as_str()) {
                    return Err(stale("the holder's email address has changed"));
                }
                let new = EmailAddress::parse("email", detail_str(payload, "new").unwrap_or_default())?;
                self.change_email(tx, who, user, &new, None, None).await?;
            }
            ChangeAction::Mobile => {
                if detail_str(payload, "old") != user.mobile.as_deref() {
                    return Err(stale("the holder's mobile number has changed"));
                }
                let new = detail_str(payload, "new").map(|m| Mobile::parse("mobile", m)).transpose()?;
                self.change_mobile(tx, who, user, new.as_ref()).await?;
            }
            ChangeAction::DeleteLastDevice => {
                self.delete_device_now(tx, who, user, target).await?;
            }
            ChangeAction::Unlock | ChangeAction::Restart | ChangeAction::Resume => {
                let card = cards::by_serial(tx, target)
                    .await?
                    .filter(|c| c.user_id == user.id)
                    .ok_or_else(|| stale("the card is gone"))?;
                match action {
                    ChangeAction::Unlock => self.unlock_now(tx, who, &card).await?,
                    ChangeAction::Restart => self.restart_now(tx, who, &card).await?,
                    _ => self.apply_card_resume(tx, who, &card).await?,
                }
                let row =
                    cards::by_id(tx, &card.id).await?.ok_or_else(|| StoreError::Corrupt("card vanished".into()))?;
                let view = views::load_card(tx, &row, now).await?;
                return serde_json::to_value(view).map_err(|e| ServiceError::Startup(format!("card view: {e}")));
            }
        }
        let row = users::by_id(tx, &user.id).await?.ok_or_else(|| StoreError::Corrupt("user vanished".into()))?;
        let view = views::load_user(tx, row, now).await?;
        serde_json::to_value(view).map_err(|e| ServiceError::Startup(format!("user view: {e}")))
    }
}
