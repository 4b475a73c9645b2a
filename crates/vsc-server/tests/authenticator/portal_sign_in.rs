//! Self-Service Portal sign-in with the authenticator as second factor: a push approved (or
//! denied) on the phone, the app code instead, the SMS code for holders without a device, and the
//! portal pages driven like a browser without JavaScript.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};
use vsc_client::device::Decision;
use vsc_proto::ChallengeView;
use vsc_testkit::{Backend, TestServer, on_both_backends};

use crate::devices::{Holder, TestDevice, enrolled_holder, get, message, post, register_device, six_digits};

on_both_backends!(
    a_push_approved_on_the_phone_completes_into_one_working_session,
    denied_pushes_and_wrong_numbers_cannot_be_completed,
    the_app_code_signs_in_once,
    a_holder_without_an_authenticator_still_gets_an_sms_code,
    the_portal_pages_wait_for_the_phone_then_continue,
);

/// Step 1 through the JSON API → the sign-in view.
async fn sign_in(ts: &TestServer, h: &Holder) -> Value {
    let (status, view) =
        post(&ts.anon, "/api/v1/self/sign-in", json!({ "email": h.email, "passcode": h.passcode })).await;
    assert_eq!(status, 200, "{view}");
    view
}

/// The one push waiting on `device`.
pub(crate) async fn the_push(ts: &TestServer, device: &TestDevice) -> ChallengeView {
    let mut list = device.client(ts).challenges(5).await.unwrap().challenges;
    assert_eq!(list.len(), 1, "{list:?}");
    list.remove(0)
}

fn id_of(view: &Value) -> String {
    view["sign_in"].as_str().unwrap().to_string()
}

async fn state(ts: &TestServer, id: &str) -> String {
    let (status, s) = get(&ts.anon, &format!("/api/v1/self/sign-in/{id}")).await;
    assert_eq!(status, 200, "{s}");
    s["state"].as_str().unwrap().to_string()
}

async fn complete(ts: &TestServer, id: &str) -> (u16, Value) {
    post(&ts.anon, &format!("/api/v1/self/sign-in/{id}/complete"), json!({})).await
}

/// The `holder.signed_in` audit details, newest first.
async fn signed_in(ts: &TestServer) -> Vec<Value> {
    let events = ts.client.audit(200).await.unwrap().events;
    events.into_iter().filter(|e| e.action == "holder.signed_in").map(|e| e.detail).collect()
}

/// The server's clock (the real one), for the device's current app code.
fn now() -> i64 {
    vsc_core::Clock::now(&vsc_server::clock::SystemClock).unix_timestamp()
}

