//! Command-line definitions (clap derive: doc comments are the help text).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use vsc_server::Config;
use vsc_server::config::Overrides;

/// vsc — cloud virtual smartcard service.
#[derive(Debug, Parser)]
#[command(name = "vsc", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by `serve` and `admin`.
#[derive(Debug, Args)]
pub struct Global {
    /// TOML configuration file (settings there are overridden by VSC_* variables and flags).
    #[arg(long, global = true, env = "VSC_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory holding the SQLite database and the key-encryption key [default: ./vsc-data].
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, global = true, value_name = "ADDR")]
    pub listen: Option<String>,
}

impl Global {
    /// The layered configuration.
    pub fn load(&self) -> anyhow::Result<Config> {
        let o = Overrides { listen: self.listen.clone(), data_dir: self.data_dir.clone() };
        Config::load(self.config.as_deref(), &o).map_err(anyhow::Error::msg)
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (creates the database, key-encryption key and CA on first start).
    Serve,
    /// Operator commands acting directly on the data dir / DATABASE_URL.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Benchmarks that print figures and a ratio against a bound measured in the same run.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Configuration helpers.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// This computer as the card holder's authenticator: register it, show codes, answer logins.
    Authenticator(crate::authenticator::AuthenticatorArgs),
    /// Log in to your card and use the card session (status, tickets for apps, logout).
    Card(crate::card::CardArgs),
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print a commented example configuration file.
    Example,
    /// Validate a configuration file (with the environment applied).
    Check {
        /// The file to check.
        file: PathBuf,
        /// Print `{file, valid, listen, data_dir}`.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an organisation (when new) and an RA manager for it, who becomes an operator; print
    /// the manager's API token and a one-time link (valid 24 hours) to set the manager's vRA
    /// Manager password.
    Bootstrap(BootstrapArgs),
    /// API tokens of RA accounts.
    #[command(subcommand)]
    Token(TokenCommand),
    /// RA staff accounts of the vRA Manager.
    #[command(subcommand)]
    Staff(StaffCommand),
    /// Card holders.
    #[command(subcommand)]
    User(UserCommand),
    /// Cards.
    #[command(subcommand)]
    Card(CardCommand),
    /// Authenticator devices.
    #[command(subcommand)]
    Device(DeviceCommand),
    /// Organisations.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Relying applications that validate card-login tickets.
    #[command(subcommand)]
    App(AppCommand),
    /// Messages in the outbox (the local outbox is the delivery channel when no SMTP/SMS gateway
    /// is configured), oldest first.
    Outbox {
        /// Only messages to this address or number.
        #[arg(long, value_name = "E")]
        to: Option<String>,
        /// How many of the newest messages.
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Send enrolment reminders that are due now (the server also does this every 10 minutes).
    Remind {
        /// Print `{"reminders_sent": N}`.
        #[arg(long)]
        json: bool,
    },
    /// Show the newest audit events.
    Audit {
        /// How many events.
        #[arg(long, default_value_t = 20)]
        limit: i64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct BootstrapArgs {
    /// Organisation code, e.g. RX1.
    #[arg(long, value_name = "CODE")]
    pub org: String,
    /// Organisation name (used when the organisation is new).
    #[arg(long, value_name = "NAME")]
    pub org_name: String,
    /// Allowed email domain for the organisation's users (repeatable; added to an existing
    /// organisation's domains, audited).
    #[arg(long = "email-domain", value_name = "DOMAIN", required = true)]
    pub email_domains: Vec<String>,
    /// Email of the RA manager.
    #[arg(long, value_name = "EMAIL")]
    pub ra_email: String,
    /// Full name of the RA manager, e.g. "Fiona Smith".
    #[arg(long, value_name = "NAME")]
    pub ra_name: String,
    /// Print JSON (`{"token": …, "password_link": …, "operator": true, …}`).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a new API token for an RA account.
    Create {
        /// Email of the RA account.
        #[arg(long)]
        email: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum StaffCommand {
    /// Create an RA staff account (when new) granted an organisation, and print a one-time link
    /// (valid 24 hours) to set its vRA Manager password; a new link voids the previous one.
    Invite {
        /// Email of the staff member.
        #[arg(long, value_name = "E")]
        email: String,
        /// Organisation code to grant.
        #[arg(long, value_name = "CODE")]
        org: String,
        /// `manager` (everything in their organisations) or `agent` (users, cards, devices).
        #[arg(long, value_parser = ["manager", "agent"])]
        role: String,
        /// Full name, e.g. "Fiona Smith" (needed for a new account).
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// Make the account an operator too (organisations, email domains, catalogues, any staff).
        #[arg(long)]
        operator: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Make an RA staff account an operator (`on`: it may create and rename organisations, change
    /// their email domains and the role and security-question catalogues, and administer any staff
    /// account) or withdraw it (`off`). Audited.
    Operator {
        /// Email of the staff member.
        #[arg(long, value_name = "E")]
        email: String,
        /// `on` or `off`.
        #[arg(value_name = "on|off", value_parser = ["on", "off"])]
        state: String,
    },
    /// Clear an RA staff account's two-step sign-in (TOTP), for a lost phone: its sessions and
    /// pending sign-ins end, and its next sign-in sets up TOTP again. Audited.
    ResetTotp {
        /// Email of the staff member.
        #[arg(long, value_name = "E")]
        email: String,
    },
    /// Disable an RA staff account: its sessions and pending sign-ins end, sign-in is refused and
    /// its API tokens stop working until it is enabled.
    Disable {
        /// Email of the staff member.
        #[arg(long, value_name = "E")]
        email: String,
    },
    /// Enable a disabled RA staff account.
    Enable {
        /// Email of the staff member.
        #[arg(long, value_name = "E")]
        email: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a card holder.
    Create {
        /// Organisation code.
        #[arg(long, value_name = "CODE")]
        org: String,
        /// Forename.
        #[arg(long)]
        forename: String,
        /// Surname.
        #[arg(long)]
        surname: String,
        /// Email (its domain must be allowed for the organisation).
        #[arg(long)]
        email: String,
        /// Mobile number.
        #[arg(long)]
        mobile: Option<String>,
        /// Subject CN (default: a generated 12-digit number).
        #[arg(long)]
        subject_cn: Option<String>,
        /// Directory (AD) account name, activated when the holder completes enrolment.
        #[arg(long)]
        directory_account: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a user (by email) with their cards.
    Show {
        /// Email.
        #[arg(long)]
        email: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `vsc admin device …`.
#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// Issue a single-use PIN-reset token for a holder's authenticator (older tokens stop
    /// working); read it out to the holder, who runs `vsc authenticator pin reset --token T`.
    PinReset {
        /// Device id (as `vsc authenticator list` shows it).
        device_id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum CardCommand {
    /// Issue a card to a user.
    Issue {
        /// The holder's email.
        #[arg(long)]
        email: String,
        /// v1 or v2.
        #[arg(long = "type", value_name = "v1|v2")]
        card_type: String,
        /// Role code (repeatable), e.g. --role R8000.
        #[arg(long = "role", value_name = "ROLE", required = true)]
        roles: Vec<String>,
        /// Key algorithm: p256 (default) or rsa2048.
        #[arg(long, value_name = "ALG")]
        key_algorithm: Option<String>,
        /// Print JSON (with certificates).
        #[arg(long)]
        json: bool,
    },
    /// Show a card.
    Show {
        /// Card serial.
        serial: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Send a new enrolment invitation (the previous link stops working).
    Resend {
        /// Card serial.
        serial: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Email the holder a link to unlock the card by choosing a new passcode (skips the security
    /// questions; the second factor is still needed). The previous reset link stops working.
    Unlock {
        /// Card serial.
        serial: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Renew a card before it expires: new keys and certificates for the same card and a new
    /// expiry; the old certificates are revoked (superseded) in the same transaction.
    Renew {
        /// Card serial.
        serial: String,
        /// Print JSON (with certificates).
        #[arg(long)]
        json: bool,
    },
    /// Revoke a card.
    Revoke {
        /// Card serial.
        serial: String,
        /// Reason (audited).
        #[arg(long)]
        reason: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// List organisations.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Set an organisation's card-login policy and dual control (at least one of the flags).
    Policy {
        /// Organisation code.
        code: String,
        /// Allow push-only (passwordless) card login: email → push → Yes.
        #[arg(long, value_name = "on|off", value_parser = ["on", "off"], required_unless_present = "dual_control")]
        push_only: Option<String>,
        /// Dual control: an enrolled holder's email, mobile, last authenticator, unlock, restart and
        /// resume need a second staff member's approval (on by default).
        #[arg(long, value_name = "on|off", value_parser = ["on", "off"])]
        dual_control: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Register a relying app and print its API key (shown once).
    Create {
        /// The app's name (letters, digits, '-', '_', '.').
        name: String,
        /// Print JSON (`{"id", "name", "key"}`).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// A real `vsc serve` process (trusted proxy: loopback) under concurrent bogus portal
    /// sign-ins and card logins from many source addresses (X-Forwarded-For), while one holder
    /// logs in normally; prints peak server RSS, /healthz p99, the holder's login time, and how
    /// many attempts were refused 503 (hash queue full), 429 (address blocked) or evaluated.
    Abuse {
        /// Concurrent attackers (each sends a request every 100 ms until the run ends).
        #[arg(long, default_value_t = 1000)]
        attackers: usize,
        /// Distinct source addresses the attackers share.
        #[arg(long, default_value_t = 20)]
        addresses: usize,
        /// Length of the attack in seconds (long enough for the addresses to be blocked).
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// Run on this PostgreSQL server (a scratch database is created and dropped).
        #[arg(long, value_name = "URL")]
        database_url: Option<String>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Issue N V2 cards against a temporary data dir; print cards/s, p50/p99 and the ratio to the
    /// bare key-generation rate measured in the same run.
    Issuance {
        /// Number of cards.
        #[arg(long, short = 'n', default_value_t = 200)]
        cards: usize,
        /// Key algorithm of the card profile: p256 or rsa2048.
        #[arg(long, default_value = "p256")]
        key_algorithm: String,
        /// Run on this PostgreSQL server instead of a temporary SQLite database: a scratch database
        /// is created there for the run and dropped afterwards.
        #[arg(long, value_name = "URL")]
        database_url: Option<String>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Import users from CSV as the vRA Manager does (every row checked, then one transaction):
    /// N users without cards, then M users with a V1 card each; prints rows/s.
    Import {
        /// Users without cards.
        #[arg(long, default_value_t = 10_000)]
        rows: usize,
        /// Users with a V1 card (0: skip).
        #[arg(long, default_value_t = 1_000)]
        cards: usize,
        /// Run on this PostgreSQL server (a scratch database is created and dropped).
        #[arg(long, value_name = "URL")]
        database_url: Option<String>,
        /// Print one JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Full card logins (passcode + push + signed approval by in-process authenticators + card
    /// session) through the HTTP API of an in-process server; prints logins/s, the Argon2id-only
    /// rate on the same cores in the same run, their ratio, and push delivery p50/p99.
    Login {
        /// Number of timed logins.
        #[arg(long, short = 'n', default_value_t = 200)]
        logins: usize,
        /// Logins in flight at once (one holder and one device each).
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// Run on this PostgreSQL server (a scratch database is created and dropped).
        #[arg(long, value_name = "URL")]
        database_url: Option<String>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Raw signatures with a card's authentication key through the HTTP API of an in-process
    /// server, within open card sessions (each one authorised and audited), one digest per request
    /// and then `--batch` per request; prints signatures/s, the raw signing rate of the same key
    /// type on the same cores in the same run, and the ratio, for each pass.
    Sign {
        /// Number of timed signatures in each pass.
        #[arg(long, short = 'n', default_value_t = 20_000)]
        signatures: usize,
        /// Signatures in flight at once (spread over a few card sessions).
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Key algorithm of the benchmark card: p256 (default card profile) or rsa2048.
        #[arg(long, default_value = "p256")]
        key_algorithm: String,
        /// Digests per request in the second pass (`POST /api/v1/card/sign/batch`), 2–256.
        #[arg(long, default_value_t = 64)]
        batch: usize,
        /// Run on this PostgreSQL server (a scratch database is created and dropped).
        #[arg(long, value_name = "URL")]
        database_url: Option<String>,
        /// Print one JSON object per pass.
        #[arg(long)]
        json: bool,
    },
    /// Seed N users (bulk inserts; a tenth with a card), then time RA users searches (surname
    /// substring, exact email, serial prefix, UUID, unfiltered list), sorted and limited to a staff
    /// member's organisations; prints p50/p95 and the ratio of p95 to the 50 ms bound.
    Search {
        /// Number of users to seed.
        #[arg(long, short = 'n', default_value_t = 100_000)]
        users: usize,
        /// Run on this PostgreSQL server (a scratch database is created and dropped).
        #[arg(long, value_name = "URL")]
        database_url: Option<String>,
        /// Print one JSON object per line.
        #[arg(long)]
        json: bool,
    },
}
