//! Two factors stay two: with `authenticator.require_pin` (the default) a device registers with
//! its own PIN, and a device without one (registered before the rule) may only set one: every
//! other device request answers `409 ST0002PinRequired` until it has. With the rule off, devices
//! without a PIN work as before.

use serde_json::Value;
use vsc_client::device::Decision;
use vsc_crypto::device::DeviceKey;
use vsc_proto::{CardLoginRequest, ErrorCode};
use vsc_testkit::{Backend, TestServer, on_both_backends, test_config};

use crate::devices::{
    DEVICE_PIN, Holder, PASSCODE, TestDevice, device_token, enrolled_holder, post, register_device,
    register_device_with_pin, registration_with_pin,
};

on_both_backends!(
    registration_without_a_pin_is_refused_while_pins_are_required,
    a_device_without_a_pin_must_set_one_before_it_approves_or_resets,
    without_the_rule_devices_without_a_pin_work_as_before,
);

fn push_login(h: &Holder) -> CardLoginRequest {
    CardLoginRequest {
        email: h.email.clone(),
        passcode: Some(h.passcode.clone()),
        method: "push".into(),
        client: Some("pin test".into()),
    }
}

/// A server with `authenticator.require_pin` set to `require_pin`.
async fn server(b: Backend, require_pin: bool) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(b, dir.path()).await;
    config.authenticator.require_pin = require_pin;
    TestServer::start_with(config, dir).await
}

/// The PIN state the store holds for a device.
async fn has_pin(ts: &TestServer, id: &str) -> bool {
    let mut conn = ts.vsc.store().conn().await.unwrap();
    vsc_store::device_pins::state(&mut conn, id).await.unwrap().unwrap().is_set()
}

fn is_pin_required(e: &vsc_client::ClientError) -> bool {
    e.status() == Some(409) && e.code() == Some(ErrorCode::PinRequired)
}

