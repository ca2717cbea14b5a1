//! `/mailboxes` and `/mailboxes/{address}`: list, create, show, change and remove mailboxes. A password in a
//! request is hashed on the hash pool with the configured scheme and never returned; replies never carry
//! hashes (`has_local_password` says whether one is stored).

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use gatehouse_core::{DomainName, MailboxAddress, ProtocolSet};
use gatehouse_passwords::Zeroizing;
use gatehouse_store::ScopedStore;
use gatehouse_store::{Mailbox, MailboxChanges, NewMailbox};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::ApiState;
use super::error::{ApiJson, ApiPath, ApiQuery, ApiResult, ErrorBody};

/// A mailbox. Its password hash is never included.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MailboxView {
    /// Full address.
    #[schema(example = "user@example.org")]
    pub address: String,
    /// Part before `@`.
    pub local_part: String,
    /// Domain (ASCII).
    pub domain: String,
    /// Display name.
    pub display_name: String,
    /// `local` or the name of an identity provider.
    pub auth_source: String,
    /// Whether a local password hash is stored.
    pub has_local_password: bool,
    /// Template it was made from or last synchronised with.
    pub template: Option<String>,
    /// Quota in MiB; 0 means unlimited.
    pub quota_mib: i64,
    /// Protocols the mailbox may use.
    #[schema(example = json!(["imap", "smtp"]))]
    pub protocols: Vec<String>,
    /// Inactive mailboxes refuse every login.
    pub active: bool,
    /// The user must choose a new password before anything else.
    pub force_password_change: bool,
    /// The user must set up TOTP before anything else in the web UI.
    pub force_totp: bool,
    /// Subject id at the identity provider, for IdP-bound mailboxes.
    pub external_id: Option<String>,
    /// Other attributes (a JSON object).
    pub attributes: serde_json::Value,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub modified_at: i64,
}

impl From<Mailbox> for MailboxView {
    fn from(mailbox: Mailbox) -> Self {
        MailboxView {
            protocols: protocol_names(mailbox.protocols),
            address: mailbox.address,
            local_part: mailbox.local_part,
            domain: mailbox.domain,
            display_name: mailbox.display_name,
            auth_source: mailbox.auth_source,
            has_local_password: mailbox.has_local_password,
            template: mailbox.template,
            quota_mib: mailbox.quota_mib,
            active: mailbox.active,
            force_password_change: mailbox.force_password_change,
            force_totp: mailbox.force_totp,
            external_id: mailbox.external_id,
            attributes: gatehouse_store::public_attributes(&mailbox.attributes),
            created_at: mailbox.created_at,
            modified_at: mailbox.modified_at,
        }
    }
}

/// The names of a protocol set, in canonical order.
pub(crate) fn protocol_names(protocols: ProtocolSet) -> Vec<String> {
    protocols.iter().map(|service| service.as_str().to_string()).collect()
}

/// Parses protocol names (`imap`, `pop3`, `smtp`, `sieve`, `sogo`, `dav`, `eas`, or `all`).
pub(crate) fn parse_protocols(names: &[String]) -> ApiResult<ProtocolSet> {
    Ok(names.join(",").parse::<ProtocolSet>()?)
}

/// A mailbox to create. Unset settings come from the template, then from the domain's defaults.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMailboxRequest {
    /// The address; its domain must exist and be active.
    #[schema(example = "user@example.org")]
    pub address: String,
    /// Display name (default: the local part).
    pub display_name: Option<String>,
    /// A password; it is hashed with the configured scheme and never shown again.
    #[schema(format = Password, write_only)]
    pub password: Option<String>,
    /// `local` (default) or the name of an identity provider.
    pub auth_source: Option<String>,
    /// Template name.
    pub template: Option<String>,
    /// Quota in MiB.
    pub quota_mib: Option<i64>,
    /// Protocols (`imap`, `pop3`, `smtp`, `sieve`, `sogo`, `dav`, `eas`, or `all`).
    pub protocols: Option<Vec<String>>,
    /// Active (default: the template's, else true).
    pub active: Option<bool>,
    /// Force a password change at the next web login.
    pub force_password_change: Option<bool>,
    /// Require TOTP enrolment at the next web login.
    pub force_totp: Option<bool>,
    /// Subject id at the identity provider.
    pub external_id: Option<String>,
}

