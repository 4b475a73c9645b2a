//! End-to-end tests of the `vsc` binary: every test runs the real executable in its own temporary
//! directory (as current dir and `--data-dir`), with `DATABASE_URL` and every `VSC_*` variable
//! removed unless the test sets one on purpose. The PostgreSQL test runs when `DATABASE_URL`
//! points at a server (e.g. `postgres://postgres@127.0.0.1:5432/postgres`) and is skipped
//! otherwise.

// Test helpers (outside `#[test]` functions, so clippy's in-test allowances do not reach them)
// fail the test by panicking, which is what a broken fixture should do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use vsc_testkit::free_port;

use serde_json::Value;
use tempfile::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_vsc");
const SEAN: &str = "sean.o'brien@nhs.net";

/// A `vsc` command in `dir` with a clean environment (no `DATABASE_URL`, no `VSC_*`).
fn command(dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir).env_remove("DATABASE_URL").env_remove("RUST_LOG").stdin(Stdio::null());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("VSC_") {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// The data dir the tests use inside their temporary directory.
fn data_dir(dir: &Path) -> PathBuf {
    dir.join("data")
}

/// Run `vsc --data-dir <dir>/data ARGS` in `dir`.
fn vsc(dir: &Path, args: &[&str]) -> Output {
    run(command(dir).arg("--data-dir").arg(data_dir(dir)).args(args))
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run vsc")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("UTF-8 output")
}

/// Stdout of a command that must succeed.
fn ok(out: Output) -> String {
    assert!(out.status.success(), "vsc failed ({}): {}", out.status, text(&out.stderr));
    text(&out.stdout)
}

/// The one `error:` line of a command that must fail.
fn err(out: Output) -> String {
    assert!(!out.status.success(), "vsc unexpectedly succeeded: {}", text(&out.stdout));
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected exactly one stderr line, got {stderr:?}");
    assert!(lines[0].starts_with("error: "), "stderr does not start with `error: `: {stderr:?}");
    lines[0].to_string()
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

fn vsc_json(dir: &Path, args: &[&str]) -> Value {
    json(&ok(vsc(dir, args)))
}

/// `vsc admin bootstrap` of `org`: RX1 is "Example Trust" with nhs.net, any other organisation
/// "Second Trust" with second.nhs.uk (names and domains belong to one organisation each).
fn bootstrap_args(org: &str, json: bool) -> Vec<&str> {
    let (name, domain) = if org == "RX1" { ("Example Trust", "nhs.net") } else { ("Second Trust", "second.nhs.uk") };
    let mut args = vec!["admin", "bootstrap", "--org", org, "--org-name", name, "--email-domain", domain];
    args.extend(["--ra-email", "ra@nhs.net", "--ra-name", "Fiona Smith"]);
    if json {
        args.push("--json");
    }
    args
}

/// Bootstrap RX1 and return the RA token.
fn bootstrap(dir: &Path) -> String {
    let v = vsc_json(dir, &bootstrap_args("RX1", true));
    v["token"].as_str().expect("token").to_string()
}

/// `vsc admin user create` for Seán O'Brien in RX1, with `--json`.
const CREATE_SEAN: &[&str] = &[
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
    SEAN,
    "--json",
];

fn create_sean(dir: &Path) -> Value {
    vsc_json(dir, CREATE_SEAN)
}

fn issue_v2(dir: &Path) -> Value {
    vsc_json(
        dir,
        &["admin", "card", "issue", "--email", SEAN, "--type", "v2", "--role", "R8000", "--role", "R8003", "--json"],
    )
}

fn card_count(dir: &Path, email: &str) -> usize {
    let u = vsc_json(dir, &["admin", "user", "show", "--email", email, "--json"]);
    u["cards"].as_array().expect("cards").len()
}

/// `GET path` over plain HTTP/1.1; returns the status code and body.
fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n")?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    assert!(!head.to_ascii_lowercase().contains("transfer-encoding: chunked"), "unexpected chunked body: {head}");
    Ok((status, body.to_string()))
}

fn get_ok(port: u16, path: &str) -> String {
    let (status, body) = http_get(port, path).expect("HTTP request");
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

/// A `vsc serve` child process; killed when dropped if still running.
struct Server {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Server {
    /// Start `cmd` (a `vsc serve` command listening on `port`) and wait until `/healthz` answers 200.
    fn start(mut cmd: Command, port: u16, log: PathBuf) -> Server {
        let file = std::fs::File::create(&log).expect("log file");
        let child = cmd.stdout(Stdio::null()).stderr(file).spawn().expect("spawn vsc serve");
        let mut server = Server { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok((200, _)) = http_get(port, "/healthz") {
                return server;
            }
            if let Some(status) = server.child.try_wait().expect("try_wait") {
                panic!("vsc serve exited early ({status}): {}", server.log());
            }
            assert!(Instant::now() < deadline, "vsc serve not healthy within 30 s: {}", server.log());
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// `vsc serve --listen 127.0.0.1:<free port> --data-dir <dir>/data` in `dir`.
    fn start_in(dir: &Path, log: &str) -> Server {
        let port = free_port();
        let mut cmd = command(dir);
        cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"]).arg(data_dir(dir));
        Server::start(cmd, port, dir.join(log))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Send SIGTERM and wait (at most 10 s) for the process to exit successfully.
    fn terminate(mut self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().expect("run kill");
        assert!(status.success(), "kill -TERM {pid} failed");
        let deadline = Instant::now() + Duration::from_secs(10);
        let exit = loop {
            if let Some(exit) = self.child.try_wait().expect("try_wait") {
                break exit;
            }
            assert!(Instant::now() < deadline, "vsc serve did not exit within 10 s of SIGTERM: {}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(exit.success(), "vsc serve exited with {exit} after SIGTERM: {}", self.log());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn bootstrap_prints_a_token_and_creates_the_data_dir() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    let v = vsc_json(dir, &bootstrap_args("RX1", true));
    let first = v["token"].as_str().expect("token");
    assert!(first.starts_with("vsc_"), "{v}");
    assert_eq!(v["organisation"], "RX1");
    assert_eq!(v["organisation_created"], true);
    assert_eq!(v["staff_created"], true);
    assert_eq!(v["operator"], true, "bootstrap makes its account an operator: {v}");

    let data = data_dir(dir);
    assert!(data.join("vsc.db").is_file());
    let kek = std::fs::metadata(data.join("kek")).expect("kek file");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(kek.permissions().mode() & 0o777, 0o600, "kek file mode");
        let d = std::fs::metadata(&data).unwrap();
        assert_eq!(d.permissions().mode() & 0o077, 0, "data dir must not be group/world accessible");
    }

    // A second organisation with the same RA manager: the account exists, the token is new.
    let v2 = vsc_json(dir, &bootstrap_args("RX2", true));
    let second = v2["token"].as_str().expect("token");
    assert!(second.starts_with("vsc_"));
    assert_ne!(first, second);
    assert_eq!(v2["organisation"], "RX2");
    assert_eq!(v2["organisation_created"], true);
    assert_eq!(v2["staff_created"], false);

    // Without --json stdout is exactly the token line (the explanation goes to stderr).
    let out = ok(vsc(dir, &bootstrap_args("RX2", false)));
    let token = out.strip_suffix('\n').expect("newline-terminated");
    assert!(token.starts_with("vsc_") && !token.contains(char::is_whitespace), "{out:?}");
    assert_ne!(token, first);
    assert_ne!(token, second);

    // A domain another organisation holds fails clearly, and creates nothing.
    let mut held = bootstrap_args("RX3", true);
    held[5] = "Third Trust";
    held[7] = "nhs.net";
    let e = err(vsc(dir, &held));
    assert!(e.contains("nhs.net belongs to another organisation"), "{e}");
    let mut named = bootstrap_args("RX3", true);
    named[5] = "EXAMPLE trust";
    named[7] = "third.nhs.uk";
    let e = err(vsc(dir, &named));
    assert!(e.contains("an organisation named EXAMPLE trust already exists"), "{e}");

    let orgs = vsc_json(dir, &["admin", "org", "list", "--json"]);
    let codes: Vec<&str> = orgs.as_array().unwrap().iter().filter_map(|o| o["code"].as_str()).collect();
    assert_eq!(codes.len(), 2, "{orgs}");
    assert!(codes.contains(&"RX1") && codes.contains(&"RX2"), "{orgs}");
}

#[test]
fn token_create_issues_new_tokens_for_known_accounts_only() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    let boot = bootstrap(dir);
    let a = ok(vsc(dir, &["admin", "token", "create", "--email", "ra@nhs.net"]));
    let b = ok(vsc(dir, &["admin", "token", "create", "--email", "ra@nhs.net"]));
    for t in [&a, &b] {
        assert!(t.starts_with("vsc_") && t.ends_with('\n') && t.lines().count() == 1, "{t:?}");
    }
    assert_ne!(a, b);
    assert_ne!(a.trim_end(), boot);
    let j = vsc_json(dir, &["admin", "token", "create", "--email", "ra@nhs.net", "--json"]);
    assert!(j["token"].as_str().unwrap().starts_with("vsc_"), "{j}");

    let e = err(vsc(dir, &["admin", "token", "create", "--email", "nobody@nhs.net"]));
    assert!(e.contains("nobody@nhs.net"), "{e}");

    // A mistyped data dir is an error, not a new installation.
    let typo = dir.join("vsc-dat");
    let typo_arg = typo.to_str().unwrap();
    let e = err(run(command(dir).args(["admin", "token", "create", "--email", "ra@nhs.net", "--data-dir", typo_arg])));
    assert!(e.contains("no vsc database") && e.contains("vsc-dat"), "{e}");
    assert!(!typo.exists(), "nothing is created there");
}

#[test]
fn staff_operators_are_granted_withdrawn_and_totp_reset_from_the_console() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    bootstrap(dir);
    let invite = ["admin", "staff", "invite", "--email", "op@nhs.net", "--org", "RX1", "--role", "agent"];
    let v = vsc_json(dir, &[&invite[..], &["--name", "Olu Operator", "--operator", "--json"]].concat());
    assert_eq!((v["operator"].as_bool(), v["created"].as_bool()), (Some(true), Some(true)), "{v}");
    assert!(v["password_link"].as_str().unwrap().contains("/ra/set-password/"), "the console prints links: {v}");
    let plain = ["admin", "staff", "invite", "--email", "pat@nhs.net", "--org", "RX1", "--role", "agent"];
    let v = vsc_json(dir, &[&plain[..], &["--name", "Pat Plain", "--json"]].concat());
    assert_eq!(v["operator"], false, "{v}");

    let out = vsc(dir, &["admin", "staff", "operator", "--email", "op@nhs.net", "off"]);
    assert!(text(&out.stderr).contains("op@nhs.net is not an operator"), "{}", text(&out.stderr));
    let out = vsc(dir, &["admin", "staff", "operator", "--email", "pat@nhs.net", "on"]);
    assert!(text(&out.stderr).contains("pat@nhs.net is an operator"), "{}", text(&out.stderr));
    let e = err(vsc(dir, &["admin", "staff", "operator", "--email", "nobody@nhs.net", "on"]));
    assert!(e.contains("no RA account"), "{e}");
    ok(vsc(dir, &["admin", "staff", "reset-totp", "--email", "pat@nhs.net"]));
    let e = err(vsc(dir, &["admin", "staff", "reset-totp", "--email", "nobody@nhs.net"]));
    assert!(e.contains("no RA account"), "{e}");

    let audit = vsc_json(dir, &["admin", "audit", "--limit", "50", "--json"]);
    let actions: Vec<&str> = audit.as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
    for action in ["staff.operator_granted", "staff.operator_withdrawn", "staff.totp_reset"] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    assert_eq!(
        actions.iter().filter(|a| **a == "staff.operator_granted").count(),
        3,
        "bootstrap, op, pat: {actions:?}"
    );
}

#[test]
fn user_create_validates_domain_and_uniqueness() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    bootstrap(dir);
    let u = create_sean(dir);
    let id = u["id"].as_str().expect("id");
    assert_eq!(id.len(), 36, "{u}");
    assert_eq!(id.chars().filter(|&c| c == '-').count(), 4, "{u}");
    assert!(id.chars().all(|c| c == '-' || c.is_ascii_hexdigit()), "{u}");
    let cn = u["subject_cn"].as_str().expect("subject_cn");
    assert!(cn.len() == 12 && cn.chars().all(|c| c.is_ascii_digit()), "{u}");
    assert_eq!(u["display_name"], format!("SEÁN O'BRIEN ({cn})"));
    assert_eq!(u["email"], SEAN);
    assert_eq!(u["organisation"], "RX1");
    assert_eq!(u["cards"], serde_json::json!([]));

    let shown = vsc_json(dir, &["admin", "user", "show", "--email", SEAN, "--json"]);
    assert_eq!(shown["id"], u["id"]);

    let e = err(vsc(
        dir,
        &["admin", "user", "create", "--org", "RX1", "--forename", "A", "--surname", "B", "--email", "a@gmail.com"],
    ));
    assert!(e.contains("email"), "{e}");

    let e = err(vsc(
        dir,
        &[
            "admin",
            "user",
            "create",
            "--org",
            "RX1",
            "--forename",
            "A",
            "--surname",
            "B",
            "--email",
            "SEAN.O'Brien@NHS.net",
        ],
    ));
    assert!(e.contains("already exists"), "{e}");

    let e = err(vsc(
        dir,
        &["admin", "user", "create", "--org", "NOPE", "--forename", "A", "--surname", "B", "--email", "x@nhs.net"],
    ));
    assert!(e.contains("NOPE"), "{e}");
}

#[test]
fn card_issue_verify_and_revoke() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    bootstrap(dir);
    let user = create_sean(dir);

    let card = issue_v2(dir);
    let serial = card["serial"].as_str().expect("serial").to_string();
    assert!(serial.starts_with("150") && serial.len() == 16 && serial.chars().all(|c| c.is_ascii_digit()), "{card}");
    assert_eq!(card["state"], "issued");
    assert_eq!(card["type"], "v2");
    assert_eq!(card["roles"], serde_json::json!(["R8000", "R8003"]));
    assert_eq!(card["user_id"], user["id"]);
    let auth = card["certificates"]["authentication"].as_str().expect("authentication PEM");
    let sign = card["certificates"]["signing"].as_str().expect("signing PEM");
    for pem in [auth, sign] {
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    }

    // A V1 card has no signing certificate and a serial outside the V2 range.
    let v1 = vsc_json(dir, &["admin", "card", "issue", "--email", SEAN, "--type", "v1", "--role", "R8000", "--json"]);
    let v1_serial = v1["serial"].as_str().expect("serial");
    assert!(!v1_serial.starts_with("150") && v1_serial.len() == 16, "{v1}");
    assert!(v1["certificates"]["authentication"].is_string(), "{v1}");
    assert!(v1["certificates"].get("signing").is_none_or(Value::is_null), "{v1}");

    // The CA chain from the running server verifies both certificates.
    let server = Server::start_in(dir, "serve.log");
    let ca = get_ok(server.port, "/api/v1/pki/ca.pem");
    server.terminate();
    assert_eq!(ca.matches("-----BEGIN CERTIFICATE-----").count(), 2, "{ca}");
    std::fs::write(dir.join("ca.pem"), &ca).unwrap();
    std::fs::write(dir.join("auth.pem"), auth).unwrap();
    std::fs::write(dir.join("sign.pem"), sign).unwrap();
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(["verify", "-CAfile", "ca.pem", "auth.pem", "sign.pem"])
        .output()
        .expect("run openssl");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "openssl verify: {stdout} {}", text(&out.stderr));
    assert!(stdout.contains("auth.pem: OK") && stdout.contains("sign.pem: OK"), "{stdout}");

    // Unknown role: named in the error, no card created.
    let before = card_count(dir, SEAN);
    assert_eq!(before, 2);
    let e = err(vsc(dir, &["admin", "card", "issue", "--email", SEAN, "--type", "v2", "--role", "R9999"]));
    assert!(e.contains("R9999"), "{e}");
    assert_eq!(card_count(dir, SEAN), before);
    let e = err(vsc(dir, &["admin", "card", "issue", "--email", SEAN, "--type", "v3", "--role", "R8000"]));
    assert!(e.contains("type"), "{e}");

    // Revoke once; a second revocation fails and leaves the card revoked.
    let r = vsc_json(dir, &["admin", "card", "revoke", &serial, "--reason", "left", "--json"]);
    assert_eq!(r["state"], "revoked", "{r}");
    assert_eq!(r["serial"], serial.as_str());
    assert!(r["revoked_at"].is_string(), "{r}");
    assert_eq!(r["revocation_reason"], "left", "{r}");
    err(vsc(dir, &["admin", "card", "revoke", &serial, "--reason", "left", "--json"]));
    let shown = vsc_json(dir, &["admin", "card", "show", &serial, "--json"]);
    assert_eq!(shown["state"], "revoked", "{shown}");
    err(vsc(dir, &["admin", "card", "show", "1500000000000000"]));

    let audit = vsc_json(dir, &["admin", "audit", "--limit", "100", "--json"]);
    let actions: Vec<&str> = audit.as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
    assert!(actions.iter().any(|a| a.contains("revoke")), "{actions:?}");
}

#[test]
fn issued_cards_invite_through_the_local_outbox() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    bootstrap(dir);
    create_sean(dir);
    let card = issue_v2(dir);
    let serial = card["serial"].as_str().unwrap();

    // One JSON object per line, oldest first, with the documented fields.
    let out = ok(vsc(dir, &["admin", "outbox", "--json"]));
    let lines: Vec<Value> = out.lines().map(json).collect();
    assert_eq!(lines.len(), 1, "{out}");
    let m = &lines[0];
    assert_eq!(m["channel"], "email");
    assert_eq!(m["to"], SEAN);
    // Without SMTP settings of its own the command leaves the message to the running server (which
    // sends it, or keeps it in the local outbox): it must not decide for a server that has SMTP.
    assert_eq!(m["status"], "pending", "{m}");
    assert!(m["subject"].as_str().unwrap().contains("virtual smartcard"), "{m}");
    let body = m["body"].as_str().unwrap();
    assert!(body.contains("/self-service/enrol/vse_") && body.contains(serial), "{body}");
    assert!(m["created_at"].as_str().unwrap().ends_with('Z'), "{m}");

    // A resend adds a second invitation with a different link; `--to` filters.
    ok(vsc(dir, &["admin", "card", "resend", serial]));
    let out = ok(vsc(dir, &["admin", "outbox", "--json", "--to", SEAN]));
    let bodies: Vec<String> = out.lines().map(|l| json(l)["body"].as_str().unwrap().to_string()).collect();
    assert_eq!(bodies.len(), 2);
    assert_ne!(bodies[0], bodies[1]);
    assert!(ok(vsc(dir, &["admin", "outbox", "--json", "--to", "nobody@nhs.net"])).trim().is_empty());
    // Nobody is due a reminder yet (the invitation was just sent).
    assert_eq!(vsc_json(dir, &["admin", "remind", "--json"])["reminders_sent"], 0);
    let text = ok(vsc(dir, &["admin", "outbox"]));
    assert!(text.contains("Subject: ") && text.contains("/self-service/enrol/"), "{text}");
}

#[test]
fn card_unlock_needs_an_enrolled_card() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    bootstrap(dir);
    create_sean(dir);
    let card = issue_v2(dir);
    let e = err(vsc(dir, &["admin", "card", "unlock", card["serial"].as_str().unwrap()]));
    assert!(e.contains("not active or locked"), "{e}");
    err(vsc(dir, &["admin", "card", "unlock", "1500000000000000"]));
}

#[test]
fn every_command_answers_help() {
    let tmp = TempDir::new().unwrap();
    let commands: &[&[&str]] = &[
        &[],
        &["serve"],
        &["admin"],
        &["admin", "bootstrap"],
        &["admin", "token"],
        &["admin", "token", "create"],
        &["admin", "user"],
        &["admin", "user", "create"],
        &["admin", "user", "show"],
        &["admin", "card"],
        &["admin", "card", "issue"],
        &["admin", "card", "show"],
        &["admin", "card", "revoke"],
        &["admin", "card", "resend"],
        &["admin", "card", "unlock"],
        &["admin", "device"],
        &["admin", "device", "pin-reset"],
        &["admin", "outbox"],
        &["admin", "remind"],
        &["admin", "org"],
        &["admin", "org", "list"],
        &["admin", "org", "policy"],
        &["admin", "app"],
        &["admin", "app", "create"],
        &["admin", "audit"],
        &["admin", "staff"],
        &["admin", "staff", "invite"],
        &["admin", "staff", "operator"],
        &["admin", "staff", "reset-totp"],
        &["bench"],
        &["bench", "issuance"],
        &["bench", "login"],
        &["authenticator"],
        &["authenticator", "register"],
        &["authenticator", "list"],
        &["authenticator", "code"],
        &["authenticator", "wait"],
        &["authenticator", "scan"],
        &["authenticator", "reset-passcode"],
        &["authenticator", "pin"],
        &["authenticator", "pin", "set"],
        &["authenticator", "pin", "reset"],
        &["card"],
        &["card", "login"],
        &["card", "status"],
        &["card", "logout"],
        &["card", "ticket"],
        &["config"],
        &["config", "example"],
        &["config", "check"],
    ];
    for args in commands {
        let out = run(command(tmp.path()).args(*args).arg("--help"));
        assert!(out.status.success(), "vsc {} --help: {}", args.join(" "), text(&out.stderr));
        let stdout = text(&out.stdout);
        assert!(stdout.contains("Usage:"), "vsc {} --help: {stdout}", args.join(" "));
    }
    // --help must not touch the data dir.
    assert!(!tmp.path().join("vsc-data").exists());
    let version = ok(run(command(tmp.path()).arg("--version")));
    assert!(version.starts_with("vsc "), "{version}");
}

#[test]
fn usage_errors_are_one_line_with_exit_code_2() {
    let tmp = TempDir::new().unwrap();
    for (args, says) in [
        (&["admin", "card", "issue", "--email", "a@b.c"][..], "--type"),
        (&["admin", "user", "show", "--nope"][..], "--nope"),
        (&["bench", "sign", "-n", "many"][..], "many"),
    ] {
        let out = run(command(tmp.path()).args(args));
        assert_eq!(out.status.code(), Some(2), "vsc {}", args.join(" "));
        let e = err(out);
        assert!(e.contains(says) && e.ends_with("see --help"), "vsc {}: {e}", args.join(" "));
    }
    assert!(!tmp.path().join("vsc-data").exists(), "a usage error touches no data dir");
}

#[test]
fn config_example_passes_config_check() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    let example = ok(run(command(dir).args(["config", "example"])));
    std::fs::write(dir.join("vsc.toml"), &example).unwrap();
    let out = ok(run(command(dir).args(["config", "check", "vsc.toml"])));
    assert!(out.contains("is valid"), "{out}");
    let v = json(&ok(run(command(dir).args(["config", "check", "vsc.toml", "--json"]))));
    assert_eq!((v["valid"].as_bool(), v["file"].as_str()), (Some(true), Some("vsc.toml")), "{v}");
    assert!(v["listen"].is_string() && v["data_dir"].is_string(), "{v}");
    std::fs::write(dir.join("bad.toml"), "listen = \"nope\"\n").unwrap();
    let e = err(run(command(dir).args(["config", "check", "bad.toml"])));
    assert!(e.contains("listen"), "{e}");
    err(run(command(dir).args(["config", "check", "missing.toml"])));
}

