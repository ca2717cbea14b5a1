//! The LDAP identity source: bind authentication against a directory (OpenLDAP, Active Directory, 389-ds,
//! lldap, …).
//!
//! A login is a search with the service account, for exactly one entry matching the configured filter (with
//! `%u`, `%n` and `%d` replaced by the address, its local part and its domain, each escaped per RFC 4515), then
//! a simple bind *as that entry* on a separate connection with the user's password. An empty password is
//! refused before any bind (an empty simple bind is an anonymous bind, which many servers accept). Zero or
//! several entries refuse the login. Every host of the failover list is tried before a connection failure is
//! reported, and that is a temporary failure, never a wrong password.
//!
//! Transport: plain, StartTLS or LDAPS, with the system roots, a CA file, or (for labs) no verification.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use gatehouse_core::{Error, MailboxAddress, Secret};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Scope, SearchEntry, ldap_escape};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::ExternalAccount;
use crate::provisioning::{DeprovisionPolicy, ProvisioningSettings};

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LdapSecurity {
    /// No TLS (only on a trusted network).
    Plain,
    /// `ldap://` upgraded with StartTLS.
    #[default]
    StartTls,
    /// `ldaps://`.
    Ldaps,
}

/// The settings of an LDAP identity provider (everything but the bind password, which is a secret).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapSettings {
    /// Servers, tried in order.
    pub hosts: Vec<String>,
    /// Port; 389, or 636 for LDAPS, when unset.
    #[serde(default)]
    pub port: Option<u16>,
    /// Transport security.
    #[serde(default)]
    pub security: LdapSecurity,
    /// A PEM file of CA certificates to trust instead of the system roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate (labs only; logged as a warning).
    #[serde(default)]
    pub ignore_tls_errors: bool,
    /// The service account that searches.
    pub bind_dn: String,
    /// Where users are searched.
    pub base_dn: String,
    /// The search filter, with `%u` (address), `%n` (local part), `%d` (domain); values are escaped.
    #[serde(default = "default_filter")]
    pub user_filter: String,
    /// The attribute holding the mail address.
    #[serde(default = "default_mail_attribute")]
    pub mail_attribute: String,
    /// The (possibly multi-valued) attribute whose values select the mailbox template.
    #[serde(default)]
    pub template_attribute: Option<String>,
    /// The attribute holding the display name.
    #[serde(default = "default_display_name_attribute")]
    pub display_name_attribute: String,
    /// Seconds to wait for a connection or an answer.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// Create the mailbox when a directory user without one logs in (in an existing, active domain).
    #[serde(default)]
    pub create_on_login: bool,
    /// Template for new mailboxes whose attribute values match no mapping; without it they are refused.
    #[serde(default)]
    pub default_template: Option<String>,
    /// The filter listing every user for a sync; by default the user filter with `%u`, `%n` and `%d` replaced
    /// by `*`.
    #[serde(default)]
    pub sync_filter: Option<String>,
    /// A filter matching disabled entries (for example `(pwdAccountLockedTime=*)`, or Active Directory's
    /// `(userAccountControl:1.2.840.113556.1.4.803:=2)`): they cannot log in and count as gone for a sync.
    #[serde(default)]
    pub disabled_filter: Option<String>,
    /// The periodic sync updates existing mailboxes of this provider.
    #[serde(default)]
    pub periodic_sync: bool,
    /// The periodic sync creates mailboxes for directory users who have none.
    #[serde(default)]
    pub import_users: bool,
    /// Minutes between periodic syncs.
    #[serde(default = "default_sync_interval")]
    pub sync_interval_minutes: u64,
    /// What a sync does with mailboxes whose entry is gone or disabled.
    #[serde(default)]
    pub deprovision: DeprovisionPolicy,
    /// A sync that would deactivate more than this share (percent) of the provider's mailboxes is refused.
    #[serde(default = "default_threshold")]
    pub deprovision_threshold_percent: u8,
}

impl LdapSettings {
    /// The provisioning settings shared by every kind of provider.
    pub fn provisioning(&self) -> ProvisioningSettings {
        ProvisioningSettings {
            create_on_login: self.create_on_login,
            default_template: self.default_template.clone(),
            periodic_sync: self.periodic_sync,
            import_users: self.import_users,
            sync_interval_minutes: self.sync_interval_minutes.max(1),
            deprovision: self.deprovision,
            deprovision_threshold_percent: self.deprovision_threshold_percent.min(100),
        }
    }

    /// The filter listing every user for a sync.
    pub fn listing_filter(&self) -> String {
        match &self.sync_filter {
            Some(filter) => filter.clone(),
            None => self.user_filter.replace("%u", "*").replace("%n", "*").replace("%d", "*"),
        }
    }

    /// `filter` without the disabled entries, when a disabled filter is configured.
    fn enabled_only(&self, filter: String) -> String {
        match &self.disabled_filter {
            Some(disabled) => format!("(&{filter}(!{disabled}))"),
            None => filter,
        }
    }
}

