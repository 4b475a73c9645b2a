//! Cards: types, states, serials and key algorithms.

use std::fmt;

use time::{Duration, OffsetDateTime};

use crate::{DomainError, RandomSource};

/// V1 (authentication key only) or V2 (authentication + AdES signing key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardType {
    /// Authentication key only.
    V1,
    /// Authentication key plus AdES signing key.
    V2,
}

impl CardType {
    /// Parse `v1` / `v2` (any case).
    pub fn parse(field: &'static str, s: &str) -> Result<Self, DomainError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "v1" => Ok(CardType::V1),
            "v2" => Ok(CardType::V2),
            _ => Err(DomainError::invalid(field, format!("{s:?} is not a card type (v1 or v2)"))),
        }
    }

    /// Wire / stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            CardType::V1 => "v1",
            CardType::V2 => "v2",
        }
    }

    /// The keys a card of this type holds.
    pub fn key_purposes(self) -> &'static [KeyPurpose] {
        match self {
            CardType::V1 => &[KeyPurpose::Authentication],
            CardType::V2 => &[KeyPurpose::Authentication, KeyPurpose::Signing],
        }
    }

    /// Serial prefix: V2 serials begin with `150` (a rule of the product), V1 with `100`.
    pub fn serial_prefix(self) -> &'static str {
        match self {
            CardType::V1 => "100",
            CardType::V2 => "150",
        }
    }
}

/// Card life-cycle state: `issued` → `active` ⇄ `locked` → `revoked`; `active`/`locked` ⇄
/// `suspended` (reversible; resuming restores the state before); `expired` by date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardState {
    /// Issued, awaiting enrolment.
    Issued,
    /// Enrolled and usable.
    Active,
    /// Locked after wrong passcodes.
    Locked,
    /// Suspended by the RA or the holder: unusable, certificates on hold, until resumed.
    Suspended,
    /// Revoked for good.
    Revoked,
}

impl CardState {
    /// Parse a stored state.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "issued" => CardState::Issued,
            "active" => CardState::Active,
            "locked" => CardState::Locked,
            "suspended" => CardState::Suspended,
            "revoked" => CardState::Revoked,
            _ => return None,
        })
    }

    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            CardState::Issued => "issued",
            CardState::Active => "active",
            CardState::Locked => "locked",
            CardState::Suspended => "suspended",
            CardState::Revoked => "revoked",
        }
    }

    /// The state shown to people: a card past its expiry reads `expired` whatever it stored.
    pub fn effective(self, expires_at: OffsetDateTime, now: OffsetDateTime) -> &'static str {
        if self != CardState::Revoked && now >= expires_at { "expired" } else { self.as_str() }
    }

    /// Revoking is allowed from every state except `revoked`.
    pub fn revoke(self) -> Result<CardState, DomainError> {
        match self {
            CardState::Revoked => Err(DomainError::InvalidState("the card is already revoked".into())),
            _ => Ok(CardState::Revoked),
        }
    }

    /// Suspending is allowed from `active` and `locked`; the state returned is the one resuming
    /// restores.
    pub fn suspend(self) -> Result<CardState, DomainError> {
        match self {
            CardState::Active | CardState::Locked => Ok(self),
            CardState::Suspended => Err(DomainError::InvalidState("the card is already suspended".into())),
            other => Err(DomainError::InvalidState(format!(
                "the card is {}: only an active or locked card can be suspended",
                other.as_str()
            ))),
        }
    }

    /// Resuming is allowed from `suspended` only, back to the state it was suspended from
    /// (`active` or `locked`, as stored).
    pub fn resume(self, suspended_from: Option<&str>) -> Result<CardState, DomainError> {
        if self != CardState::Suspended {
            return Err(DomainError::InvalidState(format!(
                "the card is {}: only a suspended card can be resumed",
                self.as_str()
            )));
        }
        match suspended_from.and_then(CardState::parse) {
            Some(s @ (CardState::Active | CardState::Locked)) => Ok(s),
            _ => Err(DomainError::InvalidState("the card's state before suspension is unknown".into())),
        }
    }
}

/// Which key of a card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyPurpose {
    /// Authentication (digitalSignature, clientAuth).
    Authentication,
    /// AdES signing (nonRepudiation).
    Signing,
}

impl KeyPurpose {
    /// Stored / wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyPurpose::Authentication => "authentication",
            KeyPurpose::Signing => "signing",
        }
    }

    /// Parse a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "authentication" => Some(KeyPurpose::Authentication),
            "signing" => Some(KeyPurpose::Signing),
            _ => None,
        }
    }
}

