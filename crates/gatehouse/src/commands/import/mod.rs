//! `gatehouse import mailcow`: brings a running mailcow's domains, mailboxes, administrators, TOTP keys, app
//! passwords and app links over, hashes exactly as mailcow stored them, so nobody resets a password or reconfigures a phone. Names are the keys: a second run updates what changed in
//! mailcow since and changes nothing else, so an operator can import, test, and import again just before
//! switching over. mailcow's database and Redis are only read. Every change goes through the same store rules (and audit
//! log) as the other commands; what a rule refuses is reported, not forced.

pub mod mailcow;

use gatehouse_core::{AdminRole, DomainName, Error, Fault, MailboxAddress, ProtocolSet, Service};
use gatehouse_store::{
    Actor, AdminChanges, ApiKeyAccess, AppLinkChanges, DomainAdminChanges, DomainChanges, IdentityProviderChanges,
    IdentityProviderKind, MailboxChanges, NewApiKey, NewAppLink, NewAppPassword, NewDomain, NewDomainAdmin,
    NewIdentityProvider, NewMailbox, NewTemplate, Principal, ScopedStore, Store, TemplateChanges, TotpPrincipal,
};
use serde::Serialize;

use self::mailcow::{
    MailcowAdmin, MailcowApiKey, MailcowAppLink, MailcowAppPassword, MailcowDomain, MailcowMailbox,
    MailcowSecondFactor, MailcowTemplate, attribute_on,
};
use super::CommandContext;
use crate::cli::ImportCommand;

/// The environment variable that may hold the password of mailcow's database, so it stays out of the process
/// list.
const PASSWORD_VARIABLE: &str = "MAILCOW_DB_PASSWORD";

/// The environment variable that may hold the password of mailcow's Redis (REDISPASS in mailcow.conf).
const REDIS_PASSWORD_VARIABLE: &str = "MAILCOW_REDIS_PASSWORD";

const MIB: i64 = 1024 * 1024;

/// The kinds of report entries.
const DOMAIN: &str = "domain";
const MAILBOX: &str = "mailbox";
const ADMIN: &str = "administrator";
const DOMAIN_ADMIN: &str = "domain administrator";
const SECOND_FACTOR: &str = "second factor";
const APP_PASSWORD: &str = "app password";
const API_KEY: &str = "API key";
const APP_LINK: &str = "app link";
const TEMPLATE: &str = "template";
const PROVIDER: &str = "identity provider";
const SETTING: &str = "setting";

/// What happened to one domain or mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Action {
    /// Created here (in a dry run: would be).
    Created,
    /// Changed to match mailcow (in a dry run: would be).
    Updated,
    /// Already as in mailcow.
    Unchanged,
    /// Not imported, for the reason given.
    Skipped,
    /// Refused by a rule of the store (a limit, a name), for the reason given.
    Refused,
}

/// One line of the report.
#[derive(Debug, Serialize)]
struct Entry {
    kind: &'static str,
    name: String,
    action: Action,
    /// The settings that differ (updated), or notes on how a setting was carried over.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    changes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

impl Entry {
    fn new(kind: &'static str, name: &str, action: Action) -> Self {
        Entry { kind, name: name.to_string(), action, changes: Vec::new(), reason: None }
    }

    fn because(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }
}

/// How many of each action, for one kind.
#[derive(Debug, Default, Serialize)]
struct Counts {
    created: usize,
    updated: usize,
    unchanged: usize,
    skipped: usize,
    refused: usize,
}

impl Counts {
    fn count(&mut self, action: Action) {
        match action {
            Action::Created => self.created += 1,
            Action::Updated => self.updated += 1,
            Action::Unchanged => self.unchanged += 1,
            Action::Skipped => self.skipped += 1,
            Action::Refused => self.refused += 1,
        }
    }
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} created, {} updated, {} unchanged, {} skipped, {} refused",
            self.created, self.updated, self.unchanged, self.skipped, self.refused
        )
    }
}

/// The whole report.
#[derive(Debug, Serialize)]
struct Report {
    dry_run: bool,
    domains: Counts,
    mailboxes: Counts,
    administrators: Counts,
    second_factors: Counts,
    app_passwords: Counts,
    api_keys: Counts,
    app_links: Counts,
    templates: Counts,
    identity_providers: Counts,
    entries: Vec<Entry>,
}

/// What waits for the end of the run: mailcow's inactive domains are created active (the store adds mailboxes to
/// active domains only), their mailboxes inactive; at the end the domains are deactivated and the mailboxes get
/// mailcow's flag. No login is possible in between.
#[derive(Default)]
struct Deferred {
    /// Domains to deactivate.
    domains: Vec<DomainName>,
    /// Mailboxes created inactive that mailcow has active.
    mailboxes: Vec<MailboxAddress>,
}

impl Report {
    fn add(&mut self, entry: Entry) {
        match entry.kind {
            DOMAIN => self.domains.count(entry.action),
            MAILBOX => self.mailboxes.count(entry.action),
            ADMIN | DOMAIN_ADMIN => self.administrators.count(entry.action),
            APP_PASSWORD => self.app_passwords.count(entry.action),
            API_KEY => self.api_keys.count(entry.action),
            APP_LINK => self.app_links.count(entry.action),
            TEMPLATE => self.templates.count(entry.action),
            PROVIDER => self.identity_providers.count(entry.action),
            SETTING => {}
            _ => self.second_factors.count(entry.action),
        }
        self.entries.push(entry);
    }
}

