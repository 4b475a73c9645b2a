//! Enrolment and holder sign-in rules: the passcode policy, security answers, one-time codes,
//! link lifetimes and lockout thresholds.

use crate::{DomainError, RandomSource};

/// An enrolment link is valid this many days.
pub const LINK_DAYS: i64 = 14;
/// A one-time code (SMS) is valid this many seconds.
pub const CODE_TTL_SECONDS: i64 = 10 * 60;
/// Wrong codes allowed before a code is void.
pub const CODE_MAX_ATTEMPTS: i64 = 5;
/// Wrong second-factor codes a holder may enter, across challenges, within
/// [`HOLDER_CODE_WINDOW_SECONDS`]; the last of them locks the holder's cards.
pub const HOLDER_CODE_MAX_FAILURES: i64 = 10;
/// The holder's second-factor window, opened by the first counted wrong code.
pub const HOLDER_CODE_WINDOW_SECONDS: i64 = 24 * 3600;
/// A new code may be sent at most once per this many seconds.
pub const CODE_RESEND_SECONDS: i64 = 60;
/// Lifetime of a holder session.
pub const SESSION_SECONDS: i64 = 8 * 60 * 60;
/// Number of security questions a holder answers.
pub const QUESTIONS_REQUIRED: usize = 3;

/// A passcode that meets the policy: 4–8 characters, letters and digits only, at least one
/// letter and one digit.
pub struct Passcode(String);

impl Passcode {
    /// Check every rule and report all that are broken, each in its own words.
    pub fn parse(field: &'static str, input: &str) -> Result<Self, DomainError> {
        let n = input.chars().count();
        let mut broken = Vec::new();
        if !(4..=8).contains(&n) {
            broken.push("must be 4 to 8 characters long");
        }
        if input.chars().any(|c| !c.is_ascii_alphanumeric()) {
            broken.push("may contain only letters and digits");
        }
        if !input.chars().any(|c| c.is_ascii_alphabetic()) {
            broken.push("needs at least one letter");
        }
        if !input.chars().any(|c| c.is_ascii_digit()) {
            broken.push("needs at least one digit");
        }
        if broken.is_empty() {
            Ok(Passcode(input.to_string()))
        } else {
            Err(DomainError::invalid(field, format!("the passcode {}", broken.join("; "))))
        }
    }

    /// The passcode text (only ever passed to the hasher).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A security answer as compared: trimmed, inner whitespace collapsed, case-folded.
pub fn normalise_answer(answer: &str) -> String {
    answer.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// Validate the three answers: three different questions, each answered (2–100 characters).
pub fn check_answers(field: &'static str, answers: &[(i64, String)]) -> Result<Vec<(i64, String)>, DomainError> {
    if answers.len() != QUESTIONS_REQUIRED {
        return Err(DomainError::invalid(field, "answer exactly 3 security questions"));
    }
    let mut ids: Vec<i64> = answers.iter().map(|(q, _)| *q).collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.len() != QUESTIONS_REQUIRED {
        return Err(DomainError::invalid(field, "choose 3 different security questions"));
    }
    answers
        .iter()
        .map(|(q, a)| {
            let norm = normalise_answer(a);
            if !(2..=100).contains(&norm.chars().count()) {
                return Err(DomainError::invalid(field, "each answer needs 2 to 100 characters"));
            }
            Ok((*q, norm))
        })
        .collect()
}

/// A fresh 6-digit one-time code.
pub fn one_time_code(rng: &mut dyn RandomSource) -> String {
    rng.digits(6)
}

/// Whether `input` looks like a 6-digit code (spaces ignored).
pub fn clean_code(input: &str) -> Option<String> {
    let c: String = input.chars().filter(|c| !c.is_whitespace()).collect();
    (c.len() == 6 && c.chars().all(|c| c.is_ascii_digit())).then_some(c)
}

/// The last digits of a mobile number, for "we sent a code to •••• 0123".
pub fn mobile_hint(mobile: &str) -> String {
    let digits: Vec<char> = mobile.chars().filter(char::is_ascii_digit).collect();
    let tail: String = digits.iter().skip(digits.len().saturating_sub(4)).collect();
    format!("•••• {tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(input: &str) -> String {
        match Passcode::parse("passcode", input) {
            Err(DomainError::Invalid { field, message }) => {
                assert_eq!(field, "passcode");
                message
            }
            other => panic!("{input:?} accepted: {:?}", other.map(|p| p.0)),
        }
    }

    #[test]
    fn every_passcode_rule_has_its_message() {
        assert!(Passcode::parse("p", "ab12").is_ok());
        assert!(Passcode::parse("p", "Abcdef12").is_ok());
        assert!(message("a1").contains("4 to 8"));
        assert!(message("abc123456").contains("4 to 8"));
        assert!(message("ab 12").contains("only letters and digits"));
        assert!(message("ab-12").contains("only letters and digits"));
        assert!(message("1234").contains("at least one letter"));
        assert!(message("abcd").contains("at least one digit"));
        assert!(message("äb12").contains("only letters and digits"));
        let all = message("!");
        for part in ["4 to 8", "only letters", "one letter", "one digit"] {
            assert!(all.contains(part), "{all}");
        }
    }

    #[test]
    fn answers_are_normalised_and_checked() {
        assert_eq!(normalise_answer("  The   Beatles "), "the beatles");
        let ok = check_answers("a", &[(1, " Rex ".into()), (2, "Leeds".into()), (3, "BLUE".into())]).unwrap();
        assert_eq!(ok[0].1, "rex");
        assert_eq!(ok[2].1, "blue");
        assert!(check_answers("a", &[(1, "aa".into()), (1, "bb".into()), (3, "cc".into())]).is_err());
        assert!(check_answers("a", &[(1, "aa".into()), (2, "bb".into())]).is_err());
        assert!(check_answers("a", &[(1, "a".into()), (2, "bb".into()), (3, "cc".into())]).is_err());
    }

    #[test]
    fn codes_and_hints() {
        assert_eq!(clean_code(" 123 456 ").as_deref(), Some("123456"));
        assert_eq!(clean_code("12345"), None);
        assert_eq!(clean_code("12345a"), None);
        assert_eq!(mobile_hint("+447700900123"), "•••• 0123");
    }
}
