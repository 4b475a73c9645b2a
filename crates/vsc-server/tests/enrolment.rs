//! Enrolment, holder sign-in and the outbox through the JSON API, on SQLite and on PostgreSQL.

// Helper functions outside #[test] are not covered by clippy.toml's test allowances; a
// failing fixture should panic in a test file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use vsc_client::Client;
use vsc_proto::{CreateUserRequest, IssueCardRequest, UserView};
use vsc_server::Vsc;
use vsc_testkit::{Backend, ManualClock, TestServer, on_both_backends};

on_both_backends!(
    holder_enrols_with_passcode_questions_and_sms_code,
    every_passcode_rule_is_reported_by_the_api,
    a_link_is_single_use_and_concurrent_use_enrols_once,
    expired_and_replaced_links_are_refused,
    wrong_codes_void_the_code_and_resend_is_rate_limited,
    sign_in_never_reveals_which_part_was_wrong_and_locks,
    reminders_go_once_per_period_and_never_after_expiry,
    outbox_survives_a_crash_between_commit_and_send,
    holders_confirm_their_email_address,
    delivery_retries_with_back_off_and_records_the_outcome,
);

const MOBILE: &str = "+447700900123";

async fn holder(c: &Client, email: &str, mobile: Option<&str>) -> UserView {
    c.create_user(&CreateUserRequest {
        organisation: "ORG1".into(),
        forename: "Jo".into(),
        surname: "O'Hara".into(),
        email: email.into(),
        mobile: mobile.map(str::to_string),
        subject_cn: None,
        directory_account: Some("NHS\\jo.ohara".into()),
    })
    .await
    .unwrap()
}

async fn issue(c: &Client, user: &UserView) -> String {
    let req = IssueCardRequest { card_type: "v2".into(), roles: vec!["R8000".into()], key_algorithm: None };
    c.issue_card(&user.id.to_string(), &req).await.unwrap().serial
}

