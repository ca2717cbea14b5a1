//! The decision engine: every allow/deny of Gatehouse — mail-protocol, webmail, DAV and ActiveSync logins
//! ([`Engine::authenticate`]), administrator logins ([`Engine::authenticate_admin`]), browser sign-ins an
//! identity provider vouched for ([`Engine::sign_in_with_provider`]), the second factor and the
//! steps a web login must take next ([`Engine::second_factor`], [`Engine::step_after`]), and opening a
//! mailbox's webmail, the owner's own or an administrator's impersonation ([`Engine::authorize_webmail`]).
//! Adapters (Dovecot, SASL, nginx, the web UI, the REST API) only translate to and from these calls.
//!
//! The login pipeline, top to bottom:
//!
//! 0. The entry point: each accepts only its services (Dovecot and SASL the mail protocols, nginx webmail, DAV
//!    and ActiveSync, the web UI itself) and only some accept master logins.
//! 1. Read the login name: `target*master` or a SASL authzid mean a master login (also Dovecot's second pass
//!    after one, which is decided as that master login again).
//! 2. Master login: the master's own password, its scope, an existing and active target, the target's
//!    protocol flags.
//! 3. Mailbox lookup: unknown → a dummy hash of the same cost, then "unknown user" — unless an identity source
//!    that creates mailboxes on first login verifies the credentials, which it then provisions (the source is
//!    asked once: the engine accepts the account it verified); inactive mailbox or domain → "disabled"; the
//!    service not in the mailbox's protocols → refused *before* any password is tried, each after a dummy hash
//!    too, so the time of a refusal tells nothing about the mailbox.
//! 4. App password (`gh_<id>_<secret>`): exactly one hash, scope, expiry and active flag checked. A legacy app
//!    password (brought over from mailcow, typed as the bare secret) is found by the keyed fingerprint of the
//!    secret: one hash too, once it was used here; before that, those not used yet are tried in turn.
//! 5. The primary credential ([`Credentials`](crate::Credentials): a password, or a bearer token for the
//!    sources that take one) by auth source: `local` → the stored hash (upgraded when weaker than the
//!    configured scheme); an identity provider → checked there; TOTP on → app passwords only for the mail
//!    protocols, and the second factor next for the web.
//! 6. The result cache in front of 4 and 5, checked against revisions. While the database is unreachable, a
//!    credential it confirmed within the outage grace is answered from the cache; anything else is a temporary
//!    failure.
//!
//! Around it all, the brute-force guard: a banned address is refused before anything else, and every refusal
//! is counted (and, after a few, answered with a delay). Only the engine holds the guard.
//!
//! A failing peer (database, hash pool, identity source) gives [`Decision::TempFail`], never a wrong-password
//! answer.

use gatehouse_core::clock::now;
use std::sync::Arc;
use std::time::Duration;

use gatehouse_core::{Error, Fault, Service};
use gatehouse_passwords::{GenerateScheme, HashPool, PoolError, Verification, VerifyOptions, Zeroizing, needs_rehash};

use crate::cache::{CachedSuccess, ResultCache};
use crate::decision::{
    AccessTokenRequest, AccountSteps, AdminLoginRequest, Decision, DenyReason, LoginRequest, LoginService,
    PasskeyFactorRequest, PasskeySignInRequest, ProviderAdminSignInRequest, ProviderSignInRequest, RequiredStep,
    SecondFactorRequest, SignInArea, TokenAccount, Via, WebmailOpener,
};
use crate::directory::{
    AdminLogin, AppPasswordLogin, Directory, ExternalCheck, IdentitySources, MailboxLogin, NoIdentitySources,
    PasskeyOwnerLogin, Provisioning, SecondFactorOwner,
};
use crate::guard::{Guard, GuardConfig, Verdict};
use crate::memory::MailboxMemory;
use crate::passkey::{Challenge, Passkeys};
use crate::{app_password, parse_login_name, sso, totp};

/// The auth source of mailboxes with a local password.
const LOCAL: &str = "local";

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Dovecot's `auth_master_user_separator` (`*`).
    pub master_separator: String,
    /// The scheme new hashes are written in; weaker stored hashes are upgraded at login.
    pub password_scheme: GenerateScheme,
    /// Verification options (limits, unprefixed plaintext).
    pub verify_options: VerifyOptions,
    /// How long a verified success is remembered.
    pub cache_ttl: Duration,
    /// How many successes are remembered at most.
    pub cache_capacity: u64,
    /// The brute-force guard's settings.
    pub guard: GuardConfig,
    /// Administrators (any mailbox) and domain administrators with `login_as` (their domains' mailboxes) may
    /// also log in as master users, with their own passwords.
    pub admins_as_masters: bool,
    /// Administrators (any mailbox) and domain administrators with `login_as` (their domains' mailboxes) may
    /// open mailboxes' webmail from their web session (mailcow's `ALLOW_ADMIN_EMAIL_LOGIN`).
    pub admins_open_webmail: bool,
    /// While the database is unreachable, a credential it confirmed within this time is still allowed from
    /// memory; zero turns that off.
    pub outage_grace: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            master_separator: "*".into(),
            password_scheme: GenerateScheme::default(),
            verify_options: VerifyOptions::default(),
            cache_ttl: Duration::from_secs(300),
            cache_capacity: 100_000,
            guard: GuardConfig::default(),
            admins_as_masters: false,
            admins_open_webmail: false,
            outage_grace: Duration::from_secs(300),
        }
    }
}

/// How long a success verified by an identity provider is remembered at most: a password changed at the
/// provider cannot bump Gatehouse's revision, so this bounds how long the old one keeps working.
const EXTERNAL_CACHE_SECONDS: i64 = 60;

/// How often a remembered success's confirmation time is renewed while it keeps being used (seconds).
const CONFIRM_EVERY_SECONDS: i64 = 5;

/// The decision engine.
pub struct Engine<D: Directory, S: IdentitySources = NoIdentitySources> {
    directory: D,
    sources: S,
    pool: HashPool,
    config: EngineConfig,
    cache: ResultCache,
    memory: MailboxMemory,
    guard: Guard,
    passkeys: Option<Passkeys>,
}

/// The account a passkey ceremony is bound to.
pub fn passkey_account(owner: &SecondFactorOwner) -> String {
    match owner {
        SecondFactorOwner::Mailbox(address) => format!("mailbox:{address}"),
        SecondFactorOwner::Administrator(name) => format!("admin:{name}"),
    }
}

fn passkeys_not_set_up() -> Error {
    Error::Unavailable("passkeys need web.public_url, the address browsers reach the web interface at".into())
}

/// Turns a directory error into the engine's answer: server faults are temporary failures.
fn lookup_failed(err: Error) -> Decision {
    match err.fault() {
        Fault::Server => Decision::TempFail { cause: err },
        Fault::Client => Decision::denied(DenyReason::BadRequest, err.to_string()),
    }
}

