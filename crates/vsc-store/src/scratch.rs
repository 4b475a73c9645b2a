//! Scratch PostgreSQL databases for tests and benchmarks: created empty on a server, dropped after.

use sqlx::{AnyConnection, Connection, Executor};

use crate::StoreError;

/// `base` (a `postgres://…/db` URL) with its database name replaced by `name`.
pub fn with_database(base: &str, name: &str) -> String {
    let (head, query) = match base.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (base, None),
    };
    let after_scheme = head.find("://").map(|i| i + 3).unwrap_or(0);
    let root = match head.get(after_scheme..).and_then(|rest| rest.find('/')) {
        Some(i) => head.get(..after_scheme + i).unwrap_or(head),
        None => head,
    };
    match query {
        Some(q) => format!("{root}/{name}?{q}"),
        None => format!("{root}/{name}"),
    }
}

/// Create an empty database named `<prefix>_<random>` on the server of `base`; returns its URL.
pub async fn create(base: &str, prefix: &str) -> Result<String, StoreError> {
    sqlx::any::install_default_drivers();
    let mut suffix = [0u8; 8];
    vsc_crypto::random::fill(&mut suffix);
    let name = format!("{prefix}_{}", hex_lower(&suffix));
    let mut conn = AnyConnection::connect(base).await?;
    conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).await?;
    conn.close().await?;
    Ok(with_database(base, &name))
}

/// Drop the database of `url` (created by [`create`]) through the server of `base`.
pub async fn drop(base: &str, url: &str) -> Result<(), StoreError> {
    let name = url.rsplit('/').next().and_then(|n| n.split('?').next()).unwrap_or_default();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(StoreError::Config(format!("not a scratch database name: {name:?}")));
    }
    let mut conn = AnyConnection::connect(base).await?;
    conn.execute(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).await?;
    conn.close().await?;
    Ok(())
}

fn hex_lower(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_names_are_replaced() {
        assert_eq!(with_database("postgres://u@h:5432/postgres", "x"), "postgres://u@h:5432/x");
        assert_eq!(with_database("postgres://u@h/db?sslmode=disable", "x"), "postgres://u@h/x?sslmode=disable");
        assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
    }
}
