//! Administrators and domain administrators: one table, one username namespace, a role, the domains a domain
//! admin manages, and its permissions (such as `login_as`).

use std::collections::BTreeSet;

use gatehouse_core::text::login_name;
use gatehouse_core::{AdminRole, DomainName, Error, Result};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, ModelTrait, NotSet, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use serde::Serialize;
use serde_json::json;

use crate::entity::{admin, admin_domain, domain};
use crate::listing::{Page, Window, any_contains};
use crate::logs::audit;
use crate::{Actor, Store, commit, db_err, now};

/// Permissions a domain administrator can be given.
pub const DOMAIN_ADMIN_PERMISSIONS: &[&str] = &["login_as"];

/// An administrator or domain administrator. The password hash is never included.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AdminAccount {
    /// Login name.
    pub username: String,
    /// Admin or domain admin.
    pub role: AdminRole,
    /// Inactive accounts cannot log in.
    pub active: bool,
    /// Must choose a new password at the next login.
    pub force_password_change: bool,
    /// Must set up TOTP at the next login.
    pub force_totp: bool,
    /// Permissions (domain admins only; admins have all).
    pub acl: Vec<String>,
    /// Domains managed (domain admins only).
    pub domains: Vec<String>,
    /// `local` (a password here) or the identity provider the administrator signs in at.
    pub auth_source: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub modified_at: i64,
}

/// A domain administrator to create.
#[derive(Debug, Clone)]
pub struct NewDomainAdmin {
    /// Login name.
    pub username: String,
    /// Password hash.
    pub password_hash: String,
    /// Domains managed; each must exist.
    pub domains: Vec<DomainName>,
    /// Permissions, from [`DOMAIN_ADMIN_PERMISSIONS`].
    pub acl: Vec<String>,
}

/// An administrator an identity provider vouches for at a sign-in, with the role its claims give.
#[derive(Debug, Clone)]
pub struct ProviderAdmin {
    /// Login name (the account's address).
    pub username: String,
    /// Administrator or domain administrator.
    pub role: AdminRole,
    /// Domains managed (domain administrators); each must exist.
    pub domains: Vec<DomainName>,
    /// Permissions, from [`DOMAIN_ADMIN_PERMISSIONS`].
    pub acl: Vec<String>,
    /// The provider's name.
    pub provider: String,
    /// The account at the provider (`sub`).
    pub subject: String,
}

/// Changes to a domain administrator; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct DomainAdminChanges {
    /// New password hash.
    pub password_hash: Option<String>,
    /// Replace the managed domains.
    pub domains: Option<Vec<DomainName>>,
    /// Replace the permissions.
    pub acl: Option<Vec<String>>,
    /// Activate or deactivate.
    pub active: Option<bool>,
    /// Set or clear the forced password change.
    pub force_password_change: Option<bool>,
    /// Set or clear the forced TOTP enrolment.
    pub force_totp: Option<bool>,
}

/// Changes any administrator (admin or domain admin) can get; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct AdminChanges {
    /// New password hash.
    pub password_hash: Option<String>,
    /// Activate or deactivate.
    pub active: Option<bool>,
    /// Set or clear the forced password change.
    pub force_password_change: Option<bool>,
    /// Set or clear the forced TOTP enrolment.
    pub force_totp: Option<bool>,
}

fn normalise_acl(acl: &[String]) -> Result<String> {
    let mut set = BTreeSet::new();
    for permission in acl {
        let permission = permission.trim().to_ascii_lowercase();
        if permission.is_empty() || permission == "none" {
            continue;
        }
        if !DOMAIN_ADMIN_PERMISSIONS.contains(&permission.as_str()) {
            return Err(Error::invalid(format!(
                "unknown permission '{permission}' (known: {})",
                DOMAIN_ADMIN_PERMISSIONS.join(", ")
            )));
        }
        set.insert(permission);
    }
    Ok(set.into_iter().collect::<Vec<_>>().join(","))
}

async fn domain_ids(db: &impl ConnectionTrait, names: &[DomainName]) -> Result<Vec<(i64, String)>> {
    let mut ids = Vec::new();
    for name in names {
        let row = domain::Entity::find()
            .filter(domain::Column::Name.eq(name.as_str()))
            .one(db)
            .await
            .map_err(db_err)?
            .ok_or_else(|| Error::not_found("domain", name.as_str()))?;
        if !ids.iter().any(|(id, _)| *id == row.id) {
            ids.push((row.id, row.name));
        }
    }
    Ok(ids)
}