#[test]
fn serve_answers_health_and_openapi_stops_on_sigterm_and_keeps_its_ca() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    let server = Server::start_in(dir, "serve1.log");
    assert!(json(&get_ok(server.port, "/healthz")).is_object());
    assert_eq!(json(&get_ok(server.port, "/readyz"))["status"], "ready");
    let doc = json(&get_ok(server.port, "/api/openapi.json"));
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "{}", doc["openapi"]);
    let paths = doc["paths"].as_object().expect("paths");
    for p in ["/api/v1/users/{id}/cards", "/api/v1/cards/{serial}", "/api/v1/pki/ca.pem", "/healthz"] {
        assert!(paths.contains_key(p), "missing {p}: {:?}", paths.keys().collect::<Vec<_>>());
    }
    let (status, _) = http_get(server.port, "/no/such/path").unwrap();
    assert_eq!(status, 404);
    let ca1 = get_ok(server.port, "/api/v1/pki/ca.pem");
    server.terminate();
    assert!(data_dir(dir).join("vsc.db").is_file());

    // A second start on the same data dir reuses the CA.
    let server = Server::start_in(dir, "serve2.log");
    let ca2 = get_ok(server.port, "/api/v1/pki/ca.pem");
    server.terminate();
    assert!(ca1.contains("-----BEGIN CERTIFICATE-----"));
    assert_eq!(ca1, ca2, "the CA changed across a restart");
}

