//! `vsc bench abuse`: a real `vsc serve` process (this binary, behind a "proxy" on loopback:
//! `trusted_proxies` = loopback) under 1,000 concurrent attackers sending bogus portal sign-ins
//! and card logins from many source addresses (`X-Forwarded-For`), while one real holder logs in
//! normally (passcode + approval on the device) and `/healthz` is polled. Prints the server
//! process's peak resident memory, `/healthz` p99, the holder's login time and how the attack
//! was answered (503 hash queue full, 429 address blocked, or evaluated and refused).

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use vsc_client::Client;
use vsc_core::KeyAlgorithm;
use vsc_server::clock::SystemClock;
use vsc_server::{Config, Vsc};

use crate::bench::percentile;
use crate::bench_login::{Numbers, PASSCODE, Received, authenticator, one_login, seat};

/// Targets of the run.
const RSS_TARGET_MB: f64 = 300.0;
const HEALTHZ_P99_TARGET_MS: f64 = 50.0;
/// Pause between two requests of one attacker.
const ATTACKER_PAUSE: Duration = Duration::from_millis(100);
/// When the holder starts logging in, after the attack has begun.
const LEGIT_START: Duration = Duration::from_secs(1);

/// What the attack was answered with.
#[derive(Default)]
struct Tally {
    evaluated: AtomicU64,
    refused_503: AtomicU64,
    refused_429: AtomicU64,
    other: AtomicU64,
}

/// Run the abuse benchmark.
pub async fn abuse(
    attackers: usize,
    addresses: usize,
    seconds: u64,
    database_url: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    anyhow::ensure!((1..=10_000).contains(&attackers), "--attackers must be between 1 and 10000");
    anyhow::ensure!((1..=65_000).contains(&addresses), "--addresses must be between 1 and 65000");
    anyhow::ensure!((2..=600).contains(&seconds), "--seconds must be between 2 and 600");
    crate::bench::with_scratch(database_url, 0, |config| run(config, attackers, addresses, seconds, json)).await
}

/// A free loopback port (bound and released; the server binds it moments later).
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

