//! Every certificate a card ever had, current or superseded, with its revocation status: what the
//! CRL lists and the OCSP responder answers.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Conn, StoreError};

/// A card certificate and its status.
#[derive(Debug, Clone, PartialEq)]
pub struct CertificateRow {
    /// Serial number, lower-case hex.
    pub serial_hex: String,
    /// The card it was issued for.
    pub card_id: String,
    /// `authentication` / `signing`.
    pub purpose: String,
    /// Certificate DER.
    pub cert_der: Vec<u8>,
    /// notBefore.
    pub not_before: i64,
    /// notAfter.
    pub not_after: i64,
    /// When it was issued.
    pub issued_at: i64,
    /// When it was revoked.
    pub revoked_at: Option<i64>,
    /// RFC 5280 reason name (`superseded`, `unspecified`, `certificate_hold`, …).
    pub revocation_reason: Option<String>,
    /// When a hold on it was released (its card resumed); CRLs list it as removeFromCRL for a while.
    pub released_at: Option<i64>,
}

const COLUMNS: &str = "serial_hex, card_id, purpose, cert_der, not_before, not_after, issued_at, revoked_at, \
                       revocation_reason, released_at";

fn row(r: &AnyRow) -> Result<CertificateRow, StoreError> {
    Ok(CertificateRow {
        serial_hex: r.try_get("serial_hex")?,
        card_id: r.try_get("card_id")?,
        purpose: r.try_get("purpose")?,
        cert_der: r.try_get("cert_der")?,
        not_before: r.try_get("not_before")?,
        not_after: r.try_get("not_after")?,
        issued_at: r.try_get("issued_at")?,
        revoked_at: r.try_get("revoked_at")?,
        revocation_reason: r.try_get("revocation_reason")?,
        released_at: r.try_get("released_at")?,
    })
}

/// Record a newly issued certificate.
pub async fn insert(conn: &mut Conn, c: &CertificateRow) -> Result<(), StoreError> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO certificates ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    )))
    .bind(c.serial_hex.as_str())
    .bind(c.card_id.as_str())
    .bind(c.purpose.as_str())
    .bind(c.cert_der.clone())
    .bind(c.not_before)
    .bind(c.not_after)
    .bind(c.issued_at)
    .bind(c.revoked_at)
    .bind(c.revocation_reason.as_deref())
    .bind(c.released_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// A certificate by serial.
pub async fn by_serial(conn: &mut Conn, serial_hex: &str) -> Result<Option<CertificateRow>, StoreError> {
    sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM certificates WHERE serial_hex = $1")))
        .bind(serial_hex)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(row)
        .transpose()
}

/// Certificates by serial, for an OCSP request naming several (missing serials are left out).
pub async fn by_serials(conn: &mut Conn, serials: &[String]) -> Result<Vec<CertificateRow>, StoreError> {
    let mut out = Vec::with_capacity(serials.len());
    for s in serials {
        if let Some(c) = by_serial(conn, s).await? {
            out.push(c);
        }
    }
    Ok(out)
}

/// A card's certificates, newest first.
pub async fn for_card(conn: &mut Conn, card_id: &str) -> Result<Vec<CertificateRow>, StoreError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM certificates WHERE card_id = $1 ORDER BY issued_at DESC, purpose"
    )))
    .bind(card_id)
    .fetch_all(conn)
    .await?;
    rows.iter().map(row).collect()
}

/// Revoke every not yet revoked certificate of a card, and those on hold; returns how many.
pub async fn revoke_for_card(conn: &mut Conn, card_id: &str, at: i64, reason: &str) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "UPDATE certificates SET revoked_at = $2, revocation_reason = $3, released_at = NULL \
         WHERE card_id = $1 AND (revoked_at IS NULL OR revocation_reason = 'certificate_hold')",
    )
    .bind(card_id)
    .bind(at)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Revoke one certificate (a superseded one on renewal); returns whether this call revoked it.
pub async fn revoke(conn: &mut Conn, serial_hex: &str, at: i64, reason: &str) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE certificates SET revoked_at = $2, revocation_reason = $3 WHERE serial_hex = $1 AND revoked_at IS NULL",
    )
    .bind(serial_hex)
    .bind(at)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Put every valid certificate of a card on hold (`certificate_hold`, its card suspended); returns
/// how many.
pub async fn hold_for_card(conn: &mut Conn, card_id: &str, at: i64) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "UPDATE certificates SET revoked_at = $2, revocation_reason = 'certificate_hold', released_at = NULL \
         WHERE card_id = $1 AND revoked_at IS NULL",
    )
    .bind(card_id)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Release the certificates of a card from hold (its card resumed): valid again, and marked
/// released at `at`; returns how many.
pub async fn release_for_card(conn: &mut Conn, card_id: &str, at: i64) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "UPDATE certificates SET revoked_at = NULL, revocation_reason = NULL, released_at = $2 \
         WHERE card_id = $1 AND revoked_at IS NOT NULL AND revocation_reason = 'certificate_hold'",
    )
    .bind(card_id)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// The entries of a CRL at `now`: revoked (or held) certificates that have not expired, and
/// unexpired certificates released from hold after `released_since` (listed as removeFromCRL).
pub async fn revoked_unexpired(
    conn: &mut Conn,
    now: i64,
    released_since: i64,
) -> Result<Vec<CertificateRow>, StoreError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM certificates WHERE revoked_at IS NOT NULL AND not_after > $1 \
         UNION ALL SELECT {COLUMNS} FROM certificates WHERE revoked_at IS NULL AND released_at > $2 AND not_after > $1 \
         ORDER BY serial_hex"
    )))
    .bind(now)
    .bind(released_since)
    .fetch_all(conn)
    .await?;
    rows.iter().map(row).collect()
}
