//! `vsc authenticator …`: this computer as the holder's authenticator device. It registers from
//! the portal's `vsc-auth://register` URI with a fresh P-256 key, keeps its key and TOTP secret in
//! a private state directory, shows codes, and answers login challenges with signed Yes/No
//! (protocol: `docs/authenticator.md`).

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use vsc_client::device::{MAX_WAIT, system_time};
use vsc_client::{Client, ClientError, Decision, DeviceClient};
use vsc_crypto::device::DeviceKey;
use vsc_crypto::device_token::{b64, register_message, unb64};
use vsc_crypto::totp::{STEP_SECONDS, TotpSecret};
use vsc_proto::{AuthenticatorView, ChallengeView, ErrorCode, RegisterDeviceRequest};

/// `vsc authenticator` options and subcommand.
#[derive(Debug, Args)]
pub struct AuthenticatorArgs {
    /// Directory holding this authenticator's key and TOTP secret [default: $HOME/.vsc/authenticator].
    #[arg(long, global = true, env = "VSC_AUTHENTICATOR_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: AuthenticatorCommand,
}

/// What the authenticator does.
#[derive(Debug, Subcommand)]
pub enum AuthenticatorCommand {
    /// Register this computer as an authenticator from the portal's `vsc-auth://register?…` URI.
    Register {
        /// The registration URI shown (as a QR code and as text) in the Self-Service Portal.
        uri: String,
        /// A local name for this authenticator.
        #[arg(long, value_name = "N")]
        name: Option<String>,
        /// Read the VSC passcode from the first line of standard input instead of the terminal.
        #[arg(long)]
        passcode_stdin: bool,
        /// Read this authenticator's new PIN (4 to 8 digits) from standard input: the line after
        /// the passcode with --passcode-stdin, else the first (asked twice on the terminal
        /// otherwise, after the passcode).
        #[arg(long)]
        pin_stdin: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show this device and the holder's cards with their expiry dates.
    List {
        /// Print the server's JSON view.
        #[arg(long)]
        json: bool,
    },
    /// Print the current 6-digit code (for logins where push cannot arrive) and its seconds left.
    Code {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Wait for a login request and answer it.
    Wait {
        /// Approve without asking (needs --number when the login shows a number).
        #[arg(long, conflicts_with = "deny")]
        approve: bool,
        /// The number shown on the login screen (number matching).
        #[arg(long, requires = "approve", value_name = "NN")]
        number: Option<u8>,
        /// Deny without asking.
        #[arg(long)]
        deny: bool,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 120, value_name = "S")]
        timeout: u64,
        /// Read this authenticator's PIN from the first line of standard input (asked on the
        /// terminal otherwise, when the device has a PIN).
        #[arg(long)]
        pin_stdin: bool,
    },
    /// Answer the login behind a scanned `vsc-auth://login?…` URI.
    Scan {
        /// The login URI (the QR code a `--method qr` login shows).
        uri: String,
        /// Approve without asking.
        #[arg(long, conflicts_with = "deny")]
        approve: bool,
        /// Deny without asking.
        #[arg(long)]
        deny: bool,
        /// Read this authenticator's PIN from the first line of standard input (asked on the
        /// terminal otherwise, when the device has a PIN).
        #[arg(long)]
        pin_stdin: bool,
    },
    /// Choose a new VSC passcode from this authenticator (a locked or forgotten passcode): the
    /// card is unlocked and every card session ends.
    ResetPasscode {
        /// Read the new passcode from the first line of standard input (asked twice on the
        /// terminal otherwise).
        #[arg(long)]
        new_passcode_stdin: bool,
        /// Read this authenticator's PIN from standard input (the line after the new passcode
        /// with --new-passcode-stdin).
        #[arg(long)]
        pin_stdin: bool,
    },
    /// This authenticator's own PIN: once set, approving and resetting ask for it.
    Pin {
        #[command(subcommand)]
        command: PinCommand,
    },
}

/// `vsc authenticator pin …`.
#[derive(Debug, Subcommand)]
pub enum PinCommand {
    /// Set the PIN (4 to 8 digits), or change it (the current PIN is asked first).
    Set {
        /// Read the PINs from standard input: the current PIN (only when one is set), then the
        /// new PIN, one line each (asked on the terminal otherwise, the new one twice).
        #[arg(long)]
        pin_stdin: bool,
    },
    /// Set a new PIN with the PIN-reset token your Registration Authority gave you (clears a
    /// locked PIN; the token works once).
    Reset {
        /// The PIN-reset token.
        #[arg(long, value_name = "T")]
        token: String,
        /// Read the new PIN from the first line of standard input (asked twice otherwise).
        #[arg(long)]
        pin_stdin: bool,
    },
}