/// Runs `gatehouse import mailcow`.
pub async fn run(ctx: &CommandContext, command: ImportCommand) -> anyhow::Result<()> {
    let ImportCommand::Mailcow { from, dry_run, json, mailcow_conf, redis } = command;
    let url = source_url(&from)?;
    let conf = match &mailcow_conf {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|err| super::ConfigProblem(format!("--mailcow-conf {}: {err}", path.display())))?,
        ),
        None => None,
    };
    let data = mailcow::read(&url).await?;
    // Everything is read before anything is written: a mailcow that cannot be read changes nothing here.
    let app_links = match &redis {
        Some(redis) => Some(mailcow::read_app_links(&redis_url(redis, conf.as_deref())?).await?),
        None => None,
    };
    let store = ctx.store().await?;
    let scoped = store.scoped(Principal::cli());
    let progress = if json {
        indicatif::ProgressBar::hidden()
    } else {
        let total = data.domains.len()
            + data.mailboxes.len()
            + data.admins.len()
            + data.second_factors.len()
            + data.app_passwords.len()
            + data.api_keys.len()
            + data.templates.len()
            + app_links.as_ref().map_or(0, Vec::len)
            + 1;
        indicatif::ProgressBar::new(total as u64)
    };
    let mut report = Report {
        dry_run,
        domains: Counts::default(),
        mailboxes: Counts::default(),
        administrators: Counts::default(),
        second_factors: Counts::default(),
        app_passwords: Counts::default(),
        api_keys: Counts::default(),
        app_links: Counts::default(),
        templates: Counts::default(),
        identity_providers: Counts::default(),
        entries: Vec::new(),
    };
    let mut deferred = Deferred::default();
    for domain in &data.domains {
        report.add(import_domain(&scoped, domain, dry_run, &mut deferred).await?);
        progress.inc(1);
    }
    for template in &data.templates {
        report.add(import_template(&store, template, dry_run).await?);
        progress.inc(1);
    }
    // The providers mailboxes can be bound to: those here, and in a dry run the one the import would create.
    let mut providers: Vec<(String, IdentityProviderKind)> =
        store.list_identity_providers().await?.into_iter().map(|p| (p.name, p.kind)).collect();
    if !data.identity_provider.is_empty() {
        let entry = import_identity_provider(&store, &data.identity_provider, dry_run).await?;
        if entry.action == Action::Created
            && let Ok(kind) = entry.name.parse::<IdentityProviderKind>()
        {
            providers.push((entry.name.clone(), kind));
        }
        report.add(entry);
    }
    progress.inc(1);
    for mailbox in &data.mailboxes {
        report.add(import_mailbox(&store, &scoped, &providers, mailbox, dry_run, &mut deferred).await?);
        progress.inc(1);
    }
    for domain in &deferred.domains {
        scoped.update_domain(domain, DomainChanges { active: Some(false), ..Default::default() }).await?;
    }
    for address in &deferred.mailboxes {
        scoped.update_mailbox(address, MailboxChanges { active: Some(true), ..Default::default() }).await?;
    }
    for admin in &data.admins {
        report.add(import_admin(&store, admin, dry_run).await?);
        progress.inc(1);
    }
    let imported: Vec<String> = report
        .entries
        .iter()
        .filter(|e| matches!(e.kind, MAILBOX | ADMIN | DOMAIN_ADMIN) && e.action != Action::Skipped)
        .map(|e| e.name.clone())
        .collect();
    let mut has_totp: Vec<&str> = Vec::new();
    for factor in &data.second_factors {
        report.add(import_second_factor(&store, factor, &imported, &mut has_totp, dry_run).await?);
        progress.inc(1);
    }
    for app_password in &data.app_passwords {
        report.add(import_app_password(&store, app_password, &imported, dry_run).await?);
        progress.inc(1);
    }
    for key in &data.api_keys {
        report.add(import_api_key(&store, key, dry_run).await?);
        progress.inc(1);
    }
    match &app_links {
        Some(links) => {
            for link in links {
                report.add(import_app_link(&store, link, dry_run).await?);
                progress.inc(1);
            }
        }
        None => report.add(Entry::new(APP_LINK, "all", Action::Skipped).because(
            "mailcow keeps its app links in Redis: give --redis redis://127.0.0.1:7654 (REDISPASS from mailcow.conf \
             as the password) to import them",
        )),
    }
    if let Some(text) = &conf {
        report.add(admin_email_login(text));
    }
    progress.finish_and_clear();
    store.close().await;
    print_report(&report, json)?;
    let refused = [
        &report.domains,
        &report.mailboxes,
        &report.administrators,
        &report.second_factors,
        &report.app_passwords,
        &report.api_keys,
        &report.app_links,
        &report.templates,
        &report.identity_providers,
    ];
    if refused.iter().any(|counts| counts.refused > 0) {
        return Err(crate::Exit(std::process::ExitCode::from(1)).into());
    }
    Ok(())
}

/// `--from` with the password from [`PASSWORD_VARIABLE`] when the URL has none.
fn source_url(from: &str) -> anyhow::Result<String> {
    let mut url = url::Url::parse(from).map_err(|err| {
        super::ConfigProblem(format!("--from: not a URL ({err}); e.g. mysql://mailcow@127.0.0.1/mailcow"))
    })?;
    if !matches!(url.scheme(), "mysql" | "mariadb") {
        return Err(super::ConfigProblem(format!(
            "--from: mailcow keeps its data in MariaDB; give a mysql:// URL, not {}://",
            url.scheme()
        ))
        .into());
    }
    let _ = url.set_scheme("mysql");
    if url.password().is_none()
        && let Ok(password) = std::env::var(PASSWORD_VARIABLE)
    {
        url.set_password(Some(&password)).map_err(|()| super::ConfigProblem("--from names no host".into()))?;
    }
    Ok(url.to_string())
}

