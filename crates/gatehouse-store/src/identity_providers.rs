//! Identity providers as stored data: their settings (a JSON object), their secrets (kept in a separate table,
//! sealed with the secret key, and never listed), and their attribute mappings (attribute value → mailbox template). Talking to the
//! providers lives in the identity-sources crate.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use gatehouse_core::{Error, Result, Secret};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, ModelTrait, NotSet, PaginatorTrait, QueryFilter,
    QueryOrder, Set,
};
use serde::Serialize;
use serde_json::json;

use crate::entity::{attribute_mapping, identity_provider, identity_provider_secret, mailbox, mailbox_template};
use crate::logs::audit;
use crate::templates::{check_name, template_row};
use crate::{Actor, LOCAL_AUTH_SOURCE, Store, commit, db_err, now, sealing};

/// The kinds of identity provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityProviderKind {
    /// Keycloak (OIDC plus its admin REST API).
    Keycloak,
    /// Any OpenID Connect provider.
    Oidc,
    /// An LDAP directory.
    Ldap,
}

impl IdentityProviderKind {
    /// `keycloak`, `oidc` or `ldap`.
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityProviderKind::Keycloak => "keycloak",
            IdentityProviderKind::Oidc => "oidc",
            IdentityProviderKind::Ldap => "ldap",
        }
    }
}

impl fmt::Display for IdentityProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for IdentityProviderKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "keycloak" => Ok(IdentityProviderKind::Keycloak),
            "oidc" => Ok(IdentityProviderKind::Oidc),
            "ldap" => Ok(IdentityProviderKind::Ldap),
            other => Err(Error::invalid(format!(
                "unknown identity provider type '{other}' (expected keycloak, oidc or ldap)"
            ))),
        }
    }
}

/// An identity provider as listed: settings without secrets, and only the *names* of the stored secrets.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IdentityProvider {
    /// Unique name; mailboxes bound to it have it as their auth source.
    pub name: String,
    /// Type.
    pub kind: IdentityProviderKind,
    /// Inactive providers are not asked.
    pub active: bool,
    /// Settings other than secrets.
    pub settings: serde_json::Value,
    /// Names of the secrets stored for it (never their values).
    pub secret_names: Vec<String>,
    /// Attribute value → template name, in priority order.
    pub mappings: Vec<AttributeMapping>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub modified_at: i64,
}

impl IdentityProvider {
    /// Whether every request to this provider accepts any TLS certificate (`ignore_tls_errors`, which every kind
    /// has): shown as a warning wherever the provider is.
    pub fn ignores_tls_errors(&self) -> bool {
        self.settings.get("ignore_tls_errors").and_then(serde_json::Value::as_bool) == Some(true)
    }
}

/// One attribute mapping.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AttributeMapping {
    /// The attribute value (group DN, claim value, …).
    pub attribute_value: String,
    /// The template it selects.
    pub template: String,
}

/// An identity provider to create.
#[derive(Debug, Clone)]
pub struct NewIdentityProvider {
    /// Unique name (letters, digits, `-`, `_`; not `local`).
    pub name: String,
    /// Type.
    pub kind: IdentityProviderKind,
    /// Settings other than secrets; a JSON object.
    pub settings: serde_json::Value,
    /// Secrets (bind password, client secret, …), stored apart and never listed.
    pub secrets: BTreeMap<String, Secret>,
}

/// Changes to an identity provider; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct IdentityProviderChanges {
    /// Replaces the settings (a JSON object; secrets never go here).
    pub settings: Option<serde_json::Value>,
    /// Activates or deactivates the provider.
    pub active: Option<bool>,
    /// Sets these secrets (others are kept).
    pub secrets: BTreeMap<String, Secret>,
}

/// What a sealed secret is bound to: its provider row and its name.
fn secret_context(provider_id: i64, name: &str) -> String {
    format!("identity_provider_secrets:{provider_id}:{name}")
}

async fn provider_row(db: &impl ConnectionTrait, name: &str) -> Result<identity_provider::Model> {
    identity_provider::Entity::find()
        .filter(identity_provider::Column::Name.eq(name))
        .one(db)
        .await
        .map_err(db_err)?
        .ok_or_else(|| Error::not_found("identity provider", name))
}

