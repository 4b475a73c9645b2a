//! Adding, registering, listing and deleting authenticator devices. The helpers at the top
//! (an enrolled holder, a registered device) are shared with the login tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use vsc_client::{Client, DeviceClient};
use vsc_crypto::device::DeviceKey;
use vsc_crypto::device_token::{b64, register_message};
use vsc_crypto::totp::TotpSecret;
use vsc_proto::{CreateUserRequest, IssueCardRequest};
use vsc_server::Vsc;
use vsc_testkit::{Backend, ManualClock, TestServer, on_both_backends};

on_both_backends!(
    a_device_is_added_confirmed_by_email_registered_and_listed,
    wrong_email_codes_are_counted_and_five_void_the_code,
    registration_tokens_work_once_and_expire,
    bad_proofs_keys_and_passcodes_are_refused_and_wrong_passcodes_lock,
    a_fourth_device_is_refused,
    devices_are_deleted_in_any_state_and_only_by_their_holder,
    the_portal_adds_shows_the_qr_code_and_deletes,
);

/// The passcode every test holder chooses.
pub const PASSCODE: &str = "abc123";

/// The PIN every test authenticator registers with (`authenticator.require_pin` is on by default).
pub const DEVICE_PIN: &str = "2468";

/// An enrolled card holder with a portal session.
pub struct Holder {
    /// Email address.
    pub email: String,
    /// Card passcode.
    pub passcode: String,
    /// Portal session token.
    pub session: String,
    /// A client presenting the session.
    pub client: Client,
    /// User id.
    pub user_id: String,
    /// The card's serial number.
    pub serial: String,
}

/// A registered authenticator device.
pub struct TestDevice {
    /// Device id.
    pub id: String,
    /// The device key.
    pub key: DeviceKey,
    /// The TOTP secret the server handed out.
    pub totp: TotpSecret,
    /// The device's PIN, when it has one.
    pub pin: Option<String>,
}

impl TestDevice {
    /// A client acting as this device, giving its PIN (if any) to approvals and resets.
    pub fn client(&self, ts: &TestServer) -> DeviceClient {
        let client = self.bare_client(ts);
        match &self.pin {
            Some(pin) => client.with_pin(pin),
            None => client,
        }
    }

    /// A client acting as this device that gives no PIN unless told to.
    pub fn bare_client(&self, ts: &TestServer) -> DeviceClient {
        DeviceClient::new(&ts.url, &self.id, DeviceKey::from_pkcs8(self.key.pkcs8()).unwrap())
    }
}

