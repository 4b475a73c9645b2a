//! TEMPORARY until the suspension branch merges (deleted then): the signatures it provides.

use vsc_core::DomainError;
use vsc_store::Conn;
use vsc_store::cards::CardRow;

use super::{Principal, Vsc};
use crate::ServiceError;

impl Vsc {
    /// Provided by suspension.rs.
    pub(crate) async fn apply_card_resume(&self, _: &mut Conn, _: &Principal, _: &CardRow) -> Result<(), ServiceError> {
        Err(DomainError::InvalidState("suspension is not merged yet".into()).into())
    }

    /// Provided by suspension.rs.
    pub(crate) async fn suspend_holder_cards(
        &self,
        _: &mut Conn,
        _: vsc_core::Actor,
        _: &str,
        _: &str,
    ) -> Result<Vec<String>, ServiceError> {
        Err(DomainError::InvalidState("suspension is not merged yet".into()).into())
    }
}
