//! [`SourceRegistry`]: the configured identity providers, as the login engine, the CLI and the scheduler use
//! them. Providers are read from the store by name on use and their clients rebuilt when the stored settings
//! change, so an edited provider takes effect without a restart.
//!
//! Besides password checks and create-on-login it runs syncs: one run per provider at a time across every
//! Gatehouse process on the database (a lease in the store), each run recorded in the job log, and a
//! scheduler that starts the runs that are due.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gatehouse_core::{Error, Fault, MailboxAddress};
use gatehouse_engine::{ExternalCheck, IdentitySources, Provisioning};
use gatehouse_passwords::HashPool;
use gatehouse_store::{Domain, IdentityProvider, MailboxChanges, Store};
use tokio::sync::RwLock;

use crate::provisioning::{
    SyncInput, SyncReport, account_changes, apply_plan, mapped_template, new_mailbox, plan_sync, provider_actor,
    provider_mappings, template_for_new,
};
use crate::{Credentials, ExternalAccount, Source, SourceLogin, SourceSettings};

/// Job-log name of a sync run.
pub const SYNC_JOB: &str = "sync";
/// Job-log name of a dry run.
pub const DRY_RUN_JOB: &str = "sync-dry-run";
/// How long a sync's lease lasts without renewal (it is renewed every [`LEASE_RENEWAL`]): a process that dies
/// mid-run holds it at most this long, then another process (or `gatehouse sync`) can run the provider again.
const LEASE_SECONDS: i64 = 30;
const LEASE_RENEWAL: Duration = Duration::from_secs(10);

/// A task that is aborted when this handle is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl AbortOnDrop {
    /// Aborts the task and waits until it is gone (so it cannot act after this returns).
    async fn stop(mut self) {
        self.0.abort();
        let _ = (&mut self.0).await;
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Told how a sync advances (the CLI draws a progress bar from it).
pub trait SyncProgress: Send + Sync {
    /// `entries` read from the source so far.
    fn reading(&self, _entries: usize) {}
    /// `done` of `total` changes made.
    fn applying(&self, _done: usize, _total: usize) {}
}

impl SyncProgress for () {}

/// A mail client's access token, as the provider that issued it vouches for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenOwner {
    /// The provider's name.
    pub provider: String,
    /// The account (`sub`).
    pub subject: String,
    /// The mailbox bound to that account, if one is.
    pub address: Option<String>,
    /// Unix seconds after which the token is worth nothing.
    pub expires_at: i64,
}

/// Most access tokens remembered at once.
const TOKEN_CACHE_CAPACITY: usize = 10_000;

/// The identity providers of one Gatehouse.
pub struct SourceRegistry {
    store: Store,
    /// Access tokens checked at their provider, by SHA-256 of the token, until they expire.
    tokens: std::sync::Mutex<HashMap<[u8; 32], TokenOwner>>,
    /// Built sources by provider name, with the provider's `modified_at` when built.
    sources: RwLock<HashMap<String, (i64, Arc<Source>)>>,
    /// This process's name on job leases.
    holder: String,
    /// The login engine's hash pool, for sources that verify password hashes themselves.
    hashes: Option<HashPool>,
}

impl SourceRegistry {
    /// A registry reading providers from `store`.
    pub fn new(store: Store) -> Self {
        let host = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).unwrap_or_default();
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos();
        let holder =
            format!("{}:{}:{nanos:08x}", if host.is_empty() { "gatehouse" } else { &host }, std::process::id());
        SourceRegistry { store, tokens: Default::default(), sources: RwLock::new(HashMap::new()), holder, hashes: None }
    }

    /// The registry verifying password hashes of sources (Keycloak's mailpassword flow) on `pool`, the login
    /// engine's bounded pool. Without one such logins are a temporary failure.
    pub fn with_hash_pool(mut self, pool: HashPool) -> Self {
        self.hashes = Some(pool);
        self
    }

    /// The source of a stored provider, built (or rebuilt after an edit) as needed.
    pub async fn source(&self, provider: &IdentityProvider) -> Result<Arc<Source>, Error> {
        if let Some((modified, source)) = self.sources.read().await.get(&provider.name)
            && *modified == provider.modified_at
        {
            return Ok(source.clone());
        }
        let source = Arc::new(build_source(&self.store, provider).await?);
        self.sources.write().await.insert(provider.name.clone(), (provider.modified_at, source.clone()));
        Ok(source)
    }
}