fn pool_failed(err: PoolError) -> Decision {
    Decision::TempFail { cause: Error::from(err) }
}

/// What a mailbox's owner must do before a web session is usable.
fn mailbox_steps(mailbox: &MailboxLogin) -> AccountSteps {
    AccountSteps {
        second_factor_enabled: mailbox.second_factor_enabled,
        force_totp: mailbox.force_totp,
        force_password_change: mailbox.force_password_change,
        password_changeable: mailbox.auth_source == LOCAL
            && mailbox.password_hash.as_deref().is_some_and(|h| !h.is_empty()),
    }
}

/// What an administrator must do before a web session is usable.
fn admin_steps(admin: &AdminLogin) -> AccountSteps {
    AccountSteps {
        second_factor_enabled: admin.second_factor_enabled,
        force_totp: admin.force_totp,
        force_password_change: admin.force_password_change,
        password_changeable: true,
    }
}

/// An allowed web login carries the step it continues with.
fn with_next_step(request: &LoginRequest, mailbox: &MailboxLogin, decision: Decision) -> Decision {
    match decision {
        Decision::Allowed { user, master_user, via, cached, .. } if request.service == LoginService::Web => {
            Decision::Allowed { user, master_user, via, cached, next: mailbox_steps(mailbox).next_after(None) }
        }
        other => other,
    }
}

macro_rules! try_lookup {
    ($e:expr) => {
        match $e {
            Ok(value) => value,
            Err(err) => return lookup_failed(err),
        }
    };
}

impl<D: Directory> Engine<D, NoIdentitySources> {
    /// Builds an engine over a directory and a hash pool, without identity providers.
    pub fn new(directory: D, pool: HashPool, config: EngineConfig) -> Self {
        Engine::with_sources(directory, NoIdentitySources, pool, config)
    }
}

impl<D: Directory, S: IdentitySources> Engine<D, S> {
    /// Builds an engine over a directory, the identity providers and a hash pool.
    pub fn with_sources(directory: D, sources: S, pool: HashPool, config: EngineConfig) -> Self {
        let cache = ResultCache::new(config.cache_ttl, config.cache_capacity);
        let memory = MailboxMemory::new(config.cache_capacity);
        let guard = Guard::new(config.guard.clone());
        Engine { directory, sources, pool, config, cache, memory, guard, passkeys: None }
    }

    /// The engine with passkeys: the relying party of the web interface's public URL.
    pub fn with_passkeys(mut self, passkeys: Passkeys) -> Self {
        self.passkeys = Some(passkeys);
        self
    }

    /// The relying party of passkeys, when the web interface's public URL is known.
    pub fn passkeys(&self) -> Option<&Passkeys> {
        self.passkeys.as_ref()
    }

    /// The mailbox `address` (canonical), from memory while the change feed is being read, else from the
    /// directory (and then remembered).
    async fn lookup_mailbox(&self, address: &str) -> Result<Option<Arc<MailboxLogin>>, Error> {
        if self.memory.answers()
            && let Some(found) = self.memory.peek(address)
        {
            return Ok(Some(found));
        }
        let epoch = self.memory.epoch();
        let found = self.directory.mailbox(address).await?.map(Arc::new);
        match &found {
            Some(mailbox) => self.memory.remember(epoch, address, mailbox),
            None => self.memory.discard(address),
        }
        Ok(found)
    }

    /// Notes a good read of the change feed that started at `started_at` (milliseconds since the Unix epoch),
    /// after every change it returned was forgotten ([`Engine::forget`], [`Engine::forget_every_mailbox`]). The
    /// memory answers only while such reads keep coming.
    pub fn feed_read(&self, started_at: i64) {
        self.memory.feed_read(started_at);
    }

    /// Whether what is remembered may answer now: the change feed was read recently (see [`crate::memory`]).
    pub fn memory_answers(&self) -> bool {
        self.memory.answers()
    }

    /// Notes that the change feed cannot be read: logins look mailboxes up in the directory until it can.
    pub fn feed_lost(&self) {
        self.memory.feed_lost();
    }

    /// The directory (for adapters that also need lookups).
    pub fn directory(&self) -> &D {
        &self.directory
    }

    /// The identity providers (for adapters that run a provider's browser sign-in).
    pub fn sources(&self) -> &S {
        &self.sources
    }

    /// The brute-force guard.
    pub fn guard(&self) -> &Guard {
        &self.guard
    }

    /// Decides one login: the brute-force guard first, then the pipeline; a refusal is counted and, after
    /// repeated failures, answered with a delay.
    pub async fn authenticate(&self, request: &LoginRequest) -> Decision {
        self.guarded(request.remote_ip, &request.username, self.decide(request)).await
    }

    /// Runs a decision behind the brute-force guard: a banned address is refused before anything is looked at;
    /// a refusal is counted (and answered with a delay after repeated failures); a success clears the user's
    /// failures; a temporary failure counts for nothing.
    async fn guarded(
        &self,
        remote_ip: Option<std::net::IpAddr>,
        username: &str,
        decide: impl std::future::Future<Output = Decision>,
    ) -> Decision {
        if let Verdict::Banned { remaining } = self.guard.check(remote_ip) {
            return Decision::denied(
                DenyReason::Banned,
                format!("the client address is banned for another {} s after repeated failures", remaining.as_secs()),
            );
        }
        let decision = decide.await;
        match &decision {
            Decision::Denied { .. } => {
                let delay = self.guard.failure(remote_ip, username);
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
            }
            Decision::Allowed { user, .. } => self.guard.success(user),
            Decision::TempFail { .. } => {}
        }
        decision
    }