impl Store {
    async fn provider_record(
        &self,
        db: &impl ConnectionTrait,
        row: identity_provider::Model,
    ) -> Result<IdentityProvider> {
        let mut secret_names: Vec<String> = identity_provider_secret::Entity::find()
            .filter(identity_provider_secret::Column::ProviderId.eq(row.id))
            .all(db)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(|s| s.name)
            .collect();
        secret_names.sort();
        let rows = attribute_mapping::Entity::find()
            .filter(attribute_mapping::Column::ProviderId.eq(row.id))
            .order_by_asc(attribute_mapping::Column::Position)
            .all(db)
            .await
            .map_err(db_err)?;
        let mut mappings = Vec::new();
        for m in rows {
            let template = mailbox_template::Entity::find_by_id(m.template_id).one(db).await.map_err(db_err)?;
            mappings.push(AttributeMapping {
                attribute_value: m.attribute_value,
                template: template.map(|t| t.name).unwrap_or_default(),
            });
        }
        Ok(IdentityProvider {
            kind: row.kind.parse()?,
            settings: serde_json::from_str(&row.settings).unwrap_or_else(|_| json!({})),
            name: row.name,
            active: row.active,
            secret_names,
            mappings,
            created_at: row.created_at,
            modified_at: row.modified_at,
        })
    }

    /// Creates an identity provider with its secrets.
    pub async fn create_identity_provider(&self, actor: &Actor, new: NewIdentityProvider) -> Result<IdentityProvider> {
        check_name("identity provider", &new.name)?;
        if new.name.eq_ignore_ascii_case(LOCAL_AUTH_SOURCE) {
            return Err(Error::invalid("'local' is reserved for Gatehouse's own passwords"));
        }
        if !new.settings.is_object() {
            return Err(Error::invalid("identity provider settings must be a JSON object"));
        }
        let (_writer, txn) = self.begin().await?;
        let taken = identity_provider::Entity::find()
            .filter(identity_provider::Column::Name.eq(new.name.as_str()))
            .count(&txn)
            .await
            .map_err(db_err)?;
        if taken > 0 {
            return Err(Error::already_exists("identity provider", new.name));
        }
        let time = now();
        let inserted = identity_provider::ActiveModel {
            id: NotSet,
            name: Set(new.name.clone()),
            kind: Set(new.kind.as_str().to_string()),
            active: Set(true),
            settings: Set(new.settings.to_string()),
            created_at: Set(time),
            modified_at: Set(time),
        }
        .insert(&txn)
        .await
        .map_err(db_err)?;
        for (name, value) in &new.secrets {
            identity_provider_secret::ActiveModel {
                provider_id: Set(inserted.id),
                name: Set(name.clone()),
                value: Set(self.secret_key.seal(&secret_context(inserted.id, name), value.expose())),
            }
            .insert(&txn)
            .await
            .map_err(db_err)?;
        }
        let secret_names: Vec<&String> = new.secrets.keys().collect();
        audit(&txn, actor, "idp.add", &new.name, json!({ "kind": new.kind, "secrets": secret_names })).await?;
        let record = self.provider_record(&txn, inserted).await?;
        commit(txn).await?;
        Ok(record)
    }

    /// Changes an identity provider's settings, active flag or secrets. Its `modified_at` always moves forward,
    /// so clients built from the old settings are rebuilt.
    pub async fn update_identity_provider(
        &self,
        actor: &Actor,
        name: &str,
        changes: IdentityProviderChanges,
    ) -> Result<IdentityProvider> {
        let (_writer, txn) = self.begin().await?;
        let current = provider_row(&txn, name).await?;
        let mut row: identity_provider::ActiveModel = current.clone().into();
        let mut details = serde_json::Map::new();
        if let Some(settings) = changes.settings {
            if !settings.is_object() {
                return Err(Error::invalid("identity provider settings must be a JSON object"));
            }
            row.settings = Set(settings.to_string());
            details.insert("settings".into(), json!(true));
        }
        if let Some(active) = changes.active {
            row.active = Set(active);
            details.insert("active".into(), json!(active));
        }
        for (secret, value) in &changes.secrets {
            identity_provider_secret::Entity::delete_many()
                .filter(identity_provider_secret::Column::ProviderId.eq(current.id))
                .filter(identity_provider_secret::Column::Name.eq(secret.as_str()))
                .exec(&txn)
                .await
                .map_err(db_err)?;
            identity_provider_secret::ActiveModel {
                provider_id: Set(current.id),
                name: Set(secret.clone()),
                value: Set(self.secret_key.seal(&secret_context(current.id, secret), value.expose())),
            }
            .insert(&txn)
            .await
            .map_err(db_err)?;
        }
        if !changes.secrets.is_empty() {
            details.insert("secrets".into(), json!(changes.secrets.keys().collect::<Vec<_>>()));
        }
        row.modified_at = Set(now().max(current.modified_at + 1));
        let updated = row.update(&txn).await.map_err(db_err)?;
        audit(&txn, actor, "idp.edit", name, serde_json::Value::Object(details)).await?;
        let record = self.provider_record(&txn, updated).await?;
        // Its mailboxes log in only while it is active.
        let change = (record.active != current.active).then(|| crate::LoginChange::Provider(record.name.clone()));
        if let Some(change) = &change {
            crate::changes::record(&txn, change).await?;
        }
        commit(txn).await?;
        if let Some(change) = change {
            self.announcer.announce(change);
        }
        Ok(record)
    }

