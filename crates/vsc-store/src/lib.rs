//! sqlx implementation of vsc's storage, one code path for SQLite (embedded default, WAL) and
//! PostgreSQL (shared by many nodes). Queries use `$n` placeholders, which both backends accept;
//! where the SQL really differs, the difference sits in one small function that asks
//! [`Backend::of`].

pub mod approvals;
pub mod apps;
pub mod audit;
pub mod audit_search;
pub mod ca;
pub mod cards;
pub mod certificates;
pub mod change_requests;
pub mod channels;
pub mod code_ledger;
pub mod crls;
pub mod decoy_logins;
pub mod device_pins;
pub mod devices;
pub mod enrolments;
pub mod error;
pub mod events;
pub mod holders;
pub mod key_pool;
pub mod logins;
pub mod organisations;
pub mod outbox;
pub mod questions;
pub mod ra_reports;
pub mod resets;
pub mod roles;
pub mod scratch;
pub mod signing;
mod sqlite_writer;
pub mod staff;
pub mod staff_auth;
pub mod system;
pub mod tokens;
pub mod user_import;
pub mod user_lifecycle;
pub mod user_search;
pub mod users;

use std::path::Path;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool, Connection, Executor};

pub use error::StoreError;

/// A connection to run queries on: a pooled connection or an open transaction (`&mut *tx`).
pub type Conn = AnyConnection;

pub use sqlite_writer::WriterTurn;

/// A write transaction; dropping it without `commit` rolls everything back. On SQLite it runs on
/// the store's one writer connection, in turn (see [`Store::begin`]).
pub struct Tx {
    inner: TxInner,
}

enum TxInner {
    Pool(sqlx::Transaction<'static, sqlx::Any>),
    Writer(WriterTurn),
}

impl Tx {
    /// Commit the transaction.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self.inner {
            TxInner::Pool(tx) => tx.commit().await,
            TxInner::Writer(mut turn) => turn.commit().await,
        }
    }
}

impl std::ops::Deref for Tx {
    type Target = Conn;

    fn deref(&self) -> &Conn {
        match &self.inner {
            TxInner::Pool(tx) => tx,
            TxInner::Writer(turn) => turn,
        }
    }
}

impl std::ops::DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut Conn {
        match &mut self.inner {
            TxInner::Pool(tx) => tx,
            TxInner::Writer(turn) => turn,
        }
    }
}

/// A connection for a single autocommit write: on SQLite the writer connection, in turn.
pub enum Writer {
    /// A pooled connection (PostgreSQL).
    Pool(sqlx::pool::PoolConnection<sqlx::Any>),
    /// The SQLite writer connection.
    Sqlite(WriterTurn),
}

impl std::ops::Deref for Writer {
    type Target = Conn;

    fn deref(&self) -> &Conn {
        match self {
            Writer::Pool(c) => c,
            Writer::Sqlite(turn) => turn,
        }
    }
}

impl std::ops::DerefMut for Writer {
    fn deref_mut(&mut self) -> &mut Conn {
        match self {
            Writer::Pool(c) => c,
            Writer::Sqlite(turn) => turn,
        }
    }
}

/// Which database engine is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

impl Backend {
    /// The backend a connection talks to.
    pub fn of(conn: &Conn) -> Backend {
        if conn.backend_name().eq_ignore_ascii_case("sqlite") { Backend::Sqlite } else { Backend::Postgres }
    }

    /// Name for logs.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// The database: a pool plus the backend it talks to.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// SQLite allows one writer at a time: writers of this process take turns on one connection,
    /// so they queue without SQLite's sleeping busy handler (other processes still meet the busy
    /// timeout). `None` on PostgreSQL.
    sqlite_writer: Option<sqlite_writer::SqliteWriter>,
}

/// The embedded SQLite database file in `data_dir`.
pub fn sqlite_path(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("vsc.db")
}

