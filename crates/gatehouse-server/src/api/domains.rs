//! `/domains` and `/domains/{name}`: list, create, show, change and remove mail domains. A key limited to
//! domains lists only those, gets 404 for others, and may create only domains on its list.

use axum::Extension;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use gatehouse_core::DomainName;
use gatehouse_store::ScopedStore;
use gatehouse_store::{Domain, DomainChanges, NewDomain};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiJson, ApiPath, ApiResult, ErrorBody};

/// A mail domain with its current usage.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DomainView {
    /// ASCII (punycode) name.
    #[schema(example = "example.org")]
    pub name: String,
    /// Unicode name, for display.
    pub unicode_name: String,
    /// Free text.
    pub description: String,
    /// Inactive domains refuse every login and new mailboxes.
    pub active: bool,
    /// Most mailboxes the domain may have; 0 means no limit.
    pub max_mailboxes: i64,
    /// Quota given to new mailboxes that name none, in MiB; 0 means unlimited.
    pub default_quota_mib: i64,
    /// Largest quota of one mailbox, in MiB; 0 means no limit.
    pub max_quota_mib: i64,
    /// Largest sum of all mailbox quotas, in MiB; 0 means no limit.
    pub total_quota_mib: i64,
    /// Number of mailboxes now.
    pub mailboxes: i64,
    /// Sum of the mailbox quotas now, in MiB.
    pub quota_used_mib: i64,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub modified_at: i64,
}

impl From<Domain> for DomainView {
    fn from(domain: Domain) -> Self {
        DomainView {
            name: domain.name,
            unicode_name: domain.unicode_name,
            description: domain.description,
            active: domain.active,
            max_mailboxes: domain.max_mailboxes,
            default_quota_mib: domain.default_quota_mib,
            max_quota_mib: domain.max_quota_mib,
            total_quota_mib: domain.total_quota_mib,
            mailboxes: domain.mailboxes,
            quota_used_mib: domain.quota_used_mib,
            created_at: domain.created_at,
            modified_at: domain.modified_at,
        }
    }
}

/// A domain to create. Unset limits mean "no limit"; `active` defaults to true.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDomainRequest {
    /// The name, in Unicode or ASCII form (stored as ASCII).
    #[schema(example = "example.org")]
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Active on creation (default true).
    pub active: Option<bool>,
    /// Most mailboxes; 0 means no limit.
    pub max_mailboxes: Option<i64>,
    /// Quota of new mailboxes that name none, in MiB.
    pub default_quota_mib: Option<i64>,
    /// Largest quota of one mailbox, in MiB.
    pub max_quota_mib: Option<i64>,
    /// Largest sum of all mailbox quotas, in MiB.
    pub total_quota_mib: Option<i64>,
}

/// Changes to a domain; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DomainChangesRequest {
    /// New description.
    pub description: Option<String>,
    /// Activate or deactivate.
    pub active: Option<bool>,
    /// New mailbox limit.
    pub max_mailboxes: Option<i64>,
    /// New default quota, in MiB.
    pub default_quota_mib: Option<i64>,
    /// New per-mailbox quota limit, in MiB.
    pub max_quota_mib: Option<i64>,
    /// New total quota limit, in MiB.
    pub total_quota_mib: Option<i64>,
}

/// Lists the domains the key may see, by name.
#[utoipa::path(
    get, path = "/domains", tag = "domains",
    responses(
        (status = 200, description = "The domains, by name", body = Vec<DomainView>),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 403, description = "Source address not allowed", body = ErrorBody),
        (status = 503, description = "Temporarily unavailable", body = ErrorBody),
    ),
)]
pub async fn list_domains(Extension(store): Extension<ScopedStore>) -> ApiResult<Json<Vec<DomainView>>> {
    let domains = store.list_domains().await?;
    Ok(Json(domains.into_iter().map(DomainView::from).collect()))
}

