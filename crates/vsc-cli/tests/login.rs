#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
//! The authenticator and the card client end to end: a real `vsc serve`, a holder enrolled and a
//! device added through the JSON API (codes read from `vsc admin outbox`), then
//! `vsc authenticator …` and `vsc card …` as separate processes talking to each other only
//! through the server, as a holder's laptop and phone would.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use vsc_testkit::free_port;

use serde_json::Value;
use tempfile::TempDir;
use vsc_client::Client;
use vsc_proto::{AddDeviceRequest, AnswerInput, EnrolmentRequest};

const BIN: &str = env!("CARGO_BIN_EXE_vsc");
const EMAIL: &str = "sean.o'brien@nhs.net";
const MOBILE: &str = "+447700900123";
const PASSCODE: &str = "abc123";
/// The authenticator's PIN, chosen at registration.
const DEVICE_PIN: &str = "2468";

/// A `vsc` command in `dir` with a clean environment (no `DATABASE_URL`, no `VSC_*`, a private
/// HOME so nothing lands in the real one).
fn command(dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir).env_remove("DATABASE_URL").env_remove("RUST_LOG").env("HOME", dir).stdin(Stdio::null());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("VSC_") {
            cmd.env_remove(name);
        }
    }
    cmd
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("UTF-8 output")
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "vsc failed ({}): {}{}", out.status, text(&out.stdout), text(&out.stderr));
    text(&out.stdout)
}

/// The one `error:` line of a command that must fail.
fn err(out: Output) -> String {
    assert!(!out.status.success(), "vsc unexpectedly succeeded: {}", text(&out.stdout));
    let stderr = text(&out.stderr);
    let line = stderr.lines().find(|l| l.starts_with("error: ")).unwrap_or_else(|| panic!("no error line: {stderr}"));
    line.to_string()
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

fn healthy(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if write!(s, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").is_err() {
        return false;
    }
    let mut raw = String::new();
    let _ = s.read_to_string(&mut raw);
    raw.starts_with("HTTP/1.1 200")
}

/// A `vsc serve` child process, killed when dropped.
struct Server {
    child: Child,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One test's world: a running server, an enrolled holder with a V2 card (roles R8000 and
/// R8003), and a registered authenticator.
struct World {
    tmp: TempDir,
    url: String,
    serial: String,
    rt: tokio::runtime::Runtime,
    server: Option<Server>,
    /// The scratch PostgreSQL database (`None`: SQLite in the data dir).
    database_url: Option<String>,
}

impl Drop for World {
    fn drop(&mut self) {
        drop(self.server.take());
        if let (Some(url), Some(base)) = (self.database_url.take(), vsc_testkit::postgres_url()) {
            let _ = self.rt.block_on(vsc_store::scratch::drop(&base, &url));
        }
    }
}

/// `cmd` on the test's database: PostgreSQL when `database_url` is set, else SQLite.
fn on_db<'a>(cmd: &'a mut Command, database_url: Option<&str>) -> &'a mut Command {
    if let Some(url) = database_url {
        cmd.env("DATABASE_URL", url);
    }
    cmd
}

impl World {
    fn dir(&self) -> &Path {
        self.tmp.path()
    }

    fn auth_dir(&self) -> PathBuf {
        self.dir().join("phone")
    }

    fn card_dir(&self) -> PathBuf {
        self.dir().join("laptop")
    }

    /// `vsc --data-dir <dir>/data ARGS`.
    fn admin(&self, args: &[&str]) -> String {
        let mut cmd = command(self.dir());
        on_db(&mut cmd, self.database_url.as_deref()).arg("--data-dir").arg(self.dir().join("data")).args(args);
        ok(cmd.output().unwrap())
    }

    /// `vsc authenticator ARGS --state-dir <phone>`; `wait` and `scan` are given the device's
    /// PIN on standard input (`--pin-stdin`).
    fn authenticator(&self, args: &[&str]) -> Output {
        if matches!(args.first(), Some(&"wait" | &"scan")) {
            let with_pin = [args, &["--pin-stdin"]].concat();
            return authenticator_with_stdin(self, &with_pin, &format!("{DEVICE_PIN}\n"));
        }
        self.authenticator_bare(args)
    }