/// Changes to a mailbox; absent fields stay as they are.
#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MailboxChangesRequest {
    /// New display name.
    pub display_name: Option<String>,
    /// New password; hashed with the configured scheme and never shown again.
    #[schema(format = Password, write_only)]
    pub password: Option<String>,
    /// New auth source; the local password is kept either way.
    pub auth_source: Option<String>,
    /// Apply this template (its quota and protocols, unless given too).
    pub template: Option<String>,
    /// New quota in MiB.
    pub quota_mib: Option<i64>,
    /// New protocols.
    pub protocols: Option<Vec<String>>,
    /// Activate or deactivate.
    pub active: Option<bool>,
    /// Set or clear the forced password change.
    pub force_password_change: Option<bool>,
    /// Set or clear the forced TOTP enrolment.
    pub force_totp: Option<bool>,
    /// New external subject id.
    pub external_id: Option<String>,
}

/// Filter of the mailbox list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MailboxListQuery {
    /// Only mailboxes of this domain.
    pub domain: Option<String>,
}

/// Hashes a password from a request on the hash pool with the configured scheme.
pub(crate) async fn hash_password(state: &ApiState, password: String) -> ApiResult<String> {
    let password = Zeroizing::new(password.into_bytes());
    state.password_policy.check(&password)?;
    Ok(state.hash_pool.generate(password, state.password_scheme).await?)
}

/// Parses a mailbox address from the path (the scoped store decides whether the key may see it).
pub(crate) fn address(text: &str) -> ApiResult<MailboxAddress> {
    Ok(MailboxAddress::parse(text)?)
}

/// Lists mailboxes by address: those of `domain`, or all the key may see.
#[utoipa::path(
    get, path = "/mailboxes", tag = "mailboxes",
    params(MailboxListQuery),
    responses(
        (status = 200, description = "The mailboxes, by address", body = Vec<MailboxView>),
        (status = 400, description = "Not a domain name", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 403, description = "Source address not allowed", body = ErrorBody),
        (status = 404, description = "No such domain (or outside the key's domains)", body = ErrorBody),
        (status = 503, description = "Temporarily unavailable", body = ErrorBody),
    ),
)]
pub async fn list_mailboxes(
    Extension(store): Extension<ScopedStore>,
    ApiQuery(query): ApiQuery<MailboxListQuery>,
) -> ApiResult<Json<Vec<MailboxView>>> {
    let domain = match query.domain.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
        Some(text) => Some(DomainName::parse(text)?),
        None => None,
    };
    let mailboxes = store.list_mailboxes(domain.as_ref()).await?;
    Ok(Json(mailboxes.into_iter().map(MailboxView::from).collect()))
}

/// Creates a mailbox, hashing its password if one is given.
#[utoipa::path(
    post, path = "/mailboxes", tag = "mailboxes",
    request_body = NewMailboxRequest,
    responses(
        (status = 201, description = "Created", body = MailboxView),
        (status = 400, description = "Malformed request or invalid values", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 403, description = "Read-only key, address not allowed, or not the key's domain", body = ErrorBody),
        (status = 404, description = "No such domain or template", body = ErrorBody),
        (status = 409, description = "The mailbox exists already", body = ErrorBody),
        (status = 422, description = "A rule refused it (inactive domain, mailbox limit, quota)", body = ErrorBody),
        (status = 503, description = "Temporarily unavailable (database or hash pool)", body = ErrorBody),
    ),
)]
pub async fn create_mailbox(
    State(state): State<ApiState>,
    Extension(store): Extension<ScopedStore>,
    ApiJson(body): ApiJson<NewMailboxRequest>,
) -> ApiResult<impl IntoResponse> {
    let address = MailboxAddress::parse(&body.address)?;
    let protocols = body.protocols.as_deref().map(parse_protocols).transpose()?;
    let password_hash = match body.password {
        Some(password) => Some(hash_password(&state, password).await?),
        None => None,
    };
    let mut new = NewMailbox::new(address);
    new.display_name = body.display_name;
    new.password_hash = password_hash;
    new.auth_source = body.auth_source;
    new.template = body.template;
    new.quota_mib = body.quota_mib;
    new.protocols = protocols;
    new.active = body.active;
    new.force_password_change = body.force_password_change.unwrap_or(false);
    new.force_totp = body.force_totp.unwrap_or(false);
    new.external_id = body.external_id;
    let created = store.create_mailbox(new).await?;
    Ok((StatusCode::CREATED, Json(MailboxView::from(created))))
}