/// Builds the source of a stored provider from its settings and secrets.
pub async fn build_source(store: &Store, provider: &IdentityProvider) -> Result<Source, Error> {
    if !SourceSettings::is_known_kind(provider.kind) {
        return Err(Error::invalid(format!(
            "identity provider '{}' is of kind {}, which this Gatehouse cannot use",
            provider.name, provider.kind
        )));
    }
    let settings = SourceSettings::parse(provider.kind, &provider.settings).map_err(|err| {
        Error::Internal(format!("identity provider {}: the stored settings are invalid: {err}", provider.name))
    })?;
    let secrets = store.identity_provider_secrets(&provider.name).await?;
    Source::build(settings, &secrets)
}

impl IdentitySources for SourceRegistry {
    async fn authenticate(
        &self,
        source: &str,
        address: &str,
        credentials: &Credentials,
    ) -> Result<ExternalCheck, Error> {
        let Some(provider) = self.store.identity_provider(source).await? else {
            return Ok(ExternalCheck::Unsupported(format!("no identity provider is named '{source}'")));
        };
        if !provider.active {
            return Ok(ExternalCheck::Unsupported(format!("identity provider '{source}' is inactive")));
        }
        let address = MailboxAddress::parse(address)?;
        let built = self.source(&provider).await?;
        Ok(match built.authenticate(&address, credentials, self.hashes.as_ref()).await? {
            SourceLogin::Valid(account) => {
                // The login stands even if the update cannot be made now; the next login or sync retries.
                if let Err(err) = self.update_on_login(&provider, &address, &account).await {
                    tracing::warn!(provider = source, %address, "updating the mailbox after login failed: {err}");
                }
                ExternalCheck::Valid
            }
            SourceLogin::WrongPassword => ExternalCheck::Invalid,
            SourceLogin::NotFound => ExternalCheck::Unknown,
            SourceLogin::Ambiguous(count) => {
                tracing::warn!(provider = source, %address, count, "several accounts match; login refused");
                ExternalCheck::Unknown
            }
            SourceLogin::NotAllowed(why) => ExternalCheck::NotAllowed(format!("{source}: {why}")),
            SourceLogin::Unsupported(why) => ExternalCheck::Unsupported(format!("{source}: {why}")),
        })
    }

    async fn provision(&self, address: &str, credentials: &Credentials) -> Result<Provisioning, Error> {
        let address = MailboxAddress::parse(address)?;
        for provider in self.store.list_identity_providers().await? {
            if !provider.active || !SourceSettings::is_known_kind(provider.kind) {
                continue;
            }
            let source = self.source(&provider).await?;
            let settings = source.provisioning();
            if !settings.create_on_login {
                continue;
            }
            let account = match source.authenticate(&address, credentials, self.hashes.as_ref()).await? {
                SourceLogin::Valid(account) => account,
                SourceLogin::NotFound | SourceLogin::Unsupported(_) => continue,
                SourceLogin::WrongPassword => {
                    return Ok(Provisioning::Refused(format!("{}: wrong password for a new mailbox", provider.name)));
                }
                SourceLogin::Ambiguous(count) => {
                    return Ok(Provisioning::Refused(format!("{}: {count} accounts match", provider.name)));
                }
                SourceLogin::NotAllowed(why) => {
                    return Ok(Provisioning::Refused(format!("{}: {why}", provider.name)));
                }
            };
            let template = match template_for_new(&account, &provider_mappings(&provider), &settings) {
                Ok(template) => template,
                Err(why) => {
                    tracing::warn!(%address, provider = provider.name, "not creating the mailbox: {why}");
                    return Ok(Provisioning::Refused(format!("{}: {why}", provider.name)));
                }
            };
            let new = new_mailbox(&provider.name, address.clone(), template.clone(), account);
            return match self.store.create_mailbox(&provider_actor(&provider.name), new).await {
                Ok(_) => {
                    tracing::info!(%address, provider = provider.name, template, "mailbox created on first login");
                    Ok(Provisioning::Created)
                }
                Err(err) if err.fault() == Fault::Client => {
                    tracing::warn!(%address, provider = provider.name, "mailbox not created on first login: {err}");
                    Ok(Provisioning::Refused(format!("{}: {err}", provider.name)))
                }
                Err(err) => Err(err),
            };
        }
        Ok(Provisioning::NotFound)
    }

