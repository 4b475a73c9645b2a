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

/// `url` with any password replaced by `***` (one rule for the whole service).
pub(crate) fn hide_password(url: &str) -> String {
    vsc_store::redact_url(url)
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
