//! Configuration: defaults < TOML file (`--config FILE`) < `VSC_*` environment (and
//! `DATABASE_URL`) < command-line flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// Every setting of `vsc serve` and `vsc admin`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Config {
    /// Address to listen on (`VSC_LISTEN`).
    pub listen: String,
    /// Data directory: SQLite database and key-encryption key file (`VSC_DATA_DIR`).
    pub data_dir: PathBuf,
    /// Public base URL for links in messages (`VSC_PUBLIC_URL`); defaults to `http://<listen>`.
    pub public_url: Option<String>,
    /// `postgres://…` to use PostgreSQL (`DATABASE_URL`); default: SQLite in the data dir.
    pub database_url: Option<String>,
    /// Key-encryption key file (`VSC_KEK_FILE`); default: `<data_dir>/kek`.
    pub kek_file: Option<PathBuf>,
    /// Name of the internal CA, used in its certificates (`VSC_CA_NAME`).
    pub ca_name: String,
    /// Days a new card is valid (`VSC_CARD_VALIDITY_DAYS`).
    pub card_validity_days: i64,
    /// Pre-generated RSA-2048 keys kept ready for RSA card profiles; 0 disables (`VSC_RSA_POOL_SIZE`).
    pub rsa_pool_size: i64,
    /// Outgoing email.
    pub smtp: SmtpConfig,
    /// Outgoing SMS.
    pub sms: SmsConfig,
    /// Days after the invitation before a reminder is sent, and between reminders
    /// (`VSC_REMINDER_DAYS`).
    pub reminder_days: i64,
    /// Development mode: serves `/dev/outbox` (`VSC_DEV_MODE`). Never enable in production.
    pub dev_mode: bool,
    /// Card login policy.
    pub login: LoginConfig,
    /// Card signature policy.
    pub signing: SigningConfig,
    /// Certificate status (CRL).
    pub pki: PkiConfig,
    /// Self-Service Portal sessions.
    pub portal: PortalConfig,
    /// Authenticator devices.
    pub authenticator: AuthenticatorConfig,
    /// Bounds on work and on failed credential attempts.
    pub limits: LimitsConfig,
    /// Reverse proxies (CIDRs, e.g. `10.0.0.0/8`) whose `X-Forwarded-For` names the client
    /// (`VSC_TRUSTED_PROXIES`, comma-separated); empty: the TCP peer is the client.
    #[serde(deserialize_with = "comma_separated")]
    pub trusted_proxies: Vec<String>,
}

/// Self-Service Portal sessions.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct PortalConfig {
    /// A portal session unused this many minutes ends (`VSC_PORTAL_IDLE_MINUTES`).
    pub idle_minutes: i64,
}

impl Default for PortalConfig {
    fn default() -> Self {
        PortalConfig { idle_minutes: 30 }
    }
}

/// What an authenticator device needs before it may act as the holder's second factor.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct AuthenticatorConfig {
    /// A device must have a PIN before it approves (pushes, signatures) or resets the passcode:
    /// registration asks for one, and a device without one gets `409 ST0002PinRequired` on
    /// everything but setting it (`VSC_AUTHENTICATOR_REQUIRE_PIN`).
    pub require_pin: bool,
}

impl Default for AuthenticatorConfig {
    fn default() -> Self {
        AuthenticatorConfig { require_pin: true }
    }
}

/// Admission control: how much hashing may wait, and how many failed credential attempts one
/// client address may make.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct LimitsConfig {
    /// Argon2id jobs allowed to wait for the hashing threads; past it requests answer 503
    /// (`VSC_LIMITS_HASH_QUEUE`). Default: 32 per core.
    pub hash_queue: Option<usize>,
    /// Failed credential attempts from one client address within 5 minutes before its
    /// credential routes answer 429 (`VSC_LIMITS_FAILURES_PER_IP`).
    pub failures_per_ip: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig { hash_queue: None, failures_per_ip: 50 }
    }
}

impl LimitsConfig {
    /// The hash queue's length in effect (the setting, or 32 per core).
    pub fn hash_queue(&self) -> usize {
        self.hash_queue.unwrap_or_else(|| 32 * cores())
    }
}

/// The number of cores this process may use (at least 1).
pub fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// A list given either as a TOML array or as one comma-separated string (the environment's form).
fn comma_separated<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum List {
        One(String),
        Many(Vec<String>),
    }
    let items = match List::deserialize(d)? {
        List::One(s) => s.split(',').map(str::to_string).collect(),
        List::Many(v) => v,
    };
    Ok(items.into_iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
}

