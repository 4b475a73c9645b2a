//! Server-rendered HTML portals (askama templates, no JavaScript needed): the Self-Service Portal
//! under `/self-service`, and `/dev/outbox` in development mode. Security is applied to the
//! whole portal router here, not per handler: CSRF checking (middleware), strict cookies and
//! the security headers (a strict Content-Security-Policy: no inline script or style).

pub mod cookies;
pub mod csrf;
mod dev_outbox;
pub mod errors;
mod ra;
mod self_service;

use askama::Template;
use axum::Router;
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_FRAME_OPTIONS};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use time::OffsetDateTime;
use time::format_description::FormatItem;
use time::macros::format_description;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::Vsc;
pub use errors::PageError;

/// The policy every portal page is served with: only our own stylesheet and images, forms only
/// to ourselves, never framed.
pub const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The policy of a page that loads one of our scripts (which may call our JSON API); a handler
/// sets it on its response, and the default above is added only where none was set.
pub const SCRIPTED_PAGE_CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; \
     img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The portals' stylesheet (the CSP forbids inline styles).
const PORTAL_CSS: &str = include_str!("../../static/portal.css");

/// The script of the "approve on your phone" pages (sign-in, reset): waits for the push decision
/// and continues by itself.
const PUSH_WAIT_JS: &str = include_str!("../../static/push_wait.js");

/// htmx (vendored from npm `htmx.org`), for the vRA Manager's in-place table updates.
const HTMX_JS: &str = include_str!("../../static/htmx.min.js");

/// Every portal route, with CSRF checking and the security headers.
pub fn router(vsc: Vsc) -> Router<Vsc> {
    Router::new()
        .merge(self_service::routes())
        .merge(ra::routes(vsc.clone()))
        .route("/dev/outbox", get(dev_outbox::show))
        .layer(middleware::from_fn_with_state(vsc, csrf::guard))
        // After the CSRF layer: the stylesheet needs no token.
        .route("/static/portal.css", get(stylesheet))
        // One script for both pages, under the names the pages have always used.
        .route("/static/sign_in_push.js", get(push_wait_script))
        .route("/static/reset_push.js", get(push_wait_script))
        .route("/static/htmx.min.js", get(htmx_script))
        .layer(SetResponseHeaderLayer::if_not_present(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY_VALUE),
        ))
        .layer(SetResponseHeaderLayer::overriding(X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(SetResponseHeaderLayer::overriding(REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
        .layer(SetResponseHeaderLayer::overriding(CACHE_CONTROL, HeaderValue::from_static("no-store")))
}

async fn stylesheet() -> Response {
    ([(CONTENT_TYPE, "text/css; charset=utf-8")], PORTAL_CSS).into_response()
}

async fn push_wait_script() -> Response {
    ([(CONTENT_TYPE, "text/javascript; charset=utf-8")], PUSH_WAIT_JS).into_response()
}

async fn htmx_script() -> Response {
    ([(CONTENT_TYPE, "text/javascript; charset=utf-8")], HTMX_JS).into_response()
}

/// Render a page template with a status.
pub(crate) fn render<T: Template>(status: StatusCode, page: &T) -> Result<Response, PageError> {
    Ok((status, Html(page.render()?)).into_response())
}

/// Dates as in "7 December 2026".
const DATE: &[FormatItem<'static>] = format_description!("[day padding:none] [month repr:long] [year]");
/// Date and time as in "7 December 2026 14:05 UTC".
const DATE_TIME: &[FormatItem<'static>] =
    format_description!("[day padding:none] [month repr:long] [year] [hour]:[minute]:[second] UTC");

/// A date for people.
pub(crate) fn date(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC).format(DATE).unwrap_or_else(|_| t.date().to_string())
}

/// A date and time for people.
pub(crate) fn date_time(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC).format(DATE_TIME).unwrap_or_else(|_| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_read_naturally() {
        let t = time::macros::datetime!(2026-12-07 14:05:09 UTC);
        assert_eq!(date(t), "7 December 2026");
        assert_eq!(date_time(t), "7 December 2026 14:05:09 UTC");
    }
}
