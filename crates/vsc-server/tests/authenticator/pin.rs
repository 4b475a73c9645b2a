//! Reset from the authenticator and the authenticator PIN: a registered device resets a locked
//! passcode (same policy and effects as the emailed reset); once a PIN is set, approving and
//! resetting need it; 5 wrong PINs lock it; an RA PIN-reset token is picked up exactly once, only
//! by its device, and a newer token voids the older.

use reqwest::Method;
use serde_json::json;
use vsc_client::device::Decision;
use vsc_proto::CardLoginRequest;
use vsc_server::{Principal, Vsc};
use vsc_testkit::{Backend, TestServer, on_both_backends};

use crate::devices::{
    DEVICE_PIN, Holder, TestDevice, enrolled_holder, message, post, register_device, register_device_with_pin,
};

on_both_backends!(
    the_authenticator_resets_a_locked_passcode_with_the_same_policy_and_effects,
    a_pin_guards_approving_and_resetting,
    five_wrong_pins_lock_until_one_ra_pin_reset_is_picked_up_once,
);

fn login_req(h: &Holder, passcode: &str, method: &str) -> CardLoginRequest {
    CardLoginRequest {
        email: h.email.clone(),
        passcode: Some(passcode.into()),
        method: method.into(),
        client: Some("test client".into()),
    }
}

async fn count(vsc: &Vsc, action: &str) -> usize {
    vsc.audit_log(&Principal::Operator, 1000).await.unwrap().iter().filter(|e| e.action == action).count()
}

/// A push login and the challenge the device sees.
async fn push(ts: &TestServer, h: &Holder, device: &TestDevice) -> (Option<u8>, vsc_proto::ChallengeView) {
    let login = ts.anon.card_login(&login_req(h, &h.passcode, "push")).await.unwrap();
    let mut list = device.client(ts).challenges(5).await.unwrap().challenges;
    let c = list.pop().unwrap();
    (login.number, c)
}

async fn the_authenticator_resets_a_locked_passcode_with_the_same_policy_and_effects(b: Backend) {
    let ts = TestServer::start(b).await;
    let h = enrolled_holder(&ts, "pin.reset@example.nhs.uk").await;
    let device = register_device(&ts, &h).await;
    let dc = device.client(&ts);

    // A card session open before the reset.
    let login = ts.anon.card_login(&login_req(&h, &h.passcode, "push")).await.unwrap();
    let c = dc.challenges(5).await.unwrap().challenges.pop().unwrap();
    assert_eq!(dc.answer(&c.id, &c.nonce, Decision::Approve, login.number).await.unwrap().state, "approved");
    let session = ts.anon.open_card_session(&login.login, None).await.unwrap();
    let before = ts.anon.with_token(&session.session);
    before.card_session().await.unwrap();

    for wrong in ["wrong1", "wrong2", "wrong3"] {
        assert_eq!(ts.anon.card_login(&login_req(&h, wrong, "push")).await.unwrap_err().status(), Some(401));
    }
    assert_eq!(ts.client.card(&h.serial).await.unwrap().state, "locked");

    // The same policy, and not the current passcode.
    let e = dc.reset_passcode("short", None).await.unwrap_err();
    assert_eq!((e.status(), e.field()), (Some(422), Some("new_passcode")), "{e}");
    let e = dc.reset_passcode(&h.passcode, None).await.unwrap_err();
    assert_eq!((e.status(), e.field()), (Some(422), Some("new_passcode")), "{e}");
    assert_eq!(ts.client.card(&h.serial).await.unwrap().state, "locked");

    dc.reset_passcode("newpc42", None).await.unwrap();
    assert_eq!(ts.client.card(&h.serial).await.unwrap().state, "active");
    assert!(message(&ts.vsc, &h.email, "passcode_changed").await.body.contains("passcode"));
    let events = ts.vsc.audit_log(&Principal::Operator, 1000).await.unwrap();
    let reset = events.iter().find(|e| e.action == "holder.passcode_reset").unwrap();
    let detail = reset.detail.to_string();
    assert!(detail.contains(&device.id) && detail.contains("authenticator"), "{detail}");
    assert_eq!(before.card_session().await.unwrap_err().status(), Some(401), "card sessions ended");

    // The old passcode no longer works; the new one logs in.
    assert_eq!(ts.anon.card_login(&login_req(&h, &h.passcode, "push")).await.unwrap_err().status(), Some(401));
    let login = ts.anon.card_login(&login_req(&h, "newpc42", "push")).await.unwrap();
    let c = dc.challenges(5).await.unwrap().challenges.pop().unwrap();
    assert_eq!(dc.answer(&c.id, &c.nonce, Decision::Approve, login.number).await.unwrap().state, "approved");
    ts.anon.open_card_session(&login.login, None).await.unwrap();
    ts.stop().await;
}