/// The state file inside the state directory.
const STATE_FILE: &str = "device.json";

/// What the authenticator keeps between runs (file mode 0600, directory 0700).
#[derive(Serialize, Deserialize)]
struct DeviceState {
    /// Server base URL from the registration URI.
    server: String,
    /// Device id the server gave.
    device_id: String,
    /// The device key, PKCS#8 DER, base64url.
    key_pkcs8: String,
    /// TOTP secret, base32 without padding.
    totp_secret: String,
    /// The holder's display name.
    holder: String,
    /// The holder's email.
    email: String,
    /// Local name given at registration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
}

impl DeviceState {
    fn load(dir: &Path) -> anyhow::Result<DeviceState> {
        let path = dir.join(STATE_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!("no authenticator is registered in {}: run `vsc authenticator register URI` first", dir.display())
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        serde_json::from_str(&text).with_context(|| format!("{} is not an authenticator state file", path.display()))
    }

    fn client(&self) -> anyhow::Result<DeviceClient> {
        let der = unb64(&self.key_pkcs8).map_err(|_| anyhow!("the stored device key is not base64url"))?;
        let key = DeviceKey::from_pkcs8(&der).map_err(|e| anyhow!("the stored device key does not load: {e}"))?;
        Ok(DeviceClient::new(&self.server, &self.device_id, key))
    }
}

/// Run an authenticator command.
pub async fn run(args: AuthenticatorArgs) -> anyhow::Result<()> {
    let dir = state_dir(args.state_dir, "authenticator")?;
    match args.command {
        AuthenticatorCommand::Register { uri, name, passcode_stdin, pin_stdin, json } => {
            register(&dir, &uri, name, passcode_stdin, pin_stdin, json).await
        }
        command => {
            let state = DeviceState::load(&dir)?;
            match device_command(&state, command).await {
                // A device without the PIN the server requires: say how to set one, and offer it.
                Err(e) if e.downcast_ref::<PinRequired>().is_some() => Err(offer_pin(&state, e).await),
                other => other,
            }
        }
    }
}

/// The commands of a registered device.
async fn device_command(state: &DeviceState, command: AuthenticatorCommand) -> anyhow::Result<()> {
    match command {
        AuthenticatorCommand::Register { .. } => bail!("this authenticator is registered already"),
        AuthenticatorCommand::Code { json } => code(state, json),
        AuthenticatorCommand::Pin { command } => pin(state, command).await,
        AuthenticatorCommand::List { json } => list(state, json).await,
        AuthenticatorCommand::Wait { approve, number, deny, timeout, pin_stdin } => {
            let device = state.client()?;
            let pin = stdin_pin(pin_stdin)?;
            let challenge = wait_for_challenge(&device, timeout).await?;
            print_challenge(state, &challenge)?;
            let (decision, number) = decide(&challenge, choice(approve, deny), number, true)?;
            answer(&device, &challenge, decision, number, pin).await
        }
        AuthenticatorCommand::ResetPasscode { new_passcode_stdin, pin_stdin } => {
            reset_passcode(state, new_passcode_stdin, pin_stdin).await
        }
        AuthenticatorCommand::Scan { uri, approve, deny, pin_stdin } => {
            let params = parse_auth_uri(&uri, "login")?;
            let server = param(&params, "url")?;
            if server.trim_end_matches('/') != state.server.trim_end_matches('/') {
                bail!("this login is for {server}, but this authenticator is registered with {}", state.server);
            }
            let (id, nonce) = (param(&params, "c")?, param(&params, "n")?);
            let device = state.client()?;
            let pin = stdin_pin(pin_stdin)?;
            let challenge = device.challenge(id).await.map_err(|e| answer_error(e, "cannot fetch the login"))?;
            // The server leaves the nonce out of a QR challenge (only a device that scanned the
            // code knows it); when it does send one, it must be the scanned one.
            if !challenge.nonce.is_empty() && challenge.nonce != nonce {
                bail!("the scanned code does not match this login request (nonce differs); nothing was answered");
            }
            let challenge = ChallengeView { nonce: nonce.to_string(), ..challenge };
            print_challenge(state, &challenge)?;
            let (decision, number) = decide(&challenge, choice(approve, deny), None, false)?;
            answer(&device, &challenge, decision, number, pin).await
        }
    }
}

/// The server refused a device request because this authenticator has no PIN yet.
#[derive(Debug)]
struct PinRequired(String);

impl std::fmt::Display for PinRequired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: this authenticator has no PIN yet, and the server asks for one before it approves, \
             resets or shows anything; set it with `vsc authenticator pin set` (4 to 8 digits)",
            self.0
        )
    }
}

