//! Enrolment links and the holder's progress through them.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Conn, StoreError};

/// A card's enrolment.
#[derive(Debug, Clone, PartialEq)]
pub struct EnrolmentRow {
    /// Card id.
    pub card_id: String,
    /// When the current link was sent.
    pub invited_at: i64,
    /// When the link expires.
    pub expires_at: i64,
    /// Last reminder.
    pub reminded_at: Option<i64>,
    /// When enrolment completed.
    pub completed_at: Option<i64>,
    /// Chosen passcode (Argon2id), between the passcode step and the code step.
    pub passcode_hash: Option<String>,
    /// Chosen answers as JSON `[[question, hash], …]`.
    pub answers: Option<String>,
    /// Mobile number given during enrolment.
    pub mobile: Option<String>,
    /// SHA-256 of the current one-time code.
    pub code_hash: Option<Vec<u8>>,
    /// Code expiry.
    pub code_expires_at: Option<i64>,
    /// Wrong codes so far.
    pub code_attempts: i64,
    /// When the last code was sent.
    pub code_sent_at: Option<i64>,
}

const COLUMNS: &str = "card_id, invited_at, expires_at, reminded_at, completed_at, passcode_hash, answers, mobile, \
                       code_hash, code_expires_at, code_attempts, code_sent_at";

fn row(r: &AnyRow) -> Result<EnrolmentRow, StoreError> {
    Ok(EnrolmentRow {
        card_id: r.try_get("card_id")?,
        invited_at: r.try_get("invited_at")?,
        expires_at: r.try_get("expires_at")?,
        reminded_at: r.try_get("reminded_at")?,
        completed_at: r.try_get("completed_at")?,
        passcode_hash: r.try_get("passcode_hash")?,
        answers: r.try_get("answers")?,
        mobile: r.try_get("mobile")?,
        code_hash: r.try_get("code_hash")?,
        code_expires_at: r.try_get("code_expires_at")?,
        code_attempts: r.try_get("code_attempts")?,
        code_sent_at: r.try_get("code_sent_at")?,
    })
}

/// Start (or restart, with a new link that kills every earlier one) a card's enrolment.
pub async fn upsert_link(
    conn: &mut Conn,
    card_id: &str,
    token_hash: &[u8],
    at: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM enrolment_links WHERE card_id = $1").bind(card_id).execute(&mut *conn).await?;
    sqlx::query(
        "INSERT INTO enrolments (card_id, token_hash, invited_at, expires_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (card_id) DO UPDATE SET token_hash = $2, invited_at = $3, expires_at = $4, reminded_at = NULL, \
         passcode_hash = NULL, answers = NULL, mobile = NULL, code_hash = NULL, code_expires_at = NULL, \
         code_attempts = 0, code_sent_at = NULL",
    )
    .bind(card_id)
    .bind(token_hash.to_vec())
    .bind(at)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// A reminder's new link, keeping the enrolment's expiry and progress; the earlier links (of the
/// invitation and earlier reminders) stay valid too.
pub async fn replace_token(
    conn: &mut Conn,
    card_id: &str,
    token_hash: &[u8],
    reminded_at: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO enrolment_links (token_hash, card_id, created_at) \
         SELECT token_hash, card_id, $2 FROM enrolments WHERE card_id = $1",
    )
    .bind(card_id)
    .bind(reminded_at)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE enrolments SET token_hash = $2, reminded_at = $3 WHERE card_id = $1")
        .bind(card_id)
        .bind(token_hash.to_vec())
        .bind(reminded_at)
        .execute(conn)
        .await?;
    Ok(())
}

/// Find an enrolment by the hash of one of its live link tokens (the newest, or an earlier email's),
/// with the stored hash it matched for a constant-time check.
pub async fn by_token(conn: &mut Conn, token_hash: &[u8]) -> Result<Option<(EnrolmentRow, Vec<u8>)>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS}, m.link_hash FROM enrolments JOIN (\
         SELECT card_id AS link_card, token_hash AS link_hash FROM enrolments WHERE token_hash = $1 \
         UNION ALL SELECT card_id, token_hash FROM enrolment_links WHERE token_hash = $1\
         ) m ON m.link_card = enrolments.card_id"
    );
    match sqlx::query(sqlx::AssertSqlSafe(sql)).bind(token_hash.to_vec()).fetch_optional(conn).await? {
        Some(r) => Ok(Some((row(&r)?, r.try_get("link_hash")?))),
        None => Ok(None),
    }
}

/// A card's enrolment.
pub async fn by_card(conn: &mut Conn, card_id: &str) -> Result<Option<EnrolmentRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM enrolments WHERE card_id = $1");
    sqlx::query(sqlx::AssertSqlSafe(sql)).bind(card_id).fetch_optional(conn).await?.as_ref().map(row).transpose()
}

/// Record the passcode/answers step and the code sent for it.
pub async fn save_choices(
    conn: &mut Conn,
    card_id: &str,
    passcode_hash: &str,
    answers: &str,
    mobile: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE enrolments SET passcode_hash = $2, answers = $3, mobile = $4 WHERE card_id = $1")
        .bind(card_id)
        .bind(passcode_hash)
        .bind(answers)
        .bind(mobile)
        .execute(conn)
        .await?;
    Ok(())
}

/// Record a newly sent code.
pub async fn save_code(
    conn: &mut Conn,
    card_id: &str,
    code_hash: &[u8],
    sent_at: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE enrolments SET code_hash = $2, code_sent_at = $3, code_expires_at = $4, code_attempts = 0 WHERE card_id = $1",
    )
    .bind(card_id)
    .bind(code_hash.to_vec())
    .bind(sent_at)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Mark enrolment complete; `false` when another request completed it first.
pub async fn complete(conn: &mut Conn, card_id: &str, at: i64) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE enrolments SET completed_at = $2, code_hash = NULL, passcode_hash = NULL, answers = NULL \
         WHERE card_id = $1 AND completed_at IS NULL",
    )
    .bind(card_id)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Open enrolments whose holder should be reminded at `now` (their organisation's reminder period,
/// or else `period` seconds, after the invitation or the last reminder), whose link has not expired
/// and whose card is still `issued`.
pub async fn due_reminders(
    conn: &mut Conn,
    now: i64,
    period: i64,
    limit: i64,
) -> Result<Vec<EnrolmentRow>, StoreError> {
    let sql = format!(
        "SELECT {} FROM enrolments e JOIN cards c ON c.id = e.card_id JOIN users u ON u.id = c.user_id \
         JOIN organisations o ON o.id = u.org_id WHERE e.completed_at IS NULL \
         AND e.expires_at > $1 AND c.state = 'issued' \
         AND COALESCE(e.reminded_at, e.invited_at) + COALESCE(o.reminder_days * 86400, $2) <= $1 \
         ORDER BY e.invited_at LIMIT $3",
        COLUMNS.split(", ").map(|c| format!("e.{c}")).collect::<Vec<_>>().join(", ")
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now).bind(period).bind(limit).fetch_all(conn).await?;
    rows.iter().map(row).collect()
}