async fn set_domains(db: &impl ConnectionTrait, admin_id: i64, domains: &[(i64, String)]) -> Result<()> {
    admin_domain::Entity::delete_many()
        .filter(admin_domain::Column::AdminId.eq(admin_id))
        .exec(db)
        .await
        .map_err(db_err)?;
    for (domain_id, _) in domains {
        admin_domain::ActiveModel { admin_id: Set(admin_id), domain_id: Set(*domain_id) }
            .insert(db)
            .await
            .map_err(db_err)?;
    }
    Ok(())
}

fn to_record(model: admin::Model, domains: Vec<String>) -> Result<AdminAccount> {
    Ok(AdminAccount {
        role: AdminRole::parse(&model.role)?,
        acl: model.acl.split(',').filter(|p| !p.is_empty()).map(str::to_string).collect(),
        username: model.username,
        active: model.active,
        force_password_change: model.force_password_change,
        force_totp: model.force_totp,
        domains,
        auth_source: model.auth_source,
        created_at: model.created_at,
        modified_at: model.modified_at,
    })
}

/// Applies the changes every administrator can get to `row`, noting each in the audit `details`.
fn apply_account_changes(
    row: &mut admin::ActiveModel,
    changes: AdminChanges,
    details: &mut serde_json::Map<String, serde_json::Value>,
) {
    if let Some(hash) = changes.password_hash {
        row.password_hash = Set(hash);
        details.insert("password".into(), json!("changed"));
    }
    if let Some(flag) = changes.active {
        row.active = Set(flag);
        details.insert("active".into(), json!(flag));
    }
    if let Some(flag) = changes.force_password_change {
        row.force_password_change = Set(flag);
        details.insert("force_password_change".into(), json!(flag));
    }
    if let Some(flag) = changes.force_totp {
        row.force_totp = Set(flag);
        details.insert("force_totp".into(), json!(flag));
    }
}

/// The names of domains by id, sorted.
async fn domain_names_of(db: &impl ConnectionTrait, ids: impl Iterator<Item = i64>) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for id in ids {
        if let Some(d) = domain::Entity::find_by_id(id).one(db).await.map_err(db_err)? {
            names.push(d.name);
        }
    }
    names.sort();
    Ok(names)
}

impl Store {
    async fn admin_row(&self, db: &impl ConnectionTrait, username: &str, role: AdminRole) -> Result<admin::Model> {
        let what = if role == AdminRole::Admin { "admin" } else { "domain admin" };
        let name = login_name(what, username)?;
        admin::Entity::find()
            .filter(admin::Column::Username.eq(name.as_str()))
            .filter(admin::Column::Role.eq(role.as_str()))
            .one(db)
            .await
            .map_err(db_err)?
            .ok_or_else(|| Error::not_found(what, name))
    }

    async fn insert_admin(
        &self,
        db: &impl ConnectionTrait,
        username: &str,
        role: AdminRole,
        password_hash: String,
        acl: String,
    ) -> Result<admin::Model> {
        let taken =
            admin::Entity::find().filter(admin::Column::Username.eq(username)).count(db).await.map_err(db_err)?;
        if taken > 0 {
            return Err(Error::already_exists("administrator", username));
        }
        let time = now();
        admin::ActiveModel {
            id: NotSet,
            username: Set(username.to_string()),
            role: Set(role.as_str().to_string()),
            password_hash: Set(password_hash),
            active: Set(true),
            force_password_change: Set(false),
            force_totp: Set(false),
            acl: Set(acl),
            auth_source: Set("local".to_string()),
            external_id: Set(None),
            created_at: Set(time),
            modified_at: Set(time),
        }
        .insert(db)
        .await
        .map_err(db_err)
    }

    /// Creates an administrator.
    pub async fn create_admin(&self, actor: &Actor, username: &str, password_hash: String) -> Result<AdminAccount> {
        let username = login_name("admin", username)?;
        let (_writer, txn) = self.begin().await?;
        let inserted = self.insert_admin(&txn, &username, AdminRole::Admin, password_hash, String::new()).await?;
        audit(&txn, actor, "admin.add", &username, json!({})).await?;
        commit(txn).await?;
        to_record(inserted, Vec::new())
    }

    /// Creates the first administrator if there is none yet; returns whether it did. Used on first start.
    pub async fn bootstrap_admin(&self, username: &str, password_hash: String) -> Result<bool> {
        let (_writer, txn) = self.begin().await?;
        let admins = admin::Entity::find()
            .filter(admin::Column::Role.eq(AdminRole::Admin.as_str()))
            .count(&txn)
            .await
            .map_err(db_err)?;
        if admins > 0 {
            return Ok(false);
        }
        let username = login_name("admin", username)?;
        self.insert_admin(&txn, &username, AdminRole::Admin, password_hash, String::new()).await?;
        audit(&txn, &Actor::system(), "admin.bootstrap", &username, json!({})).await?;
        commit(txn).await?;
        Ok(true)
    }