async fn a_pin_guards_approving_and_resetting(b: Backend) {
    // PINs optional (`authenticator.require_pin` off): a device registers without one and sets
    // it later.
    let dir = tempfile::tempdir().unwrap();
    let mut config = vsc_testkit::test_config(b, dir.path()).await;
    config.authenticator.require_pin = false;
    let ts = TestServer::start_with(config, dir).await;
    let h = enrolled_holder(&ts, "pin.guard@example.nhs.uk").await;
    let device = register_device_with_pin(&ts, &h, None).await;
    let dc = device.client(&ts);

    let me = dc.me().await.unwrap();
    assert_eq!((me.device.pin_set, me.device.pin_locked), (Some(false), Some(false)));
    // Without a PIN nothing asks for one.
    let (number, c) = push(&ts, &h, &device).await;
    assert_eq!(dc.answer(&c.id, &c.nonce, Decision::Approve, number).await.unwrap().state, "approved");

    let e = dc.set_pin("12a4", None).await.unwrap_err();
    assert_eq!((e.status(), e.field()), (Some(422), Some("pin")), "{e}");
    dc.set_pin("24680", None).await.unwrap();
    let me = dc.me().await.unwrap();
    assert_eq!((me.device.pin_set, me.device.pin_locked), (Some(true), Some(false)));
    // Changing it needs the current one.
    let e = dc.set_pin("1357", None).await.unwrap_err();
    assert_eq!((e.status(), e.field()), (Some(422), Some("current_pin")), "{e}");

    // Approving now needs the PIN; denying does not.
    let (number, c) = push(&ts, &h, &device).await;
    let e = dc.answer(&c.id, &c.nonce, Decision::Approve, number).await.unwrap_err();
    assert_eq!((e.status(), e.field()), (Some(422), Some("pin")), "{e}");
    let e = dc.answer_with_pin(&c.id, &c.nonce, Decision::Approve, number, Some("1111")).await.unwrap_err();
    assert_eq!((e.status(), e.field()), (Some(422), Some("pin")), "{e}");
    let ok = dc.answer_with_pin(&c.id, &c.nonce, Decision::Approve, number, Some("24680")).await.unwrap();
    assert_eq!(ok.state, "approved");
    let (_, c) = push(&ts, &h, &device).await;
    assert_eq!(dc.answer(&c.id, &c.nonce, Decision::Deny, None).await.unwrap().state, "denied");

    // Resetting the passcode needs it too.
    let e = dc.reset_passcode("newpc42", None).await.unwrap_err();
    assert_eq!((e.status(), e.field()), (Some(422), Some("pin")), "{e}");
    dc.reset_passcode("newpc42", Some("24680")).await.unwrap();

    dc.set_pin("1357", Some("24680")).await.unwrap();
    assert_eq!(count(&ts.vsc, "device.pin_set").await, 1);
    assert_eq!(count(&ts.vsc, "device.pin_changed").await, 1);
    assert_eq!(count(&ts.vsc, "device.pin_wrong").await, 1);
    ts.stop().await;
}

