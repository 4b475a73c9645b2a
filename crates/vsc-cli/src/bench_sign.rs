//! `vsc bench sign`: raw signatures with a card's authentication key through the HTTP API of an
//! in-process `vsc serve`, within card sessions opened by real push logins — every signature
//! checked against its session and card, and audited, in a committed transaction (signatures made
//! at the same moment share one: group commit) before it is returned — beside the bare signing
//! rate of the same key type on the same cores in the same run. Two passes: one digest per request
//! (`POST /api/v1/card/sign`) and `--batch` digests per request (`POST /api/v1/card/sign/batch`).
//! Each pass also checks that the `card.signed` audit events record exactly the signatures made.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, oneshot};
use vsc_client::Client;
use vsc_client::signing::Signed;
use vsc_core::KeyAlgorithm;
use vsc_crypto::{CardSigner, GeneratedKey, SignatureScheme};
use vsc_proto::{CardSignBatchRequest, CardSignRequest};
use vsc_server::Config;
use vsc_server::serve::Server;

use crate::bench::percentile;
use crate::bench_login::{Numbers, Received, authenticator, one_login, seat};

/// Target ratio of API signatures/s to bare signatures/s (SQLite, audit write included).
const RATIO_TARGET: f64 = 0.5;
/// Card sessions the signatures are spread over.
const SESSIONS: usize = 4;

/// What to run.
#[derive(Debug, Clone, Copy)]
pub struct SignBench {
    /// Timed signatures per pass.
    pub signatures: usize,
    /// Requests in flight.
    pub concurrency: usize,
    /// Digests per request in the batch pass.
    pub batch: usize,
    /// Card key algorithm.
    pub algorithm: KeyAlgorithm,
    /// One JSON object per pass.
    pub json: bool,
}

/// Run the signing benchmark.
pub async fn sign(bench: SignBench, database_url: Option<String>) -> anyhow::Result<()> {
    anyhow::ensure!((1..=1_000_000).contains(&bench.signatures), "--signatures must be between 1 and 1000000");
    anyhow::ensure!((1..=256).contains(&bench.concurrency), "--concurrency must be between 1 and 256");
    anyhow::ensure!(
        (2..=vsc_proto::MAX_BATCH_DIGESTS).contains(&bench.batch),
        "--batch must be between 2 and {}",
        vsc_proto::MAX_BATCH_DIGESTS
    );
    crate::bench::with_scratch(database_url, 0, |config| run(config, bench)).await
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

/// At least `n` signatures, `per_request` digests per request (1: `POST /api/v1/card/sign`, more:
/// `POST /api/v1/card/sign/batch`), spread over `sessions` with `concurrency` requests in flight →
/// the number signed and the wall time of each request.
async fn sign_many(
    sessions: &[Client],
    n: usize,
    per_request: usize,
    concurrency: usize,
) -> anyhow::Result<(usize, Vec<Duration>)> {
    let requests = n.div_ceil(per_request);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let client = sessions.get(w % sessions.len()).ok_or_else(|| anyhow::anyhow!("no session"))?.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut times = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests {
                    return Ok::<_, anyhow::Error>(times);
                }
                let digests: Vec<String> = (0..per_request)
                    .map(|k| {
                        let mut digest = [0u8; 32];
                        digest[..8].copy_from_slice(&((i * per_request + k) as u64).to_le_bytes());
                        hex::encode(digest)
                    })
                    .collect();
                let t = Instant::now();
                if per_request == 1 {
                    let req = CardSignRequest { digest: digests.into_iter().next(), ..CardSignRequest::default() };
                    match client.card_sign(&req).await? {
                        Signed::Done(_) => {}
                        Signed::Approval(_) => anyhow::bail!("the authentication key asked for an approval"),
                    }
                } else {
                    let req = CardSignBatchRequest { digests, ..CardSignBatchRequest::default() };
                    let got = client.card_sign_batch(&req).await?.signatures.len();
                    anyhow::ensure!(got == per_request, "{per_request} digests sent, {got} signatures returned");
                }
                times.push(t.elapsed());
            }
        }));
    }
    let mut all = Vec::with_capacity(requests);
    for t in tasks {
        all.extend(t.await??);
    }
    Ok((requests * per_request, all))
}

/// One timed pass and its figures.
struct Pass {
    per_request: usize,
    signatures: usize,
    seconds: f64,
    signatures_per_s: f64,
    raw_per_s: f64,
    ratio: f64,
    p50: f64,
    p99: f64,
}

