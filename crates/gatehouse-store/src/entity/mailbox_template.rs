//! Entity for the `mailbox_templates` table: a template new and synchronised mailboxes take their settings from.

use sea_orm::entity::prelude::*;

/// A template new and synchronised mailboxes take their settings from.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "mailbox_templates")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: String,
    pub quota_mib: i64,
    pub protocols: String,
    pub active: bool,
    #[sea_orm(column_type = "Text")]
    pub attributes: String,
    pub created_at: i64,
    pub modified_at: i64,
}

/// No relations are declared; joins are written explicitly where needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
