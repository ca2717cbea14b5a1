//! `gatehouse import mailcow`: brings a running mailcow's domains, mailboxes, administrators, TOTP keys and app
//! passwords over, hashes exactly as mailcow stored them, so nobody resets a password or reconfigures a phone. Names are the keys: a second run updates what changed in
//! mailcow since and changes nothing else, so an operator can import, test, and import again just before
//! switching over. mailcow's database is only read. Every change goes through the same store rules (and audit
//! log) as the other commands; what a rule refuses is reported, not forced.

pub mod mailcow;

use gatehouse_core::{AdminRole, DomainName, Error, Fault, MailboxAddress, ProtocolSet, Service};
use gatehouse_store::{
    Actor, AdminChanges, ApiKeyAccess, DomainAdminChanges, DomainChanges, IdentityProvider, IdentityProviderKind,
    MailboxChanges, NewApiKey, NewAppPassword, NewDomain, NewDomainAdmin, NewMailbox, Principal, ScopedStore, Store,
    TotpPrincipal,
};
use serde::Serialize;

use self::mailcow::{
    MailcowAdmin, MailcowApiKey, MailcowAppPassword, MailcowDomain, MailcowMailbox, MailcowSecondFactor, attribute_on,
};
use super::CommandContext;
use crate::cli::ImportCommand;

/// The environment variable that may hold the password of mailcow's database, so it stays out of the process
/// list.
const PASSWORD_VARIABLE: &str = "MAILCOW_DB_PASSWORD";

const MIB: i64 = 1024 * 1024;

/// The kinds of report entries.
const DOMAIN: &str = "domain";
const MAILBOX: &str = "mailbox";
const ADMIN: &str = "administrator";
const DOMAIN_ADMIN: &str = "domain administrator";
const SECOND_FACTOR: &str = "second factor";
const APP_PASSWORD: &str = "app password";
const API_KEY: &str = "API key";
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
            SETTING => {}
            _ => self.second_factors.count(entry.action),
        }
        self.entries.push(entry);
    }
}

/// Runs `gatehouse import mailcow`.
pub async fn run(ctx: &CommandContext, command: ImportCommand) -> anyhow::Result<()> {
    let ImportCommand::Mailcow { from, dry_run, json, mailcow_conf } = command;
    let url = source_url(&from)?;
    let data = mailcow::read(&url).await?;
    let store = ctx.store().await?;
    let scoped = store.scoped(Principal::cli());
    let providers = store.list_identity_providers().await?;
    let progress = if json {
        indicatif::ProgressBar::hidden()
    } else {
        let total = data.domains.len()
            + data.mailboxes.len()
            + data.admins.len()
            + data.second_factors.len()
            + data.app_passwords.len()
            + data.api_keys.len();
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
        entries: Vec::new(),
    };
    let mut deferred = Deferred::default();
    for domain in &data.domains {
        report.add(import_domain(&scoped, domain, dry_run, &mut deferred).await?);
        progress.inc(1);
    }
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
    if let Some(path) = &mailcow_conf {
        report.add(admin_email_login(path)?);
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
fn wanted(from: &MailcowMailbox, address: &MailboxAddress, providers: &[IdentityProvider]) -> Result<Wanted, String> {
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
            let matching: Vec<&IdentityProvider> = providers.iter().filter(|p| p.kind == kind).collect();
            match matching.as_slice() {
                [provider] => (provider.name.clone(), None),
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
    providers: &[IdentityProvider],
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
fn admin_email_login(path: &std::path::Path) -> anyhow::Result<Entry> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| super::ConfigProblem(format!("--mailcow-conf {}: {err}", path.display())))?;
    let value = text
        .lines()
        .filter_map(|line| line.trim().strip_prefix("ALLOW_ADMIN_EMAIL_LOGIN="))
        .next_back()
        .map(|value| value.trim().trim_matches(['"', '\'']).to_ascii_lowercase());
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
    Ok(entry)
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
        "domains: {}\nmailboxes: {}\nadministrators: {}\nsecond factors: {}\napp passwords: {}\nAPI keys: {}",
        report.domains,
        report.mailboxes,
        report.administrators,
        report.second_factors,
        report.app_passwords,
        report.api_keys
    );
    if report.dry_run {
        outln!("dry run: nothing was written (the store's rules are checked when it is)");
    }
    Ok(())
}