/// Creates a domain.
#[utoipa::path(
    post, path = "/domains", tag = "domains",
    request_body = NewDomainRequest,
    responses(
        (status = 201, description = "Created", body = DomainView),
        (status = 400, description = "Malformed request or invalid values", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 403, description = "Read-only key, address not allowed, or not the key's domain", body = ErrorBody),
        (status = 409, description = "The domain exists already", body = ErrorBody),
        (status = 503, description = "Temporarily unavailable", body = ErrorBody),
    ),
)]
pub async fn create_domain(
    Extension(store): Extension<ScopedStore>,
    ApiJson(body): ApiJson<NewDomainRequest>,
) -> ApiResult<impl IntoResponse> {
    let name = DomainName::parse(&body.name)?;
    let mut new = NewDomain::new(name);
    new.description = body.description.unwrap_or_default();
    new.active = body.active.unwrap_or(true);
    new.max_mailboxes = body.max_mailboxes.unwrap_or(0);
    new.default_quota_mib = body.default_quota_mib.unwrap_or(0);
    new.max_quota_mib = body.max_quota_mib.unwrap_or(0);
    new.total_quota_mib = body.total_quota_mib.unwrap_or(0);
    let created = store.create_domain(new).await?;
    Ok((StatusCode::CREATED, Json(DomainView::from(created))))
}

/// Shows one domain.
#[utoipa::path(
    get, path = "/domains/{name}", tag = "domains",
    params(("name" = String, Path, description = "Domain name", example = "example.org")),
    responses(
        (status = 200, description = "The domain", body = DomainView),
        (status = 400, description = "Not a domain name", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 403, description = "Source address not allowed", body = ErrorBody),
        (status = 404, description = "No such domain (or outside the key's domains)", body = ErrorBody),
        (status = 503, description = "Temporarily unavailable", body = ErrorBody),
    ),
)]
pub async fn get_domain(
    Extension(store): Extension<ScopedStore>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<DomainView>> {
    let name = DomainName::parse(&name)?;
    Ok(Json(store.domain(&name).await?.into()))
}

/// Changes a domain. Limits cannot drop below what its mailboxes already use.
#[utoipa::path(
    patch, path = "/domains/{name}", tag = "domains",
    params(("name" = String, Path, description = "Domain name", example = "example.org")),
    request_body = DomainChangesRequest,
    responses(
        (status = 200, description = "The changed domain", body = DomainView),
        (status = 400, description = "Malformed request or invalid values", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 403, description = "Read-only key or source address not allowed", body = ErrorBody),
        (status = 404, description = "No such domain (or outside the key's domains)", body = ErrorBody),
        (status = 422, description = "A rule refused the change (limits below current usage)", body = ErrorBody),
        (status = 503, description = "Temporarily unavailable", body = ErrorBody),
    ),
)]
pub async fn update_domain(
    Extension(store): Extension<ScopedStore>,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<DomainChangesRequest>,
) -> ApiResult<Json<DomainView>> {
    let name = DomainName::parse(&name)?;
    let changes = DomainChanges {
        description: body.description,
        active: body.active,
        max_mailboxes: body.max_mailboxes,
        default_quota_mib: body.default_quota_mib,
        max_quota_mib: body.max_quota_mib,
        total_quota_mib: body.total_quota_mib,
    };
    Ok(Json(store.update_domain(&name, changes).await?.into()))
}

/// Removes a domain that has no mailboxes left.
#[utoipa::path(
    delete, path = "/domains/{name}", tag = "domains",
    params(("name" = String, Path, description = "Domain name", example = "example.org")),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "Not a domain name", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 403, description = "Read-only key or source address not allowed", body = ErrorBody),
        (status = 404, description = "No such domain (or outside the key's domains)", body = ErrorBody),
        (status = 422, description = "The domain still has mailboxes", body = ErrorBody),
        (status = 503, description = "Temporarily unavailable", body = ErrorBody),
    ),
)]
pub async fn remove_domain(
    Extension(store): Extension<ScopedStore>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let name = DomainName::parse(&name)?;
    store.remove_domain(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}
