//! Entity for the `admin_domains` table: a domain a domain administrator manages.

use sea_orm::entity::prelude::*;

/// A domain a domain administrator manages.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "admin_domains")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub admin_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub domain_id: i64,
}

/// No relations are declared; joins are written explicitly where needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
