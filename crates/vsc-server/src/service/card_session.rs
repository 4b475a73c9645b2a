//! Card sessions opened from an approved login, and the relying-app tickets they issue.

use vsc_core::{Actor, AuditRecord};
use vsc_crypto::{SecretToken, TokenHash};
use vsc_proto::{AppCreated, CardSessionStatus, CardSessionView, TicketOrganisation, TicketValidation, TicketView};
use vsc_store::logins::SessionRow;
use vsc_store::{StoreError, apps, cards, logins, organisations, users};

use super::{Vsc, new_id, ts};
use crate::ServiceError;

/// A ticket is valid this long.
pub const TICKET_SECONDS: i64 = 120;

/// Session use is recorded at most this often (seconds), to spare the database a write per call.
const TOUCH_EVERY_SECONDS: i64 = 30;

/// A live card session with its holder and card.
#[derive(Debug, Clone)]
pub struct CardSession {
    /// The session row.
    pub session: SessionRow,
    /// The holder.
    pub user: users::UserRow,
    /// The card.
    pub card: cards::CardRow,
}

use super::holder::{holder_event as session_event, holder_event_of};

impl Vsc {
    /// Open the card session of an approved login (once), in `role` (required when the card has
    /// several roles).
    pub async fn open_card_session(
        &self,
        login_token: &str,
        role: Option<&str>,
    ) -> Result<CardSessionView, ServiceError> {
        let presented = TokenHash::of(login_token);
        let now = self.now().unix_timestamp();
        let mut tx = self.store.begin().await?;
        let found = logins::by_token_hash(&mut tx, &presented.0).await?.filter(|l| {
            TokenHash::from_slice(&l.token_hash).is_some_and(|s| s.matches(&presented)) && l.purpose == "card"
        });
        let Some(login) = found else {
            drop(tx);
            return Err(match self.decoy_login_session(login_token).await? {
                Some(refused) => refused,
                None => ServiceError::not_found("login", "no such login; start again"),
            });
        };
        if login.state != "approved" {
            return Err(vsc_core::DomainError::InvalidState(format!(
                "this login is not approved (it is {}); start again",
                if login.state == "pending" && login.expires_at > now { "pending" } else { login.state.as_str() }
            ))
            .into());
        }
        // The card and holder as joined into the login row, read in this transaction.
        let (Some(card_id), Some(card_serial)) = (login.card_id.clone(), login.card_serial.clone()) else {
            return Err(ServiceError::not_found("login", "no such card"));
        };
        if login.card_state.as_deref() != Some("active") || login.card_expires_at.is_none_or(|e| e <= now) {
            return Err(vsc_core::DomainError::InvalidState("the card is no longer active".into()).into());
        }
        let roles: Vec<String> = login.card_roles.iter().map(|(code, _)| code.clone()).collect();
        let role = match (role.map(str::trim).filter(|r| !r.is_empty()), roles.as_slice()) {
            (Some(r), _) if roles.iter().any(|c| c.eq_ignore_ascii_case(r)) => {
                roles.iter().find(|c| c.eq_ignore_ascii_case(r)).cloned().unwrap_or_default()
            }
            (Some(r), _) => {
                return Err(vsc_core::DomainError::invalid(
                    "role",
                    format!("the card has no role {r}; it has {}", roles.join(", ")),
                )
                .into());
            }
            (None, [only]) => only.clone(),
            (None, _) => {
                return Err(vsc_core::DomainError::invalid(
                    "role",
                    format!("the card has several roles; choose one of {}", roles.join(", ")),
                )
                .into());
            }
        };
        if !logins::spend(&mut tx, &login.id, now).await? {
            return Err(ServiceError::LinkUsed("a session was already opened from this login; start again".into()));
        }
        let token = SecretToken::generate("vcs");
        // The holder's organisation's policy (read with the login), else the service default.
        let session_minutes = login.org_session_minutes.unwrap_or(self.config.login.session_minutes);
        let idle_minutes = login.org_idle_minutes.unwrap_or(self.config.login.idle_minutes).min(session_minutes);
        let expires = now + session_minutes * 60;
        let session = SessionRow {
            id: new_id(),
            token_hash: token.hash().0.to_vec(),
            user_id: login.user_id.clone(),
            card_id: card_id.clone(),
            login_id: login.id.clone(),
            role: role.clone(),
            method: login.decided_method.clone().unwrap_or_else(|| login.method.clone()),
            created_at: now,
            expires_at: expires,
            last_seen_at: now,
            ended_at: None,
            idle_seconds: idle_minutes * 60,
        };
        logins::insert_session(&mut tx, &session).await?;
        vsc_store::user_search::set_last_active(&mut tx, &login.user_id, now).await?;
        self.audit(
            &mut tx,
            holder_event_of(
                &login.holder_email,
                &login.holder_org_id,
                &login.user_id,
                "card.session_opened",
                serde_json::json!({ "session": session.id, "card": card_serial, "role": role, "method": session.method }),
            ),
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(CardSessionView { session: token.expose().to_string(), role, card: card_serial, expires_at: ts(expires) })
    }

    /// The live session behind a bearer token: not ended, not past its lifetime or idle timeout,
    /// and its card still active. Records the use.
    pub async fn card_session(&self, token: &str) -> Result<CardSession, ServiceError> {
        let presented = TokenHash::of(token);
        let now = self.now().unix_timestamp();
        let unauth = |why: &str| ServiceError::Unauthenticated(format!("no open card session: {why}; log in again"));
        let mut conn = self.store.conn().await?;
        let s = logins::session_by_token_hash(&mut conn, &presented.0)
            .await?
            .filter(|s| TokenHash::from_slice(&s.token_hash).is_some_and(|h| h.matches(&presented)))
            .ok_or_else(|| unauth("unknown session"))?;
        if s.ended_at.is_some() {
            return Err(unauth("the session was logged out"));
        }
        if s.expires_at <= now || s.last_seen_at + s.idle_seconds <= now {
            return Err(unauth("the session has expired"));
        }
        let card = cards::by_id(&mut conn, &s.card_id).await?.ok_or_else(|| unauth("the card is gone"))?;
        if card.state != "active" || card.expires_at <= now {
            let state = if card.expires_at <= now { "expired" } else { card.state.as_str() };
            return Err(unauth(&format!("the card is {state}")));
        }
        let user = users::by_id(&mut conn, &s.user_id).await?.ok_or_else(|| unauth("the holder is gone"))?;
        if now - s.last_seen_at >= TOUCH_EVERY_SECONDS {
            drop(conn);
            let mut tx = self.store.begin().await?;
            logins::touch_session(&mut tx, &s.id, now).await?;
            tx.commit().await.map_err(StoreError::from)?;
        }
        Ok(CardSession { session: s, user, card })
    }

    /// What `vsc card status` shows.
    pub async fn card_session_status(&self, token: &str) -> Result<CardSessionStatus, ServiceError> {
        let c = self.card_session(token).await?;
        let now = self.now().unix_timestamp();
        let idle_end = now + c.session.idle_seconds;
        Ok(CardSessionStatus {
            holder: vsc_core::names::display_name(&c.user.forename, &c.user.surname, &c.user.subject_cn),
            email: c.user.email,
            card: c.card.serial,
            card_type: c.card.card_type,
            role: c.session.role,
            method: c.session.method,
            expires_at: ts(c.session.expires_at),
            idle_expires_at: ts(idle_end.min(c.session.expires_at)),
        })
    }

    /// Log out: end the session.
    pub async fn card_logout(&self, token: &str) -> Result<(), ServiceError> {
        let presented = TokenHash::of(token);
        self.signers.forget(&presented.0);
        let now = self.now().unix_timestamp();
        let mut tx = self.store.begin().await?;
        let Some(s) = logins::session_by_token_hash(&mut tx, &presented.0)
            .await?
            .filter(|s| TokenHash::from_slice(&s.token_hash).is_some_and(|h| h.matches(&presented)))
        else {
            return Err(ServiceError::Unauthenticated("no open card session".into()));
        };
        if logins::end_session(&mut tx, &s.id, now).await?
            && let Some(user) = users::by_id(&mut tx, &s.user_id).await?
        {
            self.audit(&mut tx, session_event(&user, "card.session_ended", serde_json::json!({ "session": s.id })))
                .await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }

    /// A single-use ticket for relying app `app`, from a live session.
    pub async fn create_ticket(&self, session_token: &str, app: &str) -> Result<TicketView, ServiceError> {
        let c = self.card_session(session_token).await?;
        let now = self.now().unix_timestamp();
        let mut tx = self.store.begin().await?;
        let app = apps::by_name(&mut tx, app.trim()).await?.ok_or_else(|| {
            ServiceError::not_found("app", format!("no relying app is registered as {:?}", app.trim()))
        })?;
        let token = SecretToken::generate("vtk");
        let expires = (now + TICKET_SECONDS).min(c.session.expires_at);
        apps::insert_ticket(&mut tx, &token.hash().0, &c.session.id, &app.id, now, expires).await?;
        self.audit(
            &mut tx,
            session_event(
                &c.user,
                "card.ticket_issued",
                serde_json::json!({ "session": c.session.id, "app": app.name }),
            ),
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(TicketView { ticket: token.expose().to_string(), expires_at: ts(expires) })
    }

    /// A relying app validates a ticket (once) with its key: who the holder is, in which role.
    pub async fn validate_ticket(&self, app_key: &str, ticket: &str) -> Result<TicketValidation, ServiceError> {
        let key = TokenHash::of(app_key);
        let now = self.now().unix_timestamp();
        let mut tx = self.store.begin().await?;
        let app = apps::by_key_hash(&mut tx, &key.0)
            .await?
            .filter(|a| TokenHash::from_slice(&a.key_hash).is_some_and(|h| h.matches(&key)))
            .ok_or_else(|| ServiceError::Unauthenticated("a valid relying-app key is required".into()))?;
        let presented = TokenHash::of(ticket);
        let refuse = |why: &str| ServiceError::SignInFailed(format!("ticket refused: {why}"));
        let Some((session_id, app_id, expires_at, used_at)) = apps::ticket(&mut tx, &presented.0).await? else {
            return Err(refuse("unknown ticket"));
        };
        if app_id != app.id {
            return Err(refuse("the ticket was issued for another app"));
        }
        if used_at.is_some() {
            return Err(refuse("the ticket was used already"));
        }
        if expires_at <= now {
            return Err(refuse("the ticket has expired"));
        }
        let s = logins::session_by_id(&mut tx, &session_id).await?.ok_or_else(|| refuse("unknown session"))?;
        if s.ended_at.is_some() {
            return Err(refuse("the holder has logged out"));
        }
        if s.expires_at <= now || s.last_seen_at + s.idle_seconds <= now {
            return Err(refuse("the card session has expired"));
        }
        let card = cards::by_id(&mut tx, &s.card_id).await?.ok_or_else(|| refuse("unknown card"))?;
        if card.expires_at <= now {
            return Err(refuse("the card has expired"));
        }
        if card.state != "active" {
            return Err(refuse(&format!("the card is {}", card.state)));
        }
        let user = users::by_id(&mut tx, &s.user_id).await?.ok_or_else(|| refuse("unknown holder"))?;
        let org = organisations::by_id(&mut tx, &user.org_id).await?.ok_or_else(|| refuse("unknown organisation"))?;
        if !apps::use_ticket(&mut tx, &presented.0, now).await? {
            return Err(refuse("the ticket was used already"));
        }
        self.audit(
            &mut tx,
            session_event(
                &user,
                "card.ticket_validated",
                serde_json::json!({ "session": s.id, "app": app.name, "card": card.serial, "role": s.role }),
            ),
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(TicketValidation {
            user_id: user.id.clone(),
            display_name: vsc_core::names::display_name(&user.forename, &user.surname, &user.subject_cn),
            forename: user.forename,
            surname: user.surname,
            subject_cn: user.subject_cn,
            card_serial: card.serial,
            role: s.role,
            organisation: TicketOrganisation { code: org.code, name: org.name },
            expires_at: ts(s.expires_at),
        })
    }

    /// Register a relying app (operator); its key is shown once.
    pub async fn create_app(&self, name: &str) -> Result<AppCreated, ServiceError> {
        let name = name.trim();
        if name.is_empty()
            || name.len() > 64
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(vsc_core::DomainError::invalid(
                "name",
                "an app name has 1 to 64 letters, digits, '-', '_' or '.'",
            )
            .into());
        }
        let now = self.now();
        let key = SecretToken::generate("vra");
        let id = new_id();
        let mut tx = self.store.begin().await?;
        match apps::insert(&mut tx, &id, name, &key.hash().0, now.unix_timestamp()).await {
            Err(StoreError::Constraint(_)) => {
                return Err(ServiceError::conflict("name", format!("an app named {name} exists already")));
            }
            r => r?,
        }
        self.audit(
            &mut tx,
            AuditRecord {
                actor: Actor::Operator,
                action: "app.created",
                org_id: None,
                target: Some(format!("app:{id}")),
                detail: serde_json::json!({ "name": name }).to_string(),
            },
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(AppCreated { id, name: name.to_string(), key: key.expose().to_string() })
    }
}