/// `--redis` with a password from [`REDIS_PASSWORD_VARIABLE`], else from REDISPASS in mailcow.conf, when the URL
/// has none.
fn redis_url(redis: &str, conf: Option<&str>) -> anyhow::Result<String> {
    let mut url = url::Url::parse(redis)
        .map_err(|err| super::ConfigProblem(format!("--redis: not a URL ({err}); e.g. redis://127.0.0.1:7654")))?;
    if !matches!(url.scheme(), "redis" | "redis+unix") {
        return Err(super::ConfigProblem(format!(
            "--redis: give a redis:// URL (mailcow's Redis listens on 127.0.0.1:7654), not {}://",
            url.scheme()
        ))
        .into());
    }
    if url.password().is_none() {
        let password = std::env::var(REDIS_PASSWORD_VARIABLE)
            .ok()
            .or_else(|| conf.and_then(|text| conf_value(text, "REDISPASS")))
            .filter(|password| !password.is_empty());
        if let Some(password) = password {
            url.set_password(Some(&password)).map_err(|()| super::ConfigProblem("--redis names no host".into()))?;
        }
    }
    Ok(url.to_string())
}

/// The last value of `KEY=` in mailcow.conf, without quotes.
fn conf_value(text: &str, key: &str) -> Option<String> {
    let prefix = format!("{key}=");
    text.lines()
        .filter_map(|line| line.trim().strip_prefix(prefix.as_str()))
        .next_back()
        .map(|value| value.trim().trim_matches(['"', '\'']).to_string())
}

/// An entry for a store refusal (a client fault); a server fault ends the import (it can be run again).
fn refused(kind: &'static str, name: &str, err: Error) -> anyhow::Result<Entry> {
    if err.fault() == Fault::Server {
        return Err(err.into());
    }
    Ok(Entry::new(kind, name, Action::Refused).because(err.to_string()))
}

async fn import_domain(
    scoped: &ScopedStore,
    from: &MailcowDomain,
    dry_run: bool,
    deferred: &mut Deferred,
) -> anyhow::Result<Entry> {
    let name = match DomainName::parse(&from.name) {
        Ok(name) => name,
        Err(err) => return Ok(Entry::new(DOMAIN, &from.name, Action::Skipped).because(err.to_string())),
    };
    let shown = name.as_str().to_string();
    let existing = match scoped.domain(&name).await {
        Ok(existing) => existing,
        Err(Error::NotFound { .. }) => {
            let mut new = NewDomain::new(name.clone());
            new.description = from.description.clone();
            // Inactive in mailcow: active until its mailboxes are in (see [`Deferred`]).
            new.active = true;
            new.max_mailboxes = from.max_mailboxes;
            new.default_quota_mib = from.default_quota_mib;
            new.max_quota_mib = from.max_quota_mib;
            new.total_quota_mib = from.total_quota_mib;
            if !dry_run {
                if let Err(err) = scoped.create_domain(new).await {
                    return refused(DOMAIN, &shown, err);
                }
                if !from.active {
                    deferred.domains.push(name);
                }
            }
            return Ok(Entry::new(DOMAIN, &shown, Action::Created));
        }
        Err(err) => return Err(err.into()),
    };
    let mut changes = DomainChanges::default();
    let mut changed = Vec::new();
    if existing.description != from.description {
        changes.description = Some(from.description.clone());
        changed.push("description".to_string());
    }
    if existing.active != from.active {
        changes.active = Some(from.active);
        changed.push("active".into());
    }
    for (label, current, wanted, slot) in [
        ("max_mailboxes", existing.max_mailboxes, from.max_mailboxes, &mut changes.max_mailboxes),
        ("default_quota_mib", existing.default_quota_mib, from.default_quota_mib, &mut changes.default_quota_mib),
        ("max_quota_mib", existing.max_quota_mib, from.max_quota_mib, &mut changes.max_quota_mib),
        ("total_quota_mib", existing.total_quota_mib, from.total_quota_mib, &mut changes.total_quota_mib),
    ] {
        if current != wanted {
            *slot = Some(wanted);
            changed.push(label.to_string());
        }
    }
    if changed.is_empty() {
        return Ok(Entry::new(DOMAIN, &shown, Action::Unchanged));
    }
    if !dry_run && let Err(err) = scoped.update_domain(&name, changes).await {
        return refused(DOMAIN, &shown, err);
    }
    let mut entry = Entry::new(DOMAIN, &shown, Action::Updated);
    entry.changes = changed;
    Ok(entry)
}

/// A mailbox as mailcow has it, in Gatehouse's terms.
struct Wanted {
    display_name: String,
    auth_source: String,
    password_hash: Option<String>,
    quota_mib: i64,
    protocols: ProtocolSet,
    active: bool,
    force_password_change: bool,
    force_totp: bool,
}

/// Translates a mailcow mailbox; `Err` is why it is skipped.
fn wanted(
    from: &MailcowMailbox,
    address: &MailboxAddress,
    providers: &[(String, IdentityProviderKind)],
) -> Result<Wanted, String> {
    if !from.kind.is_empty() {
        return Err(format!("a resource SOGo books (kind {}), not an account", from.kind));
    }
    let (auth_source, password_hash) = match from.authsource.as_str() {
        "mailcow" | "" => {
            if from.password.is_empty() {
                return Err("it has no password hash in mailcow".into());
            }
            if gatehouse_passwords::stored_scheme(&from.password).is_none() {
                let scheme = from.password.split('}').next().unwrap_or("").trim_start_matches('{');
                return Err(format!("its password hash (scheme {scheme}) is not one Gatehouse verifies"));
            }
            (gatehouse_store::LOCAL_AUTH_SOURCE.to_string(), Some(from.password.clone()))
        }
        source => {
            let kind = match source {
                "ldap" => IdentityProviderKind::Ldap,
                "keycloak" => IdentityProviderKind::Keycloak,
                "generic-oidc" => IdentityProviderKind::Oidc,
                other => return Err(format!("mailcow's auth source {other} is unknown")),
            };
            let matching: Vec<&String> =
                providers.iter().filter(|(_, of_kind)| *of_kind == kind).map(|(name, _)| name).collect();
            match matching.as_slice() {
                [provider] => ((*provider).clone(), None),
                [] => {
                    return Err(format!(
                        "it signs in at mailcow's {source} identity provider, and Gatehouse has no {} provider to \
                         bind it to: add it (`gatehouse idp add`) and import again",
                        kind.as_str()
                    ));
                }
                _ => {
                    return Err(format!(
                        "it signs in at mailcow's {source} identity provider, and Gatehouse has several {} \
                         providers: keep one active and import again",
                        kind.as_str()
                    ));
                }
            }
        }
    };
    let mut protocols: ProtocolSet =
        Service::ALL.into_iter().filter(|service| from.flag(&format!("{}_access", service.as_str()))).collect();
    // mailcow's "active = 2": mail is delivered, logins are refused. Here: active, no protocol.
    if from.active == 2 {
        protocols = ProtocolSet::NONE;
    }
    Ok(Wanted {
        display_name: if from.name.trim().is_empty() { address.local_part().to_string() } else { from.name.clone() },
        auth_source,
        password_hash,
        // Bytes to MiB, rounding up so nobody loses space.
        quota_mib: (from.quota_bytes.max(0) + MIB - 1) / MIB,
        protocols,
        active: from.active != 0,
        force_password_change: from.flag("force_pw_update"),
        force_totp: from.flag("force_tfa"),
    })
}

