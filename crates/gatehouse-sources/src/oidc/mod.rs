//! OpenID Connect providers (the `oidc` and `keycloak` kinds): the settings ([`config`]), the provider's
//! metadata and keys ([`discovery`]), the ID token check ([`id_token`]), the browser sign-in and logout
//! ([`sign_in`]), and the client that reads them over HTTPS.
//!
//! Users of such a provider sign in through the browser at the provider; a password typed into a mail client
//! is not the provider's to check, so mail clients of provider-bound mailboxes use app passwords. Every request
//! to the provider goes through one HTTP client per provider: no redirects followed, its own timeout, and
//! certificate checks unless "ignore TLS errors" is set for it (then each build logs a warning).

pub mod access_token;
pub mod config;
pub mod discovery;
pub mod id_token;
pub mod sign_in;

use std::time::Duration;

use gatehouse_core::{Error, Secret};
use serde::de::DeserializeOwned;

use crate::keycloak::KeycloakSettings;

pub use access_token::AccessGrant;
pub use config::{Endpoints, OidcClientSettings, OidcSettings, RequiredClaim};
pub use discovery::{DiscoveryDocument, KeySet, ProviderEndpoints};
pub use sign_in::{LogoutRequest, Refusal, SignInResult, SignInStart, SignedIn};

/// The largest response read from a provider (discovery documents and key sets are a few KiB).
pub(crate) const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// A configured OpenID Connect provider.
pub struct OidcProvider {
    issuer: String,
    discovery: bool,
    overrides: Endpoints,
    client: OidcClientSettings,
    client_secret: Option<Secret>,
    http: reqwest::Client,
    cache: sign_in::ProviderCache,
}

impl OidcProvider {
    /// An `oidc` provider.
    pub fn generic(settings: OidcSettings, client_secret: Option<Secret>) -> Result<Self, Error> {
        settings.check()?;
        Self::new(settings.issuer, settings.discovery, settings.endpoints, settings.client, client_secret)
    }

    /// The OpenID Connect side of a `keycloak` provider (checked by its caller): the realm's issuer, always
    /// with discovery.
    pub(crate) fn keycloak(settings: &KeycloakSettings, client_secret: Option<Secret>) -> Result<Self, Error> {
        Self::new(settings.issuer(), true, Endpoints::default(), settings.client.clone(), client_secret)
    }

