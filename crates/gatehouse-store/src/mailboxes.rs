//! Mailboxes, and the rules every mailbox change obeys (the same for the CLI, the web UI, the API and IdP
//! provisioning): the domain exists and is active; the domain's mailbox limit and quotas hold; the address is
//! unique; the auth source is `local` or a configured identity provider; switching the auth source keeps the
//! stored local hash, so switching back restores the old password.

use std::collections::HashMap;

use gatehouse_core::text::{MAX_FREE_TEXT, check_free_text};
use gatehouse_core::{DomainName, Error, MailboxAddress, ProtocolSet, Result};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, ModelTrait, NotSet, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, TransactionTrait,
};
use serde::Serialize;
use serde_json::json;

use crate::domains::{check_quota, usage};
use crate::entity::{domain, identity_provider, mailbox, mailbox_template};
use crate::listing::{Page, Window, any_contains};
use crate::logs::audit;
use crate::scim_users::{ScimUser, check_scim_user_name, set_scim_user};
use crate::templates::{parse_protocols, template_hash, template_row};
use crate::{Actor, Store, commit, db_err, now};

/// The auth source of mailboxes whose password Gatehouse itself stores.
pub const LOCAL_AUTH_SOURCE: &str = "local";

/// The order of a mailbox list (ties are broken by address).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MailboxOrder {
    /// By address.
    #[default]
    Address,
    /// By display name.
    DisplayName,
    /// By quota (unlimited, 0, first).
    Quota,
    /// By auth source.
    AuthSource,
    /// Inactive first.
    Active,
}

/// A search of the mailboxes, answered a page at a time ([`Store::search_mailboxes`]).
#[derive(Debug, Clone, Default)]
pub struct MailboxSearch {
    /// Only mailboxes of these domains (`None`: of every domain).
    pub domains: Option<Vec<DomainName>>,
    /// Only mailboxes whose address or display name contains this, ignoring case.
    pub text: Option<String>,
    /// Only active (`true`) or inactive (`false`) mailboxes.
    pub active: Option<bool>,
    /// Only mailboxes of this auth source.
    pub auth_source: Option<String>,
    /// The order.
    pub order: MailboxOrder,
    /// Reverse the order.
    pub descending: bool,
    /// Which page.
    pub window: Window,
}

/// A mailbox, as shown to operators. The password hash is never included.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Mailbox {
    /// Row id: stable, never reused (SCIM's `id`).
    #[serde(skip)]
    pub id: i64,
    /// Counts the changes made to the mailbox (SCIM's `meta.version`).
    #[serde(skip)]
    pub revision: i64,
    /// A SCIM client deleted the User this mailbox was (the mailbox is kept, and deactivated).
    #[serde(skip)]
    pub scim_deleted: bool,
    /// Full address.
    pub address: String,
    /// Part before `@`.
    pub local_part: String,
    /// Domain (ASCII).
    pub domain: String,
    /// Display name.
    pub display_name: String,
    /// `local` or the name of an identity provider.
    pub auth_source: String,
    /// Whether a local password hash is stored (kept when the auth source changes).
    pub has_local_password: bool,
    /// Template it was made from or last synchronised with.
    pub template: Option<String>,
    /// Quota; 0 means unlimited.
    pub quota_mib: i64,
    /// Protocols the mailbox may use.
    pub protocols: ProtocolSet,
    /// Inactive mailboxes refuse every login.
    pub active: bool,
    /// The user must choose a new password before anything else.
    pub force_password_change: bool,
    /// The user must set up TOTP before anything else in the web UI.
    pub force_totp: bool,
    /// Subject id at the identity provider, for IdP-bound mailboxes.
    pub external_id: Option<String>,
    /// Other attributes, including `template_hash` of the applied template (Gatehouse's own bookkeeping, which
    /// serialised output leaves out: see [`public_attributes`]).
    #[serde(serialize_with = "serialize_public_attributes")]
    pub attributes: serde_json::Value,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub modified_at: i64,
}

