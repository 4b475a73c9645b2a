//! Card suspension and resume: by the RA (API), and by the holder blocking their own card (API and
//! the Self-Service Portal without JavaScript). Replays what an attacker would try with a
//! suspended card — log in, keep using an open session or ticket, rely on the certificates — and
//! checks the certificate status with the real `openssl` (CRL and OCSP).

use std::path::Path;
use std::process::Command;

use reqwest::Method;
use serde_json::json;
use vsc_client::Client;
use vsc_client::device::Decision;
use vsc_client::signing::Signed;
use vsc_proto::{CardLoginRequest, CardSignRequest, ErrorCode};
use vsc_server::{Principal, Vsc};
use vsc_testkit::{Backend, TestServer, on_both_backends};

use crate::devices::{Holder, TestDevice, enrolled_holder, message, portal, post, register_device};

on_both_backends!(
    ra_suspension_ends_sessions_refuses_login_and_holds_the_certificates,
    resuming_a_card_suspended_while_locked_leaves_it_locked,
    self_block_counts_wrong_passcodes_and_suspends_with_the_right_one,
    the_portal_block_page_works_without_javascript,
);

fn login_req(h: &Holder, passcode: &str) -> CardLoginRequest {
    CardLoginRequest {
        email: h.email.clone(),
        passcode: Some(passcode.into()),
        method: "push".into(),
        client: Some("suspension test".into()),
    }
}

/// Log in with a push approved on `device` → a client presenting the card session.
async fn session(ts: &TestServer, h: &Holder, device: &TestDevice) -> Client {
    let login = ts.anon.card_login(&login_req(h, &h.passcode)).await.unwrap();
    let c = device.client(ts).challenges(5).await.unwrap().challenges.remove(0);
    device.client(ts).answer(&c.id, &c.nonce, Decision::Approve, login.number).await.unwrap();
    let s = ts.anon.open_card_session(&login.login, None).await.unwrap();
    ts.anon.with_token(&s.session)
}

async fn count(vsc: &Vsc, action: &str) -> usize {
    vsc.audit_log(&Principal::Operator, 1000).await.unwrap().iter().filter(|e| e.action == action).count()
}

/// The newest audit event with `action` → (actor, detail).
async fn last_event(vsc: &Vsc, action: &str) -> (String, serde_json::Value) {
    let events = vsc.audit_log(&Principal::Operator, 1000).await.unwrap();
    let e = events.into_iter().filter(|e| e.action == action).max_by_key(|e| e.id).expect(action);
    (e.actor, e.detail)
}

async fn passcode_failures(ts: &TestServer, user_id: &str) -> i64 {
    let mut conn = ts.vsc.store().conn().await.unwrap();
    vsc_store::holders::passcode_failures(&mut conn, user_id).await.unwrap()
}

/// Run `openssl args…` in `dir` → (success, stdout + stderr).
fn openssl(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl").current_dir(dir).args(args).output().expect("openssl runs");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr))
}

/// The CA chain and the issuing CA alone, as `ca.pem` and `issuing.pem` in `d`.
async fn ca_files(ts: &TestServer, d: &Path) {
    let chain = ts.anon.ca_pem().await.unwrap();
    std::fs::write(d.join("ca.pem"), &chain).unwrap();
    let issuing_end = chain.find("-----END CERTIFICATE-----").unwrap() + "-----END CERTIFICATE-----\n".len();
    std::fs::write(d.join("issuing.pem"), &chain[..issuing_end]).unwrap();
}

/// The service's current CRL as `crl.pem` → its `openssl crl -text`.
async fn crl_text(ts: &TestServer, d: &Path) -> String {
    std::fs::write(d.join("crl.der"), ts.anon.crl().await.unwrap()).unwrap();
    let (ok, out) = openssl(d, &["crl", "-inform", "DER", "-in", "crl.der", "-out", "crl.pem"]);
    assert!(ok, "{out}");
    let (ok, out) = openssl(d, &["crl", "-in", "crl.pem", "-noout", "-text"]);
    assert!(ok, "{out}");
    out
}

/// `openssl verify -crl_check` of `cert` against the CA chain and the CRL last fetched.
fn crl_verdict(d: &Path, cert: &str) -> (bool, String) {
    openssl(d, &["verify", "-crl_check", "-CAfile", "ca.pem", "-CRLfile", "crl.pem", cert])
}

