//! Wire types shared by the server, the client and the CLI: request and response bodies and the
//! coded error format. Nothing here does IO.

pub mod error;
pub mod organisation;
pub mod user;
pub mod card;
pub mod audit;

pub use audit::{AuditEventView, AuditPage};
pub use card::{CardCertificates, CardView, IssueCardRequest, RevokeCardRequest};
pub use error::{ErrorBody, ErrorCode, ErrorDetail};
pub use organisation::{CreateOrganisationRequest, OrganisationView};
pub use user::{CreateUserRequest, UserView};
