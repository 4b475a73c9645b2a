//! The service layer: every operation of the product, written once and called by the JSON API and
//! by `vsc admin`. Each state change, its audit event and (later) its outgoing messages commit in
//! one transaction.

mod approvals;
mod audit;
mod card_session;
mod cards;
mod change_requests;
mod decoy_login;
mod device_auth;
mod device_keys;
mod devices;
mod enrolment;
mod events;
mod failure_regulator;
mod hash_pool;
mod holder;
mod holder_sessions;
mod issuance_restart;
mod key_pool;
mod login;
mod organisations;
mod outbox;
mod passcode;
mod pin;
mod pki;
mod portal_sign_in;
pub mod ra_audit;
pub mod ra_reports;
mod ra_users;
mod renewal;
mod reset;
mod second_factor;
pub mod settings;
mod sign_batch;
mod signer_cache;
mod signing;
mod staff;
pub mod staff_admin;
mod staff_auth;
mod startup;
mod suspension;
pub mod user_edit;
mod user_import;
mod user_lifecycle;
mod user_search;
mod users;
mod verified_channels;
mod views;

use std::sync::Arc;

use time::OffsetDateTime;
use vsc_core::{AuditRecord, Clock};
use vsc_crypto::{IssuingCa, Kek};
use vsc_store::{Conn, Store};

pub use card_session::CardSession;
pub use cards::IssueCard;
pub use change_requests::{NotMePage, Outcome};
pub use device_auth::DeviceIdentity;
pub use events::relay_notifications;
pub use failure_regulator::FailureRegulation;
pub use holder::Holder;
pub use key_pool::refill_rsa_pool;
pub use login::RequestOrigin;
pub use outbox::{OutboxMessage, run_delivery_worker};
pub use ra_users::{StaffUserPage, USER_AUDIT_LIMIT};
pub use signing::SignOutcome;
pub use staff::BootstrapOutcome;
pub use staff_auth::{
    SESSION_ABSOLUTE_SECONDS as STAFF_SESSION_SECONDS, SIGN_IN_STEP_SECONDS as STAFF_SIGN_IN_STEP_SECONDS, StaffInvite,
    StaffMember, StaffSignInStart, TotpSetupView,
};
pub use user_import::{IMPORT_COLUMNS, ImportState, MAX_IMPORT_BYTES, MAX_IMPORT_ROWS};

use crate::{Config, ServiceError};

/// Who is calling.
#[derive(Debug, Clone, PartialEq)]
pub enum Principal {
    /// The operator at the `vsc admin` command line: acts on every organisation.
    Operator,
    /// An RA staff member authenticated by an API token.
    Staff {
        /// Staff id.
        id: String,
        /// Staff email.
        email: String,
        /// Manager or agent.
        role: vsc_core::StaffRole,
        /// Whether the account is an operator (service-wide: organisations, their domains and
        /// names, the role and question catalogues, any staff account).
        operator: bool,
    },
}

impl Principal {
    fn actor(&self) -> vsc_core::Actor {
        match self {
            Principal::Operator => vsc_core::Actor::Operator,
            Principal::Staff { email, .. } => vsc_core::Actor::Staff(email.clone()),
        }
    }

    /// Whether the caller acts for the installation: the `vsc admin` command line or a staff
    /// operator. Operators do not see every organisation's users by this (grants still decide).
    pub(crate) fn is_operator(&self) -> bool {
        match self {
            Principal::Operator => true,
            Principal::Staff { operator, .. } => *operator,
        }
    }

    /// Refuse anyone but an operator (`what`: the thing only operators do, for the message).
    pub(crate) fn operator_only(&self, what: &str) -> Result<(), ServiceError> {
        if self.is_operator() { Ok(()) } else { Err(ServiceError::Forbidden(format!("only an operator may {what}"))) }
    }

    fn staff_id(&self) -> Option<&str> {
        match self {
            Principal::Operator => None,
            Principal::Staff { id, .. } => Some(id),
        }
    }
}

/// The running service: store, keys, CA, clock and configuration.
#[derive(Clone)]
pub struct Vsc {
    store: Store,
    kek: Arc<Kek>,
    ca: Arc<IssuingCa>,
    clock: Arc<dyn Clock>,
    config: Arc<Config>,
    email: Arc<crate::notify::email::EmailChannel>,
    sms: Arc<crate::notify::sms::SmsChannel>,
    outbox_wake: Arc<tokio::sync::Notify>,
    /// Argon2id hashing and verification: one worker thread per core, a bounded queue (see
    /// `hash_pool`).
    hash_pool: hash_pool::HashPool,
    /// Failed credential attempts per client address on this node (see `failure_regulator`).
    failures: Arc<failure_regulator::FailureRegulator>,
    events: events::Events,
    /// Unsealed keys of card sessions that sign (see `signer_cache`).
    signers: signer_cache::SignerCache,
    /// Public keys of authenticators this node has authenticated (see `device_keys`).
    device_keys: device_keys::DeviceKeys,
    /// Group commit of signature authorisations (see `sign_batch`).
    batcher: sign_batch::SignBatcher,
    /// CSV imports of users running or recently finished on this node (see `user_import`).
    imports: user_import::ImportJobs,
}

impl Vsc {
    /// Open the data dir / database, creating the database, key-encryption key and CA on first use.
    pub async fn open(config: Config, clock: Arc<dyn Clock>) -> Result<Vsc, ServiceError> {
        startup::open(config, clock).await
    }

    /// The store (for health checks, tests and benchmarks).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Argon2id jobs run since start (tests compare the work each answer takes by it).
    pub fn hashes_run(&self) -> u64 {
        self.hash_pool.runs()
    }

    /// The configuration in effect.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The key-encryption key's id (fingerprint).
    pub fn kek_id(&self) -> String {
        self.kek.id_hex()
    }

    /// The trusted CA chain in PEM (issuing CA, then root).
    pub fn ca_chain_pem(&self) -> String {
        self.ca.chain_pem()
    }

    /// Check that the database answers and the key store opens the stored canary.
    pub async fn ready(&self) -> Result<(), ServiceError> {
        self.store.ping().await?;
        startup::check_canary(&self.store, &self.kek).await
    }

    fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    async fn audit(&self, conn: &mut Conn, rec: AuditRecord) -> Result<(), ServiceError> {
        vsc_store::audit::append(conn, self.now().unix_timestamp(), &rec).await?;
        Ok(())
    }

    /// Fail unless the principal may act on organisation `org_id`.
    async fn ensure_org(&self, conn: &mut Conn, who: &Principal, org_id: &str) -> Result<bool, ServiceError> {
        Ok(match who.staff_id() {
            None => true,
            Some(staff) => vsc_store::staff::is_granted(conn, staff, org_id).await?,
        })
    }
}

/// Unix seconds to a timestamp (stored values are always in range; clamp defensively).
pub(crate) fn ts(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// A new random UUID as text.
pub(crate) fn new_id() -> String {
    let b = vsc_crypto::random::bytes::<16>();
    uuid::Builder::from_random_bytes(b).into_uuid().to_string()
}
