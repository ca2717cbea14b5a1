//! Mailbox templates: the settings new and IdP-synchronised mailboxes take, and the hash that tells whether a
//! mailbox still matches the template it was made from.

use gatehouse_core::{Error, ProtocolSet, Result};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, ModelTrait, NotSet, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::entity::{attribute_mapping, mailbox, mailbox_template};
use crate::listing::{Page, Window, any_contains, window_of};
use crate::logs::audit;
use crate::{Actor, Store, commit, db_err, now};

/// A mailbox template.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Template {
    /// Unique name.
    pub name: String,
    /// Quota of mailboxes made from it; 0 means unlimited.
    pub quota_mib: i64,
    /// Protocols mailboxes made from it may use.
    pub protocols: ProtocolSet,
    /// Whether mailboxes made from it start active.
    pub active: bool,
    /// Other attributes, as JSON.
    pub attributes: serde_json::Value,
    /// How many mailboxes were made from it.
    pub mailboxes: i64,
    /// A hash of everything it sets on a mailbox; a mailbox's `template_hash` attribute differs from it when the
    /// template changed after it was applied.
    pub hash: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub modified_at: i64,
}

/// A template to create.
#[derive(Debug, Clone)]
pub struct NewTemplate {
    /// Unique name.
    pub name: String,
    /// See [`Template::quota_mib`].
    pub quota_mib: i64,
    /// See [`Template::protocols`].
    pub protocols: ProtocolSet,
    /// See [`Template::active`].
    pub active: bool,
    /// Other attributes; must be a JSON object.
    pub attributes: serde_json::Value,
}

/// Changes to a template; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct TemplateChanges {
    /// New quota.
    pub quota_mib: Option<i64>,
    /// New protocols.
    pub protocols: Option<ProtocolSet>,
    /// New active flag.
    pub active: Option<bool>,
    /// New attributes (replace the old ones).
    pub attributes: Option<serde_json::Value>,
}

/// Checks a name used for templates and identity providers: 1–64 characters, letters, digits, `-`, `_`, `.`,
/// and spaces inside.
pub(crate) fn check_name(kind: &str, name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name == name.trim()
        && name.chars().all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | ' '));
    if valid {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "'{name}' is not a valid {kind} name (1–64 letters, digits, '-', '_', '.', spaces inside)"
        )))
    }
}

pub(crate) fn parse_protocols(text: &str) -> Result<ProtocolSet> {
    text.parse().map_err(|err| Error::Internal(format!("bad protocol list '{text}' in the database: {err}")))
}

fn parse_attributes(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|_| json!({}))
}

fn check_attributes(attributes: &serde_json::Value) -> Result<()> {
    if attributes.is_object() { Ok(()) } else { Err(Error::invalid("template attributes must be a JSON object")) }
}