    /// All identity providers, by name, without secret values.
    pub async fn list_identity_providers(&self) -> Result<Vec<IdentityProvider>> {
        let rows = identity_provider::Entity::find()
            .order_by_asc(identity_provider::Column::Name)
            .all(&self.db)
            .await
            .map_err(db_err)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(self.provider_record(&self.db, row).await?);
        }
        Ok(out)
    }

    /// One identity provider, without secret values; `None` if there is none of that name.
    pub async fn identity_provider(&self, name: &str) -> Result<Option<IdentityProvider>> {
        let row = identity_provider::Entity::find()
            .filter(identity_provider::Column::Name.eq(name))
            .one(&self.db)
            .await
            .map_err(db_err)?;
        match row {
            Some(row) => Ok(Some(self.provider_record(&self.db, row).await?)),
            None => Ok(None),
        }
    }

    /// The secrets of one identity provider, for the code that talks to it.
    pub async fn identity_provider_secrets(&self, name: &str) -> Result<BTreeMap<String, Secret>> {
        let row = provider_row(&self.db, name).await?;
        let rows = identity_provider_secret::Entity::find()
            .filter(identity_provider_secret::Column::ProviderId.eq(row.id))
            .all(&self.db)
            .await
            .map_err(db_err)?;
        let mut secrets = BTreeMap::new();
        for stored in rows {
            let value = if sealing::is_sealed(&stored.value) {
                self.secret_key.unseal(&secret_context(stored.provider_id, &stored.name), &stored.value)?
            } else {
                // Written before secrets were sealed; `seal_stored_secrets` seals it at the next start.
                Secret::new(stored.value)
            };
            secrets.insert(stored.name, value);
        }
        Ok(secrets)
    }

    /// Seals identity-provider secrets still stored in plain text (written by a Gatehouse that did not seal
    /// them); returns how many it sealed. Run at start-up by the commands that hold the secret key.
    pub async fn seal_stored_secrets(&self) -> Result<usize> {
        let (_writer, txn) = self.begin().await?;
        let plain: Vec<_> = identity_provider_secret::Entity::find()
            .all(&txn)
            .await
            .map_err(db_err)?
            .into_iter()
            .filter(|row| !sealing::is_sealed(&row.value))
            .collect();
        for row in &plain {
            let sealed = self.secret_key.seal(&secret_context(row.provider_id, &row.name), &row.value);
            let mut active: identity_provider_secret::ActiveModel = row.clone().into();
            active.value = Set(sealed);
            active.update(&txn).await.map_err(db_err)?;
        }
        commit(txn).await?;
        Ok(plain.len())
    }

    /// Replaces the attribute mappings of an identity provider (value → template name, in priority order).
    pub async fn set_attribute_mappings(
        &self,
        actor: &Actor,
        provider: &str,
        mappings: &[(String, String)],
    ) -> Result<IdentityProvider> {
        let (_writer, txn) = self.begin().await?;
        let row = provider_row(&txn, provider).await?;
        attribute_mapping::Entity::delete_many()
            .filter(attribute_mapping::Column::ProviderId.eq(row.id))
            .exec(&txn)
            .await
            .map_err(db_err)?;
        for (position, (value, template)) in mappings.iter().enumerate() {
            if value.is_empty() {
                return Err(Error::invalid("an attribute mapping needs a non-empty attribute value"));
            }
            if mappings[..position].iter().any(|(earlier, _)| earlier == value) {
                return Err(Error::invalid(format!("the attribute value '{value}' is mapped twice")));
            }
            let template = template_row(&txn, template).await?;
            attribute_mapping::ActiveModel {
                id: NotSet,
                provider_id: Set(row.id),
                attribute_value: Set(value.clone()),
                template_id: Set(template.id),
                position: Set(position as i64),
            }
            .insert(&txn)
            .await
            .map_err(db_err)?;
        }
        audit(&txn, actor, "idp.mappings", provider, json!({ "mappings": mappings })).await?;
        let record = self.provider_record(&txn, row).await?;
        commit(txn).await?;
        Ok(record)
    }

    /// Removes an identity provider. Refused while mailboxes use it as their auth source.
    pub async fn remove_identity_provider(&self, actor: &Actor, name: &str) -> Result<()> {
        let (_writer, txn) = self.begin().await?;
        let row = provider_row(&txn, name).await?;
        let bound =
            mailbox::Entity::find().filter(mailbox::Column::AuthSource.eq(name)).count(&txn).await.map_err(db_err)?;
        if bound > 0 {
            return Err(Error::refused(format!(
                "{bound} mailbox(es) use identity provider {name} as their auth source; move them first"
            )));
        }
        row.delete(&txn).await.map_err(db_err)?;
        audit(&txn, actor, "idp.remove", name, json!({})).await?;
        commit(txn).await
    }
}
