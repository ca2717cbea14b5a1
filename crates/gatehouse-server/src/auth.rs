//! [`AuthService`]: the engine plus what every adapter needs around it — the auth log, the audit entry for
//! every master login, and the "last used" mark of app passwords. Adapters call [`AuthService::login`] and
//! only translate its [`Decision`].

use gatehouse_core::AdminRole;
use gatehouse_core::clock::now;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use gatehouse_engine::{
    AccessTokenRequest, AdminLoginRequest, Decision, Engine, LoginRequest, ProviderAdminSignInRequest,
    ProviderSignInRequest, RequiredStep, SecondFactorOwner, SecondFactorRequest, TokenAccount, Via, WebmailOpener,
    parse_login_name,
};
use gatehouse_sources::SourceRegistry;
use gatehouse_store::{Actor, ActorRole, AuthResult, NewAuthLogEntry, Store, WebSessionRow};
use serde_json::json;

/// The engine over the store, with logging.
pub struct AuthService {
    pub(crate) engine: Engine<Store, SourceRegistry>,
    master_separator: String,
    log: tokio::sync::mpsc::Sender<LogJob>,
    /// Tells the log writer to write what is queued and stop.
    log_closing: tokio::sync::watch::Sender<bool>,
    /// The log writer, until [`AuthService::finish_logs`] waits for it.
    log_writer: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The auth log's counters.
    pub(crate) log_stats: LogStats,
    /// The change feed's follower.
    pub(crate) feed: crate::feed::FeedStats,
    /// Empties Dovecot's auth cache of what changed, when configured.
    pub(crate) doveadm: std::sync::OnceLock<crate::doveadm::Doveadm>,
    /// The web sessions this process remembers.
    pub(crate) sessions: crate::web::remembered::RememberedSessions,
}

/// How many auth-log records were queued, written and dropped.
#[derive(Debug, Default)]
pub struct LogStats {
    /// Handed to the writer.
    pub queued: AtomicU64,
    /// Written to the database.
    pub written: AtomicU64,
    /// Dropped: the queue was full, or the database refused the write.
    pub dropped: AtomicU64,
}

/// A log write queued for the background writer.
enum LogJob {
    Auth(i64, NewAuthLogEntry),
    Audit(Actor, String, serde_json::Value),
    AppPasswordUsed(i64),
}

/// Queue length of the background log writer; beyond it entries are dropped (and counted), never waited for. A
/// second of the busiest load measured (bench/run) fits, so a writer starved of CPU by a saturated hash pool
/// catches up instead of dropping.
const LOG_QUEUE: usize = 100_000;
/// Most records the writer takes from the queue at a time.
const LOG_BATCH: usize = 1000;
/// How long the writer lets records gather after the first arrives: a busy server then wakes the writer and
/// commits once per interval, not once per login.
const LOG_GATHER: std::time::Duration = std::time::Duration::from_millis(100);

impl AuthService {
    /// Wraps an engine; `master_separator` must be the engine's. Starts the background log writer, so it must
    /// be called inside the async runtime.
    /// Changes this process commits are forgotten by the engine right after their commit; changes committed
    /// elsewhere once the change feed is read (every quarter second).
    pub fn new(engine: Engine<Store, SourceRegistry>, master_separator: &str) -> Arc<Self> {
        let store = engine.directory().clone();
        let (log, queue) = tokio::sync::mpsc::channel(LOG_QUEUE);
        let (log_closing, closing) = tokio::sync::watch::channel(false);
        let service = Arc::new(AuthService {
            engine,
            master_separator: master_separator.to_string(),
            log,
            log_closing,
            log_writer: std::sync::Mutex::new(None),
            log_stats: LogStats::default(),
            feed: crate::feed::FeedStats::default(),
            doveadm: std::sync::OnceLock::new(),
            sessions: Default::default(),
        });
        let writer = tokio::spawn(write_logs(store.clone(), queue, closing, Arc::downgrade(&service)));
        *service.log_writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(writer);
        let listener = Arc::downgrade(&service);
        store.on_login_change(move |change| {
            if let Some(service) = listener.upgrade() {
                crate::feed::apply(&service, Some(change));
            }
        });
        tokio::spawn(crate::feed::follow(store, Arc::downgrade(&service)));
        service
    }