    /// The pipeline itself.
    async fn decide(&self, request: &LoginRequest) -> Decision {
        // 0. What this entry point accepts.
        if !request.entry.accepts(request.service) {
            return Decision::denied(
                DenyReason::ServiceNotAllowed,
                format!("{} logins are not accepted through {}", request.service.as_str(), request.entry.as_str()),
            );
        }
        // 1. Who logs in, and as whom.
        let name = match parse_login_name(&request.username, request.authzid.as_deref(), &self.config.master_separator)
        {
            Ok(name) => name,
            Err(err) => return Decision::denied(DenyReason::BadRequest, err.to_string()),
        };
        let master = match (&request.master_second_pass, &name.master) {
            (Some(_), Some(_)) => {
                return Decision::denied(DenyReason::BadRequest, "a second master pass names a master login again");
            }
            (Some(master), None) => Some(crate::login_name::normalise_name(master)),
            (None, master) => master.clone(),
        };
        if let Some(master) = master {
            if !request.entry.allows_master() {
                return Decision::denied(
                    DenyReason::ServiceNotAllowed,
                    format!("master logins are not accepted through {}", request.entry.as_str()),
                );
            }
            if master.is_empty() || master == name.target {
                return Decision::denied(
                    DenyReason::BadRequest,
                    "a master login needs a master user other than the target",
                );
            }
            return self.master_login(request, &name.target, &master).await;
        }

        // 3. The mailbox, its state and the protocol gate — before any password is tried.
        let mut found = match self.lookup_mailbox(&name.target).await {
            Ok(found) => found,
            Err(err) if err.fault() == Fault::Server => return self.during_outage(request, &name.target, err),
            Err(err) => return lookup_failed(err),
        };
        // A mailbox an identity provider just created on this login: the provider verified the credentials.
        let mut verified_by_source = false;
        if found.is_none() && name.target.contains('@') && !request.credentials.is_empty() {
            // An address Gatehouse does not know may belong to an identity provider that creates mailboxes on
            // first login.
            match self.sources.provision(&name.target, &request.credentials).await {
                Ok(Provisioning::Created) => {
                    found = try_lookup!(self.lookup_mailbox(&name.target).await);
                    verified_by_source = true;
                }
                Ok(Provisioning::Refused(why)) => return Decision::denied(DenyReason::UnknownUser, why),
                Ok(Provisioning::NotFound) => {}
                Err(err) => return lookup_failed(err),
            }
        }
        // What the database says now replaces what is remembered from an older revision, whatever this login's
        // outcome: a mailbox seen deactivated (or gone) just before an outage does not come back from memory.
        let key = self.cache.key(request.service.as_str(), &name.target, None, request.credentials.secret());
        let remembered = self.cache.get(&key);
        let Some(mailbox) = found else {
            if remembered.is_some() {
                self.cache.remove(&key);
            }
            return self.unknown_user(request, "no such mailbox").await;
        };
        let remembered = match remembered {
            Some(hit) if hit.mailbox_revision == mailbox.revision && hit.master_revision.is_none() => Some(hit),
            Some(_) => {
                self.cache.remove(&key);
                None
            }
            None => None,
        };
        // Refusals by the mailbox's state cost one hash too, like an unknown user or a wrong password: how long
        // the answer takes tells nothing about whether the mailbox exists.
        if !mailbox.active || !mailbox.domain_active {
            return self.refuse_after_dummy_hash(request, DenyReason::Disabled, "mailbox or domain is inactive").await;
        }
        // A webmail single-sign-on token (SOGo logging in for a web session): its own gate, never cached, so
        // it stops working the moment the session ends.
        if let Some((id, secret)) = request.credentials.as_password().and_then(|password| sso::parse(password)) {
            return self.sso_login(request, &mailbox, id, secret).await;
        }
        if let LoginService::Protocol(service) = request.service
            && !mailbox.protocols.contains(service)
        {
            let detail = format!("{service} is disabled for this mailbox");
            return self.refuse_after_dummy_hash(request, DenyReason::ServiceNotAllowed, &detail).await;
        }

        // 6. A cached success for exactly this credential, still valid for this revision (a password an identity
        // provider checked, only while the provider is active).
        if let Some(hit) = remembered {
            let provider_gone = hit.via == Via::Password && mailbox.auth_source != LOCAL && !mailbox.source_active;
            let at = now();
            if hit.expires_at.is_none_or(|expires| expires > at) && !provider_gone {
                // Confirmed against the current revision: it may answer for a while should the database go away.
                // The mark is renewed every few seconds, not at every login (a write to the cache costs).
                if at - hit.confirmed_at >= CONFIRM_EVERY_SECONDS {
                    self.cache.insert(key, CachedSuccess { confirmed_at: at, ..(*hit).clone() });
                }
                let allowed = Decision::allowed(&mailbox.address, None, hit.via.clone(), true);
                return with_next_step(request, &mailbox, allowed);
            }
            self.cache.remove(&key);
        }

        // 4. App password, then 5. the primary credential.
        let app = request.credentials.as_password().and_then(|password| app_password::parse(password));
        let (decision, expires_at) = match app {
            Some((id, secret)) => self.app_password_login(request, &mailbox, id, secret).await,
            // The provider that created the mailbox a moment ago checked these credentials: once is enough.
            None if verified_by_source => {
                (Decision::allowed(&mailbox.address, None, Via::Password, false), Some(now() + EXTERNAL_CACHE_SECONDS))
            }
            None => match self.legacy_app_password_login(request, &mailbox).await {
                Some(outcome) => outcome,
                None if mailbox.auth_source != LOCAL => {
                    (self.external_login(request, &mailbox).await, Some(now() + EXTERNAL_CACHE_SECONDS))
                }
                None => (self.primary_login(request, &mailbox).await, None),
            },
        };
        if let Decision::Allowed { via, .. } = &decision {
            let entry = CachedSuccess {
                mailbox_revision: mailbox.revision,
                master_revision: None,
                via: via.clone(),
                expires_at,
                mailbox: mailbox.address.clone(),
                confirmed_at: now(),
            };
            self.cache.insert(key, entry);
        }
        with_next_step(request, &mailbox, decision)
    }

    /// The database cannot be asked: a credential the database confirmed within the outage grace is still
    /// allowed from memory (revisions seen before the outage, and changes made in this process, hold); anything
    /// else is a temporary failure, never a refusal.
    fn during_outage(&self, request: &LoginRequest, target: &str, err: Error) -> Decision {
        let grace = self.config.outage_grace.as_secs() as i64;
        let key = self.cache.key(request.service.as_str(), target, None, request.credentials.secret());
        let at = now();
        // The mailbox as last seen, still remembered: nothing forgot it (no change made here or read from the
        // feed since), and the success was verified against that very revision.
        let last_seen = self.memory.peek(target);
        match self.cache.get(&key) {
            Some(hit)
                if grace > 0
                    && last_seen.is_some_and(|m| m.revision == hit.mailbox_revision && m.active && m.domain_active)
                    && hit.master_revision.is_none()
                    && at - hit.confirmed_at <= grace
                    && hit.expires_at.is_none_or(|expires| expires > at) =>
            {
                tracing::warn!(
                    user = target,
                    confirmed_seconds_ago = at - hit.confirmed_at,
                    "the database is unreachable ({err}); allowed a credential it confirmed recently, from memory"
                );
                Decision::allowed(hit.mailbox.clone(), None, hit.via.clone(), true)
            }
            _ => lookup_failed(err),
        }
    }

    /// Forgets what is remembered of `mailbox` after a change (a revoked app password, a new password, a
    /// deactivation, made here or read from the change feed): the next login reads it from the directory, and
    /// its remembered successes count only for the revision it then has — not even an outage brings one back.
    pub fn forget(&self, mailbox: &str) {
        self.memory.forget(mailbox);
    }

    /// Forgets what is remembered of every mailbox (a domain or an identity provider changed).
    pub fn forget_every_mailbox(&self) {
        self.memory.forget_all();
    }

    /// Forgets everything: mailboxes and remembered successes.
    pub fn forget_all(&self) {
        self.memory.forget_all();
        self.cache.clear();
    }

    async fn unknown_user(&self, request: &LoginRequest, detail: &str) -> Decision {
        self.refuse_after_dummy_hash(request, DenyReason::UnknownUser, detail).await
    }

