//! Entity for the `attribute_mappings` table: an identity-provider attribute value mapped to a mailbox template.

use sea_orm::entity::prelude::*;

/// An identity-provider attribute value mapped to a mailbox template.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "attribute_mappings")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub provider_id: i64,
    pub attribute_value: String,
    pub template_id: i64,
    pub position: i64,
}

/// No relations are declared; joins are written explicitly where needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