#[test]
fn serve_honours_environment_variables() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    let port = free_port();
    let env_data = dir.join("from-env");
    let mut cmd = command(dir);
    cmd.arg("serve").env("VSC_LISTEN", format!("127.0.0.1:{port}")).env("VSC_DATA_DIR", &env_data);
    let server = Server::start(cmd, port, dir.join("serve.log"));
    assert_eq!(json(&get_ok(port, "/readyz"))["status"], "ready");
    server.terminate();
    assert!(env_data.join("vsc.db").is_file(), "VSC_DATA_DIR not used");
    assert!(env_data.join("kek").is_file());
    assert!(!dir.join("vsc-data").exists(), "the default data dir was created");
}

#[test]
fn a_different_key_encryption_key_is_refused() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    bootstrap(dir);
    let other = dir.join("other.kek");
    let with_kek = |path: &Path| {
        err(run(command(dir)
            .env("VSC_KEK_FILE", path)
            .arg("--data-dir")
            .arg(data_dir(dir))
            .args(["admin", "org", "list"])))
    };
    // A missing key file on an initialised database is refused, and no new key is made.
    let e = with_kek(&other);
    assert!(e.contains("does not exist") && e.contains("already initialised"), "{e}");
    assert!(!other.exists(), "a new key file was created");
    // Another key is refused, naming the mismatch.
    std::fs::write(&other, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n").unwrap();
    let e = with_kek(&other);
    assert!(e.contains("does not match"), "{e}");
    // The right key still works afterwards.
    let orgs = vsc_json(dir, &["admin", "org", "list", "--json"]);
    assert_eq!(orgs.as_array().map(Vec::len), Some(1), "{orgs}");
}