    /// The separator of master logins (`mailbox*master`).
    pub fn master_separator(&self) -> &str {
        &self.master_separator
    }

    /// What the brute-force guard says about an address before anything is tried (Dovecot's policy server).
    pub fn address_verdict(&self, address: Option<std::net::IpAddr>) -> gatehouse_engine::Verdict {
        self.engine.guard().check(address)
    }

    /// Everything the brute-force guard tracks (for operators).
    pub fn guard_snapshot(&self) -> Vec<gatehouse_engine::GuardEntry> {
        self.engine.guard().snapshot()
    }

    /// Ends an address's ban (an operator's decision).
    pub fn unban(&self, address: std::net::IpAddr) -> Option<gatehouse_engine::Unbanned> {
        self.engine.guard().unban(address)
    }

    /// Decides a web login's second factor and records it in the auth log (service `web-totp`,
    /// `web-admin-totp` or `web-domainadmin-totp`).
    pub async fn second_factor(&self, request: &SecondFactorRequest, service: &str) -> Decision {
        let decision = self.engine.second_factor(request).await;
        let entry = Recorded { service, username: request.owner.name().to_string(), remote_ip: request.remote_ip };
        self.record_decision(entry, &decision, "second factor".to_string(), "second factor");
        decision
    }

    /// The relying party of passkeys, when the web interface's public URL is known.
    pub fn passkeys(&self) -> Option<&gatehouse_engine::passkey::Passkeys> {
        self.engine.passkeys()
    }

    /// Starts a passkey check as the second factor of `owner`'s web login.
    pub async fn start_passkey_factor(
        &self,
        owner: &SecondFactorOwner,
    ) -> Result<gatehouse_engine::passkey::Challenge, gatehouse_core::Error> {
        self.engine.start_passkey_factor(owner).await
    }

    /// Decides a web login's second factor by passkey and records it in the auth log (service `web-passkey`,
    /// `web-admin-passkey` or `web-domainadmin-passkey`).
    pub async fn passkey_factor(&self, request: &gatehouse_engine::PasskeyFactorRequest, service: &str) -> Decision {
        let decision = self.engine.passkey_factor(request).await;
        let entry = Recorded { service, username: request.owner.name().to_string(), remote_ip: request.remote_ip };
        self.record_decision(entry, &decision, "second factor".to_string(), "second factor");
        decision
    }

    /// Starts a passwordless sign-in.
    pub fn start_passkey_sign_in(&self) -> Result<gatehouse_engine::passkey::Challenge, gatehouse_core::Error> {
        self.engine.start_passkey_sign_in()
    }

    /// Decides a passwordless sign-in and records it in the auth log (service `web-passkey`,
    /// `web-admin-passkey` or `web-domainadmin-passkey`; a passkey nobody has is logged as `(passkey)`).
    pub async fn passkey_sign_in(&self, request: &gatehouse_engine::PasskeySignInRequest, service: &str) -> Decision {
        let decision = self.engine.passkey_sign_in(request).await;
        let username = match &decision {
            Decision::Allowed { user, .. } => user.clone(),
            _ => "(passkey)".to_string(),
        };
        let entry = Recorded { service, username, remote_ip: request.remote_ip };
        self.record_decision(entry, &decision, "passkey".to_string(), "passkey sign-in");
        decision
    }

    /// The step a web session continues with once `done` is done (`None`: it may be used).
    pub async fn step_after(
        &self,
        owner: &SecondFactorOwner,
        done: RequiredStep,
    ) -> Result<Option<RequiredStep>, Decision> {
        self.engine.step_after(owner, done).await
    }

    /// Decides a login and records it. The records are written in the background, batched: a slow database
    /// never delays the answer, and a full queue drops records (with a warning) rather than logins.
    pub async fn login(&self, request: &LoginRequest) -> Decision {
        let decision = self.engine.authenticate(request).await;
        trace_decision(request, &decision);
        for job in self.jobs(request, &decision) {
            self.queue_log(job);
        }
        decision
    }

