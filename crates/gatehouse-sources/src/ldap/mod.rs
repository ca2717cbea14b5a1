//! The LDAP identity source: bind authentication against a directory (OpenLDAP, Active Directory, 389-ds,
//! lldap, …). `config` holds its settings, `pool` the connections, `lookup` the searches and binds, and this
//! module the directory itself (listing for syncs, the connection test).
//!
//! A login is a search with the service account, for exactly one entry matching the configured filter (with
//! `%u`, `%n` and `%d` replaced by the address, its local part and its domain, each escaped per RFC 4515), then
//! a simple bind *as that entry* on a separate connection with the user's password. An empty password is
//! refused before any bind (an empty simple bind is an anonymous bind, which many servers accept). Zero or
//! several entries refuse the login. Every host of the failover list is tried before a connection failure is
//! reported, and that is a temporary failure, never a wrong password.
//!
//! Transport: plain, StartTLS or LDAPS, with the system roots, a CA file, or (for labs) no verification.

mod config;
mod lookup;
mod pool;

use std::sync::Arc;

use gatehouse_core::{Error, MailboxAddress, Secret};
use ldap3::{Ldap, Scope};

use tokio::sync::Mutex;

pub use config::{LdapSecurity, LdapSettings};
pub use lookup::user_filter;

use crate::ExternalAccount;

/// An LDAP directory with a pool of service-account connections.
pub struct LdapDirectory {
    settings: LdapSettings,
    bind_password: Secret,
    tls: Option<Arc<rustls::ClientConfig>>,
    idle: Mutex<Vec<Ldap>>,
}

/// Entries per page of a sync's listing.
const PAGE_SIZE: i32 = 500;

fn unavailable(what: impl std::fmt::Display) -> Error {
    Error::Unavailable(format!("LDAP: {what}"))
}

impl LdapDirectory {
    /// Prepares a directory (reads the CA file); connects only when used.
    pub fn new(settings: LdapSettings, bind_password: Secret) -> Result<Self, Error> {
        if settings.hosts.is_empty() {
            return Err(Error::invalid("an LDAP provider needs at least one host"));
        }
        if !settings.user_filter.contains('%') {
            return Err(Error::invalid(
                "the LDAP user filter must contain %u, %n or %d, or every login would match the same entries",
            ));
        }
        let tls = pool::tls_config(&settings)?;
        if settings.ignore_tls_errors {
            tracing::warn!(hosts = ?settings.hosts, "LDAP certificate checks are off (ignore_tls_errors)");
        }
        Ok(LdapDirectory { settings, bind_password, tls, idle: Mutex::new(Vec::new()) })
    }

    /// The settings.
    pub fn settings(&self) -> &LdapSettings {
        &self.settings
    }

    /// Every entry of the sync filter under the base (`enabled` false for those matching the disabled filter),
    /// read in pages (RFC 2696) so that server size limits and memory stay bounded. `progress` gets the running
    /// count.
    pub async fn list_accounts(&self, progress: &(dyn Fn(usize) + Send + Sync)) -> Result<Vec<ExternalAccount>, Error> {
        let filter = self.settings.listing_filter();
        let mut accounts = Vec::new();
        let mut ldap = self.service_connection().await?;
        for entry in self.paged_search(&mut ldap, &filter, self.wanted_attributes()).await? {
            accounts.push(self.account(entry));
            if accounts.len() % PAGE_SIZE as usize == 0 {
                progress(accounts.len());
            }
        }
        progress(accounts.len());
        if let Some(disabled) = &self.settings.disabled_filter {
            let disabled_dns: std::collections::HashSet<String> = self
                .paged_search(&mut ldap, &format!("(&{filter}{disabled})"), vec!["1.1".to_string()])
                .await?
                .into_iter()
                .map(|entry| entry.dn)
                .collect();
            for account in &mut accounts {
                account.enabled = !disabled_dns.contains(&account.subject);
            }
        }
        self.give_back(ldap).await;
        Ok(accounts)
    }

    /// The connection test an operator runs after configuring the provider: each step with its outcome.
    /// `sample` is an address whose entry is looked up and shown with the mapped attributes.
    pub async fn test(&self, sample: Option<&MailboxAddress>) -> Vec<(String, Result<String, String>)> {
        let mut steps = Vec::new();
        let transport = match self.settings.security {
            LdapSecurity::Plain => "plain LDAP (no TLS)",
            LdapSecurity::StartTls => "StartTLS, certificate checked",
            LdapSecurity::Ldaps => "LDAPS, certificate checked",
        };
        let transport = if self.settings.ignore_tls_errors && self.settings.security != LdapSecurity::Plain {
            transport.replace("certificate checked", "certificate NOT checked (ignore_tls_errors)")
        } else {
            transport.to_string()
        };
        let mut ldap = match self.connect().await {
            Ok(ldap) => {
                steps.push(("connect (TCP and TLS)".into(), Ok(transport)));
                ldap
            }
            Err(err) => {
                steps.push(("connect (TCP and TLS)".into(), Err(err.to_string())));
                return steps;
            }
        };
        let bound = ldap
            .with_timeout(self.timeout())
            .simple_bind(&self.settings.bind_dn, self.bind_password.expose())
            .await
            .map_err(|err| err.to_string())
            .and_then(|result| result.success().map(drop).map_err(|err| err.to_string()));
        let bind_ok = bound.is_ok();
        steps.push((
            "bind as the service account".into(),
            bound.map(|()| format!("bound as {}", self.settings.bind_dn)),
        ));
        if !bind_ok {
            return steps;
        }
        let base = ldap
            .with_timeout(self.timeout())
            .search(&self.settings.base_dn, Scope::Base, "(objectClass=*)", vec!["1.1"])
            .await
            .and_then(|result| result.success());
        let readable = matches!(&base, Ok((entries, _)) if !entries.is_empty());
        steps.push((
            format!("read the search base {}", self.settings.base_dn),
            match base {
                _ if readable => Ok("readable".into()),
                Ok(_) => Err("the base entry cannot be read with these credentials (no entry returned)".into()),
                Err(err) => Err(err.to_string()),
            },
        ));
        self.give_back(ldap).await;
        if let Some(address) = sample {
            let outcome = match self.search(address).await {
                Ok(entries) if entries.len() == 1 => {
                    let account = self.account(entries.into_iter().next().expect("one entry"));
                    let values = if account.template_values.is_empty() {
                        "none".to_string()
                    } else {
                        account.template_values.join(", ")
                    };
                    Ok(format!(
                        "{}: mail {}, display name \"{}\", template values: {values}",
                        account.subject,
                        account.address,
                        account.display_name.as_deref().unwrap_or("")
                    ))
                }
                Ok(entries) => Err(format!("{} entries match; exactly one is needed", entries.len())),
                Err(err) => Err(err.to_string()),
            };
            steps.push((format!("find {address}"), outcome));
        }
        steps
    }
}