    /// `vsc authenticator ARGS --state-dir <phone>`, standard input closed.
    fn authenticator_bare(&self, args: &[&str]) -> Output {
        let mut cmd = command(self.dir());
        cmd.arg("authenticator").args(args).arg("--state-dir").arg(self.auth_dir());
        cmd.output().unwrap()
    }

    /// `vsc card ARGS --state-dir <laptop>` (status, ticket, logout).
    fn card(&self, args: &[&str]) -> Output {
        let mut cmd = command(self.dir());
        cmd.arg("card").args(args).arg("--state-dir").arg(self.card_dir());
        cmd.output().unwrap()
    }

    /// Start `vsc card login --passcode-stdin` with `stdin` and extra `args`, stdout piped.
    fn start_login(&self, stdin: &str, args: &[&str]) -> Login {
        self.start_login_at(&self.url, stdin, args)
    }

    /// The same against the server at `url`.
    fn start_login_at(&self, url: &str, stdin: &str, args: &[&str]) -> Login {
        let mut cmd = command(self.dir());
        cmd.args(["card", "login", "--server", url, "--email", EMAIL, "--passcode-stdin", "--state-dir"])
            .arg(self.card_dir())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        let lines = lines_of(child.stdout.take().unwrap());
        Login { child, lines, seen: Vec::new() }
    }

    /// Run `sql` on the test's database (as the server sees it).
    fn exec(&self, sql: &str) {
        let url = self.database_url.clone().unwrap_or_else(|| vsc_store::sqlite_url(&self.dir().join("data")));
        self.rt.block_on(async {
            let store = vsc_store::Store::connect(&url).await.unwrap();
            let mut conn = store.conn().await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).execute(&mut *conn).await.unwrap();
        });
    }

    /// Every outbox message to `to` of `kind`, oldest first.
    fn outbox(&self, to: &str, kind: &str) -> Vec<Value> {
        let out = self.admin(&["admin", "outbox", "--json", "--to", to]);
        out.lines().map(json).filter(|m| m["kind"] == kind).collect()
    }
}

/// The 6-digit code in a message body.
fn six_digits(body: &str) -> String {
    body.split(|c: char| !c.is_ascii_digit()).find(|w| w.len() == 6).expect("6-digit code").to_string()
}

/// Output lines of a child (stdout or stderr), read on a thread so the test can wait with a deadline.
fn lines_of(stdout: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// A running `vsc card login`.
struct Login {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Login {
    /// The value of the first stdout line `prefix…` (the process is still waiting then).
    fn line_value(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if let Some(v) = line.strip_prefix(prefix) {
                        return v.trim().to_string();
                    }
                }
                Err(_) => panic!("no `{prefix}` line from vsc card login; saw {:?}", self.seen),
            }
        }
    }

    /// Wait (at most 60 s) for the process to end → (success, rest of stdout, stderr).
    fn finish(mut self) -> (bool, String, String) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("vsc card login did not finish; saw {:?}", self.seen);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        self.child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
        let rest: Vec<String> = self.lines.iter().collect();
        (status.success(), [self.seen, rest].concat().join("\n"), stderr)
    }
}

