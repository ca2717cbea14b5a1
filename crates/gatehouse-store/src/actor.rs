//! Who makes a change: the actor every audit-log entry names, and the roles actors have.

use gatehouse_core::AdminRole;

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