async fn import_mailbox(
    store: &Store,
    scoped: &ScopedStore,
    providers: &[(String, IdentityProviderKind)],
    from: &MailcowMailbox,
    dry_run: bool,
    deferred: &mut Deferred,
) -> anyhow::Result<Entry> {
    let address = match MailboxAddress::parse(&from.username) {
        Ok(address) => address,
        Err(err) => return Ok(Entry::new(MAILBOX, &from.username, Action::Skipped).because(err.to_string())),
    };
    let shown = address.to_string();
    let wanted = match wanted(from, &address, providers) {
        Ok(wanted) => wanted,
        Err(why) => return Ok(Entry::new(MAILBOX, &shown, Action::Skipped).because(why)),
    };
    let notes: Vec<String> =
        if from.active == 2 { vec!["mailcow refuses its logins (active = 2): no protocol".into()] } else { Vec::new() };
    let existing = match scoped.mailbox(&address).await {
        Ok(existing) => existing,
        Err(Error::NotFound { .. }) => {
            let in_deferred_domain = deferred.domains.contains(address.domain());
            let mut new = NewMailbox::new(address.clone());
            new.display_name = Some(wanted.display_name);
            new.password_hash = wanted.password_hash;
            new.auth_source = Some(wanted.auth_source);
            new.quota_mib = Some(wanted.quota_mib);
            new.protocols = Some(wanted.protocols);
            new.active = Some(wanted.active && !in_deferred_domain);
            new.force_password_change = wanted.force_password_change;
            new.force_totp = wanted.force_totp;
            if !dry_run {
                if let Err(err) = scoped.create_mailbox(new).await {
                    return refused(MAILBOX, &shown, err);
                }
                if in_deferred_domain && wanted.active {
                    deferred.mailboxes.push(address);
                }
            }
            let mut entry = Entry::new(MAILBOX, &shown, Action::Created);
            entry.changes = notes;
            return Ok(entry);
        }
        Err(err) => return Err(err.into()),
    };
    let mut changes = MailboxChanges::default();
    let mut changed = Vec::new();
    if existing.display_name != wanted.display_name {
        changes.display_name = Some(wanted.display_name);
        changed.push("display name".to_string());
    }
    if existing.auth_source != wanted.auth_source {
        changes.auth_source = Some(wanted.auth_source);
        changed.push("auth source".into());
    }
    if let Some(hash) = wanted.password_hash
        && store.mailbox_password_hash(&address).await?.as_deref() != Some(hash.as_str())
    {
        changes.password_hash = Some(hash);
        changed.push("password".into());
    }
    if existing.quota_mib != wanted.quota_mib {
        changes.quota_mib = Some(wanted.quota_mib);
        changed.push("quota".into());
    }
    if existing.protocols != wanted.protocols {
        changes.protocols = Some(wanted.protocols);
        changed.push("protocols".into());
    }
    if existing.active != wanted.active {
        changes.active = Some(wanted.active);
        changed.push("active".into());
    }
    if existing.force_password_change != wanted.force_password_change {
        changes.force_password_change = Some(wanted.force_password_change);
        changed.push("forced password change".into());
    }
    if existing.force_totp != wanted.force_totp {
        changes.force_totp = Some(wanted.force_totp);
        changed.push("forced TOTP enrolment".into());
    }
    if changed.is_empty() {
        return Ok(Entry::new(MAILBOX, &shown, Action::Unchanged));
    }
    if !dry_run && let Err(err) = scoped.update_mailbox(&address, changes).await {
        return refused(MAILBOX, &shown, err);
    }
    let mut entry = Entry::new(MAILBOX, &shown, Action::Updated);
    entry.changes = changed;
    Ok(entry)
}

