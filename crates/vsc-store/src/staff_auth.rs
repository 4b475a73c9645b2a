//! RA staff sign-in: password links, credentials and the failed-sign-in throttle, the sign-ins
//! awaiting their TOTP step, and portal sessions. Tokens are stored only as SHA-256 hashes.

use sqlx::Row;

use crate::{Conn, StoreError};

/// A staff account with what signing in needs.
#[derive(Debug, Clone, PartialEq)]
pub struct StaffCredentials {
    /// UUID.
    pub id: String,
    /// Email.
    pub email: String,
    /// Display name.
    pub display_name: String,
    /// `manager` / `agent`.
    pub role: String,
    /// Argon2id hash of the password, once set.
    pub password_hash: Option<String>,
    /// The TOTP secret (sealed), once set up.
    pub sealed_totp: Option<Vec<u8>>,
    /// The last TOTP step accepted.
    pub totp_last_step: i64,
    /// Whether a manager disabled the account (no sign-in, sessions or API tokens).
    pub disabled: bool,
    /// Whether the account is an operator.
    pub operator: bool,
}

const CREDENTIAL_COLUMNS: &str =
    "id, email, display_name, role, password_hash, sealed_totp, totp_last_step, disabled_at, operator";

fn credentials(r: &sqlx::any::AnyRow) -> Result<StaffCredentials, StoreError> {
    Ok(StaffCredentials {
        id: r.try_get("id")?,
        email: r.try_get("email")?,
        display_name: r.try_get("display_name")?,
        role: r.try_get("role")?,
        password_hash: r.try_get("password_hash")?,
        sealed_totp: r.try_get("sealed_totp")?,
        totp_last_step: r.try_get("totp_last_step")?,
        disabled: r.try_get::<Option<i64>, _>("disabled_at")?.is_some(),
        operator: r.try_get::<i64, _>("operator")? != 0,
    })
}

/// A staff account by lower-cased email.
pub async fn by_email_key(conn: &mut Conn, email_key: &str) -> Result<Option<StaffCredentials>, StoreError> {
    let sql = format!("SELECT {CREDENTIAL_COLUMNS} FROM staff WHERE email_key = $1");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(email_key)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(credentials)
        .transpose()
}

/// A staff account by id.
pub async fn by_id(conn: &mut Conn, id: &str) -> Result<Option<StaffCredentials>, StoreError> {
    let sql = format!("SELECT {CREDENTIAL_COLUMNS} FROM staff WHERE id = $1");
    sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(conn).await?.as_ref().map(credentials).transpose()
}

