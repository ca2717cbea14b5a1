//! Entity for the `api_keys` table: a REST API key (only its hash is stored).

use sea_orm::entity::prelude::*;

/// A REST API key (only its hash is stored).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_keys")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: String,
    #[sea_orm(column_type = "Text")]
    pub key_hash: String,
    pub access: String,
    #[sea_orm(column_type = "Text")]
    pub allowed_networks: String,
    pub active: bool,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub domains: String,
}

/// No relations are declared; joins are written explicitly where needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
