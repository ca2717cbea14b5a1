//! Master users: accounts that may log in as other mailboxes, with the three scopes of Dovecot's master-user
//! documentation — `global` (any mailbox), `domain` (mailboxes of the master user's own domain) and `owned`
//! (mailboxes of a list of domains).

use std::collections::HashMap;

use gatehouse_core::text::login_name;
use gatehouse_core::{DomainName, Error, MailboxAddress, Result};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, ModelTrait, NotSet, PaginatorTrait, QueryFilter, QueryOrder, Set,
};
use serde::Serialize;
use serde_json::json;

use crate::entity::{domain, master_user, master_user_domain};
use crate::listing::{Page, Window, any_contains, window_of};
use crate::logs::audit;
use crate::{Actor, Store, commit, db_err, now};

/// Which mailboxes a master user may log in as (the three kinds of Dovecot's master-user documentation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "scope", content = "domains", rename_all = "snake_case")]
pub enum MasterScope {
    /// Any mailbox.
    Global,
    /// Mailboxes of the master user's own domain (the domain of its username).
    Domain(String),
    /// Mailboxes of the listed domains.
    Owned(Vec<String>),
}

impl MasterScope {
    /// `global`, `domain` or `owned`.
    pub fn kind(&self) -> &'static str {
        match self {
            MasterScope::Global => "global",
            MasterScope::Domain(_) => "domain",
            MasterScope::Owned(_) => "owned",
        }
    }

    /// Whether a mailbox of `domain` is within the scope.
    pub fn allows(&self, domain: &str) -> bool {
        match self {
            MasterScope::Global => true,
            MasterScope::Domain(own) => own == domain,
            MasterScope::Owned(domains) => domains.iter().any(|d| d == domain),
        }
    }
}

/// The scope of a master user to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewMasterScope {
    /// Any mailbox.
    Global,
    /// Mailboxes of its own domain; the username must be an address in an existing domain.
    Domain,
    /// Mailboxes of these domains; each must exist.
    Owned(Vec<DomainName>),
}

/// A master user. The password hash is never included.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MasterUser {
    /// Login name (used after the separator: `target*master`).
    pub username: String,
    /// Which mailboxes it may log in as.
    #[serde(flatten)]
    pub scope: MasterScope,
    /// Inactive master users cannot log in.
    pub active: bool,
    /// Unix seconds.
    pub created_at: i64,
}

/// A master user to create.
#[derive(Debug, Clone)]
pub struct NewMasterUser {
    /// Login name.
    pub username: String,
    /// Password hash.
    pub password_hash: String,
    /// Scope.
    pub scope: NewMasterScope,
}

fn scope_of(model: &master_user::Model, domains: &HashMap<i64, String>, owned: Vec<String>) -> Result<MasterScope> {
    match model.scope.as_str() {
        "global" => Ok(MasterScope::Global),
        "domain" => {
            let id =
                model.domain_id.ok_or_else(|| Error::Internal("domain-scoped master user without domain".into()))?;
            Ok(MasterScope::Domain(domains.get(&id).cloned().unwrap_or_default()))
        }
        "owned" => Ok(MasterScope::Owned(owned)),
        other => Err(Error::Internal(format!("unknown master-user scope '{other}' in the database"))),
    }
}