impl std::error::Error for PinRequired {}

/// After a `PinRequired` refusal: on a terminal, offer to set the PIN now (the command is then
/// run again by the user); the refusal otherwise.
async fn offer_pin(state: &DeviceState, refusal: anyhow::Error) -> anyhow::Error {
    if !std::io::stdin().is_terminal() {
        return refusal;
    }
    eprintln!("{refusal}");
    let yes = match ask("Set the PIN now? [y/N] ") {
        Ok(a) => a.is_some_and(|a| matches!(a.trim(), "y" | "Y" | "yes" | "Yes" | "YES")),
        Err(e) => return e,
    };
    if !yes {
        return anyhow!("nothing was done: set a PIN with `vsc authenticator pin set`, then run the command again");
    }
    match pin(state, PinCommand::Set { pin_stdin: false }).await {
        Ok(()) => anyhow!("the PIN is set: run the command again"),
        Err(e) => e,
    }
}

/// The new PIN for a registration: from standard input with `--pin-stdin`, asked twice on a
/// terminal otherwise; `None` without either (the server decides whether one is required).
fn registration_pin(pin_stdin: bool) -> anyhow::Result<Option<String>> {
    if pin_stdin {
        let pin = read_stdin_line()?.ok_or_else(|| anyhow!("--pin-stdin: standard input has no PIN line"))?;
        return Ok(Some(pin.trim().to_string()));
    }
    if !std::io::stdin().is_terminal() {
        return Ok(None);
    }
    let pin = ask_twice("New authenticator PIN (4 to 8 digits, asked before every approval)")?;
    Ok(Some(pin.trim().to_string()).filter(|p| !p.is_empty()))
}

async fn register(
    dir: &Path,
    uri: &str,
    name: Option<String>,
    passcode_stdin: bool,
    pin_stdin: bool,
    json: bool,
) -> anyhow::Result<()> {
    let params = parse_auth_uri(uri, "register")?;
    let server = param(&params, "url")?.trim_end_matches('/').to_string();
    let token = param(&params, "t")?;
    if !(server.starts_with("https://") || server.starts_with("http://")) {
        bail!("the registration URI names no http(s) server: {server:?}");
    }
    if dir.join(STATE_FILE).exists() {
        bail!(
            "{} already holds a registered authenticator: use another --state-dir (or delete the device in the portal and the file {STATE_FILE})",
            dir.display()
        );
    }
    // The token is single-use: make sure the key can be kept before spending it.
    ensure_private_dir(dir)?;
    let passcode = read_passcode(passcode_stdin)?;
    let pin = registration_pin(pin_stdin)?;

    let key = DeviceKey::generate().map_err(|e| anyhow!("cannot make a device key: {e}"))?;
    let proof = key.sign(&register_message(token)).map_err(|e| anyhow!("cannot sign the registration: {e}"))?;
    let req = RegisterDeviceRequest {
        token: token.to_string(),
        public_key: b64(&key.public_key()),
        proof: b64(&proof),
        passcode,
        pin,
        client_version: env!("CARGO_PKG_VERSION").to_string(),
        platform: std::env::consts::OS.to_string(),
        platform_version: platform_version(),
    };
    let registered = Client::new(&server).register_device(&req).await.map_err(|e| match e.code() {
        Some(ErrorCode::SignInFailed) => anyhow!("registration refused: wrong passcode (or the card is locked)"),
        Some(ErrorCode::LinkExpired | ErrorCode::LinkUsed) => {
            anyhow!("registration refused: the code has expired or was already used; add the device again")
        }
        Some(ErrorCode::Conflict) => anyhow!("registration refused: {e}"),
        Some(ErrorCode::InvalidInput) if e.field() == Some("pin") => {
            anyhow!("registration refused: {e} (with --passcode-stdin, give the PIN with --pin-stdin on the next line)")
        }
        _ => anyhow::Error::new(e).context("registration failed"),
    })?;
    let state = DeviceState {
        server,
        device_id: registered.device_id.clone(),
        key_pkcs8: b64(key.pkcs8()),
        totp_secret: registered.totp.secret.clone(),
        holder: registered.holder.clone(),
        email: registered.email.clone(),
        name,
    };
    write_private(dir, STATE_FILE, &serde_json::to_vec_pretty(&state)?)?;
    if json {
        let out = serde_json::json!({
            "device_id": registered.device_id,
            "holder": registered.holder,
            "email": registered.email,
            "state_dir": dir.display().to_string(),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("registered device {}", registered.device_id);
        println!("holder {} <{}>", registered.holder, registered.email);
    }
    Ok(())
}

async fn list(state: &DeviceState, json: bool) -> anyhow::Result<()> {
    let view: AuthenticatorView =
        state.client()?.me().await.map_err(|e| device_error(e, "cannot fetch this device from the server"))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&view)?);
        return Ok(());
    }
    let d = &view.device;
    let local = state.name.as_deref().map(|n| format!(" (here: {n})")).unwrap_or_default();
    println!("device {}  {}{local}", d.id, d.name);
    println!("  type {}  authenticator {}  state {}", d.device_type, d.authenticator_type, d.state);
    println!(
        "  client {}  platform {} {}",
        d.client_version.as_deref().unwrap_or("-"),
        d.platform.as_deref().unwrap_or("-"),
        d.platform_version.as_deref().unwrap_or("")
    );
    println!(
        "  registered {}  last used {}",
        d.registered_at.map(rfc3339).unwrap_or_else(|| "-".into()),
        d.last_used_at.map(rfc3339).unwrap_or_else(|| "-".into())
    );
    println!("holder {} <{}>", view.holder, view.email);
    if view.cards.is_empty() {
        println!("  no cards");
    }
    for c in &view.cards {
        println!(
            "  card {} {} {} roles {} expires {}",
            c.serial,
            c.card_type,
            c.state,
            c.roles.join(","),
            c.expires_at.date()
        );
    }
    Ok(())
}

