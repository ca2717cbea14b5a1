//! What the engine answers for one login attempt.

use gatehouse_core::Service;

/// How an allowed login proved itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// The mailbox's own password (local hash or identity provider).
    Password,
    /// An app password, by id.
    AppPassword(i64),
    /// A master user's password.
    MasterUser(String),
}

/// The engine's answer. Client faults ([`Decision::Denied`]) count toward bans; server faults
/// ([`Decision::TempFail`]) never do and are never reported as a wrong password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The login may proceed as `user`.
    Allowed {
        /// The mailbox logged into.
        user: String,
        /// The master user, for master logins.
        master_user: Option<String>,
        /// For which service.
        service: Service,
        /// How.
        via: Via,
    },
    /// Refused: wrong credentials, unknown user, disabled, not allowed for this service, …
    Denied {
        /// Why, for logs (never shown to the client in detail).
        reason: String,
    },
    /// Not decided because a peer (database, directory, identity provider) failed.
    TempFail {
        /// What failed.
        cause: String,
    },
}

impl Decision {
    /// Whether the login is allowed.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allowed { .. })
    }
}
