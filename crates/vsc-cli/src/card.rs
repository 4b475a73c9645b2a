//! `vsc card …`: log in to the holder's virtual smartcard (passcode, then push with number
//! matching, a TOTP code, or a QR scan on the authenticator), keep the card session in a private
//! state directory, and use it: status, tickets for relying apps, logout.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use vsc_client::{Client, ClientError};
use vsc_proto::{CardLoginRequest, CardSessionView, ErrorCode, LoginRole, LoginStateView};

use crate::authenticator::{ask, read_stdin_line, rfc3339, state_dir, write_private};
use crate::card_sign;

/// `vsc card` options and subcommand.
#[derive(Debug, Args)]
pub struct CardArgs {
    /// Directory holding the card session [default: $HOME/.vsc/card].
    #[arg(long, global = true, env = "VSC_CARD_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: CardSessionCommand,
}

/// What the card client does.
#[derive(Debug, Subcommand)]
pub enum CardSessionCommand {
    /// Log in to your card: passcode, then approval on your authenticator; opens a card session.
    Login {
        /// The vsc server, e.g. https://vsc.example.
        #[arg(long, value_name = "URL")]
        server: String,
        /// Your email.
        #[arg(long, value_name = "E")]
        email: String,
        /// Read the passcode from the first line of standard input (and, with `--method code`, the
        /// code from the second).
        #[arg(long)]
        passcode_stdin: bool,
        /// push (approve on the authenticator), code (type its 6-digit code) or qr (scan with it).
        #[arg(long, default_value = "push", value_parser = ["push", "code", "qr"])]
        method: String,
        /// The role to act in, when the card has several.
        #[arg(long, value_name = "R")]
        role: Option<String>,
        /// How this client is shown on the authenticator [default: vsc VERSION on HOSTNAME].
        #[arg(long, value_name = "NAME")]
        client: Option<String>,
    },
    /// Show the open card session.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// End the card session.
    Logout,
    /// Print a single-use ticket for a relying app (valid 2 minutes).
    Ticket {
        /// The relying app's name.
        #[arg(long, value_name = "NAME")]
        app: String,
        /// Print JSON (`{ticket, expires_at}`).
        #[arg(long)]
        json: bool,
    },
    /// Sign FILE with the card's signing key (V2 cards): a CAdES-BES signature written to
    /// FILE.p7s. Detached by default and made from the file's SHA-256, so the file never leaves
    /// this machine; approve the signature on your authenticator when asked.
    Sign {
        /// The file to sign.
        file: PathBuf,
        /// Where to write the signature (DER CMS) [default: FILE.p7s].
        #[arg(long, value_name = "FILE.p7s")]
        out: Option<PathBuf>,
        /// Put the content inside the signature (sends the file to the server; at most 640 KiB).
        #[arg(long)]
        attached: bool,
        /// Document name shown on the authenticator [default: FILE's file name].
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// Print JSON (`{file, signature, digest, certificate_serial, signing_time}`).
        #[arg(long)]
        json: bool,
    },
    /// Verify a CAdES/CMS signature of FILE against the service's CA chain, and check the signer's
    /// certificate against the service's CRL. Needs no card session; exits non-zero unless the
    /// signature is valid and the certificate not revoked.
    Verify {
        /// The signed file.
        file: PathBuf,
        /// The signature (DER CMS, e.g. FILE.p7s).
        signature: PathBuf,
        /// The vsc server whose CA and CRL to use [default: the card session's server].
        #[arg(long, value_name = "URL")]
        server: Option<String>,
        /// Print JSON (`{valid, revoked, signer, certificate_serial, signing_time, reason?}`).
        #[arg(long)]
        json: bool,
    },
    /// List the open session's card certificates and the CA chain.
    Certs {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Also write authentication.pem, signing.pem (V2 cards) and ca.pem (the chain) to DIR.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
}

/// The session file inside the state directory.
const SESSION_FILE: &str = "session.json";

/// A card session as kept between runs (file mode 0600).
#[derive(Serialize, Deserialize)]
pub(crate) struct StoredSession {
    /// Server base URL.
    pub(crate) server: String,
    /// Session token (bearer).
    session: String,
    /// Card serial.
    card: String,
    /// Selected role.
    role: String,
    /// Absolute end of the session.
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
}

impl StoredSession {
    /// The stored session of `dir`, or an error telling to log in.
    pub(crate) fn load(dir: &Path) -> anyhow::Result<StoredSession> {
        let path = dir.join(SESSION_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!("no card session in {}: log in with `vsc card login`", dir.display())
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        serde_json::from_str(&text).with_context(|| format!("{} is not a card session file", path.display()))
    }

    /// A client with the session as bearer token.
    pub(crate) fn client(&self) -> Client {
        Client::new(&self.server).with_token(&self.session)
    }
}

/// Run a card command.
pub async fn run(args: CardArgs) -> anyhow::Result<()> {
    let dir = state_dir(args.state_dir, "card")?;
    match args.command {
        CardSessionCommand::Login { server, email, passcode_stdin, method, role, client } => {
            let opts = LoginOptions { server, email, passcode_stdin, method, role, client };
            login(&dir, opts).await
        }
        CardSessionCommand::Status { json } => {
            let stored = StoredSession::load(&dir)?;
            let status = stored.client().card_session().await.map_err(session_error)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                println!("session open: card {} ({}), role {}", status.card, status.card_type, status.role);
                println!("  holder   {} <{}>", status.holder, status.email);
                println!("  approved by {}", status.method);
                println!(
                    "  until    {} (ends sooner if unused until {})",
                    rfc3339(status.expires_at),
                    rfc3339(status.idle_expires_at)
                );
            }
            Ok(())
        }
        CardSessionCommand::Logout => {
            let stored = StoredSession::load(&dir)?;
            let ended_before = match stored.client().card_logout().await {
                Ok(()) => false,
                Err(e) if e.code() == Some(ErrorCode::Unauthenticated) => true,
                Err(e) => return Err(anyhow::Error::new(e).context("logout failed; the session is kept")),
            };
            let path = dir.join(SESSION_FILE);
            std::fs::remove_file(&path).with_context(|| format!("cannot delete {}", path.display()))?;
            println!("{}", if ended_before { "the session had already ended" } else { "logged out" });
            Ok(())
        }
        CardSessionCommand::Ticket { app, json } => {
            let stored = StoredSession::load(&dir)?;
            let ticket = stored.client().card_ticket(&app).await.map_err(|e| match e.code() {
                Some(ErrorCode::Unauthenticated) => session_error(e),
                Some(ErrorCode::NotFound) => anyhow!("no relying app is registered as {app:?}"),
                _ => anyhow::Error::new(e).context("no ticket"),
            })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&ticket)?);
            } else {
                println!("{}", ticket.ticket);
            }
            Ok(())
        }
        CardSessionCommand::Sign { file, out, attached, name, json } => {
            card_sign::sign(&dir, card_sign::SignOptions { file, out, attached, name, json }).await
        }
        CardSessionCommand::Verify { file, signature, server, json } => {
            card_sign::verify(&dir, &file, &signature, server, json).await
        }
        CardSessionCommand::Certs { json, out_dir } => card_sign::certs(&dir, json, out_dir.as_deref()).await,
    }
}

