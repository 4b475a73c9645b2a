//! Outgoing messages: email through a real SMTP server (Python's aiosmtpd, Debian package
//! `python3-aiosmtpd`), SMS through a real local HTTP receiver, the templates and redaction.

// Tests may unwrap, expect, panic and index: a failure is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vsc_testkit::free_port;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use time::macros::datetime;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use vsc_core::CardType;
use vsc_server::Config;
use vsc_server::notify::email::{EmailChannel, EmailMessage};
use vsc_server::notify::sms::SmsChannel;
use vsc_server::notify::templates::{LockCause, card_locked, invitation, redact, reminder, setup_complete, sms_code};
use vsc_server::notify::{Delivery, DeliveryError};

const LINK: &str = "https://vsc.example.org/enrol/Zq8-Yt3_kP0aB";
const PORTAL: &str = "https://vsc.example.org/portal/";
const SERIAL_V1: &str = "1000123456789012";
const SERIAL_V2: &str = "1500987654321098";

// --- helpers --------------------------------------------------------------------------------

/// A Python 3 that can import aiosmtpd: the one on `PATH`, else Debian's `/usr/bin/python3`
/// (where the `python3-aiosmtpd` package installs it, whatever `PATH` prefers).
fn python_with_aiosmtpd() -> String {
    for python in ["python3", "/usr/bin/python3"] {
        let ok = Command::new(python)
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return python.to_string();
        }
    }
    panic!(
        "these tests need a real SMTP server: the Python module aiosmtpd is missing. \
         Install the Debian package python3-aiosmtpd (apt-get install -y python3-aiosmtpd)"
    );
}

/// The SMTP server process; killed when dropped, so also when a test panics.
struct SmtpServer {
    child: Child,
    port: u16,
    maildir: PathBuf,
}

