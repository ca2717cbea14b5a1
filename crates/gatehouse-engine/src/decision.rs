//! What the engine is asked, and what it answers.

use std::net::IpAddr;

use gatehouse_core::Service;
use gatehouse_passwords::Zeroizing;

/// What a login is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginService {
    /// A mail protocol; the mailbox's protocol flags apply.
    Protocol(Service),
    /// Gatehouse's own web UI (the protocol flags do not apply; the second factor follows the password).
    Web,
}

/// Where a login came in. Each entry point accepts only the services it serves and says whether master logins
/// (`mailbox*master`, a SASL authorization id) are accepted there, so the engine decides — and counts and logs —
/// what an adapter would otherwise have to overrule after the fact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryPoint {
    /// Dovecot's passdb (`/dovecot/auth`) and the SASL listener for Postfix: IMAP, POP3, SMTP and ManageSieve;
    /// master logins too.
    MailServer,
    /// nginx's `auth_request` in front of SOGo: webmail, CalDAV/CardDAV and ActiveSync; no master logins.
    WebmailProxy,
    /// Gatehouse's own login pages and forms: the web UI only; no master logins.
    WebUi,
    /// `gatehouse auth test`: any service, as the mail server or the proxy would ask; master logins too.
    Operator,
}

impl EntryPoint {
    /// Whether logins for `service` may come in here.
    pub fn accepts(self, service: LoginService) -> bool {
        match (self, service) {
            (EntryPoint::Operator, _) => true,
            (EntryPoint::WebUi, LoginService::Web) => true,
            (EntryPoint::MailServer, LoginService::Protocol(s)) => {
                matches!(s, Service::Imap | Service::Pop3 | Service::Smtp | Service::Sieve)
            }
            (EntryPoint::WebmailProxy, LoginService::Protocol(s)) => {
                matches!(s, Service::Sogo | Service::Dav | Service::Eas)
            }
            _ => false,
        }
    }

    /// Whether master logins are accepted here.
    pub fn allows_master(self) -> bool {
        matches!(self, EntryPoint::MailServer | EntryPoint::Operator)
    }

    /// A name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryPoint::MailServer => "the mail server",
            EntryPoint::WebmailProxy => "the webmail proxy",
            EntryPoint::WebUi => "the web UI",
            EntryPoint::Operator => "the command line",
        }
    }
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

/// What a client proves itself with.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// A password (or an app password, or a webmail token), as raw bytes — never normalised.
    Password(Zeroizing<Vec<u8>>),
    /// An OAuth 2.0 bearer access token (XOAUTH2 / OAUTHBEARER), checked by the identity source that issued it.
    Bearer(Zeroizing<String>),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Credentials::Password(_) => "Password([redacted])",
            Credentials::Bearer(_) => "Bearer([redacted])",
        })
    }
}

impl Credentials {
    /// A password from bytes.
    pub fn password(bytes: impl Into<Vec<u8>>) -> Self {
        Credentials::Password(Zeroizing::new(bytes.into()))
    }

    /// The secret's bytes, whatever the kind (for cache keys and equal-cost refusals).
    pub fn secret(&self) -> &[u8] {
        match self {
            Credentials::Password(bytes) => bytes,
            Credentials::Bearer(token) => token.as_bytes(),
        }
    }

    /// The password, if these credentials are one.
    pub fn as_password(&self) -> Option<&Zeroizing<Vec<u8>>> {
        match self {
            Credentials::Password(bytes) => Some(bytes),
            Credentials::Bearer(_) => None,
        }
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.secret().is_empty()
    }
}

/// One login attempt.
#[derive(Debug, Clone)]
pub struct LoginRequest {
    /// The username as typed (`alice@example.org`, or `alice@example.org*master`).
    pub username: String,
    /// The SASL authorization id, if the client sent one.
    pub authzid: Option<String>,
    /// The password or token. Wiped from memory on drop.
    pub credentials: Credentials,
    /// What the login is for.
    pub service: LoginService,
    /// The client's address.
    pub remote_ip: Option<IpAddr>,
    /// Whether the client connection is encrypted.
    pub secured: bool,
    /// Where the login came in.
    pub entry: EntryPoint,
    /// Dovecot's second pass after a master login (`skip_password_check`, with the master user Dovecot names):
    /// `username` is then the mailbox and `password` the master's. Gatehouse does not take Dovecot's word for
    /// it: the pass is decided as that master login again (from the result cache when the first pass was just
    /// verified, so it costs no hash).
    pub master_second_pass: Option<String>,
}

/// A login to the web UI's admin or domain-admin area.
#[derive(Debug, Clone)]
pub struct AdminLoginRequest {
    /// The administrator's name.
    pub username: String,
    /// The password. Wiped from memory on drop.
    pub password: Zeroizing<Vec<u8>>,
    /// Which area: an admin cannot log in as a domain admin or the other way round.
    pub kind: gatehouse_core::AdminRole,
    /// The client's address.
    pub remote_ip: Option<IpAddr>,
}

/// A browser sign-in an identity provider vouched for (the ID token checked, the claims read): which mailbox
/// it opens is the engine's decision.
#[derive(Debug, Clone)]
pub struct ProviderSignInRequest {
    /// The provider's name (a mailbox's auth source).
    pub provider: String,
    /// The account as the provider describes it (`sub`, the verified address, the template values), or why
    /// the provider's answer was refused (a token check, an unverified address, a missing claim value).
    pub account: Result<crate::ExternalAccount, String>,
    /// The client's address.
    pub remote_ip: Option<IpAddr>,
}

