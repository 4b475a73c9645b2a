//! Card logins (first factor passed, waiting for the holder's second factor) with the challenge
//! they put to the holder's devices, and the card sessions they open.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Backend, Conn, StoreError};

/// A login row (its id is also the challenge id the devices see).
#[derive(Debug, Clone, PartialEq)]
pub struct LoginRow {
    /// Login / challenge id.
    pub id: String,
    /// Hash of the login token the client holds.
    pub token_hash: Vec<u8>,
    /// `card` or `portal`.
    pub purpose: String,
    /// Holder.
    pub user_id: String,
    /// The card being logged in to (card logins).
    pub card_id: Option<String>,
    /// `push`, `code`, `qr`.
    pub method: String,
    /// `pending`, `approved`, `denied`.
    pub state: String,
    /// Challenge nonce.
    pub nonce: String,
    /// Number to match (push with number matching).
    pub number: Option<i64>,
    /// The three numbers the device offers, comma-separated.
    pub choices: Option<String>,
    /// Requesting client.
    pub client: String,
    /// Requesting IP.
    pub ip: String,
    /// Wrong codes typed.
    pub code_attempts: i64,
    /// Device that decided.
    pub decided_by: Option<String>,
    /// How it was decided.
    pub decided_method: Option<String>,
    /// Created.
    pub created_at: i64,
    /// Expires unless decided.
    pub expires_at: i64,
    /// Decided.
    pub decided_at: Option<i64>,
    /// A session was opened from it.
    pub session_opened_at: Option<i64>,
    /// The card's serial (read only; ignored on insert).
    pub card_serial: Option<String>,
    /// The card's state (read only).
    pub card_state: Option<String>,
    /// The card's expiry (read only).
    pub card_expires_at: Option<i64>,
    /// The holder's email (read only; the audit actor).
    pub holder_email: String,
    /// The holder's organisation (read only).
    pub holder_org_id: String,
    /// The organisation's card session lifetime in minutes, when it sets one (read only).
    pub org_session_minutes: Option<i64>,
    /// The organisation's card session idle timeout in minutes, when it sets one (read only).
    pub org_idle_minutes: Option<i64>,
    /// The card's roles as (code, name), ordered by code (read only).
    pub card_roles: Vec<(String, String)>,
}

const COLUMNS: &str = "l.id, l.token_hash, l.purpose, l.user_id, l.card_id, l.method, l.state, l.nonce, l.number, \
    l.choices, l.client, l.ip, l.code_attempts, l.decided_by, l.decided_method, l.created_at, l.expires_at, \
    l.decided_at, l.session_opened_at, c.serial AS card_serial, c.state AS card_state, \
    c.expires_at AS card_expires_at, u.email AS holder_email, u.org_id AS holder_org_id, \
    o.session_minutes AS org_session_minutes, o.idle_minutes AS org_idle_minutes";

/// The card's roles with their names, as a JSON array of `[code, name]` ordered by code: a scalar
/// subquery on the login `l` (JSON aggregation is spelt differently by the two backends).
fn roles_json(conn: &Conn) -> &'static str {
    match Backend::of(conn) {
        Backend::Sqlite => {
            "(SELECT json_group_array(json_array(cr.role_code, COALESCE(r.name, '')) ORDER BY cr.role_code) \
             FROM card_roles cr LEFT JOIN roles r ON r.code = cr.role_code WHERE cr.card_id = l.card_id) AS card_roles"
        }
        Backend::Postgres => {
            "(SELECT json_agg(json_build_array(cr.role_code, COALESCE(r.name, '')) ORDER BY cr.role_code)::text \
             FROM card_roles cr LEFT JOIN roles r ON r.code = cr.role_code WHERE cr.card_id = l.card_id) AS card_roles"
        }
    }
}

/// Logins with their card and holder.
const FROM: &str = "card_logins l LEFT JOIN cards c ON c.id = l.card_id JOIN users u ON u.id = l.user_id \
    JOIN organisations o ON o.id = u.org_id";

