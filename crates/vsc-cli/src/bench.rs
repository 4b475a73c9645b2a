//! `vsc bench …`: figures with a ratio against a bound measured in the same run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use vsc_core::{CardType, KeyAlgorithm, RoleCode};
use vsc_proto::CreateUserRequest;
use vsc_server::clock::SystemClock;
use vsc_server::service::IssueCard;
use vsc_server::{Config, Principal, Vsc};

use crate::cli::BenchCommand;

/// Target p99 for one V2 card with the default algorithm.
const P99_TARGET_MS: f64 = 50.0;

/// Run a benchmark.
pub async fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Abuse { attackers, addresses, seconds, database_url, json } => {
            crate::bench_abuse::abuse(attackers, addresses, seconds, database_url, json).await
        }
        BenchCommand::Issuance { cards, key_algorithm, database_url, json } => {
            issuance(cards, &key_algorithm, database_url, json).await
        }
        BenchCommand::Import { rows, cards, database_url, json } => {
            crate::bench_import::import(rows, cards, database_url, json).await
        }
        BenchCommand::Login { logins, concurrency, database_url, json } => {
            crate::bench_login::login(logins, concurrency, database_url, json).await
        }
        BenchCommand::Search { users, database_url, json } => {
            crate::bench_search::search(users, database_url, json).await
        }
        BenchCommand::Sign { signatures, concurrency, key_algorithm, batch, database_url, json } => {
            let algorithm = KeyAlgorithm::parse("--key-algorithm", &key_algorithm)?;
            let bench = crate::bench_sign::SignBench { signatures, concurrency, batch, algorithm, json };
            crate::bench_sign::sign(bench, database_url).await
        }
    }
}

/// CPU seconds (user + system) this process has used so far, from `/proc/self/stat` (0 where
/// that is not available).
pub(crate) fn process_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return 0.0 };
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12th and 13th after ')'.
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// Share of the machine's CPU this process used since `cpu_start` over `wall` seconds.
pub(crate) fn cpu_busy(cpu_start: f64, wall: f64) -> f64 {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as f64;
    if wall <= 0.0 { 0.0 } else { (process_cpu_seconds() - cpu_start) / (wall * cores) }
}

pub(crate) fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    let idx = rank.clamp(1, sorted.len()) - 1;
    sorted.get(idx).map(|d| d.as_secs_f64() * 1000.0).unwrap_or(0.0)
}

