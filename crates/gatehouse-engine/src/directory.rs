//! What the engine needs to know about accounts, as a trait the store implements. The engine itself does no
//! IO: every lookup goes through [`Directory`], every hash through the hash pool.

use std::future::Future;

use gatehouse_core::{AdminRole, Error, ProtocolSet};

use crate::Credentials;

/// A mailbox as the engine sees it at login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxLogin {
    /// Row id.
    pub id: i64,
    /// The canonical address.
    pub address: String,
    /// The domain (ASCII).
    pub domain: String,
    /// The mailbox is active.
    pub active: bool,
    /// Its domain is active.
    pub domain_active: bool,
    /// Services it may use.
    pub protocols: ProtocolSet,
    /// `local` or an identity provider's name.
    pub auth_source: String,
    /// Its auth source can be used: `local`, or an identity provider that exists and is active.
    pub source_active: bool,
    /// The account at the identity provider the mailbox is bound to (OIDC `sub`, LDAP entry), once known.
    pub external_id: Option<String>,
    /// The local password hash, if any.
    pub password_hash: Option<String>,
    /// A second factor is on: a confirmed TOTP secret or a passkey (then the primary password is refused for
    /// the mail protocols).
    pub second_factor_enabled: bool,
    /// It has legacy app passwords (brought over from another system; typed as the bare secret).
    pub legacy_app_passwords: bool,
    /// The owner must set up a second factor at the next web login.
    pub force_totp: bool,
    /// The owner must choose a new password at the next web login (local passwords only).
    pub force_password_change: bool,
    /// Bumped by every change that can affect a login.
    pub revision: i64,
}

/// An app password as the engine sees it at login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppPasswordLogin {
    /// Row id (also inside the token).
    pub id: i64,
    /// The mailbox it belongs to.
    pub mailbox_id: i64,
    /// Hash of the secret part of the token.
    pub secret_hash: String,
    /// Services it may be used for.
    pub protocols: ProtocolSet,
    /// Not revoked.
    pub active: bool,
    /// Unix seconds after which it no longer works.
    pub expires_at: Option<i64>,
}

/// The legacy app passwords a password login must verify ([`Directory::legacy_app_passwords`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LegacyCandidates {
    /// The one whose recorded fingerprint is the typed secret's: the only one to verify.
    pub by_fingerprint: Option<AppPasswordLogin>,
    /// Otherwise those never used here yet (no fingerprint recorded), oldest first.
    pub unrecorded: Vec<AppPasswordLogin>,
}

/// Which mailboxes a master user may log in as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasterScopeLogin {
    /// Any mailbox.
    Global,
    /// Mailboxes of one domain.
    Domain(String),
    /// Mailboxes of these domains.
    Owned(Vec<String>),
}

impl MasterScopeLogin {
    /// Whether a mailbox of `domain` is in scope.
    pub fn allows(&self, domain: &str) -> bool {
        match self {
            MasterScopeLogin::Global => true,
            MasterScopeLogin::Domain(own) => own == domain,
            MasterScopeLogin::Owned(domains) => domains.iter().any(|d| d == domain),
        }
    }
}

/// A master user as the engine sees it at login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterLogin {
    /// Login name.
    pub username: String,
    /// Password hash.
    pub password_hash: String,
    /// Scope.
    pub scope: MasterScopeLogin,
    /// Active.
    pub active: bool,
    /// Bumped by every change.
    pub revision: i64,
}

/// A webmail single-sign-on token as the engine sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoTokenLogin {
    /// The only mailbox it opens.
    pub mailbox: String,
    /// SHA-256 (hex) of the secret part.
    pub secret_hash: String,
    /// Unix seconds.
    pub expires_at: i64,
    /// The web session that minted it still exists.
    pub session_alive: bool,
    /// The administrator who opened the mailbox with it, for an impersonation (re-checked at every use).
    pub impersonator: Option<String>,
}

/// An administrator as the engine sees it at a web login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminLogin {
    /// Login name.
    pub username: String,
    /// Which kind.
    pub kind: AdminRole,
    /// Password hash.
    pub password_hash: String,
    /// Active.
    pub active: bool,
    /// A second factor is on: a confirmed TOTP secret or a passkey.
    pub second_factor_enabled: bool,
    /// Must set up a second factor at the next login.
    pub force_totp: bool,
    /// Must choose a new password at the next login.
    pub force_password_change: bool,
}

/// Whose second factor: a mailbox's owner or an administrator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecondFactorOwner {
    /// A mailbox (canonical address).
    Mailbox(String),
    /// An administrator or domain administrator.
    Administrator(String),
}

