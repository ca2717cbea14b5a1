//! Provisioning shared by every identity provider: what an account at the source means for its mailbox.
//!
//! - [`account_changes`]: the update one account asks for (template re-applied when the mapped value or the
//!   template changed, display name, subject); used on every login and by the sync. It never activates a
//!   mailbox, except one that this provider's own sync deactivated and whose account came back.
//! - [`plan_sync`]: a whole sync run decided up front, from the complete list of accounts and the mailboxes in
//!   the store, so that a run that would do harm (the source returned nothing, or too many mailboxes would be
//!   deactivated) is refused before anything changes, and a dry run shows exactly what a real run would do.
//! - [`apply_plan`]: carries a plan out (new mailboxes in batches, each mailbox in its own savepoint; other
//!   changes one transaction each), so an interrupted run loses nothing it finished and the
//!   next run continues where it stopped.
//!
//! The source-specific parts (listing accounts, checking passwords) live with each source.

use std::collections::{BTreeMap, HashMap};

use gatehouse_core::{Error, Fault, MailboxAddress};
use gatehouse_store::{
    Actor, ActorRole, DEPROVISIONED_BY, Domain, IdentityProvider, Mailbox, MailboxChanges, NewMailbox, Store,
    TEMPLATE_HASH,
};
use serde::{Deserialize, Serialize};

use crate::{ExternalAccount, select_template};

/// What a sync does with mailboxes whose account disappeared from the source or was disabled there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DeprovisionPolicy {
    /// Leave them as they are (they can no longer log in through the provider anyway).
    #[default]
    Ignore,
    /// Deactivate them (never delete: the mail stays until an admin decides).
    Deactivate,
}

impl std::fmt::Display for DeprovisionPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DeprovisionPolicy::Ignore => "ignore",
            DeprovisionPolicy::Deactivate => "deactivate",
        })
    }
}

/// The provisioning settings every identity provider has, embedded in each kind's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvisioningSettings {
    /// Create the mailbox when an account without one logs in (in an existing, active domain).
    #[serde(default)]
    pub create_on_login: bool,
    /// Template for new mailboxes whose values match no mapping (never used for updates); without it they are
    /// refused.
    #[serde(default)]
    pub default_template: Option<String>,
    /// The periodic sync updates existing mailboxes of this provider.
    #[serde(default)]
    pub periodic_sync: bool,
    /// The periodic sync creates mailboxes for accounts that have none.
    #[serde(default)]
    pub import_users: bool,
    /// Minutes between periodic runs.
    #[serde(default = "default_sync_interval")]
    pub sync_interval_minutes: u64,
    /// What happens to mailboxes whose account is gone or disabled.
    #[serde(default)]
    pub deprovision: DeprovisionPolicy,
    /// A run that would deactivate more than this share (percent) of the provider's mailboxes is refused.
    #[serde(default = "default_threshold")]
    pub deprovision_threshold_percent: u8,
}

fn default_sync_interval() -> u64 {
    15
}

fn default_threshold() -> u8 {
    10
}

impl Default for ProvisioningSettings {
    fn default() -> Self {
        ProvisioningSettings {
            create_on_login: false,
            default_template: None,
            periodic_sync: false,
            import_users: false,
            sync_interval_minutes: default_sync_interval(),
            deprovision: DeprovisionPolicy::Ignore,
            deprovision_threshold_percent: default_threshold(),
        }
    }
}

impl ProvisioningSettings {
    /// The settings within their bounds (an interval of at least a minute, a threshold of at most 100 %).
    pub fn bounded(&self) -> Self {
        ProvisioningSettings {
            sync_interval_minutes: self.sync_interval_minutes.max(1),
            deprovision_threshold_percent: self.deprovision_threshold_percent.min(100),
            ..self.clone()
        }
    }

    /// Whether periodic runs are wanted at all.
    pub fn sync_enabled(&self) -> bool {
        self.periodic_sync || self.import_users || self.deprovision == DeprovisionPolicy::Deactivate
    }
}

/// The template an account's values select, through the provider's mappings (value → template).
pub fn mapped_template<'m>(account: &ExternalAccount, mappings: &'m [(String, String)]) -> Option<&'m str> {
    select_template(&account.template_values, mappings)
}

