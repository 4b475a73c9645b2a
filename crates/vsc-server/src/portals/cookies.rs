//! The portal's cookies: always `HttpOnly; SameSite=Strict; Path=/`, and `Secure` unless the
//! public URL is plain-http loopback (local development and tests).

use axum::http::HeaderValue;
use axum::http::header::SET_COOKIE;
use axum::response::Response;

use crate::Config;
pub use crate::api::holder::SESSION_COOKIE;

/// The sign-in awaiting its SMS code: `<sign-in id>|<last digits of the mobile>`.
pub const SIGN_IN_COOKIE: &str = "vsc_sign_in";
/// The double-submit CSRF token, echoed in every form's hidden `csrf` field.
pub const CSRF_COOKIE: &str = "vsc_csrf";

/// A cookie to set on a response.
pub struct SetCookie {
    name: &'static str,
    value: String,
    /// Seconds until the browser drops it; `None` keeps it for the browser session.
    max_age: Option<i64>,
}

impl SetCookie {
    /// A cookie carrying `value`.
    pub fn new(name: &'static str, value: impl Into<String>, max_age: Option<i64>) -> Self {
        SetCookie { name, value: value.into(), max_age }
    }

    /// Tell the browser to forget a cookie.
    pub fn clear(name: &'static str) -> Self {
        SetCookie { name, value: String::new(), max_age: Some(0) }
    }

    /// The `Set-Cookie` header value (`None` if the value holds characters a header cannot:
    /// values are our own tokens, so this does not happen).
    pub fn header(&self, config: &Config) -> Option<HeaderValue> {
        let mut text = format!("{}={}; HttpOnly; SameSite=Strict; Path=/", self.name, self.value);
        if let Some(age) = self.max_age {
            text.push_str(&format!("; Max-Age={age}"));
        }
        if !config.insecure_cookies_allowed() {
            text.push_str("; Secure");
        }
        HeaderValue::from_str(&text).ok()
    }

    /// Add to a response.
    pub fn apply(&self, response: &mut Response, config: &Config) {
        if let Some(v) = self.header(config) {
            response.headers_mut().append(SET_COOKIE, v);
        } else {
            tracing::error!(cookie = self.name, "cookie value is not a valid header; not set");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_strict_http_only_and_secure_off_loopback() {
        let local = Config { public_url: Some("http://127.0.0.1:8080".into()), ..Config::default() };
        let public = Config { public_url: Some("https://vsc.example.org".into()), ..Config::default() };
        let c = SetCookie::new(SESSION_COOKIE, "vss_abc", Some(60));
        assert_eq!(
            c.header(&local).unwrap().to_str().unwrap(),
            "vsc_session=vss_abc; HttpOnly; SameSite=Strict; Path=/; Max-Age=60"
        );
        assert!(c.header(&public).unwrap().to_str().unwrap().ends_with("; Secure"));
        let gone = SetCookie::clear(CSRF_COOKIE).header(&public).unwrap();
        assert!(gone.to_str().unwrap().starts_with("vsc_csrf=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"));
    }
}
