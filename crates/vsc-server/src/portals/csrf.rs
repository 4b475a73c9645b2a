//! CSRF protection for every portal form, as middleware: a double-submit token. A random
//! `vsc_csrf` cookie is set when a page is shown; every form carries the same value in a hidden
//! `csrf` field; a POST whose field does not match its cookie (compared in constant time) is
//! refused with a 403 page before any handler runs. `SameSite=Strict` cookies add a second line.

use axum::Form;
use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use vsc_crypto::{SecretToken, TokenHash};

use super::cookies::{CSRF_COOKIE, SetCookie};
use super::errors::PageError;
use crate::Vsc;
use crate::api::holder::cookie;

/// Largest portal form accepted (the longest real one is well under 2 KiB).
const FORM_LIMIT: usize = 64 * 1024;
/// Largest file-upload form (`multipart/form-data`: the CSV import of users).
const UPLOAD_LIMIT: usize = crate::service::MAX_IMPORT_BYTES + 1024 * 1024;

/// The request's CSRF token, to put in the hidden `csrf` field of every form on the page.
#[derive(Debug, Clone)]
pub struct Csrf(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Csrf {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Csrf>()
            .cloned()
            .ok_or_else(|| PageError::internal(&"CSRF middleware missing on a portal route"))
    }
}

#[derive(Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf: String,
}

/// A token we could have issued (anything else in the cookie is replaced).
fn well_formed(token: &str) -> bool {
    (16..=128).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The middleware: hand safe requests a token (setting the cookie when new); check unsafe ones.
pub async fn guard(State(vsc): State<Vsc>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let from_cookie = cookie(&parts, CSRF_COOKIE).filter(|t| well_formed(t));
    if matches!(parts.method, Method::GET | Method::HEAD) {
        let (token, fresh) = match from_cookie {
            Some(t) => (t, false),
            None => (SecretToken::generate("csrf").expose().to_string(), true),
        };
        let mut req = Request::from_parts(parts, body);
        req.extensions_mut().insert(Csrf(token.clone()));
        let mut response = next.run(req).await;
        if fresh {
            SetCookie::new(CSRF_COOKIE, token, None).apply(&mut response, vsc.config());
        }
        return response;
    }
    // Refusals under `/ra` are shown in the vRA Manager's layout.
    let ra = parts.uri.path() == "/ra" || parts.uri.path().starts_with("/ra/");
    let refuse = |page: PageError| async move {
        let response = page.into_response();
        if ra { super::errors::ra_layout(response).await } else { response }
    };
    let upload = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("multipart/form-data"));
    let Ok(bytes) = axum::body::to_bytes(body, if upload { UPLOAD_LIMIT } else { FORM_LIMIT }).await else {
        return refuse(PageError::bad_form(if upload { "the file is too large" } else { "the form is too large" }))
            .await;
    };
    // Read only the `csrf` field, through the same parser the handlers use.
    let mut probe = Request::new(Body::from(bytes.clone()));
    *probe.method_mut() = Method::POST;
    if let Some(ct) = parts.headers.get(CONTENT_TYPE) {
        probe.headers_mut().insert(CONTENT_TYPE, ct.clone());
    }
    let presented = if upload {
        multipart_csrf(probe).await
    } else {
        Form::<CsrfField>::from_request(probe, &()).await.map(|Form(f)| f.csrf).unwrap_or_default()
    };
    let Some(expected) = from_cookie.filter(|t| TokenHash::of(t).matches(&TokenHash::of(&presented))) else {
        // The route template, never the raw path: enrolment paths carry link tokens.
        let route = parts.extensions.get::<axum::extract::MatchedPath>().map_or("(unmatched)", |p| p.as_str());
        tracing::warn!(route, "portal form refused: CSRF token missing or mismatched");
        return refuse(PageError::csrf()).await;
    };
    let mut req = Request::from_parts(parts, Body::from(bytes));
    req.extensions_mut().insert(Csrf(expected));
    next.run(req).await
}

/// The `csrf` field of a file-upload form (empty when missing or unreadable).
async fn multipart_csrf(probe: Request) -> String {
    use tower::{Layer, ServiceExt};
    async fn read(probe: Request) -> Result<String, std::convert::Infallible> {
        let Ok(mut form) = axum::extract::Multipart::from_request(probe, &()).await else {
            return Ok(String::new());
        };
        while let Ok(Some(field)) = form.next_field().await {
            if field.name() == Some("csrf") {
                return Ok(field.text().await.unwrap_or_default());
            }
        }
        Ok(String::new())
    }
    // The body was already limited above: lift Multipart's own default limit for this read.
    let reader = axum::extract::DefaultBodyLimit::disable().layer(tower::service_fn(read));
    reader.oneshot(probe).await.unwrap_or_default()
}

/// `Form`, with a rejection that renders an error page.
pub struct PortalForm<T>(pub T);

impl<T, S> FromRequest<S> for PortalForm<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = PageError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Form::<T>::from_request(req, state).await {
            Ok(Form(t)) => Ok(PortalForm(t)),
            Err(e) if e.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE => Err(PageError::bad_form("not a web form")),
            Err(e) => Err(PageError::bad_form(e.body_text())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tokens_we_could_have_issued_are_reused() {
        assert!(well_formed(SecretToken::generate("csrf").expose()));
        assert!(!well_formed("short"));
        assert!(!well_formed("abc\"def<script>0123456789"));
    }
}
