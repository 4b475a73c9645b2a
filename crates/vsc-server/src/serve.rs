//! `vsc serve`: bind, log one line with the URL, serve until Ctrl-C / SIGTERM, keep the RSA key
//! pool filled in the background.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::clock::SystemClock;
use crate::{Config, ServiceError, Vsc};

/// A bound, ready server.
pub struct Server {
    vsc: Vsc,
    listener: TcpListener,
}

impl Server {
    /// Open the service and bind the listener.
    pub async fn bind(config: Config) -> Result<Server, ServiceError> {
        Server::bind_with_clock(config, Arc::new(SystemClock)).await
    }

    /// [`Server::bind`] with the clock the service reads (tests pass one they control).
    pub async fn bind_with_clock(mut config: Config, clock: Arc<dyn vsc_core::Clock>) -> Result<Server, ServiceError> {
        let addr = config.listen_addr().map_err(ServiceError::Startup)?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| ServiceError::Startup(format!("cannot listen on {addr}: {e}")))?;
        if config.public_url.is_none() {
            // Links must point at the address actually bound (port 0 picks one).
            let bound = listener.local_addr().map_err(|e| ServiceError::Startup(format!("listener address: {e}")))?;
            config.public_url = Some(format!("http://{bound}"));
        }
        let vsc = Vsc::open(config, clock).await?;
        Ok(Server { vsc, listener })
    }

    /// The URL the server answers on.
    pub fn url(&self) -> String {
        match self.listener.local_addr() {
            Ok(a) => format!("http://{a}"),
            Err(_) => "http://(unknown)".into(),
        }
    }

    /// The service behind the server.
    pub fn vsc(&self) -> &Vsc {
        &self.vsc
    }

    /// Serve until `shutdown` completes.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServiceError> {
        let url = self.url();
        let vsc = self.vsc.clone();
        tracing::info!(
            "vsc serving on {url} (database: {}, data dir: {}, key-encryption key: {})",
            vsc.store().backend().name(),
            vsc.config().data_dir.display(),
            vsc.kek_id()
        );
        let jobs = [
            tokio::spawn(keep_pool_filled(vsc.clone())),
            tokio::spawn(crate::service::run_delivery_worker(vsc.clone())),
            tokio::spawn(send_reminders(vsc.clone())),
            tokio::spawn(keep_crl_fresh(vsc.clone())),
            tokio::spawn(crate::service::relay_notifications(vsc.clone())),
        ];
        let app = crate::api::router(vsc.clone());
        let closing = vsc.clone();
        let shutdown = async move {
            shutdown.await;
            closing.end_waits();
        };
        let result = axum::serve(self.listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
            .with_graceful_shutdown(shutdown)
            .await;
        for job in jobs {
            job.abort();
        }
        vsc.store().close().await;
        result.map_err(|e| ServiceError::Startup(format!("server error: {e}")))
    }
}

async fn keep_pool_filled(vsc: Vsc) {
    loop {
        match crate::service::refill_rsa_pool(&vsc).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(added = n, "RSA key pool refilled"),
            Err(e) => tracing::warn!(error = %e, "RSA key pool refill failed"),
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// Sign a new CRL when the current one is half way through its life (every node checks; the
/// store serialises the signing, so one CRL is made).
async fn keep_crl_fresh(vsc: Vsc) {
    loop {
        if let Err(e) = vsc.refresh_crl(false).await {
            tracing::warn!(error = %e, "CRL refresh failed");
        }
        tokio::time::sleep(Duration::from_secs(300)).await;
    }
}

async fn send_reminders(vsc: Vsc) {
    loop {
        match vsc.send_reminders().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(sent = n, "enrolment reminders sent"),
            Err(e) => tracing::warn!(error = %e, "enrolment reminder pass failed"),
        }
        if let Err(e) = vsc.prune_device_tokens().await {
            tracing::warn!(error = %e, "pruning spent device tokens failed");
        }
        tokio::time::sleep(Duration::from_secs(600)).await;
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
