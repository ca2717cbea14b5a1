//! `/mailboxes/{address}/app-passwords`: list, create and revoke a mailbox's app passwords. The token
//! (`gh_<id>_<secret>`) is returned once, by the request that creates it; only a salted SHA-256 of the secret
//! is stored (it is random and long, so a fast hash is right), and lists never show it.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use gatehouse_engine::app_password;
use gatehouse_passwords::{GenerateScheme, Zeroizing};
use gatehouse_store::ScopedStore;
use gatehouse_store::{AppPassword, NewAppPassword};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ApiState;
use super::error::{ApiError, ApiJson, ApiPath, ApiResult, ErrorBody};
use super::mailboxes::{address as parse_address, parse_protocols, protocol_names};

/// An app password as listed: never its secret or hash.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AppPasswordView {
    /// Id (part of the token).
    pub id: i64,
    /// The mailbox it belongs to.
    pub mailbox: String,
    /// The user's name for it.
    #[schema(example = "Thunderbird at home")]
    pub name: String,
    /// Services it may be used for.
    #[schema(example = json!(["imap", "smtp"]))]
    pub protocols: Vec<String>,
    /// Not revoked.
    pub active: bool,
    /// Unix seconds after which it stops working.
    pub expires_at: Option<i64>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last successful login with it.
    pub last_used_at: Option<i64>,
}

impl From<AppPassword> for AppPasswordView {
    fn from(password: AppPassword) -> Self {
        AppPasswordView {
            protocols: protocol_names(password.protocols),
            id: password.id,
            mailbox: password.mailbox,
            name: password.name,
            active: password.active,
            expires_at: password.expires_at,
            created_at: password.created_at,
            last_used_at: password.last_used_at,
        }
    }
}

/// A new app password with its token: the only time the token is shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedAppPassword {
    /// The app password.
    #[serde(flatten)]
    pub app_password: AppPasswordView,
    /// The password the mail client uses, `gh_<id>_<secret>`. It cannot be shown again.
    #[schema(example = "gh_7_AbCdEfGhIjKlMnOpQrStUvWxYz012345")]
    pub token: String,
}

/// An app password to create.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAppPasswordRequest {
    /// A name for it (1 to 100 characters).
    #[schema(example = "Thunderbird at home")]
    pub name: String,
    /// Services it may be used for (`imap`, `pop3`, `smtp`, `sieve`, `sogo`, `dav`, `eas`, or `all`); at least
    /// one.
    #[schema(example = json!(["imap", "smtp"]))]
    pub protocols: Vec<String>,
    /// Unix seconds after which it stops working (default: never).
    pub expires_at: Option<i64>,
}

/// Lists a mailbox's app passwords, newest first (never their secrets).
#[utoipa::path(
    get, path = "/mailboxes/{address}/app-passwords", tag = "app passwords",
    params(("address" = String, Path, description = "Mailbox address", example = "user@example.org")),
    responses(
        (status = 200, description = "The app passwords, newest first", body = Vec<AppPasswordView>),
        (status = 400, description = "Not a mail address", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 403, description = "Source address not allowed", body = ErrorBody),
        (status = 404, description = "No such mailbox (or outside the key's domains)", body = ErrorBody),
        (status = 503, description = "Temporarily unavailable", body = ErrorBody),
    ),
)]
pub async fn list_app_passwords(
    Extension(store): Extension<ScopedStore>,
    ApiPath(address): ApiPath<String>,
) -> ApiResult<Json<Vec<AppPasswordView>>> {
    let address = parse_address(&address)?;
    let passwords = store.list_app_passwords(&address).await?;
    Ok(Json(passwords.into_iter().map(AppPasswordView::from).collect()))
}

/// Creates an app password and returns its token, once.
#[utoipa::path(
    post, path = "/mailboxes/{address}/app-passwords", tag = "app passwords",
    params(("address" = String, Path, description = "Mailbox address", example = "user@example.org")),
    request_body = NewAppPasswordRequest,
    responses(
        (status = 201, description = "Created; the token is shown only now", body = CreatedAppPassword),
        (status = 400, description = "Malformed request, no protocol, bad name or past expiry", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 403, description = "Read-only key or source address not allowed", body = ErrorBody),
        (status = 404, description = "No such mailbox (or outside the key's domains)", body = ErrorBody),
        (status = 503, description = "Temporarily unavailable (database or hash pool)", body = ErrorBody),
    ),
)]
pub async fn create_app_password(
    State(state): State<ApiState>,
    Extension(store): Extension<ScopedStore>,
    ApiPath(address): ApiPath<String>,
    ApiJson(body): ApiJson<NewAppPasswordRequest>,
) -> ApiResult<impl IntoResponse> {
    let address = parse_address(&address)?;
    let protocols = parse_protocols(&body.protocols)?;
    if protocols.is_empty() {
        return Err(ApiError::invalid("an app password needs at least one protocol"));
    }
    let secret = Zeroizing::new(app_password::new_secret());
    let secret_hash =
        state.hash_pool.generate(Zeroizing::new(secret.as_bytes().to_vec()), GenerateScheme::Ssha256).await?;
    let new = NewAppPassword { name: body.name, protocols, expires_at: body.expires_at, secret_hash };
    let created = store.create_app_password(&address, new).await?;
    let token = app_password::token(created.id, &secret);
    Ok((StatusCode::CREATED, Json(CreatedAppPassword { app_password: created.into(), token })))
}

/// Revokes an app password; it stops working at once and stays listed (revoked).
#[utoipa::path(
    delete, path = "/mailboxes/{address}/app-passwords/{id}", tag = "app passwords",
    params(
        ("address" = String, Path, description = "Mailbox address", example = "user@example.org"),
        ("id" = i64, Path, description = "App password id"),
    ),
    responses(
        (status = 200, description = "Revoked", body = AppPasswordView),
        (status = 400, description = "Not a mail address or not an id", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 403, description = "Read-only key or source address not allowed", body = ErrorBody),
        (status = 404, description = "No such mailbox or app password (or not the key's)", body = ErrorBody),
        (status = 503, description = "Temporarily unavailable", body = ErrorBody),
    ),
)]
pub async fn revoke_app_password(
    Extension(store): Extension<ScopedStore>,
    ApiPath((address, id)): ApiPath<(String, String)>,
) -> ApiResult<Json<AppPasswordView>> {
    let address = parse_address(&address)?;
    let id: i64 = id.trim().parse().map_err(|_| ApiError::invalid(format!("'{id}' is not an app password id")))?;
    Ok(Json(store.revoke_app_password(&address, id).await?.into()))
}