#[test]
fn bench_issuance_prints_one_json_object() {
    let tmp = TempDir::new().unwrap();
    let out = ok(run(command(tmp.path()).args(["bench", "issuance", "-n", "5", "--json"])));
    assert_eq!(out.lines().count(), 1, "{out}");
    let v = json(&out);
    for key in ["cards_per_s", "p50_ms", "p99_ms", "keygen_per_s", "ratio"] {
        let x = v[key].as_f64().unwrap_or_else(|| panic!("{key} is not a number: {v}"));
        assert!(x > 0.0 && x.is_finite(), "{key} = {x}");
    }
    assert_eq!(v["cards"], 5);
    assert_eq!(v["backend"], "sqlite");
    let e = err(run(command(tmp.path()).args(["bench", "issuance", "-n", "0"])));
    assert!(e.contains("--cards"), "{e}");
}

#[test]
fn bench_sign_prints_one_json_object_per_pass() {
    let tmp = TempDir::new().unwrap();
    let args = ["bench", "sign", "-n", "24", "--batch", "8", "--concurrency", "2", "--json"];
    let out = ok(run(command(tmp.path()).args(args)));
    let passes: Vec<serde_json::Value> = out.lines().map(json).collect();
    assert_eq!(passes.len(), 2, "{out}");
    for (v, (mode, per_request)) in passes.iter().zip([("single", 1), ("batch", 8)]) {
        assert_eq!((v["mode"].as_str(), v["digests_per_request"].as_u64()), (Some(mode), Some(per_request)), "{v}");
        assert_eq!(v["signatures"], 24, "{v}");
        for key in ["signatures_per_s", "raw_per_s", "ratio"] {
            let x = v[key].as_f64().unwrap_or_else(|| panic!("{key} is not a number: {v}"));
            assert!(x > 0.0 && x.is_finite(), "{key} = {x}");
        }
    }
    let e = err(run(command(tmp.path()).args(["bench", "sign", "--batch", "1"])));
    assert!(e.contains("--batch"), "{e}");
}