    /// Decides a login to the admin or domain-admin area and records it in the auth log (service `web-admin` or
    /// `web-domainadmin`).
    pub async fn login_admin(&self, request: &AdminLoginRequest) -> Decision {
        let decision = self.engine.authenticate_admin(request).await;
        let entry = Recorded {
            service: admin_service(request.kind),
            username: request.username.trim().to_string(),
            remote_ip: request.remote_ip,
        };
        self.record_decision(entry, &decision, "Password".to_string(), "administrator login");
        decision
    }

    /// The identity providers.
    pub fn sources(&self) -> &SourceRegistry {
        self.engine.sources()
    }

    /// Decides a browser sign-in an identity provider vouched for and records it in the auth log (service
    /// `web`, the reason naming the provider).
    pub async fn sign_in_with_provider(&self, request: &ProviderSignInRequest) -> Decision {
        let decision = self.engine.sign_in_with_provider(request).await;
        let username = match &request.account {
            Ok(account) => account.address.trim().to_lowercase(),
            Err(_) => format!("idp:{}", request.provider),
        };
        let entry = Recorded { service: "web", username, remote_ip: request.remote_ip };
        self.record_decision(
            entry,
            &decision,
            format!("signed in at {}", request.provider),
            "identity-provider sign-in",
        );
        decision
    }

    /// Decides a sign-in at an identity provider to an administrator area and records it in the auth log
    /// (service `web-admin` or `web-domainadmin`, the reason naming the provider).
    pub async fn sign_in_admin_with_provider(&self, request: &ProviderAdminSignInRequest) -> Decision {
        let decision = self.engine.sign_in_admin_with_provider(request).await;
        let username = match &request.account {
            Ok((account, _)) => account.address.trim().to_lowercase(),
            Err(_) => format!("idp:{}", request.provider),
        };
        let entry = Recorded { service: admin_service(request.kind), username, remote_ip: request.remote_ip };
        self.record_decision(entry, &decision, format!("signed in at {}", request.provider), "administrator sign-in");
        decision
    }

    /// Decides a mail login with an identity provider's access token and records it in the auth log (the
    /// service asked for, the reason naming the provider).
    pub async fn login_with_token(&self, request: &AccessTokenRequest) -> Decision {
        let decision = self.engine.authenticate_token(request).await;
        let username = match &request.token {
            Ok(TokenAccount { address: Some(address), .. }) => address.clone(),
            Ok(account) => format!("idp:{}:{}", account.provider, account.subject),
            Err(_) => "(access token)".to_string(),
        };
        let entry = Recorded { service: request.service.as_str(), username, remote_ip: request.remote_ip };
        let success = match &decision {
            Decision::Allowed { via, .. } => format!("{via:?}"),
            _ => String::new(),
        };
        self.record_decision(entry, &decision, success, "access-token login");
        decision
    }

    /// Traces a decision of the web or token adapters and queues its auth-log row: `success` is the reason a
    /// success is recorded with; a refusal and a temporary failure give their own.
    fn record_decision(&self, entry: Recorded<'_>, decision: &Decision, success: String, what: &'static str) {
        let (result, reason) = match decision {
            Decision::Allowed { .. } => (AuthResult::Success, success),
            Decision::Denied { reason, detail } => (AuthResult::Failure, format!("{}: {detail}", reason.as_str())),
            Decision::TempFail { cause } => (AuthResult::TempFail, cause.to_string()),
        };
        tracing::info!(service = entry.service, user = entry.username, ?result, reason, "{what}");
        self.record(NewAuthLogEntry {
            service: entry.service.to_string(),
            username: entry.username,
            master_user: None,
            remote_ip: entry.remote_ip.map(|ip| ip.to_string()),
            result,
            reason,
            app_password_id: None,
        });
    }

