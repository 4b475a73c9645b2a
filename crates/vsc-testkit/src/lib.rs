//! Boots the real server on port 0 against SQLite (temp dir) or PostgreSQL (a fresh database per
//! test, from `DATABASE_URL`) and hands the test a typed client.

use std::path::PathBuf;

use vsc_client::Client;
use vsc_server::Config;
use vsc_server::serve::Server;

mod clock;
pub use clock::ManualClock;

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite in a temp dir.
    Sqlite,
    /// A fresh PostgreSQL database.
    Postgres,
}

/// A free loopback port for a server a test starts as a separate process: below Linux's
/// ephemeral range (32768–60999), so that between this check and the server's bind no outgoing
/// connection of a parallel test takes it as its source port — which a port the kernel handed out
/// from that range (`bind(":0")`) could be.
pub fn free_port() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    for attempt in 0u64..500 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(attempt);
        let port = 20_000 + (h.finish() % 12_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between 20000 and 32000");
}

/// The PostgreSQL URL tests use, if any.
pub fn postgres_url() -> Option<String> {
    std::env::var("DATABASE_URL").ok().filter(|u| u.starts_with("postgres"))
}

/// A fresh, empty PostgreSQL database; returns its URL.
pub async fn fresh_postgres_database(base: &str) -> String {
    vsc_store::scratch::create(base, "vsc_test").await.expect("create a test database on DATABASE_URL")
}

/// A running server for one test.
pub struct TestServer {
    /// Base URL.
    pub url: String,
    /// Client without a token.
    pub anon: Client,
    /// Client with the bootstrap manager's token (organisation `ORG1`, domain `example.nhs.uk`).
    pub client: Client,
    /// The bootstrap manager's token.
    pub token: String,
    /// The configuration the server runs with.
    pub config: Config,
    /// The data dir (deleted when the server is dropped).
    pub data_dir: PathBuf,
    /// The service behind the server (for checks a client cannot make).
    pub vsc: vsc_server::Vsc,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

/// A config for a test: temp data dir, port 0, the given database, no RSA pool.
pub async fn test_config(backend: Backend, dir: &std::path::Path) -> Config {
    let database_url = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(fresh_postgres_database(&postgres_url().expect("DATABASE_URL")).await),
    };
    Config {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.join("data"),
        database_url,
        rsa_pool_size: 0,
        // Every request of a test comes from loopback: tests that hammer one door on purpose
        // must not be stopped by the per-address regulator (its own tests set the limit).
        limits: vsc_server::config::LimitsConfig { failures_per_ip: 10_000, ..Default::default() },
        ..Config::default()
    }
}

impl TestServer {
    /// Start a server on `backend` with a bootstrapped RA manager.
    pub async fn start(backend: Backend) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = test_config(backend, dir.path()).await;
        TestServer::start_with(config, dir).await
    }

    /// [`TestServer::start`] on a clock the test moves (see [`ManualClock`]).
    pub async fn start_with_clock(backend: Backend, clock: std::sync::Arc<ManualClock>) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = test_config(backend, dir.path()).await;
        TestServer::start_on(config, dir, clock).await
    }

    /// Start a server with a given config (the temp dir is kept alive with it).
    pub async fn start_with(config: Config, dir: tempfile::TempDir) -> TestServer {
        TestServer::start_on(config, dir, std::sync::Arc::new(vsc_server::clock::SystemClock)).await
    }

    /// Start a server with a given config and clock.
    async fn start_on(
        config: Config,
        dir: tempfile::TempDir,
        clock: std::sync::Arc<dyn vsc_core::Clock>,
    ) -> TestServer {
        let server = Server::bind_with_clock(config.clone(), clock).await.expect("server starts");
        let url = server.url();
        let vsc = server.vsc().clone();
        let out = server
            .vsc()
            .bootstrap("ORG1", "Test Trust", &["example.nhs.uk".to_string()], "ra@example.nhs.uk", "Rachel Admin")
            .await
            .expect("bootstrap");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = server
                .run(async {
                    let _ = rx.await;
                })
                .await;
        });
        let anon = Client::new(&url);
        let client = anon.with_token(&out.token);
        TestServer {
            url,
            anon,
            client,
            token: out.token,
            data_dir: config.data_dir.clone(),
            vsc,
            config,
            shutdown: Some(tx),
            task: Some(task),
            _dir: dir,
        }
    }

    /// Stop the server and wait for it to finish.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let (Some(url), Some(base)) = (self.config.database_url.clone(), postgres_url()) {
            drop_postgres_database(&base, &url);
        }
    }
}

/// Drop a test database (best effort, from a thread of its own so it works inside `Drop`).
pub fn drop_postgres_database(base: &str, url: &str) {
    let (base, url) = (base.to_string(), url.to_string());
    let _ = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
        rt.block_on(vsc_store::scratch::drop(&base, &url)).ok()
    })
    .join();
}

/// Generate `mod $name { sqlite, postgres }` tests calling `$name(Backend)`; the Postgres variant
/// prints a notice and passes when `DATABASE_URL` is not set.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if $crate::postgres_url().is_none() {
                    eprintln!("SKIPPED: {} on postgres needs DATABASE_URL", stringify!($name));
                    return;
                }
                super::$name($crate::Backend::Postgres).await;
            }
        }
    )*};
}
