//! The settings of an LDAP identity provider, with the provisioning settings every kind shares.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::provisioning::ProvisioningSettings;

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
    /// The filter listing every user for a sync; by default the user filter with `%u`, `%n` and `%d` replaced
    /// by `*`.
    #[serde(default)]
    pub sync_filter: Option<String>,
    /// A filter matching disabled entries (for example `(pwdAccountLockedTime=*)`, or Active Directory's
    /// `(userAccountControl:1.2.840.113556.1.4.803:=2)`): they cannot log in and count as gone for a sync.
    #[serde(default)]
    pub disabled_filter: Option<String>,
    /// What every kind of provider has: create on login, default template, syncs, deprovisioning.
    #[serde(flatten)]
    pub provisioning: ProvisioningSettings,
}

impl LdapSettings {
    /// The filter listing every user for a sync.
    pub fn listing_filter(&self) -> String {
        match &self.sync_filter {
            Some(filter) => filter.clone(),
            None => self.user_filter.replace("%u", "*").replace("%n", "*").replace("%d", "*"),
        }
    }

    /// `filter` without the disabled entries, when a disabled filter is configured.
    pub(super) fn enabled_only(&self, filter: String) -> String {
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
