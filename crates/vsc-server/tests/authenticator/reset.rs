//! Forgotten passcode: reset links (reuse, expiry, replacement, rate limit), the security
//! questions (3 wrong rounds void the link), the second factor by app code and by SMS, the new
//! passcode (unlocks the card, clears the count, ends card sessions), the RA unlock link, and the
//! same answer in about the same time for unknown addresses.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;

use serde_json::{Value, json};
use vsc_client::Client;
use vsc_client::device::Decision;
use vsc_proto::CardLoginRequest;
use vsc_server::{Principal, Vsc};
use vsc_testkit::{Backend, ManualClock, TestServer, on_both_backends};

use crate::devices::{Holder, enrolled_holder, get, message, post, register_device, six_digits};

on_both_backends!(
    a_reset_by_app_code_unlocks_the_card_ends_sessions_and_sets_the_new_passcode,
    links_are_replaced_expire_work_once_and_are_rate_limited_and_sms_is_the_fallback,
    three_wrong_rounds_void_the_link_and_an_ra_unlock_skips_the_questions,
    unknown_addresses_get_the_same_answer_in_about_the_same_time,
    the_portal_walks_a_reset_with_the_sms_code,
    concurrent_wrong_rounds_count_exactly_three,
);

const ANSWERS: [(i64, &str); 3] = [(1, " rex "), (2, "LEEDS"), (3, "Blue")];

fn answers(list: &[(i64, &str)]) -> Value {
    json!({ "answers": list.iter().map(|(q, a)| json!({ "question": q, "answer": a })).collect::<Vec<_>>() })
}

fn login_req(h: &Holder, passcode: &str, method: &str) -> CardLoginRequest {
    CardLoginRequest {
        email: h.email.clone(),
        passcode: Some(passcode.into()),
        method: method.into(),
        client: Some("test client".into()),
    }
}

/// The token of the reset link in the newest email of `kind` to `email`.
async fn link_token(vsc: &Vsc, email: &str, kind: &str) -> String {
    let body = message(vsc, email, kind).await.body;
    let start = body.find("/self-service/reset/").expect("a reset link") + "/self-service/reset/".len();
    body[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-').collect()
}

async fn count(vsc: &Vsc, action: &str) -> usize {
    vsc.audit_log(&Principal::Operator, 1000).await.unwrap().iter().filter(|e| e.action == action).count()
}

async fn sql(vsc: &Vsc, q: &str, id: &str) {
    let mut conn = vsc.store().conn().await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(q.to_string())).bind(id).execute(&mut *conn).await.unwrap();
}

async fn emails(vsc: &Vsc, to: &str, kind: &str) -> usize {
    vsc.outbox(Some(to), 100).await.unwrap().iter().filter(|m| m.kind == kind).count()
}

