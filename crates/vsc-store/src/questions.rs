//! The security-question catalogue as the vRA Manager edits it: questions holders have answered
//! are retired (`active = 0`) rather than deleted, so their answers keep their text.

use sqlx::Row;

use crate::{Conn, StoreError};

/// A catalogue question with how many holders answered it.
#[derive(Debug, Clone, PartialEq)]
pub struct QuestionRow {
    /// Id.
    pub id: i64,
    /// Text.
    pub text: String,
    /// Offered to holders choosing their questions.
    pub active: bool,
    /// Holders who answered it.
    pub answered_by: i64,
}

const SELECT: &str = "SELECT q.id, q.text, q.active, \
    (SELECT COUNT(*) FROM security_answers a WHERE a.question_id = q.id) AS answered_by FROM security_questions q";

fn row(r: &sqlx::any::AnyRow) -> Result<QuestionRow, StoreError> {
    Ok(QuestionRow {
        id: r.try_get("id")?,
        text: r.try_get("text")?,
        active: r.try_get::<i64, _>("active")? != 0,
        answered_by: r.try_get("answered_by")?,
    })
}

/// Every question, active and retired, by id.
pub async fn all(conn: &mut Conn) -> Result<Vec<QuestionRow>, StoreError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!("{SELECT} ORDER BY q.id"))).fetch_all(conn).await?;
    rows.iter().map(row).collect()
}

/// One question by id.
pub async fn by_id(conn: &mut Conn, id: i64) -> Result<Option<QuestionRow>, StoreError> {
    let r = sqlx::query(sqlx::AssertSqlSafe(format!("{SELECT} WHERE q.id = $1"))).bind(id).fetch_optional(conn).await?;
    r.as_ref().map(row).transpose()
}

/// Add an active question; returns its id.
pub async fn insert(conn: &mut Conn, text: &str) -> Result<i64, StoreError> {
    let r = sqlx::query(
        "INSERT INTO security_questions (id, text, active) \
         SELECT COALESCE(MAX(id), 0) + 1, $1, 1 FROM security_questions RETURNING id",
    )
    .bind(text)
    .fetch_one(conn)
    .await?;
    Ok(r.try_get("id")?)
}

/// Change a question's text and whether it is offered; false for an unknown id.
pub async fn update(conn: &mut Conn, id: i64, text: &str, active: bool) -> Result<bool, StoreError> {
    let r = sqlx::query("UPDATE security_questions SET text = $2, active = $3 WHERE id = $1")
        .bind(id)
        .bind(text)
        .bind(i64::from(active))
        .execute(conn)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// Delete a question nobody answered; false when it is unknown or answered.
pub async fn delete_unanswered(conn: &mut Conn, id: i64) -> Result<bool, StoreError> {
    let r = sqlx::query(
        "DELETE FROM security_questions WHERE id = $1 \
         AND NOT EXISTS (SELECT 1 FROM security_answers WHERE question_id = $1)",
    )
    .bind(id)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}
