//! Verified contact channels: when a holder's email address and mobile number were confirmed
//! (links, codes and second factors go only to confirmed ones), and the pending SMS code that
//! confirms a mobile number.

use sqlx::Row;

use crate::{Conn, StoreError};

/// When a holder's channels were confirmed (Unix seconds; `None`: not confirmed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Verified {
    /// The current email address was confirmed at.
    pub email_at: Option<i64>,
    /// The current mobile number was confirmed at.
    pub mobile_at: Option<i64>,
}

impl Verified {
    /// Whether the current email address is confirmed.
    pub fn email(&self) -> bool {
        self.email_at.is_some()
    }

    /// Whether the current mobile number is confirmed.
    pub fn mobile(&self) -> bool {
        self.mobile_at.is_some()
    }
}

/// A user's confirmation times (all `None` for an unknown user).
pub async fn verified(conn: &mut Conn, user_id: &str) -> Result<Verified, StoreError> {
    let r = sqlx::query("SELECT email_verified_at, mobile_verified_at FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_optional(conn)
        .await?;
    Ok(match r {
        Some(r) => Verified { email_at: r.try_get("email_verified_at")?, mobile_at: r.try_get("mobile_verified_at")? },
        None => Verified::default(),
    })
}

/// Set or clear a user's mobile number, unconfirmed (an RA change); a pending code for the old
/// number dies with it.
pub async fn set_mobile_unverified(conn: &mut Conn, user_id: &str, mobile: Option<&str>) -> Result<(), StoreError> {
    sqlx::query("UPDATE users SET mobile = $2, mobile_verified_at = NULL WHERE id = $1")
        .bind(user_id)
        .bind(mobile)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM mobile_verifications WHERE user_id = $1").bind(user_id).execute(conn).await?;
    Ok(())
}

/// Mark a user's mobile number confirmed, if it is still `mobile`; `false` otherwise.
pub async fn set_mobile_verified(conn: &mut Conn, user_id: &str, mobile: &str, at: i64) -> Result<bool, StoreError> {
    let done = sqlx::query("UPDATE users SET mobile_verified_at = $3 WHERE id = $1 AND mobile = $2")
        .bind(user_id)
        .bind(mobile)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// A code sent to confirm a mobile number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MobileCode {
    /// The number it was sent to.
    pub mobile: String,
    /// SHA-256 of the scoped code.
    pub code_hash: Vec<u8>,
    /// Sent at (Unix seconds).
    pub sent_at: i64,
    /// Expires at.
    pub expires_at: i64,
    /// Attempts counted so far (each is counted before it is checked).
    pub attempts: i64,
}

fn mobile_code(r: &sqlx::any::AnyRow) -> Result<MobileCode, StoreError> {
    Ok(MobileCode {
        mobile: r.try_get("mobile")?,
        code_hash: r.try_get("code_hash")?,
        sent_at: r.try_get("sent_at")?,
        expires_at: r.try_get("expires_at")?,
        attempts: r.try_get("attempts")?,
    })
}

/// The holder's pending mobile code, if any.
pub async fn pending_mobile_code(conn: &mut Conn, user_id: &str) -> Result<Option<MobileCode>, StoreError> {
    let r = sqlx::query(
        "SELECT mobile, code_hash, sent_at, expires_at, attempts FROM mobile_verifications WHERE user_id = $1",
    )
    .bind(user_id)
    .fetch_optional(conn)
    .await?;
    r.as_ref().map(mobile_code).transpose()
}

/// Store a new mobile code for the holder (the previous one dies; attempts start again).
pub async fn save_mobile_code(
    conn: &mut Conn,
    user_id: &str,
    mobile: &str,
    code_hash: &[u8],
    at: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO mobile_verifications (user_id, mobile, code_hash, sent_at, expires_at, attempts) \
         VALUES ($1, $2, $3, $4, $5, 0) ON CONFLICT (user_id) DO UPDATE SET mobile = $2, code_hash = $3, \
         sent_at = $4, expires_at = $5, attempts = 0",
    )
    .bind(user_id)
    .bind(mobile)
    .bind(code_hash.to_vec())
    .bind(at)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Reserve one check of the holder's mobile code before running it: counts the attempt, and only
/// while the code is live and fewer than `max_attempts` are counted. Returns the code with the
/// new count, or `None` when no check may run. Atomic, so concurrent guesses are counted exactly.
pub async fn reserve_mobile_code_attempt(
    conn: &mut Conn,
    user_id: &str,
    now: i64,
    max_attempts: i64,
) -> Result<Option<MobileCode>, StoreError> {
    let r = sqlx::query(
        "UPDATE mobile_verifications SET attempts = attempts + 1 WHERE user_id = $1 AND attempts < $2 \
         AND expires_at > $3 RETURNING mobile, code_hash, sent_at, expires_at, attempts",
    )
    .bind(user_id)
    .bind(max_attempts)
    .bind(now)
    .fetch_optional(conn)
    .await?;
    r.as_ref().map(mobile_code).transpose()
}

/// Spend the holder's mobile code (single-use); `false` if it was gone already.
pub async fn spend_mobile_code(conn: &mut Conn, user_id: &str) -> Result<bool, StoreError> {
    let done = sqlx::query("DELETE FROM mobile_verifications WHERE user_id = $1").bind(user_id).execute(conn).await?;
    Ok(done.rows_affected() == 1)
}
