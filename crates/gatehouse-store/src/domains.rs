//! Domains: create, list, change, remove, and the quota and limit rules every mailbox change is checked
//! against.

use gatehouse_core::text::{MAX_FREE_TEXT, check_free_text};
use std::collections::HashMap;

use gatehouse_core::{DomainName, Error, Result};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, ModelTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use serde::Serialize;
use serde_json::json;

use crate::entity::{domain, mailbox};
use crate::listing::{Page, Window, any_contains};
use crate::logs::audit;
use crate::{Actor, Store, commit, db_err, now};

/// The order of a domain list (ties by name).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DomainOrder {
    /// By name (ASCII).
    #[default]
    Name,
    /// Inactive first.
    Active,
    /// Oldest first.
    Created,
}

/// A search of the domains, answered a page at a time ([`Store::search_domains`]).
#[derive(Debug, Clone, Default)]
pub struct DomainSearch {
    /// Only these domains (`None`: all).
    pub names: Option<Vec<DomainName>>,
    /// Only domains whose name or description contains this, ignoring case.
    pub text: Option<String>,
    /// Only active (`true`) or inactive (`false`) domains.
    pub active: Option<bool>,
    /// The order.
    pub order: DomainOrder,
    /// Reverse the order.
    pub descending: bool,
    /// Which page.
    pub window: Window,
}

/// A domain, with its current usage.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Domain {
    /// ASCII (punycode) name.
    pub name: String,
    /// Unicode name, for display.
    pub unicode_name: String,
    /// Free text.
    pub description: String,
    /// Inactive domains refuse every login and new mailboxes.
    pub active: bool,
    /// Most mailboxes the domain may have; 0 means no limit.
    pub max_mailboxes: i64,
    /// Quota given to new mailboxes that name none; 0 means unlimited.
    pub default_quota_mib: i64,
    /// Largest quota of one mailbox; 0 means no limit.
    pub max_quota_mib: i64,
    /// Largest sum of all mailbox quotas; 0 means no limit.
    pub total_quota_mib: i64,
    /// Number of mailboxes now.
    pub mailboxes: i64,
    /// Sum of the mailbox quotas now.
    pub quota_used_mib: i64,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub modified_at: i64,
}

/// A domain to create.
#[derive(Debug, Clone)]
pub struct NewDomain {
    /// The name.
    pub name: DomainName,
    /// Free text.
    pub description: String,
    /// Active on creation.
    pub active: bool,
    /// See [`Domain::max_mailboxes`].
    pub max_mailboxes: i64,
    /// See [`Domain::default_quota_mib`].
    pub default_quota_mib: i64,
    /// See [`Domain::max_quota_mib`].
    pub max_quota_mib: i64,
    /// See [`Domain::total_quota_mib`].
    pub total_quota_mib: i64,
}

impl NewDomain {
    /// An active domain without limits.
    pub fn new(name: DomainName) -> Self {
        NewDomain {
            name,
            description: String::new(),
            active: true,
            max_mailboxes: 0,
            default_quota_mib: 0,
            max_quota_mib: 0,
            total_quota_mib: 0,
        }
    }
}

/// Changes to a domain; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct DomainChanges {
    /// New description.
    pub description: Option<String>,
    /// Activate or deactivate.
    pub active: Option<bool>,
    /// New mailbox limit.
    pub max_mailboxes: Option<i64>,
    /// New default quota.
    pub default_quota_mib: Option<i64>,
    /// New per-mailbox quota limit.
    pub max_quota_mib: Option<i64>,
    /// New total quota limit.
    pub total_quota_mib: Option<i64>,
}

/// Mailbox count and quota sum of one domain.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Usage {
    pub mailboxes: i64,
    pub quota_mib: i64,
}

