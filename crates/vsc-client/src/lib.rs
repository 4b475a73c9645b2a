//! Typed HTTP client for the vsc API, used by the CLI and the tests.

pub mod card;
pub mod device;
pub mod signing;

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use vsc_proto::{
    AddDeviceRequest, AuditPage, CardView, CodeRequest, CodeSent, CreateOrganisationRequest, CreateUserRequest,
    DeviceCreated, DeviceList, DeviceRegistrationView, EnrolmentRequest, ErrorBody, HolderView, IssueCardRequest,
    OrganisationView, RegisterDeviceRequest, RegisteredDevice, RevokeCardRequest, SessionView, UserView,
};

pub use device::{Decision, DeviceClient};

/// A failed call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error body.
    #[error("{status}: {} ({:?})", body.error.message, body.error.code)]
    Api {
        /// HTTP status.
        status: u16,
        /// The error body.
        body: ErrorBody,
    },
    /// The request did not complete.
    #[error("request failed: {0}")]
    Http(#[from] reqwest::Error),
    /// The answer was not what the API documents.
    #[error("unexpected response ({status}): {text}")]
    Unexpected {
        /// HTTP status.
        status: u16,
        /// Body text.
        text: String,
    },
    /// An id to put into a request path holds characters no server id has.
    #[error("not a valid id: {0:?}")]
    InvalidId(String),
    /// The device key could not sign a request or an answer.
    #[error("device signature failed: {0}")]
    Signing(#[from] vsc_crypto::CryptoError),
}

impl ClientError {
    /// The API error code, when the server sent one.
    pub fn code(&self) -> Option<vsc_proto::ErrorCode> {
        match self {
            ClientError::Api { body, .. } => Some(body.error.code),
            _ => None,
        }
    }

    /// The field named by the error, when the server named one.
    pub fn field(&self) -> Option<&str> {
        match self {
            ClientError::Api { body, .. } => body.error.field.as_deref(),
            _ => None,
        }
    }

    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } | ClientError::Unexpected { status, .. } => Some(*status),
            ClientError::Http(_) | ClientError::InvalidId(_) | ClientError::Signing(_) => None,
        }
    }
}

/// An id checked to be safe as one path segment (ids are UUIDs or base64url/hex tokens), so the
/// path a device signs is exactly the path the server sees.
pub(crate) fn segment(id: &str) -> Result<&str, ClientError> {
    let ok =
        !id.is_empty() && id.len() <= 200 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok { Ok(id) } else { Err(ClientError::InvalidId(id.to_string())) }
}

/// Turn a response into `T`, or into the API error its body names.
pub(crate) async fn decode<T: DeserializeOwned>(resp: reqwest::Response) -> Result<T, ClientError> {
    let status = resp.status();
    let text = resp.text().await?;
    if status.is_success() {
        return serde_json::from_str(&text).map_err(|_| ClientError::Unexpected { status: status.as_u16(), text });
    }
    Err(api_error(status, text))
}

/// Accept an empty success (`204`), or return the API error.
pub(crate) async fn decode_empty(resp: reqwest::Response) -> Result<(), ClientError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let text = resp.text().await?;
    Err(api_error(status, text))
}

fn api_error(status: StatusCode, text: String) -> ClientError {
    match serde_json::from_str::<ErrorBody>(&text) {
        Ok(body) => ClientError::Api { status: status.as_u16(), body },
        Err(_) => ClientError::Unexpected { status: status.as_u16(), text },
    }
}

