//! Self-Service Portal sessions: opened by a completed sign-in, ended by signing out, by
//! `portal.idle_minutes` without use, and — with the holder's card sessions — whenever the
//! credentials behind them change (new passcode, card lock, suspension, email or mobile change).

use time::Duration;
use vsc_core::enrolment::{self as rules};
use vsc_crypto::{SecretToken, TokenHash};
use vsc_proto::SessionView;
use vsc_store::{Conn, holders, resets};

use super::holder::Holder;
use super::{Vsc, new_id};
use crate::ServiceError;

/// A session's last use is written at most this often (seconds), not on every request.
const TOUCH_EVERY_SECONDS: i64 = 60;

/// What [`Vsc::end_holder_sessions`] ended.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct EndedSessions {
    /// Self-Service Portal sessions.
    pub portal: u64,
    /// Card sessions.
    pub card: u64,
}

impl EndedSessions {
    /// For an audit event's detail.
    pub fn detail(&self) -> serde_json::Value {
        serde_json::json!({ "portal": self.portal, "card": self.card })
    }
}

impl Vsc {
    /// Open a holder session (inside the caller's transaction).
    pub(crate) async fn open_session(&self, conn: &mut Conn, user_id: &str) -> Result<SessionView, ServiceError> {
        let now = self.now();
        let expires = now + Duration::seconds(rules::SESSION_SECONDS);
        let token = SecretToken::generate("vss");
        holders::create_session(
            conn,
            &new_id(),
            &token.hash().0,
            user_id,
            now.unix_timestamp(),
            expires.unix_timestamp(),
        )
        .await?;
        Ok(SessionView { session: token.expose().to_string(), expires_at: expires })
    }

    /// The holder of a live session token; the session counts as used now.
    pub async fn holder_session(&self, token: &str) -> Result<Holder, ServiceError> {
        let presented = TokenHash::of(token);
        let now = self.now().unix_timestamp();
        let idle_cut = now - self.config.portal.idle_minutes * 60;
        let unauth = || ServiceError::Unauthenticated("sign in to the Self-Service Portal".into());
        let live = {
            let mut conn = self.store.conn().await?;
            holders::session(&mut conn, &presented.0, now, idle_cut).await?.ok_or_else(unauth)?
        };
        if !TokenHash::from_slice(&live.token_hash).is_some_and(|s| s.matches(&presented)) {
            return Err(unauth());
        }
        if now - live.last_used_at >= TOUCH_EVERY_SECONDS {
            let mut conn = self.store.writer().await?;
            holders::touch_session(&mut conn, &presented.0, now).await?;
        }
        Ok(Holder { user_id: live.user_id })
    }

    /// End a session.
    pub async fn sign_out(&self, token: &str) -> Result<(), ServiceError> {
        let mut conn = self.store.conn().await?;
        holders::end_session(&mut conn, &TokenHash::of(token).0, self.now().unix_timestamp()).await?;
        Ok(())
    }

    /// End every portal session and every card session of a holder, in the caller's
    /// transaction (the credentials behind them changed).
    pub(crate) async fn end_holder_sessions(
        &self,
        tx: &mut Conn,
        user_id: &str,
        at: i64,
    ) -> Result<EndedSessions, ServiceError> {
        Ok(EndedSessions {
            portal: holders::end_sessions_for_user(tx, user_id, at).await?,
            card: resets::end_sessions_for_user(tx, user_id, at).await?,
        })
    }
}
