//! Email addresses and email domains, validated the way RA staff expect (apostrophes allowed in the
//! local part, e.g. `o'brien@nhs.net`).

use std::fmt;

use crate::DomainError;

/// A syntactically valid email address. Case is kept as entered; comparison uses [`Self::key`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAddress {
    address: String,
}

/// A DNS domain that an organisation allows for its users' emails, stored lower-case.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct EmailDomain(String);

const LOCAL_SPECIALS: &str = "!#$%&'*+/=?^_`{|}~-.";

impl EmailAddress {
    /// Validate an address (field name `field` is reported on error).
    pub fn parse(field: &'static str, input: &str) -> Result<Self, DomainError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(DomainError::invalid(field, "an email address is required"));
        }
        if s.len() > 254 {
            return Err(DomainError::invalid(field, "an email address has at most 254 characters"));
        }
        let Some((local, domain)) = s.rsplit_once('@') else {
            return Err(DomainError::invalid(field, "an email address needs an @"));
        };
        if local.is_empty() || local.len() > 64 {
            return Err(DomainError::invalid(field, "the part before @ must have 1 to 64 characters"));
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return Err(DomainError::invalid(field, "the part before @ has a misplaced dot"));
        }
        if let Some(c) = local.chars().find(|c| !(c.is_ascii_alphanumeric() || LOCAL_SPECIALS.contains(*c))) {
            return Err(DomainError::invalid(field, format!("the character {c:?} is not allowed before @")));
        }
        EmailDomain::parse(field, domain)?;
        Ok(EmailAddress { address: s.to_string() })
    }

    /// The address as entered (trimmed).
    pub fn as_str(&self) -> &str {
        &self.address
    }

    /// The case-insensitive uniqueness key: the whole address lower-cased.
    pub fn key(&self) -> String {
        self.address.to_lowercase()
    }

    /// The domain part, lower-cased.
    pub fn domain(&self) -> EmailDomain {
        let d = self.address.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
        EmailDomain(d.to_ascii_lowercase())
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.address)
    }
}

impl EmailDomain {
    /// Validate a domain such as `nhs.net` (at least two labels, letters, digits and hyphens).
    pub fn parse(field: &'static str, input: &str) -> Result<Self, DomainError> {
        let d = input.trim().trim_start_matches('@').to_ascii_lowercase();
        if d.is_empty() || d.len() > 253 {
            return Err(DomainError::invalid(field, "a domain must have 1 to 253 characters"));
        }
        let labels: Vec<&str> = d.split('.').collect();
        if labels.len() < 2 {
            return Err(DomainError::invalid(field, format!("{d:?} is not a domain (it needs a dot, e.g. nhs.net)")));
        }
        for label in labels {
            let ok = !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            if !ok {
                return Err(DomainError::invalid(field, format!("{d:?} is not a valid domain")));
            }
        }
        Ok(EmailDomain(d))
    }

    /// The domain, lower-case.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apostrophes_are_allowed_in_the_local_part() {
        let e = EmailAddress::parse("email", "Sean.O'Brien@NHS.net").unwrap();
        assert_eq!(e.as_str(), "Sean.O'Brien@NHS.net");
        assert_eq!(e.key(), "sean.o'brien@nhs.net");
        assert_eq!(e.domain().as_str(), "nhs.net");
    }

    #[test]
    fn bad_addresses_are_refused_with_the_field_named() {
        for bad in ["", "no-at", "@nhs.net", "a@nhs", "a..b@nhs.net", "a b@nhs.net", "a@-x.net", "a@x..net"] {
            match EmailAddress::parse("email", bad) {
                Err(DomainError::Invalid { field, .. }) => assert_eq!(field, "email", "{bad}"),
                other => panic!("{bad:?} accepted: {other:?}"),
            }
        }
    }

    #[test]
    fn domains_are_lower_cased() {
        assert_eq!(EmailDomain::parse("d", " NHS.Net ").unwrap().as_str(), "nhs.net");
        assert!(EmailDomain::parse("d", "localhost").is_err());
    }
}
