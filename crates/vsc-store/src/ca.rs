//! The internal CA's certificates and sealed keys.

use sqlx::Row;

use crate::{Conn, StoreError};

/// A stored CA certificate with its sealed key.
#[derive(Debug, Clone)]
pub struct CaRow {
    /// `root` or `issuing`.
    pub role: String,
    /// Certificate DER.
    pub cert_der: Vec<u8>,
    /// Sealed PKCS#8 private key.
    pub sealed_key: Vec<u8>,
}

/// Store a CA certificate.
pub async fn insert(
    conn: &mut Conn,
    role: &str,
    cert_der: &[u8],
    sealed_key: &[u8],
    at: i64,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO ca_certificates (role, cert_der, sealed_key, created_at) VALUES ($1, $2, $3, $4)")
        .bind(role)
        .bind(cert_der.to_vec())
        .bind(sealed_key.to_vec())
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

/// Load a CA certificate by role.
pub async fn get(conn: &mut Conn, role: &str) -> Result<Option<CaRow>, StoreError> {
    let row = sqlx::query("SELECT role, cert_der, sealed_key FROM ca_certificates WHERE role = $1")
        .bind(role)
        .fetch_optional(conn)
        .await?;
    row.map(|r| {
        Ok(CaRow { role: r.try_get("role")?, cert_der: r.try_get("cert_der")?, sealed_key: r.try_get("sealed_key")? })
    })
    .transpose()
}