fn row(r: &AnyRow) -> Result<LoginRow, StoreError> {
    Ok(LoginRow {
        id: r.try_get("id")?,
        token_hash: r.try_get("token_hash")?,
        purpose: r.try_get("purpose")?,
        user_id: r.try_get("user_id")?,
        card_id: r.try_get("card_id")?,
        method: r.try_get("method")?,
        state: r.try_get("state")?,
        nonce: r.try_get("nonce")?,
        number: r.try_get("number")?,
        choices: r.try_get("choices")?,
        client: r.try_get("client")?,
        ip: r.try_get("ip")?,
        code_attempts: r.try_get("code_attempts")?,
        decided_by: r.try_get("decided_by")?,
        decided_method: r.try_get("decided_method")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        decided_at: r.try_get("decided_at")?,
        session_opened_at: r.try_get("session_opened_at")?,
        card_serial: r.try_get("card_serial")?,
        card_state: r.try_get("card_state")?,
        card_expires_at: r.try_get("card_expires_at")?,
        holder_email: r.try_get("holder_email")?,
        holder_org_id: r.try_get("holder_org_id")?,
        org_session_minutes: r.try_get("org_session_minutes")?,
        org_idle_minutes: r.try_get("org_idle_minutes")?,
        card_roles: match r.try_get::<Option<String>, _>("card_roles")? {
            Some(json) => serde_json::from_str(&json).map_err(|e| StoreError::Corrupt(format!("card roles: {e}")))?,
            None => Vec::new(),
        },
    })
}

/// Insert a pending login.
pub async fn insert(conn: &mut Conn, l: &LoginRow) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO card_logins (id, token_hash, purpose, user_id, card_id, method, state, nonce, number, choices, \
         client, ip, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(&l.id)
    .bind(&l.token_hash)
    .bind(&l.purpose)
    .bind(&l.user_id)
    .bind(&l.card_id)
    .bind(&l.method)
    .bind(&l.nonce)
    .bind(l.number)
    .bind(&l.choices)
    .bind(&l.client)
    .bind(&l.ip)
    .bind(l.created_at)
    .bind(l.expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// A login by the hash of its token.
pub async fn by_token_hash(conn: &mut Conn, hash: &[u8]) -> Result<Option<LoginRow>, StoreError> {
    let roles = roles_json(conn);
    let r = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS}, {roles} FROM {FROM} WHERE l.token_hash = $1")))
        .bind(hash)
        .fetch_optional(conn)
        .await?;
    r.as_ref().map(row).transpose()
}

/// A login by id (the challenge id).
pub async fn by_id(conn: &mut Conn, id: &str) -> Result<Option<LoginRow>, StoreError> {
    let roles = roles_json(conn);
    let r = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS}, {roles} FROM {FROM} WHERE l.id = $1")))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    r.as_ref().map(row).transpose()
}

/// The number-matching policy of a holder's organisation, as a scalar subquery on `$1` (user id).
const NUMBER_MATCHING: &str =
    "(SELECT o.number_matching FROM users u JOIN organisations o ON o.id = u.org_id WHERE u.id = $1)";

/// How many push challenges to a holder since `since` were never answered, and whether the
/// holder's organisation asks for number matching (`None`: the service default), in one read.
pub async fn push_guard(conn: &mut Conn, user_id: &str, since: i64) -> Result<(i64, Option<bool>), StoreError> {
    let r = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT (SELECT COUNT(*) FROM card_logins WHERE user_id = $1 AND method = 'push' AND state = 'pending' \
         AND created_at >= $2) AS n, {NUMBER_MATCHING} AS number_matching"
    )))
    .bind(user_id)
    .bind(since)
    .fetch_one(conn)
    .await?;
    Ok((r.try_get("n")?, r.try_get::<Option<i64>, _>("number_matching")?.map(|n| n != 0)))
}

/// What a new login of a holder must pass, in one read.
#[derive(Debug, Clone, PartialEq)]
pub struct LoginGuard {
    /// The card the login is for: id and serial (`None`: no usable card).
    pub card: Option<(String, String)>,
    /// The holder's active devices.
    pub devices: i64,
    /// Their push logins still unanswered since `since`.
    pub unanswered: i64,
    /// The organisation's number-matching policy (`None`: the service default).
    pub number_matching: Option<bool>,
}

