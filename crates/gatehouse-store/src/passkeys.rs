//! Passkeys (WebAuthn credentials) of mailboxes and administrators.
//!
//! The store keeps what the relying party (the engine, through `webauthn-rs`) hands it: the credential id, the
//! user handle the authenticator stores with a discoverable credential, the serialised credential record
//! (public key, algorithm, flags) and the signature counter. One credential belongs to one account (its
//! SHA-256 is unique). Adding or removing a mailbox's passkey bumps the mailbox's revision, since a second
//! factor changes what the mail protocols accept (app passwords only).

use gatehouse_core::{Error, Result};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, ModelTrait, NotSet, PaginatorTrait, QueryFilter,
    QueryOrder, Set,
};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::entity::{admin, mailbox, passkey};
use crate::logs::audit;
use crate::totp::Principal;
use crate::{Actor, Store, TotpPrincipal, commit, db_err, now};

/// The most passkeys one account may have.
pub const MAX_PASSKEYS: u64 = 20;
/// Longest accepted passkey name.
const MAX_NAME: usize = 64;

/// A registered passkey.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Passkey {
    /// Row id.
    pub id: i64,
    /// The name the user gave it ("YubiKey", "Laptop").
    pub name: String,
    /// The credential id, base64url without padding.
    pub credential_id: String,
    /// The user handle the authenticator keeps with the credential.
    #[serde(skip)]
    pub user_handle: String,
    /// The relying party's record of the credential (JSON, as `webauthn-rs` serialises it).
    #[serde(skip)]
    pub credential: String,
    /// The last signature counter seen (0 for authenticators that keep none).
    pub counter: i64,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last sign-in with it.
    pub last_used_at: Option<i64>,
}

/// A passkey to register.
#[derive(Debug, Clone)]
pub struct NewPasskey {
    /// See [`Passkey::name`].
    pub name: String,
    /// See [`Passkey::credential_id`].
    pub credential_id: String,
    /// See [`Passkey::user_handle`].
    pub user_handle: String,
    /// See [`Passkey::credential`].
    pub credential: String,
    /// See [`Passkey::counter`].
    pub counter: i64,
}

/// Whose passkey a credential is, found by its id (passwordless sign-in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasskeyOwner {
    /// A mailbox, by address.
    Mailbox(String),
    /// An administrator or domain administrator, by username.
    Admin(String),
}

/// The key a credential id is unique by.
fn credential_hash(credential_id: &str) -> String {
    hex::encode(Sha256::digest(credential_id.as_bytes()))
}

fn check_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(Error::invalid(format!("a passkey needs a name of 1 to {MAX_NAME} characters")));
    }
    Ok(name.to_string())
}

fn to_record(row: passkey::Model) -> Passkey {
    Passkey {
        id: row.id,
        name: row.name,
        credential_id: row.credential_id,
        user_handle: row.user_handle,
        credential: row.credential,
        counter: row.counter,
        created_at: row.created_at,
        last_used_at: row.last_used_at,
    }
}

impl Store {
    async fn passkey_rows(&self, db: &impl ConnectionTrait, principal: &Principal) -> Result<Vec<passkey::Model>> {
        passkey::Entity::find()
            .filter(passkey::Column::PrincipalKind.eq(principal.kind))
            .filter(passkey::Column::PrincipalId.eq(principal.id))
            .order_by_asc(passkey::Column::Id)
            .all(db)
            .await
            .map_err(db_err)
    }

    /// The passkeys of a mailbox or administrator, oldest first.
    pub async fn passkeys(&self, principal: TotpPrincipal<'_>) -> Result<Vec<Passkey>> {
        let principal = self.totp_principal(&self.db, principal).await?;
        Ok(self.passkey_rows(&self.db, &principal).await?.into_iter().map(to_record).collect())
    }