/// A stable hash of everything a template sets on a mailbox; stored on the mailbox as `template_hash` so a
/// later sync can tell whether the template changed since it was applied.
pub(crate) fn template_hash(model: &mailbox_template::Model) -> String {
    let canonical = json!({
        "quota_mib": model.quota_mib,
        "protocols": model.protocols,
        "active": model.active,
        "attributes": parse_attributes(&model.attributes),
    });
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

pub(crate) async fn template_row(db: &impl ConnectionTrait, name: &str) -> Result<mailbox_template::Model> {
    mailbox_template::Entity::find()
        .filter(mailbox_template::Column::Name.eq(name))
        .one(db)
        .await
        .map_err(db_err)?
        .ok_or_else(|| Error::not_found("template", name))
}

fn to_record(model: mailbox_template::Model, mailboxes: i64) -> Result<Template> {
    Ok(Template {
        protocols: parse_protocols(&model.protocols)?,
        attributes: parse_attributes(&model.attributes),
        hash: template_hash(&model),
        name: model.name,
        quota_mib: model.quota_mib,
        active: model.active,
        mailboxes,
        created_at: model.created_at,
        modified_at: model.modified_at,
    })
}

impl Store {
    /// Creates a template.
    pub async fn create_template(&self, actor: &Actor, new: NewTemplate) -> Result<Template> {
        check_name("template", &new.name)?;
        check_attributes(&new.attributes)?;
        if new.quota_mib < 0 {
            return Err(Error::invalid("a quota cannot be negative"));
        }
        let (_writer, txn) = self.begin().await?;
        let exists = mailbox_template::Entity::find()
            .filter(mailbox_template::Column::Name.eq(new.name.as_str()))
            .count(&txn)
            .await
            .map_err(db_err)?;
        if exists > 0 {
            return Err(Error::already_exists("template", new.name));
        }
        let time = now();
        let inserted = mailbox_template::ActiveModel {
            id: NotSet,
            name: Set(new.name),
            quota_mib: Set(new.quota_mib),
            protocols: Set(new.protocols.to_string()),
            active: Set(new.active),
            attributes: Set(new.attributes.to_string()),
            created_at: Set(time),
            modified_at: Set(time),
        }
        .insert(&txn)
        .await
        .map_err(db_err)?;
        audit(
            &txn,
            actor,
            "template.add",
            &inserted.name,
            json!({
                "quota_mib": inserted.quota_mib, "protocols": inserted.protocols, "active": inserted.active,
            }),
        )
        .await?;
        commit(txn).await?;
        to_record(inserted, 0)
    }

    /// All templates, by name, with the number of mailboxes made from each.
    pub async fn list_templates(&self) -> Result<Vec<Template>> {
        let templates = mailbox_template::Entity::find()
            .order_by_asc(mailbox_template::Column::Name)
            .all(&self.db)
            .await
            .map_err(db_err)?;
        // One count per template, grouped in the database (not one row per mailbox).
        let used: Vec<(Option<i64>, i64)> = mailbox::Entity::find()
            .select_only()
            .column(mailbox::Column::TemplateId)
            .column_as(sea_orm::sea_query::ExprTrait::count(sea_orm::sea_query::Expr::col(mailbox::Column::Id)), "n")
            .filter(mailbox::Column::TemplateId.is_not_null())
            .group_by(mailbox::Column::TemplateId)
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(db_err)?;
        let used: std::collections::HashMap<i64, i64> =
            used.into_iter().filter_map(|(id, n)| id.map(|id| (id, n))).collect();
        templates
            .into_iter()
            .map(|t| {
                let count = used.get(&t.id).copied().unwrap_or(0);
                to_record(t, count)
            })
            .collect()
    }

    /// One page of the templates whose name contains `text` (ignoring case), by name, each with how many
    /// mailboxes were made from it.
    pub async fn search_templates(&self, text: Option<&str>, window: Window) -> Result<Page<Template>> {
        let mut query = mailbox_template::Entity::find().order_by_asc(mailbox_template::Column::Name);
        if let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) {
            query = query.filter(any_contains(&[mailbox_template::Column::Name], text));
        }
        let (rows, total) = window_of(&self.db, query, window).await?;
        let ids: Vec<i64> = rows.iter().map(|t| t.id).collect();
        let used: Vec<(Option<i64>, i64)> = mailbox::Entity::find()
            .select_only()
            .column(mailbox::Column::TemplateId)
            .column_as(sea_orm::sea_query::Expr::cust("COUNT(*)"), "n")
            .filter(mailbox::Column::TemplateId.is_in(ids))
            .group_by(mailbox::Column::TemplateId)
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(db_err)?;
        let used: std::collections::HashMap<i64, i64> =
            used.into_iter().filter_map(|(id, n)| id.map(|id| (id, n))).collect();
        let items = rows
            .into_iter()
            .map(|t| {
                let count = used.get(&t.id).copied().unwrap_or(0);
                to_record(t, count)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Page { items, total, more: false, offset: window.offset, limit: window.limit })
    }

    /// The templates' names, in order (for choosing one).
    pub async fn template_names(&self) -> Result<Vec<String>> {
        mailbox_template::Entity::find()
            .select_only()
            .column(mailbox_template::Column::Name)
            .order_by_asc(mailbox_template::Column::Name)
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(db_err)
    }

    /// The current hash of every template, by name (what a sync compares with a mailbox's `template_hash`).
    pub async fn template_hashes(&self) -> Result<std::collections::HashMap<String, String>> {
        let templates = mailbox_template::Entity::find().all(&self.db).await.map_err(db_err)?;
        Ok(templates.iter().map(|t| (t.name.clone(), template_hash(t))).collect())
    }

    /// Changes a template. Mailboxes made from it keep their settings until they are synchronised again.
    pub async fn update_template(&self, actor: &Actor, name: &str, changes: TemplateChanges) -> Result<Template> {
        let (_writer, txn) = self.begin().await?;
        let current = template_row(&txn, name).await?;
        let mut active: mailbox_template::ActiveModel = current.clone().into();
        if let Some(quota) = changes.quota_mib {
            if quota < 0 {
                return Err(Error::invalid("a quota cannot be negative"));
            }
            active.quota_mib = Set(quota);
        }
        if let Some(protocols) = changes.protocols {
            active.protocols = Set(protocols.to_string());
        }
        if let Some(flag) = changes.active {
            active.active = Set(flag);
        }
        if let Some(attributes) = changes.attributes {
            check_attributes(&attributes)?;
            active.attributes = Set(attributes.to_string());
        }
        active.modified_at = Set(now());
        let updated = active.update(&txn).await.map_err(db_err)?;
        let mailboxes = mailbox::Entity::find()
            .filter(mailbox::Column::TemplateId.eq(updated.id))
            .count(&txn)
            .await
            .map_err(db_err)? as i64;
        audit(
            &txn,
            actor,
            "template.edit",
            &updated.name,
            json!({
                "quota_mib": updated.quota_mib, "protocols": updated.protocols, "active": updated.active,
            }),
        )
        .await?;
        commit(txn).await?;
        to_record(updated, mailboxes)
    }

    /// Removes a template. Mailboxes made from it keep their settings; a template still named in an identity
    /// provider's attribute mapping cannot be removed.
    pub async fn remove_template(&self, actor: &Actor, name: &str) -> Result<()> {
        let (_writer, txn) = self.begin().await?;
        let current = template_row(&txn, name).await?;
        let mappings = attribute_mapping::Entity::find()
            .filter(attribute_mapping::Column::TemplateId.eq(current.id))
            .count(&txn)
            .await
            .map_err(db_err)?;
        if mappings > 0 {
            return Err(Error::refused(format!(
                "template {name} is used by {mappings} identity-provider attribute mapping(s); change them first"
            )));
        }
        let removed = current.name.clone();
        current.delete(&txn).await.map_err(db_err)?;
        audit(&txn, actor, "template.remove", &removed, json!({})).await?;
        commit(txn).await
    }
}