fn default_filter() -> String {
    "(&(objectClass=inetOrgPerson)(mail=%u))".into()
}
fn default_mail_attribute() -> String {
    "mail".into()
}
fn default_display_name_attribute() -> String {
    "displayName".into()
}
fn default_timeout() -> u64 {
    5
}
fn default_sync_interval() -> u64 {
    15
}
fn default_threshold() -> u8 {
    10
}

/// What the directory says about a login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LdapLogin {
    /// The password is right.
    Valid(ExternalAccount),
    /// The entry exists but the password is wrong (or empty).
    WrongPassword,
    /// No entry matches.
    NotFound,
    /// Several entries match: refused, because the login would be ambiguous.
    Ambiguous(usize),
}

/// Replaces `%u`, `%n` and `%d` in a filter with the escaped address, local part and domain.
pub fn user_filter(template: &str, address: &MailboxAddress) -> String {
    let full = ldap_escape(address.to_string());
    let local = ldap_escape(address.local_part());
    let domain = ldap_escape(address.domain().as_str());
    template.replace("%u", &full).replace("%n", &local).replace("%d", &domain)
}

/// An LDAP directory with a pool of service-account connections.
pub struct LdapDirectory {
    settings: LdapSettings,
    bind_password: Secret,
    tls: Option<Arc<rustls::ClientConfig>>,
    idle: Mutex<Vec<Ldap>>,
}