/// The administrator role an identity provider's claims give an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminGrant {
    /// Administrator or domain administrator.
    pub role: gatehouse_core::AdminRole,
    /// The domains a domain administrator manages.
    pub domains: Vec<String>,
    /// A domain administrator may open its domains' mailboxes.
    pub login_as: bool,
}

/// A sign-in at an identity provider to the administrator or domain-administrator area.
#[derive(Debug, Clone)]
pub struct ProviderAdminSignInRequest {
    /// The provider's name.
    pub provider: String,
    /// The account and the role its claims give (none: no administrator role), or why the provider's answer
    /// was refused.
    pub account: Result<(crate::ExternalAccount, Option<AdminGrant>), String>,
    /// The area signed in to.
    pub kind: gatehouse_core::AdminRole,
    /// The client's address.
    pub remote_ip: Option<IpAddr>,
}

/// The account an access token belongs to, as the provider that issued it vouches for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenAccount {
    /// The provider's name (a mailbox's auth source).
    pub provider: String,
    /// The account (`sub`).
    pub subject: String,
    /// The mailbox bound to that account, if one is.
    pub address: Option<String>,
}

/// A mail login with an access token from an identity provider (XOAUTH2 or OAUTHBEARER through Dovecot).
#[derive(Debug, Clone)]
pub struct AccessTokenRequest {
    /// The token's account, or why the provider's answer refused it (expired, another client's, …).
    pub token: Result<TokenAccount, String>,
    /// The mail service asked for.
    pub service: gatehouse_core::Service,
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
    /// A webmail single-sign-on token, by id.
    SsoToken(i64),
    /// A web session opening webmail (its owner's mailbox, or an administrator's impersonation).
    WebSession,
    /// A web login's second factor (TOTP, a recovery code or a passkey).
    SecondFactor,
    /// A passwordless web sign-in with a passkey, by the passkey's id.
    Passkey(i64),
    /// A browser sign-in at an identity provider, by the provider's name.
    IdentityProvider(String),
    /// An access token of an identity provider, by the provider's name.
    AccessToken(String),
}

/// What a web login must do before its session is usable, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RequiredStep {
    /// Give the second factor (TOTP code or recovery code).
    SecondFactor,
    /// Set up a second factor (required by an administrator).
    EnrolSecondFactor,
    /// Choose a new password (required by an administrator).
    ChangePassword,
}

/// What the engine knows about an account's required steps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccountSteps {
    /// A second factor (TOTP or a passkey) is on.
    pub second_factor_enabled: bool,
    /// Must set up a second factor.
    pub force_totp: bool,
    /// Must choose a new password.
    pub force_password_change: bool,
    /// The password is Gatehouse's own (an identity provider's cannot be changed here).
    pub password_changeable: bool,
}

impl AccountSteps {
    /// The next step after `done` (`None`: the password was just checked), or `None` when the session may be
    /// used.
    pub fn next_after(self, done: Option<RequiredStep>) -> Option<RequiredStep> {
        let pending = [
            (RequiredStep::SecondFactor, self.second_factor_enabled),
            (RequiredStep::EnrolSecondFactor, self.force_totp && !self.second_factor_enabled),
            (RequiredStep::ChangePassword, self.force_password_change && self.password_changeable),
        ];
        pending.into_iter().find(|(step, due)| *due && done.is_none_or(|done| *step > done)).map(|(step, _)| step)
    }
}

/// A second factor given after a web login's password.
#[derive(Debug, Clone)]
pub struct SecondFactorRequest {
    /// Whose.
    pub owner: crate::SecondFactorOwner,
    /// The six-digit TOTP code or a recovery code, as typed.
    pub code: Zeroizing<String>,
    /// The client's address.
    pub remote_ip: Option<IpAddr>,
}

/// A web login's second factor by passkey: the browser's answer to a challenge.
#[derive(Debug, Clone)]
pub struct PasskeyFactorRequest {
    /// Whose.
    pub owner: crate::SecondFactorOwner,
    /// The ceremony the challenge was issued for.
    pub ceremony: String,
    /// The browser's `PublicKeyCredential`, as JSON with its binary fields base64url.
    pub answer: String,
    /// The client's address.
    pub remote_ip: Option<IpAddr>,
}

/// The login page a passwordless sign-in came from: which kind of account it may open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInArea {
    /// The mailbox login.
    Mailbox,
    /// The administrator or the domain administrator login.
    Admin(gatehouse_core::AdminRole),
}

/// A passwordless web sign-in: the browser's answer to a challenge no account was named for.
#[derive(Debug, Clone)]
pub struct PasskeySignInRequest {
    /// The login page it came from.
    pub area: SignInArea,
    /// The ceremony the challenge was issued for.
    pub ceremony: String,
    /// The browser's `PublicKeyCredential`, as JSON with its binary fields base64url.
    pub answer: String,
    /// The client's address.
    pub remote_ip: Option<IpAddr>,
}

/// Who opens a mailbox's webmail from a web session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebmailOpener<'a> {
    /// The owner of the mailbox the session belongs to.
    Owner(&'a str),
    /// An administrator or domain administrator, by name: an impersonation.
    Administrator(&'a str),
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
        /// For web logins: what the session must do before it is usable (`None`: nothing).
        next: Option<RequiredStep>,
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
        /// What failed, as the error it was (a peer unavailable, a job already running, an internal fault).
        cause: gatehouse_core::Error,
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

    pub(crate) fn allowed(user: impl Into<String>, master_user: Option<String>, via: Via, cached: bool) -> Self {
        Decision::Allowed { user: user.into(), master_user, via, cached, next: None }
    }

    /// The required step an allowed web login continues with.
    pub fn next_step(&self) -> Option<RequiredStep> {
        match self {
            Decision::Allowed { next, .. } => *next,
            _ => None,
        }
    }
}
