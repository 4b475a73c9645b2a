//! The vsc HTTP server and the service layer shared by the API and the operator CLI.

pub mod api;
pub mod client_ip;
pub mod clock;
pub mod config;
pub mod error;
pub mod notify;
pub mod portals;
pub mod serve;
pub mod service;

pub use config::Config;
pub use error::ServiceError;
pub use service::{Principal, Vsc};
