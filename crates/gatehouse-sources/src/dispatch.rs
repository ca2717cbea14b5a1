//! The one enum of identity sources and of their settings, and the one place that matches on the kind: building a
//! source from its stored settings and secrets, checking credentials, listing accounts, the connection test.

use std::collections::BTreeMap;

use gatehouse_core::{Error, MailboxAddress, Secret};
use gatehouse_passwords::HashPool;
use gatehouse_store::IdentityProviderKind;
use serde_json::Value;

use crate::keycloak::{KeycloakRealm, KeycloakSettings};
use crate::ldap::{LdapDirectory, LdapSettings};
use crate::oidc::{OidcProvider, OidcSettings};
use crate::provisioning::ProvisioningSettings;
use crate::{Credentials, ExternalAccount, SourceLogin};

/// Name of the secret holding an LDAP provider's service-account password.
pub const LDAP_BIND_PASSWORD: &str = "bind_password";

/// Name of the secret holding an OpenID Connect client's secret.
pub const OIDC_CLIENT_SECRET: &str = "client_secret";

/// A provider's settings, typed by its kind.
#[derive(Debug, Clone)]
pub enum SourceSettings {
    /// An LDAP directory.
    Ldap(LdapSettings),
    /// Any OpenID Connect provider.
    Oidc(OidcSettings),
    /// A Keycloak realm.
    Keycloak(KeycloakSettings),
}

/// Every key of `value` (a JSON object) that `known` (the same settings, serialised) does not have.
fn unknown_keys(value: &Value, known: &Value) -> Vec<String> {
    match (value, known) {
        (Value::Object(given), Value::Object(known)) => {
            given.keys().filter(|k| !known.contains_key(*k)).cloned().collect()
        }
        _ => Vec::new(),
    }
}

impl SourceSettings {
    /// Whether this Gatehouse has an identity source of `kind`.
    pub fn is_known_kind(kind: IdentityProviderKind) -> bool {
        matches!(kind, IdentityProviderKind::Ldap | IdentityProviderKind::Oidc | IdentityProviderKind::Keycloak)
    }

    /// Reads the settings of a provider of `kind` from their JSON form (as stored, or as an operator gives them);
    /// unknown keys are refused, so a typo is not silently ignored.
    pub fn parse(kind: IdentityProviderKind, value: &Value) -> Result<Self, Error> {
        fn read<T: serde::de::DeserializeOwned>(what: &str, value: &Value) -> Result<T, Error> {
            serde_json::from_value(value.clone()).map_err(|err| Error::invalid(format!("{what} settings: {err}")))
        }
        let settings = match kind {
            IdentityProviderKind::Ldap => SourceSettings::Ldap(read("LDAP", value)?),
            IdentityProviderKind::Oidc => SourceSettings::Oidc(read("OpenID Connect", value)?),
            IdentityProviderKind::Keycloak => SourceSettings::Keycloak(read("Keycloak", value)?),
        };
        let unknown = unknown_keys(value, &settings.to_json());
        if !unknown.is_empty() {
            return Err(Error::invalid(format!("unknown {kind} setting(s): {}", unknown.join(", "))));
        }
        Ok(settings)
    }

    /// The JSON form, as stored.
    pub fn to_json(&self) -> Value {
        match self {
            SourceSettings::Ldap(settings) => serde_json::to_value(settings).expect("settings serialise"),
            SourceSettings::Oidc(settings) => serde_json::to_value(settings).expect("settings serialise"),
            SourceSettings::Keycloak(settings) => serde_json::to_value(settings).expect("settings serialise"),
        }
    }

    /// The provisioning settings every kind shares, within their bounds.
    pub fn provisioning(&self) -> ProvisioningSettings {
        match self {
            SourceSettings::Ldap(settings) => settings.provisioning.bounded(),
            SourceSettings::Oidc(settings) => settings.client.provisioning.bounded(),
            SourceSettings::Keycloak(settings) => settings.client.provisioning.bounded(),
        }
    }

    /// The attribute (claim, user attribute or SCIM attribute) whose values select the mailbox template;
    /// `None` for an LDAP directory without one.
    pub fn template_attribute(&self) -> Option<&str> {
        match self {
            SourceSettings::Ldap(settings) => settings.template_attribute.as_deref(),
            SourceSettings::Oidc(settings) => Some(&settings.client.template_claim),
            SourceSettings::Keycloak(settings) => Some(&settings.client.template_claim),
        }
    }

