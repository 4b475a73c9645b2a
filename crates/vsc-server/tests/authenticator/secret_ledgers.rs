//! One passcode ledger and one second-factor ledger per holder, at every door: replayed as an
//! attacker would — wrong guesses spread over doors and fired concurrently, the right passcode
//! tried on a locked card, wrong codes spread over many challenges — and the sessions that end
//! with the credentials behind them.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use vsc_crypto::device::DeviceKey;
use vsc_proto::CardLoginRequest;
use vsc_server::{Principal, Vsc};
use vsc_testkit::{Backend, ManualClock, TestServer, on_both_backends};

use crate::devices::{
    Holder, TestDevice, device_token, enrolled_holder, get, message, post, register_device, registration,
};

on_both_backends!(
    every_passcode_door_counts_in_one_ledger_and_refuses_the_right_passcode_once_locked,
    concurrent_wrong_guesses_at_each_door_are_counted_exactly,
    unknown_inactive_wrong_and_locked_answer_alike_with_one_hash_each,
    ten_wrong_codes_across_challenges_and_doors_lock_the_cards,
    fifty_concurrent_wrong_codes_at_one_challenge_evaluate_exactly_five,
    portal_sessions_end_when_idle_and_when_contact_details_change,
    a_passwordless_login_for_an_email_without_a_card_gets_a_login_that_expires,
);

fn login_req(email: &str, passcode: &str, method: &str) -> CardLoginRequest {
    CardLoginRequest {
        email: email.into(),
        passcode: Some(passcode.into()),
        method: method.into(),
        client: Some("ledger test".into()),
    }
}

async fn count(vsc: &Vsc, action: &str) -> usize {
    vsc.audit_log(&Principal::Operator, 1000).await.unwrap().iter().filter(|e| e.action == action).count()
}

/// Audit events of `action` whose detail has `"reason": reason`.
async fn count_reason(vsc: &Vsc, action: &str, reason: &str) -> usize {
    let events = vsc.audit_log(&Principal::Operator, 1000).await.unwrap();
    events.iter().filter(|e| e.action == action).filter(|e| e.detail["reason"].as_str() == Some(reason)).count()
}

/// The detail of the newest `holder.passcode_reset` event.
async fn last_reset_detail(vsc: &Vsc) -> Value {
    let events = vsc.audit_log(&Principal::Operator, 1000).await.unwrap();
    events.into_iter().find(|e| e.action == "holder.passcode_reset").unwrap().detail
}

async fn sql(vsc: &Vsc, statement: &str, id: &str) {
    let mut conn = vsc.store().conn().await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(statement.to_string())).bind(id).execute(&mut *conn).await.unwrap();
}