async fn import_admin(store: &Store, from: &MailcowAdmin, dry_run: bool) -> anyhow::Result<Entry> {
    let (role, kind) = if from.superadmin { (AdminRole::Admin, ADMIN) } else { (AdminRole::DomainAdmin, DOMAIN_ADMIN) };
    let name = from.username.as_str();
    if from.password.is_empty() || gatehouse_passwords::stored_scheme(&from.password).is_none() {
        return Ok(Entry::new(kind, name, Action::Skipped).because("its password hash is not one Gatehouse verifies"));
    }
    let mut domains = Vec::new();
    for domain in &from.domains {
        match DomainName::parse(domain) {
            Ok(domain) => domains.push(domain),
            Err(err) => return Ok(Entry::new(kind, name, Action::Skipped).because(format!("{domain}: {err}"))),
        }
    }
    let acl: Vec<String> = if from.login_as { vec!["login_as".into()] } else { Vec::new() };
    let force_password_change = attribute_on(&from.attributes, "force_pw_update");
    let force_totp = attribute_on(&from.attributes, "force_tfa");
    let actor = Actor::cli();
    let Some(existing) = store.admin(role, name).await? else {
        if !dry_run {
            let created = match role {
                AdminRole::Admin => store.create_admin(&actor, name, from.password.clone()).await,
                _ => {
                    let new = NewDomainAdmin {
                        username: name.to_string(),
                        password_hash: from.password.clone(),
                        domains,
                        acl,
                    };
                    store.create_domain_admin(&actor, new).await
                }
            };
            if let Err(err) = created {
                return refused(kind, name, err);
            }
            if !from.active || force_password_change || force_totp {
                let changes = AdminChanges {
                    active: (!from.active).then_some(false),
                    force_password_change: Some(force_password_change),
                    force_totp: Some(force_totp),
                    password_hash: None,
                };
                if let Err(err) = store.update_admin(&actor, name, role, changes).await {
                    return refused(kind, name, err);
                }
            }
        }
        return Ok(Entry::new(kind, name, Action::Created));
    };
    let mut changes = DomainAdminChanges::default();
    let mut changed = Vec::new();
    if store.admin_password_hash(role, name).await?.as_deref() != Some(from.password.as_str()) {
        changes.password_hash = Some(from.password.clone());
        changed.push("password".to_string());
    }
    if existing.active != from.active {
        changes.active = Some(from.active);
        changed.push("active".into());
    }
    if existing.force_password_change != force_password_change {
        changes.force_password_change = Some(force_password_change);
        changed.push("forced password change".into());
    }
    if existing.force_totp != force_totp {
        changes.force_totp = Some(force_totp);
        changed.push("forced TOTP enrolment".into());
    }
    if role == AdminRole::DomainAdmin {
        let mut wanted: Vec<String> = domains.iter().map(|d| d.as_str().to_string()).collect();
        wanted.sort();
        if existing.domains != wanted {
            changes.domains = Some(domains);
            changed.push("domains".into());
        }
        if existing.acl != acl {
            changes.acl = Some(acl);
            changed.push("permissions".into());
        }
    }
    if changed.is_empty() {
        return Ok(Entry::new(kind, name, Action::Unchanged));
    }
    if !dry_run {
        let result = match role {
            AdminRole::Admin => {
                let changes = AdminChanges {
                    password_hash: changes.password_hash,
                    active: changes.active,
                    force_password_change: changes.force_password_change,
                    force_totp: changes.force_totp,
                };
                store.update_admin(&actor, name, role, changes).await
            }
            _ => store.update_domain_admin(&actor, name, changes).await,
        };
        if let Err(err) = result {
            return refused(kind, name, err);
        }
    }
    let mut entry = Entry::new(kind, name, Action::Updated);
    entry.changes = changed;
    Ok(entry)
}

/// A TOTP secret becomes the account's TOTP, enabled (its first one; Gatehouse keeps one per account); other
/// kinds of second factor cannot be carried over and are listed for enrolling again.
async fn import_second_factor<'a>(
    store: &Store,
    from: &'a MailcowSecondFactor,
    imported: &[String],
    has_totp: &mut Vec<&'a str>,
    dry_run: bool,
) -> anyhow::Result<Entry> {
    let name = format!("{} ({} {})", from.username, from.authmech, from.key_id);
    let skipped = |why: &str| Ok(Entry::new(SECOND_FACTOR, &name, Action::Skipped).because(why));
    if from.authmech != "totp" {
        return skipped("must enrol again: only TOTP secrets can be carried over");
    }
    if !imported.iter().any(|account| account.eq_ignore_ascii_case(&from.username)) {
        return skipped("its account was not imported");
    }
    if has_totp.iter().any(|account| account.eq_ignore_ascii_case(&from.username)) {
        return skipped("must enrol again: Gatehouse keeps one TOTP secret per account, and the first was taken");
    }
    has_totp.push(&from.username);
    let secret = from.secret.trim().to_ascii_uppercase();
    if secret.is_empty() || !secret.bytes().all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b) || b == b'=') {
        return skipped("must enrol again: its secret is not base32");
    }
    let address = MailboxAddress::parse(&from.username).ok().filter(|_| from.username.contains('@'));
    let is_mailbox = match &address {
        Some(address) => store.mailbox(address).await.is_ok(),
        None => false,
    };
    let principal = match (&address, is_mailbox) {
        (Some(address), true) => TotpPrincipal::Mailbox(address),
        _ => TotpPrincipal::Admin(&from.username),
    };
    // In a dry run the account may not exist yet.
    let current = match store.totp_secret(principal).await {
        Err(Error::NotFound { .. }) if dry_run => None,
        other => other?,
    };
    let action = match current {
        Some((current, _)) if current == secret => return Ok(Entry::new(SECOND_FACTOR, &name, Action::Unchanged)),
        Some(_) => {
            if !dry_run {
                store.disable_totp(&Actor::cli(), principal).await?;
            }
            Action::Updated
        }
        None => Action::Created,
    };
    if !dry_run {
        let actor = Actor::cli();
        if let Err(err) = store.begin_totp(&actor, principal, &secret).await {
            return refused(SECOND_FACTOR, &name, err);
        }
        // Step 0: every code from now on is new. No recovery codes: mailcow had none to carry over.
        if let Err(err) = store.confirm_totp(&actor, principal, 0, Vec::new()).await {
            return refused(SECOND_FACTOR, &name, err);
        }
    }
    Ok(Entry::new(SECOND_FACTOR, &name, action))
}

