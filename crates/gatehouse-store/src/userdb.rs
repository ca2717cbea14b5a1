//! What the mail server's user database needs: the mailboxes that exist for delivery and login (active, in an
//! active domain) and their quota. Dovecot's userdb asks for one mailbox at every login and delivery, and for
//! all of them for `doveadm -A`.

use gatehouse_core::Result;
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Expr, ExprTrait, Order, Query};

use crate::entity::{domain, mailbox};
use crate::{Store, db_err};

/// A mailbox as the user database shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliverableMailbox {
    /// The canonical address.
    pub address: String,
    /// Its quota in MiB; 0 is unlimited.
    pub quota_mib: i64,
}

impl Store {
    /// The active mailbox `address` in an active domain, if there is one.
    pub async fn deliverable_mailbox(&self, address: &str) -> Result<Option<DeliverableMailbox>> {
        let query = deliverable()
            .columns([(mailbox::Entity, mailbox::Column::Address), (mailbox::Entity, mailbox::Column::QuotaMib)])
            .and_where(Expr::col((mailbox::Entity, mailbox::Column::Address)).eq(address))
            .to_owned();
        let backend = self.db.get_database_backend();
        let Some(row) = self.db.query_one_raw(backend.build(&query)).await.map_err(db_err)? else {
            return Ok(None);
        };
        Ok(Some(DeliverableMailbox {
            address: row.try_get("", "address").map_err(db_err)?,
            quota_mib: row.try_get("", "quota_mib").map_err(db_err)?,
        }))
    }

    /// Every active mailbox of an active domain, by address.
    pub async fn deliverable_addresses(&self) -> Result<Vec<String>> {
        let query = deliverable()
            .column((mailbox::Entity, mailbox::Column::Address))
            .order_by((mailbox::Entity, mailbox::Column::Address), Order::Asc)
            .to_owned();
        let backend = self.db.get_database_backend();
        let rows = self.db.query_all_raw(backend.build(&query)).await.map_err(db_err)?;
        rows.iter().map(|row| row.try_get("", "address").map_err(db_err)).collect()
    }
}

/// Mailboxes joined with their domains, both active.
fn deliverable() -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .from(mailbox::Entity)
        .inner_join(
            domain::Entity,
            Expr::col((domain::Entity, domain::Column::Id)).equals((mailbox::Entity, mailbox::Column::DomainId)),
        )
        .and_where(Expr::col((mailbox::Entity, mailbox::Column::Active)).eq(true))
        .and_where(Expr::col((domain::Entity, domain::Column::Active)).eq(true))
        .to_owned()
}

/// A mailbox as webmail (SOGo's user source) shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebmailUser {
    /// The canonical address (SOGo's `c_uid`, `c_name` and `mail`).
    pub address: String,
    /// The display name (`c_cn`).
    pub display_name: String,
}

impl Store {
    /// Every mailbox that may use webmail: active, in an active domain, with the `sogo` protocol; by address.
    pub async fn webmail_users(&self) -> Result<Vec<WebmailUser>> {
        let query = deliverable()
            .columns([
                (mailbox::Entity, mailbox::Column::Address),
                (mailbox::Entity, mailbox::Column::DisplayName),
                (mailbox::Entity, mailbox::Column::Protocols),
            ])
            .order_by((mailbox::Entity, mailbox::Column::Address), Order::Asc)
            .to_owned();
        let backend = self.db.get_database_backend();
        let rows = self.db.query_all_raw(backend.build(&query)).await.map_err(db_err)?;
        let mut users = Vec::new();
        for row in rows {
            let protocols: String = row.try_get("", "protocols").map_err(db_err)?;
            if !crate::templates::parse_protocols(&protocols)?.contains(gatehouse_core::Service::Sogo) {
                continue;
            }
            users.push(WebmailUser {
                address: row.try_get("", "address").map_err(db_err)?,
                display_name: row.try_get("", "display_name").map_err(db_err)?,
            });
        }
        Ok(users)
    }
}