/// A mailbox's attributes as shown to people and clients: without the keys Gatehouse keeps for itself
/// ([`TEMPLATE_HASH`]).
pub fn public_attributes(attributes: &serde_json::Value) -> serde_json::Value {
    match attributes {
        serde_json::Value::Object(map) => serde_json::Value::Object(
            map.iter().filter(|(key, _)| *key != TEMPLATE_HASH).map(|(k, v)| (k.clone(), v.clone())).collect(),
        ),
        other => other.clone(),
    }
}

fn serialize_public_attributes<S: serde::Serializer>(
    attributes: &serde_json::Value,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&public_attributes(attributes), serializer)
}

/// A mailbox to create. Unset fields come from the template, then from the domain's defaults.
#[derive(Debug, Clone)]
pub struct NewMailbox {
    /// The address; its domain must exist and be active.
    pub address: MailboxAddress,
    /// Display name; defaults to the local part.
    pub display_name: Option<String>,
    /// A password hash (`{SCHEME}…`), for local mailboxes.
    pub password_hash: Option<String>,
    /// `local` (default) or the name of an identity provider.
    pub auth_source: Option<String>,
    /// Template name.
    pub template: Option<String>,
    /// Quota.
    pub quota_mib: Option<i64>,
    /// Protocols.
    pub protocols: Option<ProtocolSet>,
    /// Active flag.
    pub active: Option<bool>,
    /// Force a password change at the next web login.
    pub force_password_change: bool,
    /// Require TOTP enrolment at the next web login.
    pub force_totp: bool,
    /// Subject id at the identity provider.
    pub external_id: Option<String>,
    /// What a SCIM client pushed about the account.
    pub scim: Option<ScimUser>,
}

impl NewMailbox {
    /// A local mailbox taking every other setting from its domain's defaults.
    pub fn new(address: MailboxAddress) -> Self {
        NewMailbox {
            address,
            display_name: None,
            password_hash: None,
            auth_source: None,
            template: None,
            quota_mib: None,
            protocols: None,
            active: None,
            force_password_change: false,
            force_totp: false,
            external_id: None,
            scim: None,
        }
    }
}

/// Changes to a mailbox; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct MailboxChanges {
    /// New display name.
    pub display_name: Option<String>,
    /// New password hash.
    pub password_hash: Option<String>,
    /// New auth source. Switching away from `local` keeps the stored hash, so switching back restores it.
    pub auth_source: Option<String>,
    /// Apply this template (its quota and protocols, unless given here too) and remember it.
    pub template: Option<String>,
    /// New quota.
    pub quota_mib: Option<i64>,
    /// New protocols.
    pub protocols: Option<ProtocolSet>,
    /// Activate or deactivate.
    pub active: Option<bool>,
    /// Set or clear the forced password change.
    pub force_password_change: Option<bool>,
    /// Set or clear the forced TOTP enrolment.
    pub force_totp: Option<bool>,
    /// New external subject id.
    pub external_id: Option<String>,
    /// Deprovisioning by an identity provider's sync: `Some(name)` deactivates the mailbox and records that
    /// provider `name` did it (so the sync may activate it again when the account comes back); `None` clears
    /// that record and activates the mailbox. An admin's `active` change clears the record too.
    pub deprovisioned_by: Option<Option<String>>,
    /// Replaces what a SCIM client pushed about the account.
    pub scim: Option<ScimUser>,
}

/// The attribute holding the User a SCIM client pushed for the mailbox (its attributes as pushed).
pub const SCIM_ATTRIBUTE: &str = "scim";

/// The attribute recording which identity provider's sync deactivated a mailbox.
pub const DEPROVISIONED_BY: &str = "deprovisioned_by";

/// The attribute holding the hash of the template last applied to a mailbox.
pub const TEMPLATE_HASH: &str = "template_hash";

