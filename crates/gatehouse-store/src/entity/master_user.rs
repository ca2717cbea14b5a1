//! Entity for the `master_users` table: a master user, who may log in as other mailboxes within its scope.

use sea_orm::entity::prelude::*;

/// A master user, who may log in as other mailboxes within its scope.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "master_users")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub username: String,
    #[sea_orm(column_type = "Text")]
    pub password_hash: String,
    pub scope: String,
    pub domain_id: Option<i64>,
    pub active: bool,
    pub created_at: i64,
    pub modified_at: i64,
    pub revision: i64,
}

/// No relations are declared; joins are written explicitly where needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