/// Counts the mailboxes of a domain and sums their quotas, leaving out `except` (a mailbox being changed).
pub(crate) async fn usage(db: &impl ConnectionTrait, domain_id: i64, except: Option<i64>) -> Result<Usage> {
    use sea_orm::DatabaseBackend;
    use sea_orm::sea_query::{Alias, Expr, ExprTrait, Func};
    // One aggregate row, not one row per mailbox (a sync creating 10 000 mailboxes would otherwise read 50
    // million rows). SUM of a 64-bit column is NUMERIC/DECIMAL on PostgreSQL and MariaDB: cast it back.
    let integer = match db.get_database_backend() {
        DatabaseBackend::MySql => "SIGNED",
        _ => "BIGINT",
    };
    let mut query = mailbox::Entity::find()
        .select_only()
        .column_as(Expr::col(mailbox::Column::Id).count(), "mailboxes")
        .column_as(
            Func::coalesce([Expr::col(mailbox::Column::QuotaMib).sum(), Expr::val(0i64)]).cast_as(Alias::new(integer)),
            "quota_mib",
        )
        .filter(mailbox::Column::DomainId.eq(domain_id));
    if let Some(id) = except {
        query = query.filter(mailbox::Column::Id.ne(id));
    }
    let (mailboxes, quota_mib): (i64, i64) = query.into_tuple().one(db).await.map_err(db_err)?.unwrap_or_default();
    Ok(Usage { mailboxes, quota_mib })
}

/// The usage of several domains (all when `ids` is `None`) in one grouped query.
async fn usages(db: &impl ConnectionTrait, ids: Option<&[i64]>) -> Result<HashMap<i64, Usage>> {
    use sea_orm::DatabaseBackend;
    use sea_orm::sea_query::{Alias, Expr, ExprTrait, Func};
    let integer = match db.get_database_backend() {
        DatabaseBackend::MySql => "SIGNED",
        _ => "BIGINT",
    };
    let mut query = mailbox::Entity::find()
        .select_only()
        .column(mailbox::Column::DomainId)
        .column_as(Expr::col(mailbox::Column::Id).count(), "mailboxes")
        .column_as(
            Func::coalesce([Expr::col(mailbox::Column::QuotaMib).sum(), Expr::val(0i64)]).cast_as(Alias::new(integer)),
            "quota_mib",
        )
        .group_by(mailbox::Column::DomainId);
    if let Some(ids) = ids {
        query = query.filter(mailbox::Column::DomainId.is_in(ids.iter().copied()));
    }
    let rows: Vec<(i64, i64, i64)> = query.into_tuple().all(db).await.map_err(db_err)?;
    Ok(rows.into_iter().map(|(id, mailboxes, quota_mib)| (id, Usage { mailboxes, quota_mib })).collect())
}

/// The ASCII names of the domains `ids`, by id (for the records of a page of rows that name domains).
pub(crate) async fn names_by_id(
    db: &impl ConnectionTrait,
    ids: impl IntoIterator<Item = i64>,
) -> Result<HashMap<i64, String>> {
    Ok(domain::Entity::find()
        .filter(domain::Column::Id.is_in(ids))
        .all(db)
        .await
        .map_err(db_err)?
        .into_iter()
        .map(|d| (d.id, d.name))
        .collect())
}

/// Checks a mailbox quota against the domain's per-mailbox and total limits. `others` is the usage of the
/// domain's other mailboxes.
pub(crate) fn check_quota(domain: &domain::Model, quota_mib: i64, others: Usage) -> Result<()> {
    if quota_mib < 0 {
        return Err(Error::invalid("a quota cannot be negative"));
    }
    let name = &domain.name;
    if domain.max_quota_mib > 0 {
        if quota_mib == 0 {
            return Err(Error::refused(format!(
                "domain {name} limits each mailbox to {} MiB, so an unlimited quota (0) is not allowed",
                domain.max_quota_mib
            )));
        }
        if quota_mib > domain.max_quota_mib {
            return Err(Error::refused(format!(
                "a quota of {quota_mib} MiB exceeds domain {name}'s limit of {} MiB per mailbox",
                domain.max_quota_mib
            )));
        }
    }
    if domain.total_quota_mib > 0 {
        if quota_mib == 0 {
            return Err(Error::refused(format!(
                "domain {name} has a total quota of {} MiB, so an unlimited mailbox quota (0) is not allowed",
                domain.total_quota_mib
            )));
        }
        if others.quota_mib + quota_mib > domain.total_quota_mib {
            return Err(Error::refused(format!(
                "a quota of {quota_mib} MiB would exceed domain {name}'s total quota: {} of {} MiB are already \
                 given to other mailboxes",
                others.quota_mib, domain.total_quota_mib
            )));
        }
    }
    Ok(())
}