async fn check_auth_source(db: &impl ConnectionTrait, source: &str) -> Result<()> {
    if source == LOCAL_AUTH_SOURCE {
        return Ok(());
    }
    let found = identity_provider::Entity::find()
        .filter(identity_provider::Column::Name.eq(source))
        .count(db)
        .await
        .map_err(db_err)?;
    if found == 0 {
        return Err(Error::invalid(format!(
            "unknown auth source '{source}': use 'local' or the name of a configured identity provider"
        )));
    }
    Ok(())
}

fn attributes_with_template(
    mut attributes: serde_json::Value,
    template: Option<&mailbox_template::Model>,
) -> serde_json::Value {
    if !attributes.is_object() {
        attributes = json!({});
    }
    let map = attributes.as_object_mut().expect("an object");
    match template {
        Some(t) => {
            map.insert(TEMPLATE_HASH.into(), json!(template_hash(t)));
            if let Ok(serde_json::Value::Object(extra)) = serde_json::from_str::<serde_json::Value>(&t.attributes) {
                for (key, value) in extra {
                    map.insert(key, value);
                }
            }
        }
        None => {
            map.remove(TEMPLATE_HASH);
        }
    }
    attributes
}

fn to_record(model: mailbox::Model, domain: &str, template: Option<String>) -> Result<Mailbox> {
    Ok(Mailbox {
        id: model.id,
        revision: model.revision,
        scim_deleted: model.scim_deleted,
        protocols: parse_protocols(&model.protocols)?,
        attributes: serde_json::from_str(&model.attributes).unwrap_or_else(|_| json!({})),
        has_local_password: model.password_hash.as_deref().is_some_and(|h| !h.is_empty()),
        address: model.address,
        local_part: model.local_part,
        domain: domain.to_string(),
        display_name: model.display_name,
        auth_source: model.auth_source,
        template,
        quota_mib: model.quota_mib,
        active: model.active,
        force_password_change: model.force_password_change,
        force_totp: model.force_totp,
        external_id: model.external_id,
        created_at: model.created_at,
        modified_at: model.modified_at,
    })
}

impl Store {
    pub(crate) async fn mailbox_row(
        &self,
        db: &impl ConnectionTrait,
        address: &MailboxAddress,
    ) -> Result<mailbox::Model> {
        mailbox::Entity::find()
            .filter(mailbox::Column::Address.eq(address.to_string()))
            .one(db)
            .await
            .map_err(db_err)?
            .ok_or_else(|| Error::not_found("mailbox", address.to_string()))
    }

    async fn template_name(&self, db: &impl ConnectionTrait, id: Option<i64>) -> Result<Option<String>> {
        let Some(id) = id else { return Ok(None) };
        Ok(mailbox_template::Entity::find_by_id(id).one(db).await.map_err(db_err)?.map(|t| t.name))
    }

    /// Creates a mailbox. Unset settings come from the template if one is named, else from the domain's
    /// defaults (quota) and "all protocols, active".
    pub async fn create_mailbox(&self, actor: &Actor, new: NewMailbox) -> Result<Mailbox> {
        let (_writer, txn) = self.begin().await?;
        let created = self.create_mailbox_in(&txn, actor, new).await?;
        commit(txn).await?;
        Ok(created)
    }

    /// Creates several mailboxes in one transaction (one durable commit), each inside its own savepoint: a
    /// mailbox the rules refuse is rolled back alone and reported in its slot, the others are kept. A server
    /// fault fails the whole call, and nothing of it is kept. For imports; every rule of [`Store::create_mailbox`]
    /// applies to each mailbox, counted against the ones created before it.
    pub async fn create_mailboxes(&self, actor: &Actor, news: Vec<NewMailbox>) -> Result<Vec<Result<Mailbox>>> {
        let (_writer, txn) = self.begin().await?;
        let mut outcomes = Vec::with_capacity(news.len());
        for new in news {
            let savepoint = txn.begin().await.map_err(db_err)?;
            match self.create_mailbox_in(&savepoint, actor, new).await {
                Ok(created) => {
                    savepoint.commit().await.map_err(db_err)?;
                    outcomes.push(Ok(created));
                }
                Err(err) if err.fault() == gatehouse_core::Fault::Client => {
                    savepoint.rollback().await.map_err(db_err)?;
                    outcomes.push(Err(err));
                }
                Err(err) => return Err(err),
            }
        }
        commit(txn).await?;
        Ok(outcomes)
    }

