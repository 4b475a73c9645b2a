//! The one mapping from service errors to HTTP responses with our JSON error body.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use vsc_core::DomainError;
use vsc_proto::{ErrorBody, ErrorCode, ErrorDetail};

use crate::ServiceError;
use crate::error::DualControlRefusal;

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    detail: ErrorDetail,
    /// Seconds to wait before retrying (`Retry-After`), for 503 and 429 answers that know it.
    retry_after: Option<u64>,
}

impl ApiError {
    /// Build an error response.
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>, field: Option<&str>) -> Self {
        ApiError {
            status,
            detail: ErrorDetail { code, message: message.into(), field: field.map(str::to_string), id: None },
            retry_after: None,
        }
    }

    /// The same error with a `Retry-After` header of `seconds`.
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// 401 with the standard message.
    pub fn unauthenticated() -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthenticated, "a valid bearer token is required", None)
    }

    fn internal(e: &ServiceError, code: ErrorCode, status: StatusCode) -> Self {
        let id = hex::encode(vsc_crypto::random::bytes::<6>());
        tracing::error!(error_id = %id, error = %e, "request failed");
        let mut err = ApiError::new(status, code, format!("internal error; quote id {id} to the operator"), None);
        err.detail.id = Some(id);
        err
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let e = e.answered();
        match &e {
            ServiceError::Domain(DomainError::Invalid { field, message }) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::InvalidInput, message.clone(), Some(field))
            }
            ServiceError::Domain(DomainError::InvalidState(m)) => {
                ApiError::new(StatusCode::CONFLICT, ErrorCode::InvalidState, m.clone(), None)
            }
            ServiceError::NotFound { field, message } => {
                ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, message.clone(), *field)
            }
            ServiceError::Conflict { field, message } => {
                ApiError::new(StatusCode::CONFLICT, ErrorCode::Conflict, message.clone(), *field)
            }
            ServiceError::Forbidden(m) => ApiError::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, m.clone(), None),
            ServiceError::DualControl { refusal, message } => {
                let (status, code) = match refusal {
                    DualControlRefusal::OwnRequest => (StatusCode::FORBIDDEN, ErrorCode::OwnChangeRequest),
                    DualControlRefusal::NotAnApprover => (StatusCode::FORBIDDEN, ErrorCode::NotAnApprover),
                    DualControlRefusal::NotPending => (StatusCode::CONFLICT, ErrorCode::ChangeRequestNotPending),
                };
                ApiError::new(status, code, message.clone(), None)
            }
            ServiceError::LinkExpired(m) => ApiError::new(StatusCode::GONE, ErrorCode::LinkExpired, m.clone(), None),
            ServiceError::LinkUsed(m) => ApiError::new(StatusCode::GONE, ErrorCode::LinkUsed, m.clone(), None),
            ServiceError::RateLimited(m) => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, ErrorCode::RateLimited, m.clone(), None)
            }
            ServiceError::Busy(seconds) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable, e.to_string(), None)
                    .retry_after(*seconds)
            }
            ServiceError::SignInFailed(m) => {
                ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::SignInFailed, m.clone(), None)
            }
            ServiceError::Unauthenticated(m) => {
                ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthenticated, m.clone(), None)
            }
            ServiceError::PinRequired(m) => {
                ApiError::new(StatusCode::CONFLICT, ErrorCode::PinRequired, m.clone(), None)
            }
            // A uniqueness race lost to a concurrent request: the caller can retry.
            ServiceError::Store(vsc_store::StoreError::Constraint(_)) => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::Conflict,
                "the request conflicts with a concurrent change; retry",
                None,
            ),
            ServiceError::Store(vsc_store::StoreError::Database(
                sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed,
            )) => ApiError::internal(&e, ErrorCode::Unavailable, StatusCode::SERVICE_UNAVAILABLE),
            _ => ApiError::internal(&e, ErrorCode::Internal, StatusCode::INTERNAL_SERVER_ERROR),
        }
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        ServiceError::from(e).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, axum::Json(ErrorBody { error: self.detail })).into_response();
        if let Some(seconds) = self.retry_after {
            r.headers_mut().insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        r
    }
}

/// Unknown routes answer in our error format too.
pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, "no such route", None)
}