    /// Decides whether a web session may open `target`'s webmail now and records it: for an impersonation the
    /// audit log first (`webmail.impersonate`, written before anything is granted: no record, no impersonation),
    /// then the auth log (service `webmail`, shown in the mailbox's own login list).
    pub async fn open_webmail(&self, opener: &Actor, target: &str, client_ip: std::net::IpAddr) -> Decision {
        let as_opener = webmail_opener(opener);
        let decision = self.engine.authorize_webmail(as_opener, target).await;
        let impersonation = matches!(as_opener, WebmailOpener::Administrator(_));
        match &decision {
            Decision::Allowed { user, .. } => {
                if impersonation {
                    let details = json!({ "via": "webmail", "remote_ip": client_ip.to_string() });
                    if let Err(err) =
                        self.engine.directory().record_audit(opener, "webmail.impersonate", user, details).await
                    {
                        tracing::warn!("the impersonation could not be audited, so it is not granted: {err}");
                        return Decision::TempFail { cause: err };
                    }
                }
                self.record(NewAuthLogEntry {
                    service: "webmail".into(),
                    username: user.clone(),
                    master_user: impersonation.then(|| opener.name.clone()),
                    remote_ip: Some(client_ip.to_string()),
                    result: AuthResult::Success,
                    reason: if impersonation {
                        format!("opened by {} {}", opener.role.as_str(), opener.name)
                    } else {
                        "web session".into()
                    },
                    app_password_id: None,
                });
            }
            Decision::Denied { reason, detail } => tracing::warn!(
                opener = opener.name,
                role = opener.role.as_str(),
                target,
                reason = reason.as_str(),
                detail,
                "webmail refused"
            ),
            Decision::TempFail { cause } => tracing::warn!(opener = opener.name, target, %cause, "webmail not decided"),
        }
        decision
    }

    /// Decides again, for a request made with a webmail grant (nginx asks for every SOGo request): the grant is
    /// worth what allowed it is worth now.
    pub async fn webmail_access(&self, opener: &Actor, target: &str) -> Decision {
        let decision = self.engine.authorize_webmail(webmail_opener(opener), target).await;
        if let Decision::Denied { reason, detail } = &decision {
            tracing::info!(
                opener = opener.name,
                target,
                reason = reason.as_str(),
                detail,
                "webmail grant no longer holds"
            );
        }
        decision
    }

    /// Queues an auth-log record written by the web layer (a TOTP failure, for example).
    pub fn record(&self, entry: NewAuthLogEntry) {
        self.queue_log(LogJob::Auth(now(), entry));
    }

    /// Hands a record to the background writer; when its queue is full the record is dropped and counted,
    /// never waited for.
    fn queue_log(&self, job: LogJob) {
        let auth = matches!(job, LogJob::Auth(..));
        match self.log.try_send(job) {
            Ok(()) if auth => {
                self.log_stats.queued.fetch_add(1, Ordering::Relaxed);
            }
            Ok(()) => {}
            Err(_) => {
                let dropped = self.log_stats.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                // One warning per thousand drops: a flood must not flood the log too.
                if dropped % 1000 == 1 {
                    tracing::warn!(dropped, "the auth-log queue is full; records are dropped");
                }
            }
        }
    }

    /// From now on, every change this process learns of (made here or read from the change feed) also empties
    /// Dovecot's auth cache of what it touches. Set once; a second call changes nothing.
    pub fn flush_dovecot_with(&self, doveadm: crate::doveadm::Doveadm) {
        let _ = self.doveadm.set(doveadm);
    }

    /// The web session `id`, from memory while the change feed is being read, else from the store (and then
    /// remembered); `None` when there is none or it expired.
    pub async fn web_session(&self, id: &str) -> Result<Option<Arc<WebSessionRow>>, gatehouse_core::Error> {
        if self.engine.memory_answers()
            && let Some(row) = self.sessions.get(id)
        {
            return Ok(Some(row));
        }
        let epoch = self.sessions.epoch();
        let Some(row) = self.engine.directory().web_session(id).await? else { return Ok(None) };
        let row = Arc::new(row);
        self.sessions.remember(epoch, &row);
        Ok(Some(row))
    }

