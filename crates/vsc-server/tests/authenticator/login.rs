//! Card login: push, number matching, code and QR fallbacks, lockout, sessions and tickets.

use std::time::{Duration, Instant};

use serde_json::json;
use vsc_client::Client;
use vsc_client::device::Decision;
use vsc_proto::{CardLoginRequest, CardLoginView, ChallengeView};
use vsc_server::{Principal, Vsc};
use vsc_testkit::{Backend, TestServer, on_both_backends};

use crate::devices::{Holder, TestDevice, enrolled_holder, post, register_device};

on_both_backends!(
    a_push_login_with_the_right_number_opens_a_session_whose_ticket_validates_once,
    denials_wrong_numbers_and_replays_are_refused_and_audited,
    another_devices_signature_and_expired_challenges_are_refused,
    the_code_fallback_accepts_each_code_once,
    unknown_email_and_wrong_passcode_answer_alike,
    fifty_concurrent_wrong_passcodes_count_exactly_three_and_lock_the_card,
    a_qr_login_is_scanned_and_approved,
    push_only_policy_and_push_throttling,
    tickets_are_refused_after_logout_and_for_locked_cards,
);

fn login_req(h: &Holder, passcode: Option<&str>, method: &str) -> CardLoginRequest {
    CardLoginRequest {
        email: h.email.clone(),
        passcode: passcode.map(String::from),
        method: method.into(),
        client: Some("test client".into()),
    }
}

/// Start a push login and have `device` receive it → (login, challenge).
async fn push(ts: &TestServer, h: &Holder, device: &TestDevice) -> (CardLoginView, ChallengeView) {
    let login = ts.anon.card_login(&login_req(h, Some(&h.passcode), "push")).await.unwrap();
    let mut list = device.client(ts).challenges(5).await.unwrap().challenges;
    assert_eq!(list.len(), 1, "{list:?}");
    (login, list.remove(0))
}

async fn count(vsc: &Vsc, action: &str) -> usize {
    vsc.audit_log(&Principal::Operator, 1000).await.unwrap().iter().filter(|e| e.action == action).count()
}

async fn set(vsc: &Vsc, sql: &str, id: &str) {
    let mut conn = vsc.store().conn().await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).bind(id).execute(&mut *conn).await.unwrap();
}

