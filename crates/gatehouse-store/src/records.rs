//! The records the store takes and returns. Returned records never carry password hashes or secrets, so
//! they can be printed or serialised as they are.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use gatehouse_core::{DomainName, Error, MailboxAddress, ProtocolSet, Secret};
use serde::Serialize;

/// The auth source of mailboxes whose password Gatehouse itself stores.
pub const LOCAL_AUTH_SOURCE: &str = "local";

/// Who makes a change; written to the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// A name identifying the actor (`cli:root`, an admin's username, …).
    pub name: String,
    /// The actor's role.
    pub role: ActorRole,
}

/// Roles that can make changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorRole {
    /// The command line on the server (trusted like root).
    Cli,
    /// An administrator.
    Admin,
    /// A domain administrator.
    DomainAdmin,
    /// A mailbox user.
    User,
    /// An API key.
    Api,
    /// Gatehouse itself (bootstrap, sync jobs).
    System,
    /// A master user logging in as a mailbox.
    MasterUser,
}

impl ActorRole {
    /// The name written to the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            ActorRole::Cli => "cli",
            ActorRole::Admin => "admin",
            ActorRole::DomainAdmin => "domain_admin",
            ActorRole::User => "user",
            ActorRole::Api => "api",
            ActorRole::System => "system",
            ActorRole::MasterUser => "master_user",
        }
    }
}

impl From<AdminRole> for ActorRole {
    fn from(role: AdminRole) -> Self {
        match role {
            AdminRole::Admin => ActorRole::Admin,
            AdminRole::DomainAdmin => ActorRole::DomainAdmin,
        }
    }
}

/// The name of the account with `uid` in `/etc/passwd`.
fn account_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let entry_uid: u32 = fields.nth(1)?.parse().ok()?;
        (entry_uid == uid && !name.is_empty()).then(|| name.to_string())
    })
}

impl Actor {
    /// The command line, named after the operating-system account running it (from the process's uid, looked
    /// up in `/etc/passwd`; `uid <n>` when it has no entry). Under sudo, the account sudo names is added as a
    /// claim in brackets — the environment can say anything, the uid cannot.
    pub fn cli() -> Self {
        use std::os::unix::fs::MetadataExt;
        // /proc/self belongs to the process's effective uid.
        let Ok(uid) = std::fs::metadata("/proc/self").map(|meta| meta.uid()) else {
            let claimed = std::env::var("USER").unwrap_or_default();
            return Actor { name: format!("cli:{claimed} (unverified: /proc is not mounted)"), role: ActorRole::Cli };
        };
        let account = account_name(uid).unwrap_or_else(|| format!("uid {uid}"));
        let sudo = std::env::var("SUDO_USER").ok().filter(|sudo| uid == 0 && !sudo.is_empty() && *sudo != account);
        let name = match sudo {
            Some(sudo) => format!("cli:{account} (sudo from {sudo})"),
            None => format!("cli:{account}"),
        };
        Actor { name, role: ActorRole::Cli }
    }

    /// Gatehouse itself.
    pub fn system() -> Self {
        Actor { name: "gatehouse".into(), role: ActorRole::System }
    }
}

/// A domain, with its current usage.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Domain {
    /// ASCII (punycode) name.
    pub name: String,
    /// Unicode name, for display.
    pub unicode_name: String,
    /// Free text.
    pub description: String,
    /// Inactive domains refuse every login and new mailboxes.
    pub active: bool,
    /// Most mailboxes the domain may have; 0 means no limit.
    pub max_mailboxes: i64,
    /// Quota given to new mailboxes that name none; 0 means unlimited.
    pub default_quota_mib: i64,
    /// Largest quota of one mailbox; 0 means no limit.
    pub max_quota_mib: i64,
    /// Largest sum of all mailbox quotas; 0 means no limit.
    pub total_quota_mib: i64,
    /// Number of mailboxes now.
    pub mailboxes: i64,
    /// Sum of the mailbox quotas now.
    pub quota_used_mib: i64,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub modified_at: i64,
}

/// A domain to create.
#[derive(Debug, Clone)]
pub struct NewDomain {
    /// The name.
    pub name: DomainName,
    /// Free text.
    pub description: String,
    /// Active on creation.
    pub active: bool,
    /// See [`Domain::max_mailboxes`].
    pub max_mailboxes: i64,
    /// See [`Domain::default_quota_mib`].
    pub default_quota_mib: i64,
    /// See [`Domain::max_quota_mib`].
    pub max_quota_mib: i64,
    /// See [`Domain::total_quota_mib`].
    pub total_quota_mib: i64,
}

