//! The second-factor ledger: every check of a one-time code reserves its place twice, atomically
//! and before the code is compared — once in the challenge it answers (5 attempts, then the
//! challenge is void) and once in the holder's own count across challenges (10 wrong codes within
//! 24 h lock the cards). Both are single conditional `UPDATE … RETURNING` statements, so
//! concurrent requests on either database are counted exactly; nothing reads and then writes.

use sqlx::Row;

use crate::{Conn, StoreError};

pub use vsc_core::enrolment::{
    CODE_MAX_ATTEMPTS as CHALLENGE_MAX_ATTEMPTS, HOLDER_CODE_MAX_FAILURES as HOLDER_MAX_FAILURES,
    HOLDER_CODE_WINDOW_SECONDS as HOLDER_WINDOW_SECONDS,
};

/// The challenge a code answers, naming the row that counts its attempts.
#[derive(Debug, Clone, Copy)]
pub enum CodeChallenge<'a> {
    /// A card login's app-code fallback (`card_logins.id`).
    CardLogin(&'a str),
    /// A portal sign-in's SMS or app code (`sign_ins.token_hash`).
    SignIn(&'a [u8]),
    /// The enrolment SMS code (`enrolments.card_id`).
    Enrolment(&'a str),
    /// A passcode reset's SMS or app code (`passcode_resets.id`).
    Reset(&'a str),
    /// The emailed code confirming a new authenticator (`devices.id`).
    Device(&'a str),
    /// The SMS code confirming a mobile number (`mobile_verifications.user_id`).
    Mobile(&'a str),
}

impl CodeChallenge<'_> {
    /// The table, its attempts column and its key column.
    fn columns(&self) -> (&'static str, &'static str, &'static str) {
        match self {
            CodeChallenge::CardLogin(_) => ("card_logins", "code_attempts", "id"),
            CodeChallenge::SignIn(_) => ("sign_ins", "attempts", "token_hash"),
            CodeChallenge::Enrolment(_) => ("enrolments", "code_attempts", "card_id"),
            CodeChallenge::Reset(_) => ("passcode_resets", "code_attempts", "id"),
            CodeChallenge::Device(_) => ("devices", "code_attempts", "id"),
            CodeChallenge::Mobile(_) => ("mobile_verifications", "attempts", "user_id"),
        }
    }
}

/// Reserve one attempt on `challenge`: its count goes up by one only while it is below
/// [`CHALLENGE_MAX_ATTEMPTS`]. Returns the attempt's number, or `None` when the challenge is spent
/// (or gone).
pub async fn reserve_challenge_attempt(
    conn: &mut Conn,
    challenge: CodeChallenge<'_>,
) -> Result<Option<i64>, StoreError> {
    let (table, column, key) = challenge.columns();
    let sql = format!(
        "UPDATE {table} SET {column} = {column} + 1 WHERE {key} = $1 AND {column} < $2 RETURNING {column} AS attempts"
    );
    let query = sqlx::query(sqlx::AssertSqlSafe(sql));
    let query = match challenge {
        CodeChallenge::SignIn(hash) => query.bind(hash.to_vec()),
        CodeChallenge::CardLogin(id)
        | CodeChallenge::Enrolment(id)
        | CodeChallenge::Reset(id)
        | CodeChallenge::Device(id)
        | CodeChallenge::Mobile(id) => query.bind(id.to_string()),
    };
    let r = query.bind(CHALLENGE_MAX_ATTEMPTS).fetch_optional(conn).await?;
    r.map(|r| Ok(r.try_get("attempts")?)).transpose()
}

/// Reserve one failure in the holder's ledger before a code is compared (a right code gives it
/// back with [`refund_holder_failure`]). A window older than [`HOLDER_WINDOW_SECONDS`] starts
/// again at 1. Returns the failures counted in the window, or `None` when
/// [`HOLDER_MAX_FAILURES`] are counted already and no code may be checked.
pub async fn reserve_holder_failure(conn: &mut Conn, user_id: &str, now: i64) -> Result<Option<i64>, StoreError> {
    let cut = now - HOLDER_WINDOW_SECONDS;
    let r = sqlx::query(
        "INSERT INTO second_factor_ledger (user_id, failures, window_start) VALUES ($1, 1, $2) \
         ON CONFLICT (user_id) DO UPDATE SET \
           failures = CASE WHEN second_factor_ledger.window_start <= $3 THEN 1 ELSE second_factor_ledger.failures + 1 END, \
           window_start = CASE WHEN second_factor_ledger.window_start <= $3 THEN $2 ELSE second_factor_ledger.window_start END \
         WHERE second_factor_ledger.window_start <= $3 OR second_factor_ledger.failures < $4 \
         RETURNING failures",
    )
    .bind(user_id)
    .bind(now)
    .bind(cut)
    .bind(HOLDER_MAX_FAILURES)
    .fetch_optional(conn)
    .await?;
    r.map(|r| Ok(r.try_get("failures")?)).transpose()
}

/// Give back a reservation of [`reserve_holder_failure`] (the code was right).
pub async fn refund_holder_failure(conn: &mut Conn, user_id: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE second_factor_ledger SET failures = failures - 1 WHERE user_id = $1 AND failures > 0")
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Clear the holder's ledger (an RA unlock, a new passcode).
pub async fn clear_holder_failures(conn: &mut Conn, user_id: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM second_factor_ledger WHERE user_id = $1").bind(user_id).execute(conn).await?;
    Ok(())
}

/// The failures counted in the holder's current window (0 when it has ended).
pub async fn holder_failures(conn: &mut Conn, user_id: &str, now: i64) -> Result<i64, StoreError> {
    let r = sqlx::query("SELECT failures FROM second_factor_ledger WHERE user_id = $1 AND window_start > $2")
        .bind(user_id)
        .bind(now - HOLDER_WINDOW_SECONDS)
        .fetch_optional(conn)
        .await?;
    Ok(r.map(|r| r.try_get("failures")).transpose()?.unwrap_or(0))
}
