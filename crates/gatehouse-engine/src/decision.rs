//! What the engine is asked, and what it answers.

use std::net::IpAddr;

use gatehouse_core::Service;
use gatehouse_passwords::Zeroizing;

/// What a login is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginService {
    /// A mail protocol; the mailbox's protocol flags apply.
    Protocol(Service),
    /// Gatehouse's own web UI (the protocol flags do not apply; TOTP is handled by the web layer).
    Web,
}

impl LoginService {
    /// Maps a service name as Dovecot, Postfix or nginx send it (`imap`, `pop3`, `sieve`/`managesieve`,
    /// `smtp`/`submission`, `sogo`, `dav`, `eas`, `web`); `None` for anything else, which is refused.
    pub fn from_name(name: &str) -> Option<Self> {
        let name = name.trim().to_ascii_lowercase();
        let service = match name.as_str() {
            "web" => return Some(LoginService::Web),
            "managesieve" => Service::Sieve,
            "submission" => Service::Smtp,
            other => other.parse().ok()?,
        };
        Some(LoginService::Protocol(service))
    }

    /// The name written to the auth log.
    pub fn as_str(self) -> &'static str {
        match self {
            LoginService::Protocol(service) => service.as_str(),
            LoginService::Web => "web",
        }
    }
}

/// One login attempt.
#[derive(Debug, Clone)]
pub struct LoginRequest {
    /// The username as typed (`alice@example.org`, or `alice@example.org*master`).
    pub username: String,
    /// The SASL authorization id, if the client sent one.
    pub authzid: Option<String>,
    /// The password or token, as raw bytes (never normalised). Wiped from memory on drop.
    pub password: Zeroizing<Vec<u8>>,
    /// What the login is for.
    pub service: LoginService,
    /// The client's address.
    pub remote_ip: Option<IpAddr>,
    /// Whether the client connection is encrypted.
    pub secured: bool,
    /// The caller already verified a master user for this login (Dovecot's second pass with
    /// `skip_password_check`): only the target mailbox is checked, not the password.
    pub master_verified: bool,
}

/// A login to the web UI's admin or domain-admin area.
#[derive(Debug, Clone)]
pub struct AdminLoginRequest {
    /// The administrator's name.
    pub username: String,
    /// The password. Wiped from memory on drop.
    pub password: Zeroizing<Vec<u8>>,
    /// Which area: an admin cannot log in as a domain admin or the other way round.
    pub kind: crate::AdminKind,
    /// The client's address.
    pub remote_ip: Option<IpAddr>,
}

/// How an allowed login proved itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// The mailbox's own password.
    Password,
    /// An app password, by id.
    AppPassword(i64),
    /// A master user's password.
    MasterUser,
    /// The caller (Dovecot) verified the master user; this answer only confirmed the target.
    MasterVerifiedByCaller,
    /// A webmail single-sign-on token, by id.
    SsoToken(i64),
}

/// Why a login was refused. The adapters map these to their wire answers (Dovecot: 401, 404, 403).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyReason {
    /// No such mailbox or master user.
    UnknownUser,
    /// The password, token or master password is wrong, or the stored hash cannot be used.
    WrongPassword,
    /// The mailbox, its domain or the master user is deactivated.
    Disabled,
    /// The mailbox may not use this service, or the credential is not valid for it.
    ServiceNotAllowed,
    /// The request is malformed (empty username, unknown service, …).
    BadRequest,
    /// The client address is banned after repeated failures.
    Banned,
}

impl DenyReason {
    /// A short name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            DenyReason::UnknownUser => "unknown user",
            DenyReason::WrongPassword => "wrong password",
            DenyReason::Disabled => "disabled",
            DenyReason::ServiceNotAllowed => "not allowed",
            DenyReason::BadRequest => "bad request",
            DenyReason::Banned => "banned",
        }
    }
}

/// The engine's answer. Client faults ([`Decision::Denied`]) count toward bans; server faults
/// ([`Decision::TempFail`]) never do and are never reported as a wrong password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The login may proceed as `user`.
    Allowed {
        /// The mailbox logged into (canonical address).
        user: String,
        /// The master user, for master logins.
        master_user: Option<String>,
        /// How.
        via: Via,
        /// Answered from the result cache, without hashing.
        cached: bool,
    },
    /// Refused.
    Denied {
        /// The category.
        reason: DenyReason,
        /// Details for the logs (never the password; not shown to clients).
        detail: String,
    },
    /// Not decided because a peer (database, directory, hash pool) failed.
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

    pub(crate) fn denied(reason: DenyReason, detail: impl Into<String>) -> Self {
        Decision::Denied { reason, detail: detail.into() }
    }
}
