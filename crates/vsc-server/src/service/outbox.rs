//! The outbox: enqueue inside the caller's transaction; a worker delivers, retries with back-off
//! and records the outcome. Nothing is lost if the process dies between commit and delivery: the
//! message is still `pending` and goes out after restart.

use std::time::Duration;

use serde::Serialize;
use vsc_store::outbox::{self, MessageRow, NewMessage};
use vsc_store::{Conn, StoreError};

use super::{Vsc, new_id, ts};
use crate::ServiceError;
use crate::notify::email::EmailMessage;
use crate::notify::sms::SmsMessage;
use crate::notify::{Delivery, DeliveryError, templates};

/// Attempts before a message is marked failed.
const MAX_ATTEMPTS: i64 = 12;
/// A claimed message is leased to its worker this long.
const LEASE_SECONDS: i64 = 120;

/// A message as `vsc admin outbox` and `/dev/outbox` show it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct OutboxMessage {
    /// Id.
    pub id: String,
    /// `email` or `sms`.
    pub channel: String,
    /// What it is (`invitation`, `sms_code`, …).
    pub kind: String,
    /// Recipient.
    pub to: String,
    /// Email subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Plain-text body (redacted once delivered by SMTP or an SMS gateway).
    pub body: String,
    /// `pending`, `sent`, `local` or `failed`.
    pub status: String,
    /// Delivery attempts.
    pub attempts: i64,
    /// Last error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Creation time (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
    /// Delivery time.
    #[serde(with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<time::OffsetDateTime>,
}

impl From<MessageRow> for OutboxMessage {
    fn from(m: MessageRow) -> Self {
        OutboxMessage {
            id: m.id,
            channel: m.channel,
            kind: m.kind,
            to: m.recipient,
            subject: m.subject,
            body: m.body_text,
            status: m.status,
            attempts: m.attempts,
            last_error: m.last_error,
            created_at: ts(m.created_at),
            sent_at: m.sent_at.map(ts),
        }
    }
}

fn backoff(attempts: i64) -> i64 {
    (5i64 << attempts.clamp(0, 10)).min(3600)
}

impl Vsc {
    /// Enqueue an email in the caller's transaction.
    pub(crate) async fn enqueue_email(
        &self,
        conn: &mut Conn,
        kind: &str,
        m: &EmailMessage,
    ) -> Result<(), ServiceError> {
        let id = new_id();
        outbox::enqueue(
            conn,
            &NewMessage {
                id: &id,
                channel: "email",
                kind,
                recipient: &m.to,
                subject: Some(&m.subject),
                body_text: &m.text,
                body_html: Some(&m.html),
                created_at: self.now().unix_timestamp(),
            },
        )
        .await?;
        Ok(())
    }

    /// Enqueue an SMS in the caller's transaction.
    pub(crate) async fn enqueue_sms(&self, conn: &mut Conn, kind: &str, m: &SmsMessage) -> Result<(), ServiceError> {
        let id = new_id();
        outbox::enqueue(
            conn,
            &NewMessage {
                id: &id,
                channel: "sms",
                kind,
                recipient: &m.to,
                subject: None,
                body_text: &m.body,
                body_html: None,
                created_at: self.now().unix_timestamp(),
            },
        )
        .await?;
        Ok(())
    }

    /// Tell the delivery worker that messages were committed.
    pub fn wake_outbox(&self) {
        self.outbox_wake.notify_one();
    }

    /// Deliver the due messages now when this process has a real channel (an SMTP server or an SMS
    /// gateway); without one, leave them pending for the running server, which may have one — an
    /// operator command run without the server's SMTP settings must not mark an invitation as
    /// kept locally. Returns how many were handled.
    pub async fn deliver_due_if_configured(&self) -> Result<usize, ServiceError> {
        let local_only = matches!(*self.email, crate::notify::email::EmailChannel::Local)
            && matches!(*self.sms, crate::notify::sms::SmsChannel::Local);
        if local_only {
            return Ok(0);
        }
        self.deliver_due().await
    }

    /// Deliver the messages that are due now; returns how many were handled.
    pub async fn deliver_due(&self) -> Result<usize, ServiceError> {
        let now = self.now().unix_timestamp();
        let batch = {
            let mut tx = self.store.begin().await?;
            let rows = outbox::claim_due(&mut tx, now, now + LEASE_SECONDS, 20).await?;
            tx.commit().await.map_err(StoreError::from)?;
            rows
        };
        let n = batch.len();
        for m in batch {
            let result = match m.channel.as_str() {
                "email" => {
                    let msg = EmailMessage {
                        to: m.recipient.clone(),
                        subject: m.subject.clone().unwrap_or_default(),
                        text: m.body_text.clone(),
                        html: m.body_html.clone().unwrap_or_default(),
                    };
                    self.email.send(&msg).await
                }
                _ => self.sms.send(&SmsMessage { to: m.recipient.clone(), body: m.body_text.clone() }).await,
            };
            let mut conn = self.store.writer().await?;
            let at = self.now().unix_timestamp();
            match result {
                Ok(Delivery::Sent) => {
                    let redacted = templates::redact(&m.body_text);
                    outbox::mark_delivered(&mut conn, &m.id, "sent", at, Some(&redacted)).await?;
                    tracing::info!(id = %m.id, channel = %m.channel, kind = %m.kind, "message delivered");
                }
                Ok(Delivery::KeptLocally) => outbox::mark_delivered(&mut conn, &m.id, "local", at, None).await?,
                Err(e) => {
                    let attempts = m.attempts + 1;
                    let retry = match &e {
                        DeliveryError::Transient(_) if attempts < MAX_ATTEMPTS => Some(at + backoff(attempts)),
                        _ => None,
                    };
                    tracing::warn!(id = %m.id, channel = %m.channel, attempts, error = %e, retry = retry.is_some(), "delivery failed");
                    outbox::mark_failed(&mut conn, &m.id, &e.to_string(), retry).await?;
                }
            }
        }
        Ok(n)
    }

    /// Messages oldest first (optionally to one recipient).
    pub async fn outbox(&self, to: Option<&str>, limit: i64) -> Result<Vec<OutboxMessage>, ServiceError> {
        let mut conn = self.store.conn().await?;
        Ok(outbox::list(&mut conn, to, limit).await?.into_iter().map(OutboxMessage::from).collect())
    }
}

/// Deliver messages as they are committed (woken at once) and retry due ones every second.
pub async fn run_delivery_worker(vsc: Vsc) {
    loop {
        match vsc.deliver_due().await {
            Ok(20) => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "outbox delivery pass failed"),
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), vsc.outbox_wake.notified()).await;
    }
}
