//! Registration Authority staff.

use crate::DomainError;

/// What an RA staff account may do within its organisations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaffRole {
    /// Everything in their organisations, including staff, settings and new organisations.
    Manager,
    /// Users, cards and devices; no settings.
    Agent,
}

impl StaffRole {
    /// Parse `manager` / `agent`.
    pub fn parse(field: &'static str, s: &str) -> Result<Self, DomainError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "manager" => Ok(StaffRole::Manager),
            "agent" => Ok(StaffRole::Agent),
            _ => Err(DomainError::invalid(field, format!("{s:?} is not a staff role (manager or agent)"))),
        }
    }

    /// Stored / wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            StaffRole::Manager => "manager",
            StaffRole::Agent => "agent",
        }
    }
}