async fn registration_without_a_pin_is_refused_while_pins_are_required(b: Backend) {
    let ts = TestServer::start(b).await;
    assert!(ts.config.authenticator.require_pin, "on by default");
    let h = enrolled_holder(&ts, "pin.needed@example.nhs.uk").await;
    let (id, token) = device_token(&ts, &h, "Phone A").await;
    let key = DeviceKey::generate().unwrap();
    let path = "/api/v1/authenticator/register";
    for pin in [None, Some(""), Some("12a4"), Some("123"), Some("123456789")] {
        let (status, e) = post(&ts.anon, path, registration_with_pin(&token, &key, PASSCODE, pin)).await;
        assert_eq!((status, e["error"]["field"].as_str()), (422, Some("pin")), "{pin:?}: {e}");
    }
    // Refused before the passcode was checked: nothing counted against the card, and the
    // registration code still works.
    let (status, e) = post(&ts.anon, path, registration_with_pin(&token, &key, "wrong1", Some(DEVICE_PIN))).await;
    assert_eq!((status, e["error"]["field"].as_str()), (422, Some("passcode")), "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("3 wrong passcodes"), "{e}");
    let (status, reg) = post(&ts.anon, path, registration_with_pin(&token, &key, PASSCODE, Some(DEVICE_PIN))).await;
    assert_eq!(status, 200, "{reg}");
    assert!(has_pin(&ts, &id).await, "the PIN is stored with the device");
    let device = TestDevice {
        id: id.clone(),
        key,
        totp: vsc_crypto::totp::TotpSecret::from_bytes(&[0; 20]),
        pin: Some(DEVICE_PIN.into()),
    };
    let me = device.client(&ts).me().await.unwrap();
    assert_eq!((me.device.pin_set, me.device.pin_locked), (Some(true), Some(false)));

    // The PIN is a hash, not the digits, and no event names it.
    let mut conn = ts.vsc.store().conn().await.unwrap();
    let stored: Option<String> =
        sqlx::query_scalar("SELECT pin_hash FROM devices WHERE id = $1").bind(&id).fetch_one(&mut *conn).await.unwrap();
    assert!(stored.unwrap().starts_with("$argon2id$"));
    drop(conn);
    let events = ts.client.audit(100).await.unwrap().events;
    let registered = events.iter().find(|e| e.action == "device.registered").unwrap();
    let detail = serde_json::to_string(&registered).unwrap();
    assert!(detail.contains("\"pin_set\":true") && !detail.contains(DEVICE_PIN), "{detail}");

    // Approving asks for that PIN.
    let login = ts.anon.card_login(&push_login(&h)).await.unwrap();
    let c = device.bare_client(&ts).challenges(5).await.unwrap().challenges.remove(0);
    let e = device.bare_client(&ts).answer(&c.id, &c.nonce, Decision::Approve, login.number).await.unwrap_err();
    assert_eq!((e.status(), e.field()), (Some(422), Some("pin")), "{e}");
    let ok = device.client(&ts).answer(&c.id, &c.nonce, Decision::Approve, login.number).await.unwrap();
    assert_eq!(ok.state, "approved");
    ts.stop().await;
}

async fn a_device_without_a_pin_must_set_one_before_it_approves_or_resets(b: Backend) {
    let ts = TestServer::start(b).await;
    let h = enrolled_holder(&ts, "pin.legacy@example.nhs.uk").await;
    let legacy = register_device(&ts, &h).await;
    let other = register_device(&ts, &h).await;
    // A device registered before PINs were required: no PIN on record.
    let dc = legacy.client(&ts);
    dc.me().await.unwrap();
    let mut conn = ts.vsc.store().conn().await.unwrap();
    sqlx::query("UPDATE devices SET pin_hash = NULL WHERE id = $1").bind(&legacy.id).execute(&mut *conn).await.unwrap();
    drop(conn);

    // Everything but setting the PIN answers 409 ST0002PinRequired: reading, listing, approving,
    // resetting the passcode.
    let e = dc.me().await.unwrap_err();
    assert!(is_pin_required(&e), "{e}");
    assert!(e.to_string().contains("set one"), "{e}");
    let login = ts.anon.card_login(&push_login(&h)).await.unwrap();
    assert!(is_pin_required(&dc.challenges(0).await.unwrap_err()));
    let c = other.client(&ts).challenges(5).await.unwrap().challenges.remove(0);
    assert!(is_pin_required(&dc.challenge(&c.id).await.unwrap_err()));
    for decision in [Decision::Approve, Decision::Deny] {
        let e = dc.answer(&c.id, &c.nonce, decision, login.number).await.unwrap_err();
        assert!(is_pin_required(&e), "{decision:?}: {e}");
    }
    let e = dc.reset_passcode("newpc42", None).await.unwrap_err();
    assert!(is_pin_required(&e), "{e}");
    let e = dc.reset_pin("vpr_whatever", "1357").await.unwrap_err();
    assert!(is_pin_required(&e), "{e}");
    // The raw body is our error format with the stable code.
    let token = dc.token(&reqwest::Method::GET, "/api/v1/authenticator/me").unwrap();
    let raw = reqwest::Client::new()
        .get(format!("{}/api/v1/authenticator/me", ts.url))
        .header("authorization", format!("Device {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status().as_u16(), 409);
    let body: Value = raw.json().await.unwrap();
    assert_eq!(body["error"]["code"], "ST0002PinRequired", "{body}");
    // Nothing was approved or changed meanwhile.
    assert_eq!(ts.anon.login_state(&login.login, 0).await.unwrap().state, "pending");

    // Setting the PIN is allowed; then the device works, with the PIN.
    let bare = legacy.bare_client(&ts);
    let e = bare.set_pin("12", None).await.unwrap_err();
    assert_eq!((e.status(), e.field()), (Some(422), Some("pin")), "{e}");
    bare.set_pin("1357", None).await.unwrap();
    let me = bare.me().await.unwrap();
    assert_eq!(me.device.pin_set, Some(true));
    let e = bare.answer(&c.id, &c.nonce, Decision::Approve, login.number).await.unwrap_err();
    assert_eq!((e.status(), e.field()), (Some(422), Some("pin")), "{e}");
    let ok = bare.answer_with_pin(&c.id, &c.nonce, Decision::Approve, login.number, Some("1357")).await.unwrap();
    assert_eq!(ok.state, "approved");
    ts.anon.open_card_session(&login.login, None).await.unwrap();
    bare.reset_passcode("newpc42", Some("1357")).await.unwrap();
    ts.stop().await;
}

async fn without_the_rule_devices_without_a_pin_work_as_before(b: Backend) {
    let ts = server(b, false).await;
    let h = enrolled_holder(&ts, "pin.optional@example.nhs.uk").await;
    let device = register_device_with_pin(&ts, &h, None).await;
    assert!(!has_pin(&ts, &device.id).await);
    let dc = device.client(&ts);
    let me = dc.me().await.unwrap();
    assert_eq!((me.device.pin_set, me.device.pin_locked), (Some(false), Some(false)));
    let login = ts.anon.card_login(&push_login(&h)).await.unwrap();
    let c = dc.challenges(5).await.unwrap().challenges.remove(0);
    assert_eq!(dc.answer(&c.id, &c.nonce, Decision::Approve, login.number).await.unwrap().state, "approved");
    dc.reset_passcode("newpc42", None).await.unwrap();
    // A PIN given at registration is still kept, and then asked for.
    let h2 = enrolled_holder(&ts, "pin.chosen@example.nhs.uk").await;
    let chosen = register_device_with_pin(&ts, &h2, Some("97531")).await;
    assert!(has_pin(&ts, &chosen.id).await);
    let login = ts.anon.card_login(&push_login(&h2)).await.unwrap();
    let c = chosen.bare_client(&ts).challenges(5).await.unwrap().challenges.remove(0);
    let e = chosen.bare_client(&ts).answer(&c.id, &c.nonce, Decision::Approve, login.number).await.unwrap_err();
    assert_eq!((e.status(), e.field()), (Some(422), Some("pin")), "{e}");
    assert_eq!(
        chosen.client(&ts).answer(&c.id, &c.nonce, Decision::Approve, login.number).await.unwrap().state,
        "approved"
    );
    ts.stop().await;
}

#[test]
fn the_pin_rule_is_documented() {
    let doc = serde_json::to_value(vsc_server::api::openapi()).unwrap();
    assert!(doc["components"]["schemas"]["RegisterDeviceRequest"]["properties"]["pin"].is_object());
    for (method, path) in [
        ("get", "/api/v1/authenticator/me"),
        ("get", "/api/v1/authenticator/challenges"),
        ("post", "/api/v1/authenticator/challenges/{id}/answer"),
        ("post", "/api/v1/authenticator/reset-passcode"),
    ] {
        let text = doc["paths"][path][method]["responses"]["409"].to_string();
        assert!(text.contains("ST0002PinRequired"), "{method} {path}: {text}");
    }
    let codes = doc["components"]["schemas"]["ErrorCode"].to_string();
    assert!(codes.contains("ST0002PinRequired"), "{codes}");
}