    async fn provision_signed_in(&self, provider: &str, account: &ExternalAccount) -> Result<Provisioning, Error> {
        let Some(stored) = self.store.identity_provider(provider).await? else {
            return Ok(Provisioning::Refused(format!("no identity provider is named '{provider}'")));
        };
        let settings = self.source(&stored).await?.provisioning();
        if !settings.create_on_login {
            return Ok(Provisioning::NotFound);
        }
        let address = match MailboxAddress::parse(&account.address) {
            Ok(address) => address,
            Err(err) => return Ok(Provisioning::Refused(format!("{}: {err}", account.address))),
        };
        let template = match template_for_new(account, &provider_mappings(&stored), &settings) {
            Ok(template) => template,
            Err(why) => return Ok(Provisioning::Refused(format!("no mailbox was created for {address}: {why}"))),
        };
        let new = new_mailbox(provider, address.clone(), template.clone(), account.clone());
        match self.store.create_mailbox(&provider_actor(provider), new).await {
            Ok(_) => {
                tracing::info!(%address, provider, template, "mailbox created on first sign-in");
                Ok(Provisioning::Created)
            }
            Err(err) if err.fault() == Fault::Client => {
                tracing::warn!(%address, provider, "mailbox not created on first sign-in: {err}");
                Ok(Provisioning::Refused(format!("no mailbox was created for {address}: {err}")))
            }
            Err(err) => Err(err),
        }
    }

    async fn provision_admin(
        &self,
        provider: &str,
        account: &ExternalAccount,
        grant: &gatehouse_engine::AdminGrant,
    ) -> Result<Provisioning, Error> {
        let mut domains = Vec::new();
        for name in &grant.domains {
            match gatehouse_core::DomainName::parse(name) {
                Ok(domain) => domains.push(domain),
                Err(err) => return Ok(Provisioning::Refused(format!("{provider}: domain {name}: {err}"))),
            }
        }
        let admin = gatehouse_store::ProviderAdmin {
            username: account.address.clone(),
            role: grant.role,
            domains,
            acl: if grant.login_as { vec!["login_as".to_string()] } else { Vec::new() },
            provider: provider.to_string(),
            subject: account.subject.clone(),
        };
        match self.store.provision_provider_admin(&provider_actor(provider), admin).await {
            Ok(_) => Ok(Provisioning::Created),
            Err(err) if err.fault() == Fault::Client => Ok(Provisioning::Refused(err.to_string())),
            Err(err) => Err(err),
        }
    }

    async fn refresh_signed_in(&self, provider: &str, account: &ExternalAccount) -> Result<(), Error> {
        let Some(stored) = self.store.identity_provider(provider).await? else { return Ok(()) };
        let address = MailboxAddress::parse(&account.address)?;
        if self.source(&stored).await?.updates_on_login() {
            return self.update_on_login(&stored, &address, account).await;
        }
        // Without the update on login the mailbox is still bound to the account at its first sign-in.
        let mailbox = self.store.mailbox(&address).await?;
        if mailbox.external_id.is_none() && !account.subject.is_empty() {
            let changes = MailboxChanges { external_id: Some(account.subject.clone()), ..MailboxChanges::default() };
            self.store.update_mailbox(&provider_actor(provider), &address, changes).await?;
        }
        Ok(())
    }
}

impl SourceRegistry {
    /// The active provider `name` that users sign in at through the browser, built; `None` when there is no
    /// such provider (or it is inactive, or of a kind that checks passwords).
    pub async fn sign_in_provider(&self, name: &str) -> Result<Option<(IdentityProvider, Arc<Source>)>, Error> {
        let Some(provider) = self.store.identity_provider(name).await? else { return Ok(None) };
        if !provider.active || !SourceSettings::is_known_kind(provider.kind) {
            return Ok(None);
        }
        let source = self.source(&provider).await?;
        Ok(source.as_oidc().is_some().then_some((provider, source)))
    }