/// Shows one mailbox.
#[utoipa::path(
    get, path = "/mailboxes/{address}", tag = "mailboxes",
    params(("address" = String, Path, description = "Mailbox address", example = "user@example.org")),
    responses(
        (status = 200, description = "The mailbox", body = MailboxView),
        (status = 400, description = "Not a mail address", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 403, description = "Source address not allowed", body = ErrorBody),
        (status = 404, description = "No such mailbox (or outside the key's domains)", body = ErrorBody),
        (status = 503, description = "Temporarily unavailable", body = ErrorBody),
    ),
)]
pub async fn get_mailbox(
    Extension(store): Extension<ScopedStore>,
    ApiPath(address): ApiPath<String>,
) -> ApiResult<Json<MailboxView>> {
    let address = self::address(&address)?;
    Ok(Json(store.mailbox(&address).await?.into()))
}

/// Changes a mailbox, checking the same rules as creation; a new password is hashed.
#[utoipa::path(
    patch, path = "/mailboxes/{address}", tag = "mailboxes",
    params(("address" = String, Path, description = "Mailbox address", example = "user@example.org")),
    request_body = MailboxChangesRequest,
    responses(
        (status = 200, description = "The changed mailbox", body = MailboxView),
        (status = 400, description = "Malformed request or invalid values", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 403, description = "Read-only key or source address not allowed", body = ErrorBody),
        (status = 404, description = "No such mailbox or template (or outside the key's domains)", body = ErrorBody),
        (status = 422, description = "A rule refused the change (quota)", body = ErrorBody),
        (status = 503, description = "Temporarily unavailable (database or hash pool)", body = ErrorBody),
    ),
)]
pub async fn update_mailbox(
    State(state): State<ApiState>,
    Extension(store): Extension<ScopedStore>,
    ApiPath(address): ApiPath<String>,
    ApiJson(body): ApiJson<MailboxChangesRequest>,
) -> ApiResult<Json<MailboxView>> {
    let address = self::address(&address)?;
    let protocols = body.protocols.as_deref().map(parse_protocols).transpose()?;
    let password_hash = match body.password {
        Some(password) => Some(hash_password(&state, password).await?),
        None => None,
    };
    let changes = MailboxChanges {
        display_name: body.display_name,
        password_hash,
        auth_source: body.auth_source,
        template: body.template,
        quota_mib: body.quota_mib,
        protocols,
        active: body.active,
        force_password_change: body.force_password_change,
        force_totp: body.force_totp,
        external_id: body.external_id,
        deprovisioned_by: None,
        scim: None,
    };
    Ok(Json(store.update_mailbox(&address, changes).await?.into()))
}

/// Removes a mailbox and its app passwords.
#[utoipa::path(
    delete, path = "/mailboxes/{address}", tag = "mailboxes",
    params(("address" = String, Path, description = "Mailbox address", example = "user@example.org")),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "Not a mail address", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 403, description = "Read-only key or source address not allowed", body = ErrorBody),
        (status = 404, description = "No such mailbox (or outside the key's domains)", body = ErrorBody),
        (status = 503, description = "Temporarily unavailable", body = ErrorBody),
    ),
)]
pub async fn remove_mailbox(
    Extension(store): Extension<ScopedStore>,
    ApiPath(address): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let address = self::address(&address)?;
    store.remove_mailbox(&address).await?;
    Ok(StatusCode::NO_CONTENT)
}
