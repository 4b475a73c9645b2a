//! The authenticator's side of the device API: every request carries a fresh device-signed token
//! (`Authorization: Device <token>`, one-time, bound to the method and path), and answers to
//! challenges are signed with the device key (see `docs/authenticator.md`).

use std::sync::Arc;

use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;
use vsc_crypto::device::DeviceKey;
use vsc_crypto::device_token::{answer_message, b64, sign_token};
use vsc_proto::{
    AnswerOutcome, AuthenticatorView, ChallengeAnswer, ChallengeList, ChallengeView, DeviceResetPasscodeRequest,
    PinResetRequest, SetPinRequest,
};

use crate::{ClientError, decode, decode_empty, segment};

/// The longest long-poll the server grants, in seconds.
pub const MAX_WAIT: u32 = 60;

/// A Yes or No to a challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Yes: it is me logging in.
    Approve,
    /// No: refuse the login.
    Deny,
}

impl Decision {
    /// The wire word (`approve` / `deny`), also part of the signed answer.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Deny => "deny",
        }
    }
}

/// Unix seconds from the real clock: the device is the edge where tokens get their time.
#[allow(clippy::disallowed_methods)]
pub fn system_time() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A client acting as one registered device.
#[derive(Clone)]
pub struct DeviceClient {
    http: reqwest::Client,
    base: String,
    device_id: String,
    key: Arc<DeviceKey>,
    clock: fn() -> i64,
    pin: Option<Arc<str>>,
}

impl std::fmt::Debug for DeviceClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key stays out of debug output.
        f.debug_struct("DeviceClient").field("base", &self.base).field("device_id", &self.device_id).finish()
    }
}

impl DeviceClient {
    /// A client for `base` acting as device `device_id` holding `key`.
    pub fn new(base: &str, device_id: &str, key: DeviceKey) -> Self {
        DeviceClient {
            http: reqwest::Client::new(),
            base: base.trim_end_matches('/').to_string(),
            device_id: device_id.to_string(),
            key: Arc::new(key),
            clock: system_time,
            pin: None,
        }
    }

    /// The same client giving `pin` whenever an approval or a passcode reset names no PIN of its
    /// own (an authenticator that unlocked once, or a test device); denials never send it.
    pub fn with_pin(self, pin: &str) -> Self {
        DeviceClient { pin: Some(Arc::from(pin)), ..self }
    }