    /// Which provider issued a mail client's access token, for which account and mailbox: a JWT is checked by
    /// the provider it names as issuer, any other token asked about at each active provider's introspection
    /// endpoint. Results are remembered until the token expires (at most [`TOKEN_CACHE_CAPACITY`] tokens).
    /// `Ok(Err(why))` is a refusal; `Err` means a provider that might have issued it cannot be asked now.
    pub async fn resolve_access_token(&self, token: &str) -> Result<Result<TokenOwner, String>, Error> {
        use sha2::Digest;
        let key: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        let at = gatehouse_core::clock::now();
        // The engine checks the provider's active flag with the mailbox at every use, so a remembered token
        // of a provider deactivated since opens nothing.
        if let Some(owner) = self.tokens.lock().expect("token cache").get(&key)
            && owner.expires_at > at
        {
            return Ok(Ok(owner.clone()));
        }
        let issuer = crate::oidc::access_token::looks_like_jwt(token)
            .then(|| crate::oidc::access_token::unverified_issuer(token))
            .flatten();
        let mut refusal = None;
        let mut outage = None;
        for provider in self.store.list_identity_providers().await? {
            if !provider.active || !SourceSettings::is_known_kind(provider.kind) {
                continue;
            }
            let source = self.source(&provider).await?;
            let Some(oidc) = source.as_oidc() else { continue };
            if issuer.as_deref().is_some_and(|iss| iss != oidc.issuer()) {
                continue;
            }
            match oidc.check_access_token(token).await {
                Ok(Ok(grant)) => {
                    let address = self.store.mailbox_address_by_external_id(&provider.name, &grant.subject).await?;
                    let owner = TokenOwner {
                        provider: provider.name.clone(),
                        subject: grant.subject,
                        address,
                        expires_at: grant.expires_at,
                    };
                    if owner.address.is_some() {
                        let mut tokens = self.tokens.lock().expect("token cache");
                        if tokens.len() >= TOKEN_CACHE_CAPACITY {
                            tokens.retain(|_, owner| owner.expires_at > at);
                            if tokens.len() >= TOKEN_CACHE_CAPACITY {
                                tokens.clear();
                            }
                        }
                        tokens.insert(key, owner.clone());
                    }
                    return Ok(Ok(owner));
                }
                Ok(Err(why)) => {
                    refusal.get_or_insert_with(|| format!("{}: {why}", provider.name));
                }
                Err(err) => {
                    tracing::warn!(provider = provider.name, "an access token could not be checked: {err}");
                    outage.get_or_insert(err);
                }
            }
        }
        match (outage, refusal) {
            (Some(err), _) => Err(err),
            (None, Some(why)) => Ok(Err(why)),
            (None, None) => Ok(Err("no active identity provider issued this token".into())),
        }
    }

    /// The login page's buttons: (provider name, label) of every active provider users sign in at through the
    /// browser — for the administrator pages (`administrators`), those that map administrator roles — in name
    /// order. A provider whose stored settings cannot be read is left out (and logged).
    pub async fn sign_in_buttons(&self, administrators: bool) -> Result<Vec<(String, String)>, Error> {
        let mut buttons = Vec::new();
        for provider in self.store.list_identity_providers().await? {
            if !provider.active || !SourceSettings::is_known_kind(provider.kind) {
                continue;
            }
            match SourceSettings::parse(provider.kind, &provider.settings) {
                Ok(settings) => {
                    if administrators && !settings.signs_in_administrators() {
                        continue;
                    }
                    if let Some(label) = settings.sign_in_label(&provider.name) {
                        buttons.push((provider.name, label));
                    }
                }
                Err(err) => tracing::warn!(provider = provider.name, "stored settings unreadable: {err}"),
            }
        }
        buttons.sort();
        Ok(buttons)
    }

