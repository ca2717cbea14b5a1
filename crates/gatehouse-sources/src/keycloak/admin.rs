//! The client of Keycloak's admin REST API: the service account's token (client credentials at the realm's
//! token endpoint), kept until shortly before it expires and fetched by one request at a time; GETs under
//! `<server>/admin/realms/<realm>` with it, where a 401 renews the token once and a 403 names the missing
//! `view-users` role. Every failure is a temporary one ([`Error::Unavailable`]): it is the server's or the
//! operator's to fix, never the user's.

use std::time::{Duration, Instant};

use gatehouse_core::{Error, Secret};
use reqwest::StatusCode;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::{KeycloakRealm, KeycloakSettings};
use crate::oidc::{describe, read_json_capped};

/// The largest admin API answer read (a page of users with their attributes).
const MAX_ADMIN_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// How long before its expiry a token is renewed (at most half its lifetime).
const RENEW_BEFORE: Duration = Duration::from_secs(30);

/// The admin API's addresses and the cached service-account token.
pub(super) struct AdminApi {
    base: String,
    token_url: String,
    token: tokio::sync::Mutex<Option<ServiceToken>>,
    /// The internal id of the client whose role users must hold, once looked up.
    role_client: tokio::sync::Mutex<Option<String>>,
}

struct ServiceToken {
    value: Secret,
    renew_at: Instant,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct TokenError {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

impl AdminApi {
    pub(super) fn new(settings: &KeycloakSettings) -> Self {
        AdminApi {
            base: settings.admin_url(),
            token_url: format!("{}/protocol/openid-connect/token", settings.issuer()),
            token: tokio::sync::Mutex::new(None),
            role_client: tokio::sync::Mutex::new(None),
        }
    }
}

fn unavailable(detail: impl std::fmt::Display) -> Error {
    Error::Unavailable(format!("Keycloak admin API: {detail}"))
}

impl KeycloakRealm {
    /// A token of the client's service account: the cached one while it is fresh and not `refused`, else a
    /// new one (callers wait for one request instead of each making their own).
    pub(super) async fn service_token(&self, refused: Option<&str>) -> Result<Secret, Error> {
        let mut cached = self.admin.token.lock().await;
        if let Some(token) = cached.as_ref()
            && Instant::now() < token.renew_at
            && refused != Some(token.value.expose())
        {
            return Ok(token.value.clone());
        }
        *cached = None;
        let fresh = self.fetch_token().await?;
        let value = fresh.value.clone();
        *cached = Some(fresh);
        Ok(value)
    }

    /// Client credentials at the realm's token endpoint.
    async fn fetch_token(&self) -> Result<ServiceToken, Error> {
        let url = &self.admin.token_url;
        let client = &self.oidc.client().client_id;
        let mut form = vec![("grant_type", "client_credentials".to_string())];
        let request = self.oidc.http().post(url).header(reqwest::header::ACCEPT, "application/json");
        let request = self.oidc.client_authentication(request, &mut form, false);
        let failed = |detail: String| unavailable(format!("the service-account token from {url}: {detail}"));
        let started = Instant::now();
        let response = request.form(&form).send().await.map_err(|err| failed(describe(&err)))?;
        let status = response.status();
        if status.is_client_error() {
            let body = response.bytes().await.unwrap_or_default();
            let why = match serde_json::from_slice::<TokenError>(&body) {
                Ok(TokenError { error, error_description }) => {
                    let hint = match error.as_str() {
                        "invalid_client" => " — check the client id and secret",
                        "unauthorized_client" => " — turn on the client's service account (\"Service accounts roles\")",
                        _ => "",
                    };
                    format!("{error}{}{hint}", error_description.map(|d| format!(" ({d})")).unwrap_or_default())
                }
                Err(_) => format!("HTTP {status}"),
            };
            return Err(failed(format!("Keycloak refused client {client}: {why}")));
        }
        let answer: TokenAnswer = read_json_capped(response, MAX_ADMIN_RESPONSE_BYTES, failed).await?;
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(60));
        let renew_at = started + lifetime - RENEW_BEFORE.min(lifetime / 2);
        Ok(ServiceToken { value: Secret::new(answer.access_token), renew_at })
    }

    /// GETs `path` (under the realm's admin API) with `query`; `None` for a 404.
    pub(super) async fn admin_get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Option<T>, Error> {
        let mut url = url::Url::parse(&format!("{}{path}", self.admin.base))
            .map_err(|err| Error::Internal(format!("admin API address {}{path}: {err}", self.admin.base)))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let shown = format!("{}{path}", self.admin.base);
        let failed = |detail: String| unavailable(format!("{shown}: {detail}"));
        let mut refused: Option<Secret> = None;
        loop {
            let token = self.service_token(refused.as_ref().map(Secret::expose)).await?;
            let response = self
                .oidc
                .http()
                .get(url.clone())
                .bearer_auth(token.expose())
                .header(reqwest::header::ACCEPT, "application/json")
                .send()
                .await
                .map_err(|err| failed(describe(&err)))?;
            match response.status() {
                StatusCode::UNAUTHORIZED if refused.is_none() => {
                    tracing::debug!("Keycloak refused the cached service-account token; fetching a new one");
                    refused = Some(token);
                }
                StatusCode::UNAUTHORIZED => {
                    return Err(failed("a fresh service-account token is refused too (HTTP 401)".into()));
                }
                StatusCode::FORBIDDEN => {
                    return Err(failed(format!(
                        "HTTP 403: the service account of client {} may not read users — give it the \
                         realm-management role view-users",
                        self.oidc.client().client_id
                    )));
                }
                StatusCode::NOT_FOUND => return Ok(None),
                _ => return read_json_capped(response, MAX_ADMIN_RESPONSE_BYTES, failed).await.map(Some),
            }
        }
    }

    /// The internal id of the client `client_id` (client roles are addressed by it).
    pub(super) async fn client_uuid(&self, client_id: &str) -> Result<String, Error> {
        #[derive(Deserialize)]
        struct Client {
            id: String,
            #[serde(rename = "clientId")]
            client_id: String,
        }
        let mut known = self.admin.role_client.lock().await;
        if let Some(id) = known.as_ref() {
            return Ok(id.clone());
        }
        let clients: Vec<Client> = self.admin_get("/clients", &[("clientId", client_id)]).await?.unwrap_or_default();
        let Some(client) = clients.into_iter().find(|c| c.client_id == client_id) else {
            return Err(unavailable(format!("the realm has no client {client_id} (named in user_role)")));
        };
        *known = Some(client.id.clone());
        Ok(client.id)
    }
}
