//! Bulk statements for the CSV import of users: existence checks for many keys at once and
//! multi-row inserts, so that ten thousand rows cost tens of statements, not tens of thousands.

use std::collections::{HashMap, HashSet};

use sqlx::Row;
use vsc_core::AuditRecord;

use crate::users::NewUser;
use crate::{Conn, StoreError};

/// Keys per `IN (...)` lookup.
const LOOKUP_CHUNK: usize = 500;
/// Rows per multi-row `INSERT` (at most 6 parameters each, well under both backends' limits).
const INSERT_CHUNK: usize = 500;

/// `($1, $2, ...), (...)` for `rows` rows of `width` parameters.
pub(crate) fn value_lists(rows: usize, width: usize) -> String {
    (0..rows)
        .map(|i| {
            let marks = (1..=width).map(|k| format!("${}", i * width + k)).collect::<Vec<_>>().join(", ");
            format!("({marks})")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Which of `values` already appear in `column` of `users` (`email_key` or `subject_cn`).
async fn existing(conn: &mut Conn, column: &'static str, values: &[String]) -> Result<HashSet<String>, StoreError> {
    let mut found = HashSet::new();
    for chunk in values.chunks(LOOKUP_CHUNK) {
        let marks = (1..=chunk.len()).map(|k| format!("${k}")).collect::<Vec<_>>().join(", ");
        let sql = format!("SELECT {column} AS v FROM users WHERE {column} IN ({marks})");
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for v in chunk {
            q = q.bind(v.as_str());
        }
        for r in q.fetch_all(&mut *conn).await? {
            found.insert(r.try_get::<String, _>("v")?);
        }
    }
    Ok(found)
}

/// The lower-cased emails among `keys` that users already have, each with its user's organisation id.
pub async fn existing_email_keys(conn: &mut Conn, keys: &[String]) -> Result<HashMap<String, String>, StoreError> {
    let mut found = HashMap::new();
    for chunk in keys.chunks(LOOKUP_CHUNK) {
        let marks = (1..=chunk.len()).map(|k| format!("${k}")).collect::<Vec<_>>().join(", ");
        let sql = format!("SELECT email_key, org_id FROM users WHERE email_key IN ({marks})");
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for v in chunk {
            q = q.bind(v.as_str());
        }
        for r in q.fetch_all(&mut *conn).await? {
            found.insert(r.try_get::<String, _>("email_key")?, r.try_get::<String, _>("org_id")?);
        }
    }
    Ok(found)
}

/// The subject CNs among `cns` that users already have.
pub async fn existing_subject_cns(conn: &mut Conn, cns: &[String]) -> Result<HashSet<String>, StoreError> {
    existing(conn, "subject_cn", cns).await
}

/// Insert many users, a few hundred per statement (the search triggers index each row).
pub async fn insert_users(conn: &mut Conn, users: &[NewUser<'_>]) -> Result<(), StoreError> {
    let rows: Vec<_> = users.iter().map(|u| (u, None)).collect();
    crate::users::insert_rows(conn, &rows).await
}

/// Add pending directory accounts, as (user id, account name), many per statement.
pub async fn add_directory_accounts(conn: &mut Conn, accounts: &[(&str, &str)], at: i64) -> Result<(), StoreError> {
    for chunk in accounts.chunks(INSERT_CHUNK) {
        let sql = format!(
            "INSERT INTO directory_accounts (user_id, name, state, created_at) VALUES {}",
            value_lists(chunk.len(), 4)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (user_id, name) in chunk {
            q = q.bind(*user_id).bind(*name).bind("pending").bind(at);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Append many audit events in order, many per statement.
pub async fn append_audit(conn: &mut Conn, at: i64, records: &[AuditRecord]) -> Result<(), StoreError> {
    for chunk in records.chunks(INSERT_CHUNK) {
        let sql = format!(
            "INSERT INTO audit_events (at, actor, action, org_id, target, detail) VALUES {}",
            value_lists(chunk.len(), 6)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for rec in chunk {
            q = q
                .bind(at)
                .bind(rec.actor.to_string())
                .bind(rec.action)
                .bind(rec.org_id.as_deref())
                .bind(rec.target.as_deref())
                .bind(rec.detail.as_str());
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::value_lists;

    #[test]
    fn value_lists_number_parameters_row_by_row() {
        assert_eq!(value_lists(2, 3), "($1, $2, $3), ($4, $5, $6)");
    }
}