/// Key algorithm of a card profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// ECDSA P-256 with SHA-256 (default: fast and compact).
    P256,
    /// RSA-2048 PKCS#1 v1.5 with SHA-256, for relying parties that need RSA.
    Rsa2048,
}

impl KeyAlgorithm {
    /// Parse `p256` / `rsa2048`.
    pub fn parse(field: &'static str, s: &str) -> Result<Self, DomainError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "p256" | "p-256" | "ecdsa-p256" => Ok(KeyAlgorithm::P256),
            "rsa2048" | "rsa-2048" => Ok(KeyAlgorithm::Rsa2048),
            _ => Err(DomainError::invalid(field, format!("{s:?} is not a key algorithm (p256 or rsa2048)"))),
        }
    }

    /// Stored / wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::P256 => "p256",
            KeyAlgorithm::Rsa2048 => "rsa2048",
        }
    }
}

/// A card serial: 16 digits, the type's prefix then random digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardSerial(String);

impl CardSerial {
    /// A fresh random serial for a card of `card_type`.
    pub fn generate(card_type: CardType, rng: &mut dyn RandomSource) -> Self {
        CardSerial(format!("{}{}", card_type.serial_prefix(), rng.digits(13)))
    }

    /// Validate a serial from a path or command line.
    pub fn parse(field: &'static str, s: &str) -> Result<Self, DomainError> {
        let s = s.trim();
        if s.len() != 16 || !s.chars().all(|c| c.is_ascii_digit()) {
            return Err(DomainError::invalid(field, "a card serial has 16 digits"));
        }
        Ok(CardSerial(s.to_string()))
    }

    /// The serial.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CardSerial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Default card validity in days.
pub const DEFAULT_CARD_VALIDITY_DAYS: i64 = 3 * 365;

/// The expiry of a card issued at `now` valid for `days` days, truncated to whole seconds.
pub fn card_expiry(now: OffsetDateTime, days: i64) -> OffsetDateTime {
    let t = now + Duration::days(days);
    t.replace_nanosecond(0).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Counter(u8);
    impl RandomSource for Counter {
        fn fill(&mut self, buf: &mut [u8]) {
            for b in buf {
                self.0 = self.0.wrapping_add(37);
                *b = self.0;
            }
        }
    }

    #[test]
    fn v2_serials_begin_with_150() {
        let mut rng = Counter(0);
        for _ in 0..50 {
            let s = CardSerial::generate(CardType::V2, &mut rng);
            assert!(s.as_str().starts_with("150"));
            assert_eq!(s.as_str().len(), 16);
            assert!(CardSerial::parse("serial", s.as_str()).is_ok());
            assert!(!CardSerial::generate(CardType::V1, &mut rng).as_str().starts_with("150"));
        }
    }

    #[test]
    fn states_follow_the_life_cycle() {
        assert_eq!(CardState::Active.revoke().unwrap(), CardState::Revoked);
        assert!(CardState::Revoked.revoke().is_err());
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(100);
        assert_eq!(CardState::Active.effective(now, now), "expired");
        assert_eq!(CardState::Revoked.effective(now, now), "revoked");
        assert_eq!(CardState::Issued.effective(now + Duration::days(1), now), "issued");
    }

    #[test]
    fn suspension_is_reversible_to_the_state_before() {
        assert_eq!(CardState::parse("suspended"), Some(CardState::Suspended));
        assert_eq!(CardState::Suspended.as_str(), "suspended");
        assert_eq!(CardState::Active.suspend().unwrap(), CardState::Active);
        assert_eq!(CardState::Locked.suspend().unwrap(), CardState::Locked);
        for s in [CardState::Issued, CardState::Suspended, CardState::Revoked] {
            assert!(s.suspend().is_err(), "{s:?}");
        }
        assert_eq!(CardState::Suspended.resume(Some("locked")).unwrap(), CardState::Locked);
        assert_eq!(CardState::Suspended.resume(Some("active")).unwrap(), CardState::Active);
        assert!(CardState::Suspended.resume(Some("revoked")).is_err());
        assert!(CardState::Suspended.resume(None).is_err());
        assert!(CardState::Active.resume(Some("active")).is_err());
        assert_eq!(CardState::Suspended.revoke().unwrap(), CardState::Revoked);
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(100);
        assert_eq!(CardState::Suspended.effective(now + Duration::days(1), now), "suspended");
    }

    #[test]
    fn only_v2_has_a_signing_key() {
        assert_eq!(CardType::V1.key_purposes(), &[KeyPurpose::Authentication]);
        assert_eq!(CardType::V2.key_purposes().len(), 2);
    }
}