    /// Creates a domain administrator for existing domains.
    pub async fn create_domain_admin(&self, actor: &Actor, new: NewDomainAdmin) -> Result<AdminAccount> {
        let username = login_name("domain admin", &new.username)?;
        let acl = normalise_acl(&new.acl)?;
        let (_writer, txn) = self.begin().await?;
        let domains = domain_ids(&txn, &new.domains).await?;
        let inserted = self.insert_admin(&txn, &username, AdminRole::DomainAdmin, new.password_hash, acl).await?;
        set_domains(&txn, inserted.id, &domains).await?;
        let names: Vec<String> = domains.into_iter().map(|(_, name)| name).collect();
        audit(&txn, actor, "domain_admin.add", &username, json!({ "domains": names, "acl": inserted.acl })).await?;
        commit(txn).await?;
        to_record(inserted, names)
    }

    /// Creates or updates the administrator a provider's sign-in names: bound to the account (`sub`) at its first
    /// sign-in, its role, domains and permissions following the provider's claims at every sign-in (audited
    /// when they change). Refused for a local administrator of that name and for one bound to another account
    /// or provider. It has no password here; an administrator deactivated here stays inactive.
    pub async fn provision_provider_admin(&self, actor: &Actor, admin: ProviderAdmin) -> Result<AdminAccount> {
        let username = login_name("administrator", &admin.username)?;
        let acl = if admin.role == AdminRole::DomainAdmin { normalise_acl(&admin.acl)? } else { String::new() };
        let (_writer, txn) = self.begin().await?;
        let domains =
            if admin.role == AdminRole::DomainAdmin { domain_ids(&txn, &admin.domains).await? } else { Vec::new() };
        let names: Vec<String> = domains.iter().map(|(_, name)| name.clone()).collect();
        let existing = admin::Entity::find()
            .filter(admin::Column::Username.eq(username.as_str()))
            .one(&txn)
            .await
            .map_err(db_err)?;
        let row = match existing {
            Some(row) => {
                if row.auth_source != admin.provider {
                    return Err(Error::refused(format!(
                        "the administrator {username} signs in {}, not through {}",
                        if row.auth_source == "local" {
                            "with a password".to_string()
                        } else {
                            format!("through {}", row.auth_source)
                        },
                        admin.provider
                    )));
                }
                if row.external_id.as_deref().is_some_and(|bound| bound != admin.subject) {
                    return Err(Error::refused(format!(
                        "the administrator {username} belongs to another account at {}",
                        admin.provider
                    )));
                }
                let changed = row.role != admin.role.as_str() || row.acl != acl;
                let mut update: admin::ActiveModel = row.into();
                update.role = Set(admin.role.as_str().to_string());
                update.acl = Set(acl.clone());
                update.external_id = Set(Some(admin.subject.clone()));
                if changed {
                    update.modified_at = Set(now());
                }
                let row = update.update(&txn).await.map_err(db_err)?;
                if changed {
                    let details = json!({ "provider": admin.provider, "role": admin.role.as_str(), "acl": acl });
                    audit(&txn, actor, "admin.update", &username, details).await?;
                }
                row
            }
            None => {
                let inserted = self.insert_admin(&txn, &username, admin.role, String::new(), acl.clone()).await?;
                let mut bound: admin::ActiveModel = inserted.into();
                bound.auth_source = Set(admin.provider.clone());
                bound.external_id = Set(Some(admin.subject.clone()));
                let row = bound.update(&txn).await.map_err(db_err)?;
                let action = if admin.role == AdminRole::Admin { "admin.add" } else { "domain_admin.add" };
                let details = json!({ "provider": admin.provider, "domains": names, "acl": acl });
                audit(&txn, actor, action, &username, details).await?;
                row
            }
        };
        set_domains(&txn, row.id, &domains).await?;
        commit(txn).await?;
        to_record(row, names)
    }

