//! The transactional outbox: messages written in the transaction of the change that causes them,
//! delivered by a worker that leases, sends, retries with back-off and records the outcome.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Backend, Conn, StoreError};

/// A message to enqueue.
#[derive(Debug, Clone)]
pub struct NewMessage<'a> {
    /// UUID.
    pub id: &'a str,
    /// `email` or `sms`.
    pub channel: &'a str,
    /// What the message is, e.g. `invitation`.
    pub kind: &'a str,
    /// Address or number.
    pub recipient: &'a str,
    /// Email subject.
    pub subject: Option<&'a str>,
    /// Plain-text body.
    pub body_text: &'a str,
    /// HTML body (email).
    pub body_html: Option<&'a str>,
    /// Creation time.
    pub created_at: i64,
}

/// A stored message.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageRow {
    /// UUID.
    pub id: String,
    /// `email` / `sms`.
    pub channel: String,
    /// Kind.
    pub kind: String,
    /// Recipient.
    pub recipient: String,
    /// Subject.
    pub subject: Option<String>,
    /// Plain text (redacted once delivered externally).
    pub body_text: String,
    /// HTML (dropped once delivered externally).
    pub body_html: Option<String>,
    /// `pending`, `sent`, `local` or `failed`.
    pub status: String,
    /// Delivery attempts so far.
    pub attempts: i64,
    /// Last delivery error.
    pub last_error: Option<String>,
    /// Creation time.
    pub created_at: i64,
    /// Delivery time.
    pub sent_at: Option<i64>,
}

const COLUMNS: &str =
    "id, channel, kind, recipient, subject, body_text, body_html, status, attempts, last_error, created_at, sent_at";

fn row(r: &AnyRow) -> Result<MessageRow, StoreError> {
    Ok(MessageRow {
        id: r.try_get("id")?,
        channel: r.try_get("channel")?,
        kind: r.try_get("kind")?,
        recipient: r.try_get("recipient")?,
        subject: r.try_get("subject")?,
        body_text: r.try_get("body_text")?,
        body_html: r.try_get("body_html")?,
        status: r.try_get("status")?,
        attempts: r.try_get("attempts")?,
        last_error: r.try_get("last_error")?,
        created_at: r.try_get("created_at")?,
        sent_at: r.try_get("sent_at")?,
    })
}

/// Enqueue a message (inside the caller's transaction).
pub async fn enqueue(conn: &mut Conn, m: &NewMessage<'_>) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO outbox (id, channel, kind, recipient, subject, body_text, body_html, status, next_attempt_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $8)",
    )
    .bind(m.id)
    .bind(m.channel)
    .bind(m.kind)
    .bind(m.recipient)
    .bind(m.subject)
    .bind(m.body_text)
    .bind(m.body_html)
    .bind(m.created_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Lease up to `limit` due messages until `lease_until` (other workers skip them meanwhile).
pub async fn claim_due(conn: &mut Conn, now: i64, lease_until: i64, limit: i64) -> Result<Vec<MessageRow>, StoreError> {
    let lock = match Backend::of(conn) {
        Backend::Sqlite => "",
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
    };
    let sql = format!(
        "UPDATE outbox SET lease_until = $2 WHERE id IN (SELECT id FROM outbox WHERE status = 'pending' \
         AND next_attempt_at <= $1 AND lease_until <= $1 ORDER BY seq LIMIT $3{lock}) RETURNING seq, {COLUMNS}"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now).bind(lease_until).bind(limit).fetch_all(conn).await?;
    let mut out: Vec<(i64, MessageRow)> =
        rows.iter().map(|r| Ok((r.try_get("seq")?, row(r)?))).collect::<Result<_, StoreError>>()?;
    out.sort_by_key(|(seq, _)| *seq);
    Ok(out.into_iter().map(|(_, m)| m).collect())
}

/// Record a delivery: `status` is `sent` (external; bodies replaced by the redacted text) or
/// `local` (kept in full: the local outbox is the channel).
pub async fn mark_delivered(
    conn: &mut Conn,
    id: &str,
    status: &str,
    at: i64,
    redacted_text: Option<&str>,
) -> Result<(), StoreError> {
    match redacted_text {
        Some(text) => {
            sqlx::query(
                "UPDATE outbox SET status = $2, sent_at = $3, attempts = attempts + 1, body_text = $4, body_html = NULL, \
                 last_error = NULL WHERE id = $1",
            )
            .bind(id)
            .bind(status)
            .bind(at)
            .bind(text)
            .execute(conn)
            .await?;
        }
        None => {
            sqlx::query(
                "UPDATE outbox SET status = $2, sent_at = $3, attempts = attempts + 1, last_error = NULL WHERE id = $1",
            )
            .bind(id)
            .bind(status)
            .bind(at)
            .execute(conn)
            .await?;
        }
    }
    Ok(())
}

/// Record a failed attempt: retry at `retry_at`, or give up (`failed`) when `retry_at` is `None`.
pub async fn mark_failed(conn: &mut Conn, id: &str, error: &str, retry_at: Option<i64>) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE outbox SET attempts = attempts + 1, last_error = $2, lease_until = 0, \
         status = CASE WHEN $3 IS NULL THEN 'failed' ELSE 'pending' END, \
         next_attempt_at = COALESCE($3, next_attempt_at) WHERE id = $1",
    )
    .bind(id)
    .bind(error)
    .bind(retry_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Messages oldest first, optionally only those to `recipient` (case-insensitive).
pub async fn list(conn: &mut Conn, recipient: Option<&str>, limit: i64) -> Result<Vec<MessageRow>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM (SELECT * FROM outbox WHERE $1 IS NULL OR LOWER(recipient) = LOWER($1) \
         ORDER BY seq DESC LIMIT $2) recent ORDER BY seq"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(recipient).bind(limit).fetch_all(conn).await?;
    rows.iter().map(row).collect()
}