/// Bare key generation rate (keys/s) of `algorithm` over about `budget`.
fn keygen_rate(algorithm: KeyAlgorithm, budget: Duration) -> anyhow::Result<f64> {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget || n < 3 {
        vsc_crypto::GeneratedKey::generate(algorithm)?;
        n += 1;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

async fn issuance(cards: usize, algorithm: &str, database_url: Option<String>, json: bool) -> anyhow::Result<()> {
    anyhow::ensure!((1..=100_000).contains(&cards), "--cards must be between 1 and 100000");
    let algorithm = KeyAlgorithm::parse("key-algorithm", algorithm)?;
    // RSA profiles draw on the pre-generated key pool, as `vsc serve` does: fill it for every
    // timed card (plus the warm-up card) before the clock starts.
    let pool = if algorithm == KeyAlgorithm::P256 { 0 } else { 2 * (cards as i64 + 1) };
    with_scratch(database_url, pool, |config| run_issuance(config, cards, algorithm, json)).await
}

/// Run a benchmark on a fresh configuration: a temporary data dir (SQLite), or a scratch
/// database created on the PostgreSQL server `database_url` and dropped afterwards; an
/// in-process server listens on a free loopback port.
pub(crate) async fn with_scratch<F, Fut>(database_url: Option<String>, rsa_pool_size: i64, run: F) -> anyhow::Result<()>
where
    F: FnOnce(Config) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let dir = tempfile::tempdir()?;
    let scratch = match &database_url {
        Some(server) => Some(vsc_store::scratch::create(server, "vsc_bench").await?),
        None => None,
    };
    let config = Config {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.path().join("data"),
        database_url: scratch.clone(),
        rsa_pool_size,
        ..Config::default()
    };
    let result = run(config).await;
    if let (Some(server), Some(url)) = (&database_url, &scratch) {
        vsc_store::scratch::drop(server, url).await?;
    }
    result
}

async fn run_issuance(config: Config, cards: usize, algorithm: KeyAlgorithm, json: bool) -> anyhow::Result<()> {
    let vsc = Vsc::open(config, Arc::new(SystemClock)).await?;
    vsc.bootstrap("BENCH", "Benchmark Trust", &["bench.example".into()], "ra@bench.example", "Bench Admin").await?;
    let op = Principal::Operator;
    let mut users = Vec::with_capacity(cards);
    for i in 0..cards {
        let u = vsc
            .create_user(
                &op,
                &CreateUserRequest {
                    organisation: "BENCH".into(),
                    forename: "Bench".into(),
                    surname: "Holder".into(),
                    email: format!("holder{i}@bench.example"),
                    mobile: None,
                    subject_cn: None,
                    directory_account: None,
                },
            )
            .await?;
        users.push(u.id.to_string());
    }
    if algorithm != KeyAlgorithm::P256 {
        let t = Instant::now();
        let n = vsc_server::service::refill_rsa_pool(&vsc).await?;
        if !json {
            println!(
                "filled the {} key pool with {n} keys in {:.1} s (not timed)",
                algorithm.as_str(),
                t.elapsed().as_secs_f64()
            );
        }
    }
    let req = IssueCard { card_type: CardType::V2, roles: vec![RoleCode::parse("role", "R8000")?], algorithm };
    // Warm the pool and caches with one card that is not counted.
    vsc.issue_card(&op, users.first().map(String::as_str).unwrap_or_default(), &req).await?;

    let keygen_per_s =
        keygen_rate(algorithm, Duration::from_millis(if algorithm == KeyAlgorithm::P256 { 500 } else { 2000 }))?;
    let mut latencies = Vec::with_capacity(cards);
    let start = Instant::now();
    for user in &users {
        let t = Instant::now();
        vsc.issue_card(&op, user, &req).await?;
        latencies.push(t.elapsed());
    }
    let total = start.elapsed().as_secs_f64();
    latencies.sort();
    let cards_per_s = cards as f64 / total;
    let p50_ms = percentile(&latencies, 50.0);
    let p99_ms = percentile(&latencies, 99.0);
    let keys_per_card = CardType::V2.key_purposes().len() as f64;
    // The bound: a card cannot be issued faster than its keys can be generated.
    let ratio = cards_per_s / (keygen_per_s / keys_per_card);
    let backend = vsc.store().backend().name();
    vsc.store().close().await;

    if json {
        println!(
            "{}",
            serde_json::json!({
                "scenario": "issuance",
                "backend": backend,
                "key_algorithm": algorithm.as_str(),
                "cards": cards,
                "cards_per_s": cards_per_s,
                "p50_ms": p50_ms,
                "p99_ms": p99_ms,
                "keygen_per_s": keygen_per_s,
                "ratio": ratio,
            })
        );
    } else {
        let verdict = if p99_ms < P99_TARGET_MS { "met" } else { "MISSED" };
        println!("issuance: {cards} V2 cards ({}, {backend}) in {total:.2} s", algorithm.as_str());
        println!("  cards/s    {cards_per_s:10.1}");
        println!("  p50        {p50_ms:10.2} ms");
        println!("  p99        {p99_ms:10.2} ms   (target < {P99_TARGET_MS} ms: {verdict})");
        println!("  keygen/s   {keygen_per_s:10.1}   (bare {} key generation, same run)", algorithm.as_str());
        println!("  ratio      {ratio:10.4}   (cards/s ÷ (keygen/s ÷ {keys_per_card} keys per card))");
    }
    Ok(())
}