async fn a_push_approved_on_the_phone_completes_into_one_working_session(b: Backend) {
    let ts = TestServer::start(b).await;
    let h = enrolled_holder(&ts, "portal.push@example.nhs.uk").await;
    let device = register_device(&ts, &h).await;
    let dc = device.client(&ts);

    let view = sign_in(&ts, &h).await;
    assert_eq!(view["second_factor"], "push", "{view}");
    let number = u8::try_from(view["number"].as_u64().expect("number matching is on by default")).unwrap();
    let id = id_of(&view);
    let c = the_push(&ts, &device).await;
    assert_eq!((c.purpose.as_str(), c.client.as_str(), c.card.as_deref()), ("portal", "Self-Service Portal", None));
    assert_eq!(c.ip, "127.0.0.1");
    assert!(c.choices.clone().unwrap().contains(&number), "{:?} holds {number}", c.choices);
    let (_, s) = get(&ts.anon, &format!("/api/v1/self/sign-in/{id}")).await;
    assert_eq!((s["state"].as_str(), s["second_factor"].as_str()), (Some("pending"), Some("push")));
    assert_eq!(s["number"].as_u64(), Some(u64::from(number)));
    let (status, early) = complete(&ts, &id).await;
    assert_eq!(status, 409, "not approved yet: {early}");

    // The page long-polls while the holder taps Yes.
    let polling = tokio::spawn({
        let anon = ts.anon.clone();
        let path = format!("/api/v1/self/sign-in/{id}?wait=10");
        async move { get(&anon, &path).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let outcome = dc.answer(&c.id, &c.nonce, Decision::Approve, Some(number)).await.unwrap();
    assert_eq!(outcome.state, "approved");
    let (_, polled) = tokio::time::timeout(Duration::from_secs(5), polling).await.expect("woken at once").unwrap();
    assert_eq!(polled["state"], "approved");

    let (status, session) = complete(&ts, &id).await;
    assert_eq!(status, 200, "{session}");
    let holder = ts.anon.with_token(session["session"].as_str().unwrap());
    let (status, me) = get(&holder, "/api/v1/self").await;
    assert_eq!((status, me["email"].as_str()), (200, Some(h.email.as_str())), "{me}");
    let (status, again) = complete(&ts, &id).await;
    assert_eq!(status, 401, "a sign-in opens one session: {again}");
    assert_eq!(state(&ts, &id).await, "expired");
    let detail = signed_in(&ts).await.into_iter().next().unwrap();
    assert_eq!((detail["method"].as_str(), detail["device"].as_str()), (Some("push"), Some(device.id.as_str())));
    ts.stop().await;
}

async fn denied_pushes_and_wrong_numbers_cannot_be_completed(b: Backend) {
    let ts = TestServer::start(b).await;
    let h = enrolled_holder(&ts, "portal.deny@example.nhs.uk").await;
    let device = register_device(&ts, &h).await;
    let dc = device.client(&ts);

    // No.
    let id = id_of(&sign_in(&ts, &h).await);
    let c = the_push(&ts, &device).await;
    assert_eq!(dc.answer(&c.id, &c.nonce, Decision::Deny, None).await.unwrap().state, "denied");
    assert_eq!(state(&ts, &id).await, "denied");
    let (status, body) = complete(&ts, &id).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.to_string().contains("denied"), "{body}");
    // Nor does the app code rescue a denied sign-in.
    let code = device.totp.code_at(now());
    let (status, body) = post(&ts.anon, &format!("/api/v1/self/sign-in/{id}/verify"), json!({ "code": code })).await;
    assert_eq!(status, 401, "{body}");

    // Yes, with the wrong number: denied too.
    let view = sign_in(&ts, &h).await;
    let number = u8::try_from(view["number"].as_u64().unwrap()).unwrap();
    let c = the_push(&ts, &device).await;
    let wrong = c.choices.clone().unwrap().into_iter().find(|n| *n != number).unwrap();
    assert_eq!(dc.answer(&c.id, &c.nonce, Decision::Approve, Some(wrong)).await.unwrap().state, "denied");
    assert_eq!(complete(&ts, &id_of(&view)).await.0, 401);
    assert!(signed_in(&ts).await.is_empty());
    ts.stop().await;
}

async fn the_app_code_signs_in_once(b: Backend) {
    let ts = TestServer::start(b).await;
    let h = enrolled_holder(&ts, "portal.code@example.nhs.uk").await;
    let device = register_device(&ts, &h).await;

    let id = id_of(&sign_in(&ts, &h).await);
    let verify = |id: String, code: String| {
        let anon = ts.anon.clone();
        async move { post(&anon, &format!("/api/v1/self/sign-in/{id}/verify"), json!({ "code": code })).await }
    };
    let code = device.totp.code_at(now());
    if code != "000000" {
        let (status, body) = verify(id.clone(), "000000".into()).await;
        assert_eq!(status, 422, "{body}");
    }
    let (status, session) = verify(id.clone(), code.clone()).await;
    assert_eq!(status, 200, "{session}");
    let (status, _) = get(&ts.anon.with_token(session["session"].as_str().unwrap()), "/api/v1/self").await;
    assert_eq!(status, 200);
    // The code decided the push: the phone no longer shows it, and it cannot be completed again.
    assert!(device.client(&ts).challenges(0).await.unwrap().challenges.is_empty());
    assert_eq!(complete(&ts, &id).await.0, 401);
    let detail = signed_in(&ts).await.into_iter().next().unwrap();
    assert_eq!((detail["method"].as_str(), detail["device"].as_str()), (Some("app_code"), Some(device.id.as_str())));

    // The same code does not sign in twice.
    let second = id_of(&sign_in(&ts, &h).await);
    let (status, body) = verify(second.clone(), code).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("used already"), "{body}");
    assert_eq!(state(&ts, &second).await, "pending", "a wrong code leaves the push standing");
    ts.stop().await;
}

async fn a_holder_without_an_authenticator_still_gets_an_sms_code(b: Backend) {
    let ts = TestServer::start(b).await;
    let h = enrolled_holder(&ts, "portal.sms@example.nhs.uk").await;
    let (_, me) = get(&h.client, "/api/v1/self").await;
    let mobile = me["mobile"].as_str().unwrap().to_string();

    let view = sign_in(&ts, &h).await;
    assert_eq!(view["second_factor"], "sms", "{view}");
    assert!(view.get("number").is_none(), "{view}");
    assert!(view["mobile_hint"].as_str().unwrap().ends_with(&mobile[mobile.len() - 4..]), "{view}");
    let id = id_of(&view);
    let (_, s) = get(&ts.anon, &format!("/api/v1/self/sign-in/{id}")).await;
    assert_eq!((s["state"].as_str(), s["second_factor"].as_str()), (Some("pending"), Some("sms")));
    assert_eq!(complete(&ts, &id).await.0, 409, "an SMS sign-in waits for its code");
    let code = six_digits(&message(&ts.vsc, &mobile, "sign_in_code").await.body);
    let (status, session) = post(&ts.anon, &format!("/api/v1/self/sign-in/{id}/verify"), json!({ "code": code })).await;
    assert_eq!(status, 200, "{session}");
    assert_eq!(signed_in(&ts).await.into_iter().next().unwrap()["method"], "sms");
    ts.stop().await;
}

/// A cookie-keeping browser without JavaScript or automatic redirects.
pub(crate) struct Browser {
    base: String,
    http: reqwest::Client,
    cookies: BTreeMap<String, String>,
}

pub(crate) struct Page {
    pub(crate) status: StatusCode,
    headers: reqwest::header::HeaderMap,
    pub(crate) body: String,
}

impl Page {
    pub(crate) fn location(&self) -> &str {
        self.headers.get(LOCATION).map(|v| v.to_str().unwrap()).unwrap_or_default()
    }

    fn csp(&self) -> &str {
        self.headers.get(CONTENT_SECURITY_POLICY).map(|v| v.to_str().unwrap()).unwrap_or_default()
    }

    /// The hidden CSRF field of the page's first form.
    pub(crate) fn csrf(&self) -> String {
        let at = self.body.find("name=\"csrf\" value=\"").expect("a form with a csrf field");
        let rest = &self.body[at + 19..];
        rest[..rest.find('"').unwrap()].to_string()
    }

    /// The large number to pick on the phone.
    pub(crate) fn number(&self) -> u8 {
        let at = self.body.find("Number to pick: </span>").expect("a number to pick") + 23;
        self.body[at..].chars().take_while(char::is_ascii_digit).collect::<String>().parse().unwrap()
    }
}

impl Browser {
    pub(crate) fn new(base: &str) -> Self {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Browser { base: base.to_string(), http, cookies: BTreeMap::new() }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    async fn keep(&mut self, r: reqwest::Response) -> Page {
        let status = r.status();
        let headers = r.headers().clone();
        for c in headers.get_all(SET_COOKIE) {
            let first = c.to_str().unwrap().split(';').next().unwrap();
            let (k, v) = first.split_once('=').unwrap();
            if v.is_empty() {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_string(), v.to_string());
            }
        }
        Page { status, headers, body: r.text().await.unwrap() }
    }

    pub(crate) async fn get(&mut self, path: &str) -> Page {
        let r =
            self.http.get(format!("{}{path}", self.base)).header(COOKIE, self.cookie_header()).send().await.unwrap();
        self.keep(r).await
    }

    pub(crate) async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body = fields
            .iter()
            .map(|(k, v)| format!("{k}={}", v.replace('%', "%25").replace('@', "%40").replace('+', "%2B")))
            .collect::<Vec<_>>()
            .join("&");
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        self.keep(r).await
    }

    /// Email and passcode on the sign-in page → the second-factor page.
    pub(crate) async fn sign_in(&mut self, h: &Holder) -> Page {
        let form = self.get("/self-service/sign-in").await;
        let csrf = form.csrf();
        let sent = self
            .post("/self-service/sign-in", &[("csrf", &csrf), ("email", &h.email), ("passcode", &h.passcode)])
            .await;
        assert_eq!(
            (sent.status, sent.location()),
            (StatusCode::SEE_OTHER, "/self-service/sign-in/code"),
            "{}",
            sent.body
        );
        self.get("/self-service/sign-in/code").await
    }
}

