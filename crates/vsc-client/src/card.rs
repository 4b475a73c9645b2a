//! Card login, card sessions and relying-app tickets (see `docs/authenticator.md`). Login calls
//! need no credential beyond the login id; session calls use the session as the bearer token
//! (`Client::with_token`), ticket validation the app's key.

use reqwest::Method;
use vsc_proto::{
    CardLoginRequest, CardLoginView, CardSessionStatus, CardSessionView, CodeRequest, LoginStateView,
    OpenSessionRequest, TicketRequest, TicketValidation, TicketView, ValidateTicketRequest,
};

use crate::{Client, ClientError, segment};

/// The longest wait the server grants on a pending login, in seconds.
pub const MAX_LOGIN_WAIT: u32 = 60;

impl Client {
    /// `POST /api/v1/card/login`: start a login (push, code or QR).
    pub async fn card_login(&self, req: &CardLoginRequest) -> Result<CardLoginView, ClientError> {
        self.call(Method::POST, "/api/v1/card/login", Some(req)).await
    }

    /// `GET /api/v1/card/login/{login}?wait=S`: the login's state, waiting up to `wait` seconds
    /// (at most [`MAX_LOGIN_WAIT`]) while it is pending.
    pub async fn login_state(&self, login: &str, wait: u32) -> Result<LoginStateView, ClientError> {
        let path = format!("/api/v1/card/login/{}?wait={}", segment(login)?, wait.min(MAX_LOGIN_WAIT));
        self.call::<(), _>(Method::GET, &path, None).await
    }

    /// `POST /api/v1/card/login/{login}/code`: approve a login with the authenticator's TOTP code.
    pub async fn login_code(&self, login: &str, code: &str) -> Result<LoginStateView, ClientError> {
        let body = CodeRequest { code: code.to_string() };
        self.call(Method::POST, &format!("/api/v1/card/login/{}/code", segment(login)?), Some(&body)).await
    }

    /// `POST /api/v1/card/login/{login}/session`: open the session of an approved login (once).
    pub async fn open_card_session(&self, login: &str, role: Option<&str>) -> Result<CardSessionView, ClientError> {
        let body = OpenSessionRequest { role: role.map(str::to_string) };
        self.call(Method::POST, &format!("/api/v1/card/login/{}/session", segment(login)?), Some(&body)).await
    }

    /// `GET /api/v1/card/session` (session as bearer): the session's holder, card and times.
    pub async fn card_session(&self) -> Result<CardSessionStatus, ClientError> {
        self.call::<(), _>(Method::GET, "/api/v1/card/session", None).await
    }

    /// `POST /api/v1/card/logout` (session as bearer): end the session.
    pub async fn card_logout(&self) -> Result<(), ClientError> {
        self.call_empty::<()>(Method::POST, "/api/v1/card/logout", None).await
    }

    /// `POST /api/v1/card/ticket` (session as bearer): a single-use ticket for relying app `app`.
    pub async fn card_ticket(&self, app: &str) -> Result<TicketView, ClientError> {
        let body = TicketRequest { app: app.to_string() };
        self.call(Method::POST, "/api/v1/card/ticket", Some(&body)).await
    }

    /// `POST /api/v1/tickets/validate` (the app's key as bearer): who a ticket stands for.
    pub async fn validate_ticket(&self, ticket: &str) -> Result<TicketValidation, ClientError> {
        let body = ValidateTicketRequest { ticket: ticket.to_string() };
        self.call(Method::POST, "/api/v1/tickets/validate", Some(&body)).await
    }
}