    /// Brings an existing mailbox of `provider` up to date with the account that just logged in (template,
    /// display name, subject). It never activates a mailbox.
    async fn update_on_login(
        &self,
        provider: &IdentityProvider,
        address: &MailboxAddress,
        account: &ExternalAccount,
    ) -> Result<(), Error> {
        let mailbox = match self.store.mailbox(address).await {
            Ok(mailbox) => mailbox,
            Err(Error::NotFound { .. }) => return Ok(()),
            Err(err) => return Err(err),
        };
        if mailbox.auth_source != provider.name {
            return Ok(());
        }
        let mappings = provider_mappings(provider);
        let templates = self.store.template_hashes().await?;
        let mapped = mapped_template(account, &mappings);
        let Some(mut changes) = account_changes(&provider.name, &mailbox, account, mapped, &templates) else {
            return Ok(());
        };
        // Logging in is not how a deprovisioned mailbox comes back (it could not log in anyway); the sync does it.
        changes.deprovisioned_by = None;
        tracing::info!(provider = provider.name, %address, template = ?changes.template, "updating the mailbox from the directory");
        self.store.update_mailbox(&provider_actor(&provider.name), address, changes).await.map(drop)
    }

    /// Runs a sync of provider `name`: reads every account, plans, and (unless `dry_run`) applies the plan.
    /// Refused when another run of the same provider holds the lease (in any process), when the provider is
    /// inactive, or when the plan is refused (no entries, or deactivations above the threshold). Every run is
    /// recorded in the job log with its counts.
    pub async fn sync(&self, name: &str, dry_run: bool, progress: &dyn SyncProgress) -> Result<SyncReport, Error> {
        let provider =
            self.store.identity_provider(name).await?.ok_or_else(|| Error::not_found("identity provider", name))?;
        if !provider.active {
            return Err(Error::refused(format!("identity provider '{name}' is inactive")));
        }
        let lease = format!("sync:{name}");
        if !dry_run && !self.store.acquire_lease(&lease, &self.holder, LEASE_SECONDS).await? {
            let held = match self.store.lease_holder(&lease).await {
                Ok(Some((holder, _))) => format!(" by {holder}"),
                _ => String::new(),
            };
            return Err(Error::AlreadyRunning(format!("a sync of '{name}'{held}")));
        }
        // Aborted when this function ends or its future is dropped (a cancelled request), so a dropped run
        // never keeps renewing its lease.
        let renewal = (!dry_run).then(|| {
            let (store, lease, holder) = (self.store.clone(), lease.clone(), self.holder.clone());
            AbortOnDrop(tokio::spawn(async move {
                loop {
                    tokio::time::sleep(LEASE_RENEWAL).await;
                    match store.renew_lease(&lease, &holder, LEASE_SECONDS).await {
                        Ok(true) => {}
                        Ok(false) => tracing::error!(lease, "lost the sync lease; another process may start a run"),
                        Err(err) => tracing::warn!(lease, "cannot renew the sync lease: {err}"),
                    }
                }
            }))
        });
        let outcome = self.run_sync(&provider, dry_run, progress).await;
        if let Some(renewal) = renewal {
            renewal.stop().await;
        }
        if !dry_run && let Err(err) = self.store.release_lease(&lease, &self.holder).await {
            tracing::warn!(lease, "cannot release the sync lease (it expires by itself): {err}");
        }
        outcome
    }

    async fn run_sync(
        &self,
        provider: &IdentityProvider,
        dry_run: bool,
        progress: &dyn SyncProgress,
    ) -> Result<SyncReport, Error> {
        let started = Instant::now();
        if !dry_run {
            // Only the lease holder runs the provider: a run still marked running belongs to a dead process.
            let closed = self.store.close_interrupted_jobs(SYNC_JOB, &provider.name).await?;
            if closed > 0 {
                tracing::warn!(provider = provider.name, "an earlier sync was interrupted; this run completes it");
            }
        }
        let job = self.store.start_job(if dry_run { DRY_RUN_JOB } else { SYNC_JOB }, Some(&provider.name)).await?;
        let (report, result) = self.plan_and_apply(provider, dry_run, progress).await;
        let mut report =
            report.unwrap_or_else(|| SyncReport { provider: provider.name.clone(), dry_run, ..SyncReport::default() });
        report.duration_ms = started.elapsed().as_millis();
        let mut summary = serde_json::to_value(&report).unwrap_or_default();
        let status = match &result {
            Ok(()) => "ok",
            Err(err) => {
                summary["error"] = serde_json::Value::String(err.to_string());
                if err.fault() == Fault::Client { "refused" } else { "failed" }
            }
        };
        match &result {
            Ok(()) => tracing::info!(duration_ms = report.duration_ms, "{}", report.summary()),
            Err(err) => tracing::error!(provider = provider.name, "sync {status}: {err}"),
        }
        self.store.finish_job(job, status, summary).await?;
        result.map(|()| report)
    }