/// The SQLite URL of the embedded database in `data_dir`.
pub fn sqlite_url(data_dir: &Path) -> String {
    format!("sqlite://{}?mode=rwc", sqlite_path(data_dir).display())
}

impl Store {
    /// Connect to `url` (`sqlite://…` or `postgres://…`) and apply pending migrations.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::Config(format!(
                "unsupported database URL scheme in {:?} (use sqlite:// or postgres://)",
                redact_url(url)
            )));
        };
        let options: AnyConnectOptions = url.parse().map_err(StoreError::Database)?;
        if backend == Backend::Sqlite {
            // WAL is a property of the file: set it once, before the pool opens more connections.
            let mut conn = AnyConnection::connect_with(&options).await?;
            conn.execute("PRAGMA journal_mode = WAL").await?;
            conn.close().await?;
        }
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 8 } else { 16 })
            .acquire_timeout(Duration::from_secs(10))
            // An embedded database cannot hang up: no ping (a round trip to the connection's
            // worker thread) before every checkout. A PostgreSQL connection may have been dropped
            // by the server or the network, so it is still tested.
            .test_before_acquire(backend == Backend::Postgres)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute(
                            // No memory-mapped I/O: the file grows with every checkpoint, and each
                            // connection then remaps it — an munmap that stops every core to flush
                            // its TLB (measured: a tenth of the database threads' time under login
                            // load); reads through the page cache cost the users search ~5 %.
                            "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; \
                             PRAGMA mmap_size = 0",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        let store = Store { pool, backend, sqlite_writer: None };
        store.migrate().await?;
        let sqlite_writer = match backend {
            // After the migrations, so the writer's prepared statements see the final schema.
            Backend::Sqlite => Some(sqlite_writer::SqliteWriter::new(store.pool.acquire().await?.detach())),
            Backend::Postgres => None,
        };
        Ok(Store { sqlite_writer, ..store })
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        match self.backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite").run(&mut *conn).await?,
            Backend::Postgres => sqlx::migrate!("migrations/postgres").run(&mut *conn).await?,
        }
        Ok(())
    }

    /// Which backend this store uses.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A pooled connection for reads.
    pub async fn conn(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Any>, StoreError> {
        Ok(self.pool.acquire().await?)
    }

    /// Begin a write transaction. On SQLite it first waits for this process's writer turn, then
    /// takes the write lock at once (`BEGIN IMMEDIATE`) so it never fails on lock upgrade.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(match &self.sqlite_writer {
            Some(writer) => {
                let mut turn = writer.turn().await?;
                turn.begin().await?;
                Tx { inner: TxInner::Writer(turn) }
            }
            None => Tx { inner: TxInner::Pool(self.pool.begin().await?) },
        })
    }

    /// A connection for one autocommit write statement, in turn with other writers on SQLite.
    pub async fn writer(&self) -> Result<Writer, StoreError> {
        Ok(match &self.sqlite_writer {
            Some(writer) => Writer::Sqlite(writer.turn().await?),
            None => Writer::Pool(self.pool.acquire().await?),
        })
    }

    /// Check that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        sqlx::query("SELECT 1").execute(&mut *conn).await?;
        Ok(())
    }

    /// Close the pool (and stop writes on SQLite's writer connection).
    pub async fn close(&self) {
        if let Some(writer) = &self.sqlite_writer {
            writer.close().await;
        }
        self.pool.close().await;
    }
}

/// A URL with any password replaced by `***`, for messages and logs.
pub fn redact_url(url: &str) -> String {
    let (prefix, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), url),
    };
    // The user-info ends at the last `@`: a password may itself hold `@`, `/`, `?` or `#`, so the
    // authority is not cut at them first (hiding too much beats leaking).
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{prefix}{user}:***@{host}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted() {
        assert_eq!(super::redact_url("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(super::redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(super::redact_url("postgres://u:p@ss@h/db"), "postgres://u:***@h/db");
    }
}
