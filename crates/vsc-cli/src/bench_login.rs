//! `vsc bench login`: concurrent full card logins against an in-process `vsc serve` over HTTP on
//! loopback — passcode (Argon2id), push to an in-process authenticator that waits on the
//! long-poll, a signed approval with number matching, the client's long-poll, and the card
//! session — beside the bare Argon2id verification rate on the same cores, and push delivery
//! latency.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, oneshot};
use vsc_client::device::Decision;
use vsc_client::{Client, DeviceClient};
use vsc_core::{CardType, KeyAlgorithm, RoleCode};
use vsc_crypto::device::DeviceKey;
use vsc_proto::{CardLoginRequest, CreateUserRequest};
use vsc_server::serve::Server;
use vsc_server::service::IssueCard;
use vsc_server::{Config, Principal, Vsc};
use vsc_store::devices;

use crate::bench::percentile;

/// The passcode of every benchmark holder.
pub(crate) const PASSCODE: &str = "bench1";
/// Target ratio of logins/s to Argon2id verifications/s.
const RATIO_TARGET: f64 = 0.8;
/// Target push delivery p99 on loopback.
const PUSH_P99_TARGET_MS: f64 = 50.0;

/// Numbers to pick, by login label: the client hands the number its login showed to the device.
pub(crate) type Numbers = Arc<Mutex<HashMap<String, oneshot::Receiver<Option<u8>>>>>;
/// When each push was received, by login label.
pub(crate) type Received = Arc<Mutex<HashMap<String, Instant>>>;

/// Run the login benchmark.
pub async fn login(logins: usize, concurrency: usize, database_url: Option<String>, json: bool) -> anyhow::Result<()> {
    anyhow::ensure!((1..=100_000).contains(&logins), "--logins must be between 1 and 100000");
    anyhow::ensure!((1..=256).contains(&concurrency), "--concurrency must be between 1 and 256");
    crate::bench::with_scratch(database_url, 0, |config| run(config, logins, concurrency, json)).await
}

/// A benchmark holder with a registered device.
pub(crate) struct Seat {
    /// The holder's email.
    pub(crate) email: String,
    /// Their device.
    pub(crate) device: DeviceClient,
}

/// Make a holder with an active V1 card, passcode [`PASSCODE`] and one active device without a
/// PIN (the server runs with [`without_device_pins`]). This is set-up, not timed: it writes the
/// enrolled state through the store instead of walking the enrolment and device-registration
/// flows (which the tests cover).
pub(crate) async fn seat(
    vsc: &Vsc,
    url: &str,
    i: usize,
    passcode_hash: &str,
    algorithm: KeyAlgorithm,
) -> anyhow::Result<Seat> {
    let op = Principal::Operator;
    let email = format!("holder{i}@bench.example");
    let user = vsc
        .create_user(
            &op,
            &CreateUserRequest {
                organisation: "BENCH".into(),
                forename: "Bench".into(),
                surname: "Holder".into(),
                email: email.clone(),
                mobile: None,
                subject_cn: None,
                directory_account: None,
            },
        )
        .await?;
    let user_id = user.id.to_string();
    let req = IssueCard { card_type: CardType::V1, roles: vec![RoleCode::parse("role", "R8000")?], algorithm };
    let card = vsc.issue_card(&op, &user_id, &req).await?;
    let key = DeviceKey::generate()?;
    let device_id = format!("bench-device-{i}");
    let now = vsc_client::device::system_time();
    let mut tx = vsc.store().begin().await?;
    vsc_store::holders::set_passcode(&mut tx, &user_id, passcode_hash, now).await?;
    let card_id = vsc_store::cards::by_serial(&mut tx, &card.serial)
        .await?
        .ok_or_else(|| anyhow::anyhow!("card {} vanished", card.serial))?
        .id;
    vsc_store::cards::set_state(&mut tx, &card_id, "issued", "active").await?;
    devices::insert(
        &mut tx,
        &devices::NewDevice {
            id: &device_id,
            user_id: &user_id,
            name: "bench phone",
            device_type: "phone",
            authenticator_type: "vsc",
            code_hash: &[0; 32],
            code_expires_at: now,
            created_at: now,
        },
    )
    .await?;
    devices::start_registration(&mut tx, &device_id, device_id.as_bytes(), now + 600).await?;
    let registration = devices::Registration {
        public_key: &key.public_key(),
        sealed_totp: &[],
        client_version: env!("CARGO_PKG_VERSION"),
        platform: std::env::consts::OS,
        platform_version: "bench",
        pin_hash: None,
        at: now,
    };
    devices::activate(&mut tx, &device_id, &registration).await?;
    tx.commit().await?;
    Ok(Seat { email, device: DeviceClient::new(url, &device_id, key) })
}