/// Most idle service connections kept.
const POOL_SIZE: usize = 4;

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
        let tls = match (&settings.ca_file, settings.security) {
            (Some(path), LdapSecurity::StartTls | LdapSecurity::Ldaps) => {
                use rustls::pki_types::{CertificateDer, pem::PemObject};
                let mut roots = rustls::RootCertStore::empty();
                let certs = CertificateDer::pem_file_iter(path)
                    .map_err(|err| Error::invalid(format!("LDAP CA file {}: {err}", path.display())))?;
                for cert in certs {
                    let cert = cert.map_err(|err| Error::invalid(format!("LDAP CA file {}: {err}", path.display())))?;
                    roots.add(cert).map_err(|err| Error::invalid(format!("LDAP CA file {}: {err}", path.display())))?;
                }
                let config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
                Some(Arc::new(config))
            }
            _ => None,
        };
        if settings.ignore_tls_errors {
            tracing::warn!(hosts = ?settings.hosts, "LDAP certificate checks are off (ignore_tls_errors)");
        }
        Ok(LdapDirectory { settings, bind_password, tls, idle: Mutex::new(Vec::new()) })
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.settings.timeout_seconds.max(1))
    }

    fn url(&self, host: &str) -> String {
        let (scheme, default_port) = match self.settings.security {
            LdapSecurity::Ldaps => ("ldaps", 636),
            _ => ("ldap", 389),
        };
        format!("{scheme}://{host}:{}", self.settings.port.unwrap_or(default_port))
    }

    /// Opens a connection to the first host that answers.
    async fn connect(&self) -> Result<Ldap, Error> {
        let mut failures = Vec::new();
        for host in &self.settings.hosts {
            let mut conn_settings = LdapConnSettings::new()
                .set_conn_timeout(self.timeout())
                .set_starttls(self.settings.security == LdapSecurity::StartTls)
                .set_no_tls_verify(self.settings.ignore_tls_errors);
            if let Some(config) = &self.tls {
                conn_settings = conn_settings.set_config(config.clone());
            }
            match LdapConnAsync::with_settings(conn_settings, &self.url(host)).await {
                Ok((conn, ldap)) => {
                    ldap3::drive!(conn);
                    return Ok(ldap);
                }
                Err(err) => {
                    tracing::warn!(host, "LDAP server unreachable: {err}");
                    failures.push(format!("{host}: {err}"));
                }
            }
        }
        Err(unavailable(format!("no server answered ({})", failures.join("; "))))
    }

    /// A service connection from the pool, or a new one bound as the service account.
    async fn service_connection(&self) -> Result<Ldap, Error> {
        if let Some(ldap) = self.idle.lock().await.pop() {
            return Ok(ldap);
        }
        let mut ldap = self.connect().await?;
        let bound = ldap
            .with_timeout(self.timeout())
            .simple_bind(&self.settings.bind_dn, self.bind_password.expose())
            .await
            .map_err(unavailable)?;
        if bound.rc != 0 {
            return Err(unavailable(format!("the service account cannot bind: {}", bound)));
        }
        Ok(ldap)
    }

    async fn give_back(&self, ldap: Ldap) {
        let mut idle = self.idle.lock().await;
        if idle.len() < POOL_SIZE {
            idle.push(ldap);
        }
    }

    /// The entries matching an address (searched with the service account).
    async fn search(&self, address: &MailboxAddress) -> Result<Vec<SearchEntry>, Error> {
        let filter = self.settings.enabled_only(user_filter(&self.settings.user_filter, address));
        let attributes = self.wanted_attributes();
        // A pooled connection may have gone stale: retry once on a fresh one.
        for attempt in 0..2 {
            let mut ldap = self.service_connection().await?;
            match ldap
                .with_timeout(self.timeout())
                .search(&self.settings.base_dn, Scope::Subtree, &filter, attributes.clone())
                .await
                .and_then(|result| result.success())
            {
                Ok((entries, _)) => {
                    self.give_back(ldap).await;
                    return Ok(entries.into_iter().map(SearchEntry::construct).collect());
                }
                Err(err) if attempt == 0 => tracing::debug!("LDAP search failed, retrying on a new connection: {err}"),
                Err(err) => return Err(unavailable(format!("search failed: {err}"))),
            }
        }
        unreachable!("the loop returns")
    }

    /// The attributes a search asks for.
    fn wanted_attributes(&self) -> Vec<String> {
        let mut attributes = vec![self.settings.mail_attribute.clone(), self.settings.display_name_attribute.clone()];
        attributes.extend(self.settings.template_attribute.clone());
        attributes
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

    async fn paged_search(
        &self,
        ldap: &mut Ldap,
        filter: &str,
        attributes: Vec<String>,
    ) -> Result<Vec<SearchEntry>, Error> {
        use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
        let adapters: Vec<Box<dyn Adapter<'_, String, Vec<String>>>> =
            vec![Box::new(EntriesOnly::new()), Box::new(PagedResults::new(PAGE_SIZE))];
        let failed = |err: ldap3::LdapError| unavailable(format!("listing entries with {filter} failed: {err}"));
        let mut stream = ldap
            .with_timeout(self.timeout())
            .streaming_search_with(adapters, &self.settings.base_dn, Scope::Subtree, filter, attributes)
            .await
            .map_err(failed)?;
        let mut entries = Vec::new();
        while let Some(entry) = stream.next().await.map_err(failed)? {
            entries.push(SearchEntry::construct(entry));
        }
        stream.finish().await.success().map_err(failed)?;
        Ok(entries)
    }

    fn account(&self, entry: SearchEntry) -> ExternalAccount {
        let first = |name: &str| {
            entry
                .attrs
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .and_then(|(_, values)| values.first().cloned())
        };
        ExternalAccount {
            subject: entry.dn.clone(),
            address: first(&self.settings.mail_attribute).unwrap_or_default().to_lowercase(),
            display_name: first(&self.settings.display_name_attribute),
            enabled: true,
            template_values: self
                .settings
                .template_attribute
                .as_ref()
                .and_then(|name| entry.attrs.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)))
                .map(|(_, values)| values.clone())
                .unwrap_or_default(),
            attributes: entry.attrs.iter().map(|(k, v)| (k.to_lowercase(), v.clone())).collect(),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &LdapSettings {
        &self.settings
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
            if readable { Ok("readable".into()) } else { Err(format!("{:?}", base.err())) },
        ));
        self.give_back(ldap).await;
        if let Some(address) = sample {
            let outcome = match self.search(address).await {
                Ok(entries) if entries.len() == 1 => {
                    let account = self.account(entries.into_iter().next().expect("one entry"));
                    Ok(format!(
                        "{} (mail {}, display name {:?}, template values {:?})",
                        account.subject, account.address, account.display_name, account.template_values
                    ))
                }
                Ok(entries) => Err(format!("{} entries match; exactly one is needed", entries.len())),
                Err(err) => Err(err.to_string()),
            };
            steps.push((format!("find {address}"), outcome));
        }
        steps
    }

    /// Checks a password: one matching entry, then a bind as it on a fresh connection.
    pub async fn authenticate(&self, address: &MailboxAddress, password: &[u8]) -> Result<LdapLogin, Error> {
        if password.is_empty() {
            return Ok(LdapLogin::WrongPassword);
        }
        let Ok(password) = std::str::from_utf8(password) else {
            // LDAP simple binds carry UTF-8 passwords; anything else cannot be right.
            return Ok(LdapLogin::WrongPassword);
        };
        let mut entries = self.search(address).await?;
        match entries.len() {
            0 => return Ok(LdapLogin::NotFound),
            1 => {}
            many => return Ok(LdapLogin::Ambiguous(many)),
        }
        let entry = entries.remove(0);
        let mut ldap = self.connect().await?;
        let bound = ldap.with_timeout(self.timeout()).simple_bind(&entry.dn, password).await.map_err(unavailable)?;
        let _ = ldap.unbind().await;
        match bound.rc {
            0 => Ok(LdapLogin::Valid(self.account(entry))),
            // 49 invalidCredentials; 53 unwillingToPerform (e.g. disabled accounts in some servers).
            49 | 53 => Ok(LdapLogin::WrongPassword),
            other => Err(unavailable(format!("bind as {} answered {other}: {}", entry.dn, bound.text))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_values_are_escaped() {
        let address = MailboxAddress::parse("alice+news@example.org").unwrap();
        assert_eq!(
            user_filter("(|(mail=%u)(uid=%n)(o=%d))", &address),
            "(|(mail=alice+news@example.org)(uid=alice+news)(o=example.org))"
        );
        // Addresses never contain filter syntax (they are validated first), and values are escaped anyway.
        assert_eq!(ldap_escape("*)(uid=*"), "\\2a\\29\\28uid=\\2a");
    }
}
