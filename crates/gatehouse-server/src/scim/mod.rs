//! SCIM 2.0 push provisioning (RFC 7643, RFC 7644) at `/scim/v2` on the public listener: identity providers
//! that push users (Authentik, Okta, Entra ID, Keycloak with a SCIM extension) create, change and deactivate
//! the mailboxes of their users here.
//!
//! Every request needs a SCIM token (`Authorization: Bearer gs_…`, made with `gatehouse scim-token add`). A
//! token belongs to one OpenID Connect or Keycloak provider and is limited to domains: it sees and changes
//! only that provider's mailboxes in those domains, and the provider's provisioning settings (template
//! attribute and mappings, default template) and the domains' limits apply to what it pushes, as to a sync.
//! A User's `id` is the mailbox's row id; `userName` is its mail address (or, when it is not one, the
//! primary email is). DELETE deactivates the mailbox (its mail stays) and the User is gone for SCIM.
//!
//! Modules: [`error`] (SCIM error replies), [`discovery`] (ServiceProviderConfig, ResourceTypes, Schemas),
//! `users` (the User resource: representation, filters, PATCH, the handlers).

pub mod discovery;
pub mod error;
mod users;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use gatehouse_sources::dispatch::SourceSettings;
use gatehouse_sources::provisioning::ProvisioningSettings;
use gatehouse_store::{IdentityProvider, ScimToken, Store};

use self::error::ScimError;
use crate::api::auth::bearer_token;

/// The SCIM User schema.
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// The SCIM list response schema.
pub const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// The SCIM PATCH request schema.
pub const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// The most resources one list reply holds.
pub const MAX_RESULTS: usize = 1000;

/// What the SCIM handlers share.
#[derive(Clone)]
pub struct ScimState {
    /// The store.
    pub store: Store,
    /// `web.public_url`, for `meta.location` (absolute when set, else a path).
    pub public_url: Option<url::Url>,
}

impl ScimState {
    /// The URL of `path` below `/scim/v2`.
    fn location(&self, path: &str) -> String {
        let base = self.public_url.as_ref().map(|url| url.as_str().trim_end_matches('/')).unwrap_or("");
        format!("{base}/scim/v2{path}")
    }
}

/// The caller of a request: its token and the provider the token pushes for.
#[derive(Clone)]
pub struct Caller {
    /// The token.
    pub token: ScimToken,
    /// Its identity provider.
    pub provider: IdentityProvider,
    /// The provider's provisioning settings.
    pub settings: ProvisioningSettings,
    /// The attribute whose values select the template.
    pub template_attribute: Option<String>,
}

/// The SCIM routes, to be nested at `/scim/v2`. Generic over the outer router's state, so it nests into any
/// router.
pub fn router<S>(state: ScimState) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/ServiceProviderConfig", get(discovery::service_provider_config))
        .route("/ResourceTypes", get(discovery::resource_types))
        .route("/ResourceTypes/{id}", get(discovery::resource_type))
        .route("/Schemas", get(discovery::schemas))
        .route("/Schemas/{id}", get(discovery::schema))
        .route("/Users", get(users::list).post(users::create))
        .route("/Users/{id}", get(users::get).put(users::replace).patch(users::patch).delete(users::delete))
        .route("/.search", post(search_not_offered))
        .route("/Users/.search", post(search_not_offered))
        .route("/Bulk", any(|| async { ScimError::not_implemented("bulk operations are not offered") }))
        .route("/Me", any(|| async { ScimError::not_implemented("/Me is not offered: tokens are no users") }))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), authenticate))
        .fallback(|| async { ScimError::not_found("no such SCIM endpoint") })
        .method_not_allowed_fallback(|| async { ScimError::method_not_allowed() })
        .with_state(state)
}

async fn search_not_offered() -> ScimError {
    ScimError::not_implemented("searches by POST are not offered; use GET /Users?filter=…")
}

/// The middleware: the token, then its provider (present and active); records the token's use and hands the
/// handlers the [`Caller`].
async fn authenticate(State(state): State<ScimState>, mut request: Request, next: Next) -> Response {
    match caller(&state, request.headers()).await {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(err) => err.into_response(),
    }
}

async fn caller(state: &ScimState, headers: &HeaderMap) -> Result<Caller, ScimError> {
    let Some(presented) = bearer_token(headers) else { return Err(ScimError::unauthorized()) };
    let Some(token) = state.store.scim_token_for(presented).await? else {
        tracing::info!("SCIM request with an unknown, wrong or revoked token");
        return Err(ScimError::unauthorized());
    };
    let provider = state.store.identity_provider(&token.provider).await?.ok_or_else(|| {
        ScimError::forbidden(format!("the token's identity provider '{}' no longer exists", token.provider))
    })?;
    if !provider.active {
        return Err(ScimError::forbidden(format!("identity provider '{}' is inactive", provider.name)));
    }
    let parsed = SourceSettings::parse(provider.kind, &provider.settings)?;
    if token.last_use_is_stale()
        && let Err(err) = state.store.touch_scim_token(token.id).await
    {
        tracing::warn!(token = token.name, "cannot record the SCIM token's use: {err}");
    }
    Ok(Caller {
        settings: parsed.provisioning(),
        template_attribute: parsed.template_attribute().map(str::to_string),
        token,
        provider,
    })
}