impl Store {
    /// Creates a master user.
    pub async fn create_master_user(&self, actor: &Actor, new: NewMasterUser) -> Result<MasterUser> {
        let username = login_name("master user", &new.username)?;
        let (_writer, txn) = self.begin().await?;
        let taken = master_user::Entity::find()
            .filter(master_user::Column::Username.eq(username.as_str()))
            .count(&txn)
            .await
            .map_err(db_err)?;
        if taken > 0 {
            return Err(Error::already_exists("master user", username));
        }
        let (scope_name, own_domain, owned) = match &new.scope {
            NewMasterScope::Global => ("global", None, Vec::new()),
            NewMasterScope::Domain => {
                let address = MailboxAddress::parse(&username).map_err(|_| {
                    Error::invalid(format!(
                        "a master user with scope 'domain' acts on its own domain, so its name must be an address \
                         (like master@example.org); '{username}' is not"
                    ))
                })?;
                let row = self.domain_row(&txn, address.domain(), false).await?;
                ("domain", Some(row), Vec::new())
            }
            NewMasterScope::Owned(domains) => {
                if domains.is_empty() {
                    return Err(Error::invalid("a master user with scope 'owned' needs at least one domain"));
                }
                let mut rows = Vec::new();
                for name in domains {
                    let row = self.domain_row(&txn, name, false).await?;
                    if !rows.iter().any(|r: &domain::Model| r.id == row.id) {
                        rows.push(row);
                    }
                }
                ("owned", None, rows)
            }
        };
        let time = now();
        let inserted = master_user::ActiveModel {
            id: NotSet,
            username: Set(username.clone()),
            password_hash: Set(new.password_hash),
            scope: Set(scope_name.to_string()),
            domain_id: Set(own_domain.as_ref().map(|d| d.id)),
            active: Set(true),
            created_at: Set(time),
            modified_at: Set(time),
            revision: Set(0),
        }
        .insert(&txn)
        .await
        .map_err(db_err)?;
        for row in &owned {
            master_user_domain::ActiveModel { master_user_id: Set(inserted.id), domain_id: Set(row.id) }
                .insert(&txn)
                .await
                .map_err(db_err)?;
        }
        let scope = match scope_name {
            "global" => MasterScope::Global,
            "domain" => MasterScope::Domain(own_domain.map(|d| d.name).unwrap_or_default()),
            _ => MasterScope::Owned(owned.into_iter().map(|d| d.name).collect()),
        };
        audit(&txn, actor, "master_user.add", &username, json!({ "scope": scope })).await?;
        commit(txn).await?;
        Ok(MasterUser { username, scope, active: true, created_at: time })
    }

    /// All master users, by username, with their scopes.
    pub async fn list_master_users(&self) -> Result<Vec<MasterUser>> {
        let masters = master_user::Entity::find()
            .order_by_asc(master_user::Column::Username)
            .all(&self.db)
            .await
            .map_err(db_err)?;
        self.master_records(masters).await
    }

    /// One page of the master users whose username contains `text` (ignoring case), by username.
    pub async fn search_master_users(&self, text: Option<&str>, window: Window) -> Result<Page<MasterUser>> {
        let mut query = master_user::Entity::find().order_by_asc(master_user::Column::Username);
        if let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) {
            query = query.filter(any_contains(&[master_user::Column::Username], text));
        }
        let (rows, total) = window_of(&self.db, query, window).await?;
        let items = self.master_records(rows).await?;
        Ok(Page { items, total, more: false, offset: window.offset, limit: window.limit })
    }

    /// The records of `masters` with their scopes (their domains read for them only).
    async fn master_records(&self, masters: Vec<master_user::Model>) -> Result<Vec<MasterUser>> {
        let ids: Vec<i64> = masters.iter().map(|m| m.id).collect();
        let links = master_user_domain::Entity::find()
            .filter(master_user_domain::Column::MasterUserId.is_in(ids))
            .all(&self.db)
            .await
            .map_err(db_err)?;
        let domain_ids: Vec<i64> =
            links.iter().map(|l| l.domain_id).chain(masters.iter().filter_map(|m| m.domain_id)).collect();
        let domains = crate::domains::names_by_id(&self.db, domain_ids).await?;
        masters
            .into_iter()
            .map(|m| {
                let mut owned: Vec<String> = links
                    .iter()
                    .filter(|l| l.master_user_id == m.id)
                    .filter_map(|l| domains.get(&l.domain_id).cloned())
                    .collect();
                owned.sort();
                let scope = scope_of(&m, &domains, owned)?;
                Ok(MasterUser { username: m.username, scope, active: m.active, created_at: m.created_at })
            })
            .collect()
    }

    /// Removes a master user.
    pub async fn remove_master_user(&self, actor: &Actor, username: &str) -> Result<()> {
        let username = login_name("master user", username)?;
        let (_writer, txn) = self.begin().await?;
        let row = master_user::Entity::find()
            .filter(master_user::Column::Username.eq(username.as_str()))
            .one(&txn)
            .await
            .map_err(db_err)?
            .ok_or_else(|| Error::not_found("master user", username.as_str()))?;
        row.delete(&txn).await.map_err(db_err)?;
        audit(&txn, actor, "master_user.remove", &username, json!({})).await?;
        commit(txn).await
    }
}