/// What a new login of a holder must pass, in one read: the card it logs in to (the newest
/// active card unexpired at `now`), the holder's active devices, their push logins still
/// unanswered since `since` and their organisation's number-matching policy.
pub async fn login_guard(conn: &mut Conn, user_id: &str, now: i64, since: i64) -> Result<LoginGuard, StoreError> {
    const CARD: &str = "FROM cards WHERE user_id = $1 AND state = 'active' AND expires_at > $3 \
                        ORDER BY issued_at DESC, serial LIMIT 1";
    let r = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT (SELECT id {CARD}) AS card_id, (SELECT serial {CARD}) AS card_serial, \
         (SELECT COUNT(*) FROM devices WHERE user_id = $1 AND state = 'active') AS devices, \
         (SELECT COUNT(*) FROM card_logins WHERE user_id = $1 AND method = 'push' AND state = 'pending' \
         AND created_at >= $2) AS unanswered, {NUMBER_MATCHING} AS number_matching"
    )))
    .bind(user_id)
    .bind(since)
    .bind(now)
    .fetch_one(conn)
    .await?;
    let card_id: Option<String> = r.try_get("card_id")?;
    let card_serial: Option<String> = r.try_get("card_serial")?;
    Ok(LoginGuard {
        card: card_id.zip(card_serial),
        devices: r.try_get("devices")?,
        unanswered: r.try_get("unanswered")?,
        number_matching: r.try_get::<Option<i64>, _>("number_matching")?.map(|n| n != 0),
    })
}

/// Decide a pending, unexpired login; false when it was already decided or has expired (so
/// each challenge is answered once).
pub async fn decide(
    conn: &mut Conn,
    id: &str,
    state: &str,
    by: Option<&str>,
    method: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let r = sqlx::query(
        "UPDATE card_logins SET state = $2, decided_by = $3, decided_method = $4, decided_at = $5 \
         WHERE id = $1 AND state = 'pending' AND expires_at > $5",
    )
    .bind(id)
    .bind(state)
    .bind(by)
    .bind(method)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Spend an approved login on a session; false when it was spent already.
pub async fn spend(conn: &mut Conn, id: &str, now: i64) -> Result<bool, StoreError> {
    let r = sqlx::query(
        "UPDATE card_logins SET session_opened_at = $2 WHERE id = $1 AND state = 'approved' \
         AND session_opened_at IS NULL",
    )
    .bind(id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// A card session row.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRow {
    /// Session id.
    pub id: String,
    /// Token hash.
    pub token_hash: Vec<u8>,
    /// Holder.
    pub user_id: String,
    /// Card.
    pub card_id: String,
    /// The login it came from.
    pub login_id: String,
    /// Selected role.
    pub role: String,
    /// How the login was approved.
    pub method: String,
    /// Opened.
    pub created_at: i64,
    /// Absolute end.
    pub expires_at: i64,
    /// Last use.
    pub last_seen_at: i64,
    /// Ended (logout).
    pub ended_at: Option<i64>,
    /// Idle timeout (seconds), fixed when the session opened.
    pub idle_seconds: i64,
}

const SESSION_COLUMNS: &str = "id, token_hash, user_id, card_id, login_id, role, method, created_at, expires_at, \
    last_seen_at, ended_at, idle_seconds";

fn session_row(r: &AnyRow) -> Result<SessionRow, StoreError> {
    Ok(SessionRow {
        id: r.try_get("id")?,
        token_hash: r.try_get("token_hash")?,
        user_id: r.try_get("user_id")?,
        card_id: r.try_get("card_id")?,
        login_id: r.try_get("login_id")?,
        role: r.try_get("role")?,
        method: r.try_get("method")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        last_seen_at: r.try_get("last_seen_at")?,
        ended_at: r.try_get("ended_at")?,
        idle_seconds: r.try_get("idle_seconds")?,
    })
}

/// Insert a card session.
pub async fn insert_session(conn: &mut Conn, s: &SessionRow) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO card_sessions (id, token_hash, user_id, card_id, login_id, role, method, created_at, expires_at, \
         last_seen_at, idle_seconds) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&s.id)
    .bind(&s.token_hash)
    .bind(&s.user_id)
    .bind(&s.card_id)
    .bind(&s.login_id)
    .bind(&s.role)
    .bind(&s.method)
    .bind(s.created_at)
    .bind(s.expires_at)
    .bind(s.last_seen_at)
    .bind(s.idle_seconds)
    .execute(conn)
    .await?;
    Ok(())
}