    /// The administrator or domain administrator (`role`) named `username`, with its domains.
    pub async fn admin(&self, role: AdminRole, username: &str) -> Result<Option<AdminAccount>> {
        let Some(row) = admin::Entity::find()
            .filter(admin::Column::Role.eq(role.as_str()))
            .filter(admin::Column::Username.eq(username))
            .one(&self.db)
            .await
            .map_err(db_err)?
            // Exactly this name, whatever the database's collation.
            .filter(|row| row.username == username)
        else {
            return Ok(None);
        };
        let links = admin_domain::Entity::find()
            .filter(admin_domain::Column::AdminId.eq(row.id))
            .all(&self.db)
            .await
            .map_err(db_err)?;
        let ids: Vec<i64> = links.iter().map(|link| link.domain_id).collect();
        let mut domains: Vec<String> = if ids.is_empty() {
            Vec::new()
        } else {
            domain::Entity::find()
                .filter(domain::Column::Id.is_in(ids))
                .all(&self.db)
                .await
                .map_err(db_err)?
                .into_iter()
                .map(|d| d.name)
                .collect()
        };
        domains.sort();
        to_record(row, domains).map(Some)
    }

    /// The stored password hash of the administrator or domain administrator (`role`) named `username` (empty for
    /// one who signs in at an identity provider); `None` when there is no such account.
    pub async fn admin_password_hash(&self, role: AdminRole, username: &str) -> Result<Option<String>> {
        match self.admin_row(&self.db, username, role).await {
            Ok(row) => Ok(Some(row.password_hash)),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Administrators or domain administrators, by username, with their domains.
    pub async fn list_admins(&self, role: AdminRole) -> Result<Vec<AdminAccount>> {
        let admins = admin::Entity::find()
            .filter(admin::Column::Role.eq(role.as_str()))
            .order_by_asc(admin::Column::Username)
            .all(&self.db)
            .await
            .map_err(db_err)?;
        self.with_domains(admins).await
    }

    /// One page of the accounts of `role` whose username contains `text` (ignoring case), by username, with the
    /// domains of those on the page.
    pub async fn search_admins(
        &self,
        role: AdminRole,
        text: Option<&str>,
        window: Window,
    ) -> Result<Page<AdminAccount>> {
        let mut query = admin::Entity::find().filter(admin::Column::Role.eq(role.as_str()));
        if let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) {
            query = query.filter(any_contains(&[admin::Column::Username], text));
        }
        let total = query.clone().count(&self.db).await.map_err(db_err)?;
        let admins = query
            .order_by_asc(admin::Column::Username)
            .offset(window.offset)
            .limit(window.limit)
            .all(&self.db)
            .await
            .map_err(db_err)?;
        let items = self.with_domains(admins).await?;
        Ok(Page { items, total, more: false, offset: window.offset, limit: window.limit })
    }

    /// The records of `admins`, each with its domains (read for these accounts only).
    async fn with_domains(&self, admins: Vec<admin::Model>) -> Result<Vec<AdminAccount>> {
        let ids: Vec<i64> = admins.iter().map(|a| a.id).collect();
        let links = admin_domain::Entity::find()
            .filter(admin_domain::Column::AdminId.is_in(ids))
            .all(&self.db)
            .await
            .map_err(db_err)?;
        let domain_ids: Vec<i64> = links.iter().map(|l| l.domain_id).collect();
        let domain_names = crate::domains::names_by_id(&self.db, domain_ids).await?;
        admins
            .into_iter()
            .map(|a| {
                let mut domains: Vec<String> = links
                    .iter()
                    .filter(|link| link.admin_id == a.id)
                    .filter_map(|link| domain_names.get(&link.domain_id).cloned())
                    .collect();
                domains.sort();
                to_record(a, domains)
            })
            .collect()
    }

    /// Changes an administrator or domain administrator: password, active flag, forced password change or TOTP
    /// enrolment. The last active administrator cannot be deactivated. A new password or a deactivation ends the
    /// account's web sessions.
    pub async fn update_admin(
        &self,
        actor: &Actor,
        username: &str,
        role: AdminRole,
        changes: AdminChanges,
    ) -> Result<AdminAccount> {
        let (_writer, txn) = self.begin().await?;
        let current = self.admin_row(&txn, username, role).await?;
        if role == AdminRole::Admin && current.active && changes.active == Some(false) {
            let active_admins = admin::Entity::find()
                .filter(admin::Column::Role.eq(AdminRole::Admin.as_str()))
                .filter(admin::Column::Active.eq(true))
                .count(&txn)
                .await
                .map_err(db_err)?;
            if active_admins <= 1 {
                return Err(Error::refused(format!(
                    "{} is the last active administrator; add another one first",
                    current.username
                )));
            }
        }
        let mut row: admin::ActiveModel = current.clone().into();
        let mut details = serde_json::Map::new();
        apply_account_changes(&mut row, changes, &mut details);
        row.modified_at = Set(now().max(current.modified_at + 1));
        let updated = row.update(&txn).await.map_err(db_err)?;
        let mut ended = Vec::new();
        if details.contains_key("password") || details.get("active") == Some(&json!(false)) {
            let kind = if role == AdminRole::Admin { crate::ADMIN_SESSIONS } else { crate::DOMAIN_ADMIN_SESSIONS };
            ended = crate::web_sessions::end_sessions_of(&txn, kind, &updated.username).await?;
        }
        let action = if role == AdminRole::Admin { "admin.edit" } else { "domain_admin.edit" };
        audit(&txn, actor, action, &updated.username, serde_json::Value::Object(details)).await?;
        let links = admin_domain::Entity::find()
            .filter(admin_domain::Column::AdminId.eq(updated.id))
            .all(&txn)
            .await
            .map_err(db_err)?;
        let names = domain_names_of(&txn, links.iter().map(|l| l.domain_id)).await?;
        commit(txn).await?;
        self.announcer.announce_all(ended);
        to_record(updated, names)
    }

    /// Changes a domain administrator.
    pub async fn update_domain_admin(
        &self,
        actor: &Actor,
        username: &str,
        changes: DomainAdminChanges,
    ) -> Result<AdminAccount> {
        let (_writer, txn) = self.begin().await?;
        let current = self.admin_row(&txn, username, AdminRole::DomainAdmin).await?;
        let mut row: admin::ActiveModel = current.clone().into();
        let mut details = serde_json::Map::new();
        if let Some(acl) = &changes.acl {
            let acl = normalise_acl(acl)?;
            details.insert("acl".into(), json!(acl));
            row.acl = Set(acl);
        }
        let common = AdminChanges {
            password_hash: changes.password_hash,
            active: changes.active,
            force_password_change: changes.force_password_change,
            force_totp: changes.force_totp,
        };
        apply_account_changes(&mut row, common, &mut details);
        row.modified_at = Set(now());
        let updated = row.update(&txn).await.map_err(db_err)?;
        if let Some(domains) = &changes.domains {
            let ids = domain_ids(&txn, domains).await?;
            set_domains(&txn, updated.id, &ids).await?;
            details.insert("domains".into(), json!(ids.iter().map(|(_, n)| n).collect::<Vec<_>>()));
        }
        let links = admin_domain::Entity::find()
            .filter(admin_domain::Column::AdminId.eq(updated.id))
            .all(&txn)
            .await
            .map_err(db_err)?;
        let names = domain_names_of(&txn, links.iter().map(|l| l.domain_id)).await?;
        let ended = if details.contains_key("password")
            || details.get("active") == Some(&json!(false))
            || details.contains_key("domains")
            || details.contains_key("acl")
        {
            crate::web_sessions::end_sessions_of(&txn, crate::DOMAIN_ADMIN_SESSIONS, &updated.username).await?
        } else {
            Vec::new()
        };
        audit(&txn, actor, "domain_admin.edit", &updated.username, serde_json::Value::Object(details)).await?;
        commit(txn).await?;
        self.announcer.announce_all(ended);
        to_record(updated, names)
    }

    /// Removes an administrator or domain administrator. The last active administrator cannot be removed.
    pub async fn remove_admin(&self, actor: &Actor, username: &str, role: AdminRole) -> Result<()> {
        let (_writer, txn) = self.begin().await?;
        let current = self.admin_row(&txn, username, role).await?;
        if role == AdminRole::Admin && current.active {
            let active_admins = admin::Entity::find()
                .filter(admin::Column::Role.eq(AdminRole::Admin.as_str()))
                .filter(admin::Column::Active.eq(true))
                .count(&txn)
                .await
                .map_err(db_err)?;
            if active_admins <= 1 {
                return Err(Error::refused(format!(
                    "{} is the last active administrator; add another one first",
                    current.username
                )));
            }
        }
        let removed = current.username.clone();
        crate::totp::delete_totp_of(&txn, "admin", current.id).await?;
        crate::passkeys::delete_passkeys_of(&txn, "admin", current.id).await?;
        let kind = if role == AdminRole::Admin { crate::ADMIN_SESSIONS } else { crate::DOMAIN_ADMIN_SESSIONS };
        let ended = crate::web_sessions::end_sessions_of(&txn, kind, &current.username).await?;
        current.delete(&txn).await.map_err(db_err)?;
        let action = if role == AdminRole::Admin { "admin.remove" } else { "domain_admin.remove" };
        audit(&txn, actor, action, &removed, json!({})).await?;
        commit(txn).await?;
        self.announcer.announce_all(ended);
        Ok(())
    }
}