impl SmtpServer {
    fn start(dir: &Path) -> SmtpServer {
        let python = python_with_aiosmtpd();
        let port = free_port();
        let maildir = dir.join("maildir");
        let log = std::fs::File::create(dir.join("aiosmtpd.log")).unwrap();
        let child = Command::new(&python)
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {python} -m aiosmtpd: {e}"));
        let mut server = SmtpServer { child, port, maildir };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return server;
            }
            if let Some(status) = server.child.try_wait().unwrap() {
                let log = std::fs::read_to_string(dir.join("aiosmtpd.log")).unwrap_or_default();
                panic!("aiosmtpd exited with {status} before accepting connections:\n{log}");
            }
            assert!(Instant::now() < deadline, "aiosmtpd did not accept connections on port {port} within 20 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The messages delivered so far (`<maildir>/new/*`).
    fn delivered(&self) -> Vec<PathBuf> {
        match std::fs::read_dir(self.maildir.join("new")) {
            Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
            Err(_) => Vec::new(),
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A delivered message as Python's `email` package reads it (transfer encodings decoded).
fn parse_with_python(path: &Path) -> serde_json::Value {
    const SCRIPT: &str = r#"
import email, json, sys
from email import policy
with open(sys.argv[1], "rb") as f:
    m = email.message_from_binary_file(f, policy=policy.default)
text = m.get_body(preferencelist=("plain",))
html = m.get_body(preferencelist=("html",))
print(json.dumps({
    "content_type": m.get_content_type(),
    "from": str(m["From"]),
    "to": str(m["To"]),
    "rcpt_to": str(m["X-RcptTo"]),
    "subject": str(m["Subject"]),
    "message_id": str(m["Message-ID"]),
    "text": text.get_content() if text is not None else None,
    "html": html.get_content() if html is not None else None,
}))
"#;
    let out = Command::new(python_with_aiosmtpd()).arg("-c").arg(SCRIPT).arg(path).output().unwrap();
    assert!(out.status.success(), "parsing the message failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn config_with_smtp(url: &str) -> Config {
    let mut config = Config::default();
    config.smtp.url = Some(url.to_string());
    config
}

fn expiry() -> time::OffsetDateTime {
    datetime!(2026-12-07 16:30 UTC)
}

// --- 1, 2: email over SMTP --------------------------------------------------------------------

#[tokio::test]
async fn an_invitation_reaches_a_real_smtp_server_as_text_and_html() {
    let dir = tempfile::tempdir().unwrap();
    let server = SmtpServer::start(dir.path());
    let channel = EmailChannel::from_config(&config_with_smtp(&format!("smtp://127.0.0.1:{}", server.port))).unwrap();
    assert!(matches!(channel, EmailChannel::Smtp { .. }));

    let message = invitation("jane.doe@example.org", "Jane Doe", CardType::V2, SERIAL_V2, LINK, expiry()).unwrap();
    assert_eq!(channel.send(&message).await.unwrap(), Delivery::Sent);

    // The handler writes the message before it answers 250; allow for a slow file system anyway.
    let deadline = Instant::now() + Duration::from_secs(5);
    let files = loop {
        let files = server.delivered();
        if !files.is_empty() || Instant::now() > deadline {
            break files;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(files.len(), 1, "expected one message in the maildir, found {files:?}");
    let raw = std::fs::read_to_string(&files[0]).unwrap();
    assert!(raw.contains("multipart/alternative"), "not multipart/alternative:\n{raw}");

    let mail = parse_with_python(&files[0]);
    assert_eq!(mail["content_type"], "multipart/alternative");
    assert_eq!(mail["to"], "jane.doe@example.org");
    assert_eq!(mail["rcpt_to"], "jane.doe@example.org");
    assert_eq!(mail["from"], "vsc <vsc@127.0.0.1>");
    assert_eq!(mail["subject"], "Set up your virtual smartcard for authentication and e-signatures");
    assert!(mail["message_id"].as_str().unwrap().ends_with("@127.0.0.1>"), "{}", mail["message_id"]);
    let text = mail["text"].as_str().expect("a text/plain part");
    let html = mail["html"].as_str().expect("a text/html part");
    for part in [text, html] {
        assert!(part.contains(LINK), "the link is missing from:\n{part}");
        assert!(part.contains(SERIAL_V2), "the serial is missing from:\n{part}");
        assert!(part.contains("7 December 2026"), "the expiry is missing from:\n{part}");
        assert!(part.contains("advanced electronic signatures"), "the V2 wording is missing from:\n{part}");
    }
    assert_eq!(text.trim_end(), message.text.trim_end());
    assert!(html.contains("<a href=\"https://vsc.example.org/enrol/Zq8-Yt3_kP0aB\""));

    // Without HTML the message is plain text alone.
    let plain = EmailMessage { to: "John Smith <john@example.org>".into(), html: String::new(), ..message };
    assert_eq!(channel.send(&plain).await.unwrap(), Delivery::Sent);
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.delivered().len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let second = server.delivered().into_iter().find(|f| f != &files[0]).expect("a second message");
    let mail = parse_with_python(&second);
    assert_eq!(mail["content_type"], "text/plain");
    assert_eq!(mail["rcpt_to"], "john@example.org");
    assert!(mail["text"].as_str().unwrap().contains(LINK));
    drop(server);
}

#[tokio::test]
async fn smtp_down_is_transient() {
    let port = free_port();
    let channel = EmailChannel::from_config(&config_with_smtp(&format!("smtp://127.0.0.1:{port}"))).unwrap();
    let message = invitation("jane.doe@example.org", "Jane Doe", CardType::V1, SERIAL_V1, LINK, expiry()).unwrap();
    match channel.send(&message).await {
        Err(e @ DeliveryError::Transient(_)) => assert!(e.is_transient()),
        other => panic!("expected a transient error, got {other:?}"),
    }
}

/// A scripted SMTP server that answers `rcpt_reply` to `RCPT TO`.
async fn scripted_smtp(rcpt_reply: &'static str) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 scripted ESMTP\r\n").await.unwrap();
                while let Ok(Some(line)) = lines.next_line().await {
                    let verb = line.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
                    let reply = match verb.as_str() {
                        "EHLO" | "HELO" => "250 scripted\r\n",
                        "MAIL" | "RSET" | "NOOP" => "250 OK\r\n",
                        "RCPT" => rcpt_reply,
                        "QUIT" => "221 Bye\r\n",
                        _ => "502 Command not implemented\r\n",
                    };
                    if write.write_all(reply.as_bytes()).await.is_err() || verb == "QUIT" {
                        break;
                    }
                }
            });
        }
    });
    port
}

#[tokio::test]
async fn smtp_4xx_is_transient_and_5xx_permanent() {
    let message = reminder("jane.doe@example.org", "Jane Doe", CardType::V1, SERIAL_V1, LINK, expiry()).unwrap();

    let port = scripted_smtp("451 4.3.0 Try again later\r\n").await;
    let channel = EmailChannel::from_config(&config_with_smtp(&format!("smtp://127.0.0.1:{port}"))).unwrap();
    match channel.send(&message).await {
        Err(DeliveryError::Transient(e)) => assert!(e.contains("451") || e.contains("Try again"), "{e}"),
        other => panic!("451 should be transient, got {other:?}"),
    }

    let port = scripted_smtp("550 5.1.1 No such user\r\n").await;
    let channel = EmailChannel::from_config(&config_with_smtp(&format!("smtp://127.0.0.1:{port}"))).unwrap();
    match channel.send(&message).await {
        Err(DeliveryError::Permanent(e)) => assert!(e.contains("No such user"), "{e}"),
        other => panic!("550 should be permanent, got {other:?}"),
    }

    // An address that cannot be used never reaches the server.
    let bad = EmailMessage { to: "not an address".into(), ..message };
    assert!(matches!(channel.send(&bad).await, Err(DeliveryError::Permanent(_))));
}

// --- 3: SMS through an HTTP gateway -----------------------------------------------------------

#[derive(Clone)]
struct Receiver {
    status: StatusCode,
    seen: Arc<Mutex<Vec<(HeaderMap, serde_json::Value)>>>,
}

async fn record(State(r): State<Receiver>, headers: HeaderMap, Json(body): Json<serde_json::Value>) -> StatusCode {
    r.seen.lock().unwrap().push((headers, body));
    r.status
}

/// An HTTP receiver on 127.0.0.1 answering `status` to `POST /sms`.
async fn gateway(status: StatusCode) -> (SocketAddr, Receiver) {
    let receiver = Receiver { status, seen: Arc::new(Mutex::new(Vec::new())) };
    let app = axum::Router::new().route("/sms", post(record)).with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, receiver)
}

fn config_with_sms(addr: SocketAddr, api_key: Option<&str>) -> Config {
    let mut config = Config::default();
    config.sms.url = Some(format!("http://{addr}/sms"));
    config.sms.api_key = api_key.map(str::to_string);
    config
}

#[tokio::test]
async fn an_sms_is_posted_as_json_with_the_bearer_key() {
    let (addr, receiver) = gateway(StatusCode::ACCEPTED).await;
    let channel = SmsChannel::from_config(&config_with_sms(addr, Some("gw-key-42"))).unwrap();
    assert!(!format!("{channel:?}").contains("gw-key-42"), "Debug shows the API key: {channel:?}");
    let sms = sms_code("+447700900123", "482915");
    assert_eq!(channel.send(&sms).await.unwrap(), Delivery::Sent);

    let seen = receiver.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let (headers, body) = &seen[0];
    assert_eq!(headers["authorization"], "Bearer gw-key-42");
    assert!(headers["content-type"].to_str().unwrap().starts_with("application/json"));
    assert_eq!(body, &serde_json::json!({ "to": "+447700900123", "body": sms.body }));
    assert!(sms.body.contains("482915") && sms.body.contains("10 minutes"), "{}", sms.body);

    // Without a key there is no Authorization header.
    let channel = SmsChannel::from_config(&config_with_sms(addr, None)).unwrap();
    assert_eq!(channel.send(&sms).await.unwrap(), Delivery::Sent);
    let seen = receiver.seen.lock().unwrap().clone();
    assert!(!seen[1].0.contains_key("authorization"));
}

#[tokio::test]
async fn gateway_errors_are_classified() {
    let sms = sms_code("+447700900123", "482915");
    for (status, transient) in [
        (StatusCode::INTERNAL_SERVER_ERROR, true),
        (StatusCode::SERVICE_UNAVAILABLE, true),
        (StatusCode::TOO_MANY_REQUESTS, true),
        (StatusCode::BAD_REQUEST, false),
        (StatusCode::UNAUTHORIZED, false),
    ] {
        let (addr, receiver) = gateway(status).await;
        let channel = SmsChannel::from_config(&config_with_sms(addr, Some("k"))).unwrap();
        match channel.send(&sms).await {
            Err(DeliveryError::Transient(e)) if transient => assert!(e.contains(status.as_str()), "{e}"),
            Err(DeliveryError::Permanent(e)) if !transient => assert!(e.contains(status.as_str()), "{e}"),
            other => panic!("{status}: expected transient = {transient}, got {other:?}"),
        }
        assert_eq!(receiver.seen.lock().unwrap().len(), 1);
    }

    // Nothing listening: transient.
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let channel = SmsChannel::from_config(&config_with_sms(addr, None)).unwrap();
    assert!(matches!(channel.send(&sms).await, Err(DeliveryError::Transient(_))));
}

// --- 4: templates and redaction ---------------------------------------------------------------

#[test]
fn v1_and_v2_invitations_differ_and_carry_the_link() {
    let v1 = invitation(" jane.doe@example.org ", "Jane Doe", CardType::V1, SERIAL_V1, LINK, expiry()).unwrap();
    let v2 = invitation("jane.doe@example.org", "Jane Doe", CardType::V2, SERIAL_V2, LINK, expiry()).unwrap();
    assert_eq!(v1.to, "jane.doe@example.org");
    assert_eq!(v1.subject, "Set up your virtual smartcard");
    assert_eq!(v2.subject, "Set up your virtual smartcard for authentication and e-signatures");
    assert_ne!(v1.text, v2.text);
    assert_ne!(v1.html, v2.html);
    assert!(!v1.text.contains("signature") && !v1.html.contains("signature"), "V1 mentions signatures:\n{}", v1.text);
    assert!(v2.text.contains("advanced electronic signatures") && v2.html.contains("advanced electronic signatures"));
    for m in [&v1, &v2] {
        assert!(m.text.contains(LINK) && m.html.contains(LINK), "{m:?}");
        assert!(m.text.contains("Dear Jane Doe,") && m.html.contains("Dear Jane Doe,"));
        assert!(m.text.contains("7 December 2026") && m.html.contains("7 December 2026"));
        assert!(m.html.starts_with("<!DOCTYPE html>") && m.html.contains("<html lang=\"en-GB\">"));
        assert!(!m.text.contains('<'), "HTML in the text part:\n{}", m.text);
        assert!(!m.text.contains("\n\n\n"), "stray blank lines:\n{}", m.text);
    }
    assert!(v1.text.contains(SERIAL_V1) && v2.html.contains(SERIAL_V2));

    // Links must be absolute.
    assert!(invitation("a@b.org", "A", CardType::V1, SERIAL_V1, "/enrol/abc", expiry()).is_err());
}

#[test]
fn the_other_emails_have_their_own_wording() {
    let r1 = reminder("j@example.org", "Jane Doe", CardType::V1, SERIAL_V1, LINK, expiry()).unwrap();
    let r2 = reminder("j@example.org", "Jane Doe", CardType::V2, SERIAL_V2, LINK, expiry()).unwrap();
    assert_eq!(r1.subject, "Reminder: set up your virtual smartcard");
    assert_eq!(r2.subject, "Reminder: set up your virtual smartcard for authentication and e-signatures");
    for m in [&r1, &r2] {
        assert!(m.text.contains(LINK) && m.html.contains(LINK) && m.text.contains("7 December 2026"));
        assert!(m.text.contains("reminder"));
    }
    assert!(r2.text.contains("advanced electronic signatures") && !r1.text.contains("signature"));

    let s1 = setup_complete("j@example.org", "Jane Doe", CardType::V1, SERIAL_V1, PORTAL).unwrap();
    let s2 = setup_complete("j@example.org", "Jane Doe", CardType::V2, SERIAL_V2, PORTAL).unwrap();
    assert_eq!(s1.subject, "Your virtual smartcard is ready");
    assert_eq!(s2.subject, "Your virtual smartcard for authentication and e-signatures is ready");
    for m in [&s1, &s2] {
        assert!(m.text.contains(PORTAL) && m.html.contains(PORTAL) && m.text.contains("ready to use"));
    }
    assert!(s2.text.contains("advanced electronic signatures") && !s1.text.contains("signature"));

    let until = datetime!(2026-03-01 09:05 +01:00);
    let by_passcode = card_locked("j@example.org", "Jane Doe", until, Some(LINK), LockCause::Passcode).unwrap();
    let by_codes = card_locked("j@example.org", "Jane Doe", until, None, LockCause::SecondFactor).unwrap();
    assert_eq!(by_codes.subject, "Your virtual smartcard is locked");
    for part in [&by_passcode.text, &by_passcode.html] {
        assert!(part.contains("08:05 UTC on 1 March 2026") && part.contains(LINK), "{part}");
        assert!(part.contains("entered wrongly 3 times"), "{part}");
    }
    for part in [&by_codes.text, &by_codes.html] {
        assert!(part.contains("08:05 UTC on 1 March 2026"), "{part}");
        assert!(part.contains("Wrong codes were entered") && part.contains("10 times within 24 hours"), "{part}");
        assert!(part.contains("knew your passcode") && !part.contains("entered wrongly 3 times"), "{part}");
        assert!(!part.contains("has not been confirmed"), "{part}");
    }
}

#[test]
fn html_escapes_the_holder_name() {
    let name = "Se\u{e1}n O'Brien <script>alert(1)</script>";
    let m = invitation("sean@example.org", name, CardType::V2, SERIAL_V2, LINK, expiry()).unwrap();
    assert!(m.text.contains(name), "the text part is not escaped:\n{}", m.text);
    assert!(!m.html.contains("<script>") && !m.html.contains("O'Brien"), "{}", m.html);
    assert!(m.html.contains("&#60;script&#62;") || m.html.contains("&lt;script&gt;"), "{}", m.html);
    assert!(m.html.contains("O&#39;Brien") || m.html.contains("O&#x27;Brien") || m.html.contains("O&apos;Brien"));
    assert!(m.html.contains("Se\u{e1}n"));
}

#[test]
fn redact_removes_links_and_codes_only() {
    let body = "Your vsc verification code is 482915. It is valid for 10 minutes.";
    assert_eq!(redact(body), "Your vsc verification code is [code removed]. It is valid for 10 minutes.");
    assert_eq!(redact(&sms_code("+447700900123", "000123").body).matches("[code removed]").count(), 1);

    let text = "Open https://vsc.example.org/enrol/Zq8?t=1&u=2. Or (http://localhost:8080/portal), card \
                1500987654321098, expires 7 December 2026; code:123456; ref 12345 and 1234567; id A123456.";
    assert_eq!(
        redact(text),
        "Open [link removed]. Or ([link removed]), card 1500987654321098, expires 7 December 2026; \
         code:[code removed]; ref 12345 and 1234567; id A123456."
    );
    // HTML keeps its markup.
    assert_eq!(
        redact("<a href=\"https://x.example/a\">https://x.example/a</a> <b>654321</b>"),
        "<a href=\"[link removed]\">[link removed]</a> <b>[code removed]</b>"
    );
    // Whole emails: the link goes, the serial and the year stay.
    let m = invitation("j@example.org", "Jane Doe", CardType::V2, SERIAL_V2, LINK, expiry()).unwrap();
    for part in [redact(&m.text), redact(&m.html)] {
        assert!(!part.contains("vsc.example.org/enrol") && part.contains("[link removed]"), "{part}");
        assert!(part.contains(SERIAL_V2) && part.contains("2026") && part.contains("Jane Doe"), "{part}");
    }
    assert_eq!(redact("nothing to hide, caf\u{e9} \u{2014} 2026"), "nothing to hide, caf\u{e9} \u{2014} 2026");
    assert_eq!(redact("HTTPS://EXAMPLE.ORG/x"), "[link removed]");
    assert_eq!(redact("https://"), "https://");
}

// --- 5: configuration -------------------------------------------------------------------------

#[tokio::test]
async fn without_urls_messages_stay_local() {
    let config = Config::default();
    let email = EmailChannel::from_config(&config).unwrap();
    assert!(matches!(email, EmailChannel::Local));
    let m = invitation("j@example.org", "Jane Doe", CardType::V1, SERIAL_V1, LINK, expiry()).unwrap();
    assert_eq!(email.send(&m).await.unwrap(), Delivery::KeptLocally);

    let sms = SmsChannel::from_config(&config).unwrap();
    assert!(matches!(sms, SmsChannel::Local));
    assert_eq!(sms.send(&sms_code("+447700900123", "482915")).await.unwrap(), Delivery::KeptLocally);

    // An empty URL (an unset environment variable) counts as none.
    let mut blank = Config::default();
    blank.smtp.url = Some("  ".into());
    blank.sms.url = Some(String::new());
    assert!(matches!(EmailChannel::from_config(&blank).unwrap(), EmailChannel::Local));
    assert!(matches!(SmsChannel::from_config(&blank).unwrap(), SmsChannel::Local));
}

#[test]
fn bad_urls_are_errors_that_hide_the_password() {
    const PASSWORD: &str = "Tr0ub4dor-3";
    for url in [
        format!("smtp://alice:{PASSWORD}@"),
        format!("ftp://alice:{PASSWORD}@mail.example.org"),
        format!("smtps://alice:{PASSWORD}@mail.example.org:notaport"),
        format!("alice:{PASSWORD}@mail.example.org"),
        format!("smtp://alice:{PASSWORD}@mail.example.org?tls=sometimes"),
        format!("smtps://alice:{PASSWORD}/x@mail.example.org"),
        format!("smtps://alice:{PASSWORD}@with@at@"),
    ] {
        let err = EmailChannel::from_config(&config_with_smtp(&url)).unwrap_err();
        assert!(err.contains("smtp.url"), "{err}");
        assert!(!err.contains(PASSWORD), "the password leaked: {err}");
    }

    let mut config = config_with_smtp("smtp://127.0.0.1:2525");
    config.smtp.from = Some("not an address".into());
    let err = EmailChannel::from_config(&config).unwrap_err();
    assert!(err.contains("smtp.from"), "{err}");

    // A sender with its own display name keeps it.
    config.smtp.from = Some("Card Office <cards@example.org>".into());
    let channel = EmailChannel::from_config(&config).unwrap();
    assert!(format!("{channel:?}").contains("Card Office"), "{channel:?}");
    assert!(
        !format!("{:?}", EmailChannel::from_config(&config_with_smtp(&format!("smtp://u:{PASSWORD}@h:25"))).unwrap())
            .contains(PASSWORD)
    );

    let mut config = Config::default();
    config.sms.url = Some(format!("ftp://bob:{PASSWORD}@gw.example.org/send"));
    let err = SmsChannel::from_config(&config).unwrap_err();
    assert!(err.contains("sms.url") && !err.contains(PASSWORD), "{err}");

    // An https gateway either works (TLS built in) or is refused up front, never half-way.
    config.sms.url = Some(format!("https://bob:{PASSWORD}@gw.example.org/send"));
    match SmsChannel::from_config(&config) {
        Ok(channel) => assert!(matches!(channel, SmsChannel::Http { .. })),
        Err(err) => assert!(err.contains("TLS") && !err.contains(PASSWORD), "{err}"),
    }
}