fn code(state: &DeviceState, json: bool) -> anyhow::Result<()> {
    let secret = TotpSecret::from_bytes(
        &base32_decode(&state.totp_secret).ok_or_else(|| anyhow!("the stored TOTP secret is not base32"))?,
    );
    let now = system_time();
    let code = secret.code_at(now);
    let left = STEP_SECONDS - now.rem_euclid(STEP_SECONDS);
    if json {
        println!("{}", serde_json::json!({ "code": code, "seconds_left": left }));
    } else {
        println!("{code}  ({left} s left)");
    }
    Ok(())
}

/// Long-poll for the holder's first pending challenge until `timeout` seconds have passed.
async fn wait_for_challenge(device: &DeviceClient, timeout: u64) -> anyhow::Result<ChallengeView> {
    let started = tokio::time::Instant::now();
    let deadline = started + std::time::Duration::from_secs(timeout);
    loop {
        let poll_started = tokio::time::Instant::now();
        let remaining = deadline.saturating_duration_since(poll_started).as_secs();
        let wait = u32::try_from(remaining).unwrap_or(MAX_WAIT).min(MAX_WAIT);
        let list = device.challenges(wait).await.map_err(|e| device_error(e, "cannot fetch login requests"))?;
        // A challenge without its nonce (a QR login) can only be answered by scanning it.
        if let Some(first) = list.challenges.into_iter().find(|c| !c.nonce.is_empty()) {
            return Ok(first);
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            bail!("no login request arrived within {timeout} s");
        }
        // A server that answers at once (no long poll) is asked again at most once a second.
        if now.duration_since(poll_started) < std::time::Duration::from_secs(1) {
            tokio::time::sleep(std::time::Duration::from_secs(1).min(deadline - now)).await;
        }
    }
}

fn print_challenge(state: &DeviceState, c: &ChallengeView) -> anyhow::Result<()> {
    let purpose = match c.purpose.as_str() {
        "card" => "card login",
        "portal" => "Self-Service Portal sign-in",
        "signature" => "a signature with your card",
        other => other,
    };
    let card = c.card.as_deref().map(|s| format!(", card {s}")).unwrap_or_default();
    let mut out = std::io::stdout().lock();
    if c.purpose == "signature" {
        writeln!(out, "signature request {}", c.id)?;
        writeln!(out, "  sign    \"{}\"?", c.document.as_deref().unwrap_or("document"))?;
        writeln!(out, "  sha-256 {}", c.digest.as_deref().unwrap_or("?"))?;
    } else {
        writeln!(out, "login request {} ({})", c.id, c.method)?;
    }
    writeln!(out, "  who     {} <{}>: {purpose}{card}", state.holder, state.email)?;
    writeln!(out, "  client  {}", c.client)?;
    writeln!(out, "  ip      {}", c.ip)?;
    writeln!(out, "  time    {} (expires {})", rfc3339(c.created_at), rfc3339(c.expires_at))?;
    if let Some(choices) = &c.choices {
        writeln!(out, "  choices {}", numbers(choices))?;
    }
    out.flush()?;
    Ok(())
}