/// When a card signature needs the holder's fresh approval on an authenticator.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct SigningConfig {
    /// Every signature with the V2 signing key (CAdES, raw) needs a push approval
    /// (`VSC_SIGNING_APPROVE_SIGNING_KEY`).
    pub approve_signing_key: bool,
    /// Every signature with the authentication key needs a push approval too
    /// (`VSC_SIGNING_APPROVE_AUTHENTICATION_KEY`); off: the open card session is enough.
    pub approve_authentication_key: bool,
}

impl Default for SigningConfig {
    fn default() -> Self {
        SigningConfig { approve_signing_key: true, approve_authentication_key: false }
    }
}

/// Certificate revocation lists.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct PkiConfig {
    /// Hours from a CRL's thisUpdate to its nextUpdate; a new CRL is signed at half that, and at
    /// every revocation (`VSC_PKI_CRL_HOURS`).
    pub crl_hours: i64,
}

impl Default for PkiConfig {
    fn default() -> Self {
        PkiConfig { crl_hours: 24 }
    }
}

/// Card login and card sessions.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct LoginConfig {
    /// Number matching on push logins (`VSC_LOGIN_NUMBER_MATCHING`).
    pub number_matching: bool,
    /// Card session lifetime in minutes (`VSC_LOGIN_SESSION_MINUTES`).
    pub session_minutes: i64,
    /// Idle timeout of a card session in minutes (`VSC_LOGIN_IDLE_MINUTES`).
    pub idle_minutes: i64,
    /// Unanswered pushes allowed per holder within 10 minutes (`VSC_LOGIN_PUSH_LIMIT`).
    pub push_limit: i64,
}

impl Default for LoginConfig {
    fn default() -> Self {
        LoginConfig { number_matching: true, session_minutes: 12 * 60, idle_minutes: 2 * 60, push_limit: 5 }
    }
}

/// Email delivery. Without `url`, messages stay in the local outbox (`vsc admin outbox`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default)]
pub struct SmtpConfig {
    /// lettre SMTP URL, e.g. `smtp://127.0.0.1:2525` or `smtps://user:pass@host` (`VSC_SMTP_URL`).
    pub url: Option<String>,
    /// Sender address (`VSC_SMTP_FROM`); default `vsc@<public host>`.
    pub from: Option<String>,
}

/// SMS delivery. Without `url`, messages stay in the local outbox.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default)]
pub struct SmsConfig {
    /// HTTP gateway: JSON `{"to", "body"}` is POSTed here (`VSC_SMS_URL`).
    pub url: Option<String>,
    /// Sent as `Authorization: Bearer <api_key>` (`VSC_SMS_API_KEY`).
    pub api_key: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./vsc-data"),
            public_url: None,
            database_url: None,
            kek_file: None,
            ca_name: "vsc".into(),
            card_validity_days: vsc_core::card::DEFAULT_CARD_VALIDITY_DAYS,
            rsa_pool_size: 4,
            smtp: SmtpConfig::default(),
            sms: SmsConfig::default(),
            reminder_days: 3,
            dev_mode: false,
            login: LoginConfig::default(),
            signing: SigningConfig::default(),
            pki: PkiConfig::default(),
            portal: PortalConfig::default(),
            authenticator: AuthenticatorConfig::default(),
            limits: LimitsConfig::default(),
            trusted_proxies: Vec::new(),
        }
    }
}

/// Values given on the command line; `None` leaves the layered value alone.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Overrides {
    /// `--listen`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// `--data-dir`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
}