/// Bootstrap, a holder with a two-role V2 card, `vsc serve`, enrolment and a device added in the
/// portal API, then `vsc authenticator register URI --passcode-stdin`. On SQLite, or on a
/// scratch PostgreSQL database made on `postgres` (a server URL).
fn world_on(postgres: Option<&str>) -> World {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let database_url = postgres.map(|base| rt.block_on(vsc_testkit::fresh_postgres_database(base)));
    let db = database_url.clone();
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    let data = dir.join("data");
    let admin = |args: &[&str]| {
        let mut cmd = command(dir);
        ok(on_db(&mut cmd, db.as_deref()).arg("--data-dir").arg(&data).args(args).output().unwrap())
    };
    admin(
        &["admin", "bootstrap", "--org", "RX1", "--org-name", "Example Trust", "--email-domain", "nhs.net"]
            .into_iter()
            .chain(["--ra-email", "ra@nhs.net", "--ra-name", "Fiona Smith"])
            .collect::<Vec<_>>(),
    );
    admin(&[
        "admin",
        "user",
        "create",
        "--org",
        "RX1",
        "--forename",
        "Seán",
        "--surname",
        "O'Brien",
        "--email",
        EMAIL,
        "--mobile",
        MOBILE,
    ]);
    let card = json(&admin(&[
        "admin", "card", "issue", "--email", EMAIL, "--type", "v2", "--role", "R8000", "--role", "R8003", "--json",
    ]));
    let serial = card["serial"].as_str().unwrap().to_string();

    let (server, url) = serve(dir, &data, db.as_deref(), None);
    let w = World { tmp, url, serial, rt, server: Some(server), database_url };

    // Enrolment through the API: the invitation link, passcode and questions, the SMS code.
    let invitation = w.outbox(EMAIL, "invitation").pop().expect("invitation");
    let body = invitation["body"].as_str().unwrap();
    let start = body.find("/self-service/enrol/").unwrap() + "/self-service/enrol/".len();
    let token: String =
        body[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-').collect();
    let anon = Client::new(&w.url);
    let answers = [(1, "Rex"), (2, "Leeds"), (3, "Blue")]
        .map(|(question, answer)| AnswerInput { question, answer: answer.into() })
        .to_vec();
    let req = EnrolmentRequest { passcode: PASSCODE.into(), answers, mobile: None };
    w.rt.block_on(anon.enrol(&token, &req)).unwrap();
    let sms = w.outbox(MOBILE, "enrolment_code").pop().expect("SMS code");
    let code = six_digits(sms["body"].as_str().unwrap());
    let session = w.rt.block_on(anon.verify_enrolment(&token, &code)).unwrap();
    let holder = anon.with_token(&session.session);

    // Adding a device in the portal: the emailed code, then the registration URI.
    let add = AddDeviceRequest { name: "Work laptop".into(), device_type: "desktop".into(), authenticator_type: None };
    let device = w.rt.block_on(holder.add_device(&add)).unwrap();
    let mail = w.outbox(EMAIL, "device_code").pop().expect("device code email");
    let code = six_digits(mail["body"].as_str().unwrap());
    let reg = w.rt.block_on(holder.verify_device(&device.id, &code)).unwrap();
    assert!(reg.registration_uri.starts_with("vsc-auth://register?v=1&"), "{}", reg.registration_uri);

    // A wrong passcode, or no PIN (the server requires one), is refused and leaves no state
    // behind; the right passcode with a PIN (the line after it) registers.
    let register = |stdin: &str, pin_stdin: bool| {
        let mut child = command(w.dir())
            .args(["authenticator", "register", &reg.registration_uri, "--passcode-stdin", "--state-dir"])
            .arg(w.auth_dir())
            .args(if pin_stdin { &["--pin-stdin"][..] } else { &[] })
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let e = err(register(&format!("wrong1\n{DEVICE_PIN}\n"), true));
    assert!(e.contains("passcode"), "{e}");
    assert!(!w.auth_dir().join("device.json").exists());
    let e = err(register(&format!("{PASSCODE}\n"), false));
    assert!(e.contains("PIN") && e.contains("--pin-stdin"), "{e}");
    let e = err(register(&format!("{PASSCODE}\n12a4\n"), true));
    assert!(e.contains("4 to 8 digits"), "{e}");
    assert!(!w.auth_dir().join("device.json").exists());
    let out = ok(register(&format!("{PASSCODE}\n{DEVICE_PIN}\n"), true));
    assert!(out.contains("registered device ") && out.contains(&device.id), "{out}");
    assert!(out.contains("O'BRIEN") && out.contains(EMAIL), "{out}");
    let devices = w.rt.block_on(holder.devices()).unwrap().devices;
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0].state, "active");
    assert_eq!(devices[0].client_version.as_deref(), Some(env!("CARGO_PKG_VERSION")));
    assert_eq!(devices[0].platform.as_deref(), Some(std::env::consts::OS));
    w
}

/// Start `vsc serve` on a free port with `data` as data dir (and `kek` as key file) → the
/// process and its URL, once healthy.
fn serve(dir: &Path, data: &Path, database_url: Option<&str>, kek: Option<&Path>) -> (Server, String) {
    let port = free_port();
    let log = dir.join(format!("serve-{port}.log"));
    let mut serve = command(dir);
    if let Some(kek) = kek {
        serve.env("VSC_KEK_FILE", kek);
    }
    let child = on_db(&mut serve, database_url)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(data)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut server = Server { child, log };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !healthy(port) {
        if let Some(status) = server.child.try_wait().unwrap() {
            panic!("vsc serve exited ({status}): {}", std::fs::read_to_string(&server.log).unwrap_or_default());
        }
        assert!(Instant::now() < deadline, "vsc serve not healthy within 30 s");
        std::thread::sleep(Duration::from_millis(25));
    }
    (server, format!("http://127.0.0.1:{port}"))
}