async fn a_push_login_with_the_right_number_opens_a_session_whose_ticket_validates_once(b: Backend) {
    let ts = TestServer::start(b).await;
    let h = enrolled_holder(&ts, "push.one@example.nhs.uk").await;
    let device = register_device(&ts, &h).await;
    let dc = device.client(&ts);

    // The device is already waiting when the login starts: it hears at once.
    let waiting = tokio::spawn({
        let dc = dc.clone();
        async move {
            let list = dc.challenges(10).await.unwrap();
            (list, Instant::now())
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let login = ts.anon.card_login(&login_req(&h, Some(&h.passcode), "push")).await.unwrap();
    let started = Instant::now();
    let (list, heard) = waiting.await.unwrap();
    assert!(heard.duration_since(started) < Duration::from_secs(2), "delivered at once");
    let c = &list.challenges[0];
    let number = login.number.expect("number matching is on by default");
    let choices = c.choices.clone().unwrap();
    assert_eq!(choices.len(), 3);
    assert!(choices.contains(&number), "{choices:?} holds {number}");
    assert_eq!(
        (c.client.as_str(), c.ip.as_str(), c.card.as_deref()),
        ("test client", "127.0.0.1", Some(h.serial.as_str()))
    );

    let state = ts.anon.login_state(&login.login, 0).await.unwrap();
    assert_eq!(state.state, "pending");
    // The client long-polls while the holder answers.
    let polling = tokio::spawn({
        let anon = ts.anon.clone();
        let l = login.login.clone();
        async move { anon.login_state(&l, 10).await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let outcome = dc.answer(&c.id, &c.nonce, Decision::Approve, Some(number)).await.unwrap();
    assert_eq!(outcome.state, "approved");
    let state = polling.await.unwrap();
    assert_eq!(state.state, "approved");
    assert_eq!(state.approved_by.as_deref(), Some("push"));
    assert_eq!(state.roles.unwrap().iter().map(|r| r.code.as_str()).collect::<Vec<_>>(), ["R8000"]);

    let session = ts.anon.open_card_session(&login.login, None).await.unwrap();
    assert_eq!((session.role.as_str(), session.card.as_str()), ("R8000", h.serial.as_str()));
    let again = ts.anon.open_card_session(&login.login, None).await.unwrap_err();
    assert_eq!(again.status(), Some(410), "a login opens one session");
    let sc = ts.anon.with_token(&session.session);
    let status = sc.card_session().await.unwrap();
    assert_eq!(
        (status.card.as_str(), status.method.as_str(), status.email.as_str()),
        (h.serial.as_str(), "push", h.email.as_str())
    );

    let app = ts.vsc.create_app("ehr").await.unwrap();
    let other = ts.vsc.create_app("rota").await.unwrap();
    assert_eq!(ts.vsc.create_app("ehr").await.unwrap_err().to_string(), "an app named ehr exists already");
    let ticket = sc.card_ticket("ehr").await.unwrap().ticket;
    let wrong_app = ts.anon.with_token(&other.key).validate_ticket(&ticket).await.unwrap_err();
    assert!(wrong_app.to_string().contains("another app"), "{wrong_app}");
    let bad_key = ts.anon.with_token("vra_nope").validate_ticket(&ticket).await.unwrap_err();
    assert_eq!(bad_key.status(), Some(401));
    let who = ts.anon.with_token(&app.key).validate_ticket(&ticket).await.unwrap();
    assert_eq!(
        (who.user_id.as_str(), who.card_serial.as_str(), who.role.as_str()),
        (h.user_id.as_str(), h.serial.as_str(), "R8000")
    );
    assert_eq!((who.organisation.code.as_str(), who.forename.as_str()), ("ORG1", "Jo"));
    assert!(who.display_name.to_uppercase().starts_with("JO O'HARA ("), "{}", who.display_name);
    let reused = ts.anon.with_token(&app.key).validate_ticket(&ticket).await.unwrap_err();
    assert!(reused.to_string().contains("used already"), "{reused}");
    assert_eq!(count(&ts.vsc, "card.session_opened").await, 1);
    assert_eq!(count(&ts.vsc, "card.ticket_validated").await, 1);

    sc.card_logout().await.unwrap();
    assert_eq!(sc.card_session().await.unwrap_err().status(), Some(401));
    ts.stop().await;
}

async fn denials_wrong_numbers_and_replays_are_refused_and_audited(b: Backend) {
    let ts = TestServer::start(b).await;
    let h = enrolled_holder(&ts, "deny.one@example.nhs.uk").await;
    let device = register_device(&ts, &h).await;
    let dc = device.client(&ts);

    // No.
    let (login, c) = push(&ts, &h, &device).await;
    assert_eq!(dc.answer(&c.id, &c.nonce, Decision::Deny, None).await.unwrap().state, "denied");
    assert_eq!(ts.anon.login_state(&login.login, 0).await.unwrap().state, "denied");
    assert_eq!(ts.anon.open_card_session(&login.login, None).await.unwrap_err().status(), Some(409));
    // A replayed answer (even a different decision) is refused.
    let replay = dc.answer(&c.id, &c.nonce, Decision::Approve, login.number).await.unwrap_err();
    assert_eq!(replay.status(), Some(409), "{replay}");

    // Yes with the wrong number denies: approve-by-habit does not log anyone in.
    let (login, c) = push(&ts, &h, &device).await;
    let n = login.number.unwrap();
    let wrong = c.choices.unwrap().into_iter().find(|x| *x != n).unwrap();
    assert_eq!(dc.answer(&c.id, &c.nonce, Decision::Approve, Some(wrong)).await.unwrap().state, "denied");
    assert_eq!(ts.anon.login_state(&login.login, 0).await.unwrap().state, "denied");

    // A wrong nonce does not verify.
    let (_, c) = push(&ts, &h, &device).await;
    let bad = dc.answer(&c.id, "00", Decision::Approve, login.number).await.unwrap_err();
    assert_eq!(bad.status(), Some(401), "{bad}");
    assert!(count(&ts.vsc, "card.login_answer_refused").await >= 2);
    assert_eq!(count(&ts.vsc, "card.login_denied").await, 2);
    ts.stop().await;
}

async fn another_devices_signature_and_expired_challenges_are_refused(b: Backend) {
    let ts = TestServer::start(b).await;
    let h = enrolled_holder(&ts, "other.dev@example.nhs.uk").await;
    let mine = register_device(&ts, &h).await;
    let second = register_device(&ts, &h).await;
    let stranger = enrolled_holder(&ts, "stranger@example.nhs.uk").await;
    let theirs = register_device(&ts, &stranger).await;

    let (login, c) = push(&ts, &h, &mine).await;
    // Both of the holder's devices see the challenge.
    assert_eq!(second.client(&ts).challenges(0).await.unwrap().challenges.len(), 1);
    // Device 2 authenticates but presents a signature by device 1's key... made over another
    // decision: the server checks the signature with the authenticating device's key.
    let forged = vsc_client::DeviceClient::new(
        &ts.url,
        &second.id,
        vsc_crypto::device::DeviceKey::from_pkcs8(mine.key.pkcs8()).unwrap(),
    );
    let e = forged.answer(&c.id, &c.nonce, Decision::Approve, login.number).await.unwrap_err();
    assert_eq!(e.status(), Some(401), "a token signed by another key is refused: {e}");
    // Another holder's device cannot see or answer it.
    let e = theirs.client(&ts).answer(&c.id, &c.nonce, Decision::Approve, login.number).await.unwrap_err();
    assert_eq!(e.status(), Some(404), "{e}");
    assert!(theirs.client(&ts).challenges(0).await.unwrap().challenges.is_empty());
    assert_eq!(count(&ts.vsc, "card.login_answer_refused").await, 1);

    // After expiry the answer is refused and the login reads expired.
    set(&ts.vsc, "UPDATE card_logins SET expires_at = created_at - 1 WHERE id = $1", &c.id).await;
    let e = mine.client(&ts).answer(&c.id, &c.nonce, Decision::Approve, login.number).await.unwrap_err();
    assert_eq!(e.status(), Some(409), "{e}");
    assert_eq!(ts.anon.login_state(&login.login, 0).await.unwrap().state, "expired");
    assert!(mine.client(&ts).challenges(0).await.unwrap().challenges.is_empty(), "expired challenges are not offered");
    assert_eq!(count(&ts.vsc, "card.login_answer_refused").await, 2);
    ts.stop().await;
}

async fn the_code_fallback_accepts_each_code_once(b: Backend) {
    let ts = TestServer::start(b).await;
    let h = enrolled_holder(&ts, "code.one@example.nhs.uk").await;
    let device = register_device(&ts, &h).await;
    let login = ts.anon.card_login(&login_req(&h, Some(&h.passcode), "code")).await.unwrap();
    assert_eq!(login.number, None);
    assert!(device.client(&ts).challenges(0).await.unwrap().challenges.is_empty(), "code logins push nothing");
    let now = vsc_client::device::system_time();
    let e = ts.anon.login_code(&login.login, "000000").await.unwrap_err();
    if device.totp.code_at(now) != "000000" {
        assert_eq!(e.status(), Some(422), "{e}");
    }
    let code = device.totp.code_at(now);
    let state = ts.anon.login_code(&login.login, &code).await.unwrap();
    assert_eq!((state.state.as_str(), state.approved_by.as_deref()), ("approved", Some("code")));
    ts.anon.open_card_session(&login.login, Some("R8000")).await.unwrap();

    // The same code cannot approve a second login.
    let second = ts.anon.card_login(&login_req(&h, Some(&h.passcode), "code")).await.unwrap();
    let e = ts.anon.login_code(&second.login, &code).await.unwrap_err();
    assert!(e.to_string().contains("used already"), "{e}");
    // 5 wrong codes deny the login.
    for _ in 0..4 {
        let _ = ts.anon.login_code(&second.login, "12345x").await;
    }
    assert_eq!(ts.anon.login_state(&second.login, 0).await.unwrap().state, "denied");
    ts.stop().await;
}

async fn unknown_email_and_wrong_passcode_answer_alike(b: Backend) {
    let ts = TestServer::start(b).await;
    let h = enrolled_holder(&ts, "alike@example.nhs.uk").await;
    register_device(&ts, &h).await;
    let wrong = ts.anon.card_login(&login_req(&h, Some("wrong1"), "push")).await.unwrap_err();
    let mut ghost = login_req(&h, Some(&h.passcode), "push");
    ghost.email = "nobody@example.nhs.uk".into();
    let unknown = ts.anon.card_login(&ghost).await.unwrap_err();
    assert_eq!(wrong.status(), Some(401));
    assert_eq!(wrong.to_string(), unknown.to_string(), "the same answer");
    let bad_method = ts.anon.card_login(&login_req(&h, Some(&h.passcode), "sms")).await.unwrap_err();
    assert_eq!(bad_method.status(), Some(422));
    // About the same time: one Argon2id verification either way.
    let (mut wrong_ms, mut unknown_ms) = (Vec::new(), Vec::new());
    for _ in 0..7 {
        let t = Instant::now();
        ts.anon.card_login(&login_req(&h, Some("wrong1"), "code")).await.unwrap_err();
        wrong_ms.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        ts.anon.card_login(&ghost).await.unwrap_err();
        unknown_ms.push(t.elapsed().as_secs_f64());
        // A right passcode clears the count, so the wrong ones never lock.
        ts.anon.card_login(&login_req(&h, Some(&h.passcode), "code")).await.unwrap();
    }
    // The fastest of interleaved runs: the work each answer takes, without the noise of the other
    // tests sharing the cores.
    let fastest = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let (w, u) = (fastest(&wrong_ms), fastest(&unknown_ms));
    assert!((0.5..2.0).contains(&(w / u)), "wrong passcode {w:.4} s vs unknown email {u:.4} s");
    // A right passcode clears the count.
    ts.anon.card_login(&login_req(&h, Some(&h.passcode), "code")).await.unwrap();
    ts.anon.card_login(&login_req(&h, Some("wrong1"), "code")).await.unwrap_err();
    ts.anon.card_login(&login_req(&h, Some("wrong2"), "code")).await.unwrap_err();
    ts.anon.card_login(&login_req(&h, Some(&h.passcode), "code")).await.unwrap();
    assert_eq!(ts.client.card(&h.serial).await.unwrap().state, "active");
    ts.stop().await;
}

async fn fifty_concurrent_wrong_passcodes_count_exactly_three_and_lock_the_card(b: Backend) {
    let ts = TestServer::start(b).await;
    let h = enrolled_holder(&ts, "lock.one@example.nhs.uk").await;
    register_device(&ts, &h).await;
    let attempts = (0..50).map(|i| {
        let anon = ts.anon.clone();
        let req = login_req(&h, Some(&format!("wrong{i}")), "push");
        tokio::spawn(async move { anon.card_login(&req).await })
    });
    for a in attempts.collect::<Vec<_>>() {
        assert_eq!(a.await.unwrap().unwrap_err().status(), Some(401));
    }
    assert_eq!(count(&ts.vsc, "card.passcode_wrong").await, 3, "exactly 3 passcode checks ran");
    assert_eq!(count(&ts.vsc, "card.passcode_refused").await, 47);
    assert_eq!(count(&ts.vsc, "card.locked").await, 1);
    assert_eq!(ts.client.card(&h.serial).await.unwrap().state, "locked");
    // The right passcode is now refused too, without a check.
    let e = ts.anon.card_login(&login_req(&h, Some(&h.passcode), "push")).await.unwrap_err();
    assert_eq!(e.status(), Some(401));
    assert_eq!(count(&ts.vsc, "card.passcode_wrong").await, 3);
    let mail = crate::devices::message(&ts.vsc, &h.email, "card_locked").await;
    assert!(mail.body.contains("locked"), "{}", mail.body);
    ts.stop().await;
}

async fn a_qr_login_is_scanned_and_approved(b: Backend) {
    let ts = TestServer::start(b).await;
    let h = enrolled_holder(&ts, "qr.one@example.nhs.uk").await;
    let device = register_device(&ts, &h).await;
    let dc = device.client(&ts);
    let login = ts.anon.card_login(&login_req(&h, Some(&h.passcode), "qr")).await.unwrap();
    let uri = login.qr_uri.clone().unwrap();
    assert!(uri.starts_with("vsc-auth://login?v=1&url="), "{uri}");
    assert!(login.qr_svg.as_deref().unwrap().starts_with("<svg"));
    assert!(dc.challenges(0).await.unwrap().challenges.is_empty(), "QR logins are not pushed");
    let param = |k: &str| uri.split(&format!("&{k}=")).nth(1).unwrap().split('&').next().unwrap().to_string();
    let (id, nonce) = (param("c"), param("n"));
    let seen = dc.challenge(&id).await.unwrap();
    assert_eq!((seen.method.as_str(), seen.nonce.as_str()), ("qr", ""), "the nonce comes only from the scanned code");
    assert_eq!(dc.answer(&id, &nonce, Decision::Approve, None).await.unwrap().state, "approved");
    let state = ts.anon.login_state(&login.login, 0).await.unwrap();
    assert_eq!((state.state.as_str(), state.approved_by.as_deref()), ("approved", Some("qr")));
    let e = dc.answer(&id, &nonce, Decision::Approve, None).await.unwrap_err();
    assert_eq!(e.status(), Some(409), "the scanned code works once");
    ts.stop().await;
}

async fn push_only_policy_and_push_throttling(b: Backend) {
    let ts = TestServer::start(b).await;
    let h = enrolled_holder(&ts, "nopass@example.nhs.uk").await;
    let device = register_device(&ts, &h).await;
    let e = ts.anon.card_login(&login_req(&h, None, "push")).await.unwrap_err();
    assert_eq!(e.status(), Some(422), "the passcode is required by default: {e}");
    ts.vsc.set_push_only(&Principal::Operator, "ORG1", true).await.unwrap();
    let (login, c) = push(&ts, &h, &device).await;
    drop(login);
    let n = ts.anon.card_login(&login_req(&h, None, "push")).await.unwrap();
    let list = device.client(&ts).challenges(0).await.unwrap().challenges;
    let c2 = list.iter().find(|x| x.id != c.id).unwrap();
    device.client(&ts).answer(&c2.id, &c2.nonce, Decision::Approve, n.number).await.unwrap();
    assert_eq!(ts.anon.login_state(&n.login, 0).await.unwrap().state, "approved");
    assert_eq!(ts.anon.card_login(&login_req(&h, None, "code")).await.unwrap_err().status(), Some(422), "push only");
    // Unanswered pushes pile up: after 5 within 10 minutes, more are refused.
    for _ in 0..4 {
        ts.anon.card_login(&login_req(&h, None, "push")).await.unwrap();
    }
    let e = ts.anon.card_login(&login_req(&h, None, "push")).await.unwrap_err();
    assert_eq!(e.status(), Some(429), "{e}");
    assert_eq!(count(&ts.vsc, "card.login_throttled").await, 1);
    ts.stop().await;
}

async fn tickets_are_refused_after_logout_and_for_locked_cards(b: Backend) {
    let ts = TestServer::start(b).await;
    let h = enrolled_holder(&ts, "ticket.two@example.nhs.uk").await;
    let device = register_device(&ts, &h).await;
    let app = ts.vsc.create_app("pas").await.unwrap();
    let open = async || -> Client {
        let (login, c) = push(&ts, &h, &device).await;
        device.client(&ts).answer(&c.id, &c.nonce, Decision::Approve, login.number).await.unwrap();
        let s = ts.anon.open_card_session(&login.login, None).await.unwrap();
        ts.anon.with_token(&s.session)
    };
    let sc = open().await;
    let t = sc.card_ticket("pas").await.unwrap().ticket;
    assert_eq!(sc.card_ticket("nope").await.unwrap_err().status(), Some(404));
    sc.card_logout().await.unwrap();
    let e = ts.anon.with_token(&app.key).validate_ticket(&t).await.unwrap_err();
    assert!(e.to_string().contains("logged out"), "{e}");

    let sc = open().await;
    let t = sc.card_ticket("pas").await.unwrap().ticket;
    let mut conn = ts.vsc.store().conn().await.unwrap();
    vsc_store::cards::lock_active_for_user(&mut conn, &h.user_id).await.unwrap();
    drop(conn);
    let e = ts.anon.with_token(&app.key).validate_ticket(&t).await.unwrap_err();
    assert!(e.to_string().contains("locked"), "{e}");
    assert_eq!(sc.card_session().await.unwrap_err().status(), Some(401), "a locked card's session is over");
    let (status, _) =
        post(&ts.anon.with_token(&app.key), "/api/v1/tickets/validate", json!({ "ticket": "vtk_x" })).await;
    assert_eq!(status, 401);
    ts.stop().await;
}

/// Two `vsc serve` nodes share one PostgreSQL (and the key-encryption key): a device waiting on
/// node B hears at once of a login started on node A (LISTEN/NOTIFY), and the client waiting on A
/// hears at once of the answer given through B.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_postgres_deliver_pushes_and_answers_across() {
    if vsc_testkit::postgres_url().is_none() {
        eprintln!("SKIPPED: two nodes need DATABASE_URL");
        return;
    }
    let a = TestServer::start(Backend::Postgres).await;
    let dir = tempfile::tempdir().unwrap();
    let config = vsc_server::Config {
        data_dir: dir.path().join("data"),
        kek_file: Some(a.config.kek_path()),
        public_url: None,
        ..a.config.clone()
    };
    let node_b = vsc_server::serve::Server::bind(config).await.unwrap();
    let b_url = node_b.url();
    let (stop_b, stopped) = tokio::sync::oneshot::channel::<()>();
    let b_task = tokio::spawn(node_b.run(async {
        let _ = stopped.await;
    }));

    let h = enrolled_holder(&a, "two.nodes@example.nhs.uk").await;
    let device = register_device(&a, &h).await;
    let on_b = vsc_client::DeviceClient::new(
        &b_url,
        &device.id,
        vsc_crypto::device::DeviceKey::from_pkcs8(device.key.pkcs8()).unwrap(),
    )
    .with_pin(crate::devices::DEVICE_PIN);
    let waiting = tokio::spawn({
        let on_b = on_b.clone();
        async move {
            let list = on_b.challenges(20).await.unwrap();
            (list, Instant::now())
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let login = a.anon.card_login(&login_req(&h, Some(&h.passcode), "push")).await.unwrap();
    let started = Instant::now();
    let (list, heard) = waiting.await.unwrap();
    let c = &list.challenges[0];
    assert!(
        heard.duration_since(started) < Duration::from_secs(2),
        "node B heard at once: {:?}",
        heard.duration_since(started)
    );

    let polling = tokio::spawn({
        let anon = a.anon.clone();
        let l = login.login.clone();
        async move {
            let s = anon.login_state(&l, 20).await.unwrap();
            (s, Instant::now())
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let answered = Instant::now();
    on_b.answer(&c.id, &c.nonce, Decision::Approve, login.number).await.unwrap();
    let (state, seen) = polling.await.unwrap();
    assert_eq!(state.state, "approved");
    assert!(seen.duration_since(answered) < Duration::from_secs(2), "node A heard at once");
    // Node B opens the session node A's login approved: no per-node state.
    let session = Client::new(&b_url).open_card_session(&login.login, None).await.unwrap();
    a.anon.with_token(&session.session).card_session().await.unwrap();
    let _ = stop_b.send(());
    let _ = b_task.await;
    a.stop().await;
}