    async fn plan_and_apply(
        &self,
        provider: &IdentityProvider,
        dry_run: bool,
        progress: &dyn SyncProgress,
    ) -> (Option<SyncReport>, Result<(), Error>) {
        let listed = async {
            let source = self.source(provider).await?;
            let accounts = source.list_accounts(&|n| progress.reading(n)).await?;
            Ok::<_, Error>((source.provisioning(), accounts))
        };
        let prepared = async {
            let (settings, accounts) = listed.await?;
            let templates = self.store.template_hashes().await?;
            let mailboxes = self.store.list_mailboxes(None).await?;
            let domains: HashMap<String, Domain> =
                self.store.list_domains().await?.into_iter().map(|d| (d.name.clone(), d)).collect();
            Ok::<_, Error>((settings, accounts, templates, mailboxes, domains))
        };
        let (settings, accounts, templates, mailboxes, domains) = match prepared.await {
            Ok(prepared) => prepared,
            Err(err) => return (None, Err(err)),
        };
        let mappings = provider_mappings(provider);
        let input = SyncInput {
            provider: &provider.name,
            settings: &settings,
            mappings: &mappings,
            templates: &templates,
            domains: &domains,
        };
        let entries = accounts.len();
        let plan = match plan_sync(&input, accounts, &mailboxes) {
            Ok(plan) => plan,
            Err(why) => {
                let report = SyncReport { provider: provider.name.clone(), dry_run, entries, ..SyncReport::default() };
                return (Some(report), Err(Error::refused(why)));
            }
        };
        let (report, result) =
            apply_plan(&self.store, &provider.name, plan, dry_run, &|done, total| progress.applying(done, total)).await;
        (Some(report), result)
    }

    /// Starts the periodic syncs that are due: providers that are active, have syncing enabled, and whose last
    /// finished run is older than their interval. Returns the names of the providers it ran.
    pub async fn run_due_syncs(&self) -> Result<Vec<String>, Error> {
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs() as i64;
        let mut ran = Vec::new();
        for provider in self.store.list_identity_providers().await? {
            if !provider.active {
                continue;
            }
            if !SourceSettings::is_known_kind(provider.kind) {
                continue;
            }
            let settings = self.source(&provider).await?.provisioning();
            if !settings.sync_enabled() {
                continue;
            }
            let last = self.store.last_finished_job(SYNC_JOB, &provider.name).await?;
            let due = last.and_then(|run| run.finished_at).is_none_or(|finished| {
                now - finished >= i64::try_from(settings.sync_interval_minutes * 60).unwrap_or(i64::MAX)
            });
            if !due {
                continue;
            }
            match self.sync(&provider.name, false, &()).await {
                Ok(_) => ran.push(provider.name.clone()),
                Err(err @ Error::AlreadyRunning(_)) => tracing::debug!(provider = provider.name, "{err}"),
                // Already logged and recorded in the job log.
                Err(_) => ran.push(provider.name.clone()),
            }
        }
        Ok(ran)
    }

    /// Checks every `tick` for due syncs until `stop` turns true; a run still under way then is cut short and its
    /// lease given back.
    pub async fn run_scheduler(self: Arc<Self>, tick: Duration, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(tick) => {}
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
            tokio::select! {
                result = self.run_due_syncs() => {
                    if let Err(err) = result {
                        tracing::warn!("cannot check for due syncs: {err}");
                    }
                }
                _ = stop.changed() => {
                    // The process is stopping in the middle of a run: its leases go back now instead of keeping
                    // other processes out until they expire; the next run (here or elsewhere) completes the work.
                    if let Err(err) = self.store.release_leases_of(&self.holder).await {
                        tracing::warn!("cannot give back the sync leases (they expire by themselves): {err}");
                    }
                    return;
                }
            }
        }
    }
}
