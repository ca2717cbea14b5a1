//! [`SourceRegistry`]: the configured identity providers, as the login engine asks them. Providers are read
//! from the store by name on use and their clients rebuilt when the stored settings change, so an edited
//! provider takes effect without a restart.

use std::collections::HashMap;
use std::sync::Arc;

use gatehouse_core::{Error, Fault, MailboxAddress};
use gatehouse_engine::{ExternalCheck, IdentitySources, Provisioning};
use gatehouse_store::{Actor, ActorRole, IdentityProvider, IdentityProviderKind, NewMailbox, Store};
use tokio::sync::RwLock;

use crate::ldap::{LdapDirectory, LdapLogin, LdapSettings};
use crate::select_template;

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

    async fn provision(&self, address: &str, password: &[u8]) -> Result<Provisioning, Error> {
        let address = MailboxAddress::parse(address)?;
        for provider in self.store.list_identity_providers().await? {
            if !provider.active || provider.kind != IdentityProviderKind::Ldap {
                continue;
            }
            let directory = self.ldap(&provider).await?;
            if !directory.settings().create_on_login {
                continue;
            }
            let account = match directory.authenticate(&address, password).await? {
                LdapLogin::Valid(account) => account,
                LdapLogin::NotFound => continue,
                LdapLogin::WrongPassword => {
                    return Ok(Provisioning::Refused(format!("{}: wrong password for a new mailbox", provider.name)));
                }
                LdapLogin::Ambiguous(count) => {
                    return Ok(Provisioning::Refused(format!("{}: {count} entries match", provider.name)));
                }
            };
            let values = directory
                .settings()
                .template_attribute
                .as_ref()
                .and_then(|attribute| account.attributes.get(&attribute.to_lowercase()).cloned())
                .unwrap_or_default();
            let mappings: Vec<(String, String)> =
                provider.mappings.iter().map(|m| (m.attribute_value.clone(), m.template.clone())).collect();
            let template = select_template(&values, &mappings)
                .map(str::to_string)
                .or_else(|| directory.settings().default_template.clone());
            let Some(template) = template else {
                let why = format!(
                    "{}: no template is mapped from {values:?} and there is no default template",
                    provider.name
                );
                tracing::warn!(%address, "not creating the mailbox: {why}");
                return Ok(Provisioning::Refused(why));
            };
            let mut new = NewMailbox::new(address.clone());
            new.display_name = account.display_name.clone();
            new.auth_source = Some(provider.name.clone());
            new.template = Some(template.clone());
            new.external_id = Some(account.subject.clone());
            let actor = Actor { name: format!("idp:{}", provider.name), role: ActorRole::System };
            return match self.store.create_mailbox(&actor, new).await {
                Ok(_) => {
                    tracing::info!(%address, provider = provider.name, template, "mailbox created on first login");
                    Ok(Provisioning::Created)
                }
                Err(err) if err.fault() == Fault::Client => {
                    tracing::warn!(%address, provider = provider.name, "mailbox not created on first login: {err}");
                    Ok(Provisioning::Refused(format!("{}: {err}", provider.name)))
                }
                Err(err) => Err(err),
            };
        }
        Ok(Provisioning::NotFound)
    }
}
