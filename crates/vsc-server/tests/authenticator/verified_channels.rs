//! Verified channels (issue 14, items 5 and 7), replayed as an attacker on the RA side would:
//! an email address or mobile number typed by the RA gets no reset or unlock link, device code,
//! SMS code or renewal until the signed-in holder confirms it; the anonymous reset request still
//! answers alike; the confirmation link confirms nothing without the holder's session.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vsc_client::device::Decision;
use vsc_proto::CardLoginRequest;
use vsc_server::{Principal, Vsc};
use vsc_testkit::{Backend, ManualClock, TestServer, on_both_backends};

use crate::devices::{Holder, enrolled_holder, get, message, post, register_device, sign_in_again, six_digits};
use crate::portal_sign_in::{Browser, the_push};

on_both_backends!(
    an_ra_email_change_gets_no_links_codes_or_renewal_until_the_holder_confirms_it,
    an_ra_mobile_change_is_confirmed_at_the_next_portal_sign_in,
    sms_second_factors_never_go_to_an_unconfirmed_mobile,
);

async fn count(vsc: &Vsc, action: &str) -> usize {
    vsc.audit_log(&Principal::Operator, 1000).await.unwrap().iter().filter(|e| e.action == action).count()
}

/// The details of the newest audit event `action`.
async fn last_detail(vsc: &Vsc, action: &str) -> Value {
    let events = vsc.audit_log(&Principal::Operator, 1000).await.unwrap();
    events.into_iter().find(|e| e.action == action).unwrap_or_else(|| panic!("no {action} event")).detail
}

/// Messages of `kind` to `to` (pending or handled).
async fn sent(vsc: &Vsc, to: &str, kind: &str) -> usize {
    vsc.outbox(Some(to), 200).await.unwrap().iter().filter(|m| m.kind == kind).count()
}

