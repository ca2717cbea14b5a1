//! A provider's metadata: its discovery document (OpenID Connect Discovery 1.0 §4, the issuer in it compared
//! exactly with the configured one, §4.3), the endpoints an operator set instead, and its signing keys (JWKS),
//! of which only asymmetric ones count.

use serde::Deserialize;

use gatehouse_core::Error;

use super::config::{Endpoints, check_url};

/// The parts of a discovery document Gatehouse uses.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DiscoveryDocument {
    /// The issuer, which must equal the configured one exactly.
    pub issuer: String,
    /// See [`Endpoints`].
    pub authorization_endpoint: Option<String>,
    /// See [`Endpoints`].
    pub token_endpoint: Option<String>,
    /// See [`Endpoints`].
    pub userinfo_endpoint: Option<String>,
    /// See [`Endpoints`].
    pub jwks_uri: Option<String>,
    /// See [`Endpoints`].
    pub end_session_endpoint: Option<String>,
    /// Where opaque access tokens are introspected (RFC 7662), if the provider has it.
    #[serde(default)]
    pub introspection_endpoint: Option<String>,
    /// The PKCE methods the provider accepts (`S256` is required).
    #[serde(default)]
    pub code_challenge_methods_supported: Vec<String>,
    /// How clients may authenticate at the token endpoint (`client_secret_basic` is the default).
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// The algorithms it signs ID tokens with.
    #[serde(default)]
    pub id_token_signing_alg_values_supported: Vec<String>,
}

/// Where a provider's endpoints are, after discovery and the operator's overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderEndpoints {
    /// The issuer.
    pub issuer: String,
    /// Where the browser signs in.
    pub authorization: String,
    /// Where codes become tokens.
    pub token: String,
    /// Where claims are read, if the provider has it.
    pub userinfo: Option<String>,
    /// The signing keys.
    pub jwks_uri: String,
    /// Where the browser signs out, if the provider has it.
    pub end_session: Option<String>,
    /// Where opaque access tokens are introspected, if the provider has it.
    pub introspection: Option<String>,
}

impl ProviderEndpoints {
    /// The endpoints from `document` (or none, without discovery) and `overrides`, each checked to be a URL.
    pub fn resolve(issuer: &str, document: Option<&DiscoveryDocument>, overrides: &Endpoints) -> Result<Self, Error> {
        if let Some(document) = document
            && document.issuer != issuer
        {
            return Err(Error::invalid(format!(
                "the discovery document names the issuer '{}', not '{issuer}' (they must be equal exactly)",
                document.issuer
            )));
        }
        let pick =
            |what: &str, given: &Option<String>, found: Option<&Option<String>>| -> Result<Option<String>, Error> {
                let value = given.clone().or_else(|| found.cloned().flatten());
                if let Some(value) = &value {
                    check_url(what, value)?;
                }
                Ok(value)
            };
        let required = |what: &str, value: Option<String>| {
            value.ok_or_else(|| Error::invalid(format!("the provider names no {what}")))
        };
        Ok(ProviderEndpoints {
            issuer: issuer.to_string(),
            authorization: required(
                "authorization_endpoint",
                pick(
                    "authorization_endpoint",
                    &overrides.authorization_endpoint,
                    document.map(|d| &d.authorization_endpoint),
                )?,
            )?,
            token: required(
                "token_endpoint",
                pick("token_endpoint", &overrides.token_endpoint, document.map(|d| &d.token_endpoint))?,
            )?,
            userinfo: pick("userinfo_endpoint", &overrides.userinfo_endpoint, document.map(|d| &d.userinfo_endpoint))?,
            jwks_uri: required("jwks_uri", pick("jwks_uri", &overrides.jwks_uri, document.map(|d| &d.jwks_uri))?)?,
            end_session: pick(
                "end_session_endpoint",
                &overrides.end_session_endpoint,
                document.map(|d| &d.end_session_endpoint),
            )?,
            introspection: pick(
                "introspection_endpoint",
                &overrides.introspection_endpoint,
                document.map(|d| &d.introspection_endpoint),
            )?,
        })
    }
}

/// One key of a JWKS, as far as Gatehouse reads it.
#[derive(Debug, Clone, Deserialize)]
pub struct PublishedKey {
    /// `RSA`, `EC`, `OKP` or `oct`.
    pub kty: String,
    /// The key id.
    #[serde(default)]
    pub kid: Option<String>,
    /// `sig` or `enc`.
    #[serde(default, rename = "use")]
    pub usage: Option<String>,
    /// The algorithm, if the provider names it.
    #[serde(default)]
    pub alg: Option<String>,
}

/// A JWKS document.
#[derive(Debug, Clone, Deserialize)]
pub struct KeySet {
    /// Its keys.
    pub keys: Vec<PublishedKey>,
}

impl KeySet {
    /// The keys that can verify ID tokens: asymmetric (RSA, EC, OKP) and not marked for encryption. A shared
    /// secret (`oct`) never counts: HMAC-signed tokens are refused.
    pub fn signing_keys(&self) -> Vec<&PublishedKey> {
        self.keys
            .iter()
            .filter(|key| matches!(key.kty.as_str(), "RSA" | "EC" | "OKP"))
            .filter(|key| key.usage.as_deref() != Some("enc"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document() -> DiscoveryDocument {
        DiscoveryDocument {
            issuer: "https://op.example/realms/mail".into(),
            authorization_endpoint: Some("https://op.example/realms/mail/auth".into()),
            token_endpoint: Some("https://op.example/realms/mail/token".into()),
            jwks_uri: Some("https://op.example/realms/mail/certs".into()),
            ..DiscoveryDocument::default()
        }
    }

    #[test]
    fn the_issuer_must_match_exactly_and_overrides_win() {
        let doc = document();
        let err = ProviderEndpoints::resolve("https://op.example/realms/mail/", Some(&doc), &Endpoints::default());
        assert!(err.unwrap_err().to_string().contains("equal exactly"));
        let overrides =
            Endpoints { token_endpoint: Some("https://internal.example/token".into()), ..Endpoints::default() };
        let endpoints = ProviderEndpoints::resolve(&doc.issuer, Some(&doc), &overrides).unwrap();
        assert_eq!(endpoints.token, "https://internal.example/token");
        assert_eq!(endpoints.userinfo, None);
        let without = ProviderEndpoints::resolve(&doc.issuer, None, &overrides).unwrap_err();
        assert!(without.to_string().contains("authorization_endpoint"), "{without}");
    }

    #[test]
    fn only_asymmetric_signing_keys_count() {
        let set: KeySet = serde_json::from_value(serde_json::json!({ "keys": [
            { "kty": "oct", "kid": "shared", "k": "c2VjcmV0" },
            { "kty": "RSA", "kid": "enc", "use": "enc", "n": "x", "e": "AQAB" },
            { "kty": "RSA", "kid": "sig", "use": "sig", "alg": "RS256", "n": "x", "e": "AQAB" },
            { "kty": "EC", "kid": "ec", "crv": "P-256", "x": "x", "y": "y" }
        ]}))
        .unwrap();
        let kids: Vec<_> = set.signing_keys().iter().filter_map(|k| k.kid.as_deref()).collect();
        assert_eq!(kids, ["sig", "ec"]);
    }
}
