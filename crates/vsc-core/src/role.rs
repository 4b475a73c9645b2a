//! The role catalogue: codes such as `R8000` carried on cards.

use crate::DomainError;

/// Roles seeded into every database; they cannot be deleted.
pub const DEFAULT_ROLES: &[(&str, &str)] = &[
    ("R8000", "Clinical Practitioner Access Role"),
    ("R8003", "Health Professional Access Role"),
    ("R8008", "Admin/Clinical Support Access Role"),
];

/// A role code: 2–16 upper-case letters and digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RoleCode(String);

impl RoleCode {
    /// Validate and upper-case a role code.
    pub fn parse(field: &'static str, input: &str) -> Result<Self, DomainError> {
        let s = input.trim().to_ascii_uppercase();
        if !(2..=16).contains(&s.len()) || !s.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(DomainError::invalid(field, format!("{input:?} is not a role code (e.g. R8000)")));
        }
        Ok(RoleCode(s))
    }

    /// Validate a card's role list: at least one, no duplicates, sorted.
    pub fn parse_list(field: &'static str, inputs: &[String]) -> Result<Vec<RoleCode>, DomainError> {
        if inputs.is_empty() {
            return Err(DomainError::invalid(field, "a card needs at least one role"));
        }
        let mut roles = inputs.iter().map(|r| RoleCode::parse(field, r)).collect::<Result<Vec<_>, _>>()?;
        roles.sort();
        let before = roles.len();
        roles.dedup();
        if roles.len() != before {
            return Err(DomainError::invalid(field, "a role is listed twice"));
        }
        Ok(roles)
    }

    /// The code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_lists_are_validated() {
        let r = RoleCode::parse_list("roles", &["r8003".into(), "R8000".into()]).unwrap();
        assert_eq!(r.iter().map(RoleCode::as_str).collect::<Vec<_>>(), ["R8000", "R8003"]);
        assert!(RoleCode::parse_list("roles", &[]).is_err());
        assert!(RoleCode::parse_list("roles", &["R8000".into(), "r8000".into()]).is_err());
        assert!(RoleCode::parse_list("roles", &["R 80".into()]).is_err());
    }
}