    /// The auth log's counters.
    pub fn log_stats(&self) -> &LogStats {
        &self.log_stats
    }

    /// Has the log writer write everything queued and stop, waiting at most `limit` (at shutdown, once no
    /// request runs any more). Records queued afterwards are counted as dropped.
    pub async fn finish_logs(&self, limit: std::time::Duration) {
        let _ = self.log_closing.send(true);
        let writer = self.log_writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
        if let Some(writer) = writer
            && tokio::time::timeout(limit, writer).await.is_err()
        {
            tracing::warn!("the auth log was not written completely within {} s", limit.as_secs());
        }
    }

    /// The change feed follower's state.
    pub fn feed_stats(&self) -> &crate::feed::FeedStats {
        &self.feed
    }

    /// Decides a login and waits until it is recorded (for short-lived processes such as the CLI).
    pub async fn login_and_record(&self, request: &LoginRequest) -> Decision {
        let decision = self.engine.authenticate(request).await;
        trace_decision(request, &decision);
        let store = self.engine.directory();
        for job in self.jobs(request, &decision) {
            write_one(store, job).await;
        }
        decision
    }

    /// The log writes one decision needs.
    fn jobs(&self, request: &LoginRequest, decision: &Decision) -> Vec<LogJob> {
        let mut jobs = vec![LogJob::Auth(now(), log_entry(request, decision))];
        if let Some((actor, target, details)) = master_audit(request, decision, &self.master_separator) {
            jobs.push(LogJob::Audit(actor, target, details));
        }
        if let Decision::Allowed { via: Via::AppPassword(id), cached: false, .. } = decision {
            jobs.push(LogJob::AppPasswordUsed(*id));
        }
        jobs
    }
}

/// Who a decision recorded by [`AuthService::record_decision`] is about.
struct Recorded<'a> {
    service: &'a str,
    username: String,
    remote_ip: Option<std::net::IpAddr>,
}

/// The auth-log service of an administrator area's login.
fn admin_service(kind: AdminRole) -> &'static str {
    match kind {
        AdminRole::Admin => "web-admin",
        AdminRole::DomainAdmin => "web-domainadmin",
    }
}

/// An owner opens their own mailbox; every other actor is an administrator impersonating.
fn webmail_opener(actor: &Actor) -> WebmailOpener<'_> {
    match actor.role {
        ActorRole::User => WebmailOpener::Owner(&actor.name),
        _ => WebmailOpener::Administrator(&actor.name),
    }
}

async fn write_one(store: &Store, job: LogJob) {
    let result = match job {
        LogJob::Auth(at, entry) => store.record_auth_batch(vec![(at, entry)]).await,
        LogJob::Audit(actor, target, details) => store.record_audit(&actor, "master_login", &target, details).await,
        LogJob::AppPasswordUsed(id) => store.mark_app_password_used(id).await,
    };
    if let Err(err) = result {
        tracing::warn!("could not write a login record: {err}");
    }
}

/// The background writer: waits for a record, lets more gather for [`LOG_GATHER`], then writes everything
/// queued, auth-log rows in batches; when told to close it writes what is queued and ends.
async fn write_logs(
    store: Store,
    mut queue: tokio::sync::mpsc::Receiver<LogJob>,
    mut closing: tokio::sync::watch::Receiver<bool>,
    service: Weak<AuthService>,
) {
    let mut waiting = Vec::new();
    loop {
        tokio::select! {
            biased;
            _ = closing.wait_for(|closing| *closing) => {}
            first = queue.recv() => match first {
                Some(job) => waiting.push(job),
                None => return,
            },
        }
        let closed = *closing.borrow();
        if !closed {
            tokio::select! {
                _ = closing.wait_for(|closing| *closing) => {}
                _ = tokio::time::sleep(LOG_GATHER) => {}
            }
        }
        // Everything queued by now, a batch at a time.
        loop {
            while waiting.len() < LOG_BATCH
                && let Ok(job) = queue.try_recv()
            {
                waiting.push(job);
            }
            if waiting.is_empty() {
                break;
            }
            write_batch(&store, std::mem::take(&mut waiting), &service).await;
        }
        if *closing.borrow() {
            return;
        }
    }
}

