//! `vsc bench sign`: raw signatures with a card's authentication key through the HTTP API of an
//! in-process `vsc serve`, within card sessions opened by real push logins — every signature
//! checked against its session and card, and audited, in a committed transaction (signatures made
//! at the same moment share one: group commit) before it is returned — beside the bare signing
//! rate of the same key type on the same cores in the same run. The run also checks that exactly
//! one `card.signed` audit event was written per signature.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, oneshot};
use vsc_client::Client;
use vsc_client::signing::Signed;
use vsc_core::KeyAlgorithm;
use vsc_crypto::{CardSigner, GeneratedKey, SignatureScheme};
use vsc_proto::CardSignRequest;
use vsc_server::Config;
use vsc_server::serve::Server;

use crate::bench::percentile;
use crate::bench_login::{Numbers, Received, authenticator, one_login, seat};

/// Target ratio of API signatures/s to bare signatures/s (SQLite, audit write included).
const RATIO_TARGET: f64 = 0.5;
/// Card sessions the signatures are spread over.
const SESSIONS: usize = 4;

/// Run the signing benchmark.
pub async fn sign(
    signatures: usize,
    concurrency: usize,
    algorithm: KeyAlgorithm,
    database_url: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    anyhow::ensure!((1..=1_000_000).contains(&signatures), "--signatures must be between 1 and 1000000");
    anyhow::ensure!((1..=256).contains(&concurrency), "--concurrency must be between 1 and 256");
    crate::bench::with_scratch(database_url, 0, |config| run(config, signatures, concurrency, algorithm, json)).await
}

/// Bare signatures per second of a key of `algorithm`, one signing thread per core.
async fn raw_rate(algorithm: KeyAlgorithm, budget: Duration) -> anyhow::Result<f64> {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let key = GeneratedKey::generate(algorithm)?;
    let start = Instant::now();
    let mut handles = Vec::new();
    for t in 0..cores {
        let signer: CardSigner = key.signer()?;
        handles.push(tokio::task::spawn_blocking(move || {
            let scheme = SignatureScheme::default_for(algorithm);
            let mut digest = [0u8; 32];
            let mut n = 0u64;
            while start.elapsed() < budget {
                digest[0] = t as u8;
                digest[1..9].copy_from_slice(&n.to_le_bytes());
                if signer.sign_digest(scheme, &digest).is_ok() {
                    n += 1;
                }
            }
            n
        }));
    }
    let mut total = 0u64;
    for h in handles {
        total += h.await?;
    }
    Ok(total as f64 / start.elapsed().as_secs_f64())
}

/// `n` signatures spread over `sessions`, `concurrency` in flight → per-signature wall times.
async fn sign_many(sessions: &[Client], n: usize, concurrency: usize) -> anyhow::Result<Vec<Duration>> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let client = sessions.get(w % sessions.len()).ok_or_else(|| anyhow::anyhow!("no session"))?.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut times = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<_, anyhow::Error>(times);
                }
                let mut digest = [0u8; 32];
                digest[..8].copy_from_slice(&(i as u64).to_le_bytes());
                let req = CardSignRequest { digest: Some(hex::encode(digest)), ..CardSignRequest::default() };
                let t = Instant::now();
                match client.card_sign(&req).await? {
                    Signed::Done(_) => times.push(t.elapsed()),
                    Signed::Approval(_) => anyhow::bail!("the authentication key asked for an approval"),
                }
            }
        }));
    }
    let mut all = Vec::with_capacity(n);
    for t in tasks {
        all.extend(t.await??);
    }
    Ok(all)
}

async fn run(
    config: Config,
    signatures: usize,
    concurrency: usize,
    algorithm: KeyAlgorithm,
    json: bool,
) -> anyhow::Result<()> {
    let server = Server::bind(config).await?;
    let url = server.url();
    let vsc = server.vsc().clone();
    let (stop_server, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    vsc.bootstrap("BENCH", "Benchmark Trust", &["bench.example".into()], "ra@bench.example", "Bench Admin").await?;
    let passcode = crate::bench_login::PASSCODE;
    let passcode_hash = vsc_crypto::secret::hash(passcode)?;
    let numbers: Numbers = Arc::default();
    let received: Received = Arc::default();
    let stop = Arc::new(Semaphore::new(0));
    let anon = Client::new(&url);
    let mut sessions = Vec::with_capacity(SESSIONS);
    let mut devices = Vec::new();
    for i in 0..SESSIONS {
        let s = seat(&vsc, &url, i, &passcode_hash, algorithm).await?;
        devices.push(tokio::spawn(authenticator(s.device.clone(), numbers.clone(), received.clone(), stop.clone())));
        let (_, token) = one_login(&anon, &s, &format!("session-{i}"), &numbers).await?;
        sessions.push(anon.with_token(&token));
    }
    stop.add_permits(1);
    for d in devices {
        d.abort();
    }

    let warm = (signatures / 10).clamp(50, 1000);
    sign_many(&sessions, warm, concurrency).await?;
    let audited_before = signed_events(&vsc).await?;
    let raw_before = raw_rate(algorithm, Duration::from_millis(1500)).await?;
    let start = Instant::now();
    let mut latencies = sign_many(&sessions, signatures, concurrency).await?;
    let total = start.elapsed().as_secs_f64();
    let raw_after = raw_rate(algorithm, Duration::from_millis(1500)).await?;
    let audited = signed_events(&vsc).await? - audited_before;
    anyhow::ensure!(
        audited == signatures as i64,
        "{signatures} signatures were made but {audited} audit events written"
    );
    let signatures_per_s = signatures as f64 / total;
    let raw_per_s = (raw_before + raw_after) / 2.0;
    let ratio = signatures_per_s / raw_per_s;
    latencies.sort();
    let (p50, p99) = (percentile(&latencies, 50.0), percentile(&latencies, 99.0));
    let backend = vsc.store().backend().name();
    let _ = stop_server.send(());
    let _ = task.await;

    if json {
        println!(
            "{}",
            serde_json::json!({
                "scenario": "sign",
                "backend": backend,
                "key_algorithm": algorithm.as_str(),
                "signatures": signatures,
                "concurrency": concurrency,
                "signatures_per_s": signatures_per_s,
                "raw_per_s": raw_per_s,
                "ratio": ratio,
                "sign_p50_ms": p50,
                "sign_p99_ms": p99,
            })
        );
    } else {
        let verdict = if ratio >= RATIO_TARGET { "met" } else { "MISSED" };
        let alg = algorithm.as_str();
        println!(
            "sign: {signatures} raw signatures with {alg} authentication keys through the API ({backend}, {concurrency} in flight over {SESSIONS} card sessions) in {total:.2} s"
        );
        println!(
            "  signatures/s {signatures_per_s:10.1}   (each one authorised and audited in a committed transaction before it is returned)"
        );
        println!("  sign p50     {p50:10.2} ms   p99 {p99:.2} ms");
        println!(
            "  raw/s        {raw_per_s:10.1}   (bare {alg} signatures, one thread per core, same run: mean of before and after)"
        );
        println!("  ratio        {ratio:10.3}   (signatures/s ÷ raw/s; target ≥ {RATIO_TARGET}: {verdict})");
    }
    Ok(())
}

/// `card.signed` audit events so far.
async fn signed_events(vsc: &vsc_server::Vsc) -> anyhow::Result<i64> {
    let mut conn = vsc.store().conn().await?;
    Ok(vsc_store::audit::count_action(&mut conn, "card.signed").await?)
}
