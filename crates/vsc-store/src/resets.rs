//! Forgotten-passcode reset links (`passcode_resets`): single-use, stored as SHA-256, one live
//! link per holder; the steps they have passed; and ending a holder's card sessions when the
//! passcode changes.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Conn, StoreError};

/// Security-question rounds that may fail before the link is void.
pub const MAX_QUESTION_ROUNDS: i64 = 3;

/// A reset link.
#[derive(Debug, Clone, PartialEq)]
pub struct ResetRow {
    /// Id.
    pub id: String,
    /// SHA-256 of the link's token.
    pub token_hash: Vec<u8>,
    /// Holder.
    pub user_id: String,
    /// `request`, `locked` or `ra`.
    pub origin: String,
    /// Created.
    pub created_at: i64,
    /// Expires.
    pub expires_at: i64,
    /// Used (the passcode was changed).
    pub used_at: Option<i64>,
    /// Voided (a newer link, or too many wrong answers).
    pub voided_at: Option<i64>,
    /// Wrong rounds of security answers so far.
    pub question_rounds_failed: i64,
    /// The security questions were answered.
    pub questions_passed_at: Option<i64>,
    /// An RA unlock: no security questions.
    pub skip_questions: bool,
    /// The push (`card_logins`, purpose `portal`) of the second factor.
    pub login_id: Option<String>,
    /// SHA-256 of the SMS code (bound to the link).
    pub code_hash: Option<Vec<u8>>,
    /// The SMS code expires.
    pub code_expires_at: Option<i64>,
    /// The SMS code was sent.
    pub code_sent_at: Option<i64>,
    /// Wrong codes (SMS or app) so far.
    pub code_attempts: i64,
    /// The second factor was passed.
    pub factor_passed_at: Option<i64>,
}

const COLUMNS: &str = "id, token_hash, user_id, origin, created_at, expires_at, used_at, voided_at, \
    question_rounds_failed, questions_passed_at, skip_questions, login_id, code_hash, code_expires_at, code_sent_at, \
    code_attempts, factor_passed_at";

fn row(r: &AnyRow) -> Result<ResetRow, StoreError> {
    Ok(ResetRow {
        id: r.try_get("id")?,
        token_hash: r.try_get("token_hash")?,
        user_id: r.try_get("user_id")?,
        origin: r.try_get("origin")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        used_at: r.try_get("used_at")?,
        voided_at: r.try_get("voided_at")?,
        question_rounds_failed: r.try_get("question_rounds_failed")?,
        questions_passed_at: r.try_get("questions_passed_at")?,
        skip_questions: r.try_get::<i64, _>("skip_questions")? != 0,
        login_id: r.try_get("login_id")?,
        code_hash: r.try_get("code_hash")?,
        code_expires_at: r.try_get("code_expires_at")?,
        code_sent_at: r.try_get("code_sent_at")?,
        code_attempts: r.try_get("code_attempts")?,
        factor_passed_at: r.try_get("factor_passed_at")?,
    })
}

/// A new reset link.
#[derive(Debug, Clone, PartialEq)]
pub struct NewReset<'a> {
    /// Id.
    pub id: &'a str,
    /// SHA-256 of the token.
    pub token_hash: &'a [u8],
    /// Holder.
    pub user_id: &'a str,
    /// `request`, `locked` or `ra`.
    pub origin: &'a str,
    /// An RA unlock: no security questions.
    pub skip_questions: bool,
    /// Created.
    pub at: i64,
    /// Expires.
    pub expires_at: i64,
}