impl NewDomain {
    /// An active domain without limits.
    pub fn new(name: DomainName) -> Self {
        NewDomain {
            name,
            description: String::new(),
            active: true,
            max_mailboxes: 0,
            default_quota_mib: 0,
            max_quota_mib: 0,
            total_quota_mib: 0,
        }
    }
}

/// Changes to a domain; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct DomainChanges {
    /// New description.
    pub description: Option<String>,
    /// Activate or deactivate.
    pub active: Option<bool>,
    /// New mailbox limit.
    pub max_mailboxes: Option<i64>,
    /// New default quota.
    pub default_quota_mib: Option<i64>,
    /// New per-mailbox quota limit.
    pub max_quota_mib: Option<i64>,
    /// New total quota limit.
    pub total_quota_mib: Option<i64>,
}

/// A mailbox template.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Template {
    /// Unique name.
    pub name: String,
    /// Quota of mailboxes made from it; 0 means unlimited.
    pub quota_mib: i64,
    /// Protocols mailboxes made from it may use.
    pub protocols: ProtocolSet,
    /// Whether mailboxes made from it start active.
    pub active: bool,
    /// Other attributes, as JSON.
    pub attributes: serde_json::Value,
    /// How many mailboxes were made from it.
    pub mailboxes: i64,
    /// A hash of everything it sets on a mailbox; a mailbox's `template_hash` attribute differs from it when the
    /// template changed after it was applied.
    pub hash: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub modified_at: i64,
}

/// A template to create.
#[derive(Debug, Clone)]
pub struct NewTemplate {
    /// Unique name.
    pub name: String,
    /// See [`Template::quota_mib`].
    pub quota_mib: i64,
    /// See [`Template::protocols`].
    pub protocols: ProtocolSet,
    /// See [`Template::active`].
    pub active: bool,
    /// Other attributes; must be a JSON object.
    pub attributes: serde_json::Value,
}

/// Changes to a template; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct TemplateChanges {
    /// New quota.
    pub quota_mib: Option<i64>,
    /// New protocols.
    pub protocols: Option<ProtocolSet>,
    /// New active flag.
    pub active: Option<bool>,
    /// New attributes (replace the old ones).
    pub attributes: Option<serde_json::Value>,
}

/// A mailbox, as shown to operators. The password hash is never included.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Mailbox {
    /// Full address.
    pub address: String,
    /// Part before `@`.
    pub local_part: String,
    /// Domain (ASCII).
    pub domain: String,
    /// Display name.
    pub display_name: String,
    /// `local` or the name of an identity provider.
    pub auth_source: String,
    /// Whether a local password hash is stored (kept when the auth source changes).
    pub has_local_password: bool,
    /// Template it was made from or last synchronised with.
    pub template: Option<String>,
    /// Quota; 0 means unlimited.
    pub quota_mib: i64,
    /// Protocols the mailbox may use.
    pub protocols: ProtocolSet,
    /// Inactive mailboxes refuse every login.
    pub active: bool,
    /// The user must choose a new password before anything else.
    pub force_password_change: bool,
    /// The user must set up TOTP before anything else in the web UI.
    pub force_totp: bool,
    /// Subject id at the identity provider, for IdP-bound mailboxes.
    pub external_id: Option<String>,
    /// Other attributes, including `template_hash` of the applied template (Gatehouse's own bookkeeping, which
    /// serialised output leaves out: see [`public_attributes`]).
    #[serde(serialize_with = "serialize_public_attributes")]
    pub attributes: serde_json::Value,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub modified_at: i64,
}

/// A mailbox's attributes as shown to people and clients: without the keys Gatehouse keeps for itself
/// ([`TEMPLATE_HASH`]).
pub fn public_attributes(attributes: &serde_json::Value) -> serde_json::Value {
    match attributes {
        serde_json::Value::Object(map) => serde_json::Value::Object(
            map.iter().filter(|(key, _)| *key != TEMPLATE_HASH).map(|(k, v)| (k.clone(), v.clone())).collect(),
        ),
        other => other.clone(),
    }
}