/// Writes the auth-log rows among `jobs` in one transaction, then the other jobs one by one.
async fn write_batch(store: &Store, jobs: Vec<LogJob>, service: &Weak<AuthService>) {
    let mut auth_rows = Vec::with_capacity(jobs.len());
    let mut others = Vec::new();
    for job in jobs {
        match job {
            LogJob::Auth(at, entry) => auth_rows.push((at, entry)),
            other => others.push(other),
        }
    }
    let count = auth_rows.len() as u64;
    let written = store.record_auth_batch(auth_rows).await;
    if let Some(service) = service.upgrade() {
        let counter = if written.is_ok() { &service.log_stats.written } else { &service.log_stats.dropped };
        counter.fetch_add(count, Ordering::Relaxed);
    }
    if let Err(err) = written {
        tracing::warn!(records = count, "could not write the auth log: {err}");
    }
    for job in others {
        write_one(store, job).await;
    }
}

fn trace_decision(request: &LoginRequest, decision: &Decision) {
    match decision {
        // A success answered from memory is in the auth log like every decision; in the process log it would be
        // one line per request of every client that logs in again and again.
        Decision::Allowed { user, master_user, via, cached: true, .. } => {
            tracing::debug!(service = request.service.as_str(), user, master = ?master_user, ?via, "login allowed (cached)")
        }
        Decision::Allowed { user, master_user, via, cached: false, .. } => {
            tracing::info!(service = request.service.as_str(), user, master = ?master_user, ?via, "login allowed")
        }
        Decision::Denied { reason, detail } => tracing::info!(
            service = request.service.as_str(),
            user = %request.username,
            remote_ip = ?request.remote_ip,
            reason = reason.as_str(),
            detail,
            "login denied"
        ),
        Decision::TempFail { cause } => {
            tracing::warn!(service = request.service.as_str(), user = %request.username, %cause, "login not decided")
        }
    }
}

fn log_entry(request: &LoginRequest, decision: &Decision) -> NewAuthLogEntry {
    let (username, master_user, result, reason, app_password_id) = match decision {
        Decision::Allowed { user, master_user, via, cached, .. } => (
            user.clone(),
            master_user.clone(),
            AuthResult::Success,
            format!("{via:?}{}", if *cached { " (cached)" } else { "" }),
            match via {
                Via::AppPassword(id) => Some(*id),
                _ => None,
            },
        ),
        Decision::Denied { reason, detail } => (
            request.username.trim().to_lowercase(),
            None,
            AuthResult::Failure,
            format!("{}: {detail}", reason.as_str()),
            None,
        ),
        Decision::TempFail { cause } => {
            (request.username.trim().to_lowercase(), None, AuthResult::TempFail, cause.to_string(), None)
        }
    };
    NewAuthLogEntry {
        service: request.service.as_str().to_string(),
        username,
        master_user,
        remote_ip: request.remote_ip.map(|ip| ip.to_string()),
        result,
        reason,
        app_password_id,
    }
}

/// Every master login (allowed or not) is an impersonation attempt and goes to the audit log.
fn master_audit(
    request: &LoginRequest,
    decision: &Decision,
    separator: &str,
) -> Option<(Actor, String, serde_json::Value)> {
    let name = parse_login_name(&request.username, request.authzid.as_deref(), separator).ok()?;
    let master = name.master?;
    let outcome = match decision {
        Decision::Allowed { .. } => "allowed".to_string(),
        Decision::Denied { reason, .. } => format!("denied: {}", reason.as_str()),
        Decision::TempFail { cause } => format!("not decided: {cause}"),
    };
    let (actor, target) = (master, name.target);
    let details = json!({
        "service": request.service.as_str(),
        "remote_ip": request.remote_ip.map(|ip| ip.to_string()),
        "outcome": outcome,
    });
    Some((Actor { name: actor, role: ActorRole::MasterUser }, target, details))
}
