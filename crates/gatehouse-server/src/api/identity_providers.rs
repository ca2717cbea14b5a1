//! `/identity-providers`: the LDAP directories and OpenID Connect providers (`ldap`, `oidc`, `keycloak`), for
//! keys not limited to domains (a key limited to domains gets 403; a read-only key reads them). Settings are checked as
//! `gatehouse idp add|edit` checks them before anything is stored; secrets (an LDAP bind password, a client
//! secret) are write-only: requests may carry them, replies name them only.

use std::collections::BTreeMap;

use axum::Extension;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use gatehouse_core::{Error, Secret};
use gatehouse_sources::dispatch::{check_provider, merge_settings};
use gatehouse_sources::registry::build_source;
use gatehouse_store::{
    IdentityProvider, IdentityProviderChanges, IdentityProviderKind, NewIdentityProvider, ScopedStore,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiJson, ApiPath, ApiResult, ErrorBody};

/// An identity provider, without its secrets.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProviderView {
    /// Its name: the auth source of its mailboxes.
    #[schema(example = "corp")]
    pub name: String,
    /// `ldap`, `oidc` or `keycloak`.
    pub kind: String,
    /// Inactive providers check nothing and sign nobody in.
    pub active: bool,
    /// The kind's settings, as `gatehouse idp show` prints them.
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
    /// The names of the secrets stored for it (never their values).
    pub secret_names: Vec<String>,
    /// Attribute or claim value → template, in priority order.
    pub mappings: Vec<MappingView>,
    /// Warnings about its settings (TLS certificates not checked, …).
    pub warnings: Vec<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub modified_at: i64,
}

/// One mapping.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MappingView {
    /// The attribute or claim value.
    pub value: String,
    /// The template it selects.
    pub template: String,
}

impl From<IdentityProvider> for ProviderView {
    fn from(provider: IdentityProvider) -> Self {
        let warnings = if provider.ignores_tls_errors() {
            vec!["TLS certificates are not checked (ignore_tls_errors)".to_string()]
        } else {
            Vec::new()
        };
        ProviderView {
            kind: provider.kind.to_string(),
            active: provider.active,
            settings: provider.settings,
            secret_names: provider.secret_names,
            mappings: provider
                .mappings
                .into_iter()
                .map(|m| MappingView { value: m.attribute_value, template: m.template })
                .collect(),
            warnings,
            created_at: provider.created_at,
            modified_at: provider.modified_at,
            name: provider.name,
        }
    }
}

/// A provider to add.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProviderRequest {
    /// Its name.
    pub name: String,
    /// `ldap`, `oidc` or `keycloak`.
    pub kind: String,
    /// The kind's settings (see the README: the same JSON as `gatehouse idp add --settings`).
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
    /// Its secrets by name: `bind_password` (ldap), `client_secret` (oidc and keycloak, unless a public client).
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
}

/// Changes to a provider; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderChangesRequest {
    /// Settings to change: each key replaces the stored one, `null` removes it (back to its default).
    #[schema(value_type = Object)]
    pub settings: Option<serde_json::Value>,
    /// Activate or deactivate.
    pub active: Option<bool>,
    /// New secrets by name (the others stay).
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
}

/// One step of a connection test.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TestStep {
    /// What was checked.
    pub step: String,
    /// Whether it worked.
    pub ok: bool,
    /// What was found, or why it failed.
    pub detail: String,
}

fn secrets(given: BTreeMap<String, String>) -> BTreeMap<String, Secret> {
    given.into_iter().map(|(name, value)| (name, Secret::new(value.as_str()))).collect()
}

async fn find(store: &gatehouse_store::Store, name: &str) -> ApiResult<IdentityProvider> {
    Ok(store.identity_provider(name).await?.ok_or_else(|| Error::not_found("identity provider", name))?)
}

/// Lists the identity providers, by name.
#[utoipa::path(
    get, path = "/identity-providers", tag = "identity providers",
    responses(
        (status = 200, description = "The providers, by name", body = Vec<ProviderView>),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 403, description = "A key limited to domains, or an address not allowed", body = ErrorBody),
        (status = 503, description = "Temporarily unavailable", body = ErrorBody),
    ),
)]
pub async fn list_providers(Extension(store): Extension<ScopedStore>) -> ApiResult<Json<Vec<ProviderView>>> {
    let providers = store.identity_provider_store(false)?.list_identity_providers().await?;
    Ok(Json(providers.into_iter().map(ProviderView::from).collect()))
}