fn serialize_public_attributes<S: serde::Serializer>(
    attributes: &serde_json::Value,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&public_attributes(attributes), serializer)
}

/// A mailbox to create. Unset fields come from the template, then from the domain's defaults.
#[derive(Debug, Clone)]
pub struct NewMailbox {
    /// The address; its domain must exist and be active.
    pub address: MailboxAddress,
    /// Display name; defaults to the local part.
    pub display_name: Option<String>,
    /// A password hash (`{SCHEME}…`), for local mailboxes.
    pub password_hash: Option<String>,
    /// `local` (default) or the name of an identity provider.
    pub auth_source: Option<String>,
    /// Template name.
    pub template: Option<String>,
    /// Quota.
    pub quota_mib: Option<i64>,
    /// Protocols.
    pub protocols: Option<ProtocolSet>,
    /// Active flag.
    pub active: Option<bool>,
    /// Force a password change at the next web login.
    pub force_password_change: bool,
    /// Require TOTP enrolment at the next web login.
    pub force_totp: bool,
    /// Subject id at the identity provider.
    pub external_id: Option<String>,
}

impl NewMailbox {
    /// A local mailbox taking every other setting from its domain's defaults.
    pub fn new(address: MailboxAddress) -> Self {
        NewMailbox {
            address,
            display_name: None,
            password_hash: None,
            auth_source: None,
            template: None,
            quota_mib: None,
            protocols: None,
            active: None,
            force_password_change: false,
            force_totp: false,
            external_id: None,
        }
    }
}

/// Changes to a mailbox; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct MailboxChanges {
    /// New display name.
    pub display_name: Option<String>,
    /// New password hash.
    pub password_hash: Option<String>,
    /// New auth source. Switching away from `local` keeps the stored hash, so switching back restores it.
    pub auth_source: Option<String>,
    /// Apply this template (its quota and protocols, unless given here too) and remember it.
    pub template: Option<String>,
    /// New quota.
    pub quota_mib: Option<i64>,
    /// New protocols.
    pub protocols: Option<ProtocolSet>,
    /// Activate or deactivate.
    pub active: Option<bool>,
    /// Set or clear the forced password change.
    pub force_password_change: Option<bool>,
    /// Set or clear the forced TOTP enrolment.
    pub force_totp: Option<bool>,
    /// New external subject id.
    pub external_id: Option<String>,
    /// Deprovisioning by an identity provider's sync: `Some(name)` deactivates the mailbox and records that
    /// provider `name` did it (so the sync may activate it again when the account comes back); `None` clears
    /// that record and activates the mailbox. An admin's `active` change clears the record too.
    pub deprovisioned_by: Option<Option<String>>,
}

/// The attribute recording which identity provider's sync deactivated a mailbox.
pub const DEPROVISIONED_BY: &str = "deprovisioned_by";

/// The attribute holding the hash of the template last applied to a mailbox.
pub const TEMPLATE_HASH: &str = "template_hash";

pub use gatehouse_core::AdminRole;

/// Permissions a domain administrator can be given.
pub const DOMAIN_ADMIN_PERMISSIONS: &[&str] = &["login_as"];

/// An administrator or domain administrator. The password hash is never included.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AdminAccount {
    /// Login name.
    pub username: String,
    /// Admin or domain admin.
    pub role: AdminRole,
    /// Inactive accounts cannot log in.
    pub active: bool,
    /// Must choose a new password at the next login.
    pub force_password_change: bool,
    /// Must set up TOTP at the next login.
    pub force_totp: bool,
    /// Permissions (domain admins only; admins have all).
    pub acl: Vec<String>,
    /// Domains managed (domain admins only).
    pub domains: Vec<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub modified_at: i64,
}

/// A domain administrator to create.
#[derive(Debug, Clone)]
pub struct NewDomainAdmin {
    /// Login name.
    pub username: String,
    /// Password hash.
    pub password_hash: String,
    /// Domains managed; each must exist.
    pub domains: Vec<DomainName>,
    /// Permissions, from [`DOMAIN_ADMIN_PERMISSIONS`].
    pub acl: Vec<String>,
}

