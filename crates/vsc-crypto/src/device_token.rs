//! What an authenticator signs: short-lived request tokens (one per request, one-time `jti`),
//! the proof of possession at registration, and Yes/No answers to challenges. The formats are
//! described in `docs/authenticator.md`; the device and the server both build the signed bytes
//! here, so they cannot drift apart.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::CryptoError;
use crate::device::{self, DeviceKey};

/// Prefix (and version) of device request tokens.
pub const TOKEN_PREFIX: &str = "vdt1";

/// The longest lifetime a device token may claim, in seconds.
pub const TOKEN_MAX_LIFETIME: i64 = 120;

/// The lifetime the authenticator gives its tokens, in seconds.
pub const TOKEN_LIFETIME: i64 = 60;

/// The claims of a device request token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceClaims {
    /// Device id.
    pub device: String,
    /// One-time token id (random, 128 bits, hex).
    pub jti: String,
    /// Issued at (Unix seconds).
    pub issued_at: i64,
    /// Expires at (Unix seconds).
    pub expires_at: i64,
    /// HTTP method the token is for, upper case.
    pub method: String,
    /// Request path the token is for (no query).
    pub path: String,
}

/// base64url without padding.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decode base64url without padding.
pub fn unb64(text: &str) -> Result<Vec<u8>, CryptoError> {
    URL_SAFE_NO_PAD.decode(text.trim()).map_err(|_| CryptoError::Malformed("not base64url".into()))
}

/// Sign a request token for `method path` valid from `now` for [`TOKEN_LIFETIME`] seconds.
pub fn sign_token(key: &DeviceKey, device_id: &str, method: &str, path: &str, now: i64) -> Result<String, CryptoError> {
    let jti = hex::encode(crate::random::bytes::<16>());
    let payload =
        format!("{device_id}\n{jti}\n{now}\n{}\n{}\n{path}", now + TOKEN_LIFETIME, method.to_ascii_uppercase());
    let signed = format!("{TOKEN_PREFIX}.{}", b64(payload.as_bytes()));
    let sig = key.sign(signed.as_bytes())?;
    Ok(format!("{signed}.{}", b64(&sig)))
}

/// A token split into its claims, the signed bytes and the signature (not yet verified).
pub struct ParsedToken {
    /// The claims.
    pub claims: DeviceClaims,
    signed: String,
    signature: Vec<u8>,
}

impl ParsedToken {
    /// Whether the device whose public key is `public_key` signed this token.
    pub fn verify(&self, public_key: &[u8]) -> bool {
        device::verify(public_key, self.signed.as_bytes(), &self.signature)
    }
}

/// Split a token; fails on anything malformed.
pub fn parse_token(token: &str) -> Result<ParsedToken, CryptoError> {
    let bad = || CryptoError::Malformed("malformed device token".into());
    let mut parts = token.trim().split('.');
    let (Some(prefix), Some(payload), Some(sig), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    if prefix != TOKEN_PREFIX {
        return Err(bad());
    }
    let text = String::from_utf8(unb64(payload)?).map_err(|_| bad())?;
    let fields: Vec<&str> = text.split('\n').collect();
    let [device, jti, iat, exp, method, path] = fields.as_slice() else { return Err(bad()) };
    let claims = DeviceClaims {
        device: (*device).to_string(),
        jti: (*jti).to_string(),
        issued_at: iat.parse().map_err(|_| bad())?,
        expires_at: exp.parse().map_err(|_| bad())?,
        method: (*method).to_string(),
        path: (*path).to_string(),
    };
    if claims.device.is_empty() || claims.jti.len() < 16 || claims.jti.len() > 64 {
        return Err(bad());
    }
    Ok(ParsedToken { claims, signed: format!("{TOKEN_PREFIX}.{payload}"), signature: unb64(sig)? })
}

/// The bytes a device signs to prove it holds its key when registering with `token`.
pub fn register_message(token: &str) -> Vec<u8> {
    format!("vsc-device-register-v1\n{token}").into_bytes()
}

/// The bytes a device signs to answer challenge `id`: `decision` is `approve` or `deny`,
/// `number` the number picked under number matching.
pub fn answer_message(id: &str, nonce: &str, decision: &str, number: Option<u8>) -> Vec<u8> {
    let number = number.map(|n| n.to_string()).unwrap_or_default();
    format!("vsc-challenge-answer-v1\n{id}\n{nonce}\n{decision}\n{number}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_bind_the_key() {
        let key = DeviceKey::generate().unwrap();
        let other = DeviceKey::generate().unwrap();
        let t = sign_token(&key, "dev-1", "get", "/api/v1/authenticator/challenges", 1000).unwrap();
        let p = parse_token(&t).unwrap();
        assert_eq!(p.claims.device, "dev-1");
        assert_eq!(p.claims.method, "GET");
        assert_eq!(p.claims.path, "/api/v1/authenticator/challenges");
        assert_eq!((p.claims.issued_at, p.claims.expires_at), (1000, 1000 + TOKEN_LIFETIME));
        assert!(p.verify(&key.public_key()));
        assert!(!p.verify(&other.public_key()));
        let t2 = sign_token(&key, "dev-1", "GET", "/x", 1000).unwrap();
        assert_ne!(parse_token(&t2).unwrap().claims.jti, p.claims.jti, "one-time ids differ");
    }

    #[test]
    fn tampered_tokens_fail() {
        let key = DeviceKey::generate().unwrap();
        let t = sign_token(&key, "dev-1", "GET", "/x", 1000).unwrap();
        let mut parts: Vec<String> = t.split('.').map(String::from).collect();
        parts[1] = b64(format!("dev-2\n{}\n1000\n1060\nGET\n/x", "a".repeat(32)).as_bytes());
        let forged = parts.join(".");
        assert!(!parse_token(&forged).unwrap().verify(&key.public_key()));
        assert!(parse_token("vdt1.x").is_err());
        assert!(parse_token("other.eA.eA").is_err());
    }

    #[test]
    fn answers_cover_every_field() {
        let a = answer_message("c", "n", "approve", Some(42));
        assert_ne!(a, answer_message("c", "n", "deny", Some(42)));
        assert_ne!(a, answer_message("c", "n", "approve", Some(43)));
        assert_ne!(a, answer_message("c", "m", "approve", Some(42)));
        assert_ne!(a, answer_message("d", "n", "approve", Some(42)));
    }
}