impl Config {
    /// Load the layered configuration.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Config, String> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(format!("config file {} does not exist", path.display()));
            }
            fig = fig.merge(Toml::file_exact(path));
        }
        fig = fig
            .merge(Env::prefixed("VSC_").ignore(&["config", "log"]).map(|key| env_key(key.as_str()).into()))
            .merge(Env::raw().only(&["database_url"]))
            .merge(Serialized::defaults(overrides));
        let config: Config = fig.extract().map_err(|e| format!("configuration: {e}"))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        self.listen_addr()?;
        if !(1..=3650).contains(&self.card_validity_days) {
            return Err("configuration: card_validity_days must be between 1 and 3650".into());
        }
        if !(0..=1000).contains(&self.rsa_pool_size) {
            return Err("configuration: rsa_pool_size must be between 0 and 1000".into());
        }
        if let Some(url) = &self.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(format!("configuration: public_url {url:?} must start with http:// or https://"));
        }
        if !(1..=14).contains(&self.reminder_days) {
            return Err("configuration: reminder_days must be between 1 and 14".into());
        }
        let public = self.public_url();
        if public.starts_with("http://") && !is_loopback_url(&public) {
            return Err(format!(
                "configuration: public_url {public} must use https (http is allowed only on loopback)"
            ));
        }
        if !(1..=7 * 24 * 60).contains(&self.login.session_minutes)
            || !(1..=self.login.session_minutes).contains(&self.login.idle_minutes)
        {
            return Err(
                "configuration: login.session_minutes must be 1 to 10080 and login.idle_minutes 1 to session_minutes"
                    .into(),
            );
        }
        if !(1..=24 * 60).contains(&self.portal.idle_minutes) {
            return Err("configuration: portal.idle_minutes must be between 1 and 1440".into());
        }
        if !(1..=100).contains(&self.login.push_limit) {
            return Err("configuration: login.push_limit must be between 1 and 100".into());
        }
        if !(1..=24 * 31).contains(&self.pki.crl_hours) {
            return Err("configuration: pki.crl_hours must be between 1 and 744".into());
        }
        if self.limits.hash_queue.is_some_and(|q| !(1..=100_000).contains(&q)) {
            return Err("configuration: limits.hash_queue must be between 1 and 100000".into());
        }
        if !(1..=100_000).contains(&self.limits.failures_per_ip) {
            return Err("configuration: limits.failures_per_ip must be between 1 and 100000".into());
        }
        crate::client_ip::TrustedProxies::parse(&self.trusted_proxies)
            .map_err(|e| format!("configuration: trusted_proxies: {e}"))?;
        if self.ca_name.trim().is_empty() || self.ca_name.len() > 64 {
            return Err("configuration: ca_name must have 1 to 64 characters".into());
        }
        Ok(())
    }

    /// The socket address to listen on.
    pub fn listen_addr(&self) -> Result<SocketAddr, String> {
        self.listen
            .parse()
            .map_err(|_| format!("configuration: listen {:?} is not an address like 127.0.0.1:8080", self.listen))
    }

    /// The public base URL for links (no trailing slash).
    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None => format!("http://{}", self.listen),
        }
    }

    /// Whether cookies may omit `Secure` (only when the public URL is plain-http loopback).
    pub fn insecure_cookies_allowed(&self) -> bool {
        let u = self.public_url();
        u.starts_with("http://") && is_loopback_url(&u)
    }

    /// The sender address of emails.
    pub fn email_from(&self) -> String {
        self.smtp.from.clone().unwrap_or_else(|| {
            let host = self.public_url();
            let host = host.split("://").nth(1).unwrap_or("localhost").split([':', '/']).next().unwrap_or("localhost");
            let host = if host.contains('.') { host.to_string() } else { format!("{host}.localdomain") };
            format!("vsc@{host}")
        })
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .filter(|u| !u.trim().is_empty())
            .unwrap_or_else(|| vsc_store::sqlite_url(&self.data_dir))
    }

    /// The key-encryption key file in effect.
    pub fn kek_path(&self) -> PathBuf {
        self.kek_file.clone().unwrap_or_else(|| self.data_dir.join("kek"))
    }

    /// A commented example configuration file.
    pub fn example() -> &'static str {
        include_str!("../config.example.toml")
    }
}

/// The setting an environment variable (without `VSC_`) names: `SMTP_URL` → `smtp.url`,
/// `SMS_API_KEY` → `sms.api_key`, others lower-cased as they are.
fn env_key(key: &str) -> String {
    let key = key.to_ascii_lowercase();
    match key.as_str() {
        "smtp_url" => "smtp.url".into(),
        "smtp_from" => "smtp.from".into(),
        "sms_url" => "sms.url".into(),
        "sms_api_key" => "sms.api_key".into(),
        _ => {
            for section in ["login", "signing", "pki", "portal", "authenticator", "limits"] {
                if let Some(rest) = key.strip_prefix(section).and_then(|k| k.strip_prefix('_')) {
                    return format!("{section}.{rest}");
                }
            }
            key
        }
    }
}