    /// Registers a passkey. A credential registered to any account already is [`Error::AlreadyExists`]; more
    /// than [`MAX_PASSKEYS`] are refused.
    pub async fn add_passkey(&self, actor: &Actor, principal: TotpPrincipal<'_>, new: NewPasskey) -> Result<Passkey> {
        let name = check_name(&new.name)?;
        if new.credential_id.is_empty() || new.user_handle.is_empty() || new.credential.is_empty() {
            return Err(Error::invalid("a passkey needs a credential id, a user handle and its public key"));
        }
        let (_writer, txn) = self.begin().await?;
        let principal = self.totp_principal(&txn, principal).await?;
        let hash = credential_hash(&new.credential_id);
        let taken = passkey::Entity::find()
            .filter(passkey::Column::CredentialHash.eq(hash.as_str()))
            .count(&txn)
            .await
            .map_err(db_err)?;
        if taken > 0 {
            return Err(Error::already_exists("passkey", "this credential"));
        }
        let count = passkey::Entity::find()
            .filter(passkey::Column::PrincipalKind.eq(principal.kind))
            .filter(passkey::Column::PrincipalId.eq(principal.id))
            .count(&txn)
            .await
            .map_err(db_err)?;
        if count >= MAX_PASSKEYS {
            return Err(Error::refused(format!(
                "{} has {MAX_PASSKEYS} passkeys, the most one account may have; remove one first",
                principal.name
            )));
        }
        let inserted = passkey::ActiveModel {
            id: NotSet,
            principal_kind: Set(principal.kind.to_string()),
            principal_id: Set(principal.id),
            credential_id: Set(new.credential_id),
            credential_hash: Set(hash),
            user_handle: Set(new.user_handle),
            name: Set(name),
            credential: Set(new.credential),
            counter: Set(new.counter.max(0)),
            created_at: Set(now()),
            last_used_at: Set(None),
        }
        .insert(&txn)
        .await
        .map_err(db_err)?;
        principal.bump_revision(&txn).await?;
        audit(
            &txn,
            actor,
            "passkey.add",
            &principal.name,
            json!({"principal": principal.kind, "id": inserted.id, "name": inserted.name}),
        )
        .await?;
        commit(txn).await?;
        if let Some(change) = principal.change() {
            self.announcer.announce(change);
        }
        Ok(to_record(inserted))
    }

    /// Removes one passkey of a principal; another account's passkey is [`Error::NotFound`].
    pub async fn remove_passkey(&self, actor: &Actor, principal: TotpPrincipal<'_>, id: i64) -> Result<()> {
        let (_writer, txn) = self.begin().await?;
        let principal = self.totp_principal(&txn, principal).await?;
        let row = passkey::Entity::find_by_id(id)
            .filter(passkey::Column::PrincipalKind.eq(principal.kind))
            .filter(passkey::Column::PrincipalId.eq(principal.id))
            .one(&txn)
            .await
            .map_err(db_err)?
            .ok_or_else(|| Error::not_found("passkey", id.to_string()))?;
        let name = row.name.clone();
        row.delete(&txn).await.map_err(db_err)?;
        principal.bump_revision(&txn).await?;
        audit(
            &txn,
            actor,
            "passkey.remove",
            &principal.name,
            json!({"principal": principal.kind, "id": id, "name": name}),
        )
        .await?;
        commit(txn).await?;
        if let Some(change) = principal.change() {
            self.announcer.announce(change);
        }
        Ok(())
    }

    /// The account a credential id is registered to, with the passkey; `None` for an unknown credential.
    pub async fn passkey_by_credential(&self, credential_id: &str) -> Result<Option<(PasskeyOwner, Passkey)>> {
        let Some(row) = passkey::Entity::find()
            .filter(passkey::Column::CredentialHash.eq(credential_hash(credential_id)))
            .one(&self.db)
            .await
            .map_err(db_err)?
        else {
            return Ok(None);
        };
        let owner = match row.principal_kind.as_str() {
            "mailbox" => mailbox::Entity::find_by_id(row.principal_id)
                .one(&self.db)
                .await
                .map_err(db_err)?
                .map(|m| PasskeyOwner::Mailbox(m.address)),
            _ => admin::Entity::find_by_id(row.principal_id)
                .one(&self.db)
                .await
                .map_err(db_err)?
                .map(|a| PasskeyOwner::Admin(a.username)),
        };
        Ok(owner.map(|owner| (owner, to_record(row))))
    }

    /// Records a sign-in with a passkey: its new signature counter and credential record, and the time.
    pub async fn record_passkey_use(&self, id: i64, counter: i64, credential: String) -> Result<()> {
        passkey::Entity::update_many()
            .col_expr(passkey::Column::Counter, sea_orm::sea_query::Expr::value(counter.max(0)))
            .col_expr(passkey::Column::Credential, sea_orm::sea_query::Expr::value(credential))
            .col_expr(passkey::Column::LastUsedAt, sea_orm::sea_query::Expr::value(now()))
            .filter(passkey::Column::Id.eq(id))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(())
    }
}

/// Deletes the passkeys of a mailbox (`"mailbox"`) or admin (`"admin"`) about to be removed.
pub(crate) async fn delete_passkeys_of(db: &impl ConnectionTrait, kind: &'static str, id: i64) -> Result<()> {
    passkey::Entity::delete_many()
        .filter(passkey::Column::PrincipalKind.eq(kind))
        .filter(passkey::Column::PrincipalId.eq(id))
        .exec(db)
        .await
        .map_err(db_err)?;
    Ok(())
}
