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
    /// A wrong secret typed into `field` (a passcode re-check, security answers, a PIN): answered
    /// as invalid input, and counted as a credential failure by the failure regulator.
    #[error("{message}")]
    WrongSecret {
        /// The request field.
        field: &'static str,
        /// What the holder is told.
        message: String,
    },
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
    /// The service is too busy to take this request now (the hash queue is full); retry after
    /// the given number of seconds.
    #[error("the service is busy; try again in {0} second(s)")]
    Busy(u64),
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

/// How a refusal for a wrong PIN begins (the failure regulator counts it).
pub const WRONG_PIN: &str = "wrong PIN";

impl ServiceError {
    /// A not-found error naming a field.
    pub fn not_found(field: &'static str, message: impl Into<String>) -> Self {
        ServiceError::NotFound { field: Some(field), message: message.into() }
    }

    /// A refusal of dual control.
    pub fn dual_control(refusal: DualControlRefusal, message: impl Into<String>) -> Self {
        ServiceError::DualControl { refusal, message: message.into() }
    }

    /// Whether this answers a presented credential that was wrong: a passcode, staff password or
    /// ticket refused (`SignInFailed`), a wrong code (any `code` field error), wrong security
    /// answers, a wrong PIN or a wrong passcode re-checked by a holder. The failure regulator
    /// counts these per client address; rule breaks in a form (a new passcode too short) are not.
    pub fn is_credential_failure(&self) -> bool {
        match self {
            ServiceError::SignInFailed(_) | ServiceError::WrongSecret { .. } => true,
            ServiceError::Forbidden(m) => m.starts_with(WRONG_PIN),
            ServiceError::Domain(DomainError::Invalid { field: "code", .. }) => true,
            _ => false,
        }
    }

    /// A wrong secret typed into `field` (see [`ServiceError::WrongSecret`]).
    pub fn wrong_secret(field: &'static str, message: impl Into<String>) -> Self {
        ServiceError::WrongSecret { field, message: message.into() }
    }

    /// The error as it is answered: a credential failure is noted for the failure regulator
    /// (`api::failure_limit`), and a [`ServiceError::WrongSecret`] becomes the invalid input it
    /// looks like to the client. Every error mapping calls this first.
    pub fn answered(self) -> Self {
        if self.is_credential_failure() {
            crate::api::failure_limit::mark_credential_failure();
        }
        match self {
            ServiceError::WrongSecret { field, message } => DomainError::Invalid { field, message }.into(),
            other => other,
        }
    }

    /// A conflict naming a field.
    pub fn conflict(field: &'static str, message: impl Into<String>) -> Self {
        ServiceError::Conflict { field: Some(field), message: message.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_credentials_are_failures_and_rule_breaks_are_not() {
        for e in [
            ServiceError::SignInFailed("the email or passcode is wrong".into()),
            ServiceError::SignInFailed("ticket refused: unknown ticket".into()),
            DomainError::invalid("code", "the code is wrong; 4 attempt(s) left").into(),
            DomainError::invalid("code", "enter the 6-digit code").into(),
            ServiceError::wrong_secret("answers", "one or more answers are not right; 2 attempt(s) left"),
            ServiceError::wrong_secret("pin", "wrong PIN; 3 attempt(s) left"),
            ServiceError::Forbidden("wrong PIN; the PIN is locked".into()),
            ServiceError::wrong_secret("passcode", "the passcode is wrong"),
        ] {
            assert!(e.is_credential_failure(), "{e}");
        }
        for e in [
            DomainError::invalid("passcode", "the passcode needs at least one digit").into(),
            DomainError::invalid("passcode", "choose a passcode different from your current one").into(),
            DomainError::invalid("answers", "question 9 is not in the catalogue").into(),
            DomainError::invalid("pin", "this authenticator has a PIN: enter it").into(),
            DomainError::invalid("email", "not an email address").into(),
            ServiceError::Forbidden("only an operator may do this".into()),
            ServiceError::RateLimited("wait".into()),
            ServiceError::Busy(1),
        ] {
            assert!(!e.is_credential_failure(), "{e}");
        }
        // Answered as the invalid input it is.
        let answered = ServiceError::wrong_secret("pin", "wrong PIN; 3 attempt(s) left").answered();
        assert!(matches!(answered, ServiceError::Domain(DomainError::Invalid { field: "pin", .. })));
    }
}