/// Changes to a domain administrator; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct DomainAdminChanges {
    /// New password hash.
    pub password_hash: Option<String>,
    /// Replace the managed domains.
    pub domains: Option<Vec<DomainName>>,
    /// Replace the permissions.
    pub acl: Option<Vec<String>>,
    /// Activate or deactivate.
    pub active: Option<bool>,
    /// Set or clear the forced password change.
    pub force_password_change: Option<bool>,
    /// Set or clear the forced TOTP enrolment.
    pub force_totp: Option<bool>,
}

/// Changes any administrator (admin or domain admin) can get; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct AdminChanges {
    /// New password hash.
    pub password_hash: Option<String>,
    /// Activate or deactivate.
    pub active: Option<bool>,
    /// Set or clear the forced password change.
    pub force_password_change: Option<bool>,
    /// Set or clear the forced TOTP enrolment.
    pub force_totp: Option<bool>,
}

/// Which mailboxes a master user may log in as (the three kinds of Dovecot's master-user documentation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "scope", content = "domains", rename_all = "snake_case")]
pub enum MasterScope {
    /// Any mailbox.
    Global,
    /// Mailboxes of the master user's own domain (the domain of its username).
    Domain(String),
    /// Mailboxes of the listed domains.
    Owned(Vec<String>),
}

impl MasterScope {
    /// `global`, `domain` or `owned`.
    pub fn kind(&self) -> &'static str {
        match self {
            MasterScope::Global => "global",
            MasterScope::Domain(_) => "domain",
            MasterScope::Owned(_) => "owned",
        }
    }

    /// Whether a mailbox of `domain` is within the scope.
    pub fn allows(&self, domain: &str) -> bool {
        match self {
            MasterScope::Global => true,
            MasterScope::Domain(own) => own == domain,
            MasterScope::Owned(domains) => domains.iter().any(|d| d == domain),
        }
    }
}

/// The scope of a master user to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewMasterScope {
    /// Any mailbox.
    Global,
    /// Mailboxes of its own domain; the username must be an address in an existing domain.
    Domain,
    /// Mailboxes of these domains; each must exist.
    Owned(Vec<DomainName>),
}

/// A master user. The password hash is never included.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MasterUser {
    /// Login name (used after the separator: `target*master`).
    pub username: String,
    /// Which mailboxes it may log in as.
    #[serde(flatten)]
    pub scope: MasterScope,
    /// Inactive master users cannot log in.
    pub active: bool,
    /// Unix seconds.
    pub created_at: i64,
}

/// A master user to create.
#[derive(Debug, Clone)]
pub struct NewMasterUser {
    /// Login name.
    pub username: String,
    /// Password hash.
    pub password_hash: String,
    /// Scope.
    pub scope: NewMasterScope,
}

/// The kinds of identity provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityProviderKind {
    /// Keycloak (OIDC plus its admin REST API).
    Keycloak,
    /// Any OpenID Connect provider.
    Oidc,
    /// An LDAP directory.
    Ldap,
}

impl IdentityProviderKind {
    /// `keycloak`, `oidc` or `ldap`.
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityProviderKind::Keycloak => "keycloak",
            IdentityProviderKind::Oidc => "oidc",
            IdentityProviderKind::Ldap => "ldap",
        }
    }
}

impl fmt::Display for IdentityProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for IdentityProviderKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "keycloak" => Ok(IdentityProviderKind::Keycloak),
            "oidc" => Ok(IdentityProviderKind::Oidc),
            "ldap" => Ok(IdentityProviderKind::Ldap),
            other => Err(Error::invalid(format!(
                "unknown identity provider type '{other}' (expected keycloak, oidc or ldap)"
            ))),
        }
    }
}

/// An identity provider as listed: settings without secrets, and only the *names* of the stored secrets.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IdentityProvider {
    /// Unique name; mailboxes bound to it have it as their auth source.
    pub name: String,
    /// Type.
    pub kind: IdentityProviderKind,
    /// Inactive providers are not asked.
    pub active: bool,
    /// Settings other than secrets.
    pub settings: serde_json::Value,
    /// Names of the secrets stored for it (never their values).
    pub secret_names: Vec<String>,
    /// Attribute value → template name, in priority order.
    pub mappings: Vec<AttributeMapping>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub modified_at: i64,
}

/// One attribute mapping.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AttributeMapping {
    /// The attribute value (group DN, claim value, …).
    pub attribute_value: String,
    /// The template it selects.
    pub template: String,
}

