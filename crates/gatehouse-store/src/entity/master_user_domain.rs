//! Entity for the `master_user_domains` table: a domain an `owned`-scope master user may act on.

use sea_orm::entity::prelude::*;

/// A domain an `owned`-scope master user may act on.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "master_user_domains")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub master_user_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub domain_id: i64,
}

/// No relations are declared; joins are written explicitly where needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