    fn new(
        issuer: String,
        discovery: bool,
        overrides: Endpoints,
        client: OidcClientSettings,
        client_secret: Option<Secret>,
    ) -> Result<Self, Error> {
        if client.ignore_tls_errors {
            tracing::warn!(issuer, "TLS certificates of this identity provider are not checked (ignore_tls_errors)");
        }
        // reqwest is built without a TLS provider of its own: it uses rustls with ring, as everything else here.
        // The binary installs it first; this keeps a library user from a panic (a second install is a no-op).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(client.timeout_seconds))
            .tls_danger_accept_invalid_certs(client.ignore_tls_errors)
            .user_agent(concat!("Gatehouse/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| Error::Internal(format!("the HTTP client for {issuer} cannot be built: {err}")))?;
        let client_secret = client_secret.filter(|secret| !secret.expose().is_empty());
        Ok(OidcProvider { issuer, discovery, overrides, client, client_secret, http, cache: Default::default() })
    }

    /// The issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The client settings and what the claims mean.
    pub fn client(&self) -> &OidcClientSettings {
        &self.client
    }

    /// The HTTP client every request to this provider goes through.
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// GETs `url` and reads its JSON. A provider that cannot be reached, answers an error or sends something
    /// else than the JSON expected is a temporary failure (never a refusal of the user).
    pub(crate) async fn get_json<T: DeserializeOwned>(&self, what: &str, url: &str) -> Result<T, Error> {
        let unavailable = |detail: String| Error::Unavailable(format!("{what} at {url}: {detail}"));
        let response = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|err| unavailable(describe(&err)))?;
        read_json(response, unavailable).await
    }

    /// The provider's endpoints: its discovery document (whose issuer must be this provider's exactly) with the
    /// configured overrides, or the configured endpoints alone.
    pub async fn endpoints(&self) -> Result<(ProviderEndpoints, Option<DiscoveryDocument>), Error> {
        let document = if self.discovery {
            let url = format!("{}/.well-known/openid-configuration", self.issuer.trim_end_matches('/'));
            Some(self.get_json::<DiscoveryDocument>("the discovery document", &url).await?)
        } else {
            None
        };
        let endpoints = ProviderEndpoints::resolve(&self.issuer, document.as_ref(), &self.overrides)
            .map_err(|err| Error::Unavailable(format!("{}: {err}", self.issuer)))?;
        Ok((endpoints, document))
    }

    /// The provider's published keys.
    pub async fn keys(&self, endpoints: &ProviderEndpoints) -> Result<KeySet, Error> {
        self.get_json("the signing keys", &endpoints.jwks_uri).await
    }

    /// The connection test, step by step.
    pub async fn test(&self) -> Vec<(String, Result<String, String>)> {
        let mut steps = Vec::new();
        let tls = if self.client.ignore_tls_errors {
            "WARNING: TLS certificates are not checked (ignore_tls_errors)"
        } else {
            "TLS certificates checked"
        };
        steps.push((
            "settings".to_string(),
            Ok(format!("issuer {}, client {}; {tls}", self.issuer, self.client.client_id)),
        ));
        let secret = match (self.client.public_client, &self.client_secret) {
            (true, _) => Ok("a public client: PKCE alone protects the code".to_string()),
            (false, Some(_)) => Ok("stored".to_string()),
            (false, None) => Err("none stored: set one, or mark the client public (public_client)".to_string()),
        };
        steps.push(("client secret".to_string(), secret));
        let (endpoints, document) = match self.endpoints().await {
            Ok(found) => found,
            Err(err) => {
                steps.push(("discovery".to_string(), Err(err.to_string())));
                return steps;
            }
        };
        let source = if document.is_some() { "discovery document" } else { "configured endpoints" };
        steps.push((
            "endpoints".to_string(),
            Ok(format!(
                "from the {source}: sign-in {}, token {}, userinfo {}, sign-out {}",
                endpoints.authorization,
                endpoints.token,
                endpoints.userinfo.as_deref().unwrap_or("none"),
                endpoints.end_session.as_deref().unwrap_or("none"),
            )),
        ));
        if let Some(document) = &document {
            let methods = &document.code_challenge_methods_supported;
            let pkce = if methods.iter().any(|m| m == "S256") {
                Ok("S256 supported".to_string())
            } else if methods.is_empty() {
                Ok("the provider does not list its PKCE methods; Gatehouse sends S256".to_string())
            } else {
                Err(format!("the provider offers {} but not S256", methods.join(", ")))
            };
            steps.push(("PKCE".to_string(), pkce));
        }
        let keys = match self.keys(&endpoints).await {
            Ok(keys) => {
                let usable: Vec<String> = keys
                    .signing_keys()
                    .iter()
                    .map(|key| {
                        let kid = key.kid.as_deref().unwrap_or("(no kid)");
                        format!("{kid} ({})", key.alg.as_deref().unwrap_or(&key.kty))
                    })
                    .collect();
                if usable.is_empty() {
                    Err("no asymmetric signing key (tokens signed with a shared secret are refused)".to_string())
                } else {
                    Ok(format!("{} usable: {}", usable.len(), usable.join(", ")))
                }
            }
            Err(err) => Err(err.to_string()),
        };
        steps.push(("signing keys".to_string(), keys));
        steps
    }
}

/// A successful response's JSON body, read up to [`MAX_RESPONSE_BYTES`]; another status, a larger body or
/// something else than the JSON expected is a provider fault, described by `unavailable`.
pub(crate) async fn read_json<T: DeserializeOwned>(
    response: reqwest::Response,
    unavailable: impl Fn(String) -> Error,
) -> Result<T, Error> {
    read_json_capped(response, MAX_RESPONSE_BYTES, unavailable).await
}

/// [`read_json`] with another size cap.
pub(crate) async fn read_json_capped<T: DeserializeOwned>(
    response: reqwest::Response,
    cap: usize,
    unavailable: impl Fn(String) -> Error,
) -> Result<T, Error> {
    let status = response.status();
    if !status.is_success() {
        return Err(unavailable(format!("HTTP {status}")));
    }
    let body = response.bytes().await.map_err(|err| unavailable(describe(&err)))?;
    if body.len() > cap {
        return Err(unavailable(format!("the answer is larger than {cap} bytes")));
    }
    serde_json::from_slice(&body).map_err(|err| unavailable(format!("not the JSON expected: {err}")))
}

/// A transport error in words (reqwest's own text names neither timeouts nor TLS plainly).
pub(crate) fn describe(err: &reqwest::Error) -> String {
    let mut text = if err.is_timeout() {
        "no answer in time".to_string()
    } else if err.is_connect() {
        "cannot connect".to_string()
    } else {
        "the request failed".to_string()
    };
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}
