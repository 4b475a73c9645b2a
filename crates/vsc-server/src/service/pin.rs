//! The authenticator's own PIN and the passcode reset from the authenticator. The PIN is checked
//! by the server (Argon2id hash per device): once set, approving a challenge and resetting the
//! passcode need it. Each check reserves its attempt atomically before Argon2id runs, so
//! concurrent wrong PINs are counted exactly; 5 lock the PIN until an RA issues a PIN-reset
//! token, which the device redeems once (a newer token voids older ones).

use vsc_core::enrolment::Passcode;
use vsc_core::{AuditRecord, DomainError};
use vsc_crypto::{SecretToken, TokenHash};
use vsc_proto::{DeviceResetPasscodeRequest, PinResetIssued, PinResetRequest, SetPinRequest};
use vsc_store::device_pins::{self, NewPinReset, PIN_MAX_FAILURES};
use vsc_store::{StoreError, devices, users};

use super::holder::holder_event;
use super::{DeviceIdentity, Principal, Vsc, new_id, ts};
use crate::ServiceError;
use crate::error::WRONG_PIN;

/// An RA PIN-reset token works this long.
pub const PIN_RESET_SECONDS: i64 = 24 * 60 * 60;

const PIN_LOCKED: &str = "this authenticator's PIN is locked after 5 wrong PINs; ask your Registration Authority \
     (RA) for a PIN reset";

/// A PIN: 4 to 8 digits.
pub(crate) fn parse_pin(field: &'static str, pin: &str) -> Result<String, DomainError> {
    let n = pin.chars().count();
    if !(4..=8).contains(&n) || !pin.chars().all(|c| c.is_ascii_digit()) {
        return Err(DomainError::invalid(field, "the PIN must be 4 to 8 digits"));
    }
    Ok(pin.to_string())
}

/// An audit event about a holder's device PIN, by the holder.
fn pin_event(user: &users::UserRow, device_id: &str, action: &'static str, detail: serde_json::Value) -> AuditRecord {
    let mut detail = detail;
    if let Some(map) = detail.as_object_mut() {
        map.insert("device".into(), device_id.into());
    }
    holder_event(user, action, detail)
}

impl Vsc {
    /// The device's holder.
    async fn device_user(&self, device: &DeviceIdentity) -> Result<users::UserRow, ServiceError> {
        let mut conn = self.store.conn().await?;
        users::by_id(&mut conn, &device.user_id)
            .await?
            .ok_or_else(|| ServiceError::Unauthenticated("this device is no longer registered".into()))
    }

    /// Argon2id of a secret, off the async threads.
    pub(crate) async fn hash_pin(&self, pin: &str) -> Result<String, ServiceError> {
        self.hash_secret(pin).await
    }

    async fn audit_pin(&self, rec: AuditRecord) -> Result<(), ServiceError> {
        let mut tx = self.store.begin().await?;
        self.audit(&mut tx, rec).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }

    /// Refuse a device without a PIN while `authenticator.require_pin` is on: it may only set
    /// its PIN (every other device request answers `409 ST0002PinRequired`).
    pub fn require_device_pin(&self, device: &DeviceIdentity) -> Result<(), ServiceError> {
        if self.config.authenticator.require_pin && !device.has_pin {
            return Err(ServiceError::PinRequired(
                "this authenticator has no PIN yet: set one (POST /api/v1/authenticator/pin, or \
                 `vsc authenticator pin set`) before it can approve, reset the passcode or do anything else"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Check the device's PIN for `purpose` (`approve`, `reset_passcode`, `change_pin`): passes
    /// when the device has no PIN; otherwise the PIN must be given and right. Wrong PINs are
    /// counted (reserved before the check) and the fifth locks the PIN; refusals are audited.
    pub(crate) async fn check_device_pin(
        &self,
        device: &DeviceIdentity,
        pin: Option<&str>,
        purpose: &'static str,
    ) -> Result<(), ServiceError> {
        if !device.has_pin {
            // Read with the request's authentication a moment ago: no PIN, nothing to check.
            return Ok(());
        }
        let state = {
            let mut conn = self.store.conn().await?;
            device_pins::state(&mut conn, &device.device_id).await?
        };
        let Some(state) = state else {
            return Err(ServiceError::Unauthenticated("this device is no longer registered".into()));
        };
        if !state.is_set() {
            return Ok(());
        }
        let user = self.device_user(device).await?;
        let refused = |reason: &str| {
            pin_event(
                &user,
                &device.device_id,
                "device.pin_refused",
                serde_json::json!({ "purpose": purpose, "reason": reason }),
            )
        };
        if state.is_locked() {
            self.audit_pin(refused("PIN locked")).await?;
            return Err(ServiceError::Forbidden(PIN_LOCKED.into()));
        }
        let Some(pin) = pin.filter(|p| !p.is_empty()) else {
            self.audit_pin(refused("no PIN given")).await?;
            return Err(DomainError::invalid("pin", "this authenticator has a PIN: enter it").into());
        };
        let slot = self.hash_slot()?;
        let reserved = {
            let mut conn = self.store.writer().await?;
            device_pins::reserve_attempt(&mut conn, &device.device_id).await?
        };
        let Some((attempt, stored)) = reserved else {
            self.audit_pin(refused("PIN locked")).await?;
            return Err(ServiceError::Forbidden(PIN_LOCKED.into()));
        };
        if self.verify_secret_in(slot, pin, Some(stored)).await? {
            let mut conn = self.store.writer().await?;
            device_pins::clear_failures(&mut conn, &device.device_id).await?;
            return Ok(());
        }
        let mut tx = self.store.begin().await?;
        let detail = serde_json::json!({ "purpose": purpose, "failures": attempt });
        self.audit(&mut tx, pin_event(&user, &device.device_id, "device.pin_wrong", detail)).await?;
        if attempt >= PIN_MAX_FAILURES {
            let detail = serde_json::json!({ "purpose": purpose });
            self.audit(&mut tx, pin_event(&user, &device.device_id, "device.pin_locked", detail)).await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        let left = PIN_MAX_FAILURES - attempt;
        if left <= 0 {
            return Err(ServiceError::Forbidden(format!("{WRONG_PIN}; {PIN_LOCKED}")));
        }
        Err(ServiceError::wrong_secret("pin", format!("{WRONG_PIN}; {left} attempt(s) left")))
    }

    /// Set the device's PIN (4 to 8 digits); changing one needs the current PIN (counted like
    /// any PIN check). Audited.
    pub async fn set_device_pin(&self, device: &DeviceIdentity, req: &SetPinRequest) -> Result<(), ServiceError> {
        let pin = parse_pin("pin", &req.pin)?;
        let previous = {
            let mut conn = self.store.conn().await?;
            device_pins::state(&mut conn, &device.device_id)
                .await?
                .ok_or_else(|| ServiceError::Unauthenticated("this device is no longer registered".into()))?
        };
        if previous.is_set() {
            if req.current_pin.as_deref().is_none_or(str::is_empty) && !previous.is_locked() {
                return Err(DomainError::invalid("current_pin", "give the current PIN to change it").into());
            }
            self.check_device_pin(device, req.current_pin.as_deref(), "change_pin").await?;
        }
        let hash = self.hash_pin(&pin).await?;
        let user = self.device_user(device).await?;
        let mut tx = self.store.begin().await?;
        if !device_pins::set_pin(&mut tx, &device.device_id, &hash, previous.pin_hash.as_deref()).await? {
            return Err(ServiceError::conflict("pin", "the PIN was changed meanwhile; try again"));
        }
        let action = if previous.is_set() { "device.pin_changed" } else { "device.pin_set" };
        self.audit(&mut tx, pin_event(&user, &device.device_id, action, serde_json::json!({}))).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }

    /// A new card passcode from a registered authenticator (its PIN too, once set): the same
    /// policy and effects as the emailed reset (unlocks locked cards, clears the failure count,
    /// ends every card session, "passcode changed" email, audit with the device); live
    /// forgotten-passcode links die.
    pub async fn reset_passcode_from_device(
        &self,
        device: &DeviceIdentity,
        req: &DeviceResetPasscodeRequest,
    ) -> Result<(), ServiceError> {
        let passcode = Passcode::parse("new_passcode", &req.new_passcode)?;
        self.check_device_pin(device, req.pin.as_deref(), "reset_passcode").await?;
        let user = self.device_user(device).await?;
        let enrolled = {
            let mut conn = self.store.conn().await?;
            vsc_store::holders::credentials(&mut conn, &user.id).await?.is_some()
        };
        if !enrolled {
            return Err(DomainError::InvalidState("this holder has no passcode to reset".into()).into());
        }
        let hash = self.hash_new_passcode(&user.id, &passcode, "new_passcode").await?;
        let at = self.now().unix_timestamp();
        let mut tx = self.store.begin().await?;
        let voided = device_pins::void_passcode_links(&mut tx, &user.id, at).await?;
        let detail =
            serde_json::json!({ "origin": "authenticator", "device": device.device_id, "reset_links_voided": voided });
        self.apply_new_passcode(&mut tx, &user, &hash, detail).await?;
        devices::touch(&mut tx, &device.device_id, at).await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.wake_outbox();
        Ok(())
    }

    /// RA: a single-use PIN-reset token for an active device of a holder in the caller's
    /// organisations (older tokens of the device are void), returned for the RA to read out.
    pub async fn issue_pin_reset(&self, who: &Principal, device_id: &str) -> Result<PinResetIssued, ServiceError> {
        let now = self.now().unix_timestamp();
        let not_found = || ServiceError::not_found("id", format!("no active device {device_id}"));
        let mut tx = self.store.begin().await?;
        let device = devices::by_id(&mut tx, device_id).await?.filter(|d| d.state == "active").ok_or_else(not_found)?;
        let user = users::by_id(&mut tx, &device.user_id).await?.ok_or_else(not_found)?;
        if !self.ensure_org(&mut tx, who, &user.org_id).await? {
            return Err(not_found());
        }
        let token = SecretToken::generate("vpr");
        let expires_at = now + PIN_RESET_SECONDS;
        let actor = who.actor();
        let issued_by = match &actor {
            vsc_core::Actor::Staff(email) => email.clone(),
            _ => "operator".to_string(),
        };
        let row = NewPinReset {
            id: &new_id(),
            device_id: &device.id,
            token_hash: &token.hash().0,
            issued_by: &issued_by,
            at: now,
            expires_at,
        };
        device_pins::replace_reset(&mut tx, &row).await?;
        self.audit(
            &mut tx,
            AuditRecord {
                actor,
                action: "device.pin_reset_issued",
                org_id: Some(user.org_id.clone()),
                target: Some(format!("user:{}", user.id)),
                detail: serde_json::json!({ "device": device.id }).to_string(),
            },
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(PinResetIssued { device_id: device.id, token: token.expose().to_string(), expires_at: ts(expires_at) })
    }

    /// The device redeems its newest RA PIN-reset token with a new PIN: the lock is cleared and
    /// the PIN replaced. A token works once and only for its device. Audited.
    pub async fn reset_device_pin(&self, device: &DeviceIdentity, req: &PinResetRequest) -> Result<(), ServiceError> {
        let pin = parse_pin("new_pin", &req.new_pin)?;
        let user = self.device_user(device).await?;
        let presented = TokenHash::of(req.token.trim());
        let row = {
            let mut conn = self.store.conn().await?;
            device_pins::reset_by_token_hash(&mut conn, &presented.0).await?
        };
        let row = row.filter(|r| TokenHash::from_slice(&r.token_hash).is_some_and(|s| s.matches(&presented)));
        let refuse = |reason: &str| {
            pin_event(&user, &device.device_id, "device.pin_reset_refused", serde_json::json!({ "reason": reason }))
        };
        let unknown = || ServiceError::not_found("token", "no such PIN reset for this device; check the token");
        let Some(row) = row else {
            self.audit_pin(refuse("unknown token")).await?;
            return Err(unknown());
        };
        if row.device_id != device.device_id {
            self.audit_pin(refuse("another device's token")).await?;
            return Err(unknown());
        }
        let now = self.now().unix_timestamp();
        if row.used_at.is_some() {
            self.audit_pin(refuse("token already used")).await?;
            return Err(ServiceError::LinkUsed("this PIN reset has already been used".into()));
        }
        if row.voided_at.is_some() || row.expires_at <= now {
            self.audit_pin(refuse("token void or expired")).await?;
            return Err(ServiceError::LinkExpired(
                "this PIN reset no longer works: a newer one was issued, or it expired; ask your RA".into(),
            ));
        }
        let hash = self.hash_pin(&pin).await?;
        let mut tx = self.store.begin().await?;
        if !device_pins::use_reset(&mut tx, &row.id, &device.device_id, self.now().unix_timestamp()).await? {
            return Err(ServiceError::LinkUsed("this PIN reset has already been used".into()));
        }
        device_pins::replace_pin(&mut tx, &device.device_id, &hash).await?;
        self.audit(&mut tx, pin_event(&user, &device.device_id, "device.pin_reset", serde_json::json!({}))).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_four_to_eight_digits() {
        for ok in ["1234", "12345678", "0000"] {
            assert!(parse_pin("pin", ok).is_ok(), "{ok}");
        }
        for bad in ["123", "123456789", "12a4", "", " 1234", "１２３４"] {
            assert!(parse_pin("pin", bad).is_err(), "{bad}");
        }
    }
}