struct LoginOptions {
    server: String,
    email: String,
    passcode_stdin: bool,
    method: String,
    role: Option<String>,
    client: Option<String>,
}

async fn login(dir: &Path, o: LoginOptions) -> anyhow::Result<()> {
    let passcode = if o.passcode_stdin {
        read_stdin_line()?.ok_or_else(|| anyhow!("--passcode-stdin: standard input is empty"))?
    } else {
        rpassword::prompt_password("VSC passcode (empty for a push-only login): ")
            .map_err(|e| anyhow!("cannot ask for the passcode on a terminal ({e}): use --passcode-stdin"))?
    };
    let api = Client::new(&o.server);
    let req = CardLoginRequest {
        email: o.email.clone(),
        // An empty passcode asks for a push-only login (allowed only by the organisation's policy).
        passcode: Some(passcode).filter(|p| !p.is_empty()),
        method: o.method.clone(),
        client: Some(o.client.clone().unwrap_or_else(default_client_name)),
    };
    let started = api.card_login(&req).await.map_err(|e| match e.code() {
        Some(ErrorCode::SignInFailed) => {
            anyhow!("login refused: wrong email or passcode, or the card is locked or not active")
        }
        Some(ErrorCode::RateLimited) => anyhow!("login refused: too many unanswered login requests; try again later"),
        _ => anyhow::Error::new(e).context("login failed"),
    })?;

    let mut state = match started.method.as_str() {
        "code" => {
            let interactive = !o.passcode_stdin && std::io::stdin().is_terminal();
            enter_code(&api, &started.login, o.passcode_stdin, interactive).await?
        }
        method => {
            let mut out = std::io::stdout().lock();
            if method == "qr" {
                writeln!(out, "Scan this with your authenticator (`vsc authenticator scan URI`):")?;
                writeln!(out, "uri: {}", started.qr_uri.as_deref().unwrap_or("-"))?;
            } else {
                writeln!(out, "Approve on your phone…")?;
                if let Some(n) = started.number {
                    writeln!(out, "number: {n:02}")?;
                }
            }
            out.flush()?;
            drop(out);
            pending_state(&api, &started.login).await?
        }
    };
    state = wait_while_pending(&api, &started.login, state).await?;
    match state.state.as_str() {
        "approved" => {}
        "denied" => bail!("the login was denied"),
        "expired" => bail!("the login expired before it was approved"),
        other => bail!("the login ended in an unexpected state: {other}"),
    }

    let role = pick_role(&state, o.role.as_deref())?;
    let session: CardSessionView = api
        .open_card_session(&started.login, role.as_deref())
        .await
        .map_err(|e| anyhow::Error::new(e).context("cannot open the card session"))?;
    let stored = StoredSession {
        server: api.base().to_string(),
        session: session.session.clone(),
        card: session.card.clone(),
        role: session.role.clone(),
        expires_at: session.expires_at,
    };
    write_private(dir, SESSION_FILE, &serde_json::to_vec_pretty(&stored)?)?;
    println!("session open: card {}, role {}, until {}", session.card, session.role, rfc3339(session.expires_at));
    Ok(())
}