/// An identity provider to create.
#[derive(Debug, Clone)]
pub struct NewIdentityProvider {
    /// Unique name (letters, digits, `-`, `_`; not `local`).
    pub name: String,
    /// Type.
    pub kind: IdentityProviderKind,
    /// Settings other than secrets; a JSON object.
    pub settings: serde_json::Value,
    /// Secrets (bind password, client secret, …), stored apart and never listed.
    pub secrets: BTreeMap<String, Secret>,
}

/// Changes to an identity provider; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct IdentityProviderChanges {
    /// Replaces the settings (a JSON object; secrets never go here).
    pub settings: Option<serde_json::Value>,
    /// Activates or deactivates the provider.
    pub active: Option<bool>,
    /// Sets these secrets (others are kept).
    pub secrets: BTreeMap<String, Secret>,
}

/// Outcome of one login decision, as logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthResult {
    /// Allowed.
    Success,
    /// Denied (client fault).
    Failure,
    /// Not decided because a peer failed (server fault).
    TempFail,
}

impl AuthResult {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            AuthResult::Success => "success",
            AuthResult::Failure => "failure",
            AuthResult::TempFail => "tempfail",
        }
    }

    pub(crate) fn parse(value: &str) -> Self {
        match value {
            "success" => AuthResult::Success,
            "failure" => AuthResult::Failure,
            _ => AuthResult::TempFail,
        }
    }
}

/// An auth-log entry to write.
#[derive(Debug, Clone)]
pub struct NewAuthLogEntry {
    /// Service (`imap`, `smtp`, `web`, …).
    pub service: String,
    /// The user the login was for.
    pub username: String,
    /// The master user, for master logins.
    pub master_user: Option<String>,
    /// The client's address.
    pub remote_ip: Option<String>,
    /// Outcome.
    pub result: AuthResult,
    /// Why (never contains the password).
    pub reason: String,
    /// The app password used, if any.
    pub app_password_id: Option<i64>,
}

/// An auth-log entry.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AuthLogEntry {
    /// Row id.
    pub id: i64,
    /// Unix seconds.
    pub created_at: i64,
    /// Service.
    pub service: String,
    /// User.
    pub username: String,
    /// Master user, for master logins.
    pub master_user: Option<String>,
    /// Client address.
    pub remote_ip: Option<String>,
    /// Outcome.
    pub result: AuthResult,
    /// Why.
    pub reason: String,
    /// Whether an app password was used.
    pub via_app_password: bool,
    /// Which app password.
    pub app_password_id: Option<i64>,
}

/// An audit-log entry.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AuditEntry {
    /// Row id.
    pub id: i64,
    /// Unix seconds.
    pub created_at: i64,
    /// Who.
    pub actor: String,
    /// In which role.
    pub actor_role: String,
    /// What (`mailbox.add`, `impersonate`, …).
    pub action: String,
    /// On what.
    pub target: String,
    /// Details, as JSON (never secrets).
    pub details: serde_json::Value,
}

/// A job-log entry (a sync or import run).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct JobRun {
    /// Row id.
    pub id: i64,
    /// Job name (`sync`, `import`, …).
    pub job: String,
    /// Identity provider it ran for.
    pub provider: Option<String>,
    /// Unix seconds.
    pub started_at: i64,
    /// Unix seconds; `None` while running (or if the process died).
    pub finished_at: Option<i64>,
    /// `running`, `ok`, `failed`, …
    pub status: String,
    /// Counts and messages, as JSON.
    pub summary: serde_json::Value,
}

/// Filter for log listings.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    /// Only entries about this user / target.
    pub subject: Option<String>,
    /// Only entries at or after this Unix time.
    pub since: Option<i64>,
    /// At most this many (newest first); default 100.
    pub limit: Option<u64>,
    /// Only entries about these domains (their mailboxes, or the domains themselves); `Some(empty)` matches
    /// nothing. For domain administrators and domain-limited API keys.
    pub domains: Option<Vec<DomainName>>,
    /// Auth log: only this service (`imap`, `web`, …).
    pub service: Option<String>,
    /// Auth log: only this outcome.
    pub result: Option<AuthResult>,
    /// Audit log: only changes by this actor.
    pub actor: Option<String>,
    /// Audit log: only actions starting with this (`mailbox`, `domain.add`, …).
    pub action_prefix: Option<String>,
    /// Job log: only runs with this status (`ok`, `refused`, `failed`, `running`).
    pub status: Option<String>,
}