/// A card session by token hash.
pub async fn session_by_token_hash(conn: &mut Conn, hash: &[u8]) -> Result<Option<SessionRow>, StoreError> {
    let r =
        sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {SESSION_COLUMNS} FROM card_sessions WHERE token_hash = $1")))
            .bind(hash)
            .fetch_optional(conn)
            .await?;
    r.as_ref().map(session_row).transpose()
}

/// A card session by id.
pub async fn session_by_id(conn: &mut Conn, id: &str) -> Result<Option<SessionRow>, StoreError> {
    let r = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {SESSION_COLUMNS} FROM card_sessions WHERE id = $1")))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    r.as_ref().map(session_row).transpose()
}

/// Record a use of a session.
pub async fn touch_session(conn: &mut Conn, id: &str, at: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE card_sessions SET last_seen_at = $2 WHERE id = $1 AND last_seen_at < $2")
        .bind(id)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

/// End a session; false when it had ended already.
pub async fn end_session(conn: &mut Conn, id: &str, at: i64) -> Result<bool, StoreError> {
    let r = sqlx::query("UPDATE card_sessions SET ended_at = $2 WHERE id = $1 AND ended_at IS NULL")
        .bind(id)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// End every open session of one card of holder `user_id` (found by the holder's index); returns
/// the ids of the sessions ended.
pub async fn end_sessions_for_card(
    conn: &mut Conn,
    user_id: &str,
    card_id: &str,
    at: i64,
) -> Result<Vec<String>, StoreError> {
    let rows = sqlx::query(
        "UPDATE card_sessions SET ended_at = $3 WHERE user_id = $1 AND card_id = $2 AND ended_at IS NULL RETURNING id",
    )
    .bind(user_id)
    .bind(card_id)
    .bind(at)
    .fetch_all(conn)
    .await?;
    rows.iter().map(|r| r.try_get("id").map_err(StoreError::from)).collect()
}

/// A challenge waiting for a holder's devices: a login push or a signature approval.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingChallenge {
    /// Challenge id (a login id, or an approval id starting with `sig-`).
    pub id: String,
    /// Nonce the answer signs.
    pub nonce: String,
    /// `card`, `portal` or `signature`.
    pub purpose: String,
    /// `push`.
    pub method: String,
    /// Requesting client.
    pub client: String,
    /// Requesting IP.
    pub ip: String,
    /// Card serial (logins).
    pub card_serial: Option<String>,
    /// Number choices, comma-separated.
    pub choices: Option<String>,
    /// Document name (signature approvals).
    pub document: Option<String>,
    /// Document digest, hex (signature approvals).
    pub digest_hex: Option<String>,
    /// Created.
    pub created_at: i64,
    /// Expires.
    pub expires_at: i64,
}

/// Every pending, unexpired push challenge of a holder — login pushes and signature approvals —
/// oldest first, in one read.
pub async fn pending_challenges(conn: &mut Conn, user_id: &str, now: i64) -> Result<Vec<PendingChallenge>, StoreError> {
    let rows = sqlx::query(
        "SELECT l.id, l.nonce, l.purpose, l.method, l.client, l.ip, c.serial AS card_serial, l.choices, \
         CAST(NULL AS TEXT) AS document, CAST(NULL AS TEXT) AS digest_hex, l.created_at, l.expires_at \
         FROM card_logins l LEFT JOIN cards c ON c.id = l.card_id \
         WHERE l.user_id = $1 AND l.state = 'pending' AND l.method = 'push' AND l.expires_at > $2 \
         UNION ALL \
         SELECT a.id, a.nonce, 'signature', 'push', a.client, a.ip, CAST(NULL AS TEXT), a.choices, a.document, \
         a.digest_hex, a.created_at, a.expires_at FROM signature_approvals a \
         WHERE a.user_id = $1 AND a.state = 'pending' AND a.expires_at > $2 \
         ORDER BY created_at, id",
    )
    .bind(user_id)
    .bind(now)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(PendingChallenge {
                id: r.try_get("id")?,
                nonce: r.try_get("nonce")?,
                purpose: r.try_get("purpose")?,
                method: r.try_get("method")?,
                client: r.try_get("client")?,
                ip: r.try_get("ip")?,
                card_serial: r.try_get("card_serial")?,
                choices: r.try_get("choices")?,
                document: r.try_get("document")?,
                digest_hex: r.try_get("digest_hex")?,
                created_at: r.try_get("created_at")?,
                expires_at: r.try_get("expires_at")?,
            })
        })
        .collect()
}