/// `VmHWM` (peak resident set) and `VmRSS` of a process, in MB.
fn memory_mb(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|kb| kb.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .unwrap_or(0.0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

async fn run(mut config: Config, attackers: usize, addresses: usize, seconds: u64, json: bool) -> anyhow::Result<()> {
    let port = free_port()?;
    config.listen = format!("127.0.0.1:{port}");
    let url = format!("http://127.0.0.1:{port}");
    config.public_url = Some(url.clone());
    // Set-up in this process: the database, key and CA, one holder with a device.
    let seat = {
        let vsc = Vsc::open(config.clone(), Arc::new(SystemClock)).await?;
        vsc.bootstrap("BENCH", "Benchmark Trust", &["bench.example".into()], "ra@bench.example", "Bench Admin").await?;
        let hash = vsc_crypto::secret::hash(PASSCODE)?;
        let seat = seat(&vsc, &url, 0, &hash, KeyAlgorithm::P256).await?;
        vsc.store().close().await;
        seat
    };

    // The server under attack: this binary's `serve`, in a process of its own.
    let mut server = tokio::process::Command::new(std::env::current_exe()?);
    server
        .arg("serve")
        .env("VSC_DATA_DIR", &config.data_dir)
        .env("VSC_LISTEN", &config.listen)
        .env("VSC_PUBLIC_URL", &url)
        .env("VSC_TRUSTED_PROXIES", "127.0.0.1/32,::1/128")
        .env("VSC_RSA_POOL_SIZE", "0")
        // The seat's device is written without a PIN, as in `bench login` (a PIN would add an
        // Argon2id per approval to the holder's login, not to the attack).
        .env("VSC_AUTHENTICATOR_REQUIRE_PIN", "false")
        .env("VSC_LOG", "error")
        .env_remove("VSC_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    match &config.database_url {
        Some(db) => server.env("DATABASE_URL", db),
        None => server.env_remove("DATABASE_URL"),
    };
    let mut server = server.spawn()?;
    let pid = server.id().ok_or_else(|| anyhow::anyhow!("the server process has no id"))?;
    let result = attack(&url, pid, seat, attackers, addresses, seconds).await;
    let _ = server.start_kill();
    let _ = server.wait().await;
    let report = result?;
    report.print(attackers, addresses, json);
    Ok(())
}

struct Report {
    peak_rss_mb: f64,
    idle_rss_mb: f64,
    healthz_p99_ms: f64,
    healthz_polls: usize,
    legit_login_ms: Option<f64>,
    legit_attempts: u32,
    refused_503: u64,
    refused_429: u64,
    evaluated: u64,
    other: u64,
    seconds: f64,
}

async fn attack(
    url: &str,
    pid: u32,
    seat: crate::bench_login::Seat,
    attackers: usize,
    addresses: usize,
    seconds: u64,
) -> anyhow::Result<Report> {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?;
    let ready = Instant::now();
    loop {
        match http.get(format!("{url}/healthz")).send().await {
            Ok(r) if r.status().is_success() => break,
            _ if ready.elapsed() > Duration::from_secs(60) => anyhow::bail!("the server did not start"),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let (_, idle_rss_mb) = memory_mb(pid);

    let numbers: Numbers = Arc::default();
    let received: Received = Arc::default();
    let stop_device = Arc::new(Semaphore::new(0));
    let device = tokio::spawn(authenticator(seat.device.clone(), numbers.clone(), received, stop_device.clone()));

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    // /healthz every 10 ms through its own connection.
    let poller = {
        let (stop, url) = (stop.clone(), url.to_string());
        let health = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
        tokio::spawn(async move {
            let mut times = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                if health.get(format!("{url}/healthz")).send().await.is_ok_and(|r| r.status().is_success()) {
                    times.push(t.elapsed());
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            times
        })
    };
    let start = Instant::now();
    let mut crowd = Vec::with_capacity(attackers);
    for i in 0..attackers {
        let (http, url, stop, tally) = (http.clone(), url.to_string(), stop.clone(), tally.clone());
        // Addresses from 100.64.0.0/10 (shared address space): one per group of attackers.
        let n = u32::try_from(i % addresses).unwrap_or(0);
        let from = std::net::Ipv4Addr::from(0x6440_0000u32 + n).to_string();
        crowd.push(tokio::spawn(async move {
            let mut round = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // Half the crowd at the portal's sign-in, half at card login; unknown emails and
                // wrong passcodes alike.
                let (path, body) = if i % 2 == 0 {
                    ("/api/v1/self/sign-in", serde_json::json!({ "email": format!("bot{i}.{round}@bench.example"), "passcode": "guess1" }))
                } else {
                    ("/api/v1/card/login", serde_json::json!({ "email": format!("bot{i}.{round}@bench.example"), "passcode": "guess1", "method": "push" }))
                };
                round += 1;
                let sent = http.post(format!("{url}{path}")).header("x-forwarded-for", &from).json(&body).send().await;
                let counter = match sent.map(|r| r.status().as_u16()) {
                    Ok(401) => &tally.evaluated,
                    Ok(503) => &tally.refused_503,
                    Ok(429) => &tally.refused_429,
                    _ => &tally.other,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(ATTACKER_PAUSE).await;
            }
        }));
    }

    // The holder, from the loopback address itself, during the attack; a 503 is retried after the
    // server's Retry-After (1 s), as a client should.
    tokio::time::sleep(LEGIT_START).await;
    let anon = Client::new(url);
    let legit_start = Instant::now();
    let mut legit_attempts = 0u32;
    let legit_login_ms = loop {
        legit_attempts += 1;
        match one_login(&anon, &seat, "legit", &numbers).await {
            Ok(_) => break Some(legit_start.elapsed().as_secs_f64() * 1000.0),
            Err(e)
                if e.downcast_ref::<vsc_client::ClientError>().and_then(vsc_client::ClientError::status)
                    == Some(503)
                    && legit_start.elapsed() < Duration::from_secs(seconds) =>
            {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => {
                eprintln!("the holder's login failed: {e}");
                break None;
            }
        }
    };
    let until = Duration::from_secs(seconds);
    if start.elapsed() < until {
        tokio::time::sleep(until - start.elapsed()).await;
    }
    stop.store(true, Ordering::Relaxed);
    for a in crowd {
        let _ = a.await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mut healthz = poller.await?;
    stop_device.add_permits(1);
    device.abort();
    healthz.sort();
    let (peak_rss_mb, _) = memory_mb(pid);
    Ok(Report {
        peak_rss_mb,
        idle_rss_mb,
        healthz_p99_ms: percentile(&healthz, 99.0),
        healthz_polls: healthz.len(),
        legit_login_ms,
        legit_attempts,
        refused_503: tally.refused_503.load(Ordering::Relaxed),
        refused_429: tally.refused_429.load(Ordering::Relaxed),
        evaluated: tally.evaluated.load(Ordering::Relaxed),
        other: tally.other.load(Ordering::Relaxed),
        seconds: elapsed,
    })
}

impl Report {
    fn print(&self, attackers: usize, addresses: usize, json: bool) {
        if json {
            println!(
                "{}",
                serde_json::json!({
                    "scenario": "abuse",
                    "attackers": attackers,
                    "addresses": addresses,
                    "seconds": self.seconds,
                    "peak_rss_mb": self.peak_rss_mb,
                    "idle_rss_mb": self.idle_rss_mb,
                    "healthz_p99_ms": self.healthz_p99_ms,
                    "healthz_polls": self.healthz_polls,
                    "legit_login_ms": self.legit_login_ms,
                    "legit_attempts": self.legit_attempts,
                    "refused_503": self.refused_503,
                    "refused_429": self.refused_429,
                    "evaluated": self.evaluated,
                    "other": self.other,
                })
            );
            return;
        }
        let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
        let total = self.refused_503 + self.refused_429 + self.evaluated + self.other;
        println!(
            "abuse: {attackers} concurrent attackers from {addresses} addresses for {:.1} s ({total} bogus sign-ins and card logins)",
            self.seconds
        );
        println!(
            "  peak RSS     {:10.1} MB   (server process VmHWM; idle {:.1} MB; target < {RSS_TARGET_MB} MB: {}, ratio {:.2})",
            self.peak_rss_mb,
            self.idle_rss_mb,
            verdict(self.peak_rss_mb < RSS_TARGET_MB),
            self.peak_rss_mb / RSS_TARGET_MB
        );
        println!(
            "  healthz p99  {:10.2} ms   ({} polls during the attack; target < {HEALTHZ_P99_TARGET_MS} ms: {}, ratio {:.2})",
            self.healthz_p99_ms,
            self.healthz_polls,
            verdict(self.healthz_p99_ms < HEALTHZ_P99_TARGET_MS),
            self.healthz_p99_ms / HEALTHZ_P99_TARGET_MS
        );
        match self.legit_login_ms {
            Some(ms) => println!(
                "  legit login  {ms:10.1} ms   (passcode + push approval, {} attempt(s) with 503 retried after 1 s: met)",
                self.legit_attempts
            ),
            None => println!("  legit login       failed   (MISSED)"),
        }
        println!(
            "  evaluated    {:10}      (attempts whose credentials were checked and refused, 401)",
            self.evaluated
        );
        println!("  refused 503  {:10}      (hash queue full, refused before any work)", self.refused_503);
        println!("  refused 429  {:10}      (source address blocked after too many failures)", self.refused_429);
        if self.other > 0 {
            println!("  other        {:10}      (other answers or transport errors)", self.other);
        }
    }
}