async fn a_reset_by_app_code_unlocks_the_card_ends_sessions_and_sets_the_new_passcode(b: Backend) {
    let ts = TestServer::start(b).await;
    let h = enrolled_holder(&ts, "reset.app@example.nhs.uk").await;
    let device = register_device(&ts, &h).await;
    let now = vsc_client::device::system_time();

    // A card session opened before the reset.
    let login = ts.anon.card_login(&login_req(&h, &h.passcode, "code")).await.unwrap();
    ts.anon.login_code(&login.login, &device.totp.code_at(now)).await.unwrap();
    let s = ts.anon.open_card_session(&login.login, None).await.unwrap();
    let before: Client = ts.anon.with_token(&s.session);
    before.card_session().await.unwrap();

    // 3 wrong passcodes lock the card; the lock email carries a reset link.
    for wrong in ["wrong1", "wrong2", "wrong3"] {
        assert_eq!(ts.anon.card_login(&login_req(&h, wrong, "code")).await.unwrap_err().status(), Some(401));
    }
    assert_eq!(ts.client.card(&h.serial).await.unwrap().state, "locked");
    let token = link_token(&ts.vsc, &h.email, "card_locked").await;
    let path = format!("/api/v1/self/reset/{token}");

    let (status, view) = get(&ts.anon, &path).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["step"], "questions");
    assert_eq!(view["has_authenticator"], true);
    let ids: Vec<i64> = view["questions"].as_array().unwrap().iter().map(|q| q["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [1, 2, 3]);
    // The second factor waits for the questions.
    assert_eq!(post(&ts.anon, &format!("{path}/second-factor"), json!({})).await.0, 409);

    let (status, view) = post(&ts.anon, &format!("{path}/questions"), answers(&ANSWERS)).await;
    assert_eq!((status, view["step"].as_str()), (200, Some("second_factor")), "{view}");
    let (status, factor) = post(&ts.anon, &format!("{path}/second-factor"), json!({})).await;
    assert_eq!(status, 200, "{factor}");
    assert_eq!((factor["second_factor"].as_str(), factor["state"].as_str()), (Some("push"), Some("pending")));
    assert!(factor["number"].is_u64(), "number matching: {factor}");
    // The push reaches the device, named as a reset.
    let pushes = device.client(&ts).challenges(5).await.unwrap().challenges;
    assert_eq!(pushes.len(), 1);
    assert!(pushes[0].client.contains("reset"), "{:?}", pushes[0].client);
    // A new passcode is refused before the second factor.
    assert_eq!(post(&ts.anon, &format!("{path}/passcode"), json!({ "passcode": "new456" })).await.0, 409);
    // The app code of the next step (each code once) passes the second factor.
    let (status, view) =
        post(&ts.anon, &format!("{path}/second-factor/verify"), json!({ "code": device.totp.code_at(now + 30) })).await;
    assert_eq!((status, view["step"].as_str()), (200, Some("new_passcode")), "{view}");
    let (_, factor) = get(&ts.anon, &format!("{path}/second-factor?wait=0")).await;
    assert_eq!(factor["state"], "approved");

    // The policy applies, and the current passcode is refused.
    let (status, e) = post(&ts.anon, &format!("{path}/passcode"), json!({ "passcode": "abc" })).await;
    assert_eq!(status, 422, "{e}");
    let (status, e) = post(&ts.anon, &format!("{path}/passcode"), json!({ "passcode": h.passcode })).await;
    assert_eq!(status, 422, "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("different"), "{e}");
    let (status, e) = post(&ts.anon, &format!("{path}/passcode"), json!({ "passcode": "new456" })).await;
    assert_eq!(status, 204, "{e}");

    // Unlocked, count cleared, the old session is over, the link is spent, the holder is told.
    assert_eq!(ts.client.card(&h.serial).await.unwrap().state, "active");
    let mut conn = ts.vsc.store().conn().await.unwrap();
    assert_eq!(vsc_store::holders::passcode_failures(&mut conn, &h.user_id).await.unwrap(), 0);
    drop(conn);
    assert_eq!(before.card_session().await.unwrap_err().status(), Some(401), "sessions end at a reset");
    let (status, e) = get(&ts.anon, &path).await;
    assert_eq!((status, e["error"]["code"].as_str()), (410, Some("EN0002LinkUsed")), "{e}");
    let changed = message(&ts.vsc, &h.email, "passcode_changed").await;
    assert!(changed.subject.as_deref().unwrap_or_default().contains("changed"), "{:?}", changed.subject);
    assert_eq!(count(&ts.vsc, "holder.passcode_reset").await, 1);

    // The old passcode no longer works; the new one logs in (push approved on the device).
    assert_eq!(ts.anon.card_login(&login_req(&h, &h.passcode, "push")).await.unwrap_err().status(), Some(401));
    let login = ts.anon.card_login(&login_req(&h, "new456", "push")).await.unwrap();
    let c = device.client(&ts).challenges(5).await.unwrap().challenges.remove(0);
    device.client(&ts).answer(&c.id, &c.nonce, Decision::Approve, login.number).await.unwrap();
    let s = ts.anon.open_card_session(&login.login, None).await.unwrap();
    ts.anon.with_token(&s.session).card_session().await.unwrap();
    ts.stop().await;
}

async fn links_are_replaced_expire_work_once_and_are_rate_limited_and_sms_is_the_fallback(b: Backend) {
    let ts = TestServer::start(b).await;
    let h = enrolled_holder(&ts, "reset.sms@example.nhs.uk").await;
    let mobile = get(&h.client, "/api/v1/self").await.1["mobile"].as_str().unwrap().to_string();
    let request = async || {
        let (status, body) = post(&ts.anon, "/api/v1/self/reset", json!({ "email": h.email.to_uppercase() })).await;
        assert_eq!(status, 202, "{body}");
        body
    };

    request().await;
    let first = link_token(&ts.vsc, &h.email, "passcode_reset").await;
    request().await;
    let second = link_token(&ts.vsc, &h.email, "passcode_reset").await;
    assert_ne!(first, second);
    let (status, e) = get(&ts.anon, &format!("/api/v1/self/reset/{first}")).await;
    assert_eq!((status, e["error"]["code"].as_str()), (410, Some("EN0001LinkExpired")), "replaced: {e}");
    assert_eq!(get(&ts.anon, &format!("/api/v1/self/reset/{second}")).await.0, 200);
    sql(&ts.vsc, "UPDATE passcode_resets SET expires_at = 1 WHERE user_id = $1 AND voided_at IS NULL", &h.user_id)
        .await;
    let (status, e) = get(&ts.anon, &format!("/api/v1/self/reset/{second}")).await;
    assert_eq!(status, 410, "expired: {e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("expired"), "{e}");
    assert_eq!(get(&ts.anon, "/api/v1/self/reset/vrp_nonsense").await.0, 404);

    // The third request of the hour sends a link; the fourth answers alike but sends nothing.
    request().await;
    let token = link_token(&ts.vsc, &h.email, "passcode_reset").await;
    let fourth = request().await;
    assert_eq!(fourth["status"], "accepted");
    assert_eq!(emails(&ts.vsc, &h.email, "passcode_reset").await, 3);
    assert_eq!(count(&ts.vsc, "holder.reset_rate_limited").await, 1);
    assert_eq!(get(&ts.anon, &format!("/api/v1/self/reset/{token}")).await.0, 200, "the limit keeps the live link");

    // No authenticator: the second factor is an SMS code.
    let path = format!("/api/v1/self/reset/{token}");
    let (status, view) = post(&ts.anon, &format!("{path}/questions"), answers(&ANSWERS)).await;
    assert_eq!((status, view["has_authenticator"].as_bool()), (200, Some(false)), "{view}");
    let (status, factor) = post(&ts.anon, &format!("{path}/second-factor"), json!({})).await;
    assert_eq!((status, factor["second_factor"].as_str()), (200, Some("sms")), "{factor}");
    assert_eq!(post(&ts.anon, &format!("{path}/second-factor"), json!({})).await.0, 429, "one code a minute");
    let code = six_digits(&message(&ts.vsc, &mobile, "reset_code").await.body);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (status, e) = post(&ts.anon, &format!("{path}/second-factor/verify"), json!({ "code": wrong })).await;
    assert_eq!(status, 422, "{e}");
    let (status, view) = post(&ts.anon, &format!("{path}/second-factor/verify"), json!({ "code": code })).await;
    assert_eq!((status, view["step"].as_str()), (200, Some("new_passcode")), "{view}");
    assert_eq!(post(&ts.anon, &format!("{path}/passcode"), json!({ "passcode": "zz9x" })).await.0, 204);
    // Used once.
    let (status, _) = post(&ts.anon, &format!("{path}/passcode"), json!({ "passcode": "yy8x" })).await;
    assert_eq!(status, 410);
    let (status, _) = post(&ts.anon, "/api/v1/self/sign-in", json!({ "email": h.email, "passcode": "zz9x" })).await;
    assert_eq!(status, 200, "the portal takes the new passcode");
    ts.stop().await;
}

async fn three_wrong_rounds_void_the_link_and_an_ra_unlock_skips_the_questions(b: Backend) {
    let ts = TestServer::start(b).await;
    let h = enrolled_holder(&ts, "reset.wrong@example.nhs.uk").await;
    post(&ts.anon, "/api/v1/self/reset", json!({ "email": h.email })).await;
    let path = format!("/api/v1/self/reset/{}", link_token(&ts.vsc, &h.email, "passcode_reset").await);
    let wrong = [(1, "rex"), (2, "leeds"), (3, "red")];
    let (status, e) =
        post(&ts.anon, &format!("{path}/questions"), answers(&[(1, "rex"), (2, "leeds"), (4, "x1")])).await;
    assert_eq!(status, 422, "not the holder's questions: {e}");
    for left in [2, 1] {
        let (status, e) = post(&ts.anon, &format!("{path}/questions"), answers(&wrong)).await;
        assert_eq!(status, 422, "{e}");
        assert!(e["error"]["message"].as_str().unwrap().contains(&format!("{left} attempt(s) left")), "{e}");
    }
    let (status, e) = post(&ts.anon, &format!("{path}/questions"), answers(&wrong)).await;
    assert_eq!(status, 403, "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("Registration Authority"), "{e}");
    // Void now, even with the right answers.
    assert_eq!(post(&ts.anon, &format!("{path}/questions"), answers(&ANSWERS)).await.0, 403);
    assert_eq!(get(&ts.anon, &path).await.0, 403);
    assert_eq!(count(&ts.vsc, "holder.reset_questions_failed").await, 3);
    assert_eq!(count(&ts.vsc, "holder.reset_voided").await, 1);

    // The RA's unlock sends a link that goes straight to the second factor (dual control, which
    // makes it a change request first, has its own tests: here the organisation has it off).
    ts.vsc.set_dual_control(&Principal::Operator, "ORG1", false).await.unwrap();
    let (status, card) = post(&ts.client, &format!("/api/v1/cards/{}/unlock", h.serial), json!({})).await;
    assert_eq!(status, 202, "{card}");
    let token = link_token(&ts.vsc, &h.email, "passcode_reset").await;
    let (status, view) = get(&ts.anon, &format!("/api/v1/self/reset/{token}")).await;
    assert_eq!((status, view["step"].as_str()), (200, Some("second_factor")), "{view}");
    assert_eq!(count(&ts.vsc, "card.unlock_link_issued").await, 1);
    assert_eq!(post(&ts.anon, &format!("/api/v1/cards/{}/unlock", h.serial), json!({})).await.0, 401, "RA only");

    // With an authenticator, approving the push on the phone passes the second factor.
    let device = register_device(&ts, &h).await;
    let path = format!("/api/v1/self/reset/{token}");
    let (status, factor) = post(&ts.anon, &format!("{path}/second-factor"), json!({})).await;
    assert_eq!((status, factor["second_factor"].as_str()), (200, Some("push")), "{factor}");
    let again = post(&ts.anon, &format!("{path}/second-factor"), json!({})).await.1;
    assert_eq!(again["number"], factor["number"], "a pending push is reused");
    assert_eq!(post(&ts.anon, &format!("{path}/passcode"), json!({ "passcode": "push77" })).await.0, 409);
    let c = device.client(&ts).challenges(5).await.unwrap().challenges.remove(0);
    let waiting = tokio::spawn({
        let anon = ts.anon.clone();
        let p = format!("{path}/second-factor?wait=10");
        async move { get(&anon, &p).await.1 }
    });
    let number = factor["number"].as_u64().map(|n| n as u8);
    device.client(&ts).answer(&c.id, &c.nonce, Decision::Approve, number).await.unwrap();
    assert_eq!(waiting.await.unwrap()["state"], "approved");
    assert_eq!(get(&ts.anon, &path).await.1["step"], "new_passcode");
    assert_eq!(post(&ts.anon, &format!("{path}/passcode"), json!({ "passcode": "push77" })).await.0, 204);
    ts.stop().await;
}

async fn unknown_addresses_get_the_same_answer_in_about_the_same_time(b: Backend) {
    let clock = Arc::new(ManualClock::default());
    let ts = TestServer::start_with_clock(b, clock.clone()).await;
    let h = enrolled_holder(&ts, "reset.time@example.nhs.uk").await;
    let ask = async |email: &str| {
        let t = Instant::now();
        let (status, body) = post(&ts.anon, "/api/v1/self/reset", json!({ "email": email })).await;
        (status, body, t.elapsed().as_secs_f64())
    };
    let (s1, known, _) = ask(&h.email).await;
    let (s2, unknown, _) = ask("nobody.here@example.nhs.uk").await;
    assert_eq!((s1, s2), (202, 202));
    assert_eq!(known, unknown, "the same body");
    assert_eq!(ask("not an email").await.0, 202);

    let (mut known_s, mut unknown_s) = (Vec::new(), Vec::new());
    for _ in 0..7 {
        // Keep the known address under the hourly limit, so each timed request sends a link.
        clock.advance(Duration::from_secs(2 * 3600));
        known_s.push(ask(&h.email).await.2);
        unknown_s.push(ask("nobody.here@example.nhs.uk").await.2);
    }
    // The fastest of interleaved runs: the work each answer takes, without the noise of the other
    // tests sharing the cores.
    let fastest = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let (k, u) = (fastest(&known_s), fastest(&unknown_s));
    assert!((0.5..2.0).contains(&(k / u)), "known email {k:.4} s vs unknown email {u:.4} s");
    assert_eq!(count(&ts.vsc, "holder.reset_rate_limited").await, 0);
    ts.stop().await;
}

#[tokio::test]
async fn the_reset_routes_are_documented() {
    let doc = serde_json::to_value(vsc_server::api::openapi()).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/api/v1/self/reset", &["post"][..]),
        ("/api/v1/self/reset/{token}", &["get"]),
        ("/api/v1/self/reset/{token}/questions", &["post"]),
        ("/api/v1/self/reset/{token}/second-factor", &["get", "post"]),
        ("/api/v1/self/reset/{token}/second-factor/verify", &["post"]),
        ("/api/v1/self/reset/{token}/passcode", &["post"]),
        ("/api/v1/cards/{serial}/unlock", &["post"]),
    ] {
        for m in methods {
            assert!(paths.get(path).and_then(|p| p.get(*m)).is_some(), "{m} {path} missing from the OpenAPI document");
        }
    }
    assert!(doc["components"]["schemas"]["ResetView"].is_object());
}

/// A browser without JavaScript: a page (or the redirect's location) for a form post with a
/// matching CSRF cookie and field.
async fn page(ts: &TestServer, method: Method, path: &str, form: &[(&str, &str)]) -> (u16, String) {
    const CSRF: &str = "csrf_test_token_0123456789";
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let mut req = http
        .request(method.clone(), format!("{}{path}", ts.url))
        .header(reqwest::header::COOKIE, format!("vsc_csrf={CSRF}"));
    if method == Method::POST {
        let mut fields: Vec<String> = vec![format!("csrf={CSRF}")];
        fields.extend(form.iter().map(|(k, v)| format!("{k}={}", v.replace(' ', "+").replace('@', "%40"))));
        req = req.header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded").body(fields.join("&"));
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let location = r.headers().get(reqwest::header::LOCATION).map(|l| l.to_str().unwrap().to_string());
    (status, location.unwrap_or(r.text().await.unwrap()))
}

async fn the_portal_walks_a_reset_with_the_sms_code(b: Backend) {
    let ts = TestServer::start(b).await;
    let h = enrolled_holder(&ts, "reset.portal@example.nhs.uk").await;
    let mobile = get(&h.client, "/api/v1/self").await.1["mobile"].as_str().unwrap().to_string();
    let (_, sign_in) = page(&ts, Method::GET, "/self-service/sign-in", &[]).await;
    assert!(sign_in.contains("href=\"/self-service/reset\""), "{sign_in}");
    let (status, form) = page(&ts, Method::GET, "/self-service/reset", &[]).await;
    assert!(status == 200 && form.contains("Forgotten your passcode?"), "{form}");
    // The same page for a known and an unknown address.
    let (status, known) = page(&ts, Method::POST, "/self-service/reset", &[("email", &h.email)]).await;
    assert_eq!(status, 200, "{known}");
    let (_, unknown) = page(&ts, Method::POST, "/self-service/reset", &[("email", "ghost@example.nhs.uk")]).await;
    assert_eq!(known, unknown);
    assert!(known.contains("Check your email"), "{known}");

    let token = link_token(&ts.vsc, &h.email, "passcode_reset").await;
    let at = format!("/self-service/reset/{token}");
    let (status, questions) = page(&ts, Method::GET, &at, &[]).await;
    assert_eq!(status, 200, "{questions}");
    assert!(questions.contains("type=\"password\" id=\"answer1\""), "answers are masked: {questions}");
    let wrong = [
        ("question1", "1"),
        ("answer1", "rex"),
        ("question2", "2"),
        ("answer2", "leeds"),
        ("question3", "3"),
        ("answer3", "red"),
    ];
    let (status, again) = page(&ts, Method::POST, &format!("{at}/questions"), &wrong).await;
    assert!(status == 422 && again.contains("2 attempt(s) left"), "{again}");
    let right = [
        ("question1", "1"),
        ("answer1", "Rex"),
        ("question2", "2"),
        ("answer2", "Leeds"),
        ("question3", "3"),
        ("answer3", "blue"),
    ];
    assert_eq!(page(&ts, Method::POST, &format!("{at}/questions"), &right).await, (303, at.clone()));
    let (_, factor) = page(&ts, Method::GET, &at, &[]).await;
    assert!(factor.contains("Send the code"), "{factor}");
    assert_eq!(
        page(&ts, Method::POST, &format!("{at}/second-factor"), &[("action", "start")]).await,
        (303, at.clone())
    );
    let code = six_digits(&message(&ts.vsc, &mobile, "reset_code").await.body);
    assert_eq!(page(&ts, Method::POST, &format!("{at}/second-factor"), &[("code", &code)]).await, (303, at.clone()));
    let (_, form) = page(&ts, Method::GET, &at, &[]).await;
    assert!(form.contains("Choose a new passcode"), "{form}");
    let (status, mismatch) =
        page(&ts, Method::POST, &format!("{at}/passcode"), &[("passcode", "new789"), ("confirm", "new788")]).await;
    assert!(status == 422 && mismatch.contains("different"), "{mismatch}");
    let (status, done) =
        page(&ts, Method::POST, &format!("{at}/passcode"), &[("passcode", "new789"), ("confirm", "new789")]).await;
    assert!(status == 200 && done.contains("Your passcode is changed"), "{done}");
    let (status, used) = page(&ts, Method::GET, &at, &[]).await;
    assert!(status == 410 && used.contains("already been used"), "{used}");
    ts.stop().await;
}

async fn concurrent_wrong_rounds_count_exactly_three(b: Backend) {
    let ts = TestServer::start(b).await;
    let h = enrolled_holder(&ts, "reset.race@example.nhs.uk").await;
    post(&ts.anon, "/api/v1/self/reset", json!({ "email": h.email })).await;
    let path = format!("/api/v1/self/reset/{}/questions", link_token(&ts.vsc, &h.email, "passcode_reset").await);
    let rounds = (0..10).map(|i| {
        let anon = ts.anon.clone();
        let path = path.clone();
        let wrong = format!("wrong {i}");
        tokio::spawn(async move { post(&anon, &path, answers(&[(1, &wrong), (2, "leeds"), (3, "blue")])).await.0 })
    });
    let mut statuses = Vec::new();
    for r in rounds.collect::<Vec<_>>() {
        statuses.push(r.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 422).count(), 2, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 403).count(), 8, "{statuses:?}");
    assert_eq!(count(&ts.vsc, "holder.reset_questions_failed").await, 3, "exactly 3 rounds were checked");
    assert_eq!(count(&ts.vsc, "holder.reset_voided").await, 1);
    ts.stop().await;
}