/// A device loop: wait for pushes, note when each arrived, approve it with the login's number.
pub(crate) async fn authenticator(device: DeviceClient, numbers: Numbers, received: Received, stop: Arc<Semaphore>) {
    while stop.available_permits() == 0 {
        let Ok(list) = device.challenges(5).await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        for c in list.challenges {
            let at = Instant::now();
            if let Ok(mut r) = received.lock() {
                r.entry(c.client.clone()).or_insert(at);
            }
            let rx = numbers.lock().ok().and_then(|mut m| m.remove(&c.client));
            let Some(rx) = rx else { continue };
            let Ok(number) = rx.await else { continue };
            let _ = device.answer(&c.id, &c.nonce, Decision::Approve, number).await;
        }
    }
}

/// One full login of `seat` labelled `label` → wall time and the card session token.
pub(crate) async fn one_login(
    anon: &Client,
    seat: &Seat,
    label: &str,
    numbers: &Numbers,
) -> anyhow::Result<(Duration, String)> {
    let (tx, rx) = oneshot::channel();
    numbers.lock().map_err(|_| anyhow::anyhow!("lock poisoned"))?.insert(label.to_string(), rx);
    let t = Instant::now();
    let req = CardLoginRequest {
        email: seat.email.clone(),
        passcode: Some(PASSCODE.into()),
        method: "push".into(),
        client: Some(label.to_string()),
    };
    let login = anon.card_login(&req).await?;
    let _ = tx.send(login.number);
    let mut state = anon.login_state(&login.login, 30).await?;
    while state.state == "pending" {
        state = anon.login_state(&login.login, 30).await?;
    }
    anyhow::ensure!(state.state == "approved", "login {label} ended {}", state.state);
    let session = anon.open_card_session(&login.login, None).await?;
    Ok((t.elapsed(), session.session))
}

/// Bare Argon2id verifications per second: one thread per core verifying back to back for
/// `budget` — the most the cores can hash, the bound a login's passcode check is held to.
async fn argon2_rate(hash: &str, budget: Duration) -> anyhow::Result<f64> {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let start = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..cores {
        let hash = hash.to_string();
        handles.push(std::thread::spawn(move || {
            let mut n = 0u64;
            while start.elapsed() < budget {
                if vsc_crypto::secret::verify(PASSCODE, &hash) {
                    n += 1;
                }
            }
            n
        }));
    }
    let mut total = 0u64;
    for h in handles {
        total += h.join().map_err(|_| anyhow::anyhow!("an Argon2id thread panicked"))?;
    }
    Ok(total as f64 / start.elapsed().as_secs_f64())
}

/// The benchmark's server settings: its devices have no PIN. The login bound is the one
/// Argon2id a login costs the service (the passcode); the device PIN is a second one on the
/// holder's Yes, left out so that the ratio stays comparable between runs.
pub(crate) fn without_device_pins(mut config: Config) -> Config {
    config.authenticator.require_pin = false;
    config
}