#[test]
fn admin_commands_on_postgres() {
    let Some(base) = vsc_testkit::postgres_url() else {
        eprintln!("SKIPPED: admin_commands_on_postgres needs DATABASE_URL");
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let url = rt.block_on(vsc_testkit::fresh_postgres_database(&base));

    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    let pg = |args: &[&str]| {
        let out = run(command(dir).env("DATABASE_URL", &url).arg("--data-dir").arg(data_dir(dir)).args(args));
        json(&ok(out))
    };
    let boot = pg(&bootstrap_args("RX1", true));
    assert!(boot["token"].as_str().unwrap().starts_with("vsc_"), "{boot}");
    let user = pg(CREATE_SEAN);
    assert!(user["display_name"].as_str().unwrap().starts_with("SEÁN O'BRIEN ("), "{user}");
    let card = pg(&[
        "admin", "card", "issue", "--email", SEAN, "--type", "v2", "--role", "R8000", "--role", "R8003", "--json",
    ]);
    let serial = card["serial"].as_str().unwrap();
    assert!(serial.starts_with("150") && serial.len() == 16, "{card}");
    assert_eq!(card["state"], "issued");
    let shown = pg(&["admin", "user", "show", "--email", SEAN, "--json"]);
    assert_eq!(shown["cards"].as_array().map(Vec::len), Some(1), "{shown}");
    // The database is PostgreSQL: the data dir holds the key file but no SQLite database.
    assert!(data_dir(dir).join("kek").is_file());
    assert!(!data_dir(dir).join("vsc.db").exists());
    // Without DATABASE_URL the same data dir is a different (empty SQLite) database.
    err(vsc(dir, &["admin", "user", "show", "--email", SEAN]));

    // The bench makes (and drops) its own scratch database on the server, so it can run again.
    for _ in 0..2 {
        let out = ok(run(command(dir).args(["bench", "issuance", "-n", "2", "--json", "--database-url", &base])));
        assert_eq!(json(&out)["backend"], "postgres", "{out}");
    }
    rt.block_on(vsc_store::scratch::drop(&base, &url)).unwrap();
}