/// The decision flags: `Some(approve?)`, or `None` to ask on the terminal.
fn choice(approve: bool, deny: bool) -> Option<Decision> {
    match (approve, deny) {
        (true, _) => Some(Decision::Approve),
        (_, true) => Some(Decision::Deny),
        _ => None,
    }
}

/// The answer to send: from the flags, or asked on the terminal. `matching` says whether the
/// challenge's number choices apply (push); a scanned login answers without a number.
fn decide(
    c: &ChallengeView,
    flag: Option<Decision>,
    number: Option<u8>,
    matching: bool,
) -> anyhow::Result<(Decision, Option<u8>)> {
    let choices = c.choices.as_deref().filter(|ch| matching && !ch.is_empty());
    match (flag, choices) {
        (Some(Decision::Deny), _) => Ok((Decision::Deny, None)),
        (Some(Decision::Approve), None) => Ok((Decision::Approve, None)),
        (Some(Decision::Approve), Some(choices)) => {
            let Some(n) = number else {
                bail!(
                    "this request uses number matching: pass --number with the number shown on the requesting screen (one of {})",
                    numbers(choices)
                );
            };
            if !choices.contains(&n) {
                bail!("--number {n} is not one of this login's choices ({}); nothing was answered", numbers(choices));
            }
            Ok((Decision::Approve, Some(n)))
        }
        (None, choices) => {
            if !std::io::stdin().is_terminal() {
                bail!("standard input is not a terminal: answer with --approve or --deny");
            }
            let picked = match choices {
                Some(choices) => Some(ask_number(choices)?),
                None => None,
            };
            let yes = ask("Approve? [y/N] ")?.is_some_and(|a| matches!(a.trim(), "y" | "Y" | "yes" | "Yes" | "YES"));
            Ok(if yes { (Decision::Approve, picked) } else { (Decision::Deny, None) })
        }
    }
}

fn ask_number(choices: &[u8]) -> anyhow::Result<u8> {
    let prompt = format!("Which number is shown on your screen? ({}) ", numbers(choices));
    loop {
        let Some(line) = ask(&prompt)? else { bail!("no number given; nothing was answered") };
        match line.trim().parse::<u8>() {
            Ok(n) if choices.contains(&n) => return Ok(n),
            _ => eprintln!("{:?} is not one of {}", line.trim(), numbers(choices)),
        }
    }
}

async fn answer(
    device: &DeviceClient,
    c: &ChallengeView,
    decision: Decision,
    number: Option<u8>,
    pin: Option<String>,
) -> anyhow::Result<()> {
    // Approving needs the PIN once the device has one; denying never does.
    let pin = match (decision, pin) {
        (Decision::Approve, None) => device_pin(device).await?,
        (Decision::Approve, pin) => pin,
        (Decision::Deny, _) => None,
    };
    let outcome = device
        .answer_with_pin(&c.id, &c.nonce, decision, number, pin.as_deref())
        .await
        .map_err(|e| answer_error(e, "answer refused"))?;
    println!("state: {}", outcome.state);
    Ok(())
}

/// With `--pin-stdin`, the PIN from the next line of standard input.
fn stdin_pin(pin_stdin: bool) -> anyhow::Result<Option<String>> {
    if !pin_stdin {
        return Ok(None);
    }
    let pin = read_stdin_line()?.ok_or_else(|| anyhow!("--pin-stdin: standard input has no PIN line"))?;
    Ok(Some(pin.trim().to_string()))
}

/// The PIN asked on the terminal when the server says this device has one; `None` without.
async fn device_pin(device: &DeviceClient) -> anyhow::Result<Option<String>> {
    let me = device.me().await.map_err(|e| device_error(e, "cannot fetch this device from the server"))?;
    if me.device.pin_locked == Some(true) {
        bail!(
            "this authenticator's PIN is locked after 5 wrong PINs: ask your Registration Authority (RA) for a PIN reset, then run `vsc authenticator pin reset --token T`"
        );
    }
    if me.device.pin_set != Some(true) {
        return Ok(None);
    }
    if !std::io::stdin().is_terminal() {
        bail!("this authenticator has a PIN and standard input is not a terminal: pass it with --pin-stdin");
    }
    let pin = rpassword::prompt_password("Authenticator PIN: ")
        .map_err(|e| anyhow!("cannot ask for the PIN on a terminal ({e}): use --pin-stdin"))?;
    Ok(Some(pin.trim().to_string()))
}