async fn the_portal_pages_wait_for_the_phone_then_continue(b: Backend) {
    let ts = TestServer::start(b).await;
    let h = enrolled_holder(&ts, "portal.pages@example.nhs.uk").await;
    let device = register_device(&ts, &h).await;
    let dc = device.client(&ts);

    // Push, "Continue" too early, approve, "Continue".
    let mut browser = Browser::new(&ts.url);
    let page = browser.sign_in(&h).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Approve on your phone"), "{}", page.body);
    assert!(page.body.contains("<script src=\"/static/sign_in_push.js\" defer></script>"));
    assert!(page.csp().contains("script-src 'self'") && page.csp().contains("connect-src 'self'"), "{}", page.csp());
    assert!(page.csp().starts_with("default-src 'none'"), "{}", page.csp());
    let number = page.number();
    let csrf = page.csrf();
    let early = browser.post("/self-service/sign-in/code", &[("csrf", &csrf), ("action", "continue")]).await;
    assert_eq!(early.status, StatusCode::OK, "{}", early.body);
    assert!(early.body.contains("not approved yet"), "{}", early.body);
    let c = the_push(&ts, &device).await;
    assert_eq!(c.choices.clone().unwrap().iter().filter(|n| **n == number).count(), 1, "the page shows the number");
    dc.answer(&c.id, &c.nonce, Decision::Approve, Some(number)).await.unwrap();
    let done = browser.post("/self-service/sign-in/code", &[("csrf", &csrf), ("action", "continue")]).await;
    assert_eq!((done.status, done.location()), (StatusCode::SEE_OTHER, "/self-service/"), "{}", done.body);
    assert!(browser.cookies.contains_key("vsc_session"));
    assert!(!browser.cookies.contains_key("vsc_sign_in"), "the sign-in cookie is dropped");
    assert_eq!(browser.get("/self-service/").await.status, StatusCode::OK);

    // The script is served with its type; other pages keep the strict policy.
    let script = browser.get("/static/sign_in_push.js").await;
    assert_eq!(script.status, StatusCode::OK);
    assert!(script.headers[CONTENT_TYPE].to_str().unwrap().starts_with("text/javascript"));
    assert!(script.body.contains("/api/v1/self/sign-in/"));
    assert!(!browser.get("/self-service/sign-in").await.csp().contains("script-src"));

    // The app code typed on the page.
    let mut browser = Browser::new(&ts.url);
    let page = browser.sign_in(&h).await;
    let csrf = page.csrf();
    let wrong = browser.post("/self-service/sign-in/code", &[("csrf", &csrf), ("code", "12345x")]).await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", wrong.body);
    assert!(wrong.body.contains("Approve on your phone"), "the push page again: {}", wrong.body);
    let code = device.totp.code_at(now());
    let done = browser.post("/self-service/sign-in/code", &[("csrf", &csrf), ("code", &code)]).await;
    assert_eq!((done.status, done.location()), (StatusCode::SEE_OTHER, "/self-service/"), "{}", done.body);

    // Denied on the phone: the page says so and offers only starting again.
    let mut browser = Browser::new(&ts.url);
    let page = browser.sign_in(&h).await;
    let csrf = page.csrf();
    let c = the_push(&ts, &device).await;
    dc.answer(&c.id, &c.nonce, Decision::Deny, None).await.unwrap();
    let denied = browser.post("/self-service/sign-in/code", &[("csrf", &csrf), ("action", "continue")]).await;
    assert_eq!(denied.status, StatusCode::UNAUTHORIZED, "{}", denied.body);
    assert!(denied.body.contains("denied on your phone"), "{}", denied.body);
    assert!(!denied.body.contains("sign_in_push.js") && !denied.body.contains("name=\"code\""), "{}", denied.body);
    let shown = browser.get("/self-service/sign-in/code").await;
    assert!(shown.body.contains("denied on your phone"), "{}", shown.body);
    assert!(!browser.cookies.contains_key("vsc_session"));
    ts.stop().await;
}