/// `PUT /api/v1/self/questions` with `passcode` → (status, body).
async fn change_questions(h: &Holder, passcode: &str) -> (u16, Value) {
    let body = json!({ "passcode": passcode, "answers": [
        { "question": 1, "answer": "Max" }, { "question": 2, "answer": "York" }, { "question": 3, "answer": "Red" }
    ]});
    let (status, text) = h.client.raw(Method::PUT, "/api/v1/self/questions", Some(&body)).await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// `POST /api/v1/self/sign-in` → (status, body).
async fn portal_sign_in(ts: &TestServer, email: &str, passcode: &str) -> (u16, Value) {
    post(&ts.anon, "/api/v1/self/sign-in", json!({ "email": email, "passcode": passcode })).await
}

/// A wrong 6-digit code for `device` now (none of the accepted steps).
fn wrong_code(device: &TestDevice, salt: u32) -> String {
    let now = now_unix();
    let taken: Vec<String> = (-2..=2).map(|s| device.totp.code_at(now + s * 30)).collect();
    (0..).map(|i: u32| format!("{:06}", (salt * 7919 + i * 104_729) % 1_000_000)).find(|c| !taken.contains(c)).unwrap()
}

/// The real clock (the test server runs on it), for the device's current app code.
fn now_unix() -> i64 {
    vsc_client::device::system_time()
}

/// The wrong codes counted in the holder's second-factor ledger now.
async fn ledger(ts: &TestServer, h: &Holder) -> i64 {
    let mut conn = ts.vsc.store().conn().await.unwrap();
    vsc_store::code_ledger::holder_failures(&mut conn, &h.user_id, now_unix()).await.unwrap()
}

async fn card_state(ts: &TestServer, h: &Holder) -> String {
    ts.client.card(&h.serial).await.unwrap().state
}

async fn every_passcode_door_counts_in_one_ledger_and_refuses_the_right_passcode_once_locked(b: Backend) {
    let ts = TestServer::start(b).await;
    let h = enrolled_holder(&ts, "one.ledger@example.nhs.uk").await;
    register_device(&ts, &h).await;
    let (_, token) = device_token(&ts, &h, "Spare phone").await;

    // One wrong passcode at each of three doors: the third locks the card.
    let (status, wrong_portal) = portal_sign_in(&ts, &h.email, "wrong1").await;
    assert_eq!(status, 401, "{wrong_portal}");
    let (status, body) = change_questions(&h, "wrong2").await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("passcode")), "{body}");
    assert_eq!(card_state(&ts, &h).await, "active");
    let wrong_login = ts.anon.card_login(&login_req(&h.email, "wrong3", "push")).await.unwrap_err();
    assert_eq!(wrong_login.status(), Some(401));
    assert_eq!(card_state(&ts, &h).await, "locked");
    assert_eq!(count(&ts.vsc, "card.passcode_wrong").await, 3);
    assert_eq!(count(&ts.vsc, "card.locked").await, 1);
    let mail = message(&ts.vsc, &h.email, "card_locked").await;
    assert!(mail.body.contains("entered wrongly 3 times"), "{}", mail.body);

    // The lock ended the holder's portal session.
    let (status, _) = get(&h.client, "/api/v1/self").await;
    assert_eq!(status, 401, "the portal session ended with the lock");

    // Every door now refuses the right passcode exactly as a wrong one.
    let (status, right_portal) = portal_sign_in(&ts, &h.email, &h.passcode).await;
    assert_eq!((status, &right_portal), (401, &wrong_portal));
    let right_login = ts.anon.card_login(&login_req(&h.email, &h.passcode, "push")).await.unwrap_err();
    assert_eq!((right_login.status(), right_login.to_string()), (Some(401), wrong_login.to_string()));
    let key = DeviceKey::generate().unwrap();
    let right_reg = post(&ts.anon, "/api/v1/authenticator/register", registration(&token, &key, &h.passcode)).await;
    let wrong_reg = post(&ts.anon, "/api/v1/authenticator/register", registration(&token, &key, "wrong4")).await;
    assert_eq!(right_reg, wrong_reg, "registration answers the right passcode as a wrong one");
    assert!(right_reg.0 >= 400, "{right_reg:?}");
    assert_eq!(count(&ts.vsc, "card.passcode_wrong").await, 3, "no check ran on the locked card");
    assert!(count(&ts.vsc, "card.passcode_refused").await >= 4);
    ts.stop().await;
}