/// A secret asked twice on the terminal (the two must match).
fn ask_twice(what: &str) -> anyhow::Result<String> {
    if !std::io::stdin().is_terminal() {
        bail!("standard input is not a terminal: use the --…-stdin flag");
    }
    let first = rpassword::prompt_password(format!("{what}: "))
        .map_err(|e| anyhow!("cannot ask on a terminal ({e}): use the --…-stdin flag"))?;
    let second = rpassword::prompt_password(format!("Repeat the {}: ", what.to_lowercase()))
        .map_err(|e| anyhow!("cannot ask on a terminal ({e}): use the --…-stdin flag"))?;
    if first != second {
        bail!("the two entries differ; nothing was changed");
    }
    Ok(first)
}

async fn reset_passcode(state: &DeviceState, new_passcode_stdin: bool, pin_stdin: bool) -> anyhow::Result<()> {
    let device = state.client()?;
    let passcode = if new_passcode_stdin {
        read_stdin_line()?.ok_or_else(|| anyhow!("--new-passcode-stdin: standard input is empty"))?
    } else {
        ask_twice("New VSC passcode")?
    };
    if passcode.is_empty() {
        bail!("the new passcode is empty");
    }
    let pin = match stdin_pin(pin_stdin)? {
        Some(pin) => Some(pin),
        None => device_pin(&device).await?,
    };
    device.reset_passcode(&passcode, pin.as_deref()).await.map_err(|e| pin_error(e, "passcode reset refused"))?;
    println!("passcode changed: the card is unlocked and every card session has ended");
    Ok(())
}

async fn pin(state: &DeviceState, command: PinCommand) -> anyhow::Result<()> {
    let device = state.client()?;
    match command {
        PinCommand::Set { pin_stdin } => {
            // A device the server refuses for want of a PIN has none yet.
            let (has_pin, locked) = match device.me().await {
                Ok(me) => (me.device.pin_set == Some(true), me.device.pin_locked == Some(true)),
                Err(e) if e.code() == Some(ErrorCode::PinRequired) => (false, false),
                Err(e) => return Err(device_error(e, "cannot fetch this device from the server")),
            };
            if locked {
                bail!(
                    "this authenticator's PIN is locked: ask your RA for a PIN reset, then run `vsc authenticator pin reset --token T`"
                );
            }
            let (current, new) = if pin_stdin {
                let current = if has_pin { stdin_pin(true)? } else { None };
                (current, stdin_pin(true)?.unwrap_or_default())
            } else {
                if !std::io::stdin().is_terminal() {
                    bail!("standard input is not a terminal: use --pin-stdin");
                }
                let current = if has_pin {
                    Some(
                        rpassword::prompt_password("Current authenticator PIN: ")
                            .map_err(|e| anyhow!("cannot ask for the PIN on a terminal ({e}): use --pin-stdin"))?,
                    )
                } else {
                    None
                };
                (current, ask_twice("New authenticator PIN (4 to 8 digits)")?)
            };
            device.set_pin(new.trim(), current.as_deref()).await.map_err(|e| pin_error(e, "PIN not set"))?;
            println!("{}", if has_pin { "PIN changed" } else { "PIN set: approving and resetting will ask for it" });
        }
        PinCommand::Reset { token, pin_stdin } => {
            let new = match stdin_pin(pin_stdin)? {
                Some(pin) => pin,
                None => ask_twice("New authenticator PIN (4 to 8 digits)")?,
            };
            device.reset_pin(token.trim(), new.trim()).await.map_err(|e| pin_error(e, "PIN reset refused"))?;
            println!("PIN reset: the new PIN is set and the lock is cleared");
        }
    }
    Ok(())
}

/// Errors of PIN-guarded requests: the server's own words for wrong, missing or locked PINs,
/// policy and used or void tokens.
fn pin_error(e: ClientError, what: &str) -> anyhow::Error {
    match e.code() {
        Some(ErrorCode::Unauthenticated | ErrorCode::PinRequired) | None => device_error(e, what),
        Some(_) => anyhow!("{what}: {e}"),
    }
}

fn answer_error(e: ClientError, what: &str) -> anyhow::Error {
    if e.field() == Some("pin") || e.code() == Some(ErrorCode::Forbidden) {
        return pin_error(e, what);
    }
    match e.code() {
        Some(ErrorCode::NotFound) => anyhow!("{what}: no such login request for this holder"),
        Some(ErrorCode::InvalidState) => anyhow!("{what}: the login request has expired or was already answered"),
        Some(ErrorCode::SignInFailed) => {
            anyhow!("{what}: the server did not accept the signed answer (wrong device key or nonce)")
        }
        _ => device_error(e, what),
    }
}