/// The template a new mailbox for `account` gets: the mapped one, else the provider's default; without either
/// the mailbox is not created, and the error says why.
pub fn template_for_new(
    account: &ExternalAccount,
    mappings: &[(String, String)],
    settings: &ProvisioningSettings,
) -> Result<String, String> {
    mapped_template(account, mappings).map(str::to_string).or_else(|| settings.default_template.clone()).ok_or_else(
        || format!("no template is mapped from {:?} and there is no default template", account.template_values),
    )
}

/// The mailbox created for `account` of `provider` (on first login or by a sync).
pub fn new_mailbox(provider: &str, address: MailboxAddress, template: String, account: ExternalAccount) -> NewMailbox {
    let mut new = NewMailbox::new(address);
    new.display_name = account.mailbox_display_name();
    new.auth_source = Some(provider.to_string());
    new.template = Some(template);
    new.external_id = Some(account.subject).filter(|s| !s.is_empty());
    new
}

/// A stored provider's mappings as (attribute value, template) pairs.
pub fn provider_mappings(provider: &IdentityProvider) -> Vec<(String, String)> {
    provider.mappings.iter().map(|m| (m.attribute_value.clone(), m.template.clone())).collect()
}

/// Who a provider's changes are recorded as in the audit log.
pub fn provider_actor(provider: &str) -> Actor {
    Actor { name: format!("idp:{provider}"), role: ActorRole::System }
}

/// The changes `account` asks for on its existing `mailbox`, or `None` when the mailbox is up to date.
/// `mapped` is the template the account's values map to; `templates` holds the current hash of each template.
/// The template is re-applied when the mapped template differs from the mailbox's or was edited since it was
/// applied. The mailbox's `active` flag is never touched, except to undo a deactivation by `provider`'s own
/// sync.
pub fn account_changes(
    provider: &str,
    mailbox: &Mailbox,
    account: &ExternalAccount,
    mapped: Option<&str>,
    templates: &HashMap<String, String>,
) -> Option<MailboxChanges> {
    let mut changes = MailboxChanges::default();
    let mut changed = false;
    if let Some(template) = mapped {
        let applied_hash = mailbox.attributes.get(TEMPLATE_HASH).and_then(|v| v.as_str());
        let current_hash = templates.get(template).map(String::as_str);
        if mailbox.template.as_deref() != Some(template) || (current_hash.is_some() && applied_hash != current_hash) {
            changes.template = Some(template.to_string());
            changed = true;
        }
    }
    if let Some(name) = account.mailbox_display_name()
        && name != mailbox.display_name
    {
        changes.display_name = Some(name);
        changed = true;
    }
    if !account.subject.is_empty() && mailbox.external_id.as_deref() != Some(account.subject.as_str()) {
        changes.external_id = Some(account.subject.clone());
        changed = true;
    }
    let deprovisioned_here = mailbox.attributes.get(DEPROVISIONED_BY).and_then(|v| v.as_str()) == Some(provider);
    if !mailbox.active && deprovisioned_here && account.enabled {
        changes.deprovisioned_by = Some(None);
        changed = true;
    }
    changed.then_some(changes)
}

/// One change a sync makes.
#[derive(Debug, Clone)]
pub enum SyncAction {
    /// Create a mailbox for an account that has none.
    Create {
        /// The new mailbox.
        address: MailboxAddress,
        /// Its template.
        template: String,
        /// The account.
        account: ExternalAccount,
    },
    /// Update a mailbox from its account.
    Update {
        /// The mailbox.
        address: MailboxAddress,
        /// What changes.
        changes: MailboxChanges,
    },
    /// Deactivate a mailbox whose account is gone or disabled.
    Deactivate {
        /// The mailbox.
        address: MailboxAddress,
        /// Why (gone, or disabled at the source).
        reason: String,
    },
}

impl SyncAction {
    /// The mailbox the action is about.
    pub fn address(&self) -> &MailboxAddress {
        match self {
            SyncAction::Create { address, .. }
            | SyncAction::Update { address, .. }
            | SyncAction::Deactivate { address, .. } => address,
        }
    }
}

/// An account or mailbox a sync leaves alone, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// The address (or the source's subject when the account has no usable address).
    pub address: String,
    /// Why.
    pub reason: String,
}

