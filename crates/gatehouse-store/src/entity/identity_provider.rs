//! Entity for the `identity_providers` table: a configured identity provider (settings without secrets).

use sea_orm::entity::prelude::*;

/// A configured identity provider (settings without secrets).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "identity_providers")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub active: bool,
    #[sea_orm(column_type = "Text")]
    pub settings: String,
    pub created_at: i64,
    pub modified_at: i64,
}

/// No relations are declared; joins are written explicitly where needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
