//! Integration tests of authenticator devices, card login, card sessions and relying-app
//! tickets, against the real server on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod devices;
mod dual_control;
mod limits;
mod login;
mod org_policy;
mod pin;
mod pin_required;
mod portal_sign_in;
mod reset;
mod secret_ledgers;
mod signing;
mod suspension;
mod verified_channels;