/// Warm up, then time `n` signatures `per_request` at a time between two measurements of the
/// bare signing rate; check the audit trail.
async fn pass(
    vsc: &vsc_server::Vsc,
    sessions: &[Client],
    bench: &SignBench,
    per_request: usize,
) -> anyhow::Result<Pass> {
    let warm = (bench.signatures / 10).clamp(50, 1000);
    sign_many(sessions, warm, per_request, bench.concurrency).await?;
    let (audited_before, _) = audited_signatures(vsc, 0).await?;
    let raw_before = raw_rate(bench.algorithm, Duration::from_millis(1500)).await?;
    let start = Instant::now();
    let (signatures, mut latencies) = sign_many(sessions, bench.signatures, per_request, bench.concurrency).await?;
    let seconds = start.elapsed().as_secs_f64();
    let raw_after = raw_rate(bench.algorithm, Duration::from_millis(1500)).await?;
    let (_, audited) = audited_signatures(vsc, audited_before).await?;
    anyhow::ensure!(audited == signatures, "{signatures} signatures were made but {audited} audit events written");
    let signatures_per_s = signatures as f64 / seconds;
    let raw_per_s = (raw_before + raw_after) / 2.0;
    latencies.sort();
    Ok(Pass {
        per_request,
        signatures,
        seconds,
        signatures_per_s,
        raw_per_s,
        ratio: signatures_per_s / raw_per_s,
        p50: percentile(&latencies, 50.0),
        p99: percentile(&latencies, 99.0),
    })
}

async fn run(config: Config, bench: SignBench) -> anyhow::Result<()> {
    let server = Server::bind(crate::bench_login::without_device_pins(config)).await?;
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
        let s = seat(&vsc, &url, i, &passcode_hash, bench.algorithm).await?;
        devices.push(tokio::spawn(authenticator(s.device.clone(), numbers.clone(), received.clone(), stop.clone())));
        let (_, token) = one_login(&anon, &s, &format!("session-{i}"), &numbers).await?;
        sessions.push(anon.with_token(&token));
    }
    stop.add_permits(1);
    for d in devices {
        d.abort();
    }

    let single = pass(&vsc, &sessions, &bench, 1).await?;
    let batched = pass(&vsc, &sessions, &bench, bench.batch).await?;
    let backend = vsc.store().backend().name();
    let _ = stop_server.send(());
    let _ = task.await;

    let alg = bench.algorithm.as_str();
    for p in [&single, &batched] {
        let route = if p.per_request == 1 { "/api/v1/card/sign" } else { "/api/v1/card/sign/batch" };
        if bench.json {
            println!(
                "{}",
                serde_json::json!({
                    "scenario": "sign",
                    "mode": if p.per_request == 1 { "single" } else { "batch" },
                    "route": route,
                    "backend": backend,
                    "key_algorithm": alg,
                    "signatures": p.signatures,
                    "digests_per_request": p.per_request,
                    "concurrency": bench.concurrency,
                    "signatures_per_s": p.signatures_per_s,
                    "raw_per_s": p.raw_per_s,
                    "ratio": p.ratio,
                    "request_p50_ms": p.p50,
                    "request_p99_ms": p.p99,
                })
            );
            continue;
        }
        let verdict = if p.ratio >= RATIO_TARGET { "met" } else { "MISSED" };
        println!(
            "sign: {} raw signatures with {alg} authentication keys through POST {route}, {} per request ({backend}, {} requests in flight over {SESSIONS} card sessions) in {:.2} s",
            p.signatures, p.per_request, bench.concurrency, p.seconds
        );
        println!(
            "  signatures/s {:10.1}   (each one authorised and audited in a committed transaction before it is returned)",
            p.signatures_per_s
        );
        println!("  request p50  {:10.2} ms   p99 {:.2} ms", p.p50, p.p99);
        println!(
            "  raw/s        {:10.1}   (bare {alg} signatures, one thread per core, same run: mean of before and after)",
            p.raw_per_s
        );
        println!("  ratio        {:10.3}   (signatures/s ÷ raw/s; target ≥ {RATIO_TARGET}: {verdict})", p.ratio);
    }
    Ok(())
}

/// Signatures recorded by `card.signed` events after event `after` (one per event, or the
/// `count` of a batch's event) → (the newest event's id, signatures).
async fn audited_signatures(vsc: &vsc_server::Vsc, after: i64) -> anyhow::Result<(i64, usize)> {
    let mut conn = vsc.store().conn().await?;
    let events = vsc_store::audit::details_after(&mut conn, "card.signed", after).await?;
    let mut signatures = 0;
    for (_, detail) in &events {
        let detail: serde_json::Value = serde_json::from_str(detail)?;
        signatures += match detail.get("digests").and_then(|d| d.as_array()) {
            Some(digests) => {
                let count = detail.get("count").and_then(serde_json::Value::as_u64);
                anyhow::ensure!(
                    count == Some(digests.len() as u64),
                    "a batch event's count does not match its digests"
                );
                digests.len()
            }
            None => 1,
        };
    }
    Ok((events.last().map_or(after, |(id, _)| *id), signatures))
}