/// Whether a URL's host is loopback (`localhost`, `127.x`, `[::1]`).
pub fn is_loopback_url(url: &str) -> bool {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let host = rest.split('/').next().unwrap_or(rest);
    let host = host.rsplit('@').next().unwrap_or(host);
    let host = if host.starts_with('[') {
        host.split(']').next().unwrap_or(host).trim_start_matches('[')
    } else {
        host.split(':').next().unwrap_or(host)
    };
    host == "localhost" || host == "::1" || host.starts_with("127.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_parses_to_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vsc.toml");
        std::fs::write(&path, Config::example()).unwrap();
        let fig = Figment::from(Serialized::defaults(Config::default())).merge(Toml::file_exact(&path));
        let c: Config = fig.extract().unwrap();
        assert_eq!(c, Config::default());
    }

    #[test]
    fn nested_settings_have_flat_environment_names() {
        assert_eq!(env_key("SMTP_URL"), "smtp.url");
        assert_eq!(env_key("smtp_from"), "smtp.from");
        assert_eq!(env_key("SMS_URL"), "sms.url");
        assert_eq!(env_key("SMS_API_KEY"), "sms.api_key");
        assert_eq!(env_key("DATA_DIR"), "data_dir");
        assert_eq!(env_key("LOGIN_IDLE_MINUTES"), "login.idle_minutes");
        assert_eq!(env_key("AUTHENTICATOR_REQUIRE_PIN"), "authenticator.require_pin");
        assert_eq!(env_key("LIMITS_HASH_QUEUE"), "limits.hash_queue");
        assert_eq!(env_key("LIMITS_FAILURES_PER_IP"), "limits.failures_per_ip");
        assert_eq!(env_key("TRUSTED_PROXIES"), "trusted_proxies");
        let fig = Figment::from(Serialized::defaults(Config::default())).merge(figment::providers::Serialized::global(
            "smtp",
            serde_json::json!({ "url": "smtp://127.0.0.1:2525" }),
        ));
        let c: Config = fig.extract().unwrap();
        assert_eq!(c.smtp.url.as_deref(), Some("smtp://127.0.0.1:2525"));
    }

    #[test]
    fn trusted_proxies_come_as_a_list_or_comma_separated() {
        let fig = Figment::from(Serialized::defaults(Config::default()))
            .merge(Serialized::global("trusted_proxies", "10.0.0.0/8, ::1/128,"));
        let c: Config = fig.extract().unwrap();
        assert_eq!(c.trusted_proxies, ["10.0.0.0/8", "::1/128"]);
        assert!(c.validate().is_ok());
        let fig = Figment::from(Serialized::defaults(Config::default()))
            .merge(Serialized::global("trusted_proxies", ["127.0.0.1"]));
        let c: Config = fig.extract().unwrap();
        assert_eq!(c.trusted_proxies, ["127.0.0.1"]);
        let bad = Config { trusted_proxies: vec!["10.0.0.0/33".into()], ..Config::default() };
        assert!(bad.validate().unwrap_err().contains("trusted_proxies"));
        let none =
            Config { limits: LimitsConfig { hash_queue: Some(0), ..LimitsConfig::default() }, ..Config::default() };
        assert!(none.validate().unwrap_err().contains("hash_queue"));
        assert_eq!(LimitsConfig::default().hash_queue(), 32 * cores());
    }

    #[test]
    fn overrides_win_and_bad_values_are_named() {
        let o = Overrides { listen: Some("127.0.0.1:9".into()), data_dir: None };
        let fig = Figment::from(Serialized::defaults(Config::default())).merge(Serialized::defaults(&o));
        let c: Config = fig.extract().unwrap();
        assert_eq!(c.listen, "127.0.0.1:9");
        let bad = Config { listen: "nope".into(), ..Config::default() };
        assert!(bad.validate().unwrap_err().contains("listen"));
        let http = Config { public_url: Some("http://vsc.example.org".into()), ..Config::default() };
        assert!(http.validate().unwrap_err().contains("https"));
        let local = Config { public_url: Some("http://localhost:8080/".into()), ..Config::default() };
        assert!(local.validate().is_ok());
        assert_eq!(local.public_url(), "http://localhost:8080");
        assert!(local.insecure_cookies_allowed());
        assert!(!Config { public_url: Some("https://a.b".into()), ..Config::default() }.insecure_cookies_allowed());
    }
}