async fn concurrent_wrong_guesses_at_each_door_are_counted_exactly(b: Backend) {
    let ts = TestServer::start(b).await;
    // Portal sign-in: 30 concurrent guesses, 3 evaluated.
    let a = enrolled_holder(&ts, "guess.portal@example.nhs.uk").await;
    let guesses = (0..30).map(|i| {
        let anon = ts.anon.clone();
        let email = a.email.clone();
        tokio::spawn(async move {
            post(&anon, "/api/v1/self/sign-in", json!({ "email": email, "passcode": format!("wrong{i}") })).await
        })
    });
    for g in guesses.collect::<Vec<_>>() {
        assert_eq!(g.await.unwrap().0, 401);
    }
    assert_eq!(count(&ts.vsc, "card.passcode_wrong").await, 3, "exactly 3 portal guesses were evaluated");
    assert_eq!(count(&ts.vsc, "card.passcode_refused").await, 27);
    assert_eq!(card_state(&ts, &a).await, "locked");

    // Changing security questions: 10 concurrent guesses from the holder's session.
    let q = enrolled_holder(&ts, "guess.questions@example.nhs.uk").await;
    let guesses = (0..10).map(|i| {
        let client = q.client.clone();
        tokio::spawn(async move {
            let body = json!({ "passcode": format!("wrong{i}"), "answers": [
                { "question": 1, "answer": "Max" }, { "question": 2, "answer": "York" }, { "question": 3, "answer": "Red" }
            ]});
            client.raw(Method::PUT, "/api/v1/self/questions", Some(&body)).await.unwrap().0
        })
    });
    for g in guesses.collect::<Vec<_>>() {
        assert_eq!(g.await.unwrap(), 422);
    }
    assert_eq!(count(&ts.vsc, "card.passcode_wrong").await, 6, "3 more: the questions door counts too");
    assert_eq!(card_state(&ts, &q).await, "locked");

    // Device registration: 10 concurrent guesses with one registration token.
    let r = enrolled_holder(&ts, "guess.device@example.nhs.uk").await;
    let (_, token) = device_token(&ts, &r, "Phone").await;
    let guesses = (0..10).map(|i| {
        let anon = ts.anon.clone();
        let token = token.clone();
        tokio::spawn(async move {
            let key = DeviceKey::generate().unwrap();
            post(&anon, "/api/v1/authenticator/register", registration(&token, &key, &format!("wrong{i}"))).await.0
        })
    });
    for g in guesses.collect::<Vec<_>>() {
        assert!(g.await.unwrap() >= 400);
    }
    assert_eq!(count(&ts.vsc, "card.passcode_wrong").await, 9, "3 more at device registration");
    assert_eq!(card_state(&ts, &r).await, "locked");

    // Blocking the card: 10 concurrent guesses from the holder's session (those after the lock
    // find the session ended).
    let k = enrolled_holder(&ts, "guess.block@example.nhs.uk").await;
    let guesses = (0..10).map(|i| {
        let client = k.client.clone();
        tokio::spawn(async move { client.self_block(&format!("wrong{i}")).await.unwrap_err().status() })
    });
    for g in guesses.collect::<Vec<_>>() {
        assert!(matches!(g.await.unwrap(), Some(401 | 422)));
    }
    assert_eq!(count(&ts.vsc, "card.passcode_wrong").await, 12, "3 more at the block door");
    assert_eq!(card_state(&ts, &k).await, "locked");
    assert_eq!(count(&ts.vsc, "card.locked").await, 4);
    ts.stop().await;
}