    /// Refuses after hashing against a dummy of the same cost as a real verification, so timing does not
    /// tell whether the account or credential exists.
    async fn refuse_after_dummy_hash(&self, request: &LoginRequest, reason: DenyReason, detail: &str) -> Decision {
        let secret = Zeroizing::new(request.credentials.secret().to_vec());
        match self.pool.dummy_verify(secret).await {
            Ok(()) => Decision::denied(reason, detail),
            Err(err) => pool_failed(err),
        }
    }

    async fn verify(&self, stored: &str, password: &Zeroizing<Vec<u8>>) -> Result<Verification, Decision> {
        self.pool.verify(stored.to_string(), password.clone(), self.config.verify_options).await.map_err(pool_failed)
    }

    async fn app_password_login(
        &self,
        request: &LoginRequest,
        mailbox: &MailboxLogin,
        id: i64,
        secret: &[u8],
    ) -> (Decision, Option<i64>) {
        let found = match self.directory.app_password(id).await {
            Ok(found) => found,
            Err(err) => return (lookup_failed(err), None),
        };
        let Some(app) = found.filter(|app| app.mailbox_id == mailbox.id) else {
            let detail = format!("app password {id} does not exist for this mailbox");
            return (self.refuse_after_dummy_hash(request, DenyReason::WrongPassword, &detail).await, None);
        };
        let secret = Zeroizing::new(secret.to_vec());
        match self.verify(&app.secret_hash, &secret).await {
            Ok(Verification::Match) => {}
            Ok(other) => {
                return (Decision::denied(DenyReason::WrongPassword, format!("app password {id}: {other:?}")), None);
            }
            Err(decision) => return (decision, None),
        }
        Self::app_password_allows(request, mailbox, &app)
    }

    /// A legacy app password (brought over from another system, typed as the bare secret): the one the secret's
    /// fingerprint names costs one hash; until each was used once, those without a fingerprint are tried in
    /// turn (as the system they came from did). `None` when the mailbox has none or none matches: the login
    /// goes on as a password login.
    async fn legacy_app_password_login(
        &self,
        request: &LoginRequest,
        mailbox: &MailboxLogin,
    ) -> Option<(Decision, Option<i64>)> {
        if !mailbox.legacy_app_passwords {
            return None;
        }
        let secret = request.credentials.as_password()?;
        let candidates = match self.directory.legacy_app_passwords(mailbox.id, secret).await {
            Ok(candidates) => candidates,
            Err(err) => return Some((lookup_failed(err), None)),
        };
        let (recorded, candidates) = match candidates.by_fingerprint {
            Some(app) => (true, vec![app]),
            None => (false, candidates.unrecorded),
        };
        for app in candidates.into_iter().filter(|app| app.mailbox_id == mailbox.id) {
            match self.verify(&app.secret_hash, secret).await {
                Ok(Verification::Match) => {
                    if !recorded
                        && let Err(err) = self.directory.remember_legacy_app_password(mailbox.id, app.id, secret).await
                    {
                        tracing::warn!(mailbox = %mailbox.address, app_password = app.id, "could not record it: {err}");
                    }
                    return Some(Self::app_password_allows(request, mailbox, &app));
                }
                Ok(_) => continue,
                Err(decision) => return Some((decision, None)),
            }
        }
        None
    }

    /// What a verified app password opens: nothing when revoked or expired, only its protocols, never the web UI.
    fn app_password_allows(
        request: &LoginRequest,
        mailbox: &MailboxLogin,
        app: &AppPasswordLogin,
    ) -> (Decision, Option<i64>) {
        let id = app.id;
        if !app.active {
            return (Decision::denied(DenyReason::Disabled, format!("app password {id} is revoked")), None);
        }
        if app.expires_at.is_some_and(|at| at <= now()) {
            return (Decision::denied(DenyReason::Disabled, format!("app password {id} has expired")), None);
        }
        if let LoginService::Protocol(service) = request.service
            && !app.protocols.contains(service)
        {
            return (
                Decision::denied(
                    DenyReason::ServiceNotAllowed,
                    format!("app password {id} is not valid for {service}"),
                ),
                None,
            );
        }
        if request.service == LoginService::Web {
            return (Decision::denied(DenyReason::ServiceNotAllowed, "app passwords do not open the web UI"), None);
        }
        let allowed = Decision::allowed(mailbox.address.clone(), None, Via::AppPassword(id), false);
        (allowed, app.expires_at)
    }

    /// A webmail single-sign-on token: valid only for the mailbox it was minted for, only for what SOGo does
    /// (IMAP, ManageSieve, SMTP submission), only while the web session that minted it lives, and only if the
    /// mailbox may use webmail.
    async fn sso_login(&self, request: &LoginRequest, mailbox: &MailboxLogin, id: i64, secret: &[u8]) -> Decision {
        let LoginService::Protocol(service @ (Service::Imap | Service::Sieve | Service::Smtp)) = request.service else {
            return Decision::denied(
                DenyReason::ServiceNotAllowed,
                format!("SSO tokens are not valid for {}", request.service.as_str()),
            );
        };
        if !mailbox.protocols.contains(Service::Sogo) {
            return Decision::denied(DenyReason::ServiceNotAllowed, "webmail (sogo) is disabled for this mailbox");
        }
        let token = try_lookup!(self.directory.sso_token(id).await);
        let Some(token) = token.filter(|t| sso::secret_matches(secret, &t.secret_hash)) else {
            return Decision::denied(DenyReason::WrongPassword, format!("SSO token {id} does not exist or is wrong"));
        };
        if token.mailbox != mailbox.address {
            return Decision::denied(
                DenyReason::WrongPassword,
                format!("SSO token {id} belongs to another mailbox, not {}", mailbox.address),
            );
        }
        if !token.session_alive || token.expires_at <= now() {
            return Decision::denied(DenyReason::Disabled, format!("SSO token {id} ended with its web session"));
        }
        // An impersonation's token is worth what the impersonation is worth now, not when it began.
        if let Some(admin) = &token.impersonator
            && let Err(refusal) = self.administrator_may_open(admin, mailbox).await
        {
            return refusal;
        }
        tracing::debug!(mailbox = %mailbox.address, %service, token = id, "SSO token accepted");
        Decision::allowed(mailbox.address.clone(), None, Via::SsoToken(id), false)
    }

