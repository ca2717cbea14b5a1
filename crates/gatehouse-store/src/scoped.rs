//! The access-control layer in front of the store: a [`ScopedStore`] is the store as one [`Principal`] may use
//! it — the CLI, an administrator, a domain administrator, or an API key with its domains and access. Every
//! administration entry point (web pages, REST API) reaches domains, mailboxes, app passwords and logs through
//! it, so tenancy and read-only limits are decided here and nowhere else:
//!
//! - Reading outside the principal's domains answers "not found", exactly as for an object that does not
//!   exist, and lists leave such objects out: a limited principal learns nothing about other domains.
//! - Creating outside its domains, writing with read-only access, and changing what only administrators
//!   change (domain limits and activation, creating and removing domains, a mailbox's auth source, template or
//!   external id) answer [`Error::Forbidden`].
//! - Instance-wide objects (templates, administrators, master users, app links, identity providers) are
//!   reached through [`ScopedStore::instance`], which only principals with instance access get.
//!
//! Changes are recorded in the audit log as the principal's [`Actor`].

use gatehouse_core::{DomainName, Error, MailboxAddress, Result};

use crate::{
    ActivityCount, Actor, ActorRole, AppPassword, AuditEntry, AuthLogEntry, Domain, DomainChanges, DomainSearch,
    FailureCount, FailureKey, JobRun, LogFilter, Mailbox, MailboxChanges, MailboxSearch, NewAppPassword, NewDomain,
    NewMailbox, Page, Store,
};

/// What a principal may do within its domains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Everything, the instance-wide objects included (the CLI, administrators).
    Instance,
    /// Domains and everything in them, including their creation, limits and removal (read-write API keys).
    Domains,
    /// The mailboxes of its domains and the domains' descriptions (domain administrators).
    Mailboxes,
    /// Reading only (read-only API keys).
    ReadOnly,
}

/// Who is asking, as the store sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Whom changes are recorded as.
    pub actor: Actor,
    /// The domains it reaches; `None`: every domain.
    pub domains: Option<Vec<DomainName>>,
    /// What it may do there.
    pub access: Access,
}

impl Principal {
    /// The command line on the server: everything.
    pub fn cli() -> Self {
        Principal { actor: Actor::cli(), domains: None, access: Access::Instance }
    }

    /// An administrator: everything.
    pub fn admin(username: &str) -> Self {
        Principal {
            actor: Actor { name: username.to_string(), role: ActorRole::Admin },
            domains: None,
            access: Access::Instance,
        }
    }

    /// A domain administrator of `domains` (ASCII names, as stored on the account; unparseable names reach
    /// nothing).
    pub fn domain_admin(username: &str, domains: &[String]) -> Self {
        Principal {
            actor: Actor { name: username.to_string(), role: ActorRole::DomainAdmin },
            domains: Some(domains.iter().filter_map(|name| DomainName::parse(name).ok()).collect()),
            access: Access::Mailboxes,
        }
    }

    /// An API key named `name`, limited to `domains` (empty: every domain), read-only or not.
    pub fn api_key(name: &str, domains: &[String], read_only: bool) -> Self {
        let domains =
            (!domains.is_empty()).then(|| domains.iter().filter_map(|name| DomainName::parse(name).ok()).collect());
        Principal {
            actor: Actor { name: format!("api-key:{name}"), role: ActorRole::Api },
            domains,
            access: if read_only { Access::ReadOnly } else { Access::Domains },
        }
    }

    /// Whether the principal may change anything at all.
    pub fn writes(&self) -> bool {
        self.access != Access::ReadOnly
    }

    /// Whether domain `name` (ASCII) and what is in it are within reach.
    pub fn reaches(&self, name: &str) -> bool {
        self.domains.as_ref().is_none_or(|domains| domains.iter().any(|d| d.as_str().eq_ignore_ascii_case(name)))
    }

    /// Whether the instance-wide objects are within reach.
    pub fn has_instance_access(&self) -> bool {
        self.access == Access::Instance && self.domains.is_none()
    }

    /// Whether domains themselves (creation, limits, activation, removal) and the mailbox settings tied to the
    /// instance (auth source, template, external id) may be changed.
    fn manages_domains(&self) -> bool {
        matches!(self.access, Access::Instance | Access::Domains)
    }
}

/// The store as one principal may use it (see the module documentation).
#[derive(Clone)]
pub struct ScopedStore {
    store: Store,
    principal: Principal,
}

impl Store {
    /// This store, scoped to `principal`.
    pub fn scoped(&self, principal: Principal) -> ScopedStore {
        ScopedStore { store: self.clone(), principal }
    }
}