async fn unknown_inactive_wrong_and_locked_answer_alike_with_one_hash_each(b: Backend) {
    let ts = TestServer::start(b).await;
    let wrong = enrolled_holder(&ts, "alike.wrong@example.nhs.uk").await;
    register_device(&ts, &wrong).await;
    let suspended = enrolled_holder(&ts, "alike.suspended@example.nhs.uk").await;
    register_device(&ts, &suspended).await;
    ts.client.suspend_card(&suspended.serial, "lost phone").await.unwrap();
    let locked = enrolled_holder(&ts, "alike.locked@example.nhs.uk").await;
    register_device(&ts, &locked).await;
    sql(&ts.vsc, "UPDATE cards SET state = 'locked' WHERE user_id = $1", &locked.user_id).await;

    let cases = [
        ("unknown email", "nobody.here@example.nhs.uk", "abc123"),
        ("wrong passcode", wrong.email.as_str(), "wrong1"),
        ("suspended card, right passcode", suspended.email.as_str(), suspended.passcode.as_str()),
        ("locked card, right passcode", locked.email.as_str(), locked.passcode.as_str()),
    ];
    let (mut portal_answers, mut login_answers) = (Vec::new(), Vec::new());
    for (case, email, passcode) in cases {
        let before = ts.vsc.hashes_run();
        portal_answers.push(portal_sign_in(&ts, email, passcode).await);
        assert_eq!(ts.vsc.hashes_run() - before, 1, "portal sign-in, {case}: one Argon2id check");
        let before = ts.vsc.hashes_run();
        let e = ts.anon.card_login(&login_req(email, passcode, "push")).await.unwrap_err();
        login_answers.push((e.status(), e.to_string()));
        assert_eq!(ts.vsc.hashes_run() - before, 1, "card login, {case}: one Argon2id check");
    }
    assert!(portal_answers.iter().all(|a| a == &portal_answers[0]), "{portal_answers:?}");
    assert_eq!(portal_answers[0].0, 401);
    assert!(login_answers.iter().all(|a| a == &login_answers[0]), "{login_answers:?}");
    assert_eq!(login_answers[0].0, Some(401));
    // A right passcode is one check too, and clears the wrong one counted above.
    let before = ts.vsc.hashes_run();
    let (status, _) = portal_sign_in(&ts, &wrong.email, &wrong.passcode).await;
    assert_eq!((status, ts.vsc.hashes_run() - before), (200, 1));
    ts.stop().await;
}

/// Start a code login with the right passcode; `None` once the card login is refused.
async fn code_login(ts: &TestServer, h: &Holder) -> Option<String> {
    ts.anon.card_login(&login_req(&h.email, &h.passcode, "code")).await.ok().map(|l| l.login)
}

async fn ten_wrong_codes_across_challenges_and_doors_lock_the_cards(b: Backend) {
    let ts = TestServer::start(b).await;
    let h = enrolled_holder(&ts, "codes.ledger@example.nhs.uk").await;
    let device = register_device(&ts, &h).await;
    let card_session = {
        let login = code_login(&ts, &h).await.unwrap();
        ts.anon.login_code(&login, &device.totp.code_at(now_unix())).await.unwrap();
        ts.anon.open_card_session(&login, None).await.unwrap().session
    };

    // 4 wrong app codes at portal sign-in (a push sign-in answered by code).
    let (status, started) = portal_sign_in(&ts, &h.email, &h.passcode).await;
    assert_eq!((status, started["second_factor"].as_str()), (200, Some("push")), "{started}");
    let id = started["sign_in"].as_str().unwrap().to_string();
    for i in 0..4 {
        let path = format!("/api/v1/self/sign-in/{id}/verify");
        let (status, body) = post(&ts.anon, &path, json!({ "code": wrong_code(&device, i) })).await;
        assert_eq!((status, body["error"]["field"].as_str()), (422, Some("code")), "{body}");
    }
    // Then code logins, 5 wrong codes each, as long as the passcode still starts one: the
    // attacker knows the passcode and tries 12 logins.
    let mut wrong_codes = 4;
    let mut last = None;
    for _ in 0..12 {
        let Some(login) = code_login(&ts, &h).await else { break };
        for i in 0..5 {
            let e = ts.anon.login_code(&login, &wrong_code(&device, 100 + wrong_codes)).await.unwrap_err();
            wrong_codes += 1;
            last = Some(e.to_string());
            if i == 4 || e.to_string().contains("locked") {
                break;
            }
        }
        if card_state(&ts, &h).await == "locked" {
            break;
        }
    }
    assert_eq!(wrong_codes, 10, "the 10th wrong code within 24 h locked the card");
    assert!(last.unwrap().contains("card is locked"));
    assert_eq!(card_state(&ts, &h).await, "locked");
    assert_eq!(count(&ts.vsc, "holder.second_factor_locked").await, 1);
    let mail = message(&ts.vsc, &h.email, "card_locked").await;
    assert!(
        mail.body.contains("Wrong codes were entered") && !mail.body.contains("/self-service/reset/"),
        "{}",
        mail.body
    );
    // The lock ended the card session and the portal sessions.
    assert_eq!(ts.anon.with_token(&card_session).card_session().await.unwrap_err().status(), Some(401));
    assert_eq!(get(&h.client, "/api/v1/self").await.0, 401);
    // Nothing more is evaluated: the right passcode starts no login, no code is checked.
    assert!(code_login(&ts, &h).await.is_none());
    let now = now_unix();
    let (status, _) =
        post(&ts.anon, &format!("/api/v1/self/sign-in/{id}/verify"), json!({ "code": device.totp.code_at(now) })).await;
    assert_eq!(status, 422, "the holder's limit refuses even the right code");
    assert_eq!(count_reason(&ts.vsc, "card.login_code_refused", "wrong code").await, 6);

    // An RA unlock (dual control off here) clears the ledger; the reset link then works with a code.
    ts.vsc.set_dual_control(&Principal::Operator, "ORG1", false).await.unwrap();
    let (status, body) = post(&ts.client, &format!("/api/v1/cards/{}/unlock", h.serial), json!({})).await;
    assert!(status < 300, "{body}");
    assert_eq!(ledger(&ts, &h).await, 0);
    ts.stop().await;
}

