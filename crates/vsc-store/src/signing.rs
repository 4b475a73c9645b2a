//! What a card signature needs from the database: one read for the session, its holder, card and
//! key, and one statement that authorises the signature and audits it together.

use sqlx::Row;

use crate::{Conn, StoreError};

/// A card session with what a signature made in it needs.
#[derive(Debug, Clone)]
pub struct SigningContext {
    /// Session id.
    pub session_id: String,
    /// Stored hash of the session token.
    pub token_hash: Vec<u8>,
    /// When the session was logged out.
    pub ended_at: Option<i64>,
    /// Session lifetime end.
    pub expires_at: i64,
    /// Last recorded use of the session.
    pub last_seen_at: i64,
    /// The session's idle timeout (seconds).
    pub idle_seconds: i64,
    /// The holder's organisation's number-matching policy (`None`: the service default).
    pub number_matching: Option<bool>,
    /// Holder.
    pub user_id: String,
    /// Holder's email (the audit actor).
    pub email: String,
    /// Holder's organisation.
    pub org_id: String,
    /// Card id.
    pub card_id: String,
    /// Card serial.
    pub card_serial: String,
    /// `v1` / `v2`.
    pub card_type: String,
    /// Card state.
    pub card_state: String,
    /// Card expiry.
    pub card_expires_at: i64,
    /// The requested key, when the card has it.
    pub key: Option<SigningKey>,
}

/// A card key as a signature needs it.
#[derive(Debug, Clone)]
pub struct SigningKey {
    /// `p256` / `rsa2048`.
    pub algorithm: String,
    /// Sealed PKCS#8.
    pub sealed_private_key: Vec<u8>,
    /// Certificate DER.
    pub cert_der: Vec<u8>,
    /// Certificate serial (hex).
    pub cert_serial: String,
}

/// The session behind a token hash, with its holder, card and the card's `purpose` key.
pub async fn context(conn: &mut Conn, token_hash: &[u8], purpose: &str) -> Result<Option<SigningContext>, StoreError> {
    let r = sqlx::query(
        "SELECT s.id, s.token_hash, s.ended_at, s.expires_at, s.last_seen_at, s.idle_seconds, s.user_id, u.email, \
         u.org_id, o.number_matching, \
         c.id AS card_id, c.serial, c.card_type, c.state, c.expires_at AS card_expires_at, k.algorithm, \
         k.sealed_private_key, k.cert_der, k.cert_serial \
         FROM card_sessions s JOIN users u ON u.id = s.user_id JOIN organisations o ON o.id = u.org_id \
         JOIN cards c ON c.id = s.card_id LEFT JOIN card_keys k ON k.card_id = c.id AND k.purpose = $2 WHERE s.token_hash = $1",
    )
    .bind(token_hash)
    .bind(purpose)
    .fetch_optional(conn)
    .await?;
    let Some(r) = r else { return Ok(None) };
    let algorithm: Option<String> = r.try_get("algorithm")?;
    let key = match algorithm {
        Some(algorithm) => Some(SigningKey {
            algorithm,
            sealed_private_key: r.try_get("sealed_private_key")?,
            cert_der: r.try_get("cert_der")?,
            cert_serial: r.try_get("cert_serial")?,
        }),
        None => None,
    };
    Ok(Some(SigningContext {
        session_id: r.try_get("id")?,
        token_hash: r.try_get("token_hash")?,
        ended_at: r.try_get("ended_at")?,
        expires_at: r.try_get("expires_at")?,
        last_seen_at: r.try_get("last_seen_at")?,
        idle_seconds: r.try_get("idle_seconds")?,
        number_matching: r.try_get::<Option<i64>, _>("number_matching")?.map(|n| n != 0),
        user_id: r.try_get("user_id")?,
        email: r.try_get("email")?,
        org_id: r.try_get("org_id")?,
        card_id: r.try_get("card_id")?,
        card_serial: r.try_get("serial")?,
        card_type: r.try_get("card_type")?,
        card_state: r.try_get("state")?,
        card_expires_at: r.try_get("card_expires_at")?,
        key,
    }))
}

/// What must still hold when a signature is released.
#[derive(Debug, Clone)]
pub struct Authorisation<'a> {
    /// The session.
    pub session_id: &'a str,
    /// Now (Unix seconds).
    pub now: i64,
    /// Key purpose signed with.
    pub purpose: &'a str,
    /// Serial of the certificate of the key that signed (a renewal in between refuses).
    pub cert_serial: &'a str,
}