    /// The login page's button for a provider users sign in at through the browser (OpenID Connect kinds),
    /// with its configured label or "Sign in with <name>"; `None` for kinds that check passwords.
    pub fn sign_in_label(&self, name: &str) -> Option<String> {
        let client = match self {
            SourceSettings::Ldap(_) => return None,
            SourceSettings::Oidc(settings) => &settings.client,
            SourceSettings::Keycloak(settings) => &settings.client,
        };
        Some(client.label.clone().filter(|l| !l.trim().is_empty()).unwrap_or_else(|| format!("Sign in with {name}")))
    }

    /// Whether administrators may sign in through this provider (it maps a claim to administrator roles).
    pub fn signs_in_administrators(&self) -> bool {
        match self {
            SourceSettings::Ldap(_) => false,
            SourceSettings::Oidc(settings) => settings.client.admin_roles.is_some(),
            SourceSettings::Keycloak(settings) => settings.client.admin_roles.is_some(),
        }
    }

    /// The secrets this kind needs: (name as stored, what a prompt calls it). A public OpenID Connect client
    /// has none.
    pub fn secrets(&self) -> &'static [(&'static str, &'static str)] {
        const CLIENT_SECRET: &[(&str, &str)] = &[(OIDC_CLIENT_SECRET, "OpenID Connect client secret")];
        match self {
            SourceSettings::Ldap(_) => &[(LDAP_BIND_PASSWORD, "LDAP bind password")],
            SourceSettings::Oidc(settings) if !settings.client.public_client => CLIENT_SECRET,
            SourceSettings::Keycloak(settings) if !settings.client.public_client => CLIENT_SECRET,
            SourceSettings::Oidc(_) | SourceSettings::Keycloak(_) => &[],
        }
    }
}

/// Checks a provider's settings and secrets before they are stored, as far as that is possible without the
/// network: the typed settings of `kind` (unknown keys refused), every secret the kind needs present and no
/// other, and the client built (hosts, URLs, CA files). `secrets` holds the secrets given with this change;
/// `stored` names those already stored (an edit may keep them).
pub fn check_provider(
    kind: IdentityProviderKind,
    settings: &Value,
    secrets: &BTreeMap<String, Secret>,
    stored: &[String],
) -> Result<(), Error> {
    let parsed = SourceSettings::parse(kind, settings)?;
    let needed = parsed.secrets();
    if let Some(unknown) = secrets.keys().find(|name| !needed.iter().any(|(known, _)| known == name)) {
        let known: Vec<&str> = needed.iter().map(|(name, _)| *name).collect();
        return Err(Error::invalid(format!(
            "a {kind} provider has no secret '{unknown}' (its secrets: {})",
            if known.is_empty() { "none".to_string() } else { known.join(", ") }
        )));
    }
    for (name, what) in needed {
        let given = secrets.get(*name).is_some_and(|secret| !secret.expose().is_empty());
        if !given && !stored.iter().any(|s| s == name) {
            return Err(Error::invalid(format!("the {what} is required (secret '{name}')")));
        }
    }
    Source::build(parsed, secrets).map(drop)
}

/// `current` settings with `patch` applied: each key of `patch` replaces the stored one, `null` removes it.
pub fn merge_settings(current: &Value, patch: &Value) -> Result<Value, Error> {
    let (Value::Object(current), Value::Object(patch)) = (current, patch) else {
        return Err(Error::invalid("settings must be a JSON object"));
    };
    let mut merged = current.clone();
    for (key, value) in patch {
        if value.is_null() {
            merged.remove(key);
        } else {
            merged.insert(key.clone(), value.clone());
        }
    }
    Ok(Value::Object(merged))
}

/// A configured identity source, ready to use.
#[allow(clippy::large_enum_variant, reason = "built once per provider and shared through an Arc")]
pub enum Source {
    /// An LDAP directory.
    Ldap(LdapDirectory),
    /// An OpenID Connect provider.
    Oidc(OidcProvider),
    /// A Keycloak realm: an OpenID Connect provider with an admin API.
    Keycloak(KeycloakRealm),
}

impl Source {
    /// Builds the source from its settings and secrets (checking what can be checked without the network).
    pub fn build(settings: SourceSettings, secrets: &BTreeMap<String, Secret>) -> Result<Self, Error> {
        match settings {
            SourceSettings::Ldap(settings) => {
                let password = secrets.get(LDAP_BIND_PASSWORD).cloned().unwrap_or_default();
                Ok(Source::Ldap(LdapDirectory::new(settings, password)?))
            }
            SourceSettings::Oidc(settings) => {
                Ok(Source::Oidc(OidcProvider::generic(settings, secrets.get(OIDC_CLIENT_SECRET).cloned())?))
            }
            SourceSettings::Keycloak(settings) => {
                Ok(Source::Keycloak(KeycloakRealm::new(settings, secrets.get(OIDC_CLIENT_SECRET).cloned())?))
            }
        }
    }

