//! Card holders' credentials: passcode, security answers, portal sessions and sign-ins, the
//! security-question catalogue and directory accounts.

use sqlx::Row;

use crate::{Conn, StoreError};

/// A catalogue question.
#[derive(Debug, Clone, PartialEq)]
pub struct Question {
    /// Id.
    pub id: i64,
    /// Text.
    pub text: String,
}

/// Active security questions, by id.
pub async fn questions(conn: &mut Conn) -> Result<Vec<Question>, StoreError> {
    let rows =
        sqlx::query("SELECT id, text FROM security_questions WHERE active = 1 ORDER BY id").fetch_all(conn).await?;
    rows.iter().map(|r| Ok(Question { id: r.try_get("id")?, text: r.try_get("text")? })).collect()
}

/// A holder's stored credentials.
#[derive(Debug, Clone, PartialEq)]
pub struct Credentials {
    /// Passcode hash.
    pub passcode_hash: String,
}

/// Set (or replace) a holder's passcode (the failure count is cleared by the caller).
pub async fn set_passcode(conn: &mut Conn, user_id: &str, hash: &str, at: i64) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO holder_credentials (user_id, passcode_hash, updated_at) VALUES ($1, $2, $3) ON CONFLICT (user_id) \
         DO UPDATE SET passcode_hash = $2, updated_at = $3",
    )
    .bind(user_id)
    .bind(hash)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// A holder's credentials.
pub async fn credentials(conn: &mut Conn, user_id: &str) -> Result<Option<Credentials>, StoreError> {
    let r = sqlx::query("SELECT passcode_hash FROM holder_credentials WHERE user_id = $1")
        .bind(user_id)
        .fetch_optional(conn)
        .await?;
    r.map(|r| Ok(Credentials { passcode_hash: r.try_get("passcode_hash")? })).transpose()
}