/// Append the signature's audit event only if the session is still live and its card active with
/// the same key; returns whether it was (and so whether the signature may be released).
pub async fn audit_if_authorised(
    conn: &mut Conn,
    rec: &vsc_core::AuditRecord,
    auth: &Authorisation<'_>,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "INSERT INTO audit_events (at, actor, action, org_id, target, detail) \
         SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM card_sessions s \
         JOIN cards c ON c.id = s.card_id JOIN card_keys k ON k.card_id = c.id AND k.purpose = $8 \
         WHERE s.id = $7 AND s.ended_at IS NULL AND s.expires_at > $1 \
         AND s.last_seen_at + s.idle_seconds > $1 AND c.state = 'active' AND c.expires_at > $1 AND k.cert_serial = $9)",
    )
    .bind(auth.now)
    .bind(rec.actor.to_string())
    .bind(rec.action)
    .bind(rec.org_id.as_deref())
    .bind(rec.target.as_deref())
    .bind(rec.detail.as_str())
    .bind(auth.session_id)
    .bind(auth.purpose)
    .bind(auth.cert_serial)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// One signature waiting to be authorised and audited in a batch.
#[derive(Debug, Clone)]
pub struct BatchItem {
    /// Its audit event.
    pub event: vsc_core::AuditRecord,
    /// The session.
    pub session_id: String,
    /// Key purpose signed with.
    pub purpose: &'static str,
    /// Serial of the certificate of the key that signed.
    pub cert_serial: String,
    /// Record the session's use too.
    pub touch: bool,
}

/// Authorise and audit several signatures in the caller's transaction, with a fixed number of
/// statements: one read of the sessions that can still sign (on PostgreSQL locking their
/// session, card and key rows until commit, so a logout, lock or renewal waits for it), one
/// insert of the audit events of those that can, and one update of session use. Returns, per
/// item, whether it was authorised. Session use is recorded when last recorded before
/// `touch_before`.
pub async fn audit_batch(
    conn: &mut Conn,
    items: &[BatchItem],
    now: i64,
    touch_before: i64,
) -> Result<Vec<bool>, StoreError> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let mut ids: Vec<&str> = items.iter().map(|i| i.session_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let list = (0..ids.len()).map(|n| format!("${}", n + 2)).collect::<Vec<_>>().join(", ");
    let lock = if crate::Backend::of(conn) == crate::Backend::Postgres { " FOR SHARE OF s, c, k" } else { "" };
    let sql = format!(
        "SELECT s.id, k.purpose, k.cert_serial FROM card_sessions s JOIN cards c ON c.id = s.card_id \
         JOIN card_keys k ON k.card_id = c.id WHERE s.id IN ({list}) AND s.ended_at IS NULL AND s.expires_at > $1 \
         AND s.last_seen_at + s.idle_seconds > $1 AND c.state = 'active' AND c.expires_at > $1{lock}"
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now);
    for id in &ids {
        q = q.bind(*id);
    }
    let live: Vec<(String, String, String)> = q
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("purpose")?, r.try_get("cert_serial")?)))
        .collect::<Result<_, StoreError>>()?;
    let ok: Vec<bool> = items
        .iter()
        .map(|i| live.iter().any(|(s, p, c)| *s == i.session_id && p == i.purpose && *c == i.cert_serial))
        .collect();
    let authorised: Vec<&BatchItem> = items.iter().zip(&ok).filter(|(_, ok)| **ok).map(|(i, _)| i).collect();
    if !authorised.is_empty() {
        let rows = (0..authorised.len())
            .map(|n| {
                let b = n * 5 + 2;
                format!("($1, ${}, ${}, ${}, ${}, ${})", b, b + 1, b + 2, b + 3, b + 4)
            })
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!("INSERT INTO audit_events (at, actor, action, org_id, target, detail) VALUES {rows}");
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now);
        for i in &authorised {
            q = q
                .bind(i.event.actor.to_string())
                .bind(i.event.action)
                .bind(i.event.org_id.clone())
                .bind(i.event.target.clone())
                .bind(i.event.detail.clone());
        }
        q.execute(&mut *conn).await?;
    }
    let mut touch: Vec<&str> = authorised.iter().filter(|i| i.touch).map(|i| i.session_id.as_str()).collect();
    touch.sort_unstable();
    touch.dedup();
    if !touch.is_empty() {
        let list = (0..touch.len()).map(|n| format!("${}", n + 3)).collect::<Vec<_>>().join(", ");
        let sql = format!("UPDATE card_sessions SET last_seen_at = $1 WHERE id IN ({list}) AND last_seen_at <= $2");
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now).bind(touch_before);
        for id in touch {
            q = q.bind(id);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(ok)
}