/// A client bound to one server (and optionally one bearer token).
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    /// A client for `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: &str) -> Self {
        Client { http: reqwest::Client::new(), base: base.trim_end_matches('/').to_string(), token: None }
    }

    /// The same client presenting `token`.
    pub fn with_token(&self, token: &str) -> Self {
        Client { token: Some(token.to_string()), ..self.clone() }
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Send a request with an optional JSON body; returns status and raw body text.
    pub async fn raw(&self, method: Method, path: &str, body: Option<&Value>) -> Result<(u16, String), ClientError> {
        let resp = self.request(method, path, body).send().await?;
        let status = resp.status().as_u16();
        Ok((status, resp.text().await?))
    }

    pub(crate) fn request<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> reqwest::RequestBuilder {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        req
    }

    pub(crate) async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        decode(self.request(method, path, body).send().await?).await
    }

    /// A call whose success has no body (`204`).
    pub(crate) async fn call_empty<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<(), ClientError> {
        decode_empty(self.request(method, path, body).send().await?).await
    }

    /// `POST /api/v1/organisations`.
    pub async fn create_organisation(&self, req: &CreateOrganisationRequest) -> Result<OrganisationView, ClientError> {
        self.call(Method::POST, "/api/v1/organisations", Some(req)).await
    }

    /// `GET /api/v1/organisations`.
    pub async fn organisations(&self) -> Result<Vec<OrganisationView>, ClientError> {
        self.call::<(), _>(Method::GET, "/api/v1/organisations", None).await
    }

    /// `POST /api/v1/users`.
    pub async fn create_user(&self, req: &CreateUserRequest) -> Result<UserView, ClientError> {
        self.call(Method::POST, "/api/v1/users", Some(req)).await
    }

    /// `GET /api/v1/users/{id}`.
    pub async fn user(&self, id: &str) -> Result<UserView, ClientError> {
        self.call::<(), _>(Method::GET, &format!("/api/v1/users/{id}"), None).await
    }

    /// `POST /api/v1/users/{id}/cards`.
    pub async fn issue_card(&self, user_id: &str, req: &IssueCardRequest) -> Result<CardView, ClientError> {
        self.call(Method::POST, &format!("/api/v1/users/{user_id}/cards"), Some(req)).await
    }

    /// `GET /api/v1/cards/{serial}`.
    pub async fn card(&self, serial: &str) -> Result<CardView, ClientError> {
        self.call::<(), _>(Method::GET, &format!("/api/v1/cards/{serial}"), None).await
    }

    /// `POST /api/v1/cards/{serial}/revoke`.
    pub async fn revoke_card(&self, serial: &str, reason: Option<&str>) -> Result<CardView, ClientError> {
        let body = RevokeCardRequest { reason: reason.map(str::to_string) };
        self.call(Method::POST, &format!("/api/v1/cards/{serial}/revoke"), Some(&body)).await
    }

    /// `POST /api/v1/cards/{serial}/suspend` with a reason.
    pub async fn suspend_card(&self, serial: &str, reason: &str) -> Result<CardView, ClientError> {
        let body = vsc_proto::SuspendCardRequest { reason: reason.to_string() };
        self.call(Method::POST, &format!("/api/v1/cards/{}/suspend", segment(serial)?), Some(&body)).await
    }

    /// `POST /api/v1/cards/{serial}/resume`.
    pub async fn resume_card(&self, serial: &str) -> Result<CardView, ClientError> {
        self.call::<(), _>(Method::POST, &format!("/api/v1/cards/{}/resume", segment(serial)?), None).await
    }

    /// `POST /api/v1/self/block` (holder session): suspend the holder's own cards.
    pub async fn self_block(&self, passcode: &str) -> Result<vsc_proto::SelfBlocked, ClientError> {
        let body = vsc_proto::SelfBlockRequest { passcode: passcode.to_string() };
        self.call(Method::POST, "/api/v1/self/block", Some(&body)).await
    }

    /// `POST /api/v1/cards/{serial}/renew`.
    pub async fn renew_card(&self, serial: &str) -> Result<CardView, ClientError> {
        self.call::<(), _>(Method::POST, &format!("/api/v1/cards/{}/renew", segment(serial)?), None).await
    }

    /// `GET /api/v1/audit?limit=`.
    pub async fn audit(&self, limit: i64) -> Result<AuditPage, ClientError> {
        self.call::<(), _>(Method::GET, &format!("/api/v1/audit?limit={limit}"), None).await
    }

    /// `GET /api/v1/pki/ca.pem`.
    pub async fn ca_pem(&self) -> Result<String, ClientError> {
        let (status, text) = self.raw(Method::GET, "/api/v1/pki/ca.pem", None).await?;
        if status == StatusCode::OK.as_u16() { Ok(text) } else { Err(ClientError::Unexpected { status, text }) }
    }

    /// `POST /api/v1/enrolment/{token}`: passcode, questions and mobile; a code goes by SMS.
    pub async fn enrol(&self, token: &str, req: &EnrolmentRequest) -> Result<CodeSent, ClientError> {
        self.call(Method::POST, &format!("/api/v1/enrolment/{}", segment(token)?), Some(req)).await
    }

    /// `POST /api/v1/enrolment/{token}/verify`: the SMS code; opens a holder session.
    pub async fn verify_enrolment(&self, token: &str, code: &str) -> Result<SessionView, ClientError> {
        let body = CodeRequest { code: code.to_string() };
        self.call(Method::POST, &format!("/api/v1/enrolment/{}/verify", segment(token)?), Some(&body)).await
    }

    /// `GET /api/v1/self` (holder session).
    pub async fn holder(&self) -> Result<HolderView, ClientError> {
        self.call::<(), _>(Method::GET, "/api/v1/self", None).await
    }

    /// `POST /api/v1/self/devices` (holder session): start adding a device; a code is emailed.
    pub async fn add_device(&self, req: &AddDeviceRequest) -> Result<DeviceCreated, ClientError> {
        self.call(Method::POST, "/api/v1/self/devices", Some(req)).await
    }

    /// `POST /api/v1/self/devices/{id}/verify` (holder session): the emailed code; returns the
    /// registration URI for the authenticator.
    pub async fn verify_device(&self, id: &str, code: &str) -> Result<DeviceRegistrationView, ClientError> {
        let body = CodeRequest { code: code.to_string() };
        self.call(Method::POST, &format!("/api/v1/self/devices/{}/verify", segment(id)?), Some(&body)).await
    }

    /// `GET /api/v1/self/devices` (holder session).
    pub async fn devices(&self) -> Result<DeviceList, ClientError> {
        self.call::<(), _>(Method::GET, "/api/v1/self/devices", None).await
    }

    /// `DELETE /api/v1/self/devices/{id}` (holder session).
    pub async fn delete_device(&self, id: &str) -> Result<(), ClientError> {
        self.call_empty::<()>(Method::DELETE, &format!("/api/v1/self/devices/{}", segment(id)?), None).await
    }

    /// `POST /api/v1/authenticator/register`: the authenticator registers with a scanned token.
    pub async fn register_device(&self, req: &RegisterDeviceRequest) -> Result<RegisteredDevice, ClientError> {
        self.call(Method::POST, "/api/v1/authenticator/register", Some(req)).await
    }
}