impl SecondFactorOwner {
    /// The name the guard counts failures under.
    pub fn name(&self) -> &str {
        match self {
            SecondFactorOwner::Mailbox(name) | SecondFactorOwner::Administrator(name) => name,
        }
    }
}

/// A confirmed TOTP secret as the engine sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpSecretLogin {
    /// The base32 secret.
    pub secret: String,
}

/// A passkey as the engine sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyLogin {
    /// Row id, to record a use.
    pub id: i64,
    /// The relying party's record of the credential (JSON).
    pub credential: String,
}

/// A passkey found by its credential id, with its account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyOwnerLogin {
    /// Whose.
    pub owner: SecondFactorOwner,
    /// The passkey.
    pub passkey: PasskeyLogin,
    /// The user handle stored with it.
    pub user_handle: String,
}

/// The lookups and updates the engine needs. Errors with [`gatehouse_core::Fault::Server`] make the engine
/// answer "temporary failure".
pub trait Directory: Send + Sync + 'static {
    /// A mailbox by its canonical (lowercase) address.
    fn mailbox(&self, address: &str) -> impl Future<Output = Result<Option<MailboxLogin>, Error>> + Send;
    /// An app password by id.
    fn app_password(&self, id: i64) -> impl Future<Output = Result<Option<AppPasswordLogin>, Error>> + Send;
    /// The legacy app passwords of mailbox `mailbox_id` a login with `secret` must verify: the one whose keyed
    /// fingerprint matches `secret`, else those whose fingerprint is not recorded yet.
    fn legacy_app_passwords(
        &self,
        mailbox_id: i64,
        secret: &[u8],
    ) -> impl Future<Output = Result<LegacyCandidates, Error>> + Send;
    /// Records the keyed fingerprint of `secret` on legacy app password `id` of mailbox `mailbox_id`, after it
    /// verified, so the next login finds it at once.
    fn remember_legacy_app_password(
        &self,
        mailbox_id: i64,
        id: i64,
        secret: &[u8],
    ) -> impl Future<Output = Result<(), Error>> + Send;
    /// A master user by login name.
    fn master_user(&self, username: &str) -> impl Future<Output = Result<Option<MasterLogin>, Error>> + Send;
    /// An administrator acting as a master user (only asked when the engine is configured to allow it): an
    /// active admin may log in as any mailbox, a domain admin with the `login_as` permission as mailboxes of
    /// its domains; anyone else is `None`.
    fn admin_as_master(&self, username: &str) -> impl Future<Output = Result<Option<MasterLogin>, Error>> + Send;
    /// A webmail single-sign-on token by id.
    fn sso_token(&self, id: i64) -> impl Future<Output = Result<Option<SsoTokenLogin>, Error>> + Send;
    /// An administrator or domain administrator by name.
    fn admin(&self, username: &str) -> impl Future<Output = Result<Option<AdminLogin>, Error>> + Send;
    /// The confirmed TOTP secret of `owner`, if TOTP is on.
    fn totp_secret(
        &self,
        owner: &SecondFactorOwner,
    ) -> impl Future<Output = Result<Option<TotpSecretLogin>, Error>> + Send;
    /// Claims TOTP time step `step` for `owner`: true unless this or a later step was used before (replay).
    fn claim_totp_step(&self, owner: &SecondFactorOwner, step: i64)
    -> impl Future<Output = Result<bool, Error>> + Send;
    /// Uses up the recovery code with this hash: true if it existed and was unused.
    fn use_recovery_code(
        &self,
        owner: &SecondFactorOwner,
        code_hash: &str,
    ) -> impl Future<Output = Result<bool, Error>> + Send;
    /// The passkeys of `owner` (none for an unknown account).
    fn passkeys(&self, owner: &SecondFactorOwner) -> impl Future<Output = Result<Vec<PasskeyLogin>, Error>> + Send;
    /// The passkey with this credential id (base64url), and whose it is.
    fn passkey_by_credential(
        &self,
        credential_id: &str,
    ) -> impl Future<Output = Result<Option<PasskeyOwnerLogin>, Error>> + Send;
    /// Records a sign-in with passkey `id`: its new signature counter and credential record.
    fn record_passkey_use(
        &self,
        id: i64,
        counter: i64,
        credential: String,
    ) -> impl Future<Output = Result<(), Error>> + Send;
    /// Replaces a mailbox's password hash if it is still `old` (rehash on login); returns whether it did.
    fn replace_password_hash(
        &self,
        mailbox_id: i64,
        old: &str,
        new: &str,
    ) -> impl Future<Output = Result<bool, Error>> + Send;
}