fn device_error(e: ClientError, what: &str) -> anyhow::Error {
    match e.code() {
        Some(ErrorCode::PinRequired) => anyhow::Error::new(PinRequired(what.to_string())),
        Some(ErrorCode::Unauthenticated) => {
            anyhow!("{what}: the server did not accept this device (deleted, or the clock is off?)")
        }
        _ => anyhow::Error::new(e).context(what.to_string()),
    }
}

fn numbers(choices: &[u8]) -> String {
    choices.iter().map(|n| format!("{n:02}")).collect::<Vec<_>>().join(", ")
}

fn read_passcode(from_stdin: bool) -> anyhow::Result<String> {
    let passcode = if from_stdin {
        read_stdin_line()?.ok_or_else(|| anyhow!("--passcode-stdin: standard input is empty"))?
    } else {
        rpassword::prompt_password("VSC passcode: ")
            .map_err(|e| anyhow!("cannot ask for the passcode on a terminal ({e}): use --passcode-stdin"))?
    };
    if passcode.is_empty() {
        bail!("the passcode is empty");
    }
    Ok(passcode)
}

/// `uname -r`, read where Linux keeps it, else from `uname`, else `unknown`.
fn platform_version() -> String {
    let from_proc = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok();
    let from_uname = || {
        let out = std::process::Command::new("uname").arg("-r").output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    };
    from_proc
        .or_else(from_uname)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// The parameters of a `vsc-auth://KIND?v=1&…` URI (percent-decoded).
fn parse_auth_uri(uri: &str, kind: &str) -> anyhow::Result<HashMap<String, String>> {
    let uri = uri.trim();
    let rest = uri
        .get(..11)
        .filter(|s| s.eq_ignore_ascii_case("vsc-auth://"))
        .and_then(|_| uri.get(11..))
        .ok_or_else(|| anyhow!("not a vsc-auth:// URI"))?;
    let (found, query) = rest.split_once('?').unwrap_or((rest, ""));
    if found.trim_end_matches('/') != kind {
        bail!("expected a vsc-auth://{kind} URI, got vsc-auth://{found}");
    }
    let mut params = HashMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        params.insert(percent_decode(k)?, percent_decode(v)?);
    }
    match params.get("v").map(String::as_str) {
        Some("1") => Ok(params),
        Some(v) => bail!("vsc-auth URI version {v} is not supported by this client (version 1)"),
        None => bail!("the vsc-auth URI has no version (v=1)"),
    }
}

fn param<'a>(params: &'a HashMap<String, String>, name: &str) -> anyhow::Result<&'a str> {
    params.get(name).map(String::as_str).filter(|v| !v.is_empty()).ok_or_else(|| anyhow!("the URI has no `{name}`"))
}

fn percent_decode(s: &str) -> anyhow::Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (b, hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| anyhow!("the URI is not valid UTF-8 once decoded"))
}