/// The first state of a push or QR login (no wait: the number must be on screen first).
async fn pending_state(api: &Client, login: &str) -> anyhow::Result<LoginStateView> {
    api.login_state(login, 0).await.map_err(|e| anyhow::Error::new(e).context("cannot follow the login"))
}

/// Long-poll the login until it is no longer pending.
async fn wait_while_pending(api: &Client, login: &str, mut state: LoginStateView) -> anyhow::Result<LoginStateView> {
    // The server expires pending logins; this bound only stops a misbehaving server looping us.
    let give_up = tokio::time::Instant::now() + std::time::Duration::from_secs(15 * 60);
    while state.state == "pending" {
        let asked = tokio::time::Instant::now();
        if asked >= give_up {
            bail!("the login is still pending after 15 minutes");
        }
        state =
            api.login_state(login, 30).await.map_err(|e| anyhow::Error::new(e).context("cannot follow the login"))?;
        if state.state == "pending" && asked.elapsed() < std::time::Duration::from_secs(1) {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    }
    Ok(state)
}

/// Read the authenticator's code (next stdin line, or asked on the terminal) and send it; on a
/// terminal a wrong code may be typed again.
async fn enter_code(api: &Client, login: &str, from_stdin: bool, interactive: bool) -> anyhow::Result<LoginStateView> {
    if !from_stdin && !interactive {
        bail!("standard input is not a terminal: use --passcode-stdin with the code on the second line");
    }
    loop {
        let line = if from_stdin {
            read_stdin_line()?
        } else {
            ask("6-digit code from your authenticator (`vsc authenticator code`): ")?
        };
        let code = line.map(|l| l.trim().to_string()).filter(|l| !l.is_empty());
        let Some(code) = code else { bail!("no code given") };
        match api.login_code(login, &code).await {
            Ok(state) => return Ok(state),
            Err(e) if interactive && is_wrong_code(&e) => eprintln!("that code was not accepted; try the current one"),
            Err(e) if is_wrong_code(&e) => bail!("the code was not accepted ({e})"),
            Err(e) => return Err(anyhow::Error::new(e).context("cannot send the code")),
        }
    }
}

fn is_wrong_code(e: &ClientError) -> bool {
    matches!(e.code(), Some(ErrorCode::InvalidInput | ErrorCode::SignInFailed | ErrorCode::Unauthenticated))
}

/// The role to open the session with: `--role`, the only role, or one picked on the terminal.
fn pick_role(state: &LoginStateView, flag: Option<&str>) -> anyhow::Result<Option<String>> {
    let roles: &[LoginRole] = state.roles.as_deref().unwrap_or_default();
    let card = state.card.as_deref().unwrap_or("?");
    let listed = || roles.iter().map(|r| format!("{} ({})", r.code, r.name)).collect::<Vec<_>>().join(", ");
    if let Some(role) = flag {
        if !roles.is_empty() && !roles.iter().any(|r| r.code.eq_ignore_ascii_case(role)) {
            bail!("card {card} has no role {role}: its roles are {}", listed());
        }
        return Ok(Some(role.to_string()));
    }
    match roles {
        [] => Ok(None),
        [only] => Ok(Some(only.code.clone())),
        several => {
            if !std::io::stdin().is_terminal() {
                bail!("card {card} has several roles: {}; choose one with --role", listed());
            }
            eprintln!("Card {card} has several roles:");
            for (i, r) in several.iter().enumerate() {
                eprintln!("  {}) {} {}", i + 1, r.code, r.name);
            }
            loop {
                let Some(line) = ask(&format!("Role [1-{}]: ", several.len()))? else { bail!("no role chosen") };
                let line = line.trim();
                let by_index = line.parse::<usize>().ok().and_then(|i| i.checked_sub(1)).and_then(|i| several.get(i));
                let by_code = several.iter().find(|r| r.code.eq_ignore_ascii_case(line));
                if let Some(r) = by_index.or(by_code) {
                    return Ok(Some(r.code.clone()));
                }
                eprintln!("{line:?} is not one of the roles");
            }
        }
    }
}

/// A client error on a card-session call, saying to log in again when the session has ended.
pub(crate) fn session_error(e: ClientError) -> anyhow::Error {
    match e.code() {
        Some(ErrorCode::Unauthenticated) => anyhow!("the card session has ended: log in again with `vsc card login`"),
        _ => anyhow::Error::new(e).context("cannot reach the card session"),
    }
}

/// `vsc VERSION on HOSTNAME`: how the login is shown on the authenticator by default.
fn default_client_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    let version = env!("CARGO_PKG_VERSION");
    if host.is_empty() { format!("vsc {version}") } else { format!("vsc {version} on {host}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approved(roles: &[&str]) -> LoginStateView {
        LoginStateView {
            state: "approved".into(),
            card: Some("1500000000000001".into()),
            roles: Some(roles.iter().map(|r| LoginRole { code: (*r).into(), name: format!("role {r}") }).collect()),
            approved_by: Some("push".into()),
            expires_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn roles_come_from_the_flag_or_the_only_role() {
        assert_eq!(pick_role(&approved(&["R8000"]), None).unwrap().as_deref(), Some("R8000"));
        assert_eq!(pick_role(&approved(&["R8000", "R8003"]), Some("R8003")).unwrap().as_deref(), Some("R8003"));
        let e = pick_role(&approved(&["R8000", "R8003"]), Some("R9999")).unwrap_err().to_string();
        assert!(e.contains("R9999") && e.contains("R8000"), "{e}");
        let none = LoginStateView { roles: None, ..approved(&[]) };
        assert_eq!(pick_role(&none, None).unwrap(), None);
    }
}