fn check_limits(model: &domain::Model) -> Result<()> {
    for (label, value) in [
        ("max mailboxes", model.max_mailboxes),
        ("default quota", model.default_quota_mib),
        ("max quota", model.max_quota_mib),
        ("total quota", model.total_quota_mib),
    ] {
        if value < 0 {
            return Err(Error::invalid(format!("{label} cannot be negative")));
        }
    }
    if model.max_quota_mib > 0 && model.default_quota_mib > model.max_quota_mib {
        return Err(Error::invalid(format!(
            "the default quota ({} MiB) is larger than the per-mailbox limit ({} MiB)",
            model.default_quota_mib, model.max_quota_mib
        )));
    }
    if model.total_quota_mib > 0 && model.max_quota_mib > model.total_quota_mib {
        return Err(Error::invalid(format!(
            "the per-mailbox limit ({} MiB) is larger than the total quota ({} MiB)",
            model.max_quota_mib, model.total_quota_mib
        )));
    }
    Ok(())
}

pub(crate) fn to_record(model: domain::Model, usage: Usage) -> Domain {
    let unicode_name = DomainName::parse(&model.name).map(|d| d.to_unicode()).unwrap_or_else(|_| model.name.clone());
    Domain {
        name: model.name,
        unicode_name,
        description: model.description,
        active: model.active,
        max_mailboxes: model.max_mailboxes,
        default_quota_mib: model.default_quota_mib,
        max_quota_mib: model.max_quota_mib,
        total_quota_mib: model.total_quota_mib,
        mailboxes: usage.mailboxes,
        quota_used_mib: usage.quota_mib,
        created_at: model.created_at,
        modified_at: model.modified_at,
    }
}

impl Store {
    /// Finds a domain row by name, locking it for the rest of the transaction where the engine can.
    pub(crate) async fn domain_row(
        &self,
        db: &impl ConnectionTrait,
        name: &DomainName,
        lock: bool,
    ) -> Result<domain::Model> {
        let mut query = domain::Entity::find().filter(domain::Column::Name.eq(name.as_str()));
        if lock && self.supports_row_locks() {
            query = query.lock_exclusive();
        }
        query.one(db).await.map_err(db_err)?.ok_or_else(|| Error::not_found("domain", name.as_str()))
    }

    /// Creates a domain.
    pub async fn create_domain(&self, actor: &Actor, new: NewDomain) -> Result<Domain> {
        let (_writer, txn) = self.begin().await?;
        let exists = domain::Entity::find()
            .filter(domain::Column::Name.eq(new.name.as_str()))
            .count(&txn)
            .await
            .map_err(db_err)?;
        if exists > 0 {
            return Err(Error::already_exists("domain", new.name.as_str()));
        }
        let description = new.description.trim().to_string();
        check_free_text("description", &description, MAX_FREE_TEXT)?;
        let time = now();
        let model = domain::Model {
            id: 0,
            name: new.name.as_str().to_string(),
            description,
            active: new.active,
            max_mailboxes: new.max_mailboxes,
            default_quota_mib: new.default_quota_mib,
            max_quota_mib: new.max_quota_mib,
            total_quota_mib: new.total_quota_mib,
            created_at: time,
            modified_at: time,
        };
        check_limits(&model)?;
        let mut active: domain::ActiveModel = model.into();
        active.id = sea_orm::NotSet;
        let inserted = active.insert(&txn).await.map_err(db_err)?;
        audit(
            &txn,
            actor,
            "domain.add",
            &inserted.name,
            json!({
                "active": inserted.active,
                "max_mailboxes": inserted.max_mailboxes,
                "default_quota_mib": inserted.default_quota_mib,
                "max_quota_mib": inserted.max_quota_mib,
                "total_quota_mib": inserted.total_quota_mib,
            }),
        )
        .await?;
        commit(txn).await?;
        Ok(to_record(inserted, Usage::default()))
    }