/// `openssl ocsp` against the service's responder for `cert`.
fn ocsp_verdict(ts: &TestServer, d: &Path, cert: &str) -> String {
    let url = format!("{}/api/v1/pki/ocsp", ts.url);
    let (ok, out) = openssl(d, &["ocsp", "-issuer", "issuing.pem", "-cert", cert, "-url", &url, "-CAfile", "ca.pem"]);
    assert!(ok && out.contains("Response verify OK"), "{out}");
    out
}

async fn ra_suspension_ends_sessions_refuses_login_and_holds_the_certificates(b: Backend) {
    let ts = TestServer::start(b).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ca_files(&ts, d).await;
    let h = enrolled_holder(&ts, "held@example.nhs.uk").await;
    let device = register_device(&ts, &h).await;
    let card = ts.client.card(&h.serial).await.unwrap();
    std::fs::write(d.join("auth.pem"), &card.certificates.authentication).unwrap();
    std::fs::write(d.join("sign.pem"), card.certificates.signing.as_ref().unwrap()).unwrap();
    let app = ts.vsc.create_app("pas").await.unwrap();
    let sc = session(&ts, &h, &device).await;
    let ticket = sc.card_ticket("pas").await.unwrap().ticket;
    let digest = CardSignRequest { digest: Some(hex::encode([9u8; 32])), ..CardSignRequest::default() };
    assert!(matches!(sc.card_sign(&digest).await.unwrap(), Signed::Done(_)));

    // An agent of the card's organisation suspends it; a reason is required.
    ts.vsc.invite_staff("agent.held@example.nhs.uk", "ORG1", "agent", Some("Alex Agent")).await.unwrap();
    let agent = ts.anon.with_token(&ts.vsc.create_token("agent.held@example.nhs.uk").await.unwrap());
    for reason in ["  ", &"x".repeat(501)] {
        let e = agent.suspend_card(&h.serial, reason).await.unwrap_err();
        assert_eq!((e.status(), e.code()), (Some(422), Some(ErrorCode::InvalidInput)), "{e}");
    }
    let (status, _) = post(&agent, &format!("/api/v1/cards/{}/suspend", h.serial), json!({})).await;
    assert_eq!(status, 400, "the reason field is required");
    // Another organisation's manager: not found, and nothing changes.
    let other = ts
        .vsc
        .bootstrap("ORG2", "Other Trust", &["other.nhs.uk".into()], "boss@other.nhs.uk", "Olive Boss")
        .await
        .unwrap();
    let c2 = ts.anon.with_token(&other.token);
    assert_eq!(c2.suspend_card(&h.serial, "not yours").await.unwrap_err().status(), Some(404));
    assert_eq!(count(&ts.vsc, "card.suspended").await, 0);

    let suspended = agent.suspend_card(&h.serial, "phone reported stolen").await.unwrap();
    assert_eq!(suspended.state, "suspended");
    assert_eq!(suspended.suspension_reason.as_deref(), Some("phone reported stolen"));
    assert!(suspended.suspended_at.is_some());
    let (actor, detail) = last_event(&ts.vsc, "card.suspended").await;
    assert_eq!(actor, "staff:agent.held@example.nhs.uk");
    assert_eq!(detail["reason"], "phone reported stolen");
    assert_eq!(detail["previous_state"], "active");
    assert_eq!(detail["sessions_ended"], 1);
    assert_eq!(detail["certificates_on_hold"], 2);
    let mail = message(&ts.vsc, &h.email, "card_suspended").await;
    assert!(mail.body.contains(&h.serial) && mail.body.contains("contact your RA"), "{}", mail.body);

    // The open session, its ticket and its signatures are over.
    assert_eq!(sc.card_session().await.unwrap_err().status(), Some(401));
    assert_eq!(sc.card_sign(&digest).await.unwrap_err().status(), Some(401));
    let e = ts.anon.with_token(&app.key).validate_ticket(&ticket).await.unwrap_err();
    assert_eq!(e.status(), Some(401), "{e}");
    // Login with the right passcode answers exactly as an unknown email (and a locked card) does,
    // and no passcode check runs.
    let refused = ts.anon.card_login(&login_req(&h, &h.passcode)).await.unwrap_err();
    let mut ghost = login_req(&h, &h.passcode);
    ghost.email = "nobody@example.nhs.uk".into();
    let unknown = ts.anon.card_login(&ghost).await.unwrap_err();
    assert_eq!(refused.status(), Some(401));
    assert_eq!(refused.to_string(), unknown.to_string());
    assert_eq!(count(&ts.vsc, "card.passcode_refused").await, 1);
    assert_eq!(passcode_failures(&ts, &h.user_id).await, 0, "a suspended card's passcode is never guessed at");

    // Certificates on hold: CRL (signed in the suspending transaction) and OCSP say certificateHold.
    let text = crl_text(&ts, d).await;
    assert!(text.contains("Certificate Hold") && text.contains(&card_serial_hex(d, "auth.pem")), "{text}");
    for cert in ["auth.pem", "sign.pem"] {
        let (ok, out) = crl_verdict(d, cert);
        assert!(!ok && out.contains("certificate revoked"), "{out}");
        let out = ocsp_verdict(&ts, d, cert);
        assert!(out.contains(&format!("{cert}: revoked")) && out.contains("certificateHold"), "{out}");
    }
    // Suspended twice, renewed, or resumed by another organisation: refused.
    let e = agent.suspend_card(&h.serial, "again").await.unwrap_err();
    assert_eq!((e.status(), e.code()), (Some(409), Some(ErrorCode::InvalidState)), "{e}");
    assert_eq!(ts.client.renew_card(&h.serial).await.unwrap_err().status(), Some(409));
    assert_eq!(c2.resume_card(&h.serial).await.unwrap_err().status(), Some(404));
    assert_eq!(ts.client.card(&h.serial).await.unwrap().state, "suspended");

    // Resume: active again, certificates good (the new CRL lists them once as removeFromCRL).
    // Resume is dual-controlled (the holder is enrolled): the agent asks, a second staff member
    // (here the operator) approves.
    let (status, asked) = post(&agent, &format!("/api/v1/cards/{}/resume", h.serial), json!({})).await;
    assert_eq!((status, asked["change_request"]["action"].as_str()), (202, Some("resume")), "{asked}");
    assert_eq!(ts.client.card(&h.serial).await.unwrap().state, "suspended", "nothing before the approval");
    let id = asked["change_request"]["id"].as_str().unwrap();
    let (status, approved) = post(&ts.client, &format!("/api/v1/change-requests/{id}/approve"), json!({})).await;
    assert_eq!(status, 200, "{approved}");
    let resumed: vsc_proto::CardView = serde_json::from_value(approved["result"].clone()).unwrap();
    assert_eq!((resumed.state.as_str(), resumed.suspended_at), ("active", None));
    let (_, detail) = last_event(&ts.vsc, "card.resumed").await;
    assert_eq!((detail["previous_state"].as_str(), detail["state"].as_str()), (Some("suspended"), Some("active")));
    assert_eq!(detail["suspension_reason"], "phone reported stolen");
    let text = crl_text(&ts, d).await;
    assert!(text.contains("Remove From CRL") && !text.contains("Certificate Hold"), "{text}");
    for cert in ["auth.pem", "sign.pem"] {
        let (ok, out) = crl_verdict(d, cert);
        assert!(ok && out.contains(&format!("{cert}: OK")), "{out}");
        assert!(ocsp_verdict(&ts, d, cert).contains(&format!("{cert}: good")));
    }
    let mail = message(&ts.vsc, &h.email, "card_resumed").await;
    assert!(mail.body.contains("resumed") && mail.body.contains(&h.serial), "{}", mail.body);
    assert_eq!(agent.resume_card(&h.serial).await.unwrap_err().status(), Some(409), "only a suspended card");
    let sc = session(&ts, &h, &device).await;
    assert!(matches!(sc.card_sign(&digest).await.unwrap(), Signed::Done(_)), "the card works again");
    ts.stop().await;
}