/// Void the holder's live links and record a new one.
pub async fn replace(conn: &mut Conn, n: &NewReset<'_>) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE passcode_resets SET voided_at = $2 WHERE user_id = $1 AND used_at IS NULL AND voided_at IS NULL",
    )
    .bind(n.user_id)
    .bind(n.at)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO passcode_resets (id, token_hash, user_id, origin, skip_questions, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(n.id)
    .bind(n.token_hash.to_vec())
    .bind(n.user_id)
    .bind(n.origin)
    .bind(i64::from(n.skip_questions))
    .bind(n.at)
    .bind(n.expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// How many links of `origin` were made for a holder since `since` (for rate limiting).
pub async fn count_since(conn: &mut Conn, user_id: &str, origin: &str, since: i64) -> Result<i64, StoreError> {
    let r = sqlx::query(
        "SELECT COUNT(*) AS n FROM passcode_resets WHERE user_id = $1 AND origin = $2 AND created_at >= $3",
    )
    .bind(user_id)
    .bind(origin)
    .bind(since)
    .fetch_one(conn)
    .await?;
    Ok(r.try_get("n")?)
}

/// A link by its token hash.
pub async fn by_token_hash(conn: &mut Conn, token_hash: &[u8]) -> Result<Option<ResetRow>, StoreError> {
    let r = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM passcode_resets WHERE token_hash = $1")))
        .bind(token_hash.to_vec())
        .fetch_optional(conn)
        .await?;
    r.as_ref().map(row).transpose()
}

/// Reserve one round of security answers before checking it (counted as failed up front);
/// `None` when the link is no longer live or has no rounds left. Atomic, so concurrent rounds
/// never exceed [`MAX_QUESTION_ROUNDS`].
pub async fn reserve_question_round(conn: &mut Conn, id: &str, now: i64) -> Result<Option<i64>, StoreError> {
    let r = sqlx::query(
        "UPDATE passcode_resets SET question_rounds_failed = question_rounds_failed + 1 WHERE id = $1 \
         AND question_rounds_failed < $2 AND used_at IS NULL AND voided_at IS NULL AND expires_at > $3 \
         AND questions_passed_at IS NULL RETURNING question_rounds_failed",
    )
    .bind(id)
    .bind(MAX_QUESTION_ROUNDS)
    .bind(now)
    .fetch_optional(conn)
    .await?;
    r.map(|r| Ok(r.try_get("question_rounds_failed")?)).transpose()
}

/// A reserved round was right: un-count it and record that the questions are passed.
pub async fn pass_questions(conn: &mut Conn, id: &str, at: i64) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE passcode_resets SET question_rounds_failed = question_rounds_failed - 1, questions_passed_at = $2 \
         WHERE id = $1 AND questions_passed_at IS NULL",
    )
    .bind(id)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Void a link (too many wrong answers or codes).
pub async fn void(conn: &mut Conn, id: &str, at: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE passcode_resets SET voided_at = $2 WHERE id = $1 AND voided_at IS NULL")
        .bind(id)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

/// Name the push that will pass the second factor.
pub async fn set_login(conn: &mut Conn, id: &str, login_id: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE passcode_resets SET login_id = $2 WHERE id = $1").bind(id).bind(login_id).execute(conn).await?;
    Ok(())
}

/// Record a new SMS code (the previous one dies).
pub async fn set_code(conn: &mut Conn, id: &str, code_hash: &[u8], at: i64, expires_at: i64) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE passcode_resets SET login_id = NULL, code_hash = $2, code_sent_at = $3, code_expires_at = $4 WHERE id = $1",
    )
    .bind(id)
    .bind(code_hash.to_vec())
    .bind(at)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Record that the second factor was passed.
pub async fn pass_factor(conn: &mut Conn, id: &str, at: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE passcode_resets SET factor_passed_at = $2 WHERE id = $1 AND factor_passed_at IS NULL")
        .bind(id)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

/// Use a live link once; `false` when it was used, voided or expired meanwhile.
pub async fn mark_used(conn: &mut Conn, id: &str, at: i64) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE passcode_resets SET used_at = $2 WHERE id = $1 AND used_at IS NULL AND voided_at IS NULL \
         AND expires_at > $2",
    )
    .bind(id)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// End every open card session of a holder; returns how many.
pub async fn end_sessions_for_user(conn: &mut Conn, user_id: &str, at: i64) -> Result<u64, StoreError> {
    let done = sqlx::query("UPDATE card_sessions SET ended_at = $2 WHERE user_id = $1 AND ended_at IS NULL")
        .bind(user_id)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}

/// Unlock a holder's locked cards (locked → active); returns their serials.
pub async fn unlock_cards_for_user(conn: &mut Conn, user_id: &str) -> Result<Vec<String>, StoreError> {
    let rows =
        sqlx::query("UPDATE cards SET state = 'active' WHERE user_id = $1 AND state = 'locked' RETURNING serial")
            .bind(user_id)
            .fetch_all(conn)
            .await?;
    rows.iter().map(|r| Ok(r.try_get("serial")?)).collect()
}

/// Whether a login is the second-factor push of a passcode reset.
pub async fn is_reset_login(conn: &mut Conn, login_id: &str) -> Result<bool, StoreError> {
    Ok(sqlx::query("SELECT 1 FROM passcode_resets WHERE login_id = $1")
        .bind(login_id)
        .fetch_optional(conn)
        .await?
        .is_some())
}
