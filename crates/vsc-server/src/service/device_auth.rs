//! Authenticating an authenticator's requests: every request carries a fresh token signed by the
//! device key, bound to the request's method and path, valid briefly and accepted once.

use vsc_core::{Actor, AuditRecord};
use vsc_crypto::device_token::{self, TOKEN_MAX_LIFETIME};
use vsc_store::{StoreError, devices};

use super::Vsc;
use super::device_keys::KnownDevice;
use crate::ServiceError;

/// Clock skew tolerated between a device and the server, in seconds.
const SKEW_SECONDS: i64 = 30;

/// An authenticated device.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceIdentity {
    /// Device id.
    pub device_id: String,
    /// The holder's user id.
    pub user_id: String,
    /// The device's public key (SEC1), which verified the token.
    pub public_key: Vec<u8>,
    /// Whether the device had a PIN when the request was authenticated.
    pub has_pin: bool,
}

impl Vsc {
    /// Check a device token for a request `method path`; spends its one-time id.
    pub async fn authenticate_device(
        &self,
        token: &str,
        method: &str,
        path: &str,
    ) -> Result<DeviceIdentity, ServiceError> {
        let refuse = |why: &str| ServiceError::Unauthenticated(format!("device authentication failed: {why}"));
        let parsed = device_token::parse_token(token).map_err(|_| refuse("malformed device token"))?;
        let c = &parsed.claims;
        if !c.method.eq_ignore_ascii_case(method) || c.path != path {
            return Err(refuse("the token was made for another request"));
        }
        let now = self.now().unix_timestamp();
        if c.expires_at <= now
            || c.expires_at - c.issued_at > TOKEN_MAX_LIFETIME
            || c.issued_at > now + SKEW_SECONDS
            || c.expires_at < c.issued_at
        {
            return Err(refuse("the token has expired or its times are invalid (check the device clock)"));
        }
        let expires_at = c.expires_at + SKEW_SECONDS;
        if let Some(known) = self.device_keys.get(&c.device) {
            if parsed.verify(&known.public_key) {
                let spent = {
                    let mut writer = self.store.writer().await?;
                    devices::spend_jti_if_current(
                        &mut writer,
                        &c.jti,
                        &c.device,
                        &known.public_key,
                        known.has_pin,
                        expires_at,
                    )
                    .await?
                };
                if spent {
                    return Ok(identity(c.device.clone(), known));
                }
            }
            // Deleted, its PIN set or removed, or the token used before: the full check says which.
            self.device_keys.forget(&c.device);
        }
        let mut conn = self.store.conn().await?;
        let device = devices::by_id(&mut conn, &c.device).await?;
        let Some((device, key)) = device.and_then(|d| {
            let key = d.public_key.clone()?;
            (d.state == "active").then_some((d, key))
        }) else {
            return Err(refuse("unknown or inactive device"));
        };
        if !parsed.verify(&key) {
            return Err(refuse("bad signature"));
        }
        drop(conn);
        let spent = {
            let mut writer = self.store.writer().await?;
            devices::spend_jti(&mut writer, &c.jti, &device.id, expires_at).await?
        };
        if !spent {
            let mut tx = self.store.begin().await?;
            self.audit(
                &mut tx,
                AuditRecord {
                    actor: Actor::System,
                    action: "device.token_replayed",
                    org_id: None,
                    target: Some(format!("device:{}", device.id)),
                    detail: serde_json::json!({ "path": path, "user": device.user_id }).to_string(),
                },
            )
            .await?;
            tx.commit().await.map_err(StoreError::from)?;
            return Err(refuse("the token was already used"));
        }
        let known = KnownDevice { user_id: device.user_id, public_key: key, has_pin: device.has_pin };
        self.device_keys.put(&device.id, known.clone());
        Ok(identity(device.id, known))
    }

    /// Forget spent device-token ids whose tokens have expired.
    pub async fn prune_device_tokens(&self) -> Result<u64, ServiceError> {
        let mut writer = self.store.writer().await?;
        Ok(devices::prune_jtis(&mut writer, self.now().unix_timestamp()).await?)
    }
}

/// The identity of device `device_id`, as authenticated.
fn identity(device_id: String, d: KnownDevice) -> DeviceIdentity {
    DeviceIdentity { device_id, user_id: d.user_id, public_key: d.public_key, has_pin: d.has_pin }
}