async fn run(config: Config, logins: usize, concurrency: usize, json: bool) -> anyhow::Result<()> {
    let server = Server::bind(without_device_pins(config)).await?;
    let url = server.url();
    let vsc = server.vsc().clone();
    let (stop_server, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    vsc.bootstrap("BENCH", "Benchmark Trust", &["bench.example".into()], "ra@bench.example", "Bench Admin").await?;
    let passcode_hash = vsc_crypto::secret::hash(PASSCODE)?;
    let mut seats = Vec::with_capacity(concurrency);
    for i in 0..concurrency {
        seats.push(Arc::new(seat(&vsc, &url, i, &passcode_hash, KeyAlgorithm::P256).await?));
    }
    let numbers: Numbers = Arc::default();
    let received: Received = Arc::default();
    let stop = Arc::new(Semaphore::new(0));
    let devices: Vec<_> = seats
        .iter()
        .map(|s| tokio::spawn(authenticator(s.device.clone(), numbers.clone(), received.clone(), stop.clone())))
        .collect();
    let anon = Client::new(&url);
    // Warm-up: one login per seat, not timed.
    for (i, s) in seats.iter().enumerate() {
        one_login(&anon, s, &format!("warm-{i}"), &numbers).await?;
    }

    // Push delivery: one push at a time, the device already waiting; from just before the
    // request that creates the challenge to the device holding it.
    let pushes = logins.clamp(20, 200);
    let mut delivery = Vec::with_capacity(pushes);
    let org_push_only = vsc.set_push_only(&Principal::Operator, "BENCH", true).await;
    org_push_only?;
    for i in 0..pushes {
        let seat = seats.get(i % seats.len()).ok_or_else(|| anyhow::anyhow!("no seat"))?;
        let label = format!("push-{i}");
        let (tx, rx) = oneshot::channel();
        numbers.lock().map_err(|_| anyhow::anyhow!("lock poisoned"))?.insert(label.clone(), rx);
        tokio::time::sleep(Duration::from_millis(5)).await;
        let t = Instant::now();
        let req = CardLoginRequest {
            email: seat.email.clone(),
            passcode: None,
            method: "push".into(),
            client: Some(label.clone()),
        };
        let login = anon.card_login(&req).await?;
        let _ = tx.send(login.number);
        let state = anon.login_state(&login.login, 30).await?;
        anyhow::ensure!(state.state == "approved", "push {i} ended {}", state.state);
        let at = received.lock().ok().and_then(|r| r.get(&label).copied());
        let at = at.ok_or_else(|| anyhow::anyhow!("push {i} was approved but never seen"))?;
        delivery.push(at.saturating_duration_since(t));
    }
    vsc.set_push_only(&Principal::Operator, "BENCH", false).await?;

    // The bound, measured just before and just after the timed logins and averaged, so that a
    // drift in the machine's speed during the run affects both sides alike.
    let argon2_before = argon2_rate(&passcode_hash, Duration::from_millis(1500)).await?;
    // Full logins, `concurrency` in flight.
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let cpu_start = crate::bench::process_cpu_seconds();
    let start = Instant::now();
    let mut clients = Vec::new();
    for s in &seats {
        let (s, anon, numbers, next) = (s.clone(), anon.clone(), numbers.clone(), next.clone());
        clients.push(tokio::spawn(async move {
            let mut times = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if i >= logins {
                    return Ok::<_, anyhow::Error>(times);
                }
                times.push(one_login(&anon, &s, &format!("login-{i}"), &numbers).await?.0);
            }
        }));
    }
    let mut latencies = Vec::with_capacity(logins);
    for c in clients {
        latencies.extend(c.await??);
    }
    let total = start.elapsed().as_secs_f64();
    let cpu_busy = crate::bench::cpu_busy(cpu_start, total);
    stop.add_permits(1);
    let logins_per_s = logins as f64 / total;
    let argon2_after = argon2_rate(&passcode_hash, Duration::from_millis(1500)).await?;
    let argon2_per_s = (argon2_before + argon2_after) / 2.0;
    let ratio = logins_per_s / argon2_per_s;
    latencies.sort();
    delivery.sort();
    let (p50, p99) = (percentile(&latencies, 50.0), percentile(&latencies, 99.0));
    let (push_p50_ms, push_p99_ms) = (percentile(&delivery, 50.0), percentile(&delivery, 99.0));
    let backend = vsc.store().backend().name();
    for d in devices {
        d.abort();
    }
    let _ = stop_server.send(());
    let _ = task.await;

    if json {
        println!(
            "{}",
            serde_json::json!({
                "scenario": "login",
                "backend": backend,
                "logins": logins,
                "concurrency": concurrency,
                "logins_per_s": logins_per_s,
                "argon2_per_s": argon2_per_s,
                "ratio": ratio,
                "login_p50_ms": p50,
                "login_p99_ms": p99,
                "push_p50_ms": push_p50_ms,
                "push_p99_ms": push_p99_ms,
                "cpu_busy": cpu_busy,
            })
        );
    } else {
        let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
        println!("login: {logins} full card logins ({backend}, {concurrency} in flight) in {total:.2} s");
        println!("  logins/s   {logins_per_s:10.1}");
        println!("  login p50  {p50:10.2} ms   p99 {p99:.2} ms");
        println!(
            "  cpu busy   {:10.1} %   (process CPU time ÷ (wall time × cores) during the logins)",
            cpu_busy * 100.0
        );
        println!(
            "  argon2/s   {argon2_per_s:10.1}   (bare Argon2id verifications, same cores, same run: mean of before and after)"
        );
        println!(
            "  ratio      {ratio:10.3}   (logins/s ÷ argon2/s; target ≥ {RATIO_TARGET}: {})",
            verdict(ratio >= RATIO_TARGET)
        );
        println!(
            "  push p50   {push_p50_ms:10.2} ms   p99 {push_p99_ms:.2} ms   (request start → device holds it, {pushes} pushes; target p99 < {PUSH_P99_TARGET_MS} ms: {})",
            verdict(push_p99_ms < PUSH_P99_TARGET_MS)
        );
    }
    Ok(())
}