    /// Whether a web session may open (or keep using) `target`'s webmail: the owner their own mailbox, an
    /// administrator (with `admins_open_webmail`) any mailbox, a domain administrator with `login_as` the
    /// mailboxes of its domains; the mailbox and its domain active and the mailbox allowed webmail (`sogo`). Asked
    /// when webmail is opened and again for every request and single-sign-on use that follows, so a grant ends
    /// the moment what allowed it does.
    pub async fn authorize_webmail(&self, opener: WebmailOpener<'_>, target: &str) -> Decision {
        let target = crate::login_name::normalise_name(target);
        let Some(mailbox) = try_lookup!(self.lookup_mailbox(&target).await) else {
            return Decision::denied(DenyReason::UnknownUser, "no such mailbox");
        };
        if !mailbox.active || !mailbox.domain_active {
            return Decision::denied(DenyReason::Disabled, "mailbox or domain is inactive");
        }
        if !mailbox.protocols.contains(Service::Sogo) {
            return Decision::denied(DenyReason::ServiceNotAllowed, "webmail (sogo) is disabled for this mailbox");
        }
        let master_user = match opener {
            WebmailOpener::Owner(owner) if crate::login_name::normalise_name(owner) == mailbox.address => None,
            WebmailOpener::Owner(_) => {
                return Decision::denied(DenyReason::ServiceNotAllowed, "a user's session opens only its own mailbox");
            }
            WebmailOpener::Administrator(admin) => {
                if let Err(refusal) = self.administrator_may_open(admin, &mailbox).await {
                    return refusal;
                }
                Some(admin.to_string())
            }
        };
        Decision::allowed(mailbox.address.clone(), master_user, Via::WebSession, false)
    }

    /// The impersonation rule: the setting, an active administrator, and for domain administrators the
    /// `login_as` permission and the mailbox's domain among theirs.
    async fn administrator_may_open(&self, admin: &str, mailbox: &MailboxLogin) -> Result<(), Decision> {
        if !self.config.admins_open_webmail {
            return Err(Decision::denied(
                DenyReason::ServiceNotAllowed,
                "administrators may not open mailboxes' webmail",
            ));
        }
        let as_master = self.directory.admin_as_master(admin).await.map_err(lookup_failed)?;
        let Some(as_master) = as_master else {
            return Err(Decision::denied(
                DenyReason::ServiceNotAllowed,
                format!("{admin} is no administrator with the login_as permission"),
            ));
        };
        if !as_master.active {
            return Err(Decision::denied(DenyReason::Disabled, format!("the administrator {admin} is inactive")));
        }
        if !as_master.scope.allows(&mailbox.domain) {
            return Err(Decision::denied(
                DenyReason::ServiceNotAllowed,
                format!("{admin} may not open mailboxes of {}", mailbox.domain),
            ));
        }
        Ok(())
    }

    /// Decides a web login's second factor: a six-digit TOTP code (each time step accepted once) or a recovery
    /// code (each once), behind the brute-force guard like a password; an allowed factor carries the step the
    /// session continues with.
    pub async fn second_factor(&self, request: &SecondFactorRequest) -> Decision {
        self.guarded(request.remote_ip, request.owner.name(), self.decide_second_factor(request)).await
    }

    async fn decide_second_factor(&self, request: &SecondFactorRequest) -> Decision {
        let owner = &request.owner;
        let Some(secret) = try_lookup!(self.directory.totp_secret(owner).await) else {
            return Decision::denied(DenyReason::WrongPassword, "two-factor authentication is not on");
        };
        let typed: String = request.code.chars().filter(|c| !c.is_whitespace()).collect();
        let valid = if typed.len() == totp::DIGITS as usize && typed.bytes().all(|b| b.is_ascii_digit()) {
            match totp::check_code(&secret.secret, &typed, now().max(0) as u64) {
                Some(step) => try_lookup!(self.directory.claim_totp_step(owner, step).await),
                None => false,
            }
        } else {
            try_lookup!(self.directory.use_recovery_code(owner, &totp::hash_recovery_code(&request.code)).await)
        };
        if !valid {
            return Decision::denied(DenyReason::WrongPassword, "wrong or reused TOTP code");
        }
        self.second_factor_passed(owner).await
    }

    /// A right second factor: allowed, with the step the session continues with, if the account may still sign
    /// in.
    async fn second_factor_passed(&self, owner: &SecondFactorOwner) -> Decision {
        match self.steps_of(owner).await {
            Ok(steps) => Decision::Allowed {
                user: owner.name().to_string(),
                master_user: None,
                via: Via::SecondFactor,
                cached: false,
                next: steps.next_after(Some(RequiredStep::SecondFactor)),
            },
            Err(decision) => decision,
        }
    }

    /// Starts checking `owner`'s passkey as the second factor of a web login: a challenge naming the owner's
    /// passkeys. An account without passkeys, or a server without a public URL, is refused.
    pub async fn start_passkey_factor(&self, owner: &SecondFactorOwner) -> Result<Challenge, Error> {
        let passkeys = self.passkeys.as_ref().ok_or_else(passkeys_not_set_up)?;
        let stored: Vec<String> = self.directory.passkeys(owner).await?.into_iter().map(|p| p.credential).collect();
        passkeys.start_authentication(&passkey_account(owner), &stored)
    }

    /// Decides a web login's second factor by passkey: the browser's answer to the challenge of
    /// [`Engine::start_passkey_factor`], checked against the passkeys the account has now, behind the
    /// brute-force guard like a password; an allowed factor carries the step the session continues with.
    pub async fn passkey_factor(&self, request: &PasskeyFactorRequest) -> Decision {
        self.guarded(request.remote_ip, request.owner.name(), self.decide_passkey_factor(request)).await
    }

    async fn decide_passkey_factor(&self, request: &PasskeyFactorRequest) -> Decision {
        let owner = &request.owner;
        let Some(passkeys) = self.passkeys.as_ref() else { return lookup_failed(passkeys_not_set_up()) };
        let stored = try_lookup!(self.directory.passkeys(owner).await);
        let credentials: Vec<String> = stored.iter().map(|p| p.credential.clone()).collect();
        let used = match passkeys.finish_authentication(
            &request.ceremony,
            &passkey_account(owner),
            &request.answer,
            &credentials,
        ) {
            Ok(used) => used,
            Err(err) if err.fault() == Fault::Client => {
                return Decision::denied(DenyReason::WrongPassword, format!("passkey refused: {err}"));
            }
            Err(err) => return lookup_failed(err),
        };
        let id = stored[used.index].id;
        try_lookup!(self.directory.record_passkey_use(id, used.counter, used.credential).await);
        self.second_factor_passed(owner).await
    }

    /// Starts a passwordless sign-in: a challenge any of this site's discoverable passkeys can answer.
    pub fn start_passkey_sign_in(&self) -> Result<Challenge, Error> {
        self.passkeys.as_ref().ok_or_else(passkeys_not_set_up)?.start_sign_in()
    }