impl ScopedStore {
    /// Who is asking.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// Whom changes are recorded as.
    pub fn actor(&self) -> &Actor {
        &self.principal.actor
    }

    /// Whether domain `name` (ASCII) and what is in it are within reach.
    pub fn reaches(&self, name: &str) -> bool {
        self.principal.reaches(name)
    }

    /// The whole store, for the instance-wide objects; only principals with instance access get it.
    pub fn instance(&self) -> Result<&Store> {
        if self.principal.has_instance_access() {
            Ok(&self.store)
        } else {
            Err(Error::forbidden("only administrators manage what belongs to the whole instance"))
        }
    }

    /// The whole store for identity providers: reading them needs access not limited to domains (an
    /// administrator, or an API key without a domain list, which may already manage every domain's mailboxes
    /// and their auth sources); changing them also needs write access.
    pub fn identity_provider_store(&self, change: bool) -> Result<&Store> {
        if self.principal.domains.is_some() || self.principal.access == Access::Mailboxes {
            return Err(Error::forbidden("access limited to domains does not reach identity providers"));
        }
        if change {
            self.writable()?;
        }
        Ok(&self.store)
    }

    fn writable(&self) -> Result<()> {
        if self.principal.writes() { Ok(()) } else { Err(Error::forbidden("this access is read-only")) }
    }

    fn visible(&self, domain: &DomainName, kind: &'static str, name: &str) -> Result<()> {
        if self.reaches(domain.as_str()) { Ok(()) } else { Err(Error::not_found(kind, name)) }
    }

    fn creatable(&self, domain: &DomainName) -> Result<()> {
        self.writable()?;
        if self.reaches(domain.as_str()) {
            Ok(())
        } else {
            Err(Error::forbidden(format!("{domain} is not one of the domains this access is limited to")))
        }
    }

    fn managing_domains(&self, what: &str) -> Result<()> {
        if self.principal.manages_domains() {
            Ok(())
        } else {
            Err(Error::forbidden(format!("only administrators change {what}")))
        }
    }

    // ---- Domains

    /// The domains within reach, by name.
    pub async fn list_domains(&self) -> Result<Vec<Domain>> {
        let mut domains = self.store.list_domains().await?;
        domains.retain(|d| self.reaches(&d.name));
        Ok(domains)
    }

    /// The names (ASCII) of the domains within reach, by name.
    pub async fn domain_names(&self) -> Result<Vec<String>> {
        let mut names = self.store.domain_names().await?;
        names.retain(|name| self.reaches(name));
        Ok(names)
    }

    /// One page of the domains within reach that match `search`.
    pub async fn search_domains(&self, search: DomainSearch) -> Result<Page<Domain>> {
        let mut search = search;
        if let Some(own) = &self.principal.domains {
            search.names = Some(match search.names {
                Some(wanted) => wanted.into_iter().filter(|d| own.contains(d)).collect(),
                None => own.clone(),
            });
        }
        self.store.search_domains(&search).await
    }

    /// A domain within reach.
    pub async fn domain(&self, name: &DomainName) -> Result<Domain> {
        self.visible(name, "domain", name.as_str())?;
        self.store.domain(name).await
    }

    /// Adds a domain (within reach, for principals that manage domains).
    pub async fn create_domain(&self, new: NewDomain) -> Result<Domain> {
        self.creatable(&new.name)?;
        self.managing_domains("which domains exist")?;
        self.store.create_domain(self.actor(), new).await
    }

    /// Changes a domain; a domain administrator changes only its description.
    pub async fn update_domain(&self, name: &DomainName, changes: DomainChanges) -> Result<Domain> {
        self.visible(name, "domain", name.as_str())?;
        self.writable()?;
        let limits = changes.active.is_some()
            || changes.max_mailboxes.is_some()
            || changes.default_quota_mib.is_some()
            || changes.max_quota_mib.is_some()
            || changes.total_quota_mib.is_some();
        if limits {
            self.managing_domains("a domain's limits and activation")?;
        }
        self.store.update_domain(self.actor(), name, changes).await
    }

    /// Removes a domain (it must have no mailboxes).
    pub async fn remove_domain(&self, name: &DomainName) -> Result<()> {
        self.visible(name, "domain", name.as_str())?;
        self.writable()?;
        self.managing_domains("which domains exist")?;
        self.store.remove_domain(self.actor(), name).await
    }

    // ---- Mailboxes