async fn fifty_concurrent_wrong_codes_at_one_challenge_evaluate_exactly_five(b: Backend) {
    let ts = TestServer::start(b).await;
    let h = enrolled_holder(&ts, "codes.race@example.nhs.uk").await;
    let device = register_device(&ts, &h).await;
    let login = code_login(&ts, &h).await.unwrap();
    let tries = (0..50).map(|i| {
        let anon = ts.anon.clone();
        let login = login.clone();
        let code = wrong_code(&device, i);
        tokio::spawn(async move { anon.login_code(&login, &code).await })
    });
    for t in tries.collect::<Vec<_>>() {
        let e = t.await.unwrap().unwrap_err();
        assert!(matches!(e.status(), Some(409 | 422)), "{e}");
    }
    assert_eq!(count_reason(&ts.vsc, "card.login_code_refused", "wrong code").await, 5, "exactly 5 evaluated");
    assert_eq!(ledger(&ts, &h).await, 5);
    assert_eq!(ts.anon.login_state(&login, 0).await.unwrap().state, "denied");
    assert_eq!(card_state(&ts, &h).await, "active", "5 wrong codes void the challenge, not the card");
    // The right code at a new login is accepted and gives its reservation back.
    let next = code_login(&ts, &h).await.unwrap();
    ts.anon.login_code(&next, &device.totp.code_at(now_unix())).await.unwrap();
    assert_eq!(ledger(&ts, &h).await, 5);
    ts.stop().await;
}

async fn portal_sessions_end_when_idle_and_when_contact_details_change(b: Backend) {
    let clock = Arc::new(ManualClock::default());
    let ts = TestServer::start_with_clock(b, clock.clone()).await;
    ts.vsc.set_dual_control(&Principal::Operator, "ORG1", false).await.unwrap();

    // An RA change of the mobile number ends the holder's sessions.
    let m = enrolled_holder(&ts, "sessions.mobile@example.nhs.uk").await;
    let path = format!("/api/v1/users/{}", m.user_id);
    let (status, text) =
        ts.client.raw(Method::PATCH, &path, Some(&json!({ "mobile": "+447700900999" }))).await.unwrap();
    assert_eq!(status, 200, "{text}");
    assert_eq!(get(&m.client, "/api/v1/self").await.0, 401, "mobile change ended the session");

    // So does an email change.
    let e = enrolled_holder(&ts, "sessions.email@example.nhs.uk").await;
    let path = format!("/api/v1/users/{}", e.user_id);
    let body = json!({ "email": "sessions.new@example.nhs.uk" });
    let (status, text) = ts.client.raw(Method::PATCH, &path, Some(&body)).await.unwrap();
    assert_eq!(status, 200, "{text}");
    assert_eq!(get(&e.client, "/api/v1/self").await.0, 401, "email change ended the session");

    // So does a new passcode (here chosen on the holder's authenticator).
    let r = enrolled_holder(&ts, "sessions.reset@example.nhs.uk").await;
    let device = register_device(&ts, &r).await;
    assert_eq!(get(&r.client, "/api/v1/self").await.0, 200);
    device.client(&ts).reset_passcode("new123", None).await.unwrap();
    assert_eq!(get(&r.client, "/api/v1/self").await.0, 401, "a new passcode ended the session");
    assert_eq!(last_reset_detail(&ts.vsc).await["portal_sessions_ended"], 1);

    // A session unused for 31 minutes (portal.idle_minutes is 30) ends; one used meanwhile lives.
    let idle = enrolled_holder(&ts, "sessions.idle@example.nhs.uk").await;
    let busy = enrolled_holder(&ts, "sessions.busy@example.nhs.uk").await;
    for _ in 0..2 {
        clock.advance(Duration::from_secs(16 * 60));
        assert_eq!(get(&busy.client, "/api/v1/self").await.0, 200);
    }
    assert_eq!(get(&idle.client, "/api/v1/self").await.0, 401, "idle session ended");
    ts.stop().await;
}