/// The serial of a PEM certificate in `d` as `openssl crl -text` prints it (upper-case hex).
fn card_serial_hex(d: &Path, cert: &str) -> String {
    let (ok, out) = openssl(d, &["x509", "-in", cert, "-noout", "-serial"]);
    assert!(ok, "{out}");
    out.trim().trim_start_matches("serial=").to_string()
}

async fn resuming_a_card_suspended_while_locked_leaves_it_locked(b: Backend) {
    let ts = TestServer::start(b).await;
    // The resume itself is under test here; dual control over it has its own tests.
    ts.vsc.set_dual_control(&vsc_server::Principal::Operator, "ORG1", false).await.unwrap();
    let h = enrolled_holder(&ts, "locked.held@example.nhs.uk").await;
    register_device(&ts, &h).await;
    for i in 0..3 {
        ts.anon.card_login(&login_req(&h, &format!("wrong{i}"))).await.unwrap_err();
    }
    assert_eq!(ts.client.card(&h.serial).await.unwrap().state, "locked");
    let card = ts.client.suspend_card(&h.serial, "investigating the failed logins").await.unwrap();
    assert_eq!(card.state, "suspended");
    assert_eq!(last_event(&ts.vsc, "card.suspended").await.1["previous_state"], "locked");
    // The RA unlock link is refused while suspended: unlocking would not make it usable anyway.
    let (status, _) = post(&ts.client, &format!("/api/v1/cards/{}/unlock", h.serial), json!({})).await;
    assert_eq!(status, 409);
    let card = ts.client.resume_card(&h.serial).await.unwrap();
    assert_eq!(card.state, "locked", "resume restores the state before, never unlocks");
    let mail = message(&ts.vsc, &h.email, "card_resumed").await;
    assert!(mail.body.contains("still locked"), "{}", mail.body);
    assert_eq!(ts.anon.card_login(&login_req(&h, &h.passcode)).await.unwrap_err().status(), Some(401));

    // Only active and locked cards can be suspended.
    let user = ts.client.user(&h.user_id).await.unwrap();
    let req = vsc_proto::IssueCardRequest { card_type: "v1".into(), roles: vec!["R8000".into()], key_algorithm: None };
    let issued = ts.client.issue_card(&user.id.to_string(), &req).await.unwrap();
    let e = ts.client.suspend_card(&issued.serial, "not enrolled yet").await.unwrap_err();
    assert_eq!(e.status(), Some(409), "{e}");
    ts.client.revoke_card(&h.serial, Some("left")).await.unwrap();
    assert_eq!(ts.client.suspend_card(&h.serial, "too late").await.unwrap_err().status(), Some(409));
    ts.stop().await;
}

