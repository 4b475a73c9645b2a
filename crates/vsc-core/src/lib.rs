//! The vsc domain: identifiers, validation rules and card life-cycle rules.
//!
//! No IO and no clock or randomness of its own: callers pass `now` and a [`RandomSource`].

pub mod audit;
pub mod card;
pub mod change_request;
pub mod clock;
pub mod email;
pub mod enrolment;
pub mod error;
pub mod names;
pub mod role;
pub mod staff;

pub use audit::{Actor, AuditRecord};
pub use card::{CardSerial, CardState, CardType, KeyAlgorithm, KeyPurpose};
pub use clock::{Clock, RandomSource};
pub use email::{EmailAddress, EmailDomain};
pub use error::DomainError;
pub use names::{Mobile, OrgCode, PersonName, SubjectCn};
pub use role::{DEFAULT_ROLES, RoleCode};
pub use staff::StaffRole;
