//! The second-factor ledger at every door that checks a one-time code (app/TOTP codes, SMS codes
//! of sign-in, enrolment, reset and mobile verification, emailed device codes). Each check first
//! reserves its place — in the challenge (5 attempts, then void) and in the holder's own count
//! (10 wrong codes within 24 h lock the cards) — inside the caller's transaction, before the code
//! is compared; a right code gives the holder's reservation back.

use vsc_store::code_ledger::{self, CHALLENGE_MAX_ATTEMPTS, CodeChallenge};
use vsc_store::{Conn, users};

use super::Vsc;
use crate::ServiceError;
use crate::notify::templates::LockCause;

/// May a code be compared? The answer of [`Vsc::reserve_code_check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CodeTurn {
    /// Yes: this is the challenge's `attempt`-th code.
    Check {
        /// The attempt's number on the challenge (1 to 5).
        attempt: i64,
        /// The holder's failures in the window, this reservation included.
        failures: i64,
    },
    /// No: the challenge has had its 5 attempts.
    ChallengeSpent,
    /// No: the holder entered 10 wrong codes within 24 h.
    HolderLimit,
}

/// What a wrong code led to (see [`Vsc::settle_wrong_code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WrongCode {
    /// Attempts spent on the challenge.
    pub attempts: i64,
    /// The challenge is void now.
    pub void: bool,
    /// This code locked the holder's cards (or the holder's limit refused it).
    pub locked: bool,
}

impl WrongCode {
    /// Attempts the challenge has left.
    pub fn left(&self) -> i64 {
        (CHALLENGE_MAX_ATTEMPTS - self.attempts).max(0)
    }

    /// For an audit event's detail.
    pub fn detail(&self) -> serde_json::Value {
        serde_json::json!({ "attempts": self.attempts, "void": self.void, "second_factor_locked": self.locked })
    }

    /// The answer for the holder: how many attempts are left, or that `restart` is needed.
    pub fn error(&self, restart: &str) -> ServiceError {
        self.answer("the code is wrong", restart)
    }

    /// [`WrongCode::error`] for an authenticator's app code, which also fails when used already.
    pub fn app_code_error(&self, restart: &str) -> ServiceError {
        self.answer("the code is wrong or was used already", restart)
    }

    fn answer(&self, wrong: &str, restart: &str) -> ServiceError {
        let message = if self.locked {
            "too many wrong codes were entered: your card is locked; contact your Registration Authority (RA)"
                .to_string()
        } else if self.void {
            format!("the code is wrong; {restart}")
        } else {
            format!("{wrong}; {} attempt(s) left", self.left())
        };
        vsc_core::DomainError::invalid("code", message).into()
    }
}

impl Vsc {
    /// Reserve one code check on `challenge` for `user_id` in `tx`: the challenge's attempt first,
    /// then the holder's ledger. A [`CodeTurn::Check`] must be settled: right codes with
    /// [`Vsc::settle_right_code`], wrong ones with [`Vsc::settle_wrong_code`].
    pub(crate) async fn reserve_code_check(
        &self,
        tx: &mut Conn,
        user_id: &str,
        challenge: CodeChallenge<'_>,
    ) -> Result<CodeTurn, ServiceError> {
        let Some(attempt) = code_ledger::reserve_challenge_attempt(tx, challenge).await? else {
            return Ok(CodeTurn::ChallengeSpent);
        };
        self.reserve_holder_code(tx, user_id, attempt).await
    }

    /// The holder's half of [`Vsc::reserve_code_check`], for a challenge whose attempt the caller
    /// reserved itself (`attempt`).
    pub(crate) async fn reserve_holder_code(
        &self,
        tx: &mut Conn,
        user_id: &str,
        attempt: i64,
    ) -> Result<CodeTurn, ServiceError> {
        let now = self.now().unix_timestamp();
        Ok(match code_ledger::reserve_holder_failure(tx, user_id, now).await? {
            Some(failures) => CodeTurn::Check { attempt, failures },
            None => CodeTurn::HolderLimit,
        })
    }

    /// A right code: the holder's reservation is given back.
    pub(crate) async fn settle_right_code(&self, tx: &mut Conn, user_id: &str) -> Result<(), ServiceError> {
        code_ledger::refund_holder_failure(tx, user_id).await?;
        Ok(())
    }

    /// A wrong code (or a refused turn): at the holder's 10th wrong code within 24 h the cards
    /// lock, as after 3 wrong passcodes, audited `holder.second_factor_locked` with `door`.
    pub(crate) async fn settle_wrong_code(
        &self,
        tx: &mut Conn,
        user: &users::UserRow,
        turn: CodeTurn,
        door: &'static str,
    ) -> Result<WrongCode, ServiceError> {
        Ok(match turn {
            CodeTurn::Check { attempt, failures } => {
                let locked = failures >= code_ledger::HOLDER_MAX_FAILURES;
                if locked {
                    let detail = serde_json::json!({ "door": door, "failures": failures });
                    self.lock_holder_cards(tx, user, LockCause::SecondFactor, "holder.second_factor_locked", detail)
                        .await?;
                }
                WrongCode { attempts: attempt, void: attempt >= CHALLENGE_MAX_ATTEMPTS, locked }
            }
            CodeTurn::ChallengeSpent => WrongCode { attempts: CHALLENGE_MAX_ATTEMPTS, void: true, locked: false },
            CodeTurn::HolderLimit => WrongCode { attempts: CHALLENGE_MAX_ATTEMPTS, void: true, locked: true },
        })
    }
}
