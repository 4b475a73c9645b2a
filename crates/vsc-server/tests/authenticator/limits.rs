//! Bounded work under attack: a full hash queue answers 503 at once; one address's failed
//! credential attempts past the limit get 429 on the credential routes while other addresses
//! (and successes) go on; the client address behind a trusted proxy reaches the push.

use serde_json::{Value, json};
use vsc_server::{Config, Principal};
use vsc_testkit::{Backend, TestServer, on_both_backends, test_config};

use crate::devices::{enrolled_holder, register_device};

on_both_backends!(
    a_full_hash_queue_refuses_at_once_with_503_and_retry_after,
    failures_past_the_limit_block_one_address_and_no_other,
    the_push_shows_the_client_address_behind_a_trusted_proxy,
);

async fn start(b: Backend, tune: impl FnOnce(&mut Config)) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(b, dir.path()).await;
    tune(&mut config);
    TestServer::start_with(config, dir).await
}

/// `POST` JSON as a client at `from` (through the loopback proxy) → (status, Retry-After, body).
async fn post_from(
    http: &reqwest::Client,
    ts: &TestServer,
    from: &str,
    path: &str,
    body: &Value,
) -> (u16, Option<u64>, Value) {
    post_to(http, &ts.url, from, path, body).await
}

async fn post_to(http: &reqwest::Client, url: &str, from: &str, path: &str, body: &Value) -> (u16, Option<u64>, Value) {
    let r = http.post(format!("{url}{path}")).header("x-forwarded-for", from).json(body).send().await.unwrap();
    let status = r.status().as_u16();
    let retry = r.headers().get("retry-after").map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
    let text = r.text().await.unwrap();
    (status, retry, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

fn card_login(email: &str, passcode: &str) -> Value {
    json!({ "email": email, "passcode": passcode, "method": "push", "client": "limits test" })
}

async fn a_full_hash_queue_refuses_at_once_with_503_and_retry_after(b: Backend) {
    let ts = start(b, |c| {
        c.limits.hash_queue = Some(1);
        // This test's failures all come from loopback: keep the regulator out of it.
        c.limits.failures_per_ip = 10_000;
    })
    .await;
    let h = enrolled_holder(&ts, "queue.holder@example.nhs.uk").await;
    register_device(&ts, &h).await;
    let http = reqwest::Client::new();
    // 80 concurrent card logins for unknown emails: each costs one Argon2id (a dummy one).
    let mut attempts = tokio::task::JoinSet::new();
    for i in 0..80 {
        let (http, url) = (http.clone(), ts.url.clone());
        attempts.spawn(async move {
            let body = card_login(&format!("nobody{i}@example.nhs.uk"), "wrong1");
            post_to(&http, &url, "127.0.0.1", "/api/v1/card/login", &body).await
        });
    }
    let answers = attempts.join_all().await;
    let mut busy = 0;
    let mut evaluated = 0;
    for (status, retry, body) in &answers {
        match status {
            503 => {
                assert_eq!(code(body), "SV0002Unavailable", "{body}");
                assert!(retry.is_some_and(|s| s >= 1), "503 carries Retry-After");
                busy += 1;
            }
            401 => {
                assert_eq!(code(body), "AU0003SignInFailed", "{body}");
                evaluated += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(busy > 0, "a queue of one refuses some of 80 at once");
    assert!(evaluated > 0, "the queue still serves");
    // Refusals for load are not credential failures, and do not use up the holder's attempts:
    // once the burst is over the holder logs in.
    let (status, _, body) =
        post_from(&http, &ts, "127.0.0.1", "/api/v1/card/login", &card_login(&h.email, &h.passcode)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ts.vsc.failure_regulation().blocks, 0);
}

async fn failures_past_the_limit_block_one_address_and_no_other(b: Backend) {
    let ts = start(b, |c| {
        c.trusted_proxies = vec!["127.0.0.0/8".into(), "::1".into()];
        c.limits.failures_per_ip = 5;
    })
    .await;
    let h = enrolled_holder(&ts, "nat.holder@example.nhs.uk").await;
    register_device(&ts, &h).await;
    let http = reqwest::Client::new();
    let attacker = "203.0.113.66";
    let wrong = card_login("nobody@example.nhs.uk", "wrong1");

    // Successes are neither limited nor counted: a busy address that only succeeds goes on.
    let busy_site = "198.51.100.7";
    for _ in 0..8 {
        let (status, _, body) =
            post_from(&http, &ts, busy_site, "/api/v1/self/reset", &json!({ "email": "someone@example.nhs.uk" })).await;
        assert_eq!(status, 202, "{body}");
    }

    for i in 0..5 {
        let (status, _, body) = post_from(&http, &ts, attacker, "/api/v1/card/login", &wrong).await;
        assert_eq!((status, code(&body)), (401, "AU0003SignInFailed"), "attempt {i}: {body}");
    }
    // Past the limit: refused before any check, the right passcode too, on every credential route.
    let (status, retry, body) = post_from(&http, &ts, attacker, "/api/v1/card/login", &wrong).await;
    assert_eq!((status, code(&body)), (429, "RL0001RateLimited"), "{body}");
    assert!(retry.is_some_and(|s| (250..=300).contains(&s)), "{retry:?}");
    let right = card_login(&h.email, &h.passcode);
    assert_eq!(post_from(&http, &ts, attacker, "/api/v1/card/login", &right).await.0, 429);
    assert_eq!(
        post_from(&http, &ts, attacker, "/api/v1/self/sign-in", &json!({ "email": h.email, "passcode": "x1" })).await.0,
        429
    );
    // The portal's sign-in form answers with its error page, Retry-After included.
    let r = http
        .post(format!("{}/self-service/sign-in", ts.url))
        .header("x-forwarded-for", attacker)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("email=someone%40example.nhs.uk&passcode=wrong1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    assert!(r.headers().contains_key("retry-after"));
    assert!(r.text().await.unwrap().contains("too many failed attempts"));
    // Routes other than the credential doors stay open to the address.
    let r = http.get(format!("{}/healthz", ts.url)).header("x-forwarded-for", attacker).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);

    // The same holder from another address logs in; the busy site is still fine and its first
    // failure is just a failure.
    let (status, _, body) = post_from(&http, &ts, "192.0.2.10", "/api/v1/card/login", &right).await;
    assert_eq!(status, 200, "{body}");
    let (status, _, _) = post_from(&http, &ts, busy_site, "/api/v1/card/login", &wrong).await;
    assert_eq!(status, 401);

    // The portal's form counts its inline refusals too: another address, 5 wrong passcodes on
    // the sign-in form (re-rendered with the message, 401), then the form answers 429.
    let portal_guesser = "203.0.113.77";
    let portal_sign_in = || {
        http.post(format!("{}/self-service/sign-in", ts.url))
            .header("x-forwarded-for", portal_guesser)
            .header("cookie", "vsc_csrf=csrf_test_token_0123456789")
            .header("content-type", "application/x-www-form-urlencoded")
            .body("csrf=csrf_test_token_0123456789&email=nat.holder%40example.nhs.uk&passcode=wrong1")
            .send()
    };
    for i in 0..5 {
        let r = portal_sign_in().await.unwrap();
        assert_eq!(r.status().as_u16(), 401, "attempt {i}: {}", r.text().await.unwrap());
    }
    assert_eq!(portal_sign_in().await.unwrap().status().as_u16(), 429);

    // The blocks are audited, by the system, with the address and the length.
    let log = ts.vsc.audit_log(&Principal::Operator, 1000).await.unwrap();
    let blocks: Vec<_> = log.iter().filter(|e| e.action == "client.blocked").collect();
    assert_eq!(blocks.len(), 2, "{blocks:?}");
    let first = blocks.iter().find(|e| e.detail["ip"] == attacker).expect("the attacker's block");
    assert_eq!(first.actor, "system");
    assert_eq!(first.detail["seconds"], 300);
    assert!(blocks.iter().any(|e| e.detail["ip"] == portal_guesser));
    let counters = ts.vsc.failure_regulation();
    assert_eq!((counters.blocks, counters.refused), (2, 5));
}

async fn the_push_shows_the_client_address_behind_a_trusted_proxy(b: Backend) {
    let ts = start(b, |c| c.trusted_proxies = vec!["127.0.0.1/32".into(), "::1/128".into()]).await;
    let h = enrolled_holder(&ts, "proxied.holder@example.nhs.uk").await;
    let device = register_device(&ts, &h).await;
    let http = reqwest::Client::new();
    // The client claimed 6.6.6.6 itself; the proxy appended the address it saw.
    let (status, _, body) =
        post_from(&http, &ts, "6.6.6.6, 198.51.100.23", "/api/v1/card/login", &card_login(&h.email, &h.passcode)).await;
    assert_eq!(status, 200, "{body}");
    let list = device.client(&ts).challenges(5).await.unwrap().challenges;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0].ip, "198.51.100.23");
    let log = ts.vsc.audit_log(&Principal::Operator, 1000).await.unwrap();
    assert!(
        log.iter().any(|e| e.action == "card.login_started" && e.detail["ip"] == "198.51.100.23"),
        "the audit records the client address"
    );
}