    /// Decides a passwordless sign-in: the account is the one the answering passkey is registered to, of the
    /// kind the login page is for; the passkey's signature (with user verification) stands for the password
    /// and the second factor. Behind the brute-force guard; an inactive account (or domain, or identity
    /// provider) is refused; the account's other required steps (a password change) still follow.
    pub async fn passkey_sign_in(&self, request: &PasskeySignInRequest) -> Decision {
        let Some(passkeys) = self.passkeys.as_ref() else { return lookup_failed(passkeys_not_set_up()) };
        let found = match passkeys.claimed(&request.answer) {
            Ok(claimed) => match self.directory.passkey_by_credential(&claimed.credential_id).await {
                Ok(found) => Ok(found.filter(|f| f.user_handle == claimed.user_handle)),
                Err(err) => Err(err),
            },
            Err(err) => Err(err),
        };
        let name = match &found {
            Ok(Some(found)) => found.owner.name().to_string(),
            _ => String::new(),
        };
        self.guarded(request.remote_ip, &name, self.decide_passkey_sign_in(passkeys, request, found)).await
    }

    async fn decide_passkey_sign_in(
        &self,
        passkeys: &Passkeys,
        request: &PasskeySignInRequest,
        found: Result<Option<PasskeyOwnerLogin>, Error>,
    ) -> Decision {
        let found = match found {
            Ok(Some(found)) => found,
            Ok(None) => {
                passkeys.abandon(&request.ceremony);
                return Decision::denied(DenyReason::UnknownUser, "no such passkey");
            }
            Err(err) => {
                passkeys.abandon(&request.ceremony);
                return match err.fault() {
                    Fault::Client => Decision::denied(DenyReason::BadRequest, format!("passkey refused: {err}")),
                    Fault::Server => lookup_failed(err),
                };
            }
        };
        // The account, of the kind this login page is for, and allowed to sign in now.
        let steps = match (&found.owner, request.area) {
            (SecondFactorOwner::Mailbox(address), SignInArea::Mailbox) => {
                match try_lookup!(self.lookup_mailbox(address).await) {
                    Some(mailbox) if !mailbox.active || !mailbox.domain_active => {
                        Err(Decision::denied(DenyReason::Disabled, "the mailbox or its domain is deactivated"))
                    }
                    Some(mailbox) if mailbox.auth_source != LOCAL && !mailbox.source_active => {
                        Err(Decision::denied(DenyReason::Disabled, "the mailbox's identity provider is deactivated"))
                    }
                    Some(mailbox) => Ok(mailbox_steps(&mailbox)),
                    None => Err(Decision::denied(DenyReason::UnknownUser, "no such mailbox")),
                }
            }
            (SecondFactorOwner::Administrator(name), SignInArea::Admin(kind)) => {
                match try_lookup!(self.directory.admin(name).await) {
                    Some(admin) if admin.kind != kind => {
                        Err(Decision::denied(DenyReason::UnknownUser, "a passkey of another kind of administrator"))
                    }
                    Some(admin) if !admin.active => {
                        Err(Decision::denied(DenyReason::Disabled, "the administrator is deactivated"))
                    }
                    Some(admin) => Ok(admin_steps(&admin)),
                    None => Err(Decision::denied(DenyReason::UnknownUser, "no such administrator")),
                }
            }
            _ => Err(Decision::denied(DenyReason::UnknownUser, "a passkey of another kind of account")),
        };
        let steps = match steps {
            Ok(steps) => steps,
            Err(decision) => {
                passkeys.abandon(&request.ceremony);
                return decision;
            }
        };
        let used = match passkeys.finish_sign_in(&request.ceremony, &request.answer, &found.passkey.credential) {
            Ok(used) => used,
            Err(err) if err.fault() == Fault::Client => {
                return Decision::denied(DenyReason::WrongPassword, format!("passkey refused: {err}"));
            }
            Err(err) => return lookup_failed(err),
        };
        try_lookup!(self.directory.record_passkey_use(found.passkey.id, used.counter, used.credential).await);
        Decision::Allowed {
            user: found.owner.name().to_string(),
            master_user: None,
            via: Via::Passkey(found.passkey.id),
            cached: false,
            next: steps.next_after(Some(RequiredStep::SecondFactor)),
        }
    }

    /// The step a web session continues with once `done` is done (`None`: it may be used), from the account's
    /// state now.
    pub async fn step_after(
        &self,
        owner: &SecondFactorOwner,
        done: RequiredStep,
    ) -> Result<Option<RequiredStep>, Decision> {
        Ok(self.steps_of(owner).await?.next_after(Some(done)))
    }

    /// The required steps of an account that may still sign in: a mailbox or domain deactivated, or an
    /// administrator deactivated, since the password was checked is refused.
    async fn steps_of(&self, owner: &SecondFactorOwner) -> Result<AccountSteps, Decision> {
        match owner {
            SecondFactorOwner::Mailbox(address) => match self.lookup_mailbox(address).await.map_err(lookup_failed)? {
                Some(mailbox) if !mailbox.active || !mailbox.domain_active => {
                    Err(Decision::denied(DenyReason::Disabled, "the mailbox or its domain is deactivated"))
                }
                Some(mailbox) => Ok(mailbox_steps(&mailbox)),
                None => Err(Decision::denied(DenyReason::UnknownUser, "no such mailbox")),
            },
            SecondFactorOwner::Administrator(name) => match self.directory.admin(name).await.map_err(lookup_failed)? {
                Some(admin) if !admin.active => {
                    Err(Decision::denied(DenyReason::Disabled, "the administrator is deactivated"))
                }
                Some(admin) => Ok(admin_steps(&admin)),
                None => Err(Decision::denied(DenyReason::UnknownUser, "no such administrator")),
            },
        }
    }

    /// A login to the admin or domain-admin area of the web UI: the guard applies as for mail logins, unknown
    /// names cost a dummy hash, and an account of the other kind is refused like a wrong password.
    pub async fn authenticate_admin(&self, request: &AdminLoginRequest) -> Decision {
        self.guarded(request.remote_ip, &request.username, self.decide_admin(request)).await
    }

    async fn decide_admin(&self, request: &AdminLoginRequest) -> Decision {
        let username = request.username.trim();
        if username.is_empty() || request.password.is_empty() {
            return Decision::denied(DenyReason::BadRequest, "empty username or password");
        }
        let found = try_lookup!(self.directory.admin(username).await);
        let Some(admin) = found.filter(|a| a.kind == request.kind) else {
            return match self.pool.dummy_verify(request.password.clone()).await {
                Ok(()) => Decision::denied(DenyReason::UnknownUser, format!("no {:?} named {username}", request.kind)),
                Err(err) => pool_failed(err),
            };
        };
        match self.verify(&admin.password_hash, &request.password).await {
            Ok(Verification::Match) => {}
            Ok(_) => return Decision::denied(DenyReason::WrongPassword, "wrong administrator password"),
            Err(decision) => return decision,
        }
        if !admin.active {
            return Decision::denied(DenyReason::Disabled, "the administrator is inactive");
        }
        let next = admin_steps(&admin).next_after(None);
        Decision::Allowed { user: admin.username, master_user: None, via: Via::Password, cached: false, next }
    }