    /// The mailboxes within reach (of one domain, or of all), by address.
    pub async fn list_mailboxes(&self, domain: Option<&DomainName>) -> Result<Vec<Mailbox>> {
        match (domain, &self.principal.domains) {
            (Some(domain), _) => {
                self.visible(domain, "domain", domain.as_str())?;
                self.store.list_mailboxes(Some(domain)).await
            }
            (None, None) => self.store.list_mailboxes(None).await,
            (None, Some(domains)) => {
                let mut all = Vec::new();
                for domain in domains {
                    all.extend(self.store.list_mailboxes(Some(domain)).await?);
                }
                all.sort_by(|a, b| a.address.cmp(&b.address));
                Ok(all)
            }
        }
    }

    /// One page of the mailboxes within reach that match `search`; a domain asked for outside reach is "not
    /// found".
    pub async fn search_mailboxes(&self, search: MailboxSearch) -> Result<Page<Mailbox>> {
        let mut search = search;
        match (&search.domains, &self.principal.domains) {
            (Some(wanted), _) => {
                for domain in wanted {
                    self.visible(domain, "domain", domain.as_str())?;
                }
            }
            (None, Some(own)) => search.domains = Some(own.clone()),
            (None, None) => {}
        }
        self.store.search_mailboxes(&search).await
    }

    /// How many web sessions a mailbox within reach has open.
    pub async fn count_web_sessions(&self, address: &MailboxAddress) -> Result<u64> {
        self.visible(address.domain(), "mailbox", &address.to_string())?;
        self.store.count_web_sessions_of(crate::USER_SESSIONS, &address.to_string()).await
    }

    /// The open web sessions of a mailbox within reach.
    pub async fn list_web_sessions(&self, address: &MailboxAddress) -> Result<Vec<crate::WebSessionRow>> {
        self.visible(address.domain(), "mailbox", &address.to_string())?;
        self.store.web_sessions_of(crate::USER_SESSIONS, &address.to_string()).await
    }

    /// Ends web sessions of a mailbox within reach: the one whose id starts with `id_prefix` (at least 16
    /// characters), or all of them (`None`). Returns how many ended; audited as `web_session.end`.
    pub async fn end_web_sessions(&self, address: &MailboxAddress, id_prefix: Option<&str>) -> Result<u64> {
        self.visible(address.domain(), "mailbox", &address.to_string())?;
        self.writable()?;
        let target = address.to_string();
        let ended = match id_prefix {
            None => self.store.delete_web_sessions_of(crate::USER_SESSIONS, &target).await?,
            Some(prefix) => {
                let sessions = self.store.web_sessions_of(crate::USER_SESSIONS, &target).await?;
                let found = sessions.iter().find(|s| prefix.len() >= 16 && s.id.starts_with(prefix));
                let Some(session) = found else { return Err(Error::not_found("web session", prefix)) };
                self.store.delete_web_session(&session.id).await?;
                1
            }
        };
        let details = serde_json::json!({ "ended": ended, "all": id_prefix.is_none() });
        self.store.record_audit(self.actor(), "web_session.end", &target, details).await?;
        Ok(ended)
    }

    /// A mailbox within reach.
    pub async fn mailbox(&self, address: &MailboxAddress) -> Result<Mailbox> {
        self.visible(address.domain(), "mailbox", &address.to_string())?;
        self.store.mailbox(address).await
    }

    /// Adds a mailbox in a domain within reach; the auth source, template and external id are for principals
    /// that manage domains.
    pub async fn create_mailbox(&self, new: NewMailbox) -> Result<Mailbox> {
        self.creatable(new.address.domain())?;
        if new.auth_source.is_some() || new.template.is_some() || new.external_id.is_some() {
            self.managing_domains("a mailbox's auth source, template or external id")?;
        }
        self.store.create_mailbox(self.actor(), new).await
    }

    /// Changes a mailbox within reach (a deactivation or a new password also ends its web sessions).
    pub async fn update_mailbox(&self, address: &MailboxAddress, changes: MailboxChanges) -> Result<Mailbox> {
        self.visible(address.domain(), "mailbox", &address.to_string())?;
        self.writable()?;
        let instance_settings = changes.auth_source.is_some()
            || changes.template.is_some()
            || changes.external_id.is_some()
            || changes.deprovisioned_by.is_some();
        if instance_settings {
            self.managing_domains("a mailbox's auth source, template or external id")?;
        }
        self.store.update_mailbox(self.actor(), address, changes).await
    }

    /// Removes a mailbox within reach (and ends its web sessions).
    pub async fn remove_mailbox(&self, address: &MailboxAddress) -> Result<()> {
        self.visible(address.domain(), "mailbox", &address.to_string())?;
        self.writable()?;
        self.store.remove_mailbox(self.actor(), address).await
    }