/// A whole sync run, decided before anything changes.
#[derive(Debug, Clone, Default)]
pub struct SyncPlan {
    /// Entries the source returned.
    pub entries: usize,
    /// The changes, in address order.
    pub actions: Vec<SyncAction>,
    /// Mailboxes already matching their accounts.
    pub unchanged: usize,
    /// Mailboxes whose account is gone or disabled, left alone by the `ignore` policy.
    pub missing_ignored: usize,
    /// Accounts without a mailbox that the run does not import (import is off, or the account is disabled).
    pub not_imported: usize,
    /// Accounts and mailboxes left alone, with the reason.
    pub skipped: Vec<Skipped>,
}

/// The provider and its settings, as [`plan_sync`] needs them.
pub struct SyncInput<'a> {
    /// Provider name (the mailboxes' auth source).
    pub provider: &'a str,
    /// Its provisioning settings.
    pub settings: &'a ProvisioningSettings,
    /// Its mappings, attribute value → template.
    pub mappings: &'a [(String, String)],
    /// The hash of every template, by name.
    pub templates: &'a HashMap<String, String>,
    /// The hosted domains, by (ASCII) name, so that a plan (and a dry run) already leaves out mailboxes the
    /// domain rules would refuse: a missing or inactive domain, or one that is full.
    pub domains: &'a HashMap<String, Domain>,
}

/// Decides a sync run from the complete list of `accounts` and every mailbox in the store. Refuses (with the
/// reason, changing nothing) when the source returned no entries at all, or when the run would deactivate
/// more than the configured share of the provider's mailboxes.
pub fn plan_sync(
    input: &SyncInput<'_>,
    accounts: Vec<ExternalAccount>,
    mailboxes: &[Mailbox],
) -> Result<SyncPlan, String> {
    let provider = input.provider;
    let settings = input.settings;
    if accounts.is_empty() {
        return Err(format!(
            "the source returned no entries; nothing was changed (a wrong base or filter, or an empty answer from a \
             broken server, must not deprovision every mailbox of {provider})"
        ));
    }
    let mut plan = SyncPlan { entries: accounts.len(), ..SyncPlan::default() };

    // Accounts by address; an address held by several entries is ambiguous and left alone, as at login.
    let mut by_address: BTreeMap<String, Vec<ExternalAccount>> = BTreeMap::new();
    for account in accounts {
        let address = account.address.trim().to_lowercase();
        if address.is_empty() {
            plan.skipped
                .push(Skipped { address: account.subject.clone(), reason: "the entry has no mail address".into() });
            continue;
        }
        by_address.entry(address).or_default().push(account);
    }
    let existing: HashMap<&str, &Mailbox> = mailboxes.iter().map(|m| (m.address.as_str(), m)).collect();
    // Mailboxes this plan creates per domain, against the domain's limit.
    let mut creations: HashMap<String, i64> = HashMap::new();
    let planned = |creations: &HashMap<String, i64>, domain: &str| creations.get(domain).copied().unwrap_or(0);

    for (text, mut entries) in by_address.iter().map(|(a, e)| (a.clone(), e.clone())) {
        if entries.len() > 1 {
            plan.skipped
                .push(Skipped { address: text, reason: format!("{} entries have this address", entries.len()) });
            continue;
        }
        let account = entries.remove(0);
        let address = match MailboxAddress::parse(&text) {
            Ok(address) => address,
            Err(err) => {
                plan.skipped.push(Skipped { address: text, reason: format!("not a usable mail address: {err}") });
                continue;
            }
        };
        let mapped = mapped_template(&account, input.mappings);
        match existing.get(text.as_str()) {
            Some(mailbox) if mailbox.auth_source != provider => {
                plan.skipped.push(Skipped {
                    address: text,
                    reason: format!("the mailbox exists with auth source '{}'", mailbox.auth_source),
                });
            }
            // Disabled accounts are handled with the missing ones below.
            Some(_) if !account.enabled => {}
            Some(mailbox) => {
                let changes = account_changes(provider, mailbox, &account, mapped, input.templates);
                match changes {
                    // Without periodic_sync only the sync's own deactivations are undone.
                    Some(changes) if settings.periodic_sync => {
                        plan.actions.push(SyncAction::Update { address, changes })
                    }
                    Some(MailboxChanges { deprovisioned_by: Some(None), .. }) => {
                        let changes = MailboxChanges { deprovisioned_by: Some(None), ..MailboxChanges::default() };
                        plan.actions.push(SyncAction::Update { address, changes });
                    }
                    _ => plan.unchanged += 1,
                }
            }
            None if !account.enabled || !settings.import_users => plan.not_imported += 1,
            None => {
                let template = template_for_new(&account, input.mappings, settings);
                let domain = address.domain().as_str();
                let refusal = match input.domains.get(domain) {
                    None => Some(format!("domain {domain} is not hosted here")),
                    Some(d) if !d.active => Some(format!("domain {domain} is inactive")),
                    Some(d) if d.max_mailboxes > 0 && d.mailboxes + planned(&creations, domain) >= d.max_mailboxes => {
                        Some(format!("domain {domain} is full ({} mailboxes allowed)", d.max_mailboxes))
                    }
                    Some(_) => None,
                };
                if let Some(reason) = refusal {
                    plan.skipped.push(Skipped { address: text, reason });
                    continue;
                }
                match template {
                    Ok(template) => {
                        *creations.entry(domain.to_string()).or_default() += 1;
                        plan.actions.push(SyncAction::Create { address, template, account })
                    }
                    Err(reason) => plan.skipped.push(Skipped { address: text, reason }),
                }
            }
        }
    }

    // Mailboxes of this provider whose account is gone or disabled.
    let own: Vec<&Mailbox> = mailboxes.iter().filter(|m| m.auth_source == provider).collect();
    let mut deactivations = Vec::new();
    for mailbox in &own {
        let reason = match by_address.get(mailbox.address.as_str()) {
            None => "the account is gone from the source",
            Some(entries) if entries.len() == 1 && !entries[0].enabled => "the account is disabled at the source",
            Some(_) => continue,
        };
        if !mailbox.active {
            continue;
        }
        match settings.deprovision {
            DeprovisionPolicy::Ignore => plan.missing_ignored += 1,
            DeprovisionPolicy::Deactivate => match MailboxAddress::parse(&mailbox.address) {
                Ok(address) => deactivations.push(SyncAction::Deactivate { address, reason: reason.into() }),
                Err(err) => plan.skipped.push(Skipped { address: mailbox.address.clone(), reason: err.to_string() }),
            },
        }
    }
    let limit = own.len() * usize::from(settings.deprovision_threshold_percent) / 100;
    if deactivations.len() > limit {
        return Err(format!(
            "the run would deactivate {} of the {} mailboxes of {provider}, more than the threshold of {}% ({limit}); \
             nothing was changed. Check the source, or raise deprovision_threshold_percent if this is intended",
            deactivations.len(),
            own.len(),
            settings.deprovision_threshold_percent
        ));
    }
    plan.actions.extend(deactivations);
    Ok(plan)
}