/// An app password becomes a legacy app password of its mailbox: the client keeps typing the same secret, which is
/// verified against mailcow's hash, its protocols honoured. Known by that hash when imported again.
async fn import_app_password(
    store: &Store,
    from: &MailcowAppPassword,
    imported: &[String],
    dry_run: bool,
) -> anyhow::Result<Entry> {
    let name = format!("{}: {}", from.mailbox, from.name);
    let skipped = |why: &str| Ok(Entry::new(APP_PASSWORD, &name, Action::Skipped).because(why));
    let Some(address) = MailboxAddress::parse(&from.mailbox).ok().filter(|a| imported.contains(&a.to_string())) else {
        return skipped("its mailbox was not imported");
    };
    if gatehouse_passwords::stored_scheme(&from.password).is_none() {
        return skipped("its hash is not in a scheme Gatehouse verifies");
    }
    let protocols: ProtocolSet = from.protocols.iter().filter_map(|p| p.parse::<Service>().ok()).collect();
    if protocols.is_empty() {
        return skipped("it opens no protocol");
    }
    let existing = match store.legacy_app_password_hashes(&address).await {
        Ok(existing) => existing,
        Err(Error::NotFound { .. }) if dry_run => Vec::new(),
        Err(err) => return Err(err.into()),
    };
    if existing.iter().any(|(_, hash)| *hash == from.password) {
        return Ok(Entry::new(APP_PASSWORD, &name, Action::Unchanged));
    }
    if !dry_run {
        let actor = Actor::cli();
        let new =
            NewAppPassword { name: from.name.clone(), protocols, expires_at: None, secret_hash: from.password.clone() };
        let created = match store.create_legacy_app_password(&actor, &address, new).await {
            Ok(created) => created,
            Err(err) => return refused(APP_PASSWORD, &name, err),
        };
        if !from.active {
            store.revoke_app_password(&actor, &address, created.id).await?;
        }
    }
    let mut entry = Entry::new(APP_PASSWORD, &name, Action::Created);
    if !from.active {
        entry.changes.push("inactive in mailcow: revoked".into());
    }
    Ok(entry)
}

/// The name an imported API key gets: recognisable, stable across runs, and telling nothing about the key.
fn api_key_name(key: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(key.as_bytes());
    let prefix: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("mailcow-{prefix}")
}

/// An API key is created anew with mailcow's access mode and networks: Gatehouse's REST API is not mailcow's, so
/// its scripts change anyway, and Gatehouse's keys are `gk_` tokens of which only a hash is kept. The new token
/// is shown once, in the report; running the import again finds the key by its name and changes nothing.
async fn import_api_key(store: &Store, from: &MailcowApiKey, dry_run: bool) -> anyhow::Result<Entry> {
    let name = api_key_name(&from.key);
    if !from.active {
        return Ok(Entry::new(API_KEY, &name, Action::Skipped).because("inactive in mailcow"));
    }
    let allowed_networks: Vec<String> = if from.skip_ip_check {
        Vec::new()
    } else {
        from.allow_from.split(',').map(str::trim).filter(|n| !n.is_empty()).map(str::to_string).collect()
    };
    if !from.skip_ip_check && allowed_networks.is_empty() {
        return Ok(Entry::new(API_KEY, &name, Action::Skipped).because("mailcow allows it from no address"));
    }
    if store.list_api_keys().await?.iter().any(|key| key.name == name) {
        return Ok(Entry::new(API_KEY, &name, Action::Unchanged));
    }
    let access = if from.read_write { ApiKeyAccess::ReadWrite } else { ApiKeyAccess::ReadOnly };
    let from_where = if allowed_networks.is_empty() { "anywhere".to_string() } else { allowed_networks.join(", ") };
    let mut entry = Entry::new(API_KEY, &name, Action::Created);
    entry.changes.push(format!("{access}, from {from_where}"));
    if !dry_run {
        let new = NewApiKey { name: name.clone(), access, allowed_networks, domains: Vec::new() };
        match store.create_api_key(&Actor::cli(), new).await {
            Ok((_, token)) => entry.changes.push(format!("new token (shown once): {token}")),
            Err(err) => return refused(API_KEY, &name, err),
        }
    }
    Ok(entry)
}

/// `ALLOW_ADMIN_EMAIL_LOGIN` of mailcow.conf, as the setting to give Gatehouse (a setting of the configuration,
/// not of the database).
fn admin_email_login(conf: &str) -> Entry {
    let value = conf_value(conf, "ALLOW_ADMIN_EMAIL_LOGIN").map(|value| value.to_ascii_lowercase());
    let on = matches!(value.as_deref(), Some("y" | "yes"));
    let mut entry = Entry::new(SETTING, "web.allow_admin_email_login", Action::Unchanged);
    entry.reason = Some(if on {
        "mailcow lets administrators open mailboxes' webmail (ALLOW_ADMIN_EMAIL_LOGIN=y): set \
         web.allow_admin_email_login = true in gatehouse.toml, or ALLOW_ADMIN_EMAIL_LOGIN=y in Gatehouse's \
         environment"
            .into()
    } else {
        "mailcow does not let administrators open mailboxes' webmail: Gatehouse's default (false) matches".into()
    });
    entry
}

