//! Email: SMTP through lettre, or kept in the local outbox when no SMTP server is configured.

use std::fmt;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};

use super::{Delivery, DeliveryError, error_chain, hide_password};
use crate::Config;

/// Display name of the sender when `smtp.from` gives a bare address.
const SENDER_NAME: &str = "vsc";

/// How long one SMTP exchange (connect, each command) may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// A rendered email.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmailMessage {
    /// Recipient address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body.
    pub html: String,
}

/// Email channel: SMTP via lettre, or Local (no SMTP configured: messages stay in the outbox).
// One channel lives for the whole process (behind an `Arc`): the size of `Smtp` does not matter,
// and the variant keeps the transport unboxed as the interface promises.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub enum EmailChannel {
    /// Send through an SMTP server.
    Smtp {
        /// The lettre transport (connection pool).
        transport: AsyncSmtpTransport<Tokio1Executor>,
        /// The `From` of every message.
        from: Mailbox,
    },
    /// No SMTP server configured: nothing leaves the machine.
    Local,
}

impl fmt::Debug for EmailChannel {
    // The transport holds the SMTP credentials: show only the sender.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EmailChannel::Smtp { from, .. } => f.debug_struct("Smtp").field("from", &from.to_string()).finish(),
            EmailChannel::Local => f.write_str("Local"),
        }
    }
}

impl EmailChannel {
    /// The channel `config.smtp` describes: no (or an empty) URL gives `Local`. A URL lettre
    /// cannot use, or a sender that is not an email address, is an error naming the setting;
    /// the password of the URL never appears in it.
    pub fn from_config(config: &Config) -> Result<Self, String> {
        let Some(url) = config.smtp.url.as_deref().map(str::trim).filter(|u| !u.is_empty()) else {
            return Ok(EmailChannel::Local);
        };
        let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url).map_err(|e| {
            // lettre's messages do not quote the URL, but make sure no password slips through.
            let mut reason = error_chain(&e);
            if let Some(password) = password_of(url) {
                reason = reason.replace(&password, "***");
            }
            format!(
                "configuration: smtp.url {} is not a usable SMTP URL (expected smtp://host:port, \
                 smtp://host:587?tls=required or smtps://user:password@host): {reason}",
                hide_password(url)
            )
        })?;
        let transport = builder.timeout(Some(SMTP_TIMEOUT)).build();
        let from_text = config.email_from();
        let mut from: Mailbox = from_text
            .trim()
            .parse()
            .map_err(|e| format!("configuration: smtp.from {from_text:?} is not an email address: {e}"))?;
        if from.name.as_deref().is_none_or(|n| n.trim().is_empty()) {
            from.name = Some(SENDER_NAME.to_string());
        }
        Ok(EmailChannel::Smtp { transport, from })
    }

    /// Send `m` as multipart/alternative (plain text and HTML; plain text alone when `html` is
    /// empty). SMTP 4xx replies, connection
    /// failures and timeouts are [`DeliveryError::Transient`]; SMTP 5xx replies and addresses
    /// that cannot be used are [`DeliveryError::Permanent`].
    pub async fn send(&self, m: &EmailMessage) -> Result<Delivery, DeliveryError> {
        let EmailChannel::Smtp { transport, from } = self else {
            return Ok(Delivery::KeptLocally);
        };
        let to: Mailbox =
            m.to.trim()
                .parse()
                .map_err(|e| DeliveryError::Permanent(format!("{:?} is not a valid email address: {e}", m.to)))?;
        let builder =
            Message::builder().from(from.clone()).to(to).subject(m.subject.clone()).message_id(Some(message_id(from)));
        let built = if m.html.trim().is_empty() {
            builder.singlepart(SinglePart::plain(m.text.clone()))
        } else {
            builder.multipart(MultiPart::alternative_plain_html(m.text.clone(), m.html.clone()))
        };
        let message = built.map_err(|e| DeliveryError::Permanent(format!("the email cannot be built: {e}")))?;
        match transport.send(message).await {
            Ok(_) => Ok(Delivery::Sent),
            Err(e) => Err(classify(&e)),
        }
    }
}

/// Map a lettre error to retry-or-not.
fn classify(e: &lettre::transport::smtp::Error) -> DeliveryError {
    let text = format!("SMTP: {}", error_chain(e));
    if e.is_permanent() {
        // 5xx: the server refused for good (unknown mailbox, policy, …).
        DeliveryError::Permanent(text)
    } else {
        // 4xx, connection refused or reset, timeouts, TLS handshakes, garbled replies: all may
        // succeed on a later attempt.
        DeliveryError::Transient(text)
    }
}

/// A fresh `Message-ID` in the sender's domain.
fn message_id(from: &Mailbox) -> String {
    format!("<{}@{}>", uuid::Uuid::new_v4().simple(), from.email.domain())
}

/// The password of a URL's user-info, as written, when it has one.
fn password_of(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let (userinfo, _) = rest.rsplit_once('@')?;
    let (_, password) = userinfo.split_once(':')?;
    (!password.is_empty()).then(|| password.to_string())
}