/// The newest message to `to` of `kind`, once the delivery worker has handled it.
async fn message(vsc: &Vsc, to: &str, kind: &str) -> vsc_server::service::OutboxMessage {
    for _ in 0..100 {
        let newest = vsc.outbox(Some(to), 50).await.unwrap().into_iter().rev().find(|m| m.kind == kind);
        if let Some(m) = newest.filter(|m| m.status != "pending") {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no {kind} message to {to}");
}

fn link_token(body: &str) -> String {
    let start = body.find("/self-service/enrol/").expect("link in body") + "/self-service/enrol/".len();
    body[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-').collect()
}

fn sms_code(body: &str) -> String {
    body.split(|c: char| !c.is_ascii_digit()).find(|w| w.len() == 6).expect("6-digit code").to_string()
}

async fn post(c: &Client, path: &str, body: Value) -> (u16, Value) {
    let (status, text) = c.raw(Method::POST, path, Some(&body)).await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn get(c: &Client, path: &str) -> (u16, Value) {
    let (status, text) = c.raw(Method::GET, path, None).await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn choices(passcode: &str) -> Value {
    json!({ "passcode": passcode, "answers": [
        { "question": 1, "answer": " Rex " }, { "question": 2, "answer": "Leeds" }, { "question": 3, "answer": "St Mary's" }
    ]})
}

/// Issue a card and take the holder through the choices step; returns (token, code).
async fn to_code_step(ts: &TestServer, email: &str) -> (String, String, String) {
    let user = holder(&ts.client, email, Some(MOBILE)).await;
    let serial = issue(&ts.client, &user).await;
    let token = link_token(&message(&ts.vsc, email, "invitation").await.body);
    let (status, body) = post(&ts.anon, &format!("/api/v1/enrolment/{token}"), choices("abc123")).await;
    assert_eq!(status, 202, "{body}");
    let code = sms_code(&message(&ts.vsc, MOBILE, "enrolment_code").await.body);
    (token, code, serial)
}

async fn holder_enrols_with_passcode_questions_and_sms_code(b: Backend) {
    let ts = TestServer::start(b).await;
    let email = "jo.o'hara@example.nhs.uk";
    let user = holder(&ts.client, email, None).await;
    let serial = issue(&ts.client, &user).await;

    let invite = message(&ts.vsc, email, "invitation").await;
    assert_eq!(invite.channel, "email");
    assert_eq!(invite.status, "local", "no SMTP configured: kept in the local outbox");
    assert!(invite.body.contains(&format!("{}/self-service/enrol/", ts.url)), "{}", invite.body);
    let token = link_token(&invite.body);
    assert_eq!(token.len(), 4 + 43);

    let (status, view) = get(&ts.anon, &format!("/api/v1/enrolment/{token}")).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["serial"], serial.as_str());
    assert_eq!(view["card_type"], "v2");
    assert_eq!(view["forename"], "Jo");
    assert_eq!(view["step"], "choose");
    assert_eq!(view["needs_mobile"], true);
    let questions = view["questions"].as_array().unwrap();
    assert!(questions.len() >= 3 && questions[0]["id"].is_i64() && questions[0]["text"].is_string());

    // No mobile on record: it is required.
    let (status, e) = post(&ts.anon, &format!("/api/v1/enrolment/{token}"), choices("abc123")).await;
    assert_eq!((status, e["error"]["field"].as_str()), (422, Some("mobile")), "{e}");
    // The same question twice is refused.
    let mut twice = choices("abc123");
    twice["answers"][1]["question"] = json!(1);
    twice["mobile"] = json!(MOBILE);
    let (status, e) = post(&ts.anon, &format!("/api/v1/enrolment/{token}"), twice).await;
    assert_eq!((status, e["error"]["field"].as_str()), (422, Some("answers")), "{e}");

    let mut ok = choices("abc123");
    ok["mobile"] = json!("+44 7700 900123");
    let (status, sent) = post(&ts.anon, &format!("/api/v1/enrolment/{token}"), ok).await;
    assert_eq!(status, 202, "{sent}");
    assert_eq!(sent["mobile_hint"], "•••• 0123");
    let sms = message(&ts.vsc, MOBILE, "enrolment_code").await;
    assert_eq!(sms.channel, "sms");
    let code = sms_code(&sms.body);
    assert_eq!(get(&ts.anon, &format!("/api/v1/enrolment/{token}")).await.1["step"], "code");

    let (status, session) = post(&ts.anon, &format!("/api/v1/enrolment/{token}/verify"), json!({ "code": code })).await;
    assert_eq!(status, 200, "{session}");
    let me = ts.anon.with_token(session["session"].as_str().unwrap());
    let (status, view) = get(&me, "/api/v1/self").await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["id"], user.id.to_string());
    assert_eq!(view["cards"][0]["serial"], serial.as_str());
    assert_eq!(view["cards"][0]["state"], "active");
    assert_eq!(view["mobile"], MOBILE);
    assert_eq!(view["directory_accounts"][0], json!({ "name": "NHS\\jo.ohara", "state": "active" }));
    assert_eq!(ts.client.card(&serial).await.unwrap().state, "active");

    let done = message(&ts.vsc, email, "setup_complete").await;
    assert!(done.body.contains(&serial));
    let actions: Vec<String> = ts.client.audit(20).await.unwrap().events.into_iter().map(|e| e.action).collect();
    assert!(actions.contains(&"enrolment.completed".to_string()), "{actions:?}");

    // Answers and passcode are stored only as Argon2id hashes.
    let mut conn = ts.vsc.store().conn().await.unwrap();
    let answers = vsc_store::holders::answers(&mut conn, &user.id.to_string()).await.unwrap();
    assert_eq!(answers.len(), 3);
    // Argon2id PHC strings that verify the trimmed, case-folded answers. (Not "contains no `rex`":
    // the base64 salt and hash hold that by chance about once in 1,400 runs.)
    for ((_, h), clear) in answers.iter().zip(["rex", "leeds", "st mary's"]) {
        assert!(h.starts_with("$argon2id$") && h.split('$').count() == 6 && h != clear, "{h}");
        assert!(vsc_crypto::secret::verify(clear, h), "{clear}");
    }
    assert!(vsc_crypto::secret::verify("st mary's", &answers[2].1), "answers are trimmed and case-folded");

    // Sign out ends the session.
    let (status, _) = me.raw(Method::POST, "/api/v1/self/sign-out", None).await.unwrap();
    assert_eq!(status, 204);
    assert_eq!(get(&me, "/api/v1/self").await.0, 401);
}

async fn every_passcode_rule_is_reported_by_the_api(b: Backend) {
    let ts = TestServer::start(b).await;
    let user = holder(&ts.client, "rules@example.nhs.uk", Some(MOBILE)).await;
    issue(&ts.client, &user).await;
    let token = link_token(&message(&ts.vsc, "rules@example.nhs.uk", "invitation").await.body);
    for (passcode, rule) in [
        ("a1", "4 to 8 characters"),
        ("abcd12345", "4 to 8 characters"),
        ("ab-12", "only letters and digits"),
        ("1234", "at least one letter"),
        ("abcd", "at least one digit"),
    ] {
        let (status, e) = post(&ts.anon, &format!("/api/v1/enrolment/{token}"), choices(passcode)).await;
        assert_eq!((status, e["error"]["field"].as_str()), (422, Some("passcode")), "{passcode}: {e}");
        assert!(e["error"]["message"].as_str().unwrap().contains(rule), "{passcode}: {e}");
    }
    assert!(ts.vsc.outbox(Some(MOBILE), 10).await.unwrap().is_empty(), "no code for a refused passcode");
}

async fn a_link_is_single_use_and_concurrent_use_enrols_once(b: Backend) {
    let ts = TestServer::start(b).await;
    let (token, code, serial) = to_code_step(&ts, "race@example.nhs.uk").await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let c = ts.anon.clone();
        let (token, code) = (token.clone(), code.clone());
        tasks.push(tokio::spawn(async move {
            post(&c, &format!("/api/v1/enrolment/{token}/verify"), json!({ "code": code })).await
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap().0);
    }
    statuses.sort();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 200 || *s == 410), "{statuses:?}");
    let mut conn = ts.vsc.store().conn().await.unwrap();
    let sessions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM holder_sessions").fetch_one(&mut *conn).await.unwrap();
    assert_eq!(sessions, 1);
    let done = ts.vsc.outbox(Some("race@example.nhs.uk"), 10).await.unwrap();
    assert_eq!(done.iter().filter(|m| m.kind == "setup_complete").count(), 1);
    assert_eq!(ts.client.card(&serial).await.unwrap().state, "active");

    // Reusing the link afterwards: a clear "already used".
    let (status, e) = get(&ts.anon, &format!("/api/v1/enrolment/{token}")).await;
    assert_eq!((status, e["error"]["code"].as_str()), (410, Some("EN0002LinkUsed")), "{e}");
}

async fn expired_and_replaced_links_are_refused(b: Backend) {
    let clock = Arc::new(ManualClock::default());
    let ts = TestServer::start_with_clock(b, clock.clone()).await;
    let email = "late@example.nhs.uk";
    let user = holder(&ts.client, email, Some(MOBILE)).await;
    let serial = issue(&ts.client, &user).await;
    let first = link_token(&message(&ts.vsc, email, "invitation").await.body);

    // The RA resends: the old link dies, the new one works.
    let (status, _) = ts.client.raw(Method::POST, &format!("/api/v1/cards/{serial}/invitation"), None).await.unwrap();
    assert_eq!(status, 202);
    let mut second = first.clone();
    for _ in 0..100 {
        second = link_token(&message(&ts.vsc, email, "invitation").await.body);
        if second != first {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_ne!(first, second);
    assert_eq!(get(&ts.anon, &format!("/api/v1/enrolment/{first}")).await.0, 404);
    assert_eq!(get(&ts.anon, &format!("/api/v1/enrolment/{second}")).await.0, 200);
    assert_eq!(get(&ts.anon, "/api/v1/enrolment/vse_forged").await.0, 404);

    // Past its expiry (14 days) the link says so and to contact the RA.
    clock.advance(Duration::from_secs(15 * 86400));
    let (status, e) = get(&ts.anon, &format!("/api/v1/enrolment/{second}")).await;
    assert_eq!((status, e["error"]["code"].as_str()), (410, Some("EN0001LinkExpired")), "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("Registration Authority"));
    let (status, _) = post(&ts.anon, &format!("/api/v1/enrolment/{second}"), choices("abc123")).await;
    assert_eq!(status, 410);
}

async fn wrong_codes_void_the_code_and_resend_is_rate_limited(b: Backend) {
    let clock = Arc::new(ManualClock::default());
    let ts = TestServer::start_with_clock(b, clock.clone()).await;
    let (token, code, _) = to_code_step(&ts, "codes@example.nhs.uk").await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for left in (0..5).rev() {
        let (status, e) = post(&ts.anon, &format!("/api/v1/enrolment/{token}/verify"), json!({ "code": wrong })).await;
        assert_eq!((status, e["error"]["field"].as_str()), (422, Some("code")), "{e}");
        if left > 0 {
            assert!(e["error"]["message"].as_str().unwrap().contains(&format!("{left} attempt")), "{e}");
        }
    }
    // Five wrong codes void it: even the right code is refused now (as it is after 10 minutes).
    let (status, e) = post(&ts.anon, &format!("/api/v1/enrolment/{token}/verify"), json!({ "code": code })).await;
    assert_eq!((status, e["error"]["code"].as_str()), (409, Some("ST0001InvalidState")), "{e}");
    // A new code cannot be requested within a minute of the last one.
    let (status, e) = post(&ts.anon, &format!("/api/v1/enrolment/{token}/resend-code"), json!({})).await;
    assert_eq!((status, e["error"]["code"].as_str()), (429, Some("RL0001RateLimited")), "{e}");
    // After the interval a new code works.
    clock.advance(Duration::from_secs(61));
    let (status, _) = post(&ts.anon, &format!("/api/v1/enrolment/{token}/resend-code"), json!({})).await;
    assert_eq!(status, 202);
    let fresh = sms_code(&message(&ts.vsc, MOBILE, "enrolment_code").await.body);
    // Ten minutes void a code too.
    clock.advance(Duration::from_secs(601));
    let (status, e) = post(&ts.anon, &format!("/api/v1/enrolment/{token}/verify"), json!({ "code": fresh })).await;
    assert_eq!((status, e["error"]["code"].as_str()), (409, Some("ST0001InvalidState")), "{e}");
    let (status, _) = post(&ts.anon, &format!("/api/v1/enrolment/{token}/resend-code"), json!({})).await;
    assert_eq!(status, 202);
    let last = sms_code(&message(&ts.vsc, MOBILE, "enrolment_code").await.body);
    let (status, e) = post(&ts.anon, &format!("/api/v1/enrolment/{token}/verify"), json!({ "code": last })).await;
    assert_eq!(status, 200, "{e}");
}

async fn enrolled(ts: &TestServer, email: &str) {
    let (token, code, _) = to_code_step(ts, email).await;
    let (status, _) = post(&ts.anon, &format!("/api/v1/enrolment/{token}/verify"), json!({ "code": code })).await;
    assert_eq!(status, 200);
}

async fn sign_in_never_reveals_which_part_was_wrong_and_locks(b: Backend) {
    let ts = TestServer::start(b).await;
    let email = "signin@example.nhs.uk";
    enrolled(&ts, email).await;

    let (s1, unknown) =
        post(&ts.anon, "/api/v1/self/sign-in", json!({ "email": "nobody@example.nhs.uk", "passcode": "abc123" })).await;
    let (s2, wrong) = post(&ts.anon, "/api/v1/self/sign-in", json!({ "email": email, "passcode": "zzz999" })).await;
    assert_eq!((s1, s2), (401, 401));
    assert_eq!(unknown, wrong, "the answers must not tell an unknown email from a wrong passcode");

    // The right passcode, then the SMS code → a session.
    let (status, started) =
        post(&ts.anon, "/api/v1/self/sign-in", json!({ "email": email.to_uppercase(), "passcode": "abc123" })).await;
    assert_eq!(status, 200, "{started}");
    let code = sms_code(&message(&ts.vsc, MOBILE, "sign_in_code").await.body);
    let id = started["sign_in"].as_str().unwrap();
    let (status, _) = post(&ts.anon, &format!("/api/v1/self/sign-in/{id}/verify"), json!({ "code": "12" })).await;
    assert_eq!(status, 422);
    let (status, session) = post(&ts.anon, &format!("/api/v1/self/sign-in/{id}/verify"), json!({ "code": code })).await;
    assert_eq!(status, 200, "{session}");
    assert_eq!(get(&ts.anon.with_token(session["session"].as_str().unwrap()), "/api/v1/self").await.0, 200);
    // A completed sign-in cannot be used again.
    let (status, _) = post(&ts.anon, &format!("/api/v1/self/sign-in/{id}/verify"), json!({ "code": code })).await;
    assert_eq!(status, 401);

    // Three wrong passcodes in a row (the card's one ledger) lock the card; then even the right
    // passcode gets the answer an unknown email gets, and the holder is emailed.
    for _ in 0..3 {
        let (status, _) = post(&ts.anon, "/api/v1/self/sign-in", json!({ "email": email, "passcode": "zzz999" })).await;
        assert_eq!(status, 401);
    }
    let (status, e) = post(&ts.anon, "/api/v1/self/sign-in", json!({ "email": email, "passcode": "abc123" })).await;
    assert_eq!((status, e.clone()), (401, unknown), "locked, with the same answer");
    message(&ts.vsc, email, "card_locked").await;
    let events = ts.client.audit(50).await.unwrap().events;
    // The first wrong passcode above was cleared by the right one that followed it.
    assert_eq!(events.iter().filter(|e| e.action == "card.passcode_wrong").count(), 4);
    assert!(events.iter().any(|e| e.action == "card.passcode_refused"));
    assert!(events.iter().any(|e| e.action == "holder.signed_in"));
}

async fn reminders_go_once_per_period_and_never_after_expiry(b: Backend) {
    let clock = Arc::new(ManualClock::default());
    let ts = TestServer::start_with_clock(b, clock.clone()).await;
    let a = holder(&ts.client, "slow@example.nhs.uk", Some(MOBILE)).await;
    let serial = issue(&ts.client, &a).await;
    let invited = link_token(&message(&ts.vsc, "slow@example.nhs.uk", "invitation").await.body);
    assert_eq!(ts.vsc.send_reminders().await.unwrap(), 0, "not due yet");

    clock.advance(Duration::from_secs(4 * 86400));
    assert_eq!(ts.vsc.send_reminders().await.unwrap(), 1);
    assert_eq!(ts.vsc.send_reminders().await.unwrap(), 0, "at most once per period");
    let reminder = message(&ts.vsc, "slow@example.nhs.uk", "reminder").await;
    let fresh = link_token(&reminder.body);
    assert_ne!(fresh, invited);
    assert_eq!(get(&ts.anon, &format!("/api/v1/enrolment/{fresh}")).await.0, 200);
    // The invitation's link still works: the holder may open either email.
    assert_eq!(get(&ts.anon, &format!("/api/v1/enrolment/{invited}")).await.0, 200);
    // A second reminder adds another; all three work until one of them is used.
    clock.advance(Duration::from_secs(4 * 86400));
    assert_eq!(ts.vsc.send_reminders().await.unwrap(), 1);
    let mut second = fresh.clone();
    for _ in 0..100 {
        second = link_token(&message(&ts.vsc, "slow@example.nhs.uk", "reminder").await.body);
        if second != fresh {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_ne!(second, fresh);
    for token in [&invited, &fresh, &second] {
        assert_eq!(get(&ts.anon, &format!("/api/v1/enrolment/{token}")).await.0, 200, "{token}");
    }
    // An RA resend replaces them all.
    let (status, _) = ts.client.raw(Method::POST, &format!("/api/v1/cards/{serial}/invitation"), None).await.unwrap();
    assert_eq!(status, 202);
    for token in [&invited, &fresh, &second] {
        assert_eq!(get(&ts.anon, &format!("/api/v1/enrolment/{token}")).await.0, 404, "{token}");
    }

    // Expired links (14 days after the resend) get no reminder.
    clock.advance(Duration::from_secs(15 * 86400));
    assert_eq!(ts.vsc.send_reminders().await.unwrap(), 0);
}

/// Through the service, without a server: an organisation, a holder with a mobile and a V1 card.
async fn holder_with_card(vsc: &Vsc, email: &str) -> (vsc_server::Principal, UserView) {
    vsc.bootstrap("ORG1", "Test Trust", &["example.nhs.uk".into()], "ra@example.nhs.uk", "Rachel Admin").await.unwrap();
    let op = vsc_server::Principal::Operator;
    let request = CreateUserRequest {
        organisation: "ORG1".into(),
        forename: "Kim".into(),
        surname: "Holder".into(),
        email: email.into(),
        mobile: Some(MOBILE.into()),
        subject_cn: None,
        directory_account: None,
    };
    let user = vsc.create_user(&op, &request).await.unwrap();
    let card = vsc_server::service::IssueCard {
        card_type: vsc_core::CardType::V1,
        roles: vec![vsc_core::RoleCode::parse("r", "R8000").unwrap()],
        algorithm: vsc_core::KeyAlgorithm::P256,
    };
    vsc.issue_card(&op, &user.id.to_string(), &card).await.unwrap();
    (op, user)
}

/// A real local HTTP receiver for the SMS gateway, counting what it gets.
async fn sms_receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    sms_receiver_answering(Arc::new(Mutex::new(Vec::new()))).await
}

/// An SMS receiver that answers each request with the next status of `script` (then 200).
async fn sms_receiver_answering(script: Arc<Mutex<Vec<u16>>>) -> (String, Arc<Mutex<Vec<Value>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let store = seen.clone();
    let app = axum::Router::new().route(
        "/sms",
        axum::routing::post(move |axum::Json(v): axum::Json<Value>| {
            let store = store.clone();
            let script = script.clone();
            async move {
                store.lock().unwrap().push(v);
                let status = {
                    let mut s = script.lock().unwrap();
                    if s.is_empty() { 200 } else { s.remove(0) }
                };
                (axum::http::StatusCode::from_u16(status).unwrap(), "answer")
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/sms", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

async fn outbox_survives_a_crash_between_commit_and_send(b: Backend) {
    let (url, seen) = sms_receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = vsc_testkit::test_config(b, dir.path()).await;
    config.sms.url = Some(url);

    // A node commits an SMS and dies before any worker delivers it.
    {
        let vsc = Vsc::open(config.clone(), Arc::new(vsc_server::clock::SystemClock)).await.unwrap();
        holder_with_card(&vsc, "crash@example.nhs.uk").await;
        let invite = vsc.outbox(Some("crash@example.nhs.uk"), 5).await.unwrap();
        let token = link_token(&invite[0].body);
        vsc.submit_enrolment(&token, &serde_json::from_value(choices("abc123")).unwrap()).await.unwrap();
        let pending = vsc.outbox(Some(MOBILE), 5).await.unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].status, "pending");
        vsc.store().close().await;
    }
    assert!(seen.lock().unwrap().is_empty());

    // After restart the worker delivers it, once.
    let ts = TestServer::start_with(config, dir).await;
    for _ in 0..100 {
        if !seen.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let got = seen.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["to"], MOBILE);
    let sent = ts.vsc.outbox(Some(MOBILE), 5).await.unwrap();
    assert_eq!(sent[0].status, "sent");
    let code = sms_code(got[0]["body"].as_str().unwrap());
    assert!(!sent[0].body.contains(&code), "a delivered message's stored body is redacted: {}", sent[0].body);
}

fn verify_token(body: &str) -> String {
    let start = body.find("/self-service/verify-email/").expect("link in body") + "/self-service/verify-email/".len();
    body[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-').collect()
}

async fn holders_confirm_their_email_address(b: Backend) {
    let ts = TestServer::start(b).await;
    let email = "confirm@example.nhs.uk";
    let (token, code, _) = to_code_step(&ts, email).await;
    let (_, session) = post(&ts.anon, &format!("/api/v1/enrolment/{token}/verify"), json!({ "code": code })).await;
    let me = ts.anon.with_token(session["session"].as_str().unwrap());
    assert_eq!(get(&me, "/api/v1/self").await.1["email_verified"], true, "enrolling from the emailed link verifies");

    let mut conn = ts.vsc.store().conn().await.unwrap();
    sqlx::query("UPDATE users SET email_verified_at = NULL").execute(&mut *conn).await.unwrap();
    assert_eq!(get(&me, "/api/v1/self").await.1["email_verified"], false);

    let (status, _) = post(&me, "/api/v1/self/email-verification", json!({})).await;
    assert_eq!(status, 202);
    let (status, e) = post(&me, "/api/v1/self/email-verification", json!({})).await;
    assert_eq!((status, e["error"]["code"].as_str()), (429, Some("RL0001RateLimited")), "{e}");
    let first = verify_token(&message(&ts.vsc, email, "email_verification").await.body);
    assert_eq!(post(&me, "/api/v1/self/email-verification/vsv_forged", json!({})).await.0, 404);
    // Whoever reads the mailbox confirms nothing: the link needs the holder's session.
    let (status, e) = post(&ts.anon, &format!("/api/v1/self/email-verification/{first}"), json!({})).await;
    assert_eq!((status, e["error"]["code"].as_str()), (401, Some("AU0001Unauthenticated")), "{e}");
    assert_eq!(get(&me, "/api/v1/self").await.1["email_verified"], false);
    let (status, ok) = post(&me, &format!("/api/v1/self/email-verification/{first}"), json!({})).await;
    assert_eq!((status, ok["email"].as_str()), (200, Some(email)), "{ok}");
    assert_eq!(get(&me, "/api/v1/self").await.1["email_verified"], true);
    let (status, e) = post(&me, &format!("/api/v1/self/email-verification/{first}"), json!({})).await;
    assert_eq!((status, e["error"]["code"].as_str()), (410, Some("EN0002LinkUsed")), "{e}");

    // The link as the holder opens it: a page in the portal.
    sqlx::query("UPDATE email_verifications SET created_at = created_at - 120").execute(&mut *conn).await.unwrap();
    assert_eq!(post(&me, "/api/v1/self/email-verification", json!({})).await.0, 202);
    let mut second = first.clone();
    for _ in 0..100 {
        second = verify_token(&message(&ts.vsc, email, "email_verification").await.body);
        if second != first {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, page) = ts.anon.raw(Method::GET, &format!("/self-service/verify-email/{second}"), None).await.unwrap();
    assert_eq!(status, 401, "not signed in: {page}");
    assert!(page.contains("Sign in to confirm your email address"), "{page}");
    let (status, page) = me.raw(Method::GET, &format!("/self-service/verify-email/{second}"), None).await.unwrap();
    assert_eq!(status, 200);
    assert!(page.contains("Email address confirmed"), "{page}");
    let (status, page) = me.raw(Method::GET, &format!("/self-service/verify-email/{second}"), None).await.unwrap();
    assert_eq!(status, 410);
    assert!(page.contains("already been used"), "{page}");
    let actions: Vec<String> = ts.client.audit(20).await.unwrap().events.into_iter().map(|e| e.action).collect();
    assert!(actions.contains(&"holder.email_verified".to_string()), "{actions:?}");
}

async fn delivery_retries_with_back_off_and_records_the_outcome(b: Backend) {
    // The gateway fails twice (503: transient), then accepts; a second number gets 400 (permanent).
    let script = Arc::new(Mutex::new(vec![503, 503]));
    let (url, seen) = sms_receiver_answering(script.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = vsc_testkit::test_config(b, dir.path()).await;
    config.sms.url = Some(url);
    let database = config.database_url.clone();
    let vsc = Vsc::open(config, Arc::new(vsc_server::clock::SystemClock)).await.unwrap();
    let (op, user) = holder_with_card(&vsc, "retry@example.nhs.uk").await;
    vsc.deliver_due().await.unwrap(); // the invitation (local email channel)
    let token = link_token(&vsc.outbox(Some("retry@example.nhs.uk"), 5).await.unwrap()[0].body);
    vsc.submit_enrolment(&token, &serde_json::from_value(choices("abc123")).unwrap()).await.unwrap();

    let sms = || async { vsc.outbox(Some(MOBILE), 5).await.unwrap().remove(0) };
    let mut conn = vsc.store().conn().await.unwrap();
    let mut last_delay = 0;
    for attempt in 1..=2 {
        assert_eq!(vsc.deliver_due().await.unwrap(), 1);
        let m = sms().await;
        assert_eq!((m.status.as_str(), m.attempts), ("pending", attempt), "{m:?}");
        assert!(m.last_error.as_deref().unwrap_or_default().contains("503"), "{m:?}");
        // Not due again at once: the next attempt waits, longer each time.
        assert_eq!(vsc.deliver_due().await.unwrap(), 0);
        let (next, created): (i64, i64) =
            sqlx::query_as("SELECT next_attempt_at, created_at FROM outbox WHERE recipient = $1")
                .bind(MOBILE)
                .fetch_one(&mut *conn)
                .await
                .unwrap();
        let delay = next - created;
        assert!(delay > last_delay, "back-off grows: {delay} after {last_delay}");
        last_delay = delay;
        sqlx::query("UPDATE outbox SET next_attempt_at = 0 WHERE recipient = $1")
            .bind(MOBILE)
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    assert_eq!(vsc.deliver_due().await.unwrap(), 1);
    let m = sms().await;
    assert_eq!((m.status.as_str(), m.attempts, m.last_error.as_deref()), ("sent", 3, None), "{m:?}");
    assert_eq!(seen.lock().unwrap().len(), 3);

    // A permanent refusal is not retried.
    script.lock().unwrap().push(400);
    vsc.resend_invitation(&op, &vsc.get_user(&op, &user.id.to_string()).await.unwrap().cards[0].serial).await.unwrap();
    let mut tx_conn = vsc.store().conn().await.unwrap();
    sqlx::query("UPDATE enrolments SET code_sent_at = 0").execute(&mut *tx_conn).await.unwrap();
    drop(tx_conn);
    vsc.deliver_due().await.unwrap();
    let token = link_token(&vsc.outbox(Some("retry@example.nhs.uk"), 5).await.unwrap().last().unwrap().body);
    vsc.submit_enrolment(&token, &serde_json::from_value(choices("abc123")).unwrap()).await.unwrap();
    assert_eq!(vsc.deliver_due().await.unwrap(), 1);
    let failed = vsc.outbox(Some(MOBILE), 5).await.unwrap().pop().unwrap();
    assert_eq!((failed.status.as_str(), failed.attempts), ("failed", 1), "{failed:?}");
    assert!(failed.last_error.as_deref().unwrap_or_default().contains("400"), "{failed:?}");
    sqlx::query("UPDATE outbox SET next_attempt_at = 0").execute(&mut *conn).await.unwrap();
    assert_eq!(vsc.deliver_due().await.unwrap(), 0, "failed messages are not retried");
    drop(conn);
    vsc.store().close().await;
    if let (Some(url), Some(base)) = (database, vsc_testkit::postgres_url()) {
        vsc_store::scratch::drop(&base, &url).await.unwrap();
    }
}