async fn self_block_counts_wrong_passcodes_and_suspends_with_the_right_one(b: Backend) {
    let ts = TestServer::start(b).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ca_files(&ts, d).await;
    let h = enrolled_holder(&ts, "self.block@example.nhs.uk").await;
    let device = register_device(&ts, &h).await;
    let sc = session(&ts, &h, &device).await;
    std::fs::write(d.join("auth.pem"), ts.client.card(&h.serial).await.unwrap().certificates.authentication).unwrap();

    assert_eq!(ts.anon.self_block(&h.passcode).await.unwrap_err().status(), Some(401), "a holder session is needed");
    // A wrong passcode is a counted passcode check.
    let e = h.client.self_block("wrong1").await.unwrap_err();
    assert_eq!((e.status(), e.code()), (Some(422), Some(ErrorCode::InvalidInput)), "{e}");
    assert_eq!(passcode_failures(&ts, &h.user_id).await, 1);
    assert_eq!(count(&ts.vsc, "card.passcode_wrong").await, 1);
    assert_eq!(ts.client.card(&h.serial).await.unwrap().state, "active");

    // The right one suspends every usable card and clears the count.
    let blocked = h.client.self_block(&h.passcode).await.unwrap();
    assert_eq!(blocked.suspended, std::slice::from_ref(&h.serial));
    assert_eq!(passcode_failures(&ts, &h.user_id).await, 0);
    assert_eq!(ts.client.card(&h.serial).await.unwrap().state, "suspended");
    let (actor, detail) = last_event(&ts.vsc, "holder.card_blocked").await;
    assert_eq!((actor.as_str(), detail["cards"].clone()), ("holder:self.block@example.nhs.uk", json!([h.serial])));
    assert_eq!(last_event(&ts.vsc, "card.suspended").await.0, "holder:self.block@example.nhs.uk");
    assert_eq!(sc.card_session().await.unwrap_err().status(), Some(401), "the session ended");
    let out = ocsp_verdict(&ts, d, "auth.pem");
    assert!(out.contains("auth.pem: revoked") && out.contains("certificateHold"), "{out}");
    assert!(crl_text(&ts, d).await.contains("Certificate Hold"));
    // Blocking ended the holder's portal session too.
    let e = h.client.self_block(&h.passcode).await.unwrap_err();
    assert_eq!(e.status(), Some(401), "{e}");
    assert_eq!(count(&ts.vsc, "holder.card_blocked").await, 1);

    // Three wrong passcodes at the block door lock the card, as at the login door.
    let g = enrolled_holder(&ts, "guessed@example.nhs.uk").await;
    for i in 0..3 {
        assert_eq!(g.client.self_block(&format!("wrong{i}")).await.unwrap_err().status(), Some(422));
    }
    assert_eq!(ts.client.card(&g.serial).await.unwrap().state, "locked");
    let e = g.client.self_block(&g.passcode).await.unwrap_err();
    assert_eq!(e.status(), Some(401), "the lock ended the portal session: {e}");
    assert_eq!(ts.client.card(&g.serial).await.unwrap().state, "locked");
    ts.stop().await;
}

