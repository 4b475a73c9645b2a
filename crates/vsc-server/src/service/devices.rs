//! Authenticator devices: the holder adds one in the Self-Service Portal (confirmed with a code
//! emailed to them), the authenticator registers it from the scanned registration URI (device
//! key, proof of possession and the card passcode), and the holder lists and deletes them. The
//! protocol is in `docs/authenticator.md`.

use time::Duration;
use vsc_core::enrolment::{self as rules};
use vsc_core::{Actor, AuditRecord, DomainError};
use vsc_crypto::device_token::{register_message, unb64};
use vsc_crypto::totp::{DIGITS, STEP_SECONDS, TotpSecret};
use vsc_crypto::{SealedKey, SecretToken, SystemRng, TokenHash};
use vsc_proto::{
    AddDeviceRequest, AuthenticatorView, DeviceCreated, DeviceList, DeviceRegistrationView, DeviceView,
    RegisterDeviceRequest, RegisteredDevice, TotpParameters,
};
use vsc_store::code_ledger::CodeChallenge;
use vsc_store::devices::{self, DeviceRow, MAX_ACTIVE_DEVICES, NewDevice, Registration};
use vsc_store::{StoreError, users};

use super::enrolment::{code_hash, code_matches};
use super::passcode::{PasscodeCheck, passcode_refused};
use super::second_factor::CodeTurn;
use super::verified_channels::EMAIL_UNCONFIRMED_HOLDER;
use super::{DeviceIdentity, Holder, Vsc, new_id, ts, views};
use crate::ServiceError;
use crate::notify::templates;

/// A registration token (the QR code) is valid this long.
pub const REGISTRATION_SECONDS: i64 = 10 * 60;

/// The longest device name.
const NAME_MAX_CHARS: usize = 60;

/// The longest client version, platform or platform version an authenticator may report.
const CLIENT_FIELD_MAX_CHARS: usize = 100;

/// Device types a holder can choose.
pub const DEVICE_TYPES: [&str; 3] = ["phone", "tablet", "desktop"];

/// Authenticator apps a device can run (only ours so far).
pub const AUTHENTICATOR_TYPES: [&str; 1] = ["vsc"];

const FULL: &str = "you already have 3 authenticator devices; delete one before adding another";

/// Context binding a sealed TOTP secret to its device row.
fn totp_context(device_id: &str) -> String {
    format!("totp:{device_id}")
}

/// The holder-facing view of a device row.
pub(crate) fn device_view(d: &DeviceRow) -> DeviceView {
    DeviceView {
        id: d.id.clone(),
        name: d.name.clone(),
        device_type: d.device_type.clone(),
        authenticator_type: d.authenticator_type.clone(),
        state: d.state.clone(),
        client_version: d.client_version.clone(),
        platform: d.platform.clone(),
        platform_version: d.platform_version.clone(),
        created_at: ts(d.created_at),
        registered_at: d.registered_at.map(ts),
        last_used_at: d.last_used_at.map(ts),
        pin_set: None,
        pin_locked: None,
    }
}

/// An audit event about a holder's device.
fn device_event(user: &users::UserRow, actor: Actor, action: &'static str, detail: serde_json::Value) -> AuditRecord {
    AuditRecord {
        actor,
        action,
        org_id: Some(user.org_id.clone()),
        target: Some(format!("user:{}", user.id)),
        detail: detail.to_string(),
    }
}

/// Percent-encode everything but RFC 3986 unreserved characters (for a URI query value).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The URI an authenticator scans to register.
pub fn registration_uri(public_url: &str, token: &str) -> String {
    format!("vsc-auth://register?v=1&url={}&t={}", percent_encode(public_url), percent_encode(token))
}

/// `text` as a QR code, an SVG document (without the XML declaration, so it can also be placed
/// inline in HTML).
pub fn qr_svg(text: &str) -> Result<String, ServiceError> {
    let code = qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| ServiceError::Startup(format!("QR code: {e}")))?;
    let svg = code.render::<qrcode::render::svg::Color>().min_dimensions(240, 240).quiet_zone(true).build();
    Ok(match svg.find("<svg") {
        Some(start) => svg.get(start..).unwrap_or(&svg).to_string(),
        None => svg,
    })
}

/// A reported client field, trimmed and bounded.
fn client_field(field: &'static str, value: &str) -> Result<String, DomainError> {
    let v = value.trim();
    if v.is_empty() || v.chars().count() > CLIENT_FIELD_MAX_CHARS || v.chars().any(char::is_control) {
        return Err(DomainError::invalid(field, format!("give 1 to {CLIENT_FIELD_MAX_CHARS} printable characters")));
    }
    Ok(v.to_string())
}

