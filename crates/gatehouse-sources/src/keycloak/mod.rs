//! The Keycloak identity source: a realm users sign in at through the browser (an OpenID Connect provider,
//! [`crate::oidc`]) whose admin REST API Gatehouse also reads with the client's service account. `config` holds
//! its settings, `admin` the admin API client (the service-account token, cached until shortly before it
//! expires and renewed once when refused), `lookup` what is read there: the mailpassword login, the user list of
//! syncs, and the connection test.
//!
//! The mailpassword login looks the address up with `exact=true` — Keycloak reads any other value (mailcow
//! sends `exact=1`) as a substring search — and takes it only when exactly one user has that very address. The
//! hash in the password attribute is verified on the login engine's bounded hash pool. A Keycloak that cannot
//! be reached, answers an error or refuses the service account is a temporary failure, never a wrong password.

mod admin;
pub mod config;
mod lookup;

use gatehouse_core::{Error, Secret};

pub use config::{KeycloakRole, KeycloakSettings};

use crate::oidc::OidcProvider;

/// A Keycloak realm: its OpenID Connect side and its admin API.
pub struct KeycloakRealm {
    oidc: OidcProvider,
    settings: KeycloakSettings,
    admin: admin::AdminApi,
}

impl KeycloakRealm {
    /// Prepares the realm (nothing is asked of Keycloak yet).
    pub fn new(settings: KeycloakSettings, client_secret: Option<Secret>) -> Result<Self, Error> {
        settings.check()?;
        let oidc = OidcProvider::keycloak(&settings, client_secret)?;
        let admin = admin::AdminApi::new(&settings);
        Ok(KeycloakRealm { oidc, settings, admin })
    }

    /// The realm as an OpenID Connect provider.
    pub fn oidc(&self) -> &OidcProvider {
        &self.oidc
    }

    /// The settings.
    pub fn settings(&self) -> &KeycloakSettings {
        &self.settings
    }
}
