//! The settings of OpenID Connect providers: the client settings every such provider has (and the `keycloak`
//! kind embeds, see `keycloak::config`), and those of the `oidc` kind (any provider: an issuer whose discovery
//! document names the endpoints, or the endpoints given one by one). Both embed the provisioning settings every
//! kind shares.

use serde::{Deserialize, Serialize};

use gatehouse_core::Error;

use crate::provisioning::ProvisioningSettings;

/// What every OpenID Connect provider has, whatever names its issuer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OidcClientSettings {
    /// The button's text on the login page (default: "Sign in with <provider name>").
    #[serde(default)]
    pub label: Option<String>,
    /// The client id registered at the provider.
    pub client_id: String,
    /// A public client (no client secret; PKCE alone protects the code).
    #[serde(default)]
    pub public_client: bool,
    /// The scopes asked for; `openid` is always among them.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// The claim (in the ID token or from userinfo) whose value names the template; a string or an array.
    #[serde(default = "default_template_claim")]
    pub template_claim: String,
    /// The claim holding the mail address.
    #[serde(default = "default_address_claim")]
    pub address_claim: String,
    /// Accept an address only when `email_verified` is true.
    #[serde(default = "yes")]
    pub require_verified_email: bool,
    /// Only users with this claim value may sign in (a role or a group, for example).
    #[serde(default)]
    pub required_claim: Option<RequiredClaim>,
    /// Re-apply the mapped template and the name at every sign-in.
    #[serde(default = "yes")]
    pub update_on_login: bool,
    /// Administrators and domain administrators who sign in through this provider, by a claim's values.
    #[serde(default)]
    pub admin_roles: Option<AdminRoles>,
    /// Clients whose access tokens open mail (IMAP, SMTP, … through Dovecot's XOAUTH2 and OAUTHBEARER); empty:
    /// this client alone.
    #[serde(default)]
    pub access_token_clients: Vec<String>,
    /// A scope an access token must have to open mail (none: any).
    #[serde(default)]
    pub access_token_scope: Option<String>,
    /// Accept any TLS certificate for every request to this provider (labs only; shown as a warning).
    #[serde(default)]
    pub ignore_tls_errors: bool,
    /// Seconds to wait for the provider.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// What every kind of provider has: create on login, default template, syncs, deprovisioning.
    #[serde(flatten)]
    pub provisioning: ProvisioningSettings,
}

/// A claim value a user must have to sign in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequiredClaim {
    /// The claim's name (`roles`, `groups`, …).
    pub claim: String,
    /// The value it must be, or contain when it is an array.
    pub value: String,
}

/// Which claim values make an account an administrator or a domain administrator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminRoles {
    /// The claim (`roles`, `groups`, `realm_access.roles`, …).
    pub claim: String,
    /// Values that make an administrator (every domain).
    #[serde(default)]
    pub administrator: Vec<String>,
    /// Values that make a domain administrator of the listed domains.
    #[serde(default)]
    pub domain_administrators: Vec<DomainAdminRole>,
}

/// A claim value that makes a domain administrator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainAdminRole {
    /// The claim value.
    pub value: String,
    /// The domains it manages.
    pub domains: Vec<String>,
    /// It may open its domains' mailboxes (`login_as`).
    #[serde(default)]
    pub login_as: bool,
}

/// The settings of an `oidc` provider.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OidcSettings {
    /// The issuer, exactly as the provider's tokens name it (`https://login.example.org/realms/mail`).
    pub issuer: String,
    /// Read the endpoints from `<issuer>/.well-known/openid-configuration`; when off, `authorization_endpoint`,
    /// `token_endpoint` and `jwks_uri` must be given.
    #[serde(default = "yes")]
    pub discovery: bool,
    /// Endpoints that replace (or, without discovery, stand for) the discovery document's.
    #[serde(default, flatten)]
    pub endpoints: Endpoints,
    /// The client and what its claims mean.
    #[serde(flatten)]
    pub client: OidcClientSettings,
}

/// A provider's endpoints, each optional: given ones win over the discovery document's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoints {
    /// Where the browser signs in.
    #[serde(default)]
    pub authorization_endpoint: Option<String>,
    /// Where codes are exchanged for tokens.
    #[serde(default)]
    pub token_endpoint: Option<String>,
    /// Where claims are read with the access token.
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    /// The provider's signing keys.
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// Where the browser goes to sign out at the provider.
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
    /// Where opaque access tokens are introspected (RFC 7662).
    #[serde(default)]
    pub introspection_endpoint: Option<String>,
}

/// Checks that `text` (named `what`) is an absolute http(s) URL without credentials, query or fragment.
pub(crate) fn check_url(what: &str, text: &str) -> Result<url::Url, Error> {
    let url = url::Url::parse(text).map_err(|err| Error::invalid(format!("{what} '{text}' is not a URL: {err}")))?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return Err(Error::invalid(format!("{what} '{text}' must be an http or https URL")));
    }
    if !url.username().is_empty() || url.password().is_some() || url.query().is_some() || url.fragment().is_some() {
        return Err(Error::invalid(format!("{what} '{text}' must not carry credentials, a query or a fragment")));
    }
    Ok(url)
}