async fn the_portal_block_page_works_without_javascript(b: Backend) {
    let ts = TestServer::start(b).await;
    let h = enrolled_holder(&ts, "portal.block@example.nhs.uk").await;
    let (status, home) = portal(&ts, &h, Method::GET, "/self-service/", &[]).await;
    assert_eq!(status, 200);
    assert!(home.contains("href=\"/self-service/block\""), "{home}");
    let (status, page) = portal(&ts, &h, Method::GET, "/self-service/block", &[]).await;
    assert_eq!(status, 200);
    assert!(page.contains("type=\"password\" id=\"passcode\" name=\"passcode\""), "masked: {page}");
    assert!(page.contains(&h.serial) && page.contains("name=\"confirm\""), "{page}");
    assert!(!page.contains("<script"), "no JavaScript needed");

    // Not confirmed, then a wrong passcode (counted): the form again with the problem.
    let (status, page) = portal(&ts, &h, Method::POST, "/self-service/block", &[("passcode", &h.passcode)]).await;
    assert_eq!(status, 422);
    assert!(page.contains("id=\"confirm-error\""), "{page}");
    assert_eq!(passcode_failures(&ts, &h.user_id).await, 0, "nothing checked before the confirmation");
    let (status, page) =
        portal(&ts, &h, Method::POST, "/self-service/block", &[("passcode", "wrong1"), ("confirm", "on")]).await;
    assert_eq!(status, 422);
    assert!(page.contains("id=\"passcode-error\"") && page.contains("the passcode is wrong"), "{page}");
    assert_eq!(passcode_failures(&ts, &h.user_id).await, 1);
    assert_eq!(ts.client.card(&h.serial).await.unwrap().state, "active");
    // Without the CSRF field: refused.
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let forged = http
        .post(format!("{}/self-service/block", ts.url))
        .header(reqwest::header::COOKIE, format!("vsc_session={}", h.session))
        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(format!("passcode={}&confirm=on", h.passcode))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 403);
    assert_eq!(ts.client.card(&h.serial).await.unwrap().state, "active");

    let (status, done) =
        portal(&ts, &h, Method::POST, "/self-service/block", &[("passcode", &h.passcode), ("confirm", "on")]).await;
    assert_eq!(status, 200);
    assert!(done.contains("Your card is blocked"), "{done}");
    assert!(done.contains(&h.serial) && done.contains("Contact your Registration Authority (RA)"), "{done}");
    // Blocking ends every portal session of the holder, this one too.
    let (status, to) = portal(&ts, &h, Method::GET, "/self-service/", &[]).await;
    assert_eq!(status, 303, "signed out: {to}");
    assert_eq!(ts.client.card(&h.serial).await.unwrap().state, "suspended");
    assert_eq!(passcode_failures(&ts, &h.user_id).await, 0);
    ts.stop().await;
}

#[test]
fn the_suspension_routes_are_documented() {
    let doc = serde_json::to_value(vsc_server::api::openapi()).unwrap();
    for (method, path) in [
        ("post", "/api/v1/cards/{serial}/suspend"),
        ("post", "/api/v1/cards/{serial}/resume"),
        ("post", "/api/v1/self/block"),
    ] {
        assert!(doc["paths"][path][method].is_object(), "{method} {path}");
    }
}