    /// One domain with its usage.
    pub async fn domain(&self, name: &DomainName) -> Result<Domain> {
        let model = self.domain_row(&self.db, name, false).await?;
        let used = usage(&self.db, model.id, None).await?;
        Ok(to_record(model, used))
    }

    /// All domains, by name, with their usage.
    pub async fn list_domains(&self) -> Result<Vec<Domain>> {
        let domains = domain::Entity::find().order_by_asc(domain::Column::Name).all(&self.db).await.map_err(db_err)?;
        let usages = usages(&self.db, None).await?;
        Ok(domains
            .into_iter()
            .map(|d| {
                let used = usages.get(&d.id).copied().unwrap_or_default();
                to_record(d, used)
            })
            .collect())
    }

    /// The names of the domains (ASCII), by name, without their usage (for choosing one).
    pub async fn domain_names(&self) -> Result<Vec<String>> {
        domain::Entity::find()
            .select_only()
            .column(domain::Column::Name)
            .order_by_asc(domain::Column::Name)
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(db_err)
    }

    /// One page of the domains matching `search`, with the usage of those on the page.
    pub async fn search_domains(&self, search: &DomainSearch) -> Result<Page<Domain>> {
        let window = search.window;
        let mut query = domain::Entity::find();
        if let Some(names) = &search.names {
            query = query.filter(domain::Column::Name.is_in(names.iter().map(DomainName::as_str)));
        }
        if let Some(text) = search.text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            // Names are stored in ASCII (punycode): a search in Unicode looks for that form too.
            let ascii = DomainName::ascii_form(text).unwrap_or_else(|| text.to_string());
            query = query.filter(
                any_contains(&[domain::Column::Name, domain::Column::Description], text)
                    .add(any_contains(&[domain::Column::Name], &ascii)),
            );
        }
        if let Some(active) = search.active {
            query = query.filter(domain::Column::Active.eq(active));
        }
        let total = query.clone().count(&self.db).await.map_err(db_err)?;
        let order = if search.descending { sea_orm::Order::Desc } else { sea_orm::Order::Asc };
        match search.order {
            DomainOrder::Name => {}
            DomainOrder::Active => query = query.order_by(domain::Column::Active, order.clone()),
            DomainOrder::Created => query = query.order_by(domain::Column::CreatedAt, order.clone()),
        }
        let rows = query
            .order_by(domain::Column::Name, order)
            .offset(window.offset)
            .limit(window.limit)
            .all(&self.db)
            .await
            .map_err(db_err)?;
        let ids: Vec<i64> = rows.iter().map(|d| d.id).collect();
        let usages = usages(&self.db, Some(&ids)).await?;
        let items = rows
            .into_iter()
            .map(|d| {
                let used = usages.get(&d.id).copied().unwrap_or_default();
                to_record(d, used)
            })
            .collect();
        Ok(Page { items, total, more: false, offset: window.offset, limit: window.limit })
    }

    /// Changes a domain. Limits cannot be lowered below what the domain's mailboxes already use.
    pub async fn update_domain(&self, actor: &Actor, name: &DomainName, changes: DomainChanges) -> Result<Domain> {
        let (_writer, txn) = self.begin().await?;
        let current = self.domain_row(&txn, name, true).await?;
        let used = usage(&txn, current.id, None).await?;
        let mut next = current.clone();
        if let Some(value) = changes.description {
            let value = value.trim().to_string();
            check_free_text("description", &value, MAX_FREE_TEXT)?;
            next.description = value;
        }
        if let Some(value) = changes.active {
            next.active = value;
        }
        if let Some(value) = changes.max_mailboxes {
            next.max_mailboxes = value;
        }
        if let Some(value) = changes.default_quota_mib {
            next.default_quota_mib = value;
        }
        if let Some(value) = changes.max_quota_mib {
            next.max_quota_mib = value;
        }
        if let Some(value) = changes.total_quota_mib {
            next.total_quota_mib = value;
        }
        check_limits(&next)?;
        if next.max_mailboxes > 0 && used.mailboxes > next.max_mailboxes {
            return Err(Error::refused(format!(
                "domain {} has {} mailboxes; the limit cannot be set to {}",
                next.name, used.mailboxes, next.max_mailboxes
            )));
        }
        if next.total_quota_mib > 0 && used.quota_mib > next.total_quota_mib {
            return Err(Error::refused(format!(
                "domain {}'s mailboxes already use {} MiB of quota; the total cannot be set to {} MiB",
                next.name, used.quota_mib, next.total_quota_mib
            )));
        }
        if next.max_quota_mib != current.max_quota_mib || next.total_quota_mib != current.total_quota_mib {
            let quotas: Vec<(String, i64)> = mailbox::Entity::find()
                .select_only()
                .column(mailbox::Column::Address)
                .column(mailbox::Column::QuotaMib)
                .filter(mailbox::Column::DomainId.eq(current.id))
                .into_tuple()
                .all(&txn)
                .await
                .map_err(db_err)?;
            for (address, quota) in quotas {
                if (next.max_quota_mib > 0 || next.total_quota_mib > 0) && quota == 0 {
                    return Err(Error::refused(format!(
                        "mailbox {address} has an unlimited quota; give it a quota before limiting the domain"
                    )));
                }
                if next.max_quota_mib > 0 && quota > next.max_quota_mib {
                    return Err(Error::refused(format!(
                        "mailbox {address} has a quota of {quota} MiB, above the new limit of {} MiB",
                        next.max_quota_mib
                    )));
                }
            }
        }
        next.modified_at = now();
        let mut active: domain::ActiveModel = current.into();
        active.description = Set(next.description.clone());
        active.active = Set(next.active);
        active.max_mailboxes = Set(next.max_mailboxes);
        active.default_quota_mib = Set(next.default_quota_mib);
        active.max_quota_mib = Set(next.max_quota_mib);
        active.total_quota_mib = Set(next.total_quota_mib);
        active.modified_at = Set(next.modified_at);
        let updated = active.update(&txn).await.map_err(db_err)?;
        crate::login::bump_domain_revisions(&txn, updated.id, &updated.name).await?;
        audit(
            &txn,
            actor,
            "domain.edit",
            &updated.name,
            json!({
                "active": updated.active,
                "max_mailboxes": updated.max_mailboxes,
                "default_quota_mib": updated.default_quota_mib,
                "max_quota_mib": updated.max_quota_mib,
                "total_quota_mib": updated.total_quota_mib,
            }),
        )
        .await?;
        commit(txn).await?;
        self.announcer.announce(crate::LoginChange::Domain(updated.name.clone()));
        Ok(to_record(updated, used))
    }

    /// Removes a domain that has no mailboxes left. Its domain-admin links and master users scoped to it go
    /// with it.
    pub async fn remove_domain(&self, actor: &Actor, name: &DomainName) -> Result<()> {
        let (_writer, txn) = self.begin().await?;
        let current = self.domain_row(&txn, name, true).await?;
        let used = usage(&txn, current.id, None).await?;
        if used.mailboxes > 0 {
            return Err(Error::refused(format!(
                "domain {} still has {} mailbox(es); remove them first",
                current.name, used.mailboxes
            )));
        }
        let removed = current.name.clone();
        current.delete(&txn).await.map_err(db_err)?;
        audit(&txn, actor, "domain.remove", &removed, json!({})).await?;
        commit(txn).await
    }
}