    /// The same client reading Unix seconds from `clock` (tests use a skewed clock).
    pub fn with_clock(self, clock: fn() -> i64) -> Self {
        DeviceClient { clock, ..self }
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The device id.
    pub fn device_id(&self) -> &str {
        &self.device_id
    }

    /// A fresh token for `method path` (path without query string).
    pub fn token(&self, method: &Method, path: &str) -> Result<String, ClientError> {
        Ok(sign_token(&self.key, &self.device_id, method.as_str(), path, (self.clock)())?)
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let token = self.token(&method, path)?;
        let mut req = self
            .http
            .request(method, format!("{}{path}{query}", self.base))
            .header(reqwest::header::AUTHORIZATION, format!("Device {token}"));
        if let Some(b) = body {
            req = req.json(b);
        }
        decode(req.send().await?).await
    }

    async fn call_no_content<B: Serialize>(&self, method: Method, path: &str, body: &B) -> Result<(), ClientError> {
        let token = self.token(&method, path)?;
        let req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header(reqwest::header::AUTHORIZATION, format!("Device {token}"))
            .json(body);
        decode_empty(req.send().await?).await
    }

    /// `GET /api/v1/authenticator/me`: this device, its holder and the holder's cards.
    pub async fn me(&self) -> Result<AuthenticatorView, ClientError> {
        self.call::<(), _>(Method::GET, "/api/v1/authenticator/me", "", None).await
    }

    /// `GET /api/v1/authenticator/challenges?wait=S`: pending challenges, waiting up to `wait`
    /// seconds (at most [`MAX_WAIT`]) for one to be made.
    pub async fn challenges(&self, wait: u32) -> Result<ChallengeList, ClientError> {
        let query = format!("?wait={}", wait.min(MAX_WAIT));
        self.call::<(), _>(Method::GET, "/api/v1/authenticator/challenges", &query, None).await
    }

    /// `GET /api/v1/authenticator/challenges/{id}` (after scanning a QR login).
    pub async fn challenge(&self, id: &str) -> Result<ChallengeView, ClientError> {
        let path = format!("/api/v1/authenticator/challenges/{}", segment(id)?);
        self.call::<(), _>(Method::GET, &path, "", None).await
    }

    /// `POST /api/v1/authenticator/challenges/{id}/answer`: a Yes/No signed with the device key;
    /// `number` is the number picked under number matching.
    pub async fn answer(
        &self,
        id: &str,
        nonce: &str,
        decision: Decision,
        number: Option<u8>,
    ) -> Result<AnswerOutcome, ClientError> {
        self.answer_with_pin(id, nonce, decision, number, None).await
    }

    /// [`DeviceClient::answer`] with the device's PIN (required to approve once one is set).
    pub async fn answer_with_pin(
        &self,
        id: &str,
        nonce: &str,
        decision: Decision,
        number: Option<u8>,
        pin: Option<&str>,
    ) -> Result<AnswerOutcome, ClientError> {
        let path = format!("/api/v1/authenticator/challenges/{}/answer", segment(id)?);
        let pin = match decision {
            Decision::Approve => pin.or(self.pin.as_deref()),
            Decision::Deny => pin,
        };
        let signature = self.key.sign(&answer_message(id, nonce, decision.as_str(), number))?;
        let body = ChallengeAnswer {
            decision: decision.as_str().to_string(),
            number,
            nonce: nonce.to_string(),
            signature: b64(&signature),
            pin: pin.map(String::from),
        };
        self.call(Method::POST, &path, "", Some(&body)).await
    }

    /// `POST /api/v1/authenticator/reset-passcode`: choose a new card passcode (unlocks a locked
    /// card); `pin` once the device has one.
    pub async fn reset_passcode(&self, new_passcode: &str, pin: Option<&str>) -> Result<(), ClientError> {
        let pin = pin.or(self.pin.as_deref()).map(String::from);
        let body = DeviceResetPasscodeRequest { new_passcode: new_passcode.to_string(), pin };
        self.call_no_content(Method::POST, "/api/v1/authenticator/reset-passcode", &body).await
    }

    /// `POST /api/v1/authenticator/pin`: set the device's PIN (`current_pin` to change one).
    pub async fn set_pin(&self, pin: &str, current_pin: Option<&str>) -> Result<(), ClientError> {
        let body = SetPinRequest { pin: pin.to_string(), current_pin: current_pin.map(String::from) };
        self.call_no_content(Method::POST, "/api/v1/authenticator/pin", &body).await
    }

    /// `POST /api/v1/authenticator/pin/reset`: redeem an RA PIN-reset token with a new PIN.
    pub async fn reset_pin(&self, token: &str, new_pin: &str) -> Result<(), ClientError> {
        let body = PinResetRequest { token: token.to_string(), new_pin: new_pin.to_string() };
        self.call_no_content(Method::POST, "/api/v1/authenticator/pin/reset", &body).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vsc_crypto::device_token::parse_token;

    #[test]
    fn tokens_name_the_method_and_the_path_without_query() {
        let key = DeviceKey::generate().unwrap();
        let public = key.public_key();
        let c = DeviceClient::new("http://127.0.0.1:1/", "dev-1", key).with_clock(|| 1_000);
        assert_eq!(c.base(), "http://127.0.0.1:1");
        let t = c.token(&Method::GET, "/api/v1/authenticator/challenges").unwrap();
        let p = parse_token(&t).unwrap();
        assert!(p.verify(&public));
        assert_eq!((p.claims.device.as_str(), p.claims.method.as_str()), ("dev-1", "GET"));
        assert_eq!(p.claims.path, "/api/v1/authenticator/challenges");
        assert_eq!(p.claims.issued_at, 1_000);
        let t2 = c.token(&Method::GET, "/api/v1/authenticator/challenges").unwrap();
        assert_ne!(t, t2, "each request gets its own token");
    }

    #[test]
    fn ids_that_would_change_the_path_are_refused() {
        assert!(segment("0b8e7c1e-5f0a-4a8e-9a57-2f1c3e4d5a6b").is_ok());
        assert!(segment("vsl_AbC-12").is_ok());
        for bad in ["", "a/b", "..", "a?b", "a b", "a%2F"] {
            assert!(segment(bad).is_err(), "{bad}");
        }
    }
}