async fn five_wrong_pins_lock_until_one_ra_pin_reset_is_picked_up_once(b: Backend) {
    let ts = TestServer::start(b).await;
    let h = enrolled_holder(&ts, "pin.lock@example.nhs.uk").await;
    let device = register_device(&ts, &h).await;
    let other = register_device(&ts, &h).await;
    let dc = device.bare_client(&ts);
    assert_eq!(DEVICE_PIN, "2468", "registered with this PIN");

    let (number, c) = push(&ts, &h, &device).await;
    // Concurrent wrong PINs are counted exactly: 5 lock, and no check runs after that.
    let wrong: Vec<_> = (0..7)
        .map(|_| {
            let dc = dc.clone();
            let (id, nonce) = (c.id.clone(), c.nonce.clone());
            tokio::spawn(async move {
                dc.answer_with_pin(&id, &nonce, Decision::Approve, number, Some("0000")).await.unwrap_err().status()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for w in wrong {
        statuses.push(w.await.unwrap());
    }
    statuses.sort();
    assert_eq!(statuses.iter().filter(|s| **s == Some(422)).count(), 4, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == Some(403)).count(), 3, "{statuses:?}");
    assert_eq!(count(&ts.vsc, "device.pin_wrong").await, 5);
    assert_eq!(count(&ts.vsc, "device.pin_locked").await, 1);
    assert_eq!(dc.me().await.unwrap().device.pin_locked, Some(true));
    // Locked: even the right PIN is refused, for approving and for resetting.
    let e = dc.answer_with_pin(&c.id, &c.nonce, Decision::Approve, number, Some("2468")).await.unwrap_err();
    assert_eq!(e.status(), Some(403), "{e}");
    assert_eq!(dc.reset_passcode("newpc42", Some("2468")).await.unwrap_err().status(), Some(403));

    // The RA issues two tokens: only the newer works, once, and only for this device.
    let path = format!("/api/v1/devices/{}/pin-reset", device.id);
    let (status, first) = post(&ts.client, &path, json!({})).await;
    assert_eq!(status, 201, "{first}");
    let (status, second) = post(&ts.client, &path, json!({})).await;
    assert_eq!(status, 201, "{second}");
    let (first, second) = (first["token"].as_str().unwrap(), second["token"].as_str().unwrap());
    assert_ne!(first, second);
    assert_eq!(ts.anon.raw(Method::POST, &path, None).await.unwrap().0, 401, "RA staff only");
    let (status, _) = post(&ts.client, "/api/v1/devices/no-such-device/pin-reset", json!({})).await;
    assert_eq!(status, 404);
    // Another organisation's RA does not see the device.
    let org2 = ts
        .vsc
        .bootstrap("ORG2", "Other Trust", &["other.nhs.uk".into()], "boss@other.nhs.uk", "Olive Boss")
        .await
        .unwrap();
    let (status, body) = post(&ts.anon.with_token(&org2.token), &path, json!({})).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(count(&ts.vsc, "device.pin_reset_issued").await, 2);

    let e = dc.reset_pin(first, "1357").await.unwrap_err();
    assert_eq!(e.status(), Some(410), "older token void: {e}");
    let e = other.client(&ts).reset_pin(second, "1357").await.unwrap_err();
    assert_eq!(e.status(), Some(404), "another device's token: {e}");
    let e = dc.reset_pin(second, "12").await.unwrap_err();
    assert_eq!((e.status(), e.field()), (Some(422), Some("new_pin")), "{e}");
    dc.reset_pin(second, "1357").await.unwrap();
    let e = dc.reset_pin(second, "9753").await.unwrap_err();
    assert_eq!(e.status(), Some(410), "used once: {e}");
    assert_eq!(count(&ts.vsc, "device.pin_reset").await, 1);
    assert_eq!(count(&ts.vsc, "device.pin_reset_issued").await, 2);

    let me = dc.me().await.unwrap();
    assert_eq!((me.device.pin_set, me.device.pin_locked), (Some(true), Some(false)));
    let ok = dc.answer_with_pin(&c.id, &c.nonce, Decision::Approve, number, Some("1357")).await.unwrap();
    assert_eq!(ok.state, "approved");
    ts.stop().await;
}

#[test]
fn the_pin_and_reset_routes_are_documented() {
    let doc = serde_json::to_value(vsc_server::api::openapi()).unwrap();
    for path in [
        "/api/v1/authenticator/reset-passcode",
        "/api/v1/authenticator/pin",
        "/api/v1/authenticator/pin/reset",
        "/api/v1/devices/{id}/pin-reset",
    ] {
        assert!(doc["paths"][path]["post"].is_object(), "POST {path} missing from the OpenAPI document");
    }
    assert!(doc["components"]["schemas"]["ChallengeAnswer"]["properties"]["pin"].is_object());
}