    /// A browser sign-in an identity provider vouched for: the mailbox of the account's address, bound to
    /// this provider and to this account (`sub`) — bound at the first sign-in, and a later sign-in by another
    /// account of the provider with the same address refused — created first when the provider creates
    /// mailboxes on sign-in, active and in an active domain. The guard counts its refusals like any other.
    pub async fn sign_in_with_provider(&self, request: &ProviderSignInRequest) -> Decision {
        let address = match &request.account {
            Ok(account) => account.address.trim().to_lowercase(),
            Err(_) => String::new(),
        };
        self.guarded(request.remote_ip, &address, self.decide_provider_sign_in(request, &address)).await
    }

    async fn decide_provider_sign_in(&self, request: &ProviderSignInRequest, address: &str) -> Decision {
        let provider = request.provider.as_str();
        let account = match &request.account {
            Ok(account) => account,
            Err(why) => return Decision::denied(DenyReason::WrongPassword, why.clone()),
        };
        if account.subject.is_empty() || !address.contains('@') {
            return Decision::denied(DenyReason::BadRequest, format!("{provider} named no account or no mail address"));
        }
        let found = try_lookup!(self.lookup_mailbox(address).await);
        match &found {
            Some(mailbox) => {
                if mailbox.auth_source != provider {
                    return Decision::denied(
                        DenyReason::ServiceNotAllowed,
                        format!(
                            "the mailbox {address} signs in with {}, not through {provider}",
                            if mailbox.auth_source == LOCAL { "its password" } else { &mailbox.auth_source }
                        ),
                    );
                }
                if let Some(bound) = mailbox.external_id.as_deref()
                    && bound != account.subject
                {
                    return Decision::denied(
                        DenyReason::WrongPassword,
                        format!("the mailbox {address} belongs to another account at {provider}"),
                    );
                }
                // The sign-in stands even if the update cannot be made now; the next sign-in retries.
                if let Err(err) = self.sources.refresh_signed_in(provider, account).await {
                    tracing::warn!(provider, address, "updating the mailbox after sign-in failed: {err}");
                }
            }
            None => match self.sources.provision_signed_in(provider, account).await {
                Ok(Provisioning::Created) => {}
                Ok(Provisioning::Refused(why)) => return Decision::denied(DenyReason::UnknownUser, why),
                Ok(Provisioning::NotFound) => {
                    return Decision::denied(
                        DenyReason::UnknownUser,
                        format!("there is no mailbox {address}, and {provider} does not create mailboxes on sign-in"),
                    );
                }
                Err(err) => return lookup_failed(err),
            },
        }
        let Some(mailbox) = try_lookup!(self.lookup_mailbox(address).await) else {
            return Decision::denied(DenyReason::UnknownUser, format!("there is no mailbox {address}"));
        };
        if !mailbox.active || !mailbox.domain_active {
            return Decision::denied(DenyReason::Disabled, format!("the mailbox {address} or its domain is inactive"));
        }
        let next = mailbox_steps(&mailbox).next_after(None);
        Decision::Allowed {
            user: mailbox.address.clone(),
            master_user: None,
            via: Via::IdentityProvider(provider.to_string()),
            cached: false,
            next,
        }
    }

    /// A sign-in at an identity provider to the administrator or domain-administrator area: the provider's claims
    /// must give the account the role of that area; the administrator record is created or brought up to date
    /// from them (bound to the account), and must be active.
    pub async fn sign_in_admin_with_provider(&self, request: &ProviderAdminSignInRequest) -> Decision {
        let name = match &request.account {
            Ok((account, _)) => account.address.trim().to_lowercase(),
            Err(_) => String::new(),
        };
        self.guarded(request.remote_ip, &name, self.decide_admin_sign_in(request, &name)).await
    }

    async fn decide_admin_sign_in(&self, request: &ProviderAdminSignInRequest, name: &str) -> Decision {
        let provider = request.provider.as_str();
        let (account, grant) = match &request.account {
            Ok(found) => found,
            Err(why) => return Decision::denied(DenyReason::WrongPassword, why.clone()),
        };
        let Some(grant) = grant else {
            return Decision::denied(
                DenyReason::ServiceNotAllowed,
                format!("{provider} gives {name} no administrator role"),
            );
        };
        if grant.role != request.kind {
            let area = match grant.role {
                gatehouse_core::AdminRole::Admin => "an administrator (sign in at /admin)",
                gatehouse_core::AdminRole::DomainAdmin => "a domain administrator (sign in at /domainadmin)",
            };
            return Decision::denied(DenyReason::ServiceNotAllowed, format!("{provider} makes {name} {area}"));
        }
        match self.sources.provision_admin(provider, account, grant).await {
            Ok(Provisioning::Created) => {}
            Ok(Provisioning::Refused(why)) => return Decision::denied(DenyReason::WrongPassword, why),
            Ok(Provisioning::NotFound) => {
                return Decision::denied(DenyReason::UnknownUser, format!("{provider} cannot make administrators"));
            }
            Err(err) => return lookup_failed(err),
        }
        let Some(admin) = try_lookup!(self.directory.admin(name).await).filter(|a| a.kind == request.kind) else {
            return Decision::denied(DenyReason::UnknownUser, format!("there is no administrator {name}"));
        };
        if !admin.active {
            return Decision::denied(DenyReason::Disabled, format!("the administrator {name} is inactive"));
        }
        Decision::Allowed {
            user: admin.username,
            master_user: None,
            via: Via::IdentityProvider(provider.to_string()),
            cached: false,
            next: None,
        }
    }

    /// A mail login with an identity provider's access token: the mailbox bound to the token's account at that
    /// provider, active in an active domain, with the service among its protocols. The provider checked the
    /// token (and any second factor at its sign-in); the mailbox's state is checked here at every use.
    pub async fn authenticate_token(&self, request: &AccessTokenRequest) -> Decision {
        let name = match &request.token {
            Ok(TokenAccount { address: Some(address), .. }) => address.clone(),
            _ => String::new(),
        };
        self.guarded(request.remote_ip, &name, self.decide_token(request)).await
    }

    async fn decide_token(&self, request: &AccessTokenRequest) -> Decision {
        let account = match &request.token {
            Ok(account) => account,
            Err(why) => return Decision::denied(DenyReason::WrongPassword, why.clone()),
        };
        let provider = account.provider.as_str();
        let Some(address) = account.address.as_deref() else {
            return Decision::denied(
                DenyReason::UnknownUser,
                format!("no mailbox is bound to the account {} at {provider}", account.subject),
            );
        };
        let Some(mailbox) = try_lookup!(self.lookup_mailbox(address).await) else {
            return Decision::denied(DenyReason::UnknownUser, format!("there is no mailbox {address}"));
        };
        if mailbox.auth_source != provider || mailbox.external_id.as_deref() != Some(account.subject.as_str()) {
            return Decision::denied(
                DenyReason::WrongPassword,
                format!("the mailbox {address} is not bound to this account at {provider}"),
            );
        }
        // Read with the mailbox: a token remembered from before its provider was deactivated opens nothing.
        if !mailbox.source_active {
            return Decision::denied(DenyReason::Disabled, format!("the identity provider {provider} is inactive"));
        }
        if !mailbox.active || !mailbox.domain_active {
            return Decision::denied(DenyReason::Disabled, "mailbox or domain is inactive");
        }
        if !mailbox.protocols.contains(request.service) {
            return Decision::denied(
                DenyReason::ServiceNotAllowed,
                format!("{} is disabled for this mailbox", request.service),
            );
        }
        Decision::allowed(mailbox.address.clone(), None, Via::AccessToken(provider.to_string()), false)
    }

