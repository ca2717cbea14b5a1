//! [`SourceRegistry`]: the configured identity providers, as the login engine asks them. Providers are read
//! from the store by name on use and their clients rebuilt when the stored settings change, so an edited
//! provider takes effect without a restart.

use std::collections::HashMap;
use std::sync::Arc;

use gatehouse_core::{Error, MailboxAddress};
use gatehouse_engine::{ExternalCheck, IdentitySources};
use gatehouse_store::{IdentityProvider, IdentityProviderKind, Store};
use tokio::sync::RwLock;

use crate::ldap::{LdapDirectory, LdapLogin, LdapSettings};

/// Name of the secret holding an LDAP provider's service-account password.
pub const LDAP_BIND_PASSWORD: &str = "bind_password";

/// The identity providers of one Gatehouse.
pub struct SourceRegistry {
    store: Store,
    ldap: RwLock<HashMap<String, (i64, Arc<LdapDirectory>)>>,
}

impl SourceRegistry {
    /// A registry reading providers from `store`.
    pub fn new(store: Store) -> Self {
        SourceRegistry { store, ldap: RwLock::new(HashMap::new()) }
    }

    /// The LDAP client of a stored provider, built (or rebuilt after an edit) as needed.
    pub async fn ldap(&self, provider: &IdentityProvider) -> Result<Arc<LdapDirectory>, Error> {
        if let Some((modified, directory)) = self.ldap.read().await.get(&provider.name)
            && *modified == provider.modified_at
        {
            return Ok(directory.clone());
        }
        let directory = Arc::new(ldap_directory(&self.store, provider).await?);
        self.ldap.write().await.insert(provider.name.clone(), (provider.modified_at, directory.clone()));
        Ok(directory)
    }
}

/// Builds the LDAP client of a stored provider (settings plus its bind password).
pub async fn ldap_directory(store: &Store, provider: &IdentityProvider) -> Result<LdapDirectory, Error> {
    let settings: LdapSettings = serde_json::from_value(provider.settings.clone()).map_err(|err| {
        Error::Internal(format!("identity provider {}: stored LDAP settings are invalid: {err}", provider.name))
    })?;
    let secrets = store.identity_provider_secrets(&provider.name).await?;
    let password = secrets.get(LDAP_BIND_PASSWORD).cloned().unwrap_or_default();
    LdapDirectory::new(settings, password)
}

impl IdentitySources for SourceRegistry {
    async fn check_password(&self, source: &str, address: &str, password: &[u8]) -> Result<ExternalCheck, Error> {
        let Some(provider) = self.store.identity_provider(source).await? else {
            return Ok(ExternalCheck::Unsupported(format!("no identity provider is named '{source}'")));
        };
        if !provider.active {
            return Ok(ExternalCheck::Unsupported(format!("identity provider '{source}' is inactive")));
        }
        match provider.kind {
            IdentityProviderKind::Ldap => {
                let address = MailboxAddress::parse(address)?;
                let directory = self.ldap(&provider).await?;
                Ok(match directory.authenticate(&address, password).await? {
                    LdapLogin::Valid(_) => ExternalCheck::Valid,
                    LdapLogin::WrongPassword => ExternalCheck::Invalid,
                    LdapLogin::NotFound => ExternalCheck::Unknown,
                    LdapLogin::Ambiguous(count) => {
                        tracing::warn!(provider = source, %address, count, "several LDAP entries match; login refused");
                        ExternalCheck::Unknown
                    }
                })
            }
            other => Ok(ExternalCheck::Unsupported(format!("{other} providers do not check passwords yet"))),
        }
    }
}