/// Replace every password link of the account with a new one.
pub async fn replace_password_link(
    conn: &mut Conn,
    staff_id: &str,
    token_hash: &[u8],
    at: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM staff_password_links WHERE staff_id = $1").bind(staff_id).execute(&mut *conn).await?;
    sqlx::query(
        "INSERT INTO staff_password_links (token_hash, staff_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(token_hash.to_vec())
    .bind(staff_id)
    .bind(at)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// A stored password link.
#[derive(Debug, Clone, PartialEq)]
pub struct PasswordLink {
    /// SHA-256 of the token (for the constant-time comparison).
    pub token_hash: Vec<u8>,
    /// Whose password it sets.
    pub staff_id: String,
    /// When it stops working.
    pub expires_at: i64,
    /// When it was used.
    pub used_at: Option<i64>,
}

/// A password link by its token hash.
pub async fn password_link(conn: &mut Conn, token_hash: &[u8]) -> Result<Option<PasswordLink>, StoreError> {
    let r =
        sqlx::query("SELECT token_hash, staff_id, expires_at, used_at FROM staff_password_links WHERE token_hash = $1")
            .bind(token_hash.to_vec())
            .fetch_optional(conn)
            .await?;
    r.map(|r| {
        Ok(PasswordLink {
            token_hash: r.try_get("token_hash")?,
            staff_id: r.try_get("staff_id")?,
            expires_at: r.try_get("expires_at")?,
            used_at: r.try_get("used_at")?,
        })
    })
    .transpose()
}

/// Spend a live password link; false when it was used or expired meanwhile.
pub async fn use_password_link(conn: &mut Conn, token_hash: &[u8], now: i64) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE staff_password_links SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
    )
    .bind(token_hash.to_vec())
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Set the password hash, clearing the failed-sign-in count and any lock.
pub async fn set_password(conn: &mut Conn, staff_id: &str, password_hash: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE staff SET password_hash = $2, sign_in_failures = 0, sign_in_locked_until = NULL WHERE id = $1")
        .bind(staff_id)
        .bind(password_hash)
        .execute(conn)
        .await?;
    Ok(())
}

/// Reserve one sign-in check (password or TOTP code) before it runs: counts it as a failure in
/// the same statement that checks the account is neither locked (at `now`) nor at `max` failures,
/// so concurrent attempts are counted exactly. The reservation that reaches `max` locks the
/// account until `lock_until` in that same statement, whatever the check then finds, so a
/// count at the limit always comes with a lock that runs out. Returns the count including this
/// one, or `None` when no check may run. A lock that has run out starts a fresh count.
pub async fn reserve_attempt(
    conn: &mut Conn,
    staff_id: &str,
    now: i64,
    max: i64,
    lock_until: i64,
) -> Result<Option<i64>, StoreError> {
    // Right-hand sides read the row as it was before the update (both backends).
    let r = sqlx::query(
        "UPDATE staff SET \
           sign_in_failures = CASE WHEN sign_in_locked_until IS NULL THEN sign_in_failures + 1 ELSE 1 END, \
           sign_in_locked_until = CASE \
             WHEN (CASE WHEN sign_in_locked_until IS NULL THEN sign_in_failures + 1 ELSE 1 END) >= $3 THEN $4 \
             ELSE NULL END \
         WHERE id = $1 AND password_hash IS NOT NULL \
           AND ((sign_in_locked_until IS NULL AND sign_in_failures < $3) OR sign_in_locked_until <= $2) \
         RETURNING sign_in_failures",
    )
    .bind(staff_id)
    .bind(now)
    .bind(max)
    .bind(lock_until)
    .fetch_optional(conn)
    .await?;
    r.map(|r| r.try_get("sign_in_failures")).transpose().map_err(StoreError::from)
}

/// A check succeeded: forget the failures.
pub async fn clear_failures(conn: &mut Conn, staff_id: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE staff SET sign_in_failures = 0, sign_in_locked_until = NULL WHERE id = $1")
        .bind(staff_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Record a sign-in awaiting its TOTP step (`sealed_totp`: the secret offered for set-up).
pub async fn create_sign_in(
    conn: &mut Conn,
    token_hash: &[u8],
    staff_id: &str,
    sealed_totp: Option<&[u8]>,
    at: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO staff_sign_ins (token_hash, staff_id, sealed_totp, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(token_hash.to_vec())
    .bind(staff_id)
    .bind(sealed_totp.map(<[u8]>::to_vec))
    .bind(at)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// A sign-in awaiting its TOTP step.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingSignIn {
    /// SHA-256 of the token.
    pub token_hash: Vec<u8>,
    /// Who.
    pub staff_id: String,
    /// The secret offered for TOTP set-up (sealed), if this sign-in sets it up.
    pub sealed_totp: Option<Vec<u8>>,
    /// When it stops working.
    pub expires_at: i64,
    /// When it opened a session.
    pub completed_at: Option<i64>,
}

/// A sign-in by its token hash.
pub async fn sign_in(conn: &mut Conn, token_hash: &[u8]) -> Result<Option<PendingSignIn>, StoreError> {
    let r = sqlx::query(
        "SELECT token_hash, staff_id, sealed_totp, expires_at, completed_at FROM staff_sign_ins WHERE token_hash = $1",
    )
    .bind(token_hash.to_vec())
    .fetch_optional(conn)
    .await?;
    r.map(|r| {
        Ok(PendingSignIn {
            token_hash: r.try_get("token_hash")?,
            staff_id: r.try_get("staff_id")?,
            sealed_totp: r.try_get("sealed_totp")?,
            expires_at: r.try_get("expires_at")?,
            completed_at: r.try_get("completed_at")?,
        })
    })
    .transpose()
}

/// Spend a live sign-in; false when it completed or expired meanwhile.
pub async fn complete_sign_in(conn: &mut Conn, token_hash: &[u8], now: i64) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE staff_sign_ins SET completed_at = $2 WHERE token_hash = $1 AND completed_at IS NULL AND expires_at > $2",
    )
    .bind(token_hash.to_vec())
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// End a sign-in (e.g. when the account locks).
pub async fn end_sign_ins(conn: &mut Conn, staff_id: &str, now: i64) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE staff_sign_ins SET expires_at = $2 WHERE staff_id = $1 AND completed_at IS NULL AND expires_at > $2",
    )
    .bind(staff_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// End every live session of an account; returns how many were live.
pub async fn end_sessions(conn: &mut Conn, staff_id: &str, now: i64) -> Result<u64, StoreError> {
    let done = sqlx::query("UPDATE staff_sessions SET ended_at = $2 WHERE staff_id = $1 AND ended_at IS NULL")
        .bind(staff_id)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}

/// Keep a confirmed TOTP secret, with the step that confirmed it as used.
pub async fn set_totp(conn: &mut Conn, staff_id: &str, sealed: &[u8], step: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE staff SET sealed_totp = $2, totp_last_step = $3 WHERE id = $1")
        .bind(staff_id)
        .bind(sealed.to_vec())
        .bind(step)
        .execute(conn)
        .await?;
    Ok(())
}

/// Forget the TOTP secret, so the next sign-in sets one up again (the last accepted step is kept:
/// no code of an earlier step is ever accepted again); returns whether one was set.
pub async fn clear_totp(conn: &mut Conn, staff_id: &str) -> Result<bool, StoreError> {
    let done = sqlx::query("UPDATE staff SET sealed_totp = NULL WHERE id = $1 AND sealed_totp IS NOT NULL")
        .bind(staff_id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Accept TOTP `step` once: false when it (or a later one) was accepted before.
pub async fn use_totp_step(conn: &mut Conn, staff_id: &str, step: i64) -> Result<bool, StoreError> {
    let done = sqlx::query("UPDATE staff SET totp_last_step = $2 WHERE id = $1 AND totp_last_step < $2")
        .bind(staff_id)
        .bind(step)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Open a session.
pub async fn create_session(conn: &mut Conn, token_hash: &[u8], staff_id: &str, at: i64) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO staff_sessions (token_hash, staff_id, created_at, last_seen_at) VALUES ($1, $2, $3, $3)")
        .bind(token_hash.to_vec())
        .bind(staff_id)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

/// Use a live session (not ended, seen since `idle_since`, created since `created_since`):
/// marks it seen at `now` and returns (staff id, stored token hash).
pub async fn touch_session(
    conn: &mut Conn,
    token_hash: &[u8],
    now: i64,
    idle_since: i64,
    created_since: i64,
) -> Result<Option<(String, Vec<u8>)>, StoreError> {
    let r = sqlx::query(
        "UPDATE staff_sessions SET last_seen_at = $2 WHERE token_hash = $1 AND ended_at IS NULL \
         AND last_seen_at > $3 AND created_at > $4 RETURNING staff_id, token_hash",
    )
    .bind(token_hash.to_vec())
    .bind(now)
    .bind(idle_since)
    .bind(created_since)
    .fetch_optional(conn)
    .await?;
    r.map(|r| Ok((r.try_get("staff_id")?, r.try_get("token_hash")?))).transpose()
}

/// End a session (sign-out); returns the staff id when it was live.
pub async fn end_session(conn: &mut Conn, token_hash: &[u8], now: i64) -> Result<Option<String>, StoreError> {
    let r = sqlx::query(
        "UPDATE staff_sessions SET ended_at = $2 WHERE token_hash = $1 AND ended_at IS NULL RETURNING staff_id",
    )
    .bind(token_hash.to_vec())
    .bind(now)
    .fetch_optional(conn)
    .await?;
    r.map(|r| r.try_get("staff_id")).transpose().map_err(StoreError::from)
}

/// The organisations granted to a staff member: (code, name), by code.
pub async fn organisations(conn: &mut Conn, staff_id: &str) -> Result<Vec<(String, String)>, StoreError> {
    let rows = sqlx::query(
        "SELECT o.code, o.name FROM staff_organisations g JOIN organisations o ON o.id = g.org_id \
         WHERE g.staff_id = $1 ORDER BY o.code",
    )
    .bind(staff_id)
    .fetch_all(conn)
    .await?;
    rows.iter().map(|r| Ok((r.try_get("code")?, r.try_get("name")?))).collect()
}