/// What a sync run did (or, for a dry run, would do).
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncReport {
    /// The provider.
    pub provider: String,
    /// Whether nothing was changed on purpose.
    pub dry_run: bool,
    /// Entries the source returned.
    pub entries: usize,
    /// Mailboxes created.
    pub created: usize,
    /// Mailboxes updated.
    pub updated: usize,
    /// Mailboxes deactivated.
    pub deactivated: usize,
    /// Mailboxes already up to date.
    pub unchanged: usize,
    /// Mailboxes whose account is gone, left alone by the `ignore` policy.
    pub missing_ignored: usize,
    /// Accounts without a mailbox that were not imported.
    pub not_imported: usize,
    /// How many accounts or mailboxes were skipped.
    pub skipped: usize,
    /// The first skipped ones, with reasons (at most [`SKIPPED_SHOWN`]).
    pub skipped_examples: Vec<Skipped>,
    /// Milliseconds the run took.
    pub duration_ms: u128,
}

/// New mailboxes created per transaction by a sync.
const CREATE_BATCH: usize = 250;

/// How many skipped entries a report lists by name.
pub const SKIPPED_SHOWN: usize = 100;

impl SyncReport {
    fn skip(&mut self, skipped: Skipped) {
        self.skipped += 1;
        if self.skipped_examples.len() < SKIPPED_SHOWN {
            self.skipped_examples.push(skipped);
        }
    }

    /// A one-line summary.
    pub fn summary(&self) -> String {
        format!(
            "{}{}: {} entries; {} created, {} updated, {} deactivated, {} unchanged, {} missing (ignored), {} not \
             imported, {} skipped",
            self.provider,
            if self.dry_run { " (dry run)" } else { "" },
            self.entries,
            self.created,
            self.updated,
            self.deactivated,
            self.unchanged,
            self.missing_ignored,
            self.not_imported,
            self.skipped
        )
    }
}

