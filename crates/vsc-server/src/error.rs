//! Errors of the service layer, shared by the API (mapped once to HTTP in `api::errors`) and
//! the CLI (printed as one line).

use vsc_core::DomainError;
use vsc_crypto::CryptoError;
use vsc_store::StoreError;

/// Why a service call failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Input broke a rule.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The thing does not exist, or is outside the caller's organisations.
    #[error("{message}")]
    NotFound {
        /// Field that named the missing thing, if any.
        field: Option<&'static str>,
        /// What was not found.
        message: String,
    },
    /// A uniqueness rule refused the request.
    #[error("{message}")]
    Conflict {
        /// Field at fault.
        field: Option<&'static str>,
        /// Explanation.
        message: String,
    },
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// Dual control refused to decide a change request (see [`DualControlRefusal`]).
    #[error("{message}")]
    DualControl {
        /// Why.
        refusal: DualControlRefusal,
        /// Explanation.
        message: String,
    },
    /// A link (enrolment, reset) expired.
    #[error("{0}")]
    LinkExpired(String),
    /// A single-use link was already used.
    #[error("{0}")]
    LinkUsed(String),
    /// Too many requests in a short time.
    #[error("{0}")]
    RateLimited(String),
    /// A holder sign-in failed (wrong email or passcode, never saying which, or locked).
    #[error("{0}")]
    SignInFailed(String),
    /// No valid holder session.
    #[error("{0}")]
    Unauthenticated(String),
    /// The authenticator has no PIN yet and the policy asks for one before anything else.
    #[error("{0}")]
    PinRequired(String),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Cryptography failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The service cannot start or run with this configuration or data.
    #[error("{0}")]
    Startup(String),
}

/// Why a change request could not be decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DualControlRefusal {
    /// The requester tried to approve their own request.
    OwnRequest,
    /// The caller is neither a manager of the holder's organisation nor an operator.
    NotAnApprover,
    /// The request is no longer pending (approved, rejected or expired).
    NotPending,
}

impl ServiceError {
    /// A not-found error naming a field.
    pub fn not_found(field: &'static str, message: impl Into<String>) -> Self {
        ServiceError::NotFound { field: Some(field), message: message.into() }
    }

    /// A refusal of dual control.
    pub fn dual_control(refusal: DualControlRefusal, message: impl Into<String>) -> Self {
        ServiceError::DualControl { refusal, message: message.into() }
    }

    /// A conflict naming a field.
    pub fn conflict(field: &'static str, message: impl Into<String>) -> Self {
        ServiceError::Conflict { field: Some(field), message: message.into() }
    }
}
