//! Entity for the `audit_log` table: one administrative change or impersonation.

use sea_orm::entity::prelude::*;

/// One administrative change or impersonation.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_log")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub created_at: i64,
    pub actor: String,
    pub actor_role: String,
    pub action: String,
    pub target: String,
    #[sea_orm(column_type = "Text")]
    pub details: String,
}

/// No relations are declared; joins are written explicitly where needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
