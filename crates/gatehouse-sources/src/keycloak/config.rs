//! The settings of a `keycloak` provider: the server and realm (from which the issuer and the admin API
//! follow), the OpenID Connect client, and what the admin REST API is used for — the mailpassword flow
//! (passwords checked against a hash in a user attribute), syncs and imports, and an optional role that users
//! must hold.

use serde::{Deserialize, Serialize};

use gatehouse_core::Error;

use crate::oidc::OidcClientSettings;
use crate::oidc::config::check_url;

/// The settings of a `keycloak` provider.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeycloakSettings {
    /// The Keycloak server (`https://sso.example.org`).
    pub server_url: String,
    /// The realm the users are in.
    pub realm: String,
    /// Keycloak before version 17 serves everything under `/auth`.
    #[serde(default)]
    pub legacy_auth_path: bool,
    /// Passwords typed into mail clients and the login form are checked against the hash in the user's
    /// `password_attribute`, read through the admin API (mailcow's "mailpassword flow").
    #[serde(default)]
    pub mailpassword_flow: bool,
    /// The user attribute holding the mail password's hash (`{SCHEME}hash`, or that text base64-encoded).
    #[serde(default = "default_password_attribute")]
    pub password_attribute: String,
    /// Only users holding this role (assigned to them directly) log in by password and are synced.
    #[serde(default)]
    pub user_role: Option<KeycloakRole>,
    /// The client and what its claims mean.
    #[serde(flatten)]
    pub client: OidcClientSettings,
}

/// A realm role, or a role of one of the realm's clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeycloakRole {
    /// The role's name.
    pub name: String,
    /// The clientId whose role it is; none: a realm role.
    #[serde(default)]
    pub client: Option<String>,
}

impl std::fmt::Display for KeycloakRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.client {
            Some(client) => write!(f, "client role {client}/{}", self.name),
            None => write!(f, "realm role {}", self.name),
        }
    }
}

fn default_password_attribute() -> String {
    "mailcow_password".into()
}

impl KeycloakSettings {
    /// `<server>` with `/auth` before Keycloak 17.
    fn base(&self) -> String {
        let base = self.server_url.trim_end_matches('/');
        let prefix = if self.legacy_auth_path { "/auth" } else { "" };
        format!("{base}{prefix}")
    }

    fn realm_segment(&self) -> String {
        url::form_urlencoded::byte_serialize(self.realm.as_bytes()).collect()
    }

    /// The realm's issuer: `<server>/realms/<realm>` (`<server>/auth/realms/<realm>` before Keycloak 17).
    pub fn issuer(&self) -> String {
        format!("{}/realms/{}", self.base(), self.realm_segment())
    }

    /// The realm's admin REST API: `<server>/admin/realms/<realm>`.
    pub fn admin_url(&self) -> String {
        format!("{}/admin/realms/{}", self.base(), self.realm_segment())
    }

    /// Whether anything reads the admin REST API (the mailpassword flow, syncs, imports).
    pub fn uses_admin_api(&self) -> bool {
        self.mailpassword_flow || self.client.provisioning.periodic_sync || self.client.provisioning.import_users
    }

    /// Checks what can be checked without the server.
    pub(crate) fn check(&self) -> Result<(), Error> {
        check_url("server_url", &self.server_url)?;
        if self.realm.trim().is_empty() || self.realm.contains('/') {
            return Err(Error::invalid("realm must be a realm's name"));
        }
        if self.password_attribute.trim().is_empty() {
            return Err(Error::invalid("password_attribute must name a user attribute"));
        }
        if let Some(role) = &self.user_role
            && (role.name.trim().is_empty() || role.client.as_deref().is_some_and(|c| c.trim().is_empty()))
        {
            return Err(Error::invalid("user_role needs a role name (and, for a client role, the clientId)"));
        }
        if self.uses_admin_api() && self.client.public_client {
            return Err(Error::invalid(
                "the mailpassword flow, syncs and imports read Keycloak's admin API with the client's service \
                 account: the client must be confidential (a client secret, service accounts enabled, and the \
                 realm-management role view-users)",
            ));
        }
        self.client.check()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(extra: serde_json::Value) -> KeycloakSettings {
        let mut value =
            serde_json::json!({ "client_id": "gatehouse", "server_url": "https://sso.example.org/", "realm": "mail" });
        for (key, item) in extra.as_object().unwrap() {
            value[key] = item.clone();
        }
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn issuer_and_admin_api_follow_the_server_and_realm() {
        let modern = settings(serde_json::json!({}));
        assert_eq!(modern.issuer(), "https://sso.example.org/realms/mail");
        assert_eq!(modern.admin_url(), "https://sso.example.org/admin/realms/mail");
        let legacy = settings(serde_json::json!({ "legacy_auth_path": true }));
        assert_eq!(legacy.issuer(), "https://sso.example.org/auth/realms/mail");
        assert_eq!(legacy.admin_url(), "https://sso.example.org/auth/admin/realms/mail");
        assert!(modern.check().is_ok());
        assert!(!modern.mailpassword_flow && modern.password_attribute == "mailcow_password");
    }

    #[test]
    fn the_admin_api_needs_a_confidential_client_and_syncs_are_allowed() {
        let sync = settings(serde_json::json!({ "periodic_sync": true, "import_users": true }));
        assert!(sync.check().is_ok(), "a Keycloak realm has a user list");
        let public = settings(serde_json::json!({ "mailpassword_flow": true, "public_client": true }));
        assert!(public.check().unwrap_err().to_string().contains("must be confidential"));
        let role = settings(serde_json::json!({ "user_role": { "name": " " } }));
        assert!(role.check().unwrap_err().to_string().contains("user_role"));
        let role = settings(serde_json::json!({ "user_role": { "name": "mail", "client": "webmail" } }));
        assert_eq!(role.user_role.unwrap().to_string(), "client role webmail/mail");
    }
}