impl Vsc {
    async fn holder_user(&self, conn: &mut vsc_store::Conn, holder: &Holder) -> Result<users::UserRow, ServiceError> {
        users::by_id(conn, &holder.user_id).await?.ok_or_else(|| ServiceError::Unauthenticated("no such holder".into()))
    }

    /// Start adding a device: it is `pending_code` until the holder types the code emailed to
    /// them. Refused when the holder already has the most active devices allowed, or (409) while
    /// their email address is not confirmed.
    pub async fn add_device(&self, holder: &Holder, req: &AddDeviceRequest) -> Result<DeviceCreated, ServiceError> {
        let name = req.name.trim();
        let chars = name.chars().count();
        if chars == 0 || chars > NAME_MAX_CHARS || name.chars().any(char::is_control) {
            return Err(DomainError::invalid(
                "name",
                format!("give the device a name of 1 to {NAME_MAX_CHARS} characters"),
            )
            .into());
        }
        let device_type = req.device_type.trim();
        if !DEVICE_TYPES.contains(&device_type) {
            return Err(DomainError::invalid("device_type", "choose phone, tablet or desktop").into());
        }
        let authenticator_type = req.authenticator_type.as_deref().map(str::trim).unwrap_or("vsc");
        if !AUTHENTICATOR_TYPES.contains(&authenticator_type) {
            return Err(DomainError::invalid("authenticator_type", "the only authenticator type is vsc").into());
        }
        let now = self.now().unix_timestamp();
        let mut tx = self.store.begin().await?;
        let user = self.holder_user(&mut tx, holder).await?;
        // The code goes by email: only to an address the holder has confirmed.
        self.require_confirmed_email(&mut tx, &user.id, EMAIL_UNCONFIRMED_HOLDER).await?;
        devices::lock_holder(&mut tx, &user.id).await?;
        if devices::active_count(&mut tx, &user.id).await? >= MAX_ACTIVE_DEVICES {
            return Err(ServiceError::Conflict { field: None, message: FULL.into() });
        }
        let id = new_id();
        let code = rules::one_time_code(&mut SystemRng);
        devices::insert(
            &mut tx,
            &NewDevice {
                id: &id,
                user_id: &user.id,
                name,
                device_type,
                authenticator_type,
                code_hash: &code_hash(&format!("device:{id}"), &code),
                code_expires_at: now + rules::CODE_TTL_SECONDS,
                created_at: now,
            },
        )
        .await?;
        let mail = templates::device_code(&user.email, &format!("{} {}", user.forename, user.surname), name, &code)
            .map_err(ServiceError::Startup)?;
        self.enqueue_email(&mut tx, "device_code", &mail).await?;
        self.audit(
            &mut tx,
            device_event(
                &user,
                Actor::Holder(user.email.clone()),
                "device.add_started",
                serde_json::json!({ "device": id, "name": name, "device_type": device_type,
                    "authenticator_type": authenticator_type }),
            ),
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.wake_outbox();
        Ok(DeviceCreated { id })
    }

    /// The emailed code for a device being added → a single-use registration URI (and its QR
    /// code) for the authenticator. Codes last 10 minutes; 5 wrong codes void the code.
    pub async fn verify_device_code(
        &self,
        holder: &Holder,
        id: &str,
        code: &str,
    ) -> Result<DeviceRegistrationView, ServiceError> {
        let now = self.now();
        let mut tx = self.store.begin().await?;
        let user = self.holder_user(&mut tx, holder).await?;
        let d = devices::by_id(&mut tx, id)
            .await?
            .filter(|d| d.user_id == user.id)
            .ok_or_else(|| ServiceError::not_found("id", "no such device"))?;
        if d.state != "pending_code" {
            return Err(DomainError::InvalidState(
                "this device's code has already been confirmed; to show a new QR code, delete the device and add it again"
                    .into(),
            )
            .into());
        }
        let live = d.code_expires_at.is_some_and(|t| t > now.unix_timestamp())
            && d.code_attempts < rules::CODE_MAX_ATTEMPTS
            && d.code_hash.is_some();
        if !live {
            return Err(DomainError::InvalidState(
                "this code is no longer valid (it expired after 10 minutes, or was typed wrongly 5 times); delete the device and add it again"
                    .into(),
            )
            .into());
        }
        let turn = self.reserve_code_check(&mut tx, &user.id, CodeChallenge::Device(&d.id)).await?;
        let ok = matches!(turn, CodeTurn::Check { .. })
            && code_matches(&format!("device:{}", d.id), code, d.code_hash.as_deref());
        let actor = Actor::Holder(user.email.clone());
        if !ok {
            let wrong = self.settle_wrong_code(&mut tx, &user, turn, "device_code").await?;
            let mut detail = wrong.detail();
            if let Some(map) = detail.as_object_mut() {
                map.insert("device".into(), d.id.clone().into());
            }
            self.audit(&mut tx, device_event(&user, actor, "device.code_wrong", detail)).await?;
            tx.commit().await.map_err(StoreError::from)?;
            self.wake_outbox();
            return Err(wrong.error("it is no longer valid; delete the device and add it again"));
        }
        self.settle_right_code(&mut tx, &user.id).await?;
        let token = SecretToken::generate("vdr");
        let expires = now + Duration::seconds(REGISTRATION_SECONDS);
        if !devices::start_registration(&mut tx, &d.id, &token.hash().0, expires.unix_timestamp()).await? {
            return Err(DomainError::InvalidState("this device's code has already been confirmed".into()).into());
        }
        self.audit(&mut tx, device_event(&user, actor, "device.code_verified", serde_json::json!({ "device": d.id })))
            .await?;
        tx.commit().await.map_err(StoreError::from)?;
        let registration_uri = registration_uri(&self.config.public_url(), token.expose());
        let qr_svg = qr_svg(&registration_uri)?;
        Ok(DeviceRegistrationView { registration_uri, qr_svg, expires_at: expires })
    }

    /// The holder's devices, every state, oldest first.
    pub async fn list_devices(&self, holder: &Holder) -> Result<DeviceList, ServiceError> {
        let mut conn = self.store.conn().await?;
        let rows = devices::for_user(&mut conn, &holder.user_id).await?;
        Ok(DeviceList { devices: rows.iter().map(device_view).collect() })
    }

    /// Delete one of the holder's devices, in any state.
    pub async fn delete_device(&self, holder: &Holder, id: &str) -> Result<(), ServiceError> {
        let mut tx = self.store.begin().await?;
        let user = self.holder_user(&mut tx, holder).await?;
        let not_found = || ServiceError::not_found("id", "no such device");
        let d = devices::by_id(&mut tx, id).await?.filter(|d| d.user_id == user.id).ok_or_else(not_found)?;
        if !devices::delete(&mut tx, &user.id, &d.id).await? {
            return Err(not_found());
        }
        self.audit(
            &mut tx,
            device_event(
                &user,
                Actor::Holder(user.email.clone()),
                "device.deleted",
                serde_json::json!({ "device": d.id, "name": d.name, "state": d.state }),
            ),
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }

    /// The authenticator registers with the token from the scanned URI: its public key, a proof
    /// that it holds the private key, the holder's card passcode (a wrong one counts toward the
    /// card lockout) and the device's own PIN (required by `authenticator.require_pin`). Returns
    /// the device's TOTP secret, shown this once.
    pub async fn register_device(&self, req: &RegisterDeviceRequest) -> Result<RegisteredDevice, ServiceError> {
        let now = self.now().unix_timestamp();
        let presented = TokenHash::of(req.token.trim());
        let invalid = || {
            ServiceError::not_found(
                "token",
                "this registration code is not valid; scan the QR code shown in the Self-Service Portal again",
            )
        };
        let (d, user) = {
            let mut conn = self.store.conn().await?;
            let d = devices::by_registration_hash(&mut conn, &presented.0).await?.ok_or_else(invalid)?;
            let stored = d.registration_hash.as_deref().and_then(TokenHash::from_slice);
            if !stored.is_some_and(|s| s.matches(&presented)) {
                return Err(invalid());
            }
            let user = users::by_id(&mut conn, &d.user_id).await?.ok_or_else(invalid)?;
            (d, user)
        };
        if d.state != "pending_registration" {
            return Err(ServiceError::LinkUsed(
                "this registration code has already been used; to register another device, add it in the Self-Service Portal"
                    .into(),
            ));
        }
        if d.registration_expires_at.is_none_or(|t| t <= now) {
            return Err(ServiceError::LinkExpired(
                "this registration code has expired (it works for 10 minutes); delete the device in the Self-Service Portal and add it again"
                    .into(),
            ));
        }
        let client_version = client_field("client_version", &req.client_version)?;
        let platform = client_field("platform", &req.platform)?;
        let platform_version = client_field("platform_version", &req.platform_version)?;
        let public_key =
            unb64(&req.public_key).ok().filter(|k| vsc_crypto::device::is_valid_public_key(k)).ok_or_else(|| {
                DomainError::invalid("public_key", "not a P-256 public key (uncompressed SEC1 point, base64url)")
            })?;
        let proof = unb64(&req.proof).map_err(|_| DomainError::invalid("proof", "not base64url"))?;
        // The device's own PIN, checked for form before the passcode spends an attempt.
        let pin = match req.pin.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
            Some(pin) => Some(super::pin::parse_pin("pin", pin)?),
            None if self.config.authenticator.require_pin => {
                return Err(DomainError::invalid(
                    "pin",
                    "choose a PIN of 4 to 8 digits for this authenticator: it is asked before every approval",
                )
                .into());
            }
            None => None,
        };
        if !vsc_crypto::device::verify(&public_key, &register_message(req.token.trim()), &proof) {
            let mut tx = self.store.begin().await?;
            self.audit(
                &mut tx,
                device_event(
                    &user,
                    Actor::Holder(user.email.clone()),
                    "device.registration_refused",
                    serde_json::json!({ "device": d.id, "reason": "bad proof of possession" }),
                ),
            )
            .await?;
            tx.commit().await.map_err(StoreError::from)?;
            return Err(DomainError::invalid("proof", "the proof does not verify with this public key").into());
        }
        {
            // Refuse before the passcode is checked, so a full holder spends no attempt.
            let mut conn = self.store.conn().await?;
            if devices::active_count(&mut conn, &user.id).await? >= MAX_ACTIVE_DEVICES {
                return Err(ServiceError::Conflict { field: None, message: FULL.into() });
            }
        }
        match self.check_card_passcode(&user, &req.passcode, "device_registration").await? {
            PasscodeCheck::Right => {}
            PasscodeCheck::Wrong | PasscodeCheck::Refused => return Err(passcode_refused()),
        }
        // Hashed only once the passcode was right: an unauthenticated caller makes no work.
        let pin_hash = match &pin {
            Some(pin) => Some(self.hash_pin(pin).await?),
            None => None,
        };
        let totp = TotpSecret::generate();
        let sealed = SealedKey::seal(&self.kek, &totp_context(&d.id), totp.expose())?;
        let mut tx = self.store.begin().await?;
        devices::lock_holder(&mut tx, &user.id).await?;
        if devices::active_count(&mut tx, &user.id).await? >= MAX_ACTIVE_DEVICES {
            return Err(ServiceError::Conflict { field: None, message: FULL.into() });
        }
        // Checked again inside the transaction: the token may have been spent, or the device
        // deleted, while the passcode was checked.
        let current = devices::by_id(&mut tx, &d.id).await?.ok_or_else(invalid)?;
        if current.registration_expires_at.is_none_or(|t| t <= now) {
            return Err(ServiceError::LinkUsed("this registration code has already been used".into()));
        }
        let reg = Registration {
            public_key: &public_key,
            sealed_totp: &sealed.0,
            client_version: &client_version,
            platform: &platform,
            platform_version: &platform_version,
            pin_hash: pin_hash.as_deref(),
            at: now,
        };
        if !devices::activate(&mut tx, &d.id, &reg).await? {
            return Err(ServiceError::LinkUsed("this registration code has already been used".into()));
        }
        self.audit(
            &mut tx,
            device_event(
                &user,
                Actor::Holder(user.email.clone()),
                "device.registered",
                serde_json::json!({ "device": d.id, "name": d.name, "client_version": client_version,
                    "platform": platform, "platform_version": platform_version, "pin_set": pin_hash.is_some() }),
            ),
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(RegisteredDevice {
            device_id: d.id,
            totp: TotpParameters {
                secret: totp.base32(),
                algorithm: "SHA1".into(),
                digits: DIGITS,
                period: u32::try_from(STEP_SECONDS).unwrap_or(30),
            },
            holder: vsc_core::names::display_name(&user.forename, &user.surname, &user.subject_cn),
            email: user.email,
        })
    }

    /// What an authenticated device sees: itself, its holder and the holder's cards.
    pub async fn authenticator_view(&self, who: &DeviceIdentity) -> Result<AuthenticatorView, ServiceError> {
        let mut conn = self.store.conn().await?;
        let gone = || ServiceError::Unauthenticated("this device is no longer registered".into());
        let d =
            devices::by_id(&mut conn, &who.device_id).await?.filter(|d| d.user_id == who.user_id).ok_or_else(gone)?;
        let user = users::by_id(&mut conn, &who.user_id).await?.ok_or_else(gone)?;
        let view = views::load_user(&mut conn, user, self.now()).await?;
        let pin = vsc_store::device_pins::state(&mut conn, &d.id).await?;
        let mut device = device_view(&d);
        device.pin_set = Some(pin.as_ref().is_some_and(|p| p.is_set()));
        device.pin_locked = Some(pin.as_ref().is_some_and(|p| p.is_locked()));
        Ok(AuthenticatorView { device, holder: view.display_name, email: view.email, cards: view.cards })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_uris_encode_the_url() {
        let uri = registration_uri("https://vsc.example.nhs.uk:8443/base", "vdr_ab-C_9");
        assert_eq!(uri, "vsc-auth://register?v=1&url=https%3A%2F%2Fvsc.example.nhs.uk%3A8443%2Fbase&t=vdr_ab-C_9");
    }

    #[test]
    fn qr_codes_are_svg_documents() {
        let svg = qr_svg("vsc-auth://register?v=1&url=x&t=y").unwrap();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"), "{svg}");
        assert!(!svg.contains("style"), "no inline styles (the portal's CSP forbids them)");
    }
}