    // ---- App passwords

    /// The app passwords of a mailbox within reach.
    pub async fn list_app_passwords(&self, address: &MailboxAddress) -> Result<Vec<AppPassword>> {
        self.visible(address.domain(), "mailbox", &address.to_string())?;
        self.store.list_app_passwords(address).await
    }

    /// Adds an app password to a mailbox within reach.
    pub async fn create_app_password(&self, address: &MailboxAddress, new: NewAppPassword) -> Result<AppPassword> {
        self.visible(address.domain(), "mailbox", &address.to_string())?;
        self.writable()?;
        self.store.create_app_password(self.actor(), address, new).await
    }

    /// Revokes app password `id` of a mailbox within reach (another mailbox's id is "not found").
    pub async fn revoke_app_password(&self, address: &MailboxAddress, id: i64) -> Result<AppPassword> {
        self.visible(address.domain(), "mailbox", &address.to_string())?;
        self.writable()?;
        self.store.revoke_app_password(self.actor(), address, id).await
    }

    // ---- Passkeys

    /// The passkeys of a mailbox within reach.
    pub async fn list_passkeys(&self, address: &MailboxAddress) -> Result<Vec<crate::Passkey>> {
        self.visible(address.domain(), "mailbox", &address.to_string())?;
        self.store.passkeys(crate::TotpPrincipal::Mailbox(address)).await
    }

    /// Removes passkey `id` of a mailbox within reach (another mailbox's id is "not found"), for a lost device.
    pub async fn remove_passkey(&self, address: &MailboxAddress, id: i64) -> Result<()> {
        self.visible(address.domain(), "mailbox", &address.to_string())?;
        self.writable()?;
        self.store.remove_passkey(self.actor(), crate::TotpPrincipal::Mailbox(address), id).await
    }

    // ---- Logs

    /// `filter` limited to the domains within reach.
    fn within_reach(&self, filter: &LogFilter) -> LogFilter {
        let mut filter = filter.clone();
        if let Some(reach) = &self.principal.domains {
            filter.domains = Some(match filter.domains.take() {
                Some(wanted) => wanted.into_iter().filter(|d| reach.contains(d)).collect(),
                None => reach.clone(),
            });
        }
        filter
    }

    /// Auth-log entries about the domains within reach.
    pub async fn auth_log(&self, filter: &LogFilter) -> Result<Vec<AuthLogEntry>> {
        self.store.auth_log(&self.within_reach(filter)).await
    }

    /// Audit-log entries about the domains within reach (the entry's target is one, or an address in one).
    pub async fn audit_log(&self, filter: &LogFilter) -> Result<Vec<AuditEntry>> {
        self.store.audit_log(&self.within_reach(filter)).await
    }

    /// Decisions about the domains within reach since `since`, per bucket, service and outcome.
    pub async fn auth_activity(&self, since: i64, bucket_seconds: i64) -> Result<Vec<ActivityCount>> {
        self.store.auth_activity(since, bucket_seconds, self.principal.domains.as_deref()).await
    }

    /// The usernames or addresses with the most failures since `since`, of the domains within reach.
    pub async fn top_failures(&self, key: FailureKey, since: i64, limit: u64) -> Result<Vec<FailureCount>> {
        self.store.top_failures(key, since, limit, self.principal.domains.as_deref()).await
    }

    /// One page of the auth-log entries about the domains within reach.
    pub async fn auth_log_page(&self, filter: &LogFilter, oldest_first: bool) -> Result<Page<AuthLogEntry>> {
        self.store.auth_log_page(&self.within_reach(filter), oldest_first).await
    }

    /// One page of the audit-log entries about the domains within reach.
    pub async fn audit_log_page(&self, filter: &LogFilter, oldest_first: bool) -> Result<Page<AuditEntry>> {
        self.store.audit_log_page(&self.within_reach(filter), oldest_first).await
    }

    /// One page of the job runs (none for a principal limited to some domains).
    pub async fn job_log_page(&self, filter: &LogFilter, oldest_first: bool) -> Result<Page<JobRun>> {
        if self.principal.domains.is_some() {
            return Ok(Page::empty(filter.window().offset, filter.window().limit));
        }
        self.store.job_log_page(filter, oldest_first).await
    }

    /// Job runs (identity-provider syncs): they concern every domain, so a principal limited to some gets none.
    pub async fn job_log(&self, filter: &LogFilter) -> Result<Vec<JobRun>> {
        if self.principal.domains.is_some() {
            return Ok(Vec::new());
        }
        self.store.job_log(filter).await
    }
}