/// RFC 4648 base32 (padding and case ignored); `None` on other characters.
fn base32_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 5 / 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in s.trim().trim_end_matches('=').bytes() {
        let v = match c.to_ascii_uppercase() {
            c @ b'A'..=b'Z' => c - b'A',
            c @ b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        buffer = (buffer << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((buffer >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

// ---- local files and terminal, shared with `vsc card` ----

/// The state directory: the flag (or its environment variable), else `$HOME/.vsc/<name>`.
pub(crate) fn state_dir(flag: Option<PathBuf>, name: &str) -> anyhow::Result<PathBuf> {
    if let Some(dir) = flag {
        return Ok(dir);
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .ok_or_else(|| anyhow!("HOME is not set: pass --state-dir"))?;
    Ok(PathBuf::from(home).join(".vsc").join(name))
}

/// Create `dir` (and parents) readable by the owner only.
pub(crate) fn ensure_private_dir(dir: &Path) -> anyhow::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        builder.mode(0o700);
        builder.create(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot make {} private", dir.display()))?;
    }
    #[cfg(not(unix))]
    builder.create(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(())
}

/// Write `dir/name` with mode 0600 through a temporary file and a rename, so a reader never sees
/// half a file and the secret is never world-readable.
pub(crate) fn write_private(dir: &Path, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
    ensure_private_dir(dir)?;
    let path = dir.join(name);
    // tempfile creates the file with mode 0600.
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .tempfile_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    tmp.write_all(bytes).and_then(|()| tmp.as_file().sync_all()).context("cannot write the state file")?;
    tmp.persist(&path).map_err(|e| anyhow!("cannot write {}: {}", path.display(), e.error))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// One line of standard input without its line ending; `None` at end of input.
pub(crate) fn read_stdin_line() -> anyhow::Result<Option<String>> {
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).context("cannot read standard input")? == 0 {
        return Ok(None);
    }
    Ok(Some(line.trim_end_matches(['\n', '\r']).to_string()))
}

/// Show `prompt` on stderr and read the answer line; `None` at end of input.
pub(crate) fn ask(prompt: &str) -> anyhow::Result<Option<String>> {
    let mut err = std::io::stderr().lock();
    write!(err, "{prompt}")?;
    err.flush()?;
    drop(err);
    read_stdin_line()
}

/// RFC 3339 text of a time.
pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_else(|_| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_uris_parse_with_a_percent_encoded_url() {
        let p = parse_auth_uri("vsc-auth://register?v=1&url=http%3A%2F%2F127.0.0.1%3A8080&t=vdr_Ab-9_x", "register")
            .unwrap();
        assert_eq!(param(&p, "url").unwrap(), "http://127.0.0.1:8080");
        assert_eq!(param(&p, "t").unwrap(), "vdr_Ab-9_x");
        let p = parse_auth_uri("VSC-AUTH://login?v=1&url=https%3A%2F%2Fvsc.example&c=abc&n=n0nce", "login").unwrap();
        assert_eq!((param(&p, "c").unwrap(), param(&p, "n").unwrap()), ("abc", "n0nce"));
        assert!(parse_auth_uri("vsc-auth://login?v=1&c=x", "register").is_err());
        assert!(parse_auth_uri("vsc-auth://register?v=2&t=x", "register").is_err());
        assert!(parse_auth_uri("vsc-auth://register?t=x", "register").is_err());
        assert!(parse_auth_uri("https://register?v=1", "register").is_err());
        assert!(param(&parse_auth_uri("vsc-auth://register?v=1&t=", "register").unwrap(), "t").is_err());
        assert_eq!(percent_decode("a%2").unwrap(), "a%2");
        assert_eq!(percent_decode("%C3%A9").unwrap(), "é");
    }

    #[test]
    fn base32_round_trips_with_the_server_encoding() {
        let s = TotpSecret::generate();
        assert_eq!(base32_decode(&s.base32()).unwrap(), s.expose());
        assert_eq!(base32_decode("MZXW6YTBOI").unwrap(), b"foobar");
        assert_eq!(base32_decode("mzxw6ytboi======").unwrap(), b"foobar");
        assert!(base32_decode("MZXW6YTBO1").is_none());
    }

    fn challenge(choices: Option<Vec<u8>>) -> ChallengeView {
        let t = OffsetDateTime::UNIX_EPOCH;
        ChallengeView {
            id: "c".into(),
            nonce: "n".into(),
            purpose: "card".into(),
            method: "push".into(),
            client: "test".into(),
            ip: "127.0.0.1".into(),
            card: None,
            choices,
            document: None,
            digest: None,
            created_at: t,
            expires_at: t,
        }
    }

    #[test]
    fn approving_a_number_matching_login_needs_a_listed_number() {
        let c = challenge(Some(vec![12, 47, 83]));
        let e = decide(&c, Some(Decision::Approve), None, true).unwrap_err().to_string();
        assert!(e.contains("--number") && e.contains("12, 47, 83"), "{e}");
        assert!(decide(&c, Some(Decision::Approve), Some(50), true).is_err());
        assert_eq!(decide(&c, Some(Decision::Approve), Some(47), true).unwrap(), (Decision::Approve, Some(47)));
        assert_eq!(decide(&c, Some(Decision::Deny), Some(47), true).unwrap(), (Decision::Deny, None));
        assert_eq!(decide(&c, Some(Decision::Approve), None, false).unwrap(), (Decision::Approve, None));
        let plain = challenge(None);
        assert_eq!(decide(&plain, Some(Decision::Approve), Some(47), true).unwrap(), (Decision::Approve, None));
    }

    #[test]
    fn private_files_are_0600_in_a_0700_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a").join("b");
        write_private(&dir, "x.json", b"{}").unwrap();
        write_private(&dir, "x.json", b"{\"v\":2}").unwrap();
        assert_eq!(std::fs::read(dir.join("x.json")).unwrap(), b"{\"v\":2}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&dir), 0o700);
            assert_eq!(mode(&dir.join("x.json")), 0o600);
        }
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "no temporary file left behind");
    }
}