    /// The password of a mailbox bound to an identity provider, checked there.
    async fn external_login(&self, request: &LoginRequest, mailbox: &MailboxLogin) -> Decision {
        if mailbox.second_factor_enabled && request.service != LoginService::Web {
            return Decision::denied(
                DenyReason::WrongPassword,
                "two-factor authentication is on: mail clients must use an app password",
            );
        }
        let source = &mailbox.auth_source;
        match self.sources.authenticate(source, &mailbox.address, &request.credentials).await {
            Ok(ExternalCheck::Valid) => Decision::allowed(mailbox.address.clone(), None, Via::Password, false),
            Ok(ExternalCheck::Invalid) => {
                Decision::denied(DenyReason::WrongPassword, format!("{source}: wrong password"))
            }
            Ok(ExternalCheck::Unknown) => Decision::denied(
                DenyReason::WrongPassword,
                format!("{source} has no (single) account for this address"),
            ),
            Ok(ExternalCheck::NotAllowed(why)) => Decision::denied(DenyReason::Disabled, why),
            Ok(ExternalCheck::Unsupported(why)) => Decision::denied(
                DenyReason::WrongPassword,
                format!("password login is not available for auth source '{source}' ({why}); use an app password"),
            ),
            Err(err) => lookup_failed(err),
        }
    }

    async fn primary_login(&self, request: &LoginRequest, mailbox: &MailboxLogin) -> Decision {
        if mailbox.second_factor_enabled && request.service != LoginService::Web {
            return Decision::denied(
                DenyReason::WrongPassword,
                "two-factor authentication is on: mail clients must use an app password",
            );
        }
        let Some(password) = request.credentials.as_password() else {
            return Decision::denied(
                DenyReason::WrongPassword,
                "bearer tokens open only mailboxes of identity providers",
            );
        };
        let Some(stored) = mailbox.password_hash.as_deref().filter(|h| !h.is_empty()) else {
            return self
                .refuse_after_dummy_hash(request, DenyReason::WrongPassword, "the mailbox has no local password")
                .await;
        };
        match self.verify(stored, password).await {
            Ok(Verification::Match) => {}
            Ok(Verification::Mismatch) => return Decision::denied(DenyReason::WrongPassword, "password mismatch"),
            Ok(Verification::Unsupported(why) | Verification::Malformed(why)) => {
                tracing::error!(mailbox = %mailbox.address, "stored password hash cannot be verified: {why}");
                return Decision::denied(DenyReason::WrongPassword, format!("stored hash unusable: {why}"));
            }
            Err(decision) => return decision,
        }
        if needs_rehash(stored, &self.config.password_scheme) {
            self.upgrade_hash(mailbox, stored, password).await;
        }
        Decision::allowed(mailbox.address.clone(), None, Via::Password, false)
    }

    /// Stores a stronger hash of a password that just verified. Failures are logged, not fatal.
    async fn upgrade_hash(&self, mailbox: &MailboxLogin, old: &str, password: &Zeroizing<Vec<u8>>) {
        let new = match self.pool.generate(password.clone(), self.config.password_scheme).await {
            Ok(new) => new,
            Err(err) => {
                tracing::warn!(mailbox = %mailbox.address, "could not rehash the password: {err}");
                return;
            }
        };
        match self.directory.replace_password_hash(mailbox.id, old, &new).await {
            Ok(true) => {
                tracing::info!(mailbox = %mailbox.address, "password hash upgraded to {}", self.config.password_scheme)
            }
            Ok(false) => tracing::debug!(mailbox = %mailbox.address, "password changed meanwhile; rehash skipped"),
            Err(err) => tracing::warn!(mailbox = %mailbox.address, "could not store the upgraded hash: {err}"),
        }
    }

    async fn master_login(&self, request: &LoginRequest, target: &str, master_name: &str) -> Decision {
        let mut master = try_lookup!(self.directory.master_user(master_name).await);
        if master.is_none() && self.config.admins_as_masters {
            master = try_lookup!(self.directory.admin_as_master(master_name).await);
        }
        let Some(master) = master else {
            return self.unknown_user(request, "no such master user").await;
        };
        let target_mailbox = try_lookup!(self.lookup_mailbox(target).await);
        let Some(password) = request.credentials.as_password() else {
            return Decision::denied(DenyReason::WrongPassword, "a master login takes the master user's password");
        };
        let key = self.cache.key(request.service.as_str(), target, Some(&master.username), password);
        let cached = self.cache.get(&key).filter(|hit| {
            Some(hit.master_revision) == Some(Some(master.revision))
                && target_mailbox.as_ref().is_some_and(|m| m.revision == hit.mailbox_revision)
        });
        if cached.is_none() {
            // The master's own password first, so a wrong password learns nothing about the target.
            match self.verify(&master.password_hash, password).await {
                Ok(Verification::Match) => {}
                Ok(_) => {
                    return Decision::denied(
                        DenyReason::WrongPassword,
                        format!("master user {master_name}: wrong password"),
                    );
                }
                Err(decision) => return decision,
            }
        }
        if !master.active {
            return Decision::denied(DenyReason::Disabled, format!("master user {master_name} is inactive"));
        }
        let Some(mailbox) = target_mailbox else {
            return Decision::denied(DenyReason::UnknownUser, format!("master login to unknown mailbox {target}"));
        };
        if !master.scope.allows(&mailbox.domain) {
            return Decision::denied(
                DenyReason::ServiceNotAllowed,
                format!("master user {master_name} may not log in as mailboxes of {}", mailbox.domain),
            );
        }
        if !mailbox.active || !mailbox.domain_active {
            return Decision::denied(DenyReason::Disabled, "mailbox or domain is inactive");
        }
        // A master login opens what the mailbox's own login would, not more.
        if let LoginService::Protocol(service) = request.service
            && !mailbox.protocols.contains(service)
        {
            return Decision::denied(DenyReason::ServiceNotAllowed, format!("{service} is disabled for this mailbox"));
        }
        let entry = CachedSuccess {
            mailbox_revision: mailbox.revision,
            master_revision: Some(master.revision),
            via: Via::MasterUser,
            expires_at: None,
            mailbox: mailbox.address.clone(),
            confirmed_at: now(),
        };
        self.cache.insert(key, entry);
        Decision::allowed(mailbox.address.clone(), Some(master.username), Via::MasterUser, cached.is_some())
    }
}
