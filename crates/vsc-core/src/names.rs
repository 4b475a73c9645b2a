//! Names and identifiers typed in by RA staff.

use std::fmt;

use crate::{DomainError, RandomSource};

/// A forename or surname: 1–200 characters, letters (any script), spaces, apostrophes, hyphens and
/// dots. Longer than 50 characters is fine (real names are).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    /// Validate a name; surrounding whitespace is trimmed and inner runs collapsed.
    pub fn parse(field: &'static str, input: &str) -> Result<Self, DomainError> {
        let s = input.split_whitespace().collect::<Vec<_>>().join(" ");
        if s.is_empty() {
            return Err(DomainError::invalid(field, "a name is required"));
        }
        if s.chars().count() > 200 {
            return Err(DomainError::invalid(field, "a name has at most 200 characters"));
        }
        if let Some(c) = s.chars().find(|c| !(c.is_alphabetic() || " '’-.".contains(*c))) {
            return Err(DomainError::invalid(field, format!("the character {c:?} is not allowed in a name")));
        }
        if !s.chars().any(char::is_alphabetic) {
            return Err(DomainError::invalid(field, "a name needs at least one letter"));
        }
        Ok(PersonName(s))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PersonName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An organisation code: 2–16 letters, digits or hyphens, stored upper-case (e.g. `RX1`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct OrgCode(String);

impl OrgCode {
    /// Validate and upper-case a code.
    pub fn parse(field: &'static str, input: &str) -> Result<Self, DomainError> {
        let s = input.trim().to_ascii_uppercase();
        let ok = (2..=16).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !ok {
            return Err(DomainError::invalid(field, "an organisation code has 2 to 16 letters, digits or hyphens"));
        }
        Ok(OrgCode(s))
    }

    /// The code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrgCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The subject common name that identifies a holder in certificates and in search
/// (`<FORENAME> <SURNAME> (<SUBJECTCN>)`). By default a 12-digit number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectCn(String);

impl SubjectCn {
    /// Validate a given CN: 1–64 characters, letters, digits, spaces, `.`, `-`, `_`.
    pub fn parse(field: &'static str, input: &str) -> Result<Self, DomainError> {
        let s = input.trim();
        let ok =
            !s.is_empty() && s.chars().count() <= 64 && s.chars().all(|c| c.is_alphanumeric() || " .-_".contains(c));
        if !ok {
            return Err(DomainError::invalid(
                field,
                "a subject CN has 1 to 64 letters, digits, spaces, dots, hyphens or underscores",
            ));
        }
        Ok(SubjectCn(s.to_string()))
    }

    /// A fresh 12-digit CN whose first digit is not 0.
    pub fn generate(rng: &mut dyn RandomSource) -> Self {
        let first = char::from(b'1' + rng.below(9) as u8);
        SubjectCn(format!("{first}{}", rng.digits(11)))
    }

    /// The CN.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A mobile number: optional leading `+` and 7–15 digits; spaces, dashes and brackets are dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mobile(String);

impl Mobile {
    /// Validate and normalise a number.
    pub fn parse(field: &'static str, input: &str) -> Result<Self, DomainError> {
        let s: String = input.trim().chars().filter(|c| !" -()".contains(*c)).collect();
        let (plus, digits) = match s.strip_prefix('+') {
            Some(rest) => ("+", rest),
            None => ("", s.as_str()),
        };
        if !(7..=15).contains(&digits.len()) || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(DomainError::invalid(field, "a mobile number has 7 to 15 digits, optionally starting with +"));
        }
        Ok(Mobile(format!("{plus}{digits}")))
    }

    /// The normalised number.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The display and search string of a holder: `<FORENAME> <SURNAME> (<SUBJECTCN>)`.
pub fn display_name(forename: &str, surname: &str, subject_cn: &str) -> String {
    format!("{} {} ({subject_cn})", forename.to_uppercase(), surname.to_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_with_apostrophes_are_accepted() {
        let long = "Bartholomew-Alexander Maximilian O'Sullivan-Fitzgerald de la Montagne";
        assert!(long.len() > 50);
        assert_eq!(PersonName::parse("surname", long).unwrap().as_str(), long);
        assert_eq!(PersonName::parse("forename", "  D'Arcy   Ann ").unwrap().as_str(), "D'Arcy Ann");
    }

    #[test]
    fn names_with_digits_or_markup_are_refused() {
        assert!(PersonName::parse("forename", "R2D2").is_err());
        assert!(PersonName::parse("forename", "<script>").is_err());
        assert!(PersonName::parse("forename", "   ").is_err());
        assert!(PersonName::parse("forename", "'-").is_err());
    }

    #[test]
    fn codes_and_mobiles_normalise() {
        assert_eq!(OrgCode::parse("code", " rx1 ").unwrap().as_str(), "RX1");
        assert!(OrgCode::parse("code", "R").is_err());
        assert_eq!(Mobile::parse("mobile", "+44 7700 900-123").unwrap().as_str(), "+447700900123");
        assert!(Mobile::parse("mobile", "12ab").is_err());
    }

    #[test]
    fn display_name_follows_the_rule() {
        assert_eq!(display_name("Ann", "O'Neil", "123456789012"), "ANN O'NEIL (123456789012)");
    }
}
