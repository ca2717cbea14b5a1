//! Entity for the `identity_provider_secrets` table: a secret setting of an identity provider, kept apart from the other settings.

use sea_orm::entity::prelude::*;

/// A secret setting of an identity provider, kept apart from the other settings.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "identity_provider_secrets")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub provider_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    #[sea_orm(column_type = "Text")]
    pub value: String,
}

/// No relations are declared; joins are written explicitly where needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
