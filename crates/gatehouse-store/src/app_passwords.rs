//! App passwords: per-mailbox credentials for mail clients, each with a name, protocol scopes, an optional
//! expiry and a revoked flag. Only a hash of the secret is stored; the token (`gh_<id>_<secret>`) is shown to
//! the user once, by the caller. Creating or revoking one bumps the mailbox's revision, so a cached login with
//! a revoked app password stops working at once.

use gatehouse_core::{Error, MailboxAddress, ProtocolSet, Result};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, NotSet, QueryFilter, QueryOrder, Set};
use serde::Serialize;
use serde_json::json;

use crate::entity::app_password;
use crate::login::bump_mailbox_revision;
use crate::logs::audit;
use crate::templates::parse_protocols;
use crate::{Actor, Store, commit, db_err, now};

/// An app password as listed (never its secret or hash).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AppPassword {
    /// Id (part of the token).
    pub id: i64,
    /// The mailbox it belongs to.
    pub mailbox: String,
    /// The user's name for it ("Thunderbird at home").
    pub name: String,
    /// Services it may be used for.
    pub protocols: ProtocolSet,
    /// Not revoked.
    pub active: bool,
    /// Unix seconds after which it stops working.
    pub expires_at: Option<i64>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last successful login with it.
    pub last_used_at: Option<i64>,
    /// Brought over from another system: its client types the bare secret, not a `gh_` token.
    pub legacy: bool,
}

/// An app password to create.
#[derive(Debug, Clone)]
pub struct NewAppPassword {
    /// The user's name for it.
    pub name: String,
    /// Services it may be used for (not empty).
    pub protocols: ProtocolSet,
    /// Unix seconds after which it stops working.
    pub expires_at: Option<i64>,
    /// Hash of the secret part of the token (computed by the caller on the hash pool).
    pub secret_hash: String,
}

fn to_record(row: app_password::Model, mailbox: &str) -> Result<AppPassword> {
    Ok(AppPassword {
        id: row.id,
        mailbox: mailbox.to_string(),
        name: row.name,
        protocols: parse_protocols(&row.protocols)?,
        active: row.active,
        expires_at: row.expires_at,
        created_at: row.created_at,
        last_used_at: row.last_used_at,
        legacy: row.legacy,
    })
}

impl Store {
    /// Creates an app password; the caller builds the token from the returned id and its secret.
    pub async fn create_app_password(
        &self,
        actor: &Actor,
        address: &MailboxAddress,
        new: NewAppPassword,
    ) -> Result<AppPassword> {
        self.insert_app_password(actor, address, new, false).await
    }

    /// Brings over an app password of another system whose client types the bare secret (`secret_hash` is that
    /// system's hash of it, in a scheme Gatehouse verifies): a login with it is decided like one with a token,
    /// its protocols and expiry honoured.
    pub async fn create_legacy_app_password(
        &self,
        actor: &Actor,
        address: &MailboxAddress,
        new: NewAppPassword,
    ) -> Result<AppPassword> {
        self.insert_app_password(actor, address, new, true).await
    }

    /// The ids and stored hashes of a mailbox's legacy app passwords, oldest first (to recognise them when they
    /// are brought over again).
    pub async fn legacy_app_password_hashes(&self, address: &MailboxAddress) -> Result<Vec<(i64, String)>> {
        let owner = self.mailbox_row(&self.db, address).await?;
        Ok(app_password::Entity::find()
            .filter(app_password::Column::MailboxId.eq(owner.id))
            .filter(app_password::Column::Legacy.eq(true))
            .order_by_asc(app_password::Column::Id)
            .all(&self.db)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(|row| (row.id, row.secret_hash))
            .collect())
    }

    async fn insert_app_password(
        &self,
        actor: &Actor,
        address: &MailboxAddress,
        new: NewAppPassword,
        legacy: bool,
    ) -> Result<AppPassword> {
        let name = new.name.trim().to_string();
        if name.is_empty() {
            return Err(Error::invalid("an app password needs a name"));
        }
        gatehouse_core::text::check_free_text("app password name", &name, 100)?;
        if new.protocols.is_empty() {
            return Err(Error::invalid("an app password needs at least one protocol"));
        }
        if new.protocols.contains(gatehouse_core::Service::Sogo) {
            return Err(Error::invalid(
                "an app password cannot open webmail (sogo): webmail opens from the web session",
            ));
        }
        if new.expires_at.is_some_and(|at| at <= now()) {
            return Err(Error::invalid("the expiry date is in the past"));
        }
        let (_writer, txn) = self.begin().await?;
        let owner = self.mailbox_row(&txn, address).await?;
        let inserted = app_password::ActiveModel {
            id: NotSet,
            mailbox_id: Set(owner.id),
            name: Set(name),
            secret_hash: Set(new.secret_hash),
            protocols: Set(new.protocols.to_string()),
            active: Set(true),
            expires_at: Set(new.expires_at),
            created_at: Set(now()),
            last_used_at: Set(None),
            legacy: Set(legacy),
            fingerprint: Set(None),
        }
        .insert(&txn)
        .await
        .map_err(db_err)?;
        bump_mailbox_revision(&txn, owner.id, &owner.address).await?;
        audit(&txn, actor, "app_password.add", &owner.address, json!({
            "id": inserted.id, "name": inserted.name, "protocols": inserted.protocols, "expires_at": inserted.expires_at,
            "legacy": legacy,
        }))
        .await?;
        commit(txn).await?;
        self.announcer.announce(crate::LoginChange::Mailbox(owner.address.clone()));
        to_record(inserted, &owner.address)
    }

    /// The app passwords of a mailbox, newest first.
    pub async fn list_app_passwords(&self, address: &MailboxAddress) -> Result<Vec<AppPassword>> {
        let owner = self.mailbox_row(&self.db, address).await?;
        app_password::Entity::find()
            .filter(app_password::Column::MailboxId.eq(owner.id))
            .order_by_desc(app_password::Column::Id)
            .all(&self.db)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(|row| to_record(row, &owner.address))
            .collect()
    }

    /// Revokes an app password of a mailbox. It stays listed (revoked) for the record.
    pub async fn revoke_app_password(&self, actor: &Actor, address: &MailboxAddress, id: i64) -> Result<AppPassword> {
        let (_writer, txn) = self.begin().await?;
        let owner = self.mailbox_row(&txn, address).await?;
        let row = app_password::Entity::find_by_id(id)
            .filter(app_password::Column::MailboxId.eq(owner.id))
            .one(&txn)
            .await
            .map_err(db_err)?
            .ok_or_else(|| Error::not_found("app password", format!("{id} of {}", owner.address)))?;
        let mut active: app_password::ActiveModel = row.into();
        active.active = Set(false);
        let updated = active.update(&txn).await.map_err(db_err)?;
        bump_mailbox_revision(&txn, owner.id, &owner.address).await?;
        audit(&txn, actor, "app_password.revoke", &owner.address, json!({ "id": id })).await?;
        commit(txn).await?;
        self.announcer.announce(crate::LoginChange::Mailbox(owner.address.clone()));
        to_record(updated, &owner.address)
    }

    /// Notes a successful login with an app password.
    pub async fn mark_app_password_used(&self, id: i64) -> Result<()> {
        app_password::Entity::update_many()
            .col_expr(app_password::Column::LastUsedAt, sea_orm::sea_query::Expr::value(now()))
            .filter(app_password::Column::Id.eq(id))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(())
    }
}
