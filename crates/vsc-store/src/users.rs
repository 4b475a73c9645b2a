//! Card holders.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Conn, StoreError};

/// A user to insert.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    /// UUID.
    pub id: &'a str,
    /// Organisation id.
    pub org_id: &'a str,
    /// Forename.
    pub forename: &'a str,
    /// Surname.
    pub surname: &'a str,
    /// Email as entered.
    pub email: &'a str,
    /// Lower-cased email (unique).
    pub email_key: &'a str,
    /// Mobile number.
    pub mobile: Option<&'a str>,
    /// Subject CN (unique).
    pub subject_cn: &'a str,
    /// Creation time.
    pub created_at: i64,
}

/// A stored user with the code of their organisation.
#[derive(Debug, Clone, PartialEq)]
pub struct UserRow {
    /// UUID.
    pub id: String,
    /// Organisation id.
    pub org_id: String,
    /// Organisation code.
    pub org_code: String,
    /// Forename.
    pub forename: String,
    /// Surname.
    pub surname: String,
    /// Email.
    pub email: String,
    /// Mobile.
    pub mobile: Option<String>,
    /// Subject CN.
    pub subject_cn: String,
    /// Creation time.
    pub created_at: i64,
}

/// Insert a user.
pub async fn insert(conn: &mut Conn, u: &NewUser<'_>) -> Result<(), StoreError> {
    insert_rows(conn, &[(u, None)]).await
}

/// Rows per multi-row user `INSERT` (10 parameters each, well under both backends' limits).
const INSERT_CHUNK: usize = 500;

/// Insert users, each with their last card login (`None` for users yet to log in), a few hundred
/// per statement; the search triggers index each row as usual. The one user insert behind
/// [`insert`], the CSV import and the search benchmark's bulk load.
pub(crate) async fn insert_rows(conn: &mut Conn, users: &[(&NewUser<'_>, Option<i64>)]) -> Result<(), StoreError> {
    for chunk in users.chunks(INSERT_CHUNK) {
        let sql = format!(
            "INSERT INTO users (id, org_id, forename, surname, email, email_key, mobile, subject_cn, created_at, \
             last_active_at) VALUES {}",
            crate::user_import::value_lists(chunk.len(), 10)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (u, last_active_at) in chunk {
            q = q
                .bind(u.id)
                .bind(u.org_id)
                .bind(u.forename)
                .bind(u.surname)
                .bind(u.email)
                .bind(u.email_key)
                .bind(u.mobile)
                .bind(u.subject_cn)
                .bind(u.created_at)
                .bind(*last_active_at);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

const SELECT: &str = "SELECT u.id, u.org_id, o.code AS org_code, u.forename, u.surname, u.email, u.mobile, \
                      u.subject_cn, u.created_at FROM users u JOIN organisations o ON o.id = u.org_id";

fn row(r: &AnyRow) -> Result<UserRow, StoreError> {
    Ok(UserRow {
        id: r.try_get("id")?,
        org_id: r.try_get("org_id")?,
        org_code: r.try_get("org_code")?,
        forename: r.try_get("forename")?,
        surname: r.try_get("surname")?,
        email: r.try_get("email")?,
        mobile: r.try_get("mobile")?,
        subject_cn: r.try_get("subject_cn")?,
        created_at: r.try_get("created_at")?,
    })
}

/// Find a user by id.
pub async fn by_id(conn: &mut Conn, id: &str) -> Result<Option<UserRow>, StoreError> {
    let q = sqlx::AssertSqlSafe(format!("{SELECT} WHERE u.id = $1"));
    sqlx::query(q).bind(id).fetch_optional(conn).await?.as_ref().map(row).transpose()
}

/// Find a user by lower-cased email.
pub async fn by_email_key(conn: &mut Conn, email_key: &str) -> Result<Option<UserRow>, StoreError> {
    let q = sqlx::AssertSqlSafe(format!("{SELECT} WHERE u.email_key = $1"));
    sqlx::query(q).bind(email_key).fetch_optional(conn).await?.as_ref().map(row).transpose()
}

/// Whether a subject CN is taken.
pub async fn subject_cn_taken(conn: &mut Conn, subject_cn: &str) -> Result<bool, StoreError> {
    Ok(sqlx::query("SELECT 1 FROM users WHERE subject_cn = $1").bind(subject_cn).fetch_optional(conn).await?.is_some())
}

/// Set a user's mobile number.
pub async fn set_mobile(conn: &mut Conn, id: &str, mobile: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE users SET mobile = $2 WHERE id = $1").bind(id).bind(mobile).execute(conn).await?;
    Ok(())
}

/// Set a user's forename and surname.
pub async fn set_names(conn: &mut Conn, id: &str, forename: &str, surname: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE users SET forename = $2, surname = $3 WHERE id = $1")
        .bind(id)
        .bind(forename)
        .bind(surname)
        .execute(conn)
        .await?;
    Ok(())
}

/// Set a user's email and its lower-cased key; the new address is unconfirmed until the holder
/// opens a confirmation link sent to it.
pub async fn set_email(conn: &mut Conn, id: &str, email: &str, email_key: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE users SET email = $2, email_key = $3, email_verified_at = NULL WHERE id = $1")
        .bind(id)
        .bind(email)
        .bind(email_key)
        .execute(conn)
        .await?;
    Ok(())
}