impl OidcClientSettings {
    /// Checks what can be checked without the provider.
    pub(crate) fn check(&self) -> Result<(), Error> {
        if self.client_id.trim().is_empty() {
            return Err(Error::invalid("client_id must not be empty"));
        }
        if !self.scopes.iter().any(|scope| scope == "openid") {
            return Err(Error::invalid("scopes must include openid"));
        }
        if let Some(scope) = self.scopes.iter().find(|s| s.is_empty() || s.contains(char::is_whitespace)) {
            return Err(Error::invalid(format!("'{scope}' is not a scope (one word each)")));
        }
        if self.template_claim.trim().is_empty() || self.address_claim.trim().is_empty() {
            return Err(Error::invalid("template_claim and address_claim must name claims"));
        }
        if let Some(required) = &self.required_claim
            && (required.claim.trim().is_empty() || required.value.is_empty())
        {
            return Err(Error::invalid("required_claim needs a claim and a value"));
        }
        if let Some(roles) = &self.admin_roles {
            if roles.claim.trim().is_empty()
                || (roles.administrator.is_empty() && roles.domain_administrators.is_empty())
            {
                return Err(Error::invalid("admin_roles needs a claim and at least one value"));
            }
            if roles.domain_administrators.iter().any(|role| role.value.is_empty() || role.domains.is_empty()) {
                return Err(Error::invalid("each of admin_roles.domain_administrators needs a value and domains"));
            }
        }
        if self.timeout_seconds == 0 || self.timeout_seconds > 120 {
            return Err(Error::invalid("timeout_seconds must be between 1 and 120"));
        }
        Ok(())
    }

    /// Whether access tokens issued to `client` open mail.
    pub fn accepts_tokens_of(&self, client: &str) -> bool {
        if self.access_token_clients.is_empty() {
            return client == self.client_id;
        }
        self.access_token_clients.iter().any(|c| c == client)
    }

    /// The scopes as one space-separated string.
    pub fn scope_text(&self) -> String {
        self.scopes.join(" ")
    }
}

impl OidcSettings {
    /// Checks what can be checked without the provider.
    pub(crate) fn check(&self) -> Result<(), Error> {
        check_url("issuer", &self.issuer)?;
        for (what, value) in self.endpoints.named() {
            if let Some(value) = value {
                check_url(what, value)?;
            }
        }
        if !self.discovery {
            let missing: Vec<&str> = self
                .endpoints
                .named()
                .into_iter()
                .filter(|(what, value)| value.is_none() && REQUIRED_WITHOUT_DISCOVERY.contains(what))
                .map(|(what, _)| what)
                .collect();
            if !missing.is_empty() {
                return Err(Error::invalid(format!("without discovery, {} must be given", missing.join(", "))));
            }
        }
        if self.client.provisioning.periodic_sync || self.client.provisioning.import_users {
            return Err(Error::invalid(
                "an OpenID Connect provider has no user list to sync from: periodic_sync and import_users stay off",
            ));
        }
        self.client.check()
    }
}

/// The endpoints a provider without discovery must name.
const REQUIRED_WITHOUT_DISCOVERY: [&str; 3] = ["authorization_endpoint", "token_endpoint", "jwks_uri"];

impl Endpoints {
    /// Each endpoint with its setting's name.
    pub fn named(&self) -> [(&'static str, Option<&str>); 6] {
        [
            ("authorization_endpoint", self.authorization_endpoint.as_deref()),
            ("token_endpoint", self.token_endpoint.as_deref()),
            ("userinfo_endpoint", self.userinfo_endpoint.as_deref()),
            ("jwks_uri", self.jwks_uri.as_deref()),
            ("end_session_endpoint", self.end_session_endpoint.as_deref()),
            ("introspection_endpoint", self.introspection_endpoint.as_deref()),
        ]
    }
}

pub(crate) fn yes() -> bool {
    true
}
fn default_scopes() -> Vec<String> {
    ["openid", "profile", "email"].into_iter().map(String::from).collect()
}
fn default_template_claim() -> String {
    "mailcow_template".into()
}
fn default_address_claim() -> String {
    "email".into()
}
fn default_timeout() -> u64 {
    10
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> serde_json::Value {
        serde_json::json!({ "client_id": "gatehouse" })
    }

    #[test]
    fn defaults_are_those_of_mailcow_and_rules_are_checked() {
        let mut value = client();
        value["issuer"] = "https://login.example.org".into();
        let settings: OidcSettings = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(settings.client.scope_text(), "openid profile email");
        assert_eq!(settings.client.template_claim, "mailcow_template");
        assert!(settings.discovery && settings.client.require_verified_email && settings.client.update_on_login);
        assert!(settings.check().is_ok());

        let refused = |patch: serde_json::Value| {
            let mut v = value.clone();
            for (k, x) in patch.as_object().unwrap() {
                v[k] = x.clone();
            }
            let settings: OidcSettings = serde_json::from_value(v).unwrap();
            settings.check().unwrap_err().to_string()
        };
        assert!(refused(serde_json::json!({ "issuer": "ftp://x" })).contains("http or https"));
        assert!(refused(serde_json::json!({ "issuer": "https://u:p@x" })).contains("credentials"));
        assert!(refused(serde_json::json!({ "scopes": ["profile"] })).contains("openid"));
        assert!(
            refused(serde_json::json!({ "discovery": false, "token_endpoint": "https://x/t" }))
                .contains("authorization_endpoint, jwks_uri")
        );
        assert!(refused(serde_json::json!({ "periodic_sync": true })).contains("no user list"));
        assert!(refused(serde_json::json!({ "client_id": " " })).contains("client_id"));
    }
}