    async fn create_mailbox_in(&self, txn: &impl ConnectionTrait, actor: &Actor, new: NewMailbox) -> Result<Mailbox> {
        let domain = self.domain_row(txn, new.address.domain(), true).await?;
        if !domain.active {
            return Err(Error::refused(format!(
                "domain {} is inactive; activate it before adding mailboxes",
                domain.name
            )));
        }
        let address = new.address.to_string();
        let taken = mailbox::Entity::find()
            .filter(mailbox::Column::Address.eq(address.as_str()))
            .count(txn)
            .await
            .map_err(db_err)?;
        if taken > 0 {
            return Err(Error::already_exists("mailbox", address));
        }
        let template = match &new.template {
            Some(name) => Some(template_row(txn, name).await?),
            None => None,
        };
        let auth_source = new.auth_source.clone().unwrap_or_else(|| LOCAL_AUTH_SOURCE.to_string());
        check_auth_source(txn, &auth_source).await?;
        if let Some(scim) = &new.scim {
            check_scim_user_name(txn, &auth_source, scim, None).await?;
        }

        let others = usage(txn, domain.id, None).await?;
        if domain.max_mailboxes > 0 && others.mailboxes >= domain.max_mailboxes {
            return Err(Error::refused(format!(
                "domain {} already has {} of its {} allowed mailboxes",
                domain.name, others.mailboxes, domain.max_mailboxes
            )));
        }
        let quota = new.quota_mib.or(template.as_ref().map(|t| t.quota_mib)).unwrap_or(domain.default_quota_mib);
        check_quota(&domain, quota, others)?;
        let protocols = match (new.protocols, &template) {
            (Some(protocols), _) => protocols,
            (None, Some(t)) => parse_protocols(&t.protocols)?,
            (None, None) => ProtocolSet::ALL,
        };
        let active = new.active.or(template.as_ref().map(|t| t.active)).unwrap_or(true);
        let display_name = match new.display_name.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
            Some(name) => name.to_string(),
            None => new.address.local_part().to_string(),
        };
        check_free_text("display name", &display_name, MAX_FREE_TEXT)?;
        let time = now();
        let mut attributes = attributes_with_template(json!({}), template.as_ref());
        let mut row = mailbox::ActiveModel {
            id: NotSet,
            address: Set(address.clone()),
            local_part: Set(new.address.local_part().to_string()),
            domain_id: Set(domain.id),
            display_name: Set(display_name),
            password_hash: Set(new.password_hash),
            auth_source: Set(auth_source),
            template_id: Set(template.as_ref().map(|t| t.id)),
            quota_mib: Set(quota),
            protocols: Set(protocols.to_string()),
            active: Set(active),
            force_password_change: Set(new.force_password_change),
            force_totp: Set(new.force_totp),
            attributes: NotSet,
            external_id: Set(new.external_id),
            created_at: Set(time),
            modified_at: Set(time),
            revision: Set(0),
            scim_user_name: Set(None),
            scim_external_id: Set(None),
            scim_deleted: Set(false),
        };
        if let Some(scim) = new.scim {
            set_scim_user(&mut row, &mut attributes, scim);
        }
        row.attributes = Set(attributes.to_string());
        let inserted = row.insert(txn).await.map_err(db_err)?;
        audit(
            txn,
            actor,
            "mailbox.add",
            &address,
            json!({
                "auth_source": inserted.auth_source,
                "template": new.template,
                "quota_mib": inserted.quota_mib,
                "protocols": inserted.protocols,
                "active": inserted.active,
            }),
        )
        .await?;
        to_record(inserted, &domain.name, new.template)
    }

    /// One mailbox.
    pub async fn mailbox(&self, address: &MailboxAddress) -> Result<Mailbox> {
        let row = self.mailbox_row(&self.db, address).await?;
        let template = self.template_name(&self.db, row.template_id).await?;
        to_record(row, address.domain().as_str(), template)
    }

    /// The address of the mailbox bound to `external_id` at the identity provider `auth_source` (an access
    /// token names only the account). `None` when no mailbox, or more than one, is bound to it.
    pub async fn mailbox_address_by_external_id(&self, auth_source: &str, external_id: &str) -> Result<Option<String>> {
        let rows = mailbox::Entity::find()
            .filter(mailbox::Column::AuthSource.eq(auth_source))
            .filter(mailbox::Column::ExternalId.eq(external_id))
            .limit(2)
            .all(&self.db)
            .await
            .map_err(db_err)?;
        Ok(match rows.as_slice() {
            [only] => Some(only.address.clone()),
            _ => None,
        })
    }

    /// The mailbox with row id `id`, if there is one.
    pub async fn mailbox_by_id(&self, id: i64) -> Result<Option<Mailbox>> {
        let Some(row) = mailbox::Entity::find_by_id(id).one(&self.db).await.map_err(db_err)? else {
            return Ok(None);
        };
        let domain = domain::Entity::find_by_id(row.domain_id).one(&self.db).await.map_err(db_err)?;
        let template = self.template_name(&self.db, row.template_id).await?;
        to_record(row, &domain.map(|d| d.name).unwrap_or_default(), template).map(Some)
    }

    /// Records of mailbox rows, with their domain and template names.
    pub(crate) async fn records(&self, rows: Vec<mailbox::Model>) -> Result<Vec<Mailbox>> {
        // Only the domains and templates these rows name (a page of 50 among thousands of domains).
        let mut domain_ids: Vec<i64> = rows.iter().map(|row| row.domain_id).collect();
        domain_ids.sort_unstable();
        domain_ids.dedup();
        let mut template_ids: Vec<i64> = rows.iter().filter_map(|row| row.template_id).collect();
        template_ids.sort_unstable();
        template_ids.dedup();
        let domains = crate::domains::names_by_id(&self.db, domain_ids).await?;
        let templates: HashMap<i64, String> = mailbox_template::Entity::find()
            .filter(mailbox_template::Column::Id.is_in(template_ids))
            .all(&self.db)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(|t| (t.id, t.name))
            .collect();
        rows.into_iter()
            .map(|row| {
                let domain = domains.get(&row.domain_id).cloned().unwrap_or_default();
                let template = row.template_id.and_then(|id| templates.get(&id).cloned());
                to_record(row, &domain, template)
            })
            .collect()
    }

    /// Mailboxes by address, optionally of one domain only.
    pub async fn list_mailboxes(&self, domain: Option<&DomainName>) -> Result<Vec<Mailbox>> {
        let mut query = mailbox::Entity::find().order_by_asc(mailbox::Column::Address);
        if let Some(name) = domain {
            let row = self.domain_row(&self.db, name, false).await?;
            query = query.filter(mailbox::Column::DomainId.eq(row.id));
        }
        let rows = query.all(&self.db).await.map_err(db_err)?;
        self.records(rows).await
    }

    /// One page of the mailboxes matching `search`, searched, sorted and counted in the database.
    pub async fn search_mailboxes(&self, search: &MailboxSearch) -> Result<Page<Mailbox>> {
        let window = search.window;
        let mut query = mailbox::Entity::find();
        if let Some(names) = &search.domains {
            let names: Vec<&str> = names.iter().map(DomainName::as_str).collect();
            let ids: Vec<i64> = domain::Entity::find()
                .filter(domain::Column::Name.is_in(names))
                .all(&self.db)
                .await
                .map_err(db_err)?
                .into_iter()
                .map(|d| d.id)
                .collect();
            if ids.is_empty() {
                return Ok(Page::empty(window.offset, window.limit));
            }
            query = query.filter(mailbox::Column::DomainId.is_in(ids));
        }
        if let Some(text) = search.text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            query = query.filter(any_contains(&[mailbox::Column::Address, mailbox::Column::DisplayName], text));
        }
        if let Some(active) = search.active {
            query = query.filter(mailbox::Column::Active.eq(active));
        }
        if let Some(source) = &search.auth_source {
            query = query.filter(mailbox::Column::AuthSource.eq(source.as_str()));
        }
        let total = query.clone().count(&self.db).await.map_err(db_err)?;
        let order = if search.descending { sea_orm::Order::Desc } else { sea_orm::Order::Asc };
        let column = match search.order {
            MailboxOrder::Address => None,
            MailboxOrder::DisplayName => Some(mailbox::Column::DisplayName),
            MailboxOrder::Quota => Some(mailbox::Column::QuotaMib),
            MailboxOrder::AuthSource => Some(mailbox::Column::AuthSource),
            MailboxOrder::Active => Some(mailbox::Column::Active),
        };
        if let Some(column) = column {
            query = query.order_by(column, order.clone());
        }
        let rows = query
            .order_by(mailbox::Column::Address, order)
            .offset(window.offset)
            .limit(window.limit)
            .all(&self.db)
            .await
            .map_err(db_err)?;
        Ok(Page { items: self.records(rows).await?, total, more: false, offset: window.offset, limit: window.limit })
    }

    /// Changes a mailbox, checking the same rules as creation.
    pub async fn update_mailbox(
        &self,
        actor: &Actor,
        address: &MailboxAddress,
        changes: MailboxChanges,
    ) -> Result<Mailbox> {
        let (_writer, txn) = self.begin().await?;
        let domain = self.domain_row(&txn, address.domain(), true).await?;
        let current = self.mailbox_row(&txn, address).await?;
        let mut row: mailbox::ActiveModel = current.clone().into();
        let mut details = serde_json::Map::new();

        let template = match &changes.template {
            Some(name) => Some(template_row(&txn, name).await?),
            None => None,
        };
        let mut attributes: serde_json::Value = serde_json::from_str(&current.attributes).unwrap_or_else(|_| json!({}));
        if !attributes.is_object() {
            attributes = json!({});
        }
        if let Some(t) = &template {
            attributes = attributes_with_template(attributes, Some(t));
            row.template_id = Set(Some(t.id));
            details.insert("template".into(), json!(t.name));
        }
        let quota = changes.quota_mib.or(template.as_ref().map(|t| t.quota_mib));
        if let Some(quota) = quota
            && quota != current.quota_mib
        {
            let others = usage(&txn, domain.id, Some(current.id)).await?;
            check_quota(&domain, quota, others)?;
            row.quota_mib = Set(quota);
            details.insert("quota_mib".into(), json!(quota));
        }
        let protocols = match (changes.protocols, &template) {
            (Some(protocols), _) => Some(protocols),
            (None, Some(t)) => Some(parse_protocols(&t.protocols)?),
            (None, None) => None,
        };
        if let Some(protocols) = protocols {
            row.protocols = Set(protocols.to_string());
            details.insert("protocols".into(), json!(protocols.to_string()));
        }
        if let Some(source) = &changes.auth_source {
            check_auth_source(&txn, source).await?;
            // The local hash is deliberately kept: switching back to `local` restores the old password.
            row.auth_source = Set(source.clone());
            details.insert("auth_source".into(), json!(source));
        }
        if let Some(name) = changes.display_name {
            let name = name.trim().to_string();
            check_free_text("display name", &name, MAX_FREE_TEXT)?;
            row.display_name = Set(name);
            details.insert("display_name".into(), json!(true));
        }
        if let Some(hash) = changes.password_hash {
            row.password_hash = Set(Some(hash));
            details.insert("password".into(), json!("changed"));
        }
        if let Some(flag) = changes.active {
            row.active = Set(flag);
            details.insert("active".into(), json!(flag));
            // An admin's decision replaces whatever a sync did.
            attributes.as_object_mut().expect("an object").remove(DEPROVISIONED_BY);
        }
        if let Some(deprovisioned) = changes.deprovisioned_by {
            let map = attributes.as_object_mut().expect("an object");
            match deprovisioned {
                Some(provider) => {
                    row.active = Set(false);
                    map.insert(DEPROVISIONED_BY.into(), json!(provider));
                    details.insert("deprovisioned_by".into(), json!(provider));
                }
                None => {
                    row.active = Set(true);
                    map.remove(DEPROVISIONED_BY);
                    details.insert("reprovisioned".into(), json!(true));
                }
            }
        }
        if let Some(scim) = changes.scim {
            let auth_source = changes.auth_source.as_deref().unwrap_or(&current.auth_source);
            check_scim_user_name(&txn, auth_source, &scim, Some(current.id)).await?;
            details.insert("scim".into(), json!(if scim.deleted { "deleted" } else { "pushed" }));
            set_scim_user(&mut row, &mut attributes, scim);
        }
        let attributes = attributes.to_string();
        if attributes != current.attributes {
            row.attributes = Set(attributes);
        }
        if let Some(flag) = changes.force_password_change {
            row.force_password_change = Set(flag);
            details.insert("force_password_change".into(), json!(flag));
        }
        if let Some(flag) = changes.force_totp {
            row.force_totp = Set(flag);
            details.insert("force_totp".into(), json!(flag));
        }
        if let Some(id) = changes.external_id {
            row.external_id = Set(Some(id));
            details.insert("external_id".into(), json!(true));
        }
        row.modified_at = Set(now());
        row.revision = Set(current.revision + 1);
        let ends_sessions = details.contains_key("password")
            || details.contains_key("auth_source")
            || details.get("active") == Some(&json!(false))
            || details.contains_key("deprovisioned_by");
        let ended = if ends_sessions {
            crate::web_sessions::end_sessions_of(&txn, crate::USER_SESSIONS, &current.address).await?
        } else {
            Vec::new()
        };
        let updated = row.update(&txn).await.map_err(db_err)?;
        audit(&txn, actor, "mailbox.edit", &updated.address, serde_json::Value::Object(details)).await?;
        let template_name = self.template_name(&txn, updated.template_id).await?;
        crate::changes::record(&txn, &crate::LoginChange::Mailbox(updated.address.clone())).await?;
        commit(txn).await?;
        self.announcer.announce(crate::LoginChange::Mailbox(updated.address.clone()));
        self.announcer.announce_all(ended);
        to_record(updated, &domain.name, template_name)
    }

    /// Removes a mailbox and its app passwords.
    pub async fn remove_mailbox(&self, actor: &Actor, address: &MailboxAddress) -> Result<()> {
        let (_writer, txn) = self.begin().await?;
        let current = self.mailbox_row(&txn, address).await?;
        let removed = current.address.clone();
        crate::totp::delete_totp_of(&txn, "mailbox", current.id).await?;
        crate::passkeys::delete_passkeys_of(&txn, "mailbox", current.id).await?;
        let ended = crate::web_sessions::end_sessions_of(&txn, crate::USER_SESSIONS, &current.address).await?;
        current.delete(&txn).await.map_err(db_err)?;
        audit(&txn, actor, "mailbox.remove", &removed, json!({})).await?;
        crate::changes::record(&txn, &crate::LoginChange::Mailbox(removed.clone())).await?;
        commit(txn).await?;
        self.announcer.announce(crate::LoginChange::Mailbox(removed));
        self.announcer.announce_all(ended);
        Ok(())
    }

    /// The stored local password hash of a mailbox, if any (kept even while the auth source is an IdP).
    pub async fn mailbox_password_hash(&self, address: &MailboxAddress) -> Result<Option<String>> {
        Ok(self.mailbox_row(&self.db, address).await?.password_hash)
    }
}
