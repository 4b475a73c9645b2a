//! Domain errors: a rule was broken by input or by state.

/// A domain rule that a request broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// A field's value is not acceptable.
    #[error("{field}: {message}")]
    Invalid {
        /// Request field name.
        field: &'static str,
        /// What is wrong, for a person.
        message: String,
    },
    /// The object is not in a state that allows the action.
    #[error("{0}")]
    InvalidState(String),
}

impl DomainError {
    /// Shorthand for an invalid field.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        DomainError::Invalid { field, message: message.into() }
    }
}