/// A world on SQLite.
fn world() -> World {
    world_on(None)
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn push_login_with_number_matching_opens_a_session_that_gives_tickets() {
    let w = world();
    #[cfg(unix)]
    {
        assert_eq!(mode(&w.auth_dir()), 0o700);
        assert_eq!(mode(&w.auth_dir().join("device.json")), 0o600);
    }

    // The authenticator lists itself and the holder's card.
    let me = json(&ok(w.authenticator(&["list", "--json"])));
    assert_eq!(me["device"]["state"], "active", "{me}");
    assert_eq!(me["device"]["name"], "Work laptop", "{me}");
    assert_eq!(me["email"], EMAIL, "{me}");
    assert_eq!(me["cards"][0]["serial"], w.serial.as_str(), "{me}");
    let listed = ok(w.authenticator(&["list"]));
    assert!(listed.contains("Work laptop") && listed.contains(&w.serial) && listed.contains("expires"), "{listed}");

    // Nothing pending: waiting times out with a clear message.
    let e = err(w.authenticator(&["wait", "--approve", "--timeout", "1"]));
    assert!(e.contains("no login request"), "{e}");

    let mut login = w.start_login(&format!("{PASSCODE}\n"), &["--role", "R8003", "--client", "test laptop"]);
    let number = login.line_value("number: ");
    assert!(number.len() == 2 && number.chars().all(|c| c.is_ascii_digit()), "{number}");
    assert!(login.seen.iter().any(|l| l.contains("Approve on your phone")), "{:?}", login.seen);

    // Approving a number-matching login needs the number; nothing is answered without it.
    let e = err(w.authenticator(&["wait", "--approve", "--timeout", "10"]));
    assert!(e.contains("--number"), "{e}");
    let shown = ok(w.authenticator(&["wait", "--approve", "--number", &number, "--timeout", "10"]));
    assert!(shown.contains("test laptop") && shown.contains(&w.serial), "{shown}");
    assert!(shown.contains(&number), "the choices include the login's number: {shown}");
    assert!(shown.contains("state: approved"), "{shown}");

    let (success, out, stderr) = login.finish();
    assert!(success, "login failed: {out}\n{stderr}");
    assert!(out.contains(&format!("session open: card {}, role R8003, until ", w.serial)), "{out}");
    #[cfg(unix)]
    {
        assert_eq!(mode(&w.card_dir()), 0o700);
        assert_eq!(mode(&w.card_dir().join("session.json")), 0o600);
    }

    let status = json(&ok(w.card(&["status", "--json"])));
    assert_eq!(status["card"], w.serial.as_str(), "{status}");
    assert_eq!(status["role"], "R8003", "{status}");
    assert_eq!(status["email"], EMAIL, "{status}");
    assert_eq!(status["method"], "push", "{status}");
    let shown = ok(w.card(&["status"]));
    assert!(shown.contains(&w.serial) && shown.contains("R8003"), "{shown}");

    // A ticket for a registered app, printed alone, validates as the holder's card and role.
    let app = json(&w.admin(&["admin", "app", "create", "test-portal", "--json"]));
    let key = app["key"].as_str().unwrap();
    let out = ok(w.card(&["ticket", "--app", "test-portal"]));
    assert_eq!(out.lines().count(), 1, "{out}");
    let ticket = out.trim();
    assert!(!ticket.is_empty() && !ticket.contains(char::is_whitespace), "{out:?}");
    let valid = w.rt.block_on(Client::new(&w.url).with_token(key).validate_ticket(ticket)).unwrap();
    assert_eq!((valid.card_serial.as_str(), valid.role.as_str()), (w.serial.as_str(), "R8003"));

    // Logout ends the session on the server and deletes the local copy.
    let stored = json(&std::fs::read_to_string(w.card_dir().join("session.json")).unwrap());
    let bearer = Client::new(&w.url).with_token(stored["session"].as_str().unwrap());
    assert!(ok(w.card(&["logout"])).contains("logged out"));
    assert!(!w.card_dir().join("session.json").exists());
    let gone = w.rt.block_on(bearer.card_session()).unwrap_err();
    assert_eq!(gone.status(), Some(401), "{gone}");
    let e = err(w.card(&["status"]));
    assert!(e.contains("vsc card login"), "{e}");
    err(w.card(&["ticket", "--app", "test-portal"]));
}

#[test]
fn a_denied_push_fails_the_login() {
    let w = world();
    let mut login = w.start_login(&format!("{PASSCODE}\n"), &["--role", "R8000"]);
    let number = login.line_value("number: ");
    // A number that is not among the choices is refused locally; nothing is answered.
    // (choices are 10–99, so 200 is never one.)
    let not_a_choice = err(w.authenticator(&["wait", "--approve", "--number", "200", "--timeout", "10"]));
    assert!(not_a_choice.contains("choices") && not_a_choice.contains(&number), "{not_a_choice}");
    let shown = ok(w.authenticator(&["wait", "--deny", "--timeout", "10"]));
    assert!(shown.contains("state: denied"), "{shown}");
    let (success, out, stderr) = login.finish();
    assert!(!success, "a denied login succeeded: {out}");
    assert!(stderr.contains("error: ") && stderr.contains("denied"), "{stderr}");
    assert!(!w.card_dir().join("session.json").exists());
    err(w.card(&["status"]));

    // A wrong passcode fails at once, saying so without naming which part was wrong.
    let login = w.start_login("wrong9\n", &[]);
    let (success, _, stderr) = login.finish();
    assert!(!success);
    assert!(stderr.contains("login refused"), "{stderr}");
}

#[test]
fn the_authenticator_code_logs_in_with_method_code() {
    let w = world();
    let out = ok(w.authenticator(&["code"]));
    let code = out.split_whitespace().next().unwrap();
    assert!(code.len() == 6 && code.chars().all(|c| c.is_ascii_digit()), "{out}");
    assert!(out.contains("s left"), "{out}");
    let j = json(&ok(w.authenticator(&["code", "--json"])));
    let code = j["code"].as_str().unwrap().to_string();
    let left = j["seconds_left"].as_i64().unwrap();
    assert!((1..=30).contains(&left), "{j}");

    let login = w.start_login(&format!("{PASSCODE}\n{code}\n"), &["--method", "code", "--role", "R8000"]);
    let (success, out, stderr) = login.finish();
    assert!(success, "code login failed: {out}\n{stderr}");
    assert!(out.contains(&format!("session open: card {}, role R8000", w.serial)), "{out}");
    let status = json(&ok(w.card(&["status", "--json"])));
    assert_eq!(status["method"], "code", "{status}");

    // The same code does not work twice.
    let login = w.start_login(&format!("{PASSCODE}\n{code}\n"), &["--method", "code", "--role", "R8000"]);
    let (success, out, _) = login.finish();
    assert!(!success, "a code was accepted twice: {out}");
}

#[test]
fn a_scanned_qr_login_is_approved_and_several_roles_need_a_choice() {
    let w = world();
    // Without --role and without a terminal, an approved two-role login cannot pick a role.
    let mut login = w.start_login(&format!("{PASSCODE}\n"), &["--method", "qr"]);
    let uri = login.line_value("uri: ");
    assert!(uri.starts_with("vsc-auth://login?v=1&"), "{uri}");
    let shown = ok(w.authenticator(&["scan", &uri, "--approve"]));
    assert!(shown.contains("state: approved"), "{shown}");
    let (success, _, stderr) = login.finish();
    assert!(!success);
    assert!(stderr.contains("--role") && stderr.contains("R8000") && stderr.contains("R8003"), "{stderr}");

    let mut login = w.start_login(&format!("{PASSCODE}\n"), &["--method", "qr", "--role", "R8000"]);
    let uri = login.line_value("uri: ");
    // A tampered nonce is refused without answering.
    let (head, query) = uri.split_once('?').unwrap();
    let query: Vec<&str> = query.split('&').map(|p| if p.starts_with("n=") { "n=AAAA" } else { p }).collect();
    let tampered = format!("{head}?{}", query.join("&"));
    assert_ne!(tampered, uri);
    let e = err(w.authenticator(&["scan", &tampered, "--approve"]));
    assert!(e.contains("nonce") || e.contains("match"), "{e}");
    ok(w.authenticator(&["scan", &uri, "--approve"]));
    let (success, out, stderr) = login.finish();
    assert!(success, "QR login failed: {out}\n{stderr}");
    assert!(out.contains("role R8000"), "{out}");
    // The answered challenge cannot be answered again.
    let e = err(w.authenticator(&["scan", &uri, "--deny"]));
    assert!(e.contains("expired or was already answered") || e.contains("no such"), "{e}");
}

#[test]
fn push_login_on_postgres_and_across_two_nodes() {
    let Some(base) = vsc_testkit::postgres_url() else {
        eprintln!("SKIPPED: push_login_on_postgres_and_across_two_nodes needs DATABASE_URL");
        return;
    };
    let w = world_on(Some(&base));
    // The authenticator is already waiting when the push is made: LISTEN/NOTIFY wakes it.
    let mut cmd = command(w.dir());
    cmd.args(["authenticator", "wait", "--deny", "--timeout", "30", "--state-dir"]).arg(w.auth_dir());
    let waiting = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let mut login = w.start_login(&format!("{PASSCODE}\n"), &["--role", "R8000"]);
    login.line_value("number: ");
    let denied = ok(waiting.wait_with_output().unwrap());
    assert!(denied.contains("state: denied"), "{denied}");
    assert!(!login.finish().0, "a denied login succeeded");

    let mut login = w.start_login(&format!("{PASSCODE}\n"), &["--role", "R8000"]);
    let number = login.line_value("number: ");
    let shown = ok(w.authenticator(&["wait", "--approve", "--number", &number, "--timeout", "10"]));
    assert!(shown.contains("state: approved"), "{shown}");
    let (success, out, stderr) = login.finish();
    assert!(success, "login failed: {out}\n{stderr}");
    let status = json(&ok(w.card(&["status", "--json"])));
    assert_eq!((status["card"].as_str(), status["role"].as_str()), (Some(w.serial.as_str()), Some("R8000")));
    assert!(ok(w.card(&["logout"])).contains("logged out"));

    // A second `vsc serve` node on the same database (sharing the key file): the login goes to
    // node B while the authenticator waits on node A, and still hears of it at once.
    let data_b = w.dir().join("data-b");
    let (_node_b, url_b) = serve(w.dir(), &data_b, w.database_url.as_deref(), Some(&w.dir().join("data").join("kek")));
    let mut cmd = command(w.dir());
    cmd.args(["authenticator", "wait", "--deny", "--timeout", "30", "--state-dir"]).arg(w.auth_dir());
    let waiting = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let mut login = w.start_login_at(&url_b, &format!("{PASSCODE}\n"), &["--role", "R8000"]);
    login.line_value("number: ");
    let denied = ok(waiting.wait_with_output().unwrap());
    assert!(denied.contains("state: denied"), "{denied}");
    assert!(started.elapsed() < Duration::from_secs(10), "delivered across nodes without polling");
    assert!(!login.finish().0, "a denied login succeeded");
    let mut login = w.start_login_at(&url_b, &format!("{PASSCODE}\n"), &["--role", "R8000"]);
    let number = login.line_value("number: ");
    let shown = ok(w.authenticator(&["wait", "--approve", "--number", &number, "--timeout", "10"]));
    assert!(shown.contains("state: approved"), "{shown}");
    let (success, out, stderr) = login.finish();
    assert!(success, "login through node B failed: {out}\n{stderr}");
    let status = json(&ok(w.card(&["status", "--json"])));
    assert_eq!(status["card"].as_str(), Some(w.serial.as_str()));
}

/// `vsc authenticator ARGS --state-dir <phone>` with `stdin`.
fn authenticator_with_stdin(w: &World, args: &[&str], stdin: &str) -> Output {
    let mut cmd = command(w.dir());
    cmd.arg("authenticator")
        .args(args)
        .arg("--state-dir")
        .arg(w.auth_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn the_authenticator_pin_guards_approval_and_reset_and_an_ra_token_clears_its_lock() {
    let w = world();
    // Registered with a PIN; changing it needs the current one first.
    let e = err(authenticator_with_stdin(&w, &["pin", "set", "--pin-stdin"], "0000\n8642\n"));
    assert!(e.contains("PIN"), "{e}");
    let out = ok(authenticator_with_stdin(&w, &["pin", "set", "--pin-stdin"], &format!("{DEVICE_PIN}\n8642\n")));
    assert!(out.contains("PIN changed"), "{out}");
    let me = json(&ok(w.authenticator(&["list", "--json"])));
    assert_eq!((me["device"]["pin_set"].as_bool(), me["device"]["pin_locked"].as_bool()), (Some(true), Some(false)));
    let device_id = me["device"]["id"].as_str().unwrap().to_string();

    // Approving now needs the PIN: without a terminal, only --pin-stdin gives it.
    let mut login = w.start_login(&format!("{PASSCODE}\n"), &["--role", "R8000"]);
    let number = login.line_value("number: ");
    let e = err(w.authenticator_bare(&["wait", "--approve", "--number", &number, "--timeout", "10"]));
    assert!(e.contains("--pin-stdin"), "{e}");
    let args = ["wait", "--approve", "--number", &number, "--timeout", "10", "--pin-stdin"];
    let shown = ok(authenticator_with_stdin(&w, &args, "8642\n"));
    assert!(shown.contains("state: approved"), "{shown}");
    let (success, out, stderr) = login.finish();
    assert!(success, "login failed: {out}\n{stderr}");

    // 5 wrong PINs lock it; then even the right one is refused.
    let reset = ["reset-passcode", "--new-passcode-stdin", "--pin-stdin"];
    for _ in 0..5 {
        let e = err(authenticator_with_stdin(&w, &reset, "newpc42\n0000\n"));
        assert!(e.contains("PIN"), "{e}");
    }
    let e = err(authenticator_with_stdin(&w, &reset, "newpc42\n8642\n"));
    assert!(e.contains("locked"), "{e}");

    // The RA's token resets the PIN once.
    let token = w.admin(&["admin", "device", "pin-reset", &device_id]).trim().to_string();
    let pin_reset = ["pin", "reset", "--token", &token, "--pin-stdin"];
    ok(authenticator_with_stdin(&w, &pin_reset, "1357\n"));
    let e = err(authenticator_with_stdin(&w, &pin_reset, "9753\n"));
    assert!(e.contains("already been used"), "{e}");

    // A new passcode from the authenticator; the card logs in with it.
    let out = ok(authenticator_with_stdin(&w, &reset, "newpc42\n1357\n"));
    assert!(out.contains("passcode changed"), "{out}");
    let mut login = w.start_login("newpc42\n", &["--role", "R8000"]);
    let number = login.line_value("number: ");
    let args = ["wait", "--approve", "--number", &number, "--timeout", "10", "--pin-stdin"];
    ok(authenticator_with_stdin(&w, &args, "1357\n"));
    let (success, out, stderr) = login.finish();
    assert!(success, "login with the new passcode failed: {out}\n{stderr}");
}

#[test]
fn an_authenticator_without_a_pin_is_told_to_set_one_and_then_approves() {
    let w = world();
    // A device registered before PINs were required.
    w.exec("UPDATE devices SET pin_hash = NULL");
    let e = err(w.authenticator_bare(&["list"]));
    assert!(e.contains("no PIN yet") && e.contains("vsc authenticator pin set"), "{e}");
    let mut login = w.start_login(&format!("{PASSCODE}\n"), &["--role", "R8000"]);
    let number = login.line_value("number: ");
    let e = err(w.authenticator(&["wait", "--approve", "--number", &number, "--timeout", "10"]));
    assert!(e.contains("vsc authenticator pin set"), "{e}");
    let e = err(authenticator_with_stdin(
        &w,
        &["reset-passcode", "--new-passcode-stdin", "--pin-stdin"],
        "newpc42\n1357\n",
    ));
    assert!(e.contains("vsc authenticator pin set"), "{e}");
    // Setting the PIN asks only for the new one (there is no current PIN), then approving works.
    let out = ok(authenticator_with_stdin(&w, &["pin", "set", "--pin-stdin"], "1357\n"));
    assert!(out.contains("PIN set"), "{out}");
    let args = ["wait", "--approve", "--number", &number, "--timeout", "10", "--pin-stdin"];
    let shown = ok(authenticator_with_stdin(&w, &args, "1357\n"));
    assert!(shown.contains("state: approved"), "{shown}");
    let (success, out, stderr) = login.finish();
    assert!(success, "login failed: {out}\n{stderr}");
}

/// Run openssl in `dir` → (success, stdout + stderr).
fn openssl(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl").current_dir(dir).args(args).output().unwrap();
    (out.status.success(), format!("{}{}", text(&out.stdout), text(&out.stderr)))
}

#[test]
fn a_cades_signature_approved_on_the_authenticator_verifies_until_the_card_is_revoked() {
    let w = world();
    let mut login = w.start_login(&format!("{PASSCODE}\n"), &["--role", "R8000"]);
    let number = login.line_value("number: ");
    ok(w.authenticator(&["wait", "--approve", "--number", &number, "--timeout", "10"]));
    let (success, out, stderr) = login.finish();
    assert!(success, "login failed: {out}\n{stderr}");

    // The card's certificates and the chain, written for openssl.
    let listed = ok(w.card(&["certs", "--out-dir", "certs"]));
    assert!(listed.contains("authentication") && listed.contains("signing") && listed.contains("chain:"), "{listed}");
    for f in ["authentication.pem", "signing.pem", "ca.pem"] {
        assert!(w.dir().join("certs").join(f).exists(), "{f} missing");
    }

    // `vsc card sign` waits for the approval; the authenticator approves it (number matching).
    let doc = w.dir().join("doc.txt");
    let content = b"I, the undersigned, agree to the terms.\n";
    std::fs::write(&doc, content).unwrap();
    let mut cmd = command(w.dir());
    cmd.args(["card", "sign", "doc.txt", "--state-dir"])
        .arg(w.card_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut signing = cmd.spawn().unwrap();
    let stderr_lines = lines_of(signing.stderr.take().unwrap());
    let mut seen = Vec::new();
    let prompt = loop {
        match stderr_lines.recv_timeout(Duration::from_secs(30)) {
            Ok(line) if line.contains("on your authenticator") => break line,
            Ok(line) => seen.push(line),
            Err(_) => panic!("no approval prompt from vsc card sign; saw {seen:?}"),
        }
    };
    assert!(prompt.contains("\"doc.txt\""), "{prompt}");
    let mut approve = vec!["wait", "--approve", "--timeout", "10"];
    let pick = prompt.split("(pick ").nth(1).map(|p| p.trim_end_matches(')').to_string());
    let pick = pick.expect("number matching is on by default for signature approvals too");
    approve.extend(["--number", pick.as_str()]);
    let shown = ok(w.authenticator(&approve));
    assert!(shown.contains("state: approved"), "{shown}");
    let out = signing.wait_with_output().unwrap();
    let rest: Vec<String> = stderr_lines.try_iter().collect();
    assert!(out.status.success(), "vsc card sign failed: {}{rest:?}", text(&out.stdout));
    let signed = text(&out.stdout);
    assert!(signed.contains("signed doc.txt → doc.txt.p7s (certificate "), "{signed}");

    // openssl accepts it with the chain from `vsc card certs`.
    let verify_args =
        ["cms", "-verify", "-binary", "-content", "doc.txt", "-inform", "DER", "-in", "doc.txt.p7s", "-CAfile"];
    let (good, said) = openssl(w.dir(), &[&verify_args[..], &["certs/ca.pem", "-out", "/dev/null"]].concat());
    assert!(good, "{said}");

    // `vsc card verify`: valid and not revoked; a changed byte makes it invalid.
    let valid = ok(w.card(&["verify", "doc.txt", "doc.txt.p7s"]));
    assert!(valid.starts_with("valid: signed by ") && valid.contains("certificate good (CRL of "), "{valid}");
    let mut changed = content.to_vec();
    changed[2] ^= 0x20;
    std::fs::write(&doc, &changed).unwrap();
    let e = err(w.card(&["verify", "doc.txt", "doc.txt.p7s"]));
    assert!(e.contains("invalid") && e.contains("message digest differs"), "{e}");
    std::fs::write(&doc, content).unwrap();

    // After the card is revoked the service's CRL lists the certificate (no session needed).
    w.admin(&["admin", "card", "revoke", &w.serial, "--reason", "key_compromise"]);
    let mut cmd = command(w.dir());
    cmd.args(["card", "verify", "doc.txt", "doc.txt.p7s", "--json", "--server", &w.url, "--state-dir"])
        .arg(w.dir().join("nowhere"));
    let out = cmd.output().unwrap();
    assert!(!out.status.success(), "a revoked signature verified: {}", text(&out.stdout));
    let j = json(&text(&out.stdout));
    assert_eq!((j["valid"].as_bool(), j["revoked"].as_bool()), (Some(true), Some(true)), "{j}");
    assert!(text(&out.stderr).contains("revoked: certificate "), "{}", text(&out.stderr));
}