async fn a_passwordless_login_for_an_email_without_a_card_gets_a_login_that_expires(b: Backend) {
    let clock = Arc::new(ManualClock::default());
    let ts = TestServer::start_with_clock(b, clock.clone()).await;
    ts.vsc.set_push_only(&Principal::Operator, "ORG1", true).await.unwrap();
    let h = enrolled_holder(&ts, "real.pushonly@example.nhs.uk").await;
    let device = register_device(&ts, &h).await;
    let no_device = enrolled_holder(&ts, "nodevice.pushonly@example.nhs.uk").await;
    let passwordless = |email: &str| CardLoginRequest {
        email: email.into(),
        passcode: None,
        method: "push".into(),
        client: Some("ledger test".into()),
    };
    // The domain's organisation is push-only: a real holder, a holder without an authenticator and
    // an unknown address in the same domain all get a login id, a number and an expiry.
    let real = ts.anon.card_login(&passwordless(&h.email)).await.unwrap();
    let unknown = ts.anon.card_login(&passwordless("nobody.pushonly@example.nhs.uk")).await.unwrap();
    let nothing = ts.anon.card_login(&passwordless(&no_device.email)).await.unwrap();
    for view in [&real, &unknown, &nothing] {
        assert!(view.login.starts_with("vcl_") && view.login.len() == real.login.len(), "{view:?}");
        assert_eq!((view.method.as_str(), view.number.is_some()), ("push", true), "{view:?}");
    }
    // While pending they read alike (no card serial before approval).
    for v in [&real, &unknown, &nothing] {
        let s = ts.anon.login_state(&v.login, 0).await.unwrap();
        assert_eq!((s.state.as_str(), s.card.as_deref(), s.roles.is_some()), ("pending", None, false), "{s:?}");
    }
    // A session is refused alike; codes typed for a decoy are counted like a real login's.
    let e_real = ts.anon.open_card_session(&real.login, None).await.unwrap_err();
    let e_decoy = ts.anon.open_card_session(&unknown.login, None).await.unwrap_err();
    assert_eq!((e_real.status(), e_real.to_string()), (e_decoy.status(), e_decoy.to_string()));
    let e = ts.anon.login_code(&unknown.login, "123456").await.unwrap_err();
    assert_eq!(e.status(), Some(422));
    assert!(e.to_string().contains("4 attempt(s) left"), "{e}");
    // Only the real holder's device hears of a login.
    assert_eq!(device.client(&ts).challenges(0).await.unwrap().challenges.len(), 1);
    // The decoy expires as a real login does.
    clock.advance(Duration::from_secs(121));
    for v in [&real, &nothing] {
        assert_eq!(ts.anon.login_state(&v.login, 0).await.unwrap().state, "expired");
    }
    ts.stop().await;
}
