//! Decoy logins. A passwordless (push-only) login names only an email, so its answer must not
//! tell which emails have a usable card: an email that cannot log in — unknown, or without an
//! active card with an authenticator — gets a login id all the same. The decoy stays pending,
//! counts codes typed for it as a real login does, refuses a session, and expires.

use std::time::Duration;

use vsc_crypto::{SecretToken, TokenHash};
use vsc_proto::{CardLoginView, LoginStateView};
use vsc_store::code_ledger::CHALLENGE_MAX_ATTEMPTS;
use vsc_store::decoy_logins::{self, DecoyLogin};

use super::second_factor::WrongCode;
use super::{Vsc, ts};
use crate::ServiceError;

/// A decoy's state, as a real login's would read.
fn state_of(d: &DecoyLogin, now: i64) -> &'static str {
    if d.code_attempts >= CHALLENGE_MAX_ATTEMPTS {
        "denied"
    } else if d.expires_at <= now {
        "expired"
    } else {
        "pending"
    }
}

impl Vsc {
    /// Answer a passwordless push login for `email_key` that cannot proceed, as if it had
    /// started: a login id, a number when numbers are matched, the expiry. Throttled as real
    /// unanswered pushes are.
    pub(crate) async fn start_decoy_login(
        &self,
        email_key: &str,
        number_matching: bool,
    ) -> Result<CardLoginView, ServiceError> {
        let now = self.now().unix_timestamp();
        let email_hash = TokenHash::of(email_key).0;
        let mut tx = self.store.begin().await?;
        let recent = decoy_logins::recent(&mut tx, &email_hash, now - super::login::PUSH_WINDOW_SECONDS).await?;
        if recent >= self.config.login.push_limit {
            return Err(ServiceError::RateLimited(super::login::PUSH_THROTTLED.into()));
        }
        let token = SecretToken::generate("vcl");
        let expires_at = now + super::login::CHALLENGE_SECONDS;
        decoy_logins::insert(&mut tx, &token.hash().0, &email_hash, now, expires_at).await?;
        tx.commit().await.map_err(vsc_store::StoreError::from)?;
        Ok(CardLoginView {
            login: token.expose().to_string(),
            method: "push".into(),
            number: number_matching.then(super::login::random_number),
            qr_uri: None,
            qr_svg: None,
            expires_at: ts(expires_at),
        })
    }

    /// The decoy with this login id, if it is one.
    async fn decoy(&self, token: &str) -> Result<Option<DecoyLogin>, ServiceError> {
        let presented = TokenHash::of(token);
        let mut conn = self.store.conn().await?;
        let d = decoy_logins::by_token_hash(&mut conn, &presented.0).await?;
        Ok(d.filter(|d| TokenHash::from_slice(&d.token_hash).is_some_and(|s| s.matches(&presented))))
    }

    /// A decoy's state, waiting up to `wait` while it is pending (nobody will answer it).
    pub(crate) async fn decoy_login_state(
        &self,
        token: &str,
        wait: Duration,
    ) -> Result<Option<LoginStateView>, ServiceError> {
        let Some(d) = self.decoy(token).await? else { return Ok(None) };
        let now = self.now().unix_timestamp();
        if state_of(&d, now) == "pending" {
            let left = u64::try_from(d.expires_at - now).unwrap_or(0);
            tokio::time::sleep(wait.min(Duration::from_secs(left))).await;
        }
        let d = self.decoy(token).await?.unwrap_or(d);
        let state = state_of(&d, self.now().unix_timestamp());
        Ok(Some(LoginStateView {
            state: state.into(),
            card: None,
            roles: None,
            approved_by: (state == "denied").then(|| "code".into()),
            expires_at: ts(d.expires_at),
        }))
    }

    /// A code typed for a decoy: counted and refused as a wrong code is on a real login.
    pub(crate) async fn decoy_login_code(&self, token: &str) -> Result<Option<ServiceError>, ServiceError> {
        let Some(d) = self.decoy(token).await? else { return Ok(None) };
        let now = self.now().unix_timestamp();
        let state = state_of(&d, now);
        if state != "pending" {
            return Ok(Some(vsc_core::DomainError::InvalidState(format!("this login is {state}; start again")).into()));
        }
        let mut conn = self.store.writer().await?;
        Ok(Some(match decoy_logins::count_code(&mut conn, &d.token_hash, CHALLENGE_MAX_ATTEMPTS).await? {
            Some(attempts) => WrongCode { attempts, void: attempts >= CHALLENGE_MAX_ATTEMPTS, locked: false }
                .app_code_error("this login is denied, start again"),
            None => vsc_core::DomainError::InvalidState("this login is denied; start again".into()).into(),
        }))
    }

    /// A session asked for a decoy: refused as for a login not approved.
    pub(crate) async fn decoy_login_session(&self, token: &str) -> Result<Option<ServiceError>, ServiceError> {
        let Some(d) = self.decoy(token).await? else { return Ok(None) };
        let state = state_of(&d, self.now().unix_timestamp());
        Ok(Some(
            vsc_core::DomainError::InvalidState(format!("this login is not approved (it is {state}); start again"))
                .into(),
        ))
    }
}