/// Carries out `plan`: new mailboxes in batches of [`CREATE_BATCH`] per transaction (each in its own savepoint),
/// every other change in its own transaction. Changes a rule refuses (domain missing or full, quota) are
/// skipped with the reason; a server fault (the database went away) stops the run with the error and the
/// report of what was done so far. With `dry_run` nothing is written and the report says what would happen.
/// `progress` is called after each action with (done, total).
pub async fn apply_plan(
    store: &Store,
    provider: &str,
    plan: SyncPlan,
    dry_run: bool,
    progress: &(dyn Fn(usize, usize) + Send + Sync),
) -> (SyncReport, Result<(), Error>) {
    let mut report = SyncReport {
        provider: provider.to_string(),
        dry_run,
        entries: plan.entries,
        unchanged: plan.unchanged,
        missing_ignored: plan.missing_ignored,
        not_imported: plan.not_imported,
        ..SyncReport::default()
    };
    for skipped in plan.skipped {
        report.skip(skipped);
    }
    let actor = provider_actor(provider);
    let total = plan.actions.len();
    let mut done = 0;
    // New mailboxes go in batches (one durable commit per batch, a savepoint per mailbox); the rest one by one.
    let (creates, others): (Vec<SyncAction>, Vec<SyncAction>) =
        plan.actions.into_iter().partition(|a| matches!(a, SyncAction::Create { .. }));
    let mut creates = creates.into_iter().peekable();
    while creates.peek().is_some() {
        let batch: Vec<SyncAction> = creates.by_ref().take(CREATE_BATCH).collect();
        let addresses: Vec<String> = batch.iter().map(|a| a.address().to_string()).collect();
        let outcomes = if dry_run {
            batch.iter().map(|_| Ok(())).collect()
        } else {
            let news = batch
                .into_iter()
                .filter_map(|action| match action {
                    SyncAction::Create { address, template, account } => {
                        Some(new_mailbox(provider, address, template, account))
                    }
                    _ => None,
                })
                .collect();
            match store.create_mailboxes(&actor, news).await {
                Ok(outcomes) => outcomes.into_iter().map(|o| o.map(drop)).collect::<Vec<_>>(),
                Err(err) => return (report, Err(err)),
            }
        };
        done += addresses.len();
        for (address, outcome) in addresses.into_iter().zip(outcomes) {
            match outcome {
                Ok(()) => report.created += 1,
                Err(err) => report.skip(Skipped { address, reason: err.to_string() }),
            }
        }
        progress(done, total);
    }
    for action in others {
        let address = action.address().to_string();
        let outcome = if dry_run {
            Ok(())
        } else {
            match &action {
                SyncAction::Create { .. } => unreachable!("creations went in batches"),
                SyncAction::Update { address, changes } => {
                    store.update_mailbox(&actor, address, changes.clone()).await.map(drop)
                }
                SyncAction::Deactivate { address, reason } => {
                    tracing::info!(provider, %address, reason, "deactivating the mailbox");
                    let changes =
                        MailboxChanges { deprovisioned_by: Some(Some(provider.to_string())), ..Default::default() };
                    store.update_mailbox(&actor, address, changes).await.map(drop)
                }
            }
        };
        match outcome {
            Ok(()) => match action {
                SyncAction::Create { .. } => report.created += 1,
                SyncAction::Update { .. } => report.updated += 1,
                SyncAction::Deactivate { .. } => report.deactivated += 1,
            },
            Err(err) if err.fault() == Fault::Client => report.skip(Skipped { address, reason: err.to_string() }),
            Err(err) => return (report, Err(err)),
        }
        done += 1;
        progress(done, total);
    }
    (report, Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_core::ProtocolSet;
    use serde_json::json;

    fn settings(policy: DeprovisionPolicy) -> ProvisioningSettings {
        ProvisioningSettings {
            create_on_login: false,
            default_template: Some("default".into()),
            periodic_sync: true,
            import_users: true,
            sync_interval_minutes: 15,
            deprovision: policy,
            deprovision_threshold_percent: 50,
        }
    }

    fn account(address: &str, values: &[&str]) -> ExternalAccount {
        ExternalAccount {
            subject: format!("uid={address}"),
            address: address.into(),
            display_name: Some(address.to_uppercase()),
            enabled: true,
            template_values: values.iter().map(|v| v.to_string()).collect(),
            ..ExternalAccount::default()
        }
    }

    fn mailbox(address: &str, source: &str, template: &str, hash: &str) -> Mailbox {
        Mailbox {
            id: 1,
            revision: 0,
            scim_deleted: false,
            address: address.into(),
            local_part: address.split('@').next().unwrap().into(),
            domain: address.split('@').nth(1).unwrap().into(),
            display_name: address.to_uppercase(),
            auth_source: source.into(),
            has_local_password: false,
            template: Some(template.into()),
            quota_mib: 1024,
            protocols: ProtocolSet::ALL,
            active: true,
            force_password_change: false,
            force_totp: false,
            external_id: Some(format!("uid={address}")),
            attributes: json!({ "template_hash": hash }),
            created_at: 0,
            modified_at: 0,
        }
    }

    fn plan(
        policy: DeprovisionPolicy,
        accounts: Vec<ExternalAccount>,
        mailboxes: &[Mailbox],
    ) -> Result<SyncPlan, String> {
        let settings = settings(policy);
        let mappings = vec![("staff".to_string(), "staff".to_string()), ("it".to_string(), "it".to_string())];
        let templates: HashMap<String, String> =
            [("staff", "h-staff"), ("it", "h-it"), ("default", "h-default")].map(|(a, b)| (a.into(), b.into())).into();
        let mut domain = Domain {
            name: "example.org".into(),
            unicode_name: "example.org".into(),
            description: String::new(),
            active: true,
            max_mailboxes: 12,
            default_quota_mib: 0,
            max_quota_mib: 0,
            total_quota_mib: 0,
            mailboxes: mailboxes.iter().filter(|m| m.domain == "example.org").count() as i64,
            quota_used_mib: 0,
            created_at: 0,
            modified_at: 0,
        };
        let mut domains = HashMap::from([("example.org".to_string(), domain.clone())]);
        domain.name = "closed.example".into();
        domain.active = false;
        domains.insert(domain.name.clone(), domain);
        let input = SyncInput {
            provider: "corp",
            settings: &settings,
            mappings: &mappings,
            templates: &templates,
            domains: &domains,
        };
        plan_sync(&input, accounts, mailboxes)
    }

    #[test]
    fn creates_updates_and_leaves_alone() {
        let mailboxes = vec![
            mailbox("same@example.org", "corp", "staff", "h-staff"),
            mailbox("moved@example.org", "corp", "staff", "h-staff"),
            mailbox("edited@example.org", "corp", "it", "h-it-old"),
            mailbox("local@example.org", "local", "staff", "h-staff"),
        ];
        let accounts = vec![
            account("same@example.org", &["staff"]),
            account("moved@example.org", &["other", "it"]),
            account("edited@example.org", &["it"]),
            account("local@example.org", &["staff"]),
            account("new@example.org", &["it"]),
            account("plain@example.org", &[]),
            account("guest@elsewhere.test", &[]),
            account("shut@closed.example", &[]),
            account("twice@example.org", &[]),
            account("twice@example.org", &[]),
            account("", &[]),
        ];
        let plan = plan(DeprovisionPolicy::Ignore, accounts, &mailboxes).unwrap();
        assert_eq!(plan.entries, 11);
        assert_eq!(plan.unchanged, 1);
        let summary: Vec<String> = plan
            .actions
            .iter()
            .map(|a| match a {
                SyncAction::Create { address, template, .. } => format!("create {address} {template}"),
                SyncAction::Update { address, changes } => format!("update {address} {:?}", changes.template),
                SyncAction::Deactivate { address, .. } => format!("deactivate {address}"),
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                "update edited@example.org Some(\"it\")",
                "update moved@example.org Some(\"it\")",
                "create new@example.org it",
                "create plain@example.org default",
            ]
        );
        let reasons: Vec<&str> = plan.skipped.iter().map(|s| s.reason.as_str()).collect();
        assert_eq!(reasons.len(), 5, "{reasons:?}");
        assert!(reasons.contains(&"domain elsewhere.test is not hosted here"));
        assert!(reasons.contains(&"domain closed.example is inactive"));
        assert!(reasons.contains(&"the entry has no mail address"));
        assert!(reasons.contains(&"2 entries have this address"));
        assert!(reasons.contains(&"the mailbox exists with auth source 'local'"));
    }

    #[test]
    fn deprovisioning_follows_the_policy_and_the_threshold() {
        let mailboxes: Vec<Mailbox> =
            (0..10).map(|n| mailbox(&format!("u{n}@example.org"), "corp", "staff", "h-staff")).collect();
        let mut accounts: Vec<ExternalAccount> =
            (0..8).map(|n| account(&format!("u{n}@example.org"), &["staff"])).collect();
        accounts[0].enabled = false;
        let ignored = plan(DeprovisionPolicy::Ignore, accounts.clone(), &mailboxes).unwrap();
        assert!(ignored.actions.is_empty());
        assert_eq!(ignored.missing_ignored, 3);
        let deactivate = plan(DeprovisionPolicy::Deactivate, accounts.clone(), &mailboxes).unwrap();
        let gone: Vec<String> = deactivate.actions.iter().map(|a| a.address().to_string()).collect();
        assert_eq!(gone, vec!["u0@example.org", "u8@example.org", "u9@example.org"]);

        // Seven of ten (u0 disabled, u4–u9 gone) is above the 50 % threshold: refused, nothing planned.
        let err = plan(DeprovisionPolicy::Deactivate, accounts[..4].to_vec(), &mailboxes).unwrap_err();
        assert!(err.contains("would deactivate 7 of the 10"), "{err}");
        let err = plan(DeprovisionPolicy::Deactivate, vec![], &mailboxes).unwrap_err();
        assert!(err.contains("no entries"), "{err}");
        let err = plan(DeprovisionPolicy::Ignore, vec![], &mailboxes).unwrap_err();
        assert!(err.contains("no entries"), "{err}");
    }

    #[test]
    fn only_the_syncs_own_deactivation_is_undone() {
        let mut by_sync = mailbox("back@example.org", "corp", "staff", "h-staff");
        by_sync.active = false;
        by_sync.attributes = json!({ "template_hash": "h-staff", "deprovisioned_by": "corp" });
        let mut by_admin = mailbox("held@example.org", "corp", "staff", "h-staff");
        by_admin.active = false;
        let templates: HashMap<String, String> = [("staff".to_string(), "h-staff".to_string())].into();
        let back = account("back@example.org", &["staff"]);
        let held = account("held@example.org", &["staff"]);
        let changes = account_changes("corp", &by_sync, &back, Some("staff"), &templates).unwrap();
        assert_eq!(changes.deprovisioned_by, Some(None));
        assert_eq!(changes.template, None);
        assert!(account_changes("corp", &by_admin, &held, Some("staff"), &templates).is_none(), "never re-activated");
        assert!(account_changes("other", &by_sync, &back, Some("staff"), &templates).is_none());
    }
}

#[cfg(test)]
mod limits {
    use super::*;

    #[test]
    fn a_full_domain_is_reported_before_anything_is_written() {
        let settings = ProvisioningSettings {
            create_on_login: false,
            default_template: Some("default".into()),
            periodic_sync: true,
            import_users: true,
            sync_interval_minutes: 15,
            deprovision: DeprovisionPolicy::Ignore,
            deprovision_threshold_percent: 10,
        };
        let domain = Domain {
            name: "example.org".into(),
            unicode_name: "example.org".into(),
            description: String::new(),
            active: true,
            max_mailboxes: 3,
            default_quota_mib: 0,
            max_quota_mib: 0,
            total_quota_mib: 0,
            mailboxes: 1,
            quota_used_mib: 0,
            created_at: 0,
            modified_at: 0,
        };
        let domains = HashMap::from([("example.org".to_string(), domain)]);
        let templates = HashMap::new();
        let input = SyncInput {
            provider: "corp",
            settings: &settings,
            mappings: &[],
            templates: &templates,
            domains: &domains,
        };
        let accounts = (0..4)
            .map(|n| ExternalAccount { address: format!("n{n}@example.org"), enabled: true, ..Default::default() })
            .collect();
        let plan = plan_sync(&input, accounts, &[]).unwrap();
        assert_eq!(plan.actions.len(), 2, "one mailbox exists, three are allowed");
        assert_eq!(plan.skipped.len(), 2);
        assert!(plan.skipped[0].reason.contains("is full"), "{:?}", plan.skipped);
    }
}