/// The newest message to `to` of `kind`, once the delivery worker has handled it.
pub async fn message(vsc: &Vsc, to: &str, kind: &str) -> vsc_server::service::OutboxMessage {
    for _ in 0..100 {
        let newest = vsc.outbox(Some(to), 50).await.unwrap().into_iter().rev().find(|m| m.kind == kind);
        if let Some(m) = newest.filter(|m| m.status != "pending") {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no {kind} message to {to}");
}

/// The 6-digit code in a message body.
pub fn six_digits(body: &str) -> String {
    body.split(|c: char| !c.is_ascii_digit()).find(|w| w.len() == 6).expect("6-digit code").to_string()
}

/// `POST` with a JSON body → (status, JSON).
pub async fn post(c: &Client, path: &str, body: Value) -> (u16, Value) {
    let (status, text) = c.raw(Method::POST, path, Some(&body)).await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// `GET` → (status, JSON).
pub async fn get(c: &Client, path: &str) -> (u16, Value) {
    let (status, text) = c.raw(Method::GET, path, None).await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// `DELETE` → status.
pub async fn delete(c: &Client, path: &str) -> u16 {
    c.raw(Method::DELETE, path, None).await.unwrap().0
}

/// A holder created by the RA, issued a V2 card, enrolled through the API (passcode
/// [`PASSCODE`]) and signed in.
pub async fn enrolled_holder(ts: &TestServer, email: &str) -> Holder {
    enrolled_holder_with(ts, email, "v2").await
}

/// [`enrolled_holder`] with a card of type `card_type` (`v1` / `v2`).
pub async fn enrolled_holder_with(ts: &TestServer, email: &str, card_type: &str) -> Holder {
    static MOBILES: AtomicU32 = AtomicU32::new(100);
    let mobile = format!("+447700900{:03}", MOBILES.fetch_add(1, Ordering::Relaxed) % 1000);
    let user = ts
        .client
        .create_user(&CreateUserRequest {
            organisation: "ORG1".into(),
            forename: "Jo".into(),
            surname: "O'Hara".into(),
            email: email.into(),
            mobile: Some(mobile.clone()),
            subject_cn: None,
            directory_account: None,
        })
        .await
        .unwrap();
    let req = IssueCardRequest { card_type: card_type.into(), roles: vec!["R8000".into()], key_algorithm: None };
    let serial = ts.client.issue_card(&user.id.to_string(), &req).await.unwrap().serial;
    let body = message(&ts.vsc, email, "invitation").await.body;
    let start = body.find("/self-service/enrol/").unwrap() + "/self-service/enrol/".len();
    let token: String =
        body[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-').collect();
    let choices = json!({ "passcode": PASSCODE, "answers": [
        { "question": 1, "answer": "Rex" }, { "question": 2, "answer": "Leeds" }, { "question": 3, "answer": "Blue" }
    ]});
    let (status, sent) = post(&ts.anon, &format!("/api/v1/enrolment/{token}"), choices).await;
    assert_eq!(status, 202, "{sent}");
    let code = six_digits(&message(&ts.vsc, &mobile, "enrolment_code").await.body);
    let (status, session) = post(&ts.anon, &format!("/api/v1/enrolment/{token}/verify"), json!({ "code": code })).await;
    assert_eq!(status, 200, "{session}");
    let session = session["session"].as_str().unwrap().to_string();
    Holder {
        email: email.into(),
        passcode: PASSCODE.into(),
        client: ts.anon.with_token(&session),
        session,
        user_id: user.id.to_string(),
        serial,
    }
}

/// Start adding a device named `name` → its id and the emailed code.
pub async fn add_device(ts: &TestServer, holder: &Holder, name: &str) -> (String, String) {
    let (status, created) =
        post(&holder.client, "/api/v1/self/devices", json!({ "name": name, "device_type": "phone" })).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    // Wait for this device's email (the body names it).
    for _ in 0..100 {
        let m = message(&ts.vsc, &holder.email, "device_code").await;
        if m.body.contains(&format!("\"{name}\"")) {
            return (id, six_digits(&m.body));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no device_code email for {name}");
}

/// The `t` parameter of a registration URI.
pub fn uri_token(uri: &str) -> String {
    uri.split_once("&t=").unwrap().1.to_string()
}

/// Add a device and confirm its emailed code → (device id, registration token).
pub async fn device_token(ts: &TestServer, holder: &Holder, name: &str) -> (String, String) {
    let (id, code) = add_device(ts, holder, name).await;
    let (status, reg) =
        post(&holder.client, &format!("/api/v1/self/devices/{id}/verify"), json!({ "code": code })).await;
    assert_eq!(status, 200, "{reg}");
    (id, uri_token(reg["registration_uri"].as_str().unwrap()))
}

/// The registration request an authenticator sends for `token` with `key` (PIN [`DEVICE_PIN`]).
pub fn registration(token: &str, key: &DeviceKey, passcode: &str) -> Value {
    json!({
        "token": token,
        "public_key": b64(&key.public_key()),
        "proof": b64(&key.sign(&register_message(token)).unwrap()),
        "passcode": passcode,
        "pin": DEVICE_PIN,
        "client_version": "vsc-test 1.2.3",
        "platform": "linux",
        "platform_version": "6.12",
    })
}

/// [`registration`] with another PIN, or none (`None` leaves the field out).
pub fn registration_with_pin(token: &str, key: &DeviceKey, passcode: &str, pin: Option<&str>) -> Value {
    let mut body = registration(token, key, passcode);
    match pin {
        Some(pin) => body["pin"] = pin.into(),
        None => {
            body.as_object_mut().unwrap().remove("pin");
        }
    }
    body
}

/// Add, confirm and register a device through the real API (email code from the local outbox),
/// with PIN [`DEVICE_PIN`].
pub async fn register_device(ts: &TestServer, holder: &Holder) -> TestDevice {
    register_device_with_pin(ts, holder, Some(DEVICE_PIN)).await
}

/// [`register_device`] with another PIN, or none (for servers with `require_pin` off).
pub async fn register_device_with_pin(ts: &TestServer, holder: &Holder, pin: Option<&str>) -> TestDevice {
    let n = holder.client.raw(Method::GET, "/api/v1/self/devices", None).await.unwrap().1.matches("\"id\"").count();
    let (id, token) = device_token(ts, holder, &format!("Phone {}", n + 1)).await;
    let key = DeviceKey::generate().unwrap();
    let body = registration_with_pin(&token, &key, &holder.passcode, pin);
    let (status, reg) = post(&ts.anon, "/api/v1/authenticator/register", body).await;
    assert_eq!(status, 200, "{reg}");
    assert_eq!(reg["device_id"], id.as_str());
    let secret = reg["totp"]["secret"].as_str().unwrap();
    TestDevice { id, key, totp: TotpSecret::from_bytes(&base32_decode(secret)), pin: pin.map(String::from) }
}

/// RFC 4648 base32 (no padding) → bytes.
pub fn base32_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut bits, mut acc, mut out) = (0u32, 0u64, Vec::new());
    for c in s.trim_end_matches('=').bytes() {
        let v = ALPHABET.iter().position(|a| *a == c.to_ascii_uppercase()).expect("base32") as u64;
        acc = (acc << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// Sign the holder in to the portal again (the old session ended): passcode, then the push
/// approved on `device` with the right number → a client with the new session.
pub async fn sign_in_again(ts: &TestServer, h: &Holder, device: &TestDevice) -> Client {
    let (status, view) =
        post(&ts.anon, "/api/v1/self/sign-in", json!({ "email": h.email, "passcode": h.passcode })).await;
    assert_eq!((status, view["second_factor"].as_str()), (200, Some("push")), "{view}");
    let number = view["number"].as_u64().and_then(|n| u8::try_from(n).ok());
    let c = crate::portal_sign_in::the_push(ts, device).await;
    device.client(ts).answer(&c.id, &c.nonce, vsc_client::device::Decision::Approve, number).await.unwrap();
    let id = view["sign_in"].as_str().unwrap();
    let (status, session) = post(&ts.anon, &format!("/api/v1/self/sign-in/{id}/complete"), json!({})).await;
    assert_eq!(status, 200, "{session}");
    ts.anon.with_token(session["session"].as_str().unwrap())
}

/// A device's stored state (`None`: deleted), for when the holder has no session to ask with.
pub async fn stored_state(vsc: &Vsc, id: &str) -> Option<String> {
    let mut conn = vsc.store().conn().await.unwrap();
    let row = sqlx::query("SELECT state FROM devices WHERE id = $1").bind(id).fetch_optional(&mut *conn).await.unwrap();
    row.map(|r| sqlx::Row::get::<String, _>(&r, "state"))
}

/// The state of one of the holder's devices (`gone` when it is not listed).
pub async fn state_of(h: &Holder, id: &str) -> String {
    let (_, list) = get(&h.client, "/api/v1/self/devices").await;
    let devices = list["devices"].as_array().unwrap();
    devices.iter().find(|d| d["id"] == id).map_or("gone".into(), |d| d["state"].as_str().unwrap().to_string())
}

async fn actions(ts: &TestServer) -> Vec<String> {
    ts.client.audit(100).await.unwrap().events.into_iter().map(|e| e.action).collect()
}

async fn a_device_is_added_confirmed_by_email_registered_and_listed(b: Backend) {
    let ts = TestServer::start(b).await;
    let h = enrolled_holder(&ts, "dev.one@example.nhs.uk").await;

    let (status, created) = post(
        &h.client,
        "/api/v1/self/devices",
        json!({ "name": "  Work phone ", "device_type": "phone", "authenticator_type": "vsc" }),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let (_, list) = get(&h.client, "/api/v1/self/devices").await;
    assert_eq!(list["devices"][0]["state"], "pending_code", "{list}");
    assert_eq!(list["devices"][0]["name"], "Work phone", "names are trimmed");
    let mail = message(&ts.vsc, &h.email, "device_code").await;
    assert!(mail.body.contains("\"Work phone\""), "{}", mail.body);
    let code = six_digits(&mail.body);

    let (status, reg) = post(&h.client, &format!("/api/v1/self/devices/{id}/verify"), json!({ "code": code })).await;
    assert_eq!(status, 200, "{reg}");
    let uri = reg["registration_uri"].as_str().unwrap();
    let encoded = ts.url.replace(':', "%3A").replace('/', "%2F");
    assert!(uri.starts_with(&format!("vsc-auth://register?v=1&url={encoded}&t=vdr_")), "{uri}");
    let svg = reg["qr_svg"].as_str().unwrap();
    assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"), "{svg}");
    let expires = time::OffsetDateTime::parse(
        reg["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let left = (expires - vsc_core::Clock::now(&vsc_server::clock::SystemClock)).whole_seconds();
    assert!((590..=600).contains(&left), "the token lasts 10 minutes: {left}");
    assert_eq!(get(&h.client, "/api/v1/self/devices").await.1["devices"][0]["state"], "pending_registration");
    // The code is spent.
    let (status, e) = post(&h.client, &format!("/api/v1/self/devices/{id}/verify"), json!({ "code": code })).await;
    assert_eq!((status, e["error"]["code"].as_str()), (409, Some("ST0001InvalidState")), "{e}");

    let token = uri_token(uri);
    let key = DeviceKey::generate().unwrap();
    let (status, done) = post(&ts.anon, "/api/v1/authenticator/register", registration(&token, &key, PASSCODE)).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["device_id"], id.as_str());
    assert_eq!(done["email"], h.email.as_str());
    assert!(done["holder"].as_str().unwrap().starts_with("JO O'HARA ("), "{done}");
    assert_eq!(done["totp"]["algorithm"], "SHA1");
    assert_eq!((done["totp"]["digits"].as_u64(), done["totp"]["period"].as_u64()), (Some(6), Some(30)));
    let secret = base32_decode(done["totp"]["secret"].as_str().unwrap());
    assert!(secret.len() >= 20, "at least 160 bits: {}", secret.len());

    let (_, list) = get(&h.client, "/api/v1/self/devices").await;
    let d = &list["devices"][0];
    assert_eq!(d["state"], "active", "{list}");
    assert_eq!(d["client_version"], "vsc-test 1.2.3");
    assert_eq!((d["platform"].as_str(), d["platform_version"].as_str()), (Some("linux"), Some("6.12")));
    assert_eq!((d["device_type"].as_str(), d["authenticator_type"].as_str()), (Some("phone"), Some("vsc")));
    assert!(d["registered_at"].is_string(), "{d}");
    let (_, me) = get(&h.client, "/api/v1/self").await;
    assert_eq!(me["devices"][0]["id"], id.as_str(), "the holder view lists devices");

    // The device authenticates with its key and sees itself, its holder and their cards.
    let device =
        TestDevice { id: id.clone(), key, totp: TotpSecret::from_bytes(&secret), pin: Some(DEVICE_PIN.into()) };
    let view = device.client(&ts).me().await.unwrap();
    assert_eq!(view.device.id, id);
    assert_eq!(view.email, h.email);
    assert_eq!(view.cards[0].serial, h.serial);

    // The TOTP secret is stored sealed, never in plaintext.
    let mut conn = ts.vsc.store().conn().await.unwrap();
    let row = vsc_store::devices::by_id(&mut conn, &id).await.unwrap().unwrap();
    let sealed = row.sealed_totp.unwrap();
    assert!(sealed.starts_with(b"VSE1"), "envelope-encrypted");
    assert!(!sealed.windows(secret.len()).any(|w| w == secret.as_slice()), "the secret is not in the sealed bytes");
    let b32 = device.totp.base32();
    assert!(!sealed.windows(b32.len()).any(|w| w == b32.as_bytes()));
    assert_eq!(row.public_key.unwrap(), device.key.public_key());
    assert!(row.code_hash.is_none(), "the email code is gone once used");

    let actions = actions(&ts).await;
    for a in ["device.add_started", "device.code_verified", "device.registered"] {
        assert!(actions.contains(&a.to_string()), "{a} audited: {actions:?}");
    }
    let events = ts.client.audit(100).await.unwrap().events;
    let registered = events.iter().find(|e| e.action == "device.registered").unwrap();
    let detail = serde_json::to_string(&registered).unwrap();
    assert!(detail.contains("vsc-test 1.2.3") && detail.contains("linux"), "{detail}");
    assert!(!detail.contains(PASSCODE) && !detail.contains(&b32), "no secrets in the audit: {detail}");
}

async fn wrong_email_codes_are_counted_and_five_void_the_code(b: Backend) {
    let clock = Arc::new(ManualClock::default());
    let ts = TestServer::start_with_clock(b, clock.clone()).await;
    let h = enrolled_holder(&ts, "dev.codes@example.nhs.uk").await;
    let (id, code) = add_device(&ts, &h, "Tablet").await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let path = format!("/api/v1/self/devices/{id}/verify");
    for left in (0..5).rev() {
        let (status, e) = post(&h.client, &path, json!({ "code": wrong })).await;
        assert_eq!((status, e["error"]["field"].as_str()), (422, Some("code")), "{e}");
        let m = e["error"]["message"].as_str().unwrap();
        if left > 0 {
            assert!(m.contains(&format!("{left} attempt(s) left")), "{m}");
        } else {
            assert!(m.contains("no longer valid"), "{m}");
        }
    }
    let (status, e) = post(&h.client, &path, json!({ "code": code })).await;
    assert_eq!((status, e["error"]["code"].as_str()), (409, Some("ST0001InvalidState")), "5 wrong codes void it: {e}");
    assert_eq!(get(&h.client, "/api/v1/self/devices").await.1["devices"][0]["state"], "pending_code");
    assert!(actions(&ts).await.iter().filter(|a| *a == "device.code_wrong").count() >= 5);

    // An expired code (10 minutes) is refused too.
    let (id, code) = add_device(&ts, &h, "Desk").await;
    clock.advance(Duration::from_secs(601));
    let (status, e) = post(&h.client, &format!("/api/v1/self/devices/{id}/verify"), json!({ "code": code })).await;
    assert_eq!(status, 409, "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("expired"), "{e}");

    // Bad requests are refused with the field at fault.
    for (body, field) in [
        (json!({ "name": " ", "device_type": "phone" }), "name"),
        (json!({ "name": "x".repeat(61), "device_type": "phone" }), "name"),
        (json!({ "name": "Watch", "device_type": "watch" }), "device_type"),
        (json!({ "name": "Phone", "device_type": "phone", "authenticator_type": "other" }), "authenticator_type"),
    ] {
        let (status, e) = post(&h.client, "/api/v1/self/devices", body).await;
        assert_eq!((status, e["error"]["field"].as_str()), (422, Some(field)), "{e}");
    }
    assert_eq!(post(&ts.anon, "/api/v1/self/devices", json!({ "name": "x", "device_type": "phone" })).await.0, 401);
}

async fn registration_tokens_work_once_and_expire(b: Backend) {
    let clock = Arc::new(ManualClock::default());
    let ts = TestServer::start_with_clock(b, clock.clone()).await;
    let h = enrolled_holder(&ts, "dev.tokens@example.nhs.uk").await;
    let (_, token) = device_token(&ts, &h, "Phone A").await;
    let key = DeviceKey::generate().unwrap();
    assert_eq!(post(&ts.anon, "/api/v1/authenticator/register", registration(&token, &key, PASSCODE)).await.0, 200);
    let other = DeviceKey::generate().unwrap();
    let (status, e) = post(&ts.anon, "/api/v1/authenticator/register", registration(&token, &other, PASSCODE)).await;
    assert_eq!((status, e["error"]["code"].as_str()), (410, Some("EN0002LinkUsed")), "{e}");

    let (id, token) = device_token(&ts, &h, "Phone B").await;
    clock.advance(Duration::from_secs(601));
    let (status, e) = post(&ts.anon, "/api/v1/authenticator/register", registration(&token, &key, PASSCODE)).await;
    assert_eq!((status, e["error"]["code"].as_str()), (410, Some("EN0001LinkExpired")), "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("10 minutes"), "{e}");

    let forged = "vdr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let (status, e) = post(&ts.anon, "/api/v1/authenticator/register", registration(forged, &key, PASSCODE)).await;
    assert_eq!((status, e["error"]["field"].as_str()), (404, Some("token")), "{e}");
    assert_eq!(state_of(&h, &id).await, "pending_registration");
    assert_eq!(get(&h.client, "/api/v1/self/devices").await.1["devices"].as_array().unwrap().len(), 2);
}

async fn bad_proofs_keys_and_passcodes_are_refused_and_wrong_passcodes_lock(b: Backend) {
    let ts = TestServer::start(b).await;
    let h = enrolled_holder(&ts, "dev.proof@example.nhs.uk").await;
    let (id, token) = device_token(&ts, &h, "Phone").await;
    let key = DeviceKey::generate().unwrap();
    let register = |body: Value| {
        let anon = ts.anon.clone();
        async move { post(&anon, "/api/v1/authenticator/register", body).await }
    };

    // A proof made by another key, or over another message.
    let mut body = registration(&token, &key, PASSCODE);
    body["proof"] = json!(b64(&DeviceKey::generate().unwrap().sign(&register_message(&token)).unwrap()));
    let (status, e) = register(body).await;
    assert_eq!((status, e["error"]["field"].as_str()), (422, Some("proof")), "{e}");
    let mut body = registration(&token, &key, PASSCODE);
    body["proof"] = json!(b64(&key.sign(b"vsc-device-register-v1\nsomething else").unwrap()));
    assert_eq!(register(body).await.1["error"]["field"], "proof");
    // A public key that is not a P-256 point.
    let mut body = registration(&token, &key, PASSCODE);
    let mut off_curve = key.public_key();
    off_curve[64] ^= 1;
    body["public_key"] = json!(b64(&off_curve));
    assert_eq!(register(body).await.1["error"]["field"], "public_key");
    let mut conn = ts.vsc.store().conn().await.unwrap();
    assert_eq!(vsc_store::holders::passcode_failures(&mut conn, &h.user_id).await.unwrap(), 0, "no passcode checked");
    assert!(actions(&ts).await.contains(&"device.registration_refused".to_string()));

    // A wrong passcode is refused and counts toward the card lockout.
    let (status, e) = register(registration(&token, &key, "wrong1")).await;
    assert_eq!((status, e["error"]["field"].as_str()), (422, Some("passcode")), "{e}");
    assert_eq!(vsc_store::holders::passcode_failures(&mut conn, &h.user_id).await.unwrap(), 1);
    assert_eq!(get(&h.client, "/api/v1/self/devices").await.1["devices"][0]["state"], "pending_registration");
    // The right one clears the count.
    assert_eq!(register(registration(&token, &key, PASSCODE)).await.0, 200);
    assert_eq!(vsc_store::holders::passcode_failures(&mut conn, &h.user_id).await.unwrap(), 0);

    // Three wrong passcodes lock the card; then even the right one is refused.
    let (second, token) = device_token(&ts, &h, "Phone 2").await;
    for _ in 0..3 {
        assert_eq!(register(registration(&token, &key, "wrong1")).await.1["error"]["field"], "passcode");
    }
    assert_eq!(ts.client.card(&h.serial).await.unwrap().state, "locked");
    message(&ts.vsc, &h.email, "card_locked").await;
    let wrong = register(registration(&token, &DeviceKey::generate().unwrap(), "wrong1")).await;
    let (status, e) = register(registration(&token, &DeviceKey::generate().unwrap(), PASSCODE)).await;
    assert_eq!((status, &e), (wrong.0, &wrong.1), "a locked card answers the right passcode as a wrong one");
    assert_eq!((status, e["error"]["field"].as_str()), (422, Some("passcode")), "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("locked"), "{e}");
    // The lock ended the portal session; the devices stand as they were.
    assert_eq!(get(&h.client, "/api/v1/self/devices").await.0, 401);
    assert_eq!(stored_state(&ts.vsc, &id).await.as_deref(), Some("active"));
    assert_eq!(stored_state(&ts.vsc, &second).await.as_deref(), Some("pending_registration"));
}

async fn a_fourth_device_is_refused(b: Backend) {
    let ts = TestServer::start(b).await;
    let h = enrolled_holder(&ts, "dev.four@example.nhs.uk").await;
    register_device(&ts, &h).await;
    register_device(&ts, &h).await;
    // Two more reach the QR step while 2 are active; only one of them can register.
    let (_, third) = device_token(&ts, &h, "Third").await;
    let (_, fourth) = device_token(&ts, &h, "Fourth").await;
    let key = DeviceKey::generate().unwrap();
    assert_eq!(post(&ts.anon, "/api/v1/authenticator/register", registration(&third, &key, PASSCODE)).await.0, 200);
    let (status, e) = post(&ts.anon, "/api/v1/authenticator/register", registration(&fourth, &key, PASSCODE)).await;
    assert_eq!((status, e["error"]["code"].as_str()), (409, Some("CF0001Conflict")), "{e}");

    let (status, e) =
        post(&h.client, "/api/v1/self/devices", json!({ "name": "Fifth", "device_type": "desktop" })).await;
    assert_eq!((status, e["error"]["code"].as_str()), (409, Some("CF0001Conflict")), "{e}");
    assert_eq!(
        e["error"]["message"], "you already have 3 authenticator devices; delete one before adding another",
        "{e}"
    );
    let (_, list) = get(&h.client, "/api/v1/self/devices").await;
    let active = list["devices"].as_array().unwrap().iter().filter(|d| d["state"] == "active").count();
    assert_eq!(active, 3, "{list}");
    let mut conn = ts.vsc.store().conn().await.unwrap();
    assert_eq!(vsc_store::holders::passcode_failures(&mut conn, &h.user_id).await.unwrap(), 0);
}

async fn devices_are_deleted_in_any_state_and_only_by_their_holder(b: Backend) {
    let ts = TestServer::start(b).await;
    let h = enrolled_holder(&ts, "dev.owner@example.nhs.uk").await;
    let other = enrolled_holder(&ts, "dev.other@example.nhs.uk").await;
    let active = register_device(&ts, &h).await;
    let (registering, _) = device_token(&ts, &h, "Half done").await;
    let (pending, code) = add_device(&ts, &h, "Just added").await;

    // Another holder neither sees, confirms, nor deletes them.
    let (_, theirs) = get(&other.client, "/api/v1/self/devices").await;
    assert_eq!(theirs["devices"], json!([]), "{theirs}");
    for id in [&active.id, &registering, &pending] {
        assert_eq!(delete(&other.client, &format!("/api/v1/self/devices/{id}")).await, 404);
    }
    let (status, _) =
        post(&other.client, &format!("/api/v1/self/devices/{pending}/verify"), json!({ "code": code })).await;
    assert_eq!(status, 404);
    assert_eq!(delete(&ts.anon, &format!("/api/v1/self/devices/{pending}")).await, 401);
    assert_eq!(get(&h.client, "/api/v1/self/devices").await.1["devices"].as_array().unwrap().len(), 3);

    for id in [&pending, &registering, &active.id] {
        assert_eq!(delete(&h.client, &format!("/api/v1/self/devices/{id}")).await, 204, "{id}");
        assert_eq!(delete(&h.client, &format!("/api/v1/self/devices/{id}")).await, 404, "already gone");
    }
    assert_eq!(get(&h.client, "/api/v1/self/devices").await.1["devices"], json!([]));
    // A deleted device can no longer authenticate.
    let e = active.client(&ts).me().await.unwrap_err();
    assert_eq!(e.status(), Some(401), "{e:?}");
    let deleted = actions(&ts).await.iter().filter(|a| *a == "device.deleted").count();
    assert_eq!(deleted, 3);
}

/// A browser without JavaScript: session and CSRF cookies by hand, no redirects followed.
pub async fn portal(ts: &TestServer, h: &Holder, method: Method, path: &str, form: &[(&str, &str)]) -> (u16, String) {
    const CSRF: &str = "csrf_test_token_0123456789";
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let mut req = http
        .request(method.clone(), format!("{}{path}", ts.url))
        .header(reqwest::header::COOKIE, format!("vsc_session={}; vsc_csrf={CSRF}", h.session));
    if method == Method::POST {
        let mut fields: Vec<String> = vec![format!("csrf={CSRF}")];
        fields.extend(form.iter().map(|(k, v)| format!("{k}={}", v.replace(' ', "+"))));
        req = req.header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded").body(fields.join("&"));
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let location = r.headers().get(reqwest::header::LOCATION).map(|l| l.to_str().unwrap().to_string());
    (status, location.unwrap_or(r.text().await.unwrap()))
}

async fn the_portal_adds_shows_the_qr_code_and_deletes(b: Backend) {
    let ts = TestServer::start(b).await;
    let h = enrolled_holder(&ts, "dev.portal@example.nhs.uk").await;
    let (status, page) = portal(&ts, &h, Method::GET, "/self-service/devices", &[]).await;
    assert_eq!(status, 200);
    assert!(page.contains("id=\"devices-empty\""), "{page}");
    let (status, page) = portal(&ts, &h, Method::GET, "/self-service/devices/add", &[]).await;
    assert!(status == 200 && page.contains("vsc Authenticator"), "{page}");

    let form = [("name", "Work phone"), ("device_type", "phone"), ("authenticator_type", "vsc")];
    let (status, to) = portal(&ts, &h, Method::POST, "/self-service/devices/add", &form).await;
    assert_eq!(status, 303, "{to}");
    assert!(to.starts_with("/self-service/devices/") && to.ends_with("/code"), "{to}");
    let (_, page) = portal(&ts, &h, Method::GET, &to, &[]).await;
    assert!(page.contains("Work phone"), "{page}");
    let code = six_digits(&message(&ts.vsc, &h.email, "device_code").await.body);
    let (status, page) = portal(&ts, &h, Method::POST, &to, &[("code", "000000")]).await;
    if code != "000000" {
        assert_eq!(status, 422, "{page}");
        assert!(page.contains("4 attempt(s) left"), "{page}");
    }
    let (status, page) = portal(&ts, &h, Method::POST, &to, &[("code", &code)]).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("<svg") && page.contains("id=\"registration-uri\""), "{page}");
    assert!(page.contains("expires in 10 minutes"), "{page}");
    let uri = page.split("id=\"registration-uri\" value=\"").nth(1).unwrap().split('"').next().unwrap();
    let uri = uri.replace("&amp;", "&").replace("&#38;", "&");
    assert!(uri.starts_with("vsc-auth://register?v=1&url="), "{uri}");
    let key = DeviceKey::generate().unwrap();
    let (status, reg) =
        post(&ts.anon, "/api/v1/authenticator/register", registration(&uri_token(&uri), &key, PASSCODE)).await;
    assert_eq!(status, 200, "{reg}");
    let (_, page) = portal(&ts, &h, Method::GET, "/self-service/devices", &[]).await;
    assert!(page.contains("Work phone") && page.contains("vsc-test 1.2.3 on linux 6.12"), "{page}");
    let (_, home) = portal(&ts, &h, Method::GET, "/self-service/", &[]).await;
    assert!(home.contains("Work phone (active)") && home.contains("/self-service/devices"), "{home}");

    // Two more, then the 4th is refused on the form with the reason.
    register_device(&ts, &h).await;
    register_device(&ts, &h).await;
    let (status, page) = portal(&ts, &h, Method::POST, "/self-service/devices/add", &form).await;
    assert_eq!(status, 409, "{page}");
    assert!(page.contains("you already have 3 authenticator devices; delete one before adding another"), "{page}");

    // Delete needs the CSRF token, then works.
    let id = reg["device_id"].as_str().unwrap();
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{}/self-service/devices/{id}/delete", ts.url))
        .header(reqwest::header::COOKIE, format!("vsc_session={}", h.session))
        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body("csrf=")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let (status, to) = portal(&ts, &h, Method::POST, &format!("/self-service/devices/{id}/delete"), &[]).await;
    assert_eq!((status, to.as_str()), (303, "/self-service/devices?done=deleted"));
    let (_, page) = portal(&ts, &h, Method::GET, "/self-service/devices?done=deleted", &[]).await;
    assert!(page.contains("the device has been deleted") && !page.contains("Work phone"), "{page}");
}
