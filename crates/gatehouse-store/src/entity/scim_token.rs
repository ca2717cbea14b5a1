//! Entity for the `scim_tokens` table: a SCIM bearer token (only its hash is stored).

use sea_orm::entity::prelude::*;

/// A SCIM bearer token of an identity provider, limited to domains.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "scim_tokens")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: String,
    pub token_hash: String,
    pub provider: String,
    #[sea_orm(column_type = "Text")]
    pub domains: String,
    pub active: bool,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// No relations are declared; joins are written explicitly where needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