    /// The provisioning settings, within their bounds.
    pub fn provisioning(&self) -> ProvisioningSettings {
        match self {
            Source::Ldap(directory) => directory.settings().provisioning.bounded(),
            Source::Oidc(provider) => provider.client().provisioning.bounded(),
            Source::Keycloak(realm) => realm.oidc().client().provisioning.bounded(),
        }
    }

    /// The OpenID Connect provider, for the kinds users sign in at through the browser.
    pub fn as_oidc(&self) -> Option<&OidcProvider> {
        match self {
            Source::Oidc(provider) => Some(provider),
            Source::Keycloak(realm) => Some(realm.oidc()),
            Source::Ldap(_) => None,
        }
    }

    /// Whether a login re-applies the account's template and name to its mailbox (always for LDAP; the
    /// `update_on_login` setting for OpenID Connect providers).
    pub fn updates_on_login(&self) -> bool {
        match self {
            Source::Ldap(_) => true,
            Source::Oidc(provider) => provider.client().update_on_login,
            Source::Keycloak(realm) => realm.oidc().client().update_on_login,
        }
    }

    /// Checks credentials for an address. Sources that verify password hashes themselves (Keycloak's
    /// mailpassword flow) do it on `hashes`, the login engine's bounded pool.
    pub async fn authenticate(
        &self,
        address: &MailboxAddress,
        credentials: &Credentials,
        hashes: Option<&HashPool>,
    ) -> Result<SourceLogin, Error> {
        match (self, credentials) {
            (Source::Ldap(directory), Credentials::Password(password)) => {
                directory.authenticate(address, password).await
            }
            (Source::Ldap(_), Credentials::Bearer(_)) => {
                Ok(SourceLogin::Unsupported("an LDAP directory checks passwords, not bearer tokens".into()))
            }
            (Source::Oidc(_), Credentials::Password(_)) => Ok(SourceLogin::Unsupported(
                "users of an OpenID Connect provider sign in through the browser; mail clients use app passwords"
                    .into(),
            )),
            (Source::Keycloak(realm), Credentials::Password(password)) if realm.settings().mailpassword_flow => {
                realm.mailpassword_login(address, password, hashes).await
            }
            (Source::Keycloak(_), Credentials::Password(_)) => Ok(SourceLogin::Unsupported(
                "users of this Keycloak realm sign in through the browser (the mailpassword flow is off); mail \
                 clients use app passwords"
                    .into(),
            )),
            (Source::Oidc(_) | Source::Keycloak(_), Credentials::Bearer(_)) => {
                Ok(SourceLogin::Unsupported("this provider's access tokens are not accepted for mail logins".into()))
            }
        }
    }

    /// Every account of the source (`progress` gets the running count).
    pub async fn list_accounts(&self, progress: &(dyn Fn(usize) + Send + Sync)) -> Result<Vec<ExternalAccount>, Error> {
        match self {
            Source::Ldap(directory) => directory.list_accounts(progress).await,
            Source::Oidc(provider) => Err(Error::invalid(format!(
                "{} is an OpenID Connect provider, which has no user list to sync from",
                provider.issuer()
            ))),
            Source::Keycloak(realm) => realm.list_accounts(progress).await,
        }
    }

    /// The connection test, step by step; `sample` is an address to look up.
    pub async fn test(&self, sample: Option<&MailboxAddress>) -> Vec<(String, Result<String, String>)> {
        match self {
            Source::Ldap(directory) => directory.test(sample).await,
            Source::Oidc(provider) => provider.test().await,
            Source::Keycloak(realm) => realm.test(sample).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_typed_by_kind_and_unknown_keys_refused() {
        let value = serde_json::json!({
            "hosts": ["ldap.example.org"], "bind_dn": "cn=x", "base_dn": "dc=example,dc=org", "create_on_login": true
        });
        let settings = SourceSettings::parse(IdentityProviderKind::Ldap, &value).unwrap();
        assert!(settings.provisioning().create_on_login, "the shared settings are embedded");
        let typo = serde_json::json!({ "hosts": ["h"], "bind_dn": "x", "base_dn": "y", "create_on_logon": true });
        let err = SourceSettings::parse(IdentityProviderKind::Ldap, &typo).unwrap_err();
        assert!(err.to_string().contains("create_on_logon"), "{err}");
        let stored = SourceSettings::parse(IdentityProviderKind::Ldap, &settings.to_json()).unwrap();
        assert_eq!(stored.to_json(), settings.to_json(), "the stored form reads back the same");
    }
}
