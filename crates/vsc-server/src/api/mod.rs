//! The JSON API under `/api/v1`, its OpenAPI document, and the health endpoints.

mod audit;
mod auth;
mod card;
mod cards;
mod challenges;
mod change_requests;
pub mod device_auth;
mod devices;
mod enrolment;
pub mod errors;
mod extract;
pub mod failure_limit;
mod health;
pub mod holder;
mod organisations;
mod pin;
mod pki;
mod reports;
mod reset;
mod settings;
mod signing;
mod staff;
mod user_import;
mod users;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, Request};
use axum::routing::get;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::Vsc;

#[derive(OpenApi)]
#[openapi(
    info(title = "vsc", description = "Cloud virtual smartcard service: RA API, PKI and health."),
    modifiers(&BearerAuth),
    tags(
        (name = "health", description = "Liveness and readiness"),
        (name = "ra", description = "Registration Authority API (bearer token of an RA staff account)"),
        (name = "pki", description = "Public PKI material"),
        (name = "enrolment", description = "Card holder enrolment from the invitation link"),
        (name = "self-service", description = "Card holder's own account (holder session as bearer token or cookie)"),
        (name = "authenticator", description = "Authenticator devices (device-signed tokens)"),
        (name = "card", description = "Card login, card sessions and relying-app tickets")
    )
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
        components.add_security_scheme(
            "device",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "`Device <token>`: a fresh device-signed token per request (docs/authenticator.md)",
            ))),
        );
    }
}

/// Every JSON route with its OpenAPI description.
fn api_routes() -> OpenApiRouter<Vsc> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(organisations::create, organisations::list))
        .routes(routes!(organisations::rename))
        .routes(routes!(settings::list_roles, settings::add_role))
        .routes(routes!(settings::rename_role, settings::delete_role))
        .routes(routes!(settings::list_questions, settings::add_question))
        .routes(routes!(settings::update_question, settings::delete_question))
        .routes(routes!(settings::get_policy, settings::set_policy))
        .routes(routes!(settings::add_email_domain))
        .routes(routes!(settings::remove_email_domain))
        .routes(routes!(users::create, users::search))
        .routes(routes!(user_import::import))
        .routes(routes!(users::get, users::update, users::delete))
        .routes(routes!(users::delete_device))
        .routes(routes!(reports::pending))
        .routes(routes!(reports::expiring))
        .routes(routes!(cards::issue))
        .routes(routes!(cards::get))
        .routes(routes!(cards::revoke))
        .routes(routes!(cards::suspend))
        .routes(routes!(cards::resume))
        .routes(routes!(cards::renew))
        .routes(routes!(cards::resend_invitation))
        .routes(routes!(cards::restart_issuance))
        .routes(routes!(enrolment::show, enrolment::submit))
        .routes(routes!(enrolment::resend_code))
        .routes(routes!(enrolment::verify))
        .routes(routes!(holder::sign_in))
        .routes(routes!(holder::verify_sign_in))
        .routes(routes!(holder::sign_in_state))
        .routes(routes!(holder::complete_sign_in))
        .routes(routes!(holder::me))
        .routes(routes!(holder::sign_out))
        .routes(routes!(holder::change_questions))
        .routes(routes!(holder::block))
        .routes(routes!(holder::send_email_verification))
        .routes(routes!(holder::verify_email))
        .routes(routes!(holder::send_mobile_verification))
        .routes(routes!(holder::verify_mobile))
        .routes(routes!(reset::request))
        .routes(routes!(reset::show))
        .routes(routes!(reset::questions))
        .routes(routes!(reset::start_second_factor, reset::second_factor_state))
        .routes(routes!(reset::verify_second_factor))
        .routes(routes!(reset::set_passcode))
        .routes(routes!(reset::unlock))
        .routes(routes!(devices::add, devices::list))
        .routes(routes!(devices::delete))
        .routes(routes!(devices::verify))
        .routes(routes!(devices::register))
        .routes(routes!(devices::me))
        .routes(routes!(challenges::list))
        .routes(routes!(challenges::get))
        .routes(routes!(challenges::answer))
        .routes(routes!(pin::reset_passcode))
        .routes(routes!(pin::set_pin))
        .routes(routes!(pin::reset_pin))
        .routes(routes!(pin::issue_pin_reset))
        .routes(routes!(card::login))
        .routes(routes!(card::login_state))
        .routes(routes!(card::login_code))
        .routes(routes!(card::open_session))
        .routes(routes!(card::session))
        .routes(routes!(card::logout))
        .routes(routes!(card::ticket))
        .routes(routes!(card::validate_ticket))
        .routes(routes!(signing::sign))
        .routes(routes!(signing::sign_batch))
        .routes(routes!(signing::cades))
        .routes(routes!(signing::approval))
        .routes(routes!(signing::certificates))
        .routes(routes!(pki::ca_pem))
        .routes(routes!(pki::crl))
        .routes(routes!(pki::ocsp))
        .routes(routes!(audit::list))
        .routes(routes!(staff::list, staff::invite))
        .routes(routes!(staff::get, staff::update))
        .routes(routes!(staff::password_link))
        .routes(routes!(change_requests::list))
        .routes(routes!(change_requests::approve))
        .routes(routes!(change_requests::reject))
        .routes(routes!(change_requests::not_me))
        .routes(routes!(change_requests::get_dual_control, change_requests::set_dual_control))
}

/// The OpenAPI document (also served at `/api/openapi.json`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_routes().into_openapi()
}

/// The whole HTTP application.
pub fn router(vsc: Vsc) -> Router {
    let (routes, doc) = api_routes().split_for_parts();
    let doc = Arc::new(doc);
    let proxies = crate::client_ip::TrustedProxies::parse(&vsc.config().trusted_proxies).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "trusted_proxies ignored");
        Default::default()
    });
    routes
        .route("/api/openapi.json", get(move || std::future::ready(axum::Json(doc.as_ref().clone()))))
        // HTML portals, with their own CSRF check and security headers (CSP …) layered inside.
        .merge(crate::portals::router(vsc.clone()))
        .fallback(errors::not_found)
        .layer(axum::middleware::from_fn(user_import::limit_body))
        // Credential failures are counted, and blocked addresses refused, by client address:
        // worked out first, once per request.
        .layer(axum::middleware::from_fn_with_state(vsc.clone(), failure_limit::regulate))
        .layer(axum::middleware::from_fn_with_state(Arc::new(proxies), crate::client_ip::resolve))
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("x-content-type-options"),
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static("cache-control"),
            HeaderValue::from_static("no-store"),
        ))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            let path = req
                .extensions()
                .get::<axum::extract::MatchedPath>()
                .map(|p| p.as_str().to_string())
                .unwrap_or_else(|| "unmatched".into());
            tracing::info_span!("request", method = %req.method(), path = %path)
        }))
        .with_state(vsc)
}
