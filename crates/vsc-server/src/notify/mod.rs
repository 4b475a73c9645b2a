//! Outgoing messages: email over SMTP (lettre), SMS through an HTTP gateway, and their templates.
//!
//! Each channel is either a real transport or `Local`, when nothing is configured: then a message
//! is not sent anywhere and stays in the local outbox ([`Delivery::KeptLocally`]).

pub mod email;
pub mod sms;
pub mod templates;

/// Result of handing a message to a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The transport accepted the message.
    Sent,
    /// No transport is configured: the message stays in the local outbox.
    KeptLocally,
}

/// Why a send failed: `Transient` is retried with back-off, `Permanent` is not.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// Worth retrying later: connection failures, timeouts, SMTP 4xx, HTTP 5xx / 429.
    #[error("{0}")]
    Transient(String),
    /// Retrying will not help: SMTP 5xx, an invalid address, HTTP 4xx.
    #[error("{0}")]
    Permanent(String),
}

impl DeliveryError {
    /// Whether the send is worth retrying.
    pub fn is_transient(&self) -> bool {
        matches!(self, DeliveryError::Transient(_))
    }
}

/// A URL fit for messages and logs: the password of its user-info (`user:password@`) is
/// replaced by `***`. Text without user-info is returned unchanged.
pub(crate) fn hide_password(url: &str) -> String {
    let (prefix, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), url),
    };
    // The user-info ends at the last `@`. A password may hold `/`, `?` or `#` when the URL is
    // malformed, so the authority is not cut at them first: hiding too much beats leaking.
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{prefix}{user}:***@{host}"),
        None => url.to_string(),
    }
}

/// An error's message followed by the messages of its sources, `: `-separated, each once.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let s = e.to_string();
        if !s.is_empty() && !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        source = e.source();
    }
    text
}