/// Replace a holder's security answers.
pub async fn set_answers(conn: &mut Conn, user_id: &str, answers: &[(i64, String)]) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM security_answers WHERE user_id = $1").bind(user_id).execute(&mut *conn).await?;
    for (q, hash) in answers {
        sqlx::query("INSERT INTO security_answers (user_id, question_id, answer_hash) VALUES ($1, $2, $3)")
            .bind(user_id)
            .bind(*q)
            .bind(hash.as_str())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// A holder's chosen questions with answer hashes.
pub async fn answers(conn: &mut Conn, user_id: &str) -> Result<Vec<(i64, String)>, StoreError> {
    let rows =
        sqlx::query("SELECT question_id, answer_hash FROM security_answers WHERE user_id = $1 ORDER BY question_id")
            .bind(user_id)
            .fetch_all(conn)
            .await?;
    rows.iter().map(|r| Ok((r.try_get("question_id")?, r.try_get("answer_hash")?))).collect()
}

/// Open a portal session.
pub async fn create_session(
    conn: &mut Conn,
    id: &str,
    token_hash: &[u8],
    user_id: &str,
    at: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO holder_sessions (id, token_hash, user_id, created_at, expires_at, last_used_at) \
         VALUES ($1, $2, $3, $4, $5, $4)",
    )
    .bind(id)
    .bind(token_hash.to_vec())
    .bind(user_id)
    .bind(at)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// A live portal session: not ended, not expired, used since `idle_cut`.
#[derive(Debug, Clone)]
pub struct LiveSession {
    /// The holder.
    pub user_id: String,
    /// The stored token hash (compared in constant time by the caller).
    pub token_hash: Vec<u8>,
    /// When it was last used.
    pub last_used_at: i64,
}

/// The live session with this token hash (see [`LiveSession`]).
pub async fn session(
    conn: &mut Conn,
    token_hash: &[u8],
    now: i64,
    idle_cut: i64,
) -> Result<Option<LiveSession>, StoreError> {
    let r = sqlx::query(
        "SELECT user_id, token_hash, COALESCE(last_used_at, created_at) AS last_used_at FROM holder_sessions \
         WHERE token_hash = $1 AND ended_at IS NULL AND expires_at > $2 AND COALESCE(last_used_at, created_at) > $3",
    )
    .bind(token_hash.to_vec())
    .bind(now)
    .bind(idle_cut)
    .fetch_optional(conn)
    .await?;
    r.map(|r| {
        Ok(LiveSession {
            user_id: r.try_get("user_id")?,
            token_hash: r.try_get("token_hash")?,
            last_used_at: r.try_get("last_used_at")?,
        })
    })
    .transpose()
}

/// Record that a session was used at `at` (keeps it from idling out).
pub async fn touch_session(conn: &mut Conn, token_hash: &[u8], at: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE holder_sessions SET last_used_at = $2 WHERE token_hash = $1 AND ended_at IS NULL")
        .bind(token_hash.to_vec())
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

/// End every open portal session of a holder; returns how many.
pub async fn end_sessions_for_user(conn: &mut Conn, user_id: &str, at: i64) -> Result<u64, StoreError> {
    let done = sqlx::query("UPDATE holder_sessions SET ended_at = $2 WHERE user_id = $1 AND ended_at IS NULL")
        .bind(user_id)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}

/// End a session.
pub async fn end_session(conn: &mut Conn, token_hash: &[u8], at: i64) -> Result<bool, StoreError> {
    let done = sqlx::query("UPDATE holder_sessions SET ended_at = $2 WHERE token_hash = $1 AND ended_at IS NULL")
        .bind(token_hash.to_vec())
        .bind(at)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// A pending portal sign-in.
#[derive(Debug, Clone, PartialEq)]
pub struct SignIn {
    /// The holder, or `None` for a sign-in that can never succeed (unknown email / wrong passcode).
    pub user_id: Option<String>,
    /// SHA-256 of the code.
    pub code_hash: Option<Vec<u8>>,
    /// Expiry.
    pub expires_at: i64,
    /// Wrong codes so far.
    pub attempts: i64,
    /// Completed.
    pub completed_at: Option<i64>,
    /// The push login (`card_logins`, purpose `portal`) that completes it; `None` for SMS codes.
    pub login_id: Option<String>,
}

/// Record a sign-in awaiting its code.
pub async fn create_sign_in(
    conn: &mut Conn,
    token_hash: &[u8],
    user_id: &str,
    code_hash: &[u8],
    at: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO sign_ins (token_hash, user_id, code_hash, expires_at, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(token_hash.to_vec())
    .bind(user_id)
    .bind(code_hash.to_vec())
    .bind(expires_at)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Record a sign-in that waits for a push approval (or an app code) on `login_id`.
pub async fn create_push_sign_in(
    conn: &mut Conn,
    token_hash: &[u8],
    user_id: &str,
    login_id: &str,
    at: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO sign_ins (token_hash, user_id, login_id, expires_at, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(token_hash.to_vec())
    .bind(user_id)
    .bind(login_id)
    .bind(expires_at)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// A sign-in by token hash.
pub async fn sign_in(conn: &mut Conn, token_hash: &[u8]) -> Result<Option<SignIn>, StoreError> {
    let r = sqlx::query(
        "SELECT user_id, code_hash, expires_at, attempts, completed_at, login_id FROM sign_ins WHERE token_hash = $1",
    )
    .bind(token_hash.to_vec())
    .fetch_optional(conn)
    .await?;
    r.map(|r| {
        Ok(SignIn {
            user_id: r.try_get("user_id")?,
            code_hash: r.try_get("code_hash")?,
            expires_at: r.try_get("expires_at")?,
            attempts: r.try_get("attempts")?,
            completed_at: r.try_get("completed_at")?,
            login_id: r.try_get("login_id")?,
        })
    })
    .transpose()
}

/// Complete a sign-in; `false` if it was already completed.
pub async fn complete_sign_in(conn: &mut Conn, token_hash: &[u8], at: i64) -> Result<bool, StoreError> {
    let done = sqlx::query("UPDATE sign_ins SET completed_at = $2 WHERE token_hash = $1 AND completed_at IS NULL")
        .bind(token_hash.to_vec())
        .bind(at)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Record a directory (AD) account to activate when enrolment completes.
pub async fn add_directory_account(conn: &mut Conn, user_id: &str, name: &str, at: i64) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO directory_accounts (user_id, name, state, created_at) VALUES ($1, $2, 'pending', $3)")
        .bind(user_id)
        .bind(name)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

/// Activate a holder's pending directory accounts; returns their names.
pub async fn activate_directory_accounts(conn: &mut Conn, user_id: &str, at: i64) -> Result<Vec<String>, StoreError> {
    let rows = sqlx::query(
        "UPDATE directory_accounts SET state = 'active', activated_at = $2 WHERE user_id = $1 AND state = 'pending' \
         RETURNING name",
    )
    .bind(user_id)
    .bind(at)
    .fetch_all(conn)
    .await?;
    rows.iter().map(|r| Ok(r.try_get("name")?)).collect()
}

/// A directory (AD) account of a holder.
#[derive(Debug, Clone, PartialEq)]
pub struct DirectoryAccount {
    /// Account name.
    pub name: String,
    /// `pending` (until enrolment completes) or `active`.
    pub state: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds, once active.
    pub activated_at: Option<i64>,
}

/// A holder's directory accounts with their dates, by name.
pub async fn directory_accounts(conn: &mut Conn, user_id: &str) -> Result<Vec<DirectoryAccount>, StoreError> {
    let rows = sqlx::query(
        "SELECT name, state, created_at, activated_at FROM directory_accounts WHERE user_id = $1 ORDER BY name",
    )
    .bind(user_id)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(DirectoryAccount {
                name: r.try_get("name")?,
                state: r.try_get("state")?,
                created_at: r.try_get("created_at")?,
                activated_at: r.try_get("activated_at")?,
            })
        })
        .collect()
}

/// Record a directory account that is active at once (the holder has already enrolled).
pub async fn add_active_directory_account(
    conn: &mut Conn,
    user_id: &str,
    name: &str,
    at: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO directory_accounts (user_id, name, state, created_at, activated_at) VALUES ($1, $2, 'active', $3, $3)",
    )
    .bind(user_id)
    .bind(name)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Remove one of a holder's directory accounts; the removed account, if there was one.
pub async fn remove_directory_account(
    conn: &mut Conn,
    user_id: &str,
    name: &str,
) -> Result<Option<DirectoryAccount>, StoreError> {
    let found = directory_accounts(conn, user_id).await?.into_iter().find(|a| a.name == name);
    if found.is_some() {
        sqlx::query("DELETE FROM directory_accounts WHERE user_id = $1 AND name = $2")
            .bind(user_id)
            .bind(name)
            .execute(conn)
            .await?;
    }
    Ok(found)
}

/// Set or clear a holder's mobile number (unconfirmed: see [`crate::channels`]).
pub async fn set_holder_mobile(conn: &mut Conn, user_id: &str, mobile: Option<&str>) -> Result<(), StoreError> {
    sqlx::query("UPDATE users SET mobile = $2, mobile_verified_at = NULL WHERE id = $1")
        .bind(user_id)
        .bind(mobile)
        .execute(conn)
        .await?;
    Ok(())
}

/// Set a holder's subject CN (unique: a taken one is a [`StoreError::Constraint`]).
pub async fn set_holder_subject_cn(conn: &mut Conn, user_id: &str, subject_cn: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE users SET subject_cn = $2 WHERE id = $1").bind(user_id).bind(subject_cn).execute(conn).await?;
    Ok(())
}

/// A holder's audit trail, newest first: events targeting the user (`user:<id>`) or one of their
/// cards (`card:<serial>`) in their organisation, matched on the target column only.
pub async fn audit_trail(
    conn: &mut Conn,
    org_id: &str,
    user_id: &str,
    serials: &[String],
    limit: i64,
) -> Result<Vec<crate::audit::AuditRow>, StoreError> {
    let mut targets = vec!["$2".to_string()];
    targets.extend((0..serials.len()).map(|i| format!("${}", i + 4)));
    let sql = format!(
        "{} WHERE a.org_id = $1 AND a.target IN ({}) ORDER BY a.id DESC LIMIT $3",
        crate::audit::AUDIT_SELECT,
        targets.join(", ")
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(org_id).bind(format!("user:{user_id}")).bind(limit);
    for s in serials {
        q = q.bind(format!("card:{s}"));
    }
    let rows = q.fetch_all(conn).await?;
    rows.iter().map(crate::audit::audit_row).collect()
}

/// Record an email-verification link.
pub async fn create_email_verification(
    conn: &mut Conn,
    token_hash: &[u8],
    user_id: &str,
    email: &str,
    at: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO email_verifications (token_hash, user_id, email, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(token_hash.to_vec())
    .bind(user_id)
    .bind(email)
    .bind(at)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// When the newest verification link of a holder was sent.
pub async fn last_email_verification_at(conn: &mut Conn, user_id: &str) -> Result<Option<i64>, StoreError> {
    let r = sqlx::query("SELECT MAX(created_at) AS at FROM email_verifications WHERE user_id = $1")
        .bind(user_id)
        .fetch_one(conn)
        .await?;
    Ok(r.try_get("at")?)
}

/// A verification link: (user, email, expires_at, used_at, stored hash).
pub async fn email_verification(
    conn: &mut Conn,
    token_hash: &[u8],
) -> Result<Option<(String, String, i64, Option<i64>, Vec<u8>)>, StoreError> {
    let r = sqlx::query(
        "SELECT user_id, email, expires_at, used_at, token_hash FROM email_verifications WHERE token_hash = $1",
    )
    .bind(token_hash.to_vec())
    .fetch_optional(conn)
    .await?;
    r.map(|r| {
        Ok((
            r.try_get("user_id")?,
            r.try_get("email")?,
            r.try_get("expires_at")?,
            r.try_get("used_at")?,
            r.try_get("token_hash")?,
        ))
    })
    .transpose()
}

/// Use a verification link once; `false` if it was used already.
pub async fn use_email_verification(conn: &mut Conn, token_hash: &[u8], at: i64) -> Result<bool, StoreError> {
    let done = sqlx::query("UPDATE email_verifications SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL")
        .bind(token_hash.to_vec())
        .bind(at)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Mark a holder's email verified, if it is still `email`.
pub async fn set_email_verified(conn: &mut Conn, user_id: &str, email: &str, at: i64) -> Result<bool, StoreError> {
    let done = sqlx::query("UPDATE users SET email_verified_at = $3 WHERE id = $1 AND email = $2")
        .bind(user_id)
        .bind(email)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// When a holder's email was verified.
pub async fn email_verified_at(conn: &mut Conn, user_id: &str) -> Result<Option<i64>, StoreError> {
    let r = sqlx::query("SELECT email_verified_at FROM users WHERE id = $1").bind(user_id).fetch_optional(conn).await?;
    Ok(match r {
        Some(r) => r.try_get("email_verified_at")?,
        None => None,
    })
}

/// Wrong card passcodes that lock the holder's cards.
pub const CARD_PASSCODE_MAX_FAILURES: i64 = 3;

/// Reserve one card-passcode check before running it: counts it as a failure up front (a success
/// clears the count), and only while fewer than [`CARD_PASSCODE_MAX_FAILURES`] are counted and the
/// holder has an active, unexpired card. Returns the attempt's number and the passcode hash to check, or `None` when no check may run (the
/// card is locked or being locked). Atomic, so concurrent attempts are counted exactly.
pub async fn reserve_passcode_attempt(
    conn: &mut Conn,
    user_id: &str,
    now: i64,
) -> Result<Option<(i64, String)>, StoreError> {
    let r = sqlx::query(
        "UPDATE holder_credentials SET passcode_failures = passcode_failures + 1 WHERE user_id = $1 \
         AND passcode_failures < $2 AND EXISTS (SELECT 1 FROM cards WHERE user_id = $1 AND state = 'active' AND expires_at > $3) \
         RETURNING passcode_failures, passcode_hash",
    )
    .bind(user_id)
    .bind(CARD_PASSCODE_MAX_FAILURES)
    .bind(now)
    .fetch_optional(conn)
    .await?;
    r.map(|r| Ok((r.try_get("passcode_failures")?, r.try_get("passcode_hash")?))).transpose()
}

/// Clear the card-passcode failure count (after a right passcode).
pub async fn clear_passcode_failures(conn: &mut Conn, user_id: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE holder_credentials SET passcode_failures = 0 WHERE user_id = $1 AND passcode_failures <> 0")
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The current card-passcode failure count.
pub async fn passcode_failures(conn: &mut Conn, user_id: &str) -> Result<i64, StoreError> {
    let r = sqlx::query("SELECT passcode_failures FROM holder_credentials WHERE user_id = $1")
        .bind(user_id)
        .fetch_optional(conn)
        .await?;
    Ok(r.map(|r| r.try_get("passcode_failures")).transpose()?.unwrap_or(0))
}