/// An app link, matched by name: mailcow's link, per-user link (`%u` means the same in both) and hidden flag. A
/// per-user link equal to the link is kept as none (the link serves both).
async fn import_app_link(store: &Store, from: &MailcowAppLink, dry_run: bool) -> anyhow::Result<Entry> {
    let name = from.name.trim();
    let user_url = |url: &str, user_url: &str| -> Option<String> {
        let user_url = user_url.trim();
        (!user_url.is_empty() && user_url != url.trim()).then(|| user_url.to_string())
    };
    let wanted_user_url = user_url(&from.link, &from.user_link);
    let existing = store.list_app_links().await?.into_iter().find(|link| link.name == name);
    let Some(existing) = existing else {
        if !dry_run {
            let new = NewAppLink {
                name: name.to_string(),
                url: from.link.trim().to_string(),
                user_url: wanted_user_url,
                hidden_on_login: from.hidden,
            };
            if let Err(err) = store.create_app_link(&Actor::cli(), new).await {
                return refused(APP_LINK, name, err);
            }
        }
        return Ok(Entry::new(APP_LINK, name, Action::Created));
    };
    let mut changes = AppLinkChanges::default();
    let mut changed = Vec::new();
    if existing.url != from.link.trim() {
        changes.url = Some(from.link.trim().to_string());
        changed.push("url".to_string());
    }
    if user_url(&existing.url, existing.user_url.as_deref().unwrap_or("")) != wanted_user_url {
        changes.user_url = Some(wanted_user_url);
        changed.push("user_url".into());
    }
    if existing.hidden_on_login != from.hidden {
        changes.hidden_on_login = Some(from.hidden);
        changed.push("hidden_on_login".into());
    }
    if changed.is_empty() {
        return Ok(Entry::new(APP_LINK, name, Action::Unchanged));
    }
    if !dry_run && let Err(err) = store.update_app_link(&Actor::cli(), existing.id, changes).await {
        return refused(APP_LINK, name, err);
    }
    let mut entry = Entry::new(APP_LINK, name, Action::Updated);
    entry.changes = changed;
    Ok(entry)
}

/// A mailbox template: its quota (bytes in mailcow), protocol flags and active flag.
async fn import_template(store: &Store, from: &MailcowTemplate, dry_run: bool) -> anyhow::Result<Entry> {
    let name = from.name.trim();
    let bytes = from.attributes.get("quota").and_then(|q| q.as_i64().or_else(|| q.as_str()?.trim().parse().ok()));
    let quota_mib = (bytes.unwrap_or(0).max(0) + MIB - 1) / MIB;
    let protocols: ProtocolSet = Service::ALL
        .into_iter()
        .filter(|service| attribute_on(&from.attributes, &format!("{}_access", service.as_str())))
        .collect();
    let active = from.attributes.get("active").is_none() || attribute_on(&from.attributes, "active");
    let existing = store.list_templates().await?.into_iter().find(|t| t.name == name);
    let Some(existing) = existing else {
        if !dry_run {
            let new =
                NewTemplate { name: name.to_string(), quota_mib, protocols, active, attributes: serde_json::json!({}) };
            if let Err(err) = store.create_template(&Actor::cli(), new).await {
                return refused(TEMPLATE, name, err);
            }
        }
        return Ok(Entry::new(TEMPLATE, name, Action::Created));
    };
    let mut changes = TemplateChanges::default();
    let mut changed = Vec::new();
    if existing.quota_mib != quota_mib {
        changes.quota_mib = Some(quota_mib);
        changed.push("quota".to_string());
    }
    if existing.protocols != protocols {
        changes.protocols = Some(protocols);
        changed.push("protocols".into());
    }
    if existing.active != active {
        changes.active = Some(active);
        changed.push("active".into());
    }
    if changed.is_empty() {
        return Ok(Entry::new(TEMPLATE, name, Action::Unchanged));
    }
    if !dry_run && let Err(err) = store.update_template(&Actor::cli(), name, changes).await {
        return refused(TEMPLATE, name, err);
    }
    let mut entry = Entry::new(TEMPLATE, name, Action::Updated);
    entry.changes = changed;
    Ok(entry)
}

/// mailcow's identity-provider settings (key → value).
type ProviderSettings = std::collections::BTreeMap<String, String>;