/// What an identity provider says about credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExternalCheck {
    /// The credentials are right.
    Valid,
    /// The credentials are wrong (or empty).
    Invalid,
    /// The provider has no such account (or several: ambiguous).
    Unknown,
    /// The credentials are right, but the provider says the account may not log in (disabled there, lacking
    /// a role).
    NotAllowed(String),
    /// The provider cannot check this kind of credentials, or is not configured: app passwords are the way in.
    Unsupported(String),
}

/// What happened when an unknown address tried to log in and identity providers were asked to create it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provisioning {
    /// A provider knows the address, the credentials are right, and the mailbox now exists: the login is
    /// verified (the engine does not ask the provider a second time).
    Created,
    /// A provider knows the address but the login or the creation was refused (wrong password, no template,
    /// domain missing or full, …).
    Refused(String),
    /// No provider with create-on-login knows the address.
    NotFound,
}

/// An account as an identity source describes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExternalAccount {
    /// The stable id at the source (LDAP DN or entryUUID, OIDC `sub`, Keycloak user id).
    pub subject: String,
    /// The mail address the source gives.
    pub address: String,
    /// The display name the source gives.
    pub display_name: Option<String>,
    /// Whether the source says the account is enabled.
    pub enabled: bool,
    /// The values of the attribute that selects the mailbox template (groups, `mailcow_template`, …), in the
    /// source's order.
    pub template_values: Vec<String>,
    /// Attributes (names lower-cased), each possibly multi-valued, values in the source's order.
    pub attributes: std::collections::BTreeMap<String, Vec<String>>,
}

impl ExternalAccount {
    /// The display name as a mailbox may carry it (the free-text rule: control characters become spaces, at most
    /// 255 characters), or `None` when the source gives none.
    pub fn mailbox_display_name(&self) -> Option<String> {
        let name = self.display_name.as_deref()?;
        Some(gatehouse_core::text::clean_free_text(name, gatehouse_core::text::MAX_FREE_TEXT)).filter(|n| !n.is_empty())
    }
}

/// Credential checks at identity providers, for mailboxes whose auth source is one. Errors with
/// [`gatehouse_core::Fault::Server`] (provider unreachable) make the engine answer "temporary failure".
pub trait IdentitySources: Send + Sync + 'static {
    /// Checks `credentials` for `address` at the provider named `source`.
    fn authenticate(
        &self,
        source: &str,
        address: &str,
        credentials: &Credentials,
    ) -> impl Future<Output = Result<ExternalCheck, Error>> + Send;

    /// For an address without a mailbox: asks the providers that create mailboxes on first login to check
    /// the credentials and, if they are right, to create the mailbox.
    fn provision(
        &self,
        address: &str,
        credentials: &Credentials,
    ) -> impl Future<Output = Result<Provisioning, Error>> + Send;

    /// For a browser sign-in at `provider` whose address has no mailbox: creates it when the provider creates
    /// mailboxes on sign-in (domain, limits and template rules as for every creation).
    fn provision_signed_in(
        &self,
        provider: &str,
        account: &ExternalAccount,
    ) -> impl Future<Output = Result<Provisioning, Error>> + Send {
        let _ = (provider, account);
        async { Ok(Provisioning::NotFound) }
    }

    /// After a browser sign-in at `provider` to an administrator area: creates or updates the administrator the
    /// account's claims make it (`grant`), bound to the account. `Refused` when another administrator holds
    /// the name (a local one, or one bound to another account).
    fn provision_admin(
        &self,
        provider: &str,
        account: &ExternalAccount,
        grant: &crate::AdminGrant,
    ) -> impl Future<Output = Result<Provisioning, Error>> + Send {
        let _ = (provider, account, grant);
        async { Ok(Provisioning::NotFound) }
    }

    /// After a browser sign-in at `provider` to its existing mailbox (already checked to be bound to this
    /// account or to none): binds it to the account and applies the update on login. Never activates it.
    fn refresh_signed_in(
        &self,
        provider: &str,
        account: &ExternalAccount,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        let _ = (provider, account);
        async { Ok(()) }
    }
}

/// No identity providers: every IdP-bound mailbox needs an app password.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoIdentitySources;

impl IdentitySources for NoIdentitySources {
    async fn authenticate(
        &self,
        source: &str,
        _address: &str,
        _credentials: &Credentials,
    ) -> Result<ExternalCheck, Error> {
        Ok(ExternalCheck::Unsupported(format!("no identity provider '{source}' is available")))
    }

    async fn provision(&self, _address: &str, _credentials: &Credentials) -> Result<Provisioning, Error> {
        Ok(Provisioning::NotFound)
    }
}
