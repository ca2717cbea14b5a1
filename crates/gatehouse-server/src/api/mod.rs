//! The REST API under `/api/v1/`, authenticated with API keys.
//!
//! [`router`] builds the routes; the public listener nests them at `/api/v1`. Every request except
//! `GET /openapi.json` needs a key (`Authorization: Bearer gk_…` or `X-API-Key: gk_…`, see [`auth`]); the
//! key's limits apply before any handler runs (networks, read-only) and in the store scoped to the key that
//! every handler works through (domains, read-only; see [`gatehouse_store::ScopedStore`]).
//! Replies and requests are JSON; failures are `{"error": "<kind>", "detail": "…"}` ([`error`]; a refused
//! business rule is 422). Changes are audited as `api-key:<name>` with role `api`.
//!
//! The OpenAPI 3 document is generated with utoipa from the handlers' `#[utoipa::path]` attributes, and the
//! routes are registered from the same attributes (utoipa-axum's `routes!`), so the document lists exactly
//! the routes the router serves.
//!
//! Modules: [`auth`] (keys and limits), [`error`] (error replies, extractors), [`domains`], [`mailboxes`],
//! [`app_passwords`], [`identity_providers`], [`logs`].

pub mod app_passwords;
pub mod auth;
pub mod domains;
pub mod error;
pub mod identity_providers;
pub mod logs;
pub mod mailboxes;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use gatehouse_passwords::{GenerateScheme, HashPool};
use gatehouse_store::Store;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use self::error::ApiError;

/// What the API's handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// The store.
    pub store: Store,
    /// The bounded pool every password hash runs on.
    pub hash_pool: HashPool,
    /// The scheme new mailbox password hashes are made with (`passwords.scheme` in the configuration).
    pub password_scheme: GenerateScheme,
    /// The rule for new passwords.
    pub password_policy: gatehouse_core::PasswordPolicy,
    /// Reverse proxies whose `X-Real-IP` / `X-Forwarded-For` name the client for keys limited to networks;
    /// empty: the TCP peer is the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// The API's routes, to be nested at `/api/v1` of a router served with
/// `into_make_service_with_connect_info::<SocketAddr>()` (keys limited to networks need the peer address).
/// Generic over the outer router's state, so it nests into any router.
pub fn router<S>(state: ApiState) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let (router, document) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(domains::list_domains, domains::create_domain))
        .routes(routes!(domains::get_domain, domains::update_domain, domains::remove_domain))
        .routes(routes!(mailboxes::list_mailboxes, mailboxes::create_mailbox))
        .routes(routes!(mailboxes::get_mailbox, mailboxes::update_mailbox, mailboxes::remove_mailbox))
        .routes(routes!(app_passwords::list_app_passwords, app_passwords::create_app_password))
        .routes(routes!(app_passwords::revoke_app_password))
        .routes(routes!(identity_providers::list_providers, identity_providers::create_provider))
        .routes(routes!(
            identity_providers::get_provider,
            identity_providers::update_provider,
            identity_providers::remove_provider
        ))
        .routes(routes!(identity_providers::test_provider))
        .routes(routes!(logs::auth_log))
        .routes(routes!(logs::audit_log))
        .routes(routes!(logs::job_log))
        // Only the routes above need a key; the document below is public.
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::authenticate))
        .routes(routes!(openapi_json))
        .split_for_parts();
    let document: Arc<str> = match serde_json::to_string(&document) {
        Ok(json) => json.into(),
        Err(err) => {
            tracing::error!(error = %err, "cannot serialise the OpenAPI document");
            r#"{"error":"internal","detail":"the OpenAPI document is unavailable"}"#.into()
        }
    };
    router
        .fallback(|| async { ApiError::no_such_endpoint() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(axum::Extension(OpenApiDocument(document)))
        .layer(SetSensitiveRequestHeadersLayer::new([HeaderName::from_static(auth::API_KEY_HEADER)]))
        .with_state(state)
}

/// The OpenAPI document as served.
#[derive(Clone)]
struct OpenApiDocument(Arc<str>);

/// The OpenAPI 3 document of this API (no key needed).
#[utoipa::path(
    get, path = "/openapi.json", tag = "meta",
    security(()),
    responses((status = 200, description = "This document", content_type = "application/json", body = Object)),
)]
async fn openapi_json(axum::Extension(OpenApiDocument(document)): axum::Extension<OpenApiDocument>) -> Response {
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], document.to_string()).into_response()
}

/// The document's frame: description, servers, security; the paths come from the router.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Gatehouse REST API",
        description = "Manage the mail domains, mailboxes, app passwords and identity providers of a Gatehouse \
instance, and read its logs.\n\n\
**Authentication**: every request except `GET /openapi.json` needs an API key (made with `gatehouse api-key \
add`), sent as `Authorization: Bearer gk_…` or `X-API-Key: gk_…`. Missing, unknown, wrong or revoked keys get \
401. A read-only key gets 403 for anything but GET; a key limited to networks gets 403 from other client \
addresses (behind a trusted reverse proxy, the address it reports). A key limited to domains sees only those \
domains, their mailboxes, app passwords and log entries: other objects answer 404 and are left out of lists; \
creating outside its domains answers 403; the job log is empty for it.\n\n\
**Errors** are JSON `{\"error\": kind, \"detail\": text}`: 400 `invalid`, 401 `unauthorized`, 403 \
`forbidden`, 404 `not_found`, 405 `method_not_allowed`, 409 `already_exists`, 422 `refused` (a business rule \
such as a limit or an object still in use), 503 `unavailable` (retry later), 500 `internal`.\n\n\
**Secrets**: passwords are hashed on arrival and never returned; app-password tokens are returned once, on \
creation. Every change is written to the audit log as `api-key:<name>`."
    ),
    servers((url = "/api/v1", description = "This server")),
    modifiers(&SecuritySchemes),
    security(("bearer" = []), ("api_key" = [])),
    tags(
        (name = "domains", description = "Mail domains"),
        (name = "mailboxes", description = "Mailboxes"),
        (name = "app passwords", description = "Per-client passwords of a mailbox"),
        (name = "identity providers", description = "LDAP directories and OpenID Connect providers (keys for the \
whole instance only; secrets are write-only)"),
        (name = "logs", description = "Auth, audit and job logs"),
        (name = "meta", description = "This document"),
    ),
)]
struct ApiDoc;

/// Declares the two ways to present a key.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("gk_<id>_<secret>").build(),
            ),
        );
        components
            .add_security_scheme("api_key", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))));
    }
}
