//! Entity for the `domains` table: a mail domain.

use sea_orm::entity::prelude::*;

/// A mail domain.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "domains")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: String,
    #[sea_orm(column_type = "Text")]
    pub description: String,
    pub active: bool,
    pub max_mailboxes: i64,
    pub default_quota_mib: i64,
    pub max_quota_mib: i64,
    pub total_quota_mib: i64,
    pub created_at: i64,
    pub modified_at: i64,
}

/// No relations are declared; joins are written explicitly where needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