/// Adds an identity provider.
#[utoipa::path(
    post, path = "/identity-providers", tag = "identity providers",
    request_body = NewProviderRequest,
    responses(
        (status = 201, description = "Added", body = ProviderView),
        (status = 400, description = "Malformed request, unknown kind or setting, a secret missing", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 403, description = "Read-only or domain-limited key, or an address not allowed", body = ErrorBody),
        (status = 409, description = "A provider of that name exists", body = ErrorBody),
        (status = 503, description = "Temporarily unavailable", body = ErrorBody),
    ),
)]
pub async fn create_provider(
    Extension(store): Extension<ScopedStore>,
    ApiJson(body): ApiJson<NewProviderRequest>,
) -> ApiResult<impl IntoResponse> {
    let instance = store.identity_provider_store(true)?;
    let kind: IdentityProviderKind = body.kind.parse()?;
    let secrets = secrets(body.secrets);
    check_provider(kind, &body.settings, &secrets, &[])?;
    let new = NewIdentityProvider { name: body.name, kind, settings: body.settings, secrets };
    let created = instance.create_identity_provider(store.actor(), new).await?;
    Ok((StatusCode::CREATED, Json(ProviderView::from(created))))
}

/// One identity provider.
#[utoipa::path(
    get, path = "/identity-providers/{name}", tag = "identity providers",
    params(("name" = String, Path, description = "The provider's name")),
    responses(
        (status = 200, description = "The provider", body = ProviderView),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 403, description = "A key limited to domains, or an address not allowed", body = ErrorBody),
        (status = 404, description = "No such provider", body = ErrorBody),
        (status = 503, description = "Temporarily unavailable", body = ErrorBody),
    ),
)]
pub async fn get_provider(
    Extension(store): Extension<ScopedStore>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<ProviderView>> {
    Ok(Json(ProviderView::from(find(store.identity_provider_store(false)?, &name).await?)))
}

/// Changes an identity provider's settings, active flag or secrets.
#[utoipa::path(
    patch, path = "/identity-providers/{name}", tag = "identity providers",
    params(("name" = String, Path, description = "The provider's name")),
    request_body = ProviderChangesRequest,
    responses(
        (status = 200, description = "Changed", body = ProviderView),
        (status = 400, description = "Malformed request, unknown setting or secret", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 403, description = "Read-only or domain-limited key, or an address not allowed", body = ErrorBody),
        (status = 404, description = "No such provider", body = ErrorBody),
        (status = 503, description = "Temporarily unavailable", body = ErrorBody),
    ),
)]
pub async fn update_provider(
    Extension(store): Extension<ScopedStore>,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<ProviderChangesRequest>,
) -> ApiResult<Json<ProviderView>> {
    let instance = store.identity_provider_store(true)?;
    let current = find(instance, &name).await?;
    let settings = body.settings.map(|patch| merge_settings(&current.settings, &patch)).transpose()?;
    let secrets = secrets(body.secrets);
    if settings.is_some() || !secrets.is_empty() {
        check_provider(current.kind, settings.as_ref().unwrap_or(&current.settings), &secrets, &current.secret_names)?;
    }
    let changes = IdentityProviderChanges { settings, active: body.active, secrets };
    let updated = instance.update_identity_provider(store.actor(), &name, changes).await?;
    Ok(Json(ProviderView::from(updated)))
}

/// Removes an identity provider without mailboxes.
#[utoipa::path(
    delete, path = "/identity-providers/{name}", tag = "identity providers",
    params(("name" = String, Path, description = "The provider's name")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 403, description = "Read-only or domain-limited key, or an address not allowed", body = ErrorBody),
        (status = 404, description = "No such provider", body = ErrorBody),
        (status = 422, description = "Mailboxes still use it", body = ErrorBody),
        (status = 503, description = "Temporarily unavailable", body = ErrorBody),
    ),
)]
pub async fn remove_provider(
    Extension(store): Extension<ScopedStore>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<StatusCode> {
    store.identity_provider_store(true)?.remove_identity_provider(store.actor(), &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Runs a provider's connection test (as `gatehouse idp test`), step by step.
#[utoipa::path(
    post, path = "/identity-providers/{name}/test", tag = "identity providers",
    params(("name" = String, Path, description = "The provider's name")),
    responses(
        (status = 200, description = "The steps; a failed step has ok false", body = Vec<TestStep>),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 403, description = "A key limited to domains, or an address not allowed", body = ErrorBody),
        (status = 404, description = "No such provider", body = ErrorBody),
        (status = 503, description = "Temporarily unavailable", body = ErrorBody),
    ),
)]
pub async fn test_provider(
    Extension(store): Extension<ScopedStore>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Vec<TestStep>>> {
    let instance = store.identity_provider_store(false)?;
    let provider = find(instance, &name).await?;
    let source = build_source(instance, &provider).await?;
    let steps = source
        .test(None)
        .await
        .into_iter()
        .map(|(step, outcome)| match outcome {
            Ok(detail) => TestStep { step, ok: true, detail },
            Err(detail) => TestStep { step, ok: false, detail },
        })
        .collect();
    Ok(Json(steps))
}