/// What the RA's `PATCH /api/v1/users/{id}` answers.
async fn ra_patch(ts: &TestServer, h: &Holder, body: Value) -> Value {
    let path = format!("/api/v1/users/{}", h.user_id);
    let (status, text) = ts.client.raw(Method::PATCH, &path, Some(&body)).await.unwrap();
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

/// The error of a refused call: (status, code, message).
fn refusal(status: u16, e: &Value) -> (u16, String, String) {
    (status, e["error"]["code"].as_str().unwrap_or_default().into(), e["error"]["message"].to_string())
}

/// The token of the confirmation link in the newest email_verification to `to`.
async fn confirmation_token(vsc: &Vsc, to: &str) -> String {
    let body = message(vsc, to, "email_verification").await.body;
    let start =
        body.find("/self-service/verify-email/").expect("a confirmation link") + "/self-service/verify-email/".len();
    body[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-').collect()
}

fn card_login(email: &str, passcode: &str) -> CardLoginRequest {
    CardLoginRequest {
        email: email.into(),
        passcode: Some(passcode.into()),
        method: "push".into(),
        client: Some("test client".into()),
    }
}

async fn an_ra_email_change_gets_no_links_codes_or_renewal_until_the_holder_confirms_it(b: Backend) {
    let ts = TestServer::start(b).await;
    // The RA's changes apply at once here (dual control, which makes them requests first, has its own tests).
    ts.vsc.set_dual_control(&Principal::Operator, "ORG1", false).await.unwrap();
    let mut h = enrolled_holder(&ts, "victim@example.nhs.uk").await;
    let device = register_device(&ts, &h).await;
    assert_eq!(get(&h.client, "/api/v1/self").await.1["email_verified"], true, "enrolment confirms the address");

    // The RA points the holder's email at a mailbox of its choosing.
    let new = "attacker.mailbox@example.nhs.uk";
    let view = ra_patch(&ts, &h, json!({ "email": new })).await;
    assert_eq!((view["email"].as_str(), view["email_verified"].as_bool()), (Some(new), Some(false)), "{view}");
    assert_eq!(view["mobile_verified"], true, "the mobile is untouched");
    assert_eq!(get(&h.client, "/api/v1/self").await.0, 401, "the change ended the holder's portal sessions");
    h.email = new.into();
    h.client = sign_in_again(&ts, &h, &device).await;
    assert_eq!(get(&h.client, "/api/v1/self").await.1["email_verified"], false);
    let detail = last_detail(&ts.vsc, "user.email_changed").await;
    assert_eq!(
        (detail["old"].as_str(), detail["email_verified"].as_bool()),
        (Some("victim@example.nhs.uk"), Some(false))
    );
    // The old address is told; the new one only gets a confirmation link.
    let told = message(&ts.vsc, "victim@example.nhs.uk", "email_changed").await;
    assert!(told.body.contains(new), "{}", told.body);
    assert_eq!(sent(&ts.vsc, new, "email_changed").await, 0);
    let token = confirmation_token(&ts.vsc, new).await;

    // RA unlock: 409 naming why, no link anywhere.
    let unlock = format!("/api/v1/cards/{}/unlock", h.serial);
    let (status, e) = post(&ts.client, &unlock, json!({})).await;
    let (status, code, why) = refusal(status, &e);
    assert_eq!((status, code.as_str()), (409, "ST0001InvalidState"), "{e}");
    assert!(why.contains("email address is not confirmed yet"), "{why}");
    assert_eq!(count(&ts.vsc, "card.unlock_link_issued").await, 0);
    // Adding a device (its code is emailed): 409.
    let (status, e) =
        post(&h.client, "/api/v1/self/devices", json!({ "name": "Burner", "device_type": "phone" })).await;
    let (status, code, why) = refusal(status, &e);
    assert_eq!((status, code.as_str()), (409, "ST0001InvalidState"), "{e}");
    assert!(why.contains("not confirmed"), "{why}");
    assert_eq!(sent(&ts.vsc, new, "device_code").await, 0);
    // Renewal certifies a confirmed identity only: 409, the certificate unchanged.
    let before = ts.client.card(&h.serial).await.unwrap();
    let (status, e) = post(&ts.client, &format!("/api/v1/cards/{}/renew", h.serial), json!({})).await;
    let (status, code, why) = refusal(status, &e);
    assert_eq!((status, code.as_str()), (409, "ST0001InvalidState"), "{e}");
    assert!(why.contains("not confirmed"), "{why}");
    assert_eq!(ts.client.card(&h.serial).await.unwrap().certificates, before.certificates);
    assert_eq!(count(&ts.vsc, "card.renewed").await, 0);

    // The anonymous forgotten-passcode request: the answer an unknown address gets, no link.
    let (status, for_new) = post(&ts.anon, "/api/v1/self/reset", json!({ "email": new })).await;
    let (status2, for_nobody) = post(&ts.anon, "/api/v1/self/reset", json!({ "email": "nobody@example.nhs.uk" })).await;
    assert_eq!((status, status2), (202, 202));
    assert_eq!(for_new, for_nobody, "no enumeration");
    assert_eq!(sent(&ts.vsc, new, "passcode_reset").await, 0);
    let detail = last_detail(&ts.vsc, "holder.reset_requested").await;
    assert_eq!(detail["outcome"], "unknown email or not enrolled", "the newest is the unknown address");
    let events = ts.vsc.audit_log(&Principal::Operator, 1000).await.unwrap();
    let why = events.iter().filter(|e| e.action == "holder.reset_requested").map(|e| e.detail["outcome"].clone());
    assert!(why.clone().any(|o| o == "email address not confirmed; no link sent"), "{:?}", why.collect::<Vec<_>>());

    // Reading the mailbox confirms nothing: the link needs the holder's session.
    let confirm = format!("/api/v1/self/email-verification/{token}");
    let (status, e) = post(&ts.anon, &confirm, json!({})).await;
    assert_eq!(refusal(status, &e).0, 401, "{e}");
    let other = enrolled_holder(&ts, "someone.else@example.nhs.uk").await;
    let (status, e) = post(&other.client, &confirm, json!({})).await;
    assert_eq!(refusal(status, &e).0, 401, "another holder's session: {e}");
    assert_eq!(get(&h.client, "/api/v1/self").await.1["email_verified"], false);
    let (status, ok) = post(&h.client, &confirm, json!({})).await;
    assert_eq!((status, ok["email"].as_str()), (200, Some(new)), "{ok}");
    assert!(ts.client.user(&h.user_id).await.unwrap().email_verified);

    // Confirmed: unlock, a device and renewal work again.
    assert_eq!(post(&ts.client, &unlock, json!({})).await.0, 202);
    let reset = message(&ts.vsc, new, "passcode_reset").await;
    assert!(reset.body.contains("/self-service/reset/"), "{}", reset.body);
    let (status, created) =
        post(&h.client, "/api/v1/self/devices", json!({ "name": "Second phone", "device_type": "phone" })).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(post(&ts.client, &format!("/api/v1/cards/{}/renew", h.serial), json!({})).await.0, 200);
    assert_ne!(ts.client.card(&h.serial).await.unwrap().certificates, before.certificates);

    // Another holder's address changed by the RA: 3 wrong passcodes lock the card, and the lock
    // email carries no reset link to the unconfirmed address.
    let l = enrolled_holder(&ts, "locked.victim@example.nhs.uk").await;
    let moved = "locked.mailbox@example.nhs.uk";
    ra_patch(&ts, &l, json!({ "email": moved })).await;
    for wrong in ["wrong1", "wrong2", "wrong3"] {
        assert_eq!(ts.anon.card_login(&card_login(moved, wrong)).await.unwrap_err().status(), Some(401));
    }
    assert_eq!(ts.client.card(&l.serial).await.unwrap().state, "locked");
    let locked = message(&ts.vsc, moved, "card_locked").await;
    assert!(!locked.body.contains("/self-service/reset/"), "{}", locked.body);
    assert!(locked.body.contains("contact your Registration Authority (RA)"), "{}", locked.body);
    assert_eq!(last_detail(&ts.vsc, "card.locked").await["reset_link_sent"], false);
    assert_eq!(sent(&ts.vsc, moved, "passcode_reset").await, 0);
    ts.stop().await;
}

async fn an_ra_mobile_change_is_confirmed_at_the_next_portal_sign_in(b: Backend) {
    let clock = Arc::new(ManualClock::default());
    let ts = TestServer::start_with_clock(b, clock.clone()).await;
    // The RA's changes apply at once here (dual control, which makes them requests first, has its own tests).
    ts.vsc.set_dual_control(&Principal::Operator, "ORG1", false).await.unwrap();
    let h = enrolled_holder(&ts, "mobile.moved@example.nhs.uk").await;
    let device = register_device(&ts, &h).await;
    let (_, me) = get(&h.client, "/api/v1/self").await;
    assert_eq!(me["mobile_verified"], true, "the enrolment SMS code confirms the number");
    let old = me["mobile"].as_str().unwrap().to_string();

    let new = "+447700900777";
    let view = ra_patch(&ts, &h, json!({ "mobile": new })).await;
    assert_eq!((view["mobile"].as_str(), view["mobile_verified"].as_bool()), (Some(new), Some(false)), "{view}");
    assert_eq!(last_detail(&ts.vsc, "user.mobile_changed").await["mobile_verified"], false);

    // Sign in with the push: the portal asks for the new number's code before the home page.
    let mut browser = Browser::new(&ts.url);
    let page = browser.sign_in(&h).await;
    let number = page.number();
    let csrf = page.csrf();
    let c = the_push(&ts, &device).await;
    device.client(&ts).answer(&c.id, &c.nonce, Decision::Approve, Some(number)).await.unwrap();
    let done = browser.post("/self-service/sign-in/code", &[("csrf", &csrf), ("action", "continue")]).await;
    assert_eq!((done.status, done.location()), (StatusCode::SEE_OTHER, "/self-service/mobile-verification"));
    let ask = browser.get("/self-service/mobile-verification").await;
    assert_eq!(ask.status, StatusCode::OK, "{}", ask.body);
    assert!(ask.body.contains("•••• 0777"), "{}", ask.body);
    let home = browser.get("/self-service/").await;
    assert!(home.body.contains("id=\"mobile-state\" class=\"tag tag--issued\">not confirmed<"), "{}", home.body);

    // "Send code": a code to the new number only; once a minute.
    let csrf = ask.csrf();
    let sent_page = browser.post("/self-service/mobile-verification", &[("csrf", &csrf)]).await;
    assert_eq!(
        (sent_page.status, sent_page.location()),
        (StatusCode::SEE_OTHER, "/self-service/mobile-verification?sent=1")
    );
    let code = six_digits(&message(&ts.vsc, new, "mobile_verification_code").await.body);
    assert_eq!(sent(&ts.vsc, &old, "mobile_verification_code").await, 0);
    let again = browser.post("/self-service/mobile-verification", &[("csrf", &csrf)]).await;
    assert_eq!(again.status, StatusCode::TOO_MANY_REQUESTS, "{}", again.body);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let bad = browser.post("/self-service/mobile-verification/verify", &[("csrf", &csrf), ("code", wrong)]).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert!(bad.body.contains("4 attempt(s) left"), "{}", bad.body);
    assert_eq!(count(&ts.vsc, "holder.mobile_verified").await, 0);
    let ok = browser.post("/self-service/mobile-verification/verify", &[("csrf", &csrf), ("code", &code)]).await;
    assert_eq!(
        (ok.status, ok.location()),
        (StatusCode::SEE_OTHER, "/self-service/?done=mobile-verified"),
        "{}",
        ok.body
    );
    assert_eq!(get(&h.client, "/api/v1/self").await.0, 401, "the change ended the old session");
    assert_eq!(last_detail(&ts.vsc, "holder.mobile_verified").await["mobile"], new);
    assert!(ts.client.user(&h.user_id).await.unwrap().mobile_verified);
    // A confirmed number is not asked for again.
    let page = browser.get("/self-service/mobile-verification").await;
    assert_eq!((page.status, page.location()), (StatusCode::SEE_OTHER, "/self-service/"));

    // Another change, confirmed through the JSON API after signing in again; wrong codes are counted.
    let new = "+447700900888";
    ra_patch(&ts, &h, json!({ "mobile": new })).await;
    let mut h = h;
    h.client = sign_in_again(&ts, &h, &device).await;
    let (status, e) = post(&h.client, "/api/v1/self/mobile-verification/verify", json!({ "code": "123456" })).await;
    assert_eq!(refusal(status, &e).0, 409, "no code sent yet: {e}");
    let (status, sent_view) = post(&h.client, "/api/v1/self/mobile-verification", json!({})).await;
    assert_eq!((status, sent_view["mobile_hint"].as_str()), (202, Some("•••• 0888")), "{sent_view}");
    let code = six_digits(&message(&ts.vsc, new, "mobile_verification_code").await.body);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for left in (0..5).rev() {
        let (status, e) = post(&h.client, "/api/v1/self/mobile-verification/verify", json!({ "code": wrong })).await;
        assert_eq!(status, 422, "{e}");
        if left == 0 {
            assert!(e.to_string().contains("now void"), "{e}");
        }
    }
    // Void after 5: even the right code no longer works.
    let (status, e) = post(&h.client, "/api/v1/self/mobile-verification/verify", json!({ "code": code })).await;
    assert_eq!(refusal(status, &e).0, 409, "{e}");
    assert_eq!(count(&ts.vsc, "holder.mobile_verification_failed").await, 6, "1 in the browser, 5 here");
    assert_eq!(get(&h.client, "/api/v1/self").await.1["mobile_verified"], false);
    // A new code a minute later confirms the number.
    clock.advance(Duration::from_secs(61));
    assert_eq!(post(&h.client, "/api/v1/self/mobile-verification", json!({})).await.0, 202);
    // Written before the 202, so the newest message is the new code.
    assert_eq!(sent(&ts.vsc, new, "mobile_verification_code").await, 2);
    let fresh = six_digits(&message(&ts.vsc, new, "mobile_verification_code").await.body);
    let (status, e) = post(&h.client, "/api/v1/self/mobile-verification/verify", json!({ "code": fresh })).await;
    assert_eq!(status, 204, "{e}");
    assert_eq!(get(&h.client, "/api/v1/self").await.1["mobile_verified"], true);

    ts.stop().await;
}

async fn sms_second_factors_never_go_to_an_unconfirmed_mobile(b: Backend) {
    let ts = TestServer::start(b).await;
    // The RA's changes apply at once here (dual control, which makes them requests first, has its own tests).
    ts.vsc.set_dual_control(&Principal::Operator, "ORG1", false).await.unwrap();
    // No authenticator: the SMS code is the holder's only second factor.
    let h = enrolled_holder(&ts, "sms.only@example.nhs.uk").await;
    let old = get(&h.client, "/api/v1/self").await.1["mobile"].as_str().unwrap().to_string();
    let new = "+447700900888";
    ra_patch(&ts, &h, json!({ "mobile": new })).await;

    // Before the passcode is proven, the answers are unchanged (no enumeration).
    let (wrong, e1) = post(&ts.anon, "/api/v1/self/sign-in", json!({ "email": h.email, "passcode": "wrong1" })).await;
    let (nobody, e2) =
        post(&ts.anon, "/api/v1/self/sign-in", json!({ "email": "nobody@example.nhs.uk", "passcode": "wrong1" })).await;
    assert_eq!((wrong, nobody), (401, 401));
    assert_eq!(e1, e2);
    // The right passcode: refused with the reason, no SMS to either number.
    let (status, e) = post(&ts.anon, "/api/v1/self/sign-in", json!({ "email": h.email, "passcode": h.passcode })).await;
    let (status, code, why) = refusal(status, &e);
    assert_eq!((status, code.as_str()), (409, "ST0001InvalidState"), "{e}");
    assert!(why.contains("not confirmed") && why.contains("Registration Authority"), "{why}");
    assert_eq!(sent(&ts.vsc, new, "sign_in_code").await, 0);
    assert_eq!(sent(&ts.vsc, &old, "sign_in_code").await, 0);
    assert_eq!(count(&ts.vsc, "holder.sign_in_refused").await, 1);

    // The reset's SMS code: refused too, and no number is hinted.
    let (status, _) = post(&ts.anon, "/api/v1/self/reset", json!({ "email": h.email })).await;
    assert_eq!(status, 202);
    let body = message(&ts.vsc, &h.email, "passcode_reset").await.body;
    let start = body.find("/self-service/reset/").unwrap() + "/self-service/reset/".len();
    let token: String =
        body[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-').collect();
    let path = format!("/api/v1/self/reset/{token}");
    let answers = json!({ "answers": [
        { "question": 1, "answer": "Rex" }, { "question": 2, "answer": "Leeds" }, { "question": 3, "answer": "Blue" }
    ]});
    let (status, view) = post(&ts.anon, &format!("{path}/questions"), answers).await;
    assert_eq!((status, view["step"].as_str()), (200, Some("second_factor")), "{view}");
    assert!(view.get("mobile_hint").is_none_or(Value::is_null), "{view}");
    let (status, e) = post(&ts.anon, &format!("{path}/second-factor"), json!({})).await;
    let (status, _, why) = refusal(status, &e);
    assert_eq!(status, 409, "{e}");
    assert!(why.contains("not confirmed"), "{why}");
    assert_eq!(sent(&ts.vsc, new, "reset_code").await, 0);

    // The change ended the holder's portal session, and without an authenticator or a confirmed
    // number there is no second factor to sign in again with: the RA has to help.
    assert_eq!(get(&h.client, "/api/v1/self").await.0, 401);
    ts.stop().await;
}
