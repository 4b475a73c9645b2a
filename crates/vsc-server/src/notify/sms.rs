//! SMS: JSON `{"to", "body"}` POSTed to an HTTP gateway, or kept in the local outbox when no
//! gateway is configured.

use std::fmt;
use std::time::Duration;

use reqwest::StatusCode;
use serde::{Deserialize, Serialize};

use super::templates::redact;
use super::{Delivery, DeliveryError, error_chain, hide_password};
use crate::Config;

/// How long one request to the gateway may take, connection included.
const GATEWAY_TIMEOUT: Duration = Duration::from_secs(10);

/// At most this many characters of a gateway's error reply are kept in the error.
const REPLY_EXCERPT_CHARS: usize = 200;

/// A rendered SMS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SmsMessage {
    /// Recipient mobile number.
    pub to: String,
    /// Message text.
    pub body: String,
}

/// SMS channel: an HTTP gateway, or Local.
#[derive(Clone)]
pub enum SmsChannel {
    /// POST each message to a gateway.
    Http {
        /// HTTP client (10 s timeout, no redirects).
        client: reqwest::Client,
        /// Gateway URL.
        url: String,
        /// Sent as `Authorization: Bearer <api_key>` when set.
        api_key: Option<String>,
    },
    /// No gateway configured: nothing leaves the machine.
    Local,
}

impl fmt::Debug for SmsChannel {
    // Never print the API key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SmsChannel::Http { url, api_key, .. } => f
                .debug_struct("Http")
                .field("url", &hide_password(url))
                .field("api_key", &api_key.as_ref().map(|_| "***"))
                .finish(),
            SmsChannel::Local => f.write_str("Local"),
        }
    }
}

impl SmsChannel {
    /// The channel `config.sms` describes: no (or an empty) URL gives `Local`; a URL that is
    /// not `http://` or `https://` is an error naming the setting (without any password), and
    /// so is `https://` while the HTTP client is built without TLS.
    pub fn from_config(config: &Config) -> Result<Self, String> {
        let Some(url) = config.sms.url.as_deref().map(str::trim).filter(|u| !u.is_empty()) else {
            return Ok(SmsChannel::Local);
        };
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| format!("configuration: sms.url {} is not a URL: {e}", hide_password(url)))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(format!(
                "configuration: sms.url {} must be an http:// or https:// URL with a host",
                hide_password(url)
            ));
        }
        let client = reqwest::Client::builder()
            .timeout(GATEWAY_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("SMS gateway client: {}", error_chain(&e)))?;
        let api_key = config.sms.api_key.as_deref().map(str::trim).filter(|k| !k.is_empty()).map(str::to_string);
        Ok(SmsChannel::Http { client, url: url.to_string(), api_key })
    }

    /// POST `{"to", "body"}` to the gateway. A 2xx reply is [`Delivery::Sent`]; 5xx, 429, 408,
    /// timeouts and connection failures are [`DeliveryError::Transient`]; any other reply
    /// (4xx, and 3xx since redirects are not followed) is [`DeliveryError::Permanent`].
    pub async fn send(&self, m: &SmsMessage) -> Result<Delivery, DeliveryError> {
        let SmsChannel::Http { client, url, api_key } = self else {
            return Ok(Delivery::KeptLocally);
        };
        let mut request = client.post(url).json(&serde_json::json!({ "to": m.to, "body": m.body }));
        if let Some(key) = api_key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.map_err(|e| {
            // The URL may carry credentials: keep it out of the message.
            let permanent = e.is_builder();
            let text = format!("SMS gateway: {}", error_chain(&e.without_url()));
            if permanent { DeliveryError::Permanent(text) } else { DeliveryError::Transient(text) }
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(Delivery::Sent);
        }
        // The reply may quote the message back: drop its links and codes before keeping it.
        let reply = response.text().await.unwrap_or_default();
        let excerpt: String = redact(reply.trim()).chars().take(REPLY_EXCERPT_CHARS).collect();
        let text = if excerpt.is_empty() {
            format!("SMS gateway answered {status}")
        } else {
            format!("SMS gateway answered {status}: {excerpt}")
        };
        if is_transient_status(status) {
            Err(DeliveryError::Transient(text))
        } else {
            Err(DeliveryError::Permanent(text))
        }
    }
}

/// Replies after which the same request may succeed later.
fn is_transient_status(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::REQUEST_TIMEOUT
}
