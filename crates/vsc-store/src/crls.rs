//! Signed certificate revocation lists, numbered; the newest is served.

use sqlx::Row;

use crate::{Backend, Conn, StoreError};

/// A signed CRL.
#[derive(Debug, Clone, PartialEq)]
pub struct CrlRow {
    /// CRL number.
    pub number: i64,
    /// DER.
    pub der: Vec<u8>,
    /// thisUpdate.
    pub this_update: i64,
    /// nextUpdate.
    pub next_update: i64,
}

/// How many CRLs are kept (older ones are deleted as new ones are stored).
const KEEP: i64 = 10;

/// The newest CRL.
pub async fn latest(conn: &mut Conn) -> Result<Option<CrlRow>, StoreError> {
    let r = sqlx::query("SELECT number, der, this_update, next_update FROM crls ORDER BY number DESC LIMIT 1")
        .fetch_optional(conn)
        .await?;
    r.map(|r| {
        Ok(CrlRow {
            number: r.try_get("number")?,
            der: r.try_get("der")?,
            this_update: r.try_get("this_update")?,
            next_update: r.try_get("next_update")?,
        })
    })
    .transpose()
}

/// The number the next CRL gets. Inside a transaction this first serialises CRL writers (on
/// PostgreSQL with a transaction advisory lock; SQLite has one writer anyway), so two nodes never
/// sign two CRLs with one number.
pub async fn next_number(conn: &mut Conn) -> Result<i64, StoreError> {
    if Backend::of(conn) == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock(7480731)").execute(&mut *conn).await?;
    }
    let r = sqlx::query("SELECT COALESCE(MAX(number), 0) + 1 AS n FROM crls").fetch_one(conn).await?;
    Ok(r.try_get("n")?)
}

/// Store a new CRL and drop the oldest beyond the last few.
pub async fn insert(conn: &mut Conn, crl: &CrlRow) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO crls (number, der, this_update, next_update) VALUES ($1, $2, $3, $4)")
        .bind(crl.number)
        .bind(crl.der.clone())
        .bind(crl.this_update)
        .bind(crl.next_update)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM crls WHERE number <= $1").bind(crl.number - KEEP).execute(conn).await?;
    Ok(())
}
