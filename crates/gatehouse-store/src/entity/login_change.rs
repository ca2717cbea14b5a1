//! Entity for the `login_changes` table: the change feed of what can affect logins.

use sea_orm::entity::prelude::*;

/// One committed change.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "login_changes")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// `mailbox`, `domain` or `provider`.
    pub kind: String,
    /// The mailbox address, domain name or provider name.
    pub subject: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
