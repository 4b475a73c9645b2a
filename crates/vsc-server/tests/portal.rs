//! Integration tests of the Self-Service Portal (server-rendered HTML): the real server on port
//! 0, driven with plain HTTP and cookies handled by hand, as a browser without JavaScript would.
// Helper functions outside #[test] are not covered by clippy.toml's test allowances; a
// failing fixture should panic in a test file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::BTreeMap;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use vsc_proto::{CreateUserRequest, IssueCardRequest, UserView};
use vsc_testkit::{Backend, TestServer, on_both_backends, test_config};

#[path = "portal/ra.rs"]
mod ra;
#[path = "portal/ra_audit.rs"]
mod ra_audit;
#[path = "portal/ra_card_suspension.rs"]
mod ra_card_suspension;
#[path = "portal/ra_import.rs"]
mod ra_import;
#[path = "portal/ra_operator.rs"]
mod ra_operator;
#[path = "portal/ra_reports.rs"]
mod ra_reports;
#[path = "portal/ra_settings.rs"]
mod ra_settings;
#[path = "portal/ra_staff.rs"]
mod ra_staff;
#[path = "portal/ra_user_delete.rs"]
mod ra_user_delete;
#[path = "portal/ra_user_edit.rs"]
mod ra_user_edit;
#[path = "portal/ra_user_page.rs"]
mod ra_user_page;
#[path = "portal/ra_users.rs"]
mod ra_users;

on_both_backends!(
    pages_carry_the_security_headers_and_a_strict_csrf_cookie,
    forms_without_the_matching_csrf_token_are_refused,
    home_without_a_session_redirects_to_sign_in,
    enrolment_in_the_portal_opens_a_strict_session,
    unknown_links_and_paths_get_pages,
    dev_outbox_is_served_only_in_dev_mode,
);

const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// A cookie-keeping browser without JavaScript or automatic redirects.
struct Browser {
    base: String,
    http: reqwest::Client,
    cookies: BTreeMap<String, String>,
}

struct Page {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> &str {
        self.headers.get(LOCATION).map(|v| v.to_str().unwrap()).unwrap_or_default()
    }

    fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .find(|c| c.starts_with(&format!("{name}=")))
    }

    /// The hidden CSRF field of the page's first form.
    fn csrf(&self) -> String {
        let at = self.body.find("name=\"csrf\" value=\"").expect("a form with a csrf field");
        let rest = &self.body[at + 19..];
        rest[..rest.find('"').unwrap()].to_string()
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            b' ' => "+".into(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Browser {
    fn new(base: &str) -> Self {
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

    async fn get(&mut self, path: &str) -> Page {
        let r =
            self.http.get(format!("{}{path}", self.base)).header(COOKIE, self.cookie_header()).send().await.unwrap();
        self.keep(r).await
    }

    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body = fields.iter().map(|(k, v)| format!("{k}={}", urlencode(v))).collect::<Vec<_>>().join("&");
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
}

async fn holder(ts: &TestServer, email: &str, mobile: Option<&str>) -> UserView {
    ts.client
        .create_user(&CreateUserRequest {
            organisation: "ORG1".into(),
            forename: "Gráinne".into(),
            surname: "O'Neill".into(),
            email: email.into(),
            mobile: mobile.map(str::to_string),
            subject_cn: None,
            directory_account: None,
        })
        .await
        .unwrap()
}

/// Issue a V2 card and return (serial, the enrolment path from the invitation email).
async fn invited(ts: &TestServer, user: &UserView) -> (String, String) {
    let card = ts
        .client
        .issue_card(
            &user.id.to_string(),
            &IssueCardRequest { card_type: "v2".into(), roles: vec!["R8000".into()], key_algorithm: None },
        )
        .await
        .unwrap();
    let mail = ts.vsc.outbox(Some(&user.email), 10).await.unwrap();
    let invitation = mail.iter().find(|m| m.kind == "invitation").expect("an invitation");
    let at = invitation.body.find("/self-service/enrol/").expect("a link in the invitation");
    let path: String = invitation.body[at..].chars().take_while(|c| !c.is_whitespace()).collect();
    (card.serial, path)
}

/// Borrow owned form fields for [`Browser::post`].
fn pairs<'a>(fields: &'a [(&'static str, String)]) -> Vec<(&'a str, &'a str)> {
    fields.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// The newest SMS code sent to `mobile`.
async fn sms_code(ts: &TestServer, mobile: &str) -> String {
    let sms = ts.vsc.outbox(Some(mobile), 10).await.unwrap();
    let body = &sms.last().expect("an SMS").body;
    let at = body.find(|c: char| c.is_ascii_digit()).unwrap();
    body[at..at + 6].to_string()
}

async fn pages_carry_the_security_headers_and_a_strict_csrf_cookie(b: Backend) {
    let ts = TestServer::start(b).await;
    let mut web = Browser::new(&ts.url);
    let page = web.get("/self-service/sign-in").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.headers[CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
    assert_eq!(page.headers["content-security-policy"], CSP);
    assert_eq!(page.headers["x-frame-options"], "DENY");
    assert_eq!(page.headers["referrer-policy"], "no-referrer");
    assert_eq!(page.headers["cache-control"], "no-store");
    assert!(!page.body.contains("style=") && !page.body.contains("<script"), "no inline style or script");
    let csrf = page.set_cookie("vsc_csrf").expect("a CSRF cookie");
    for part in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(csrf.contains(part), "{csrf}");
    }
    // A loopback http public URL allows cookies without `Secure` (local development only).
    assert!(!csrf.contains("Secure"), "{csrf}");
    assert_eq!(page.csrf(), web.cookies["vsc_csrf"]);
    // The same token is kept while the cookie lives.
    let again = web.get("/self-service/sign-in").await;
    assert!(again.set_cookie("vsc_csrf").is_none());
    assert_eq!(again.csrf(), web.cookies["vsc_csrf"]);

    let css = web.get("/static/portal.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert_eq!(css.headers[CONTENT_TYPE], "text/css; charset=utf-8");
    assert!(css.body.contains(".error-message"));
    // The JSON API keeps its own headers.
    let api = web.get("/healthz").await;
    assert!(api.headers.get("content-security-policy").is_none());
}

async fn forms_without_the_matching_csrf_token_are_refused(b: Backend) {
    let ts = TestServer::start(b).await;
    let mut web = Browser::new(&ts.url);
    let page = web.get("/self-service/sign-in").await;
    let token = page.csrf();
    let login = [("email", "nobody@example.nhs.uk"), ("passcode", "abc123")];

    let wrong =
        web.post("/self-service/sign-in", &[&login[..], &[("csrf", "csrf_not-the-right-token-at-all")]].concat()).await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    assert!(wrong.body.contains("This form could not be accepted"), "{}", wrong.body);
    assert_eq!(wrong.headers["content-security-policy"], CSP);

    let missing = web.post("/self-service/sign-in", &login).await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN);

    // The right field but no cookie (another site cannot read or set it).
    let mut stranger = Browser::new(&ts.url);
    let no_cookie = stranger.post("/self-service/sign-in", &[&login[..], &[("csrf", token.as_str())]].concat()).await;
    assert_eq!(no_cookie.status, StatusCode::FORBIDDEN);
    let sign_out = stranger.post("/self-service/sign-out", &[("csrf", token.as_str())]).await;
    assert_eq!(sign_out.status, StatusCode::FORBIDDEN);

    // With both, the form reaches the service, which refuses the unknown email generically.
    let ok = web.post("/self-service/sign-in", &[&login[..], &[("csrf", token.as_str())]].concat()).await;
    assert_eq!(ok.status, StatusCode::UNAUTHORIZED);
    assert!(ok.body.contains("the email or passcode is wrong"), "{}", ok.body);
    assert!(ok.body.contains("value=\"nobody@example.nhs.uk\""), "the email is kept");
}

async fn home_without_a_session_redirects_to_sign_in(b: Backend) {
    let ts = TestServer::start(b).await;
    let mut web = Browser::new(&ts.url);
    for path in ["/self-service/", "/self-service/questions"] {
        let page = web.get(path).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(page.location(), "/self-service/sign-in");
    }
    web.cookies.insert("vsc_session".into(), "vss_forged".into());
    let forged = web.get("/self-service/").await;
    assert_eq!(forged.status, StatusCode::SEE_OTHER);
    assert_eq!(forged.location(), "/self-service/sign-in");
    let bare = web.get("/self-service").await;
    assert_eq!(bare.status, StatusCode::SEE_OTHER);
    assert_eq!(bare.location(), "/self-service/");
}

async fn enrolment_in_the_portal_opens_a_strict_session(b: Backend) {
    let ts = TestServer::start(b).await;
    let user = holder(&ts, "grainne.oneill@example.nhs.uk", Some("+447700900123")).await;
    let (serial, link) = invited(&ts, &user).await;
    let mut web = Browser::new(&ts.url);

    let form = web.get(&link).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("Gráinne O&#39;Neill") || form.body.contains("Gráinne O&#x27;Neill"), "{}", form.body);
    assert!(form.body.contains(&serial));
    assert!(form.body.contains("type=\"password\" id=\"answer1\""));
    assert!(!form.body.contains("id=\"mobile\""), "the mobile is on record");
    let csrf = form.csrf();
    let fields = |passcode: &'static str, confirm: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("passcode", passcode.to_string()),
            ("confirm", confirm.to_string()),
            ("question1", "1".to_string()),
            ("answer1", "Rex".to_string()),
            ("question2", "2".to_string()),
            ("answer2", "Leeds".to_string()),
            ("question3", "3".to_string()),
            ("answer3", "Hill Top".to_string()),
        ]
    };
    let broken = fields("abcdef", "abcdef");
    let page = web.post(&link, &pairs(&broken)).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("the passcode needs at least one digit"), "{}", page.body);
    assert!(page.body.contains("<option value=\"2\" selected>"), "the chosen questions are kept");
    assert!(!page.body.contains("Leeds"), "answers are not echoed");

    let mismatch = fields("abc123", "abc124");
    let page = web.post(&link, &pairs(&mismatch)).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("the two passcodes are different"), "{}", page.body);

    let good = fields("abc123", "abc123");
    let page = web.post(&link, &pairs(&good)).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.location(), format!("{link}/code"));

    let code_page = web.get(&format!("{link}/code")).await;
    assert!(code_page.body.contains("•••• 0123"), "{}", code_page.body);
    assert!(code_page.body.contains("autocomplete=\"one-time-code\""));
    let resend = web.post(&format!("{link}/resend"), &[("csrf", csrf.as_str())]).await;
    assert_eq!(resend.status, StatusCode::TOO_MANY_REQUESTS, "{}", resend.body);
    assert!(resend.body.contains("a code was just sent"), "{}", resend.body);

    let wrong = web.post(&format!("{link}/code"), &[("csrf", csrf.as_str()), ("code", "000000")]).await;
    let code = sms_code(&ts, "+447700900123").await;
    if code != "000000" {
        assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(wrong.body.contains("attempt(s) left"), "{}", wrong.body);
    }
    let done = web.post(&format!("{link}/code"), &[("csrf", csrf.as_str()), ("code", code.as_str())]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.location(), "/self-service/");
    let session = done.set_cookie("vsc_session").expect("a session cookie");
    for part in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(session.contains(part), "{session}");
    }

    let home = web.get("/self-service/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains(&format!("id=\"serial\" class=\"mono\">{serial}<")), "{}", home.body);
    assert!(home.body.contains(&format!("id=\"uuid\" class=\"mono\">{}<", user.id)));
    assert!(home.body.contains("id=\"card-state\" class=\"tag tag--active\">active<"));
    assert!(home.body.contains("Test Trust"));
    assert!(home.body.contains("No authenticator devices yet."));

    let used = Browser::new(&ts.url).get(&link).await;
    assert_eq!(used.status, StatusCode::GONE);
    assert!(used.body.contains("already been used"), "{}", used.body);
    assert!(used.body.contains("href=\"/self-service/sign-in\""));

    // Changing the security questions needs the passcode.
    let q = web.get("/self-service/questions").await;
    let csrf = q.csrf();
    let change = |passcode: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("passcode", passcode.to_string()),
            ("question1", "4".to_string()),
            ("answer1", "Smith".to_string()),
            ("question2", "5".to_string()),
            ("answer2", "Ford".to_string()),
            ("question3", "6".to_string()),
            ("answer3", "Elm Street".to_string()),
        ]
    };
    let wrong = change("zzz999");
    let page = web.post("/self-service/questions", &pairs(&wrong)).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("the passcode is wrong"));
    let right = change("abc123");
    let page = web.post("/self-service/questions", &pairs(&right)).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert!(web.get(page.location()).await.body.contains("security questions have been changed"));

    // Sign out ends the session server-side too.
    let stolen = web.cookies["vsc_session"].clone();
    let out = web.post("/self-service/sign-out", &[("csrf", csrf.as_str())]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.location(), "/self-service/sign-in");
    assert!(out.set_cookie("vsc_session").unwrap().contains("Max-Age=0"));
    web.cookies.insert("vsc_session".into(), stolen);
    assert_eq!(web.get("/self-service/").await.status, StatusCode::SEE_OTHER);
    web.cookies.remove("vsc_session");

    // Sign in again: passcode, then the SMS code.
    let page = web.get("/self-service/sign-in").await;
    let csrf = page.csrf();
    let page = web
        .post(
            "/self-service/sign-in",
            &[("csrf", csrf.as_str()), ("email", "Grainne.ONeill@example.nhs.uk"), ("passcode", "abc123")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.location(), "/self-service/sign-in/code");
    let pending = page.set_cookie("vsc_sign_in").unwrap();
    assert!(pending.contains("HttpOnly") && pending.contains("SameSite=Strict"), "{pending}");
    assert!(web.get("/self-service/sign-in/code").await.body.contains("•••• 0123"));
    let code = sms_code(&ts, "+447700900123").await;
    let page = web.post("/self-service/sign-in/code", &[("csrf", csrf.as_str()), ("code", code.as_str())]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert!(page.set_cookie("vsc_sign_in").unwrap().contains("Max-Age=0"));
    assert!(web.get("/self-service/").await.body.contains(&serial));
}

async fn unknown_links_and_paths_get_pages(b: Backend) {
    let ts = TestServer::start(b).await;
    let mut web = Browser::new(&ts.url);
    let page = web.get("/self-service/enrol/vse_not-a-real-token").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page.body.contains("This link is not valid"), "{}", page.body);
    assert!(page.headers[CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
    let page = web.get("/self-service/no/such/page").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page.body.contains("Page not found"));
    // A code page without a sign-in in progress goes back to the start.
    let page = web.get("/self-service/sign-in/code").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), "/self-service/sign-in");
    // A holder without a mobile number is asked for one.
    let user = holder(&ts, "no.mobile@example.nhs.uk", None).await;
    let (_, link) = invited(&ts, &user).await;
    let form = web.get(&link).await;
    assert!(form.body.contains("id=\"mobile\""), "{}", form.body);
}

async fn dev_outbox_is_served_only_in_dev_mode(b: Backend) {
    let ts = TestServer::start(b).await;
    let page = Browser::new(&ts.url).get("/dev/outbox").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    drop(ts);

    let dir = tempfile::tempdir().unwrap();
    let config = vsc_server::Config { dev_mode: true, ..test_config(b, dir.path()).await };
    let ts = TestServer::start_with(config, dir).await;
    let user = holder(&ts, "dev.holder@example.nhs.uk", Some("+447700900123")).await;
    let (serial, _) = invited(&ts, &user).await;
    let page = Browser::new(&ts.url).get("/dev/outbox").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("dev.holder@example.nhs.uk"));
    assert!(page.body.contains(&serial));
    assert!(page.body.contains("<pre>"));
}
