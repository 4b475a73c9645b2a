//! The HTTP side of the failure regulator (`service::failure_regulator`): every response that
//! refuses a credential is counted against the client's address, and while that address is
//! blocked its requests to the unauthenticated credential routes answer 429
//! `RL0001RateLimited` with `Retry-After` before any work is done; an address that keeps failing
//! but is not blocked yet runs its credential requests only in the places kept for suspects
//! (503 when none is free). Other routes, and addresses in good standing, are untouched.

use std::cell::Cell;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use vsc_proto::ErrorCode;

use super::errors::ApiError;
use crate::client_ip::ClientAddr;
use crate::portals::errors::PageError;
use crate::{ServiceError, Vsc};

tokio::task_local! {
    /// Set while a request is handled: whether its answer refused a credential.
    static CREDENTIAL_FAILURE: Cell<bool>;
}

/// Note that the request being handled refused a credential. Called by
/// [`ServiceError::answered`], which every error mapping (API, portal pages, inline form errors)
/// calls first, so that every door is counted without each handler saying so.
pub fn mark_credential_failure() {
    let _ = CREDENTIAL_FAILURE.try_with(|f| f.set(true));
}

/// Routes that check a credential without a session (where an attacker guesses): card login,
/// portal sign-in, passcode reset, enrolment, relying-app ticket checks and staff sign-in — in
/// the JSON API and in the portals. Only requests that submit something (not page views or
/// long-polls) are refused while an address is blocked.
pub fn is_credential_route(method: &Method, path: &str) -> bool {
    if method == Method::GET || method == Method::HEAD || method == Method::OPTIONS {
        return false;
    }
    const PREFIXES: [&str; 10] = [
        "/api/v1/card/login",
        "/api/v1/self/sign-in",
        "/api/v1/self/reset",
        "/api/v1/enrolment/",
        "/api/v1/tickets/validate",
        "/self-service/sign-in",
        "/self-service/reset",
        "/self-service/enrol/",
        "/ra/sign-in",
        "/ra/totp-setup",
    ];
    PREFIXES.iter().any(|p| path.starts_with(p))
}

/// Middleware: refuse a blocked address on the credential routes; count the credential failures
/// of every answer.
pub async fn regulate(State(vsc): State<Vsc>, req: Request, next: Next) -> Response {
    let Some(ClientAddr(ip)) = req.extensions().get::<ClientAddr>().copied() else {
        return next.run(req).await;
    };
    let credential_route = is_credential_route(req.method(), req.uri().path());
    if credential_route && let Some(seconds) = vsc.credential_block(ip) {
        return too_many_failures(req.uri().path(), seconds);
    }
    // A source that keeps failing runs only in a place of its own (half the hash queue for all
    // of them); when none is free it is refused like a full queue.
    let place = if credential_route {
        match vsc.admit_source(ip) {
            Ok(place) => place,
            Err(e) => return busy(req.uri().path(), e),
        }
    } else {
        None
    };
    let (response, failed) = CREDENTIAL_FAILURE
        .scope(Cell::new(false), async {
            let response = next.run(req).await;
            (response, CREDENTIAL_FAILURE.with(Cell::get))
        })
        .await;
    drop(place);
    if failed && let Err(e) = vsc.count_credential_failure(ip).await {
        tracing::warn!(error = %e, "auditing a client block failed");
    }
    response
}

/// The 503 answer to a suspect when every place for suspects is taken (as a full queue answers).
fn busy(path: &str, e: ServiceError) -> Response {
    if path.starts_with("/api/") { ApiError::from(e).into_response() } else { PageError::from(e).into_response() }
}

/// The 429 answer: our JSON error under `/api`, the portals' error page elsewhere.
fn too_many_failures(path: &str, seconds: i64) -> Response {
    let seconds = u64::try_from(seconds).unwrap_or(1).max(1);
    let minutes = seconds.div_ceil(60);
    let message = format!("too many failed attempts from your network address; try again in {minutes} minute(s)");
    if path.starts_with("/api/") {
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, ErrorCode::RateLimited, message, None)
            .retry_after(seconds)
            .into_response()
    } else {
        PageError::from(ServiceError::RateLimited(message)).retry_after(seconds).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_routes_are_the_unauthenticated_doors() {
        for path in [
            "/api/v1/card/login",
            "/api/v1/card/login/abc/code",
            "/api/v1/self/sign-in",
            "/api/v1/self/sign-in/abc/verify",
            "/api/v1/self/reset",
            "/api/v1/self/reset/tok/questions",
            "/api/v1/enrolment/tok/verify",
            "/api/v1/tickets/validate",
            "/self-service/sign-in",
            "/self-service/sign-in/code",
            "/self-service/reset/tok/questions",
            "/self-service/enrol/tok/code",
            "/ra/sign-in",
            "/ra/sign-in/code",
        ] {
            assert!(is_credential_route(&Method::POST, path), "{path}");
        }
        assert!(!is_credential_route(&Method::GET, "/self-service/sign-in"), "the form itself stays visible");
        assert!(!is_credential_route(&Method::GET, "/api/v1/card/login/abc"), "long-polls go on");
        for path in ["/api/v1/card/sign", "/api/v1/self/questions", "/healthz", "/ra/users/new", "/api/v1/users"] {
            assert!(!is_credential_route(&Method::POST, path), "{path}");
        }
    }

    #[tokio::test]
    async fn a_mark_counts_only_inside_a_request() {
        mark_credential_failure();
        let failed = CREDENTIAL_FAILURE
            .scope(Cell::new(false), async {
                let _ = ApiError::from(ServiceError::SignInFailed("no".into()));
                CREDENTIAL_FAILURE.with(Cell::get)
            })
            .await;
        assert!(failed);
        let failed = CREDENTIAL_FAILURE
            .scope(Cell::new(false), async {
                let _ = ApiError::from(ServiceError::Forbidden("no".into()));
                CREDENTIAL_FAILURE.with(Cell::get)
            })
            .await;
        assert!(!failed);
    }
}