/// mailcow's identity provider (one per installation) as a Gatehouse provider named after its kind (`ldap`,
/// `keycloak`), with its secret, provisioning and sync settings and its attribute mappings. Left alone when
/// Gatehouse already has a provider of that kind under another name (the mailboxes are bound to that one).
async fn import_identity_provider(store: &Store, from: &ProviderSettings, dry_run: bool) -> anyhow::Result<Entry> {
    use gatehouse_sources::dispatch::{LDAP_BIND_PASSWORD, OIDC_CLIENT_SECRET, check_provider};
    let get = |key: &str| from.get(key).map(|v| v.trim().to_string()).unwrap_or_default();
    let on = |key: &str| matches!(get(key).to_ascii_lowercase().as_str(), "1" | "true" | "on" | "yes");
    let name = get("authsource").to_ascii_lowercase();
    let (kind, secret_name, secret) = match name.as_str() {
        "ldap" => (IdentityProviderKind::Ldap, LDAP_BIND_PASSWORD, get("bindpass")),
        "keycloak" => (IdentityProviderKind::Keycloak, OIDC_CLIENT_SECRET, get("client_secret")),
        "generic-oidc" => {
            return Ok(Entry::new(PROVIDER, &name, Action::Skipped).because(
                "mailcow's generic OIDC settings name endpoints but no issuer, which Gatehouse needs to check ID \
                 tokens: add it with `gatehouse idp add NAME --type oidc --settings '{\"issuer\": …}'`",
            ));
        }
        other => return Ok(Entry::new(PROVIDER, other, Action::Skipped).because("unknown auth source")),
    };
    let mut settings = match kind {
        IdentityProviderKind::Ldap => ldap_settings(&get, &on),
        _ => serde_json::json!({
            "server_url": get("server_url").trim_end_matches('/'),
            "realm": get("realm"),
            "client_id": get("client_id"),
            "mailpassword_flow": on("mailpassword_flow"),
            "ignore_tls_errors": on("ignore_ssl_error"),
        }),
    };
    settings["create_on_login"] = (from.get("login_provisioning").is_none() || on("login_provisioning")).into();
    settings["periodic_sync"] = on("periodic_sync").into();
    settings["import_users"] = on("import_users").into();
    settings["sync_interval_minutes"] =
        get("sync_interval").parse::<u64>().ok().filter(|m| *m >= 1).unwrap_or(15).into();
    let template = get("default_template");
    if !template.is_empty() {
        settings["default_template"] = template.into();
    }
    // mappers[i] → templates[i], both JSON arrays; only templates that exist here.
    let list = |key: &str| serde_json::from_str::<Vec<String>>(&get(key)).unwrap_or_default();
    let known: Vec<String> = store.list_templates().await?.into_iter().map(|t| t.name).collect();
    let mut notes = Vec::new();
    let mut mappings = Vec::new();
    for (value, template) in list("mappers").into_iter().zip(list("templates")) {
        if value.trim().is_empty() || template.trim().is_empty() {
            continue;
        }
        if known.contains(&template) || dry_run {
            mappings.push((value, template));
        } else {
            notes.push(format!("mapping {value} → {template} left out: no such template"));
        }
    }
    let providers = store.list_identity_providers().await?;
    if let Some(other) = providers.iter().find(|p| p.kind == kind && p.name != name) {
        return Ok(Entry::new(PROVIDER, &name, Action::Skipped).because(format!(
            "Gatehouse has a {} provider already ({}): mailboxes are bound to it, and it is left as it is",
            kind.as_str(),
            other.name
        )));
    }
    let mut secrets = std::collections::BTreeMap::new();
    if !secret.is_empty() {
        secrets.insert(secret_name.to_string(), gatehouse_core::Secret::new(secret.as_str()));
    }
    let existing = providers.into_iter().find(|p| p.name == name);
    let stored: Vec<String> = existing.as_ref().map(|p| p.secret_names.clone()).unwrap_or_default();
    if let Err(err) = check_provider(kind, &settings, &secrets, &stored) {
        return refused(PROVIDER, &name, err);
    }
    let action = match &existing {
        None => Action::Created,
        Some(current) => {
            let secret_same = match store.identity_provider_secrets(&name).await?.get(secret_name) {
                Some(current) => current.expose() == secret,
                None => secret.is_empty(),
            };
            let mapped: Vec<(String, String)> =
                current.mappings.iter().map(|m| (m.attribute_value.clone(), m.template.clone())).collect();
            if current.settings == settings && secret_same && mapped == mappings {
                return Ok(Entry::new(PROVIDER, &name, Action::Unchanged));
            }
            Action::Updated
        }
    };
    if !dry_run {
        let actor = Actor::cli();
        let written = match action {
            Action::Created => {
                let new = NewIdentityProvider { name: name.clone(), kind, settings, secrets };
                store.create_identity_provider(&actor, new).await.map(|_| ())
            }
            _ => {
                let changes = IdentityProviderChanges { settings: Some(settings), active: None, secrets };
                store.update_identity_provider(&actor, &name, changes).await.map(|_| ())
            }
        };
        if let Err(err) = written {
            return refused(PROVIDER, &name, err);
        }
        store.set_attribute_mappings(&actor, &name, &mappings).await?;
    }
    let mut entry = Entry::new(PROVIDER, &name, action);
    entry.changes = notes;
    Ok(entry)
}

/// mailcow's LDAP settings in Gatehouse's terms: its filter and username field combined into one search filter.
fn ldap_settings(get: &dyn Fn(&str) -> String, on: &dyn Fn(&str) -> bool) -> serde_json::Value {
    let field = get("username_field").to_ascii_lowercase();
    let field = if field.is_empty() { "mail".to_string() } else { field };
    let filter = get("filter");
    let user_filter = if filter.is_empty() {
        format!("({field}=%u)")
    } else if filter.starts_with('(') {
        format!("(&{filter}({field}=%u))")
    } else {
        format!("(&({filter})({field}=%u))")
    };
    let security = if on("use_ssl") {
        "ldaps"
    } else if on("use_tls") {
        "starttls"
    } else {
        "plain"
    };
    let hosts: Vec<String> =
        get("host").replace(' ', "").split(',').filter(|h| !h.is_empty()).map(String::from).collect();
    let mut settings = serde_json::json!({
        "hosts": hosts,
        "security": security,
        "bind_dn": get("binddn"),
        "base_dn": get("basedn"),
        "user_filter": user_filter,
        "mail_attribute": field,
        "ignore_tls_errors": on("ignore_ssl_error"),
    });
    if let Ok(port) = get("port").parse::<u16>() {
        settings["port"] = port.into();
    }
    let attribute = get("attribute_field").to_ascii_lowercase();
    if !attribute.is_empty() {
        settings["template_attribute"] = attribute.into();
    }
    settings
}

fn print_report(report: &Report, json: bool) -> anyhow::Result<()> {
    if json {
        outln!("{}", serde_json::to_string_pretty(report)?);
        return Ok(());
    }
    for entry in &report.entries {
        let action = match entry.action {
            Action::Created => "created",
            Action::Updated => "updated",
            Action::Unchanged if entry.kind != SETTING => continue,
            Action::Unchanged => "setting",
            Action::Skipped => "skipped",
            Action::Refused => "REFUSED",
        };
        let mut line = format!("{action:<8} {:<20} {}", entry.kind, entry.name);
        if !entry.changes.is_empty() {
            line.push_str(&format!(" ({})", entry.changes.join(", ")));
        }
        if let Some(reason) = &entry.reason {
            line.push_str(&format!(": {reason}"));
        }
        outln!("{line}");
    }
    outln!(
        "domains: {}\ntemplates: {}\nidentity providers: {}\nmailboxes: {}\nadministrators: {}\nsecond factors: {}\n\
         app passwords: {}\nAPI keys: {}\napp links: {}",
        report.domains,
        report.templates,
        report.identity_providers,
        report.mailboxes,
        report.administrators,
        report.second_factors,
        report.app_passwords,
        report.api_keys,
        report.app_links
    );
    if report.dry_run {
        outln!("dry run: nothing was written (the store's rules are checked when it is)");
    }
    Ok(())
}
