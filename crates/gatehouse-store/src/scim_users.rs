//! The SCIM view of mailboxes: what a SCIM client pushed about a mailbox's account ([`ScimUser`]), kept on the
//! mailbox — the document in its `scim` attribute, the `userName` (lowercased) and `externalId` in indexed
//! columns, and whether the client deleted the User — and the queries `/scim/v2/Users` reads them with.
//!
//! A `userName` is unique among one identity provider's mailboxes, case-insensitively; a deleted User frees
//! its `userName` and `externalId` (its mailbox is kept, deactivated, and comes back when the client creates
//! the User again).

use gatehouse_core::{Error, Result};
use sea_orm::sea_query::Condition;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set};

use crate::entity::{domain, mailbox};
use crate::mailboxes::{Mailbox, SCIM_ATTRIBUTE};
use crate::{Store, db_err};

/// What a SCIM client pushed about a mailbox's account.
#[derive(Debug, Clone, PartialEq)]
pub struct ScimUser {
    /// The User's `userName` as pushed; unique among the provider's mailboxes, case-insensitively.
    pub user_name: String,
    /// The User's `externalId`: the client's own id for the account.
    pub external_id: Option<String>,
    /// The User's attributes as pushed (kept as the mailbox's [`SCIM_ATTRIBUTE`] attribute).
    pub document: serde_json::Value,
    /// The client deleted the User: the mailbox is kept and the User is gone for SCIM.
    pub deleted: bool,
}

/// Which of an identity provider's SCIM Users a query selects.
#[derive(Debug, Clone, Copy)]
pub enum ScimSelect<'a> {
    /// All of them.
    All,
    /// The User with this `userName` (case-insensitively); a mailbox no client pushed is named by its address.
    UserName(&'a str),
    /// The Users with this `externalId` (exactly).
    ExternalId(&'a str),
}

/// Puts `scim` on a mailbox row: the document into `attributes`, the lookup columns, the deleted flag.
pub(crate) fn set_scim_user(row: &mut mailbox::ActiveModel, attributes: &mut serde_json::Value, scim: ScimUser) {
    attributes[SCIM_ATTRIBUTE] = scim.document;
    let kept = |value: Option<String>| value.filter(|_| !scim.deleted);
    row.scim_user_name = Set(kept(Some(scim.user_name.to_lowercase())));
    row.scim_external_id = Set(kept(scim.external_id));
    row.scim_deleted = Set(scim.deleted);
}

/// Refuses `scim` when another mailbox of `auth_source` (than the one with id `except`) has its `userName`.
pub(crate) async fn check_scim_user_name(
    db: &impl ConnectionTrait,
    auth_source: &str,
    scim: &ScimUser,
    except: Option<i64>,
) -> Result<()> {
    if scim.deleted {
        return Ok(());
    }
    let mut query = mailbox::Entity::find()
        .filter(mailbox::Column::AuthSource.eq(auth_source))
        .filter(mailbox::Column::ScimUserName.eq(scim.user_name.to_lowercase()));
    if let Some(id) = except {
        query = query.filter(mailbox::Column::Id.ne(id));
    }
    if query.count(db).await.map_err(db_err)? > 0 {
        return Err(Error::already_exists("SCIM user", &scim.user_name));
    }
    Ok(())
}

impl Store {
    /// The SCIM Users of identity provider `provider` in `domains` (ASCII names) that `select` picks — its
    /// mailboxes whose User no client deleted — by row id: how many there are, and those after the first
    /// `offset` (at most `limit` of them, when given).
    pub async fn scim_users(
        &self,
        provider: &str,
        domains: &[String],
        select: ScimSelect<'_>,
        offset: u64,
        limit: Option<u64>,
    ) -> Result<(u64, Vec<Mailbox>)> {
        let domain_ids: Vec<i64> = domain::Entity::find()
            .filter(domain::Column::Name.is_in(domains.iter().map(|d| d.to_ascii_lowercase())))
            .all(&self.db)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(|d| d.id)
            .collect();
        if domain_ids.is_empty() {
            return Ok((0, Vec::new()));
        }
        let mut query = mailbox::Entity::find()
            .filter(mailbox::Column::AuthSource.eq(provider))
            .filter(mailbox::Column::DomainId.is_in(domain_ids))
            .filter(mailbox::Column::ScimDeleted.eq(false));
        query = match select {
            ScimSelect::All => query,
            ScimSelect::UserName(name) => {
                let name = name.trim().to_lowercase();
                query.filter(
                    Condition::any().add(mailbox::Column::ScimUserName.eq(name.as_str())).add(
                        Condition::all()
                            .add(mailbox::Column::ScimUserName.is_null())
                            .add(mailbox::Column::Address.eq(name.as_str())),
                    ),
                )
            }
            ScimSelect::ExternalId(id) => query.filter(mailbox::Column::ScimExternalId.eq(id)),
        };
        let total = query.clone().count(&self.db).await.map_err(db_err)?;
        let rows = query
            .order_by_asc(mailbox::Column::Id)
            .offset((offset > 0).then_some(offset))
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(db_err)?;
        Ok((total, self.records(rows).await?))
    }
}
