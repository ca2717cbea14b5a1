//! Entity for the `mailboxes` table: a mailbox.

use sea_orm::entity::prelude::*;

/// A mailbox.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "mailboxes")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub address: String,
    pub local_part: String,
    pub domain_id: i64,
    #[sea_orm(column_type = "Text")]
    pub display_name: String,
    #[sea_orm(column_type = "Text")]
    pub password_hash: Option<String>,
    pub auth_source: String,
    pub template_id: Option<i64>,
    pub quota_mib: i64,
    pub protocols: String,
    pub active: bool,
    pub force_password_change: bool,
    pub force_totp: bool,
    #[sea_orm(column_type = "Text")]
    pub attributes: String,
    pub external_id: Option<String>,
    pub created_at: i64,
    pub modified_at: i64,
    pub revision: i64,
    pub scim_user_name: Option<String>,
    pub scim_external_id: Option<String>,
    pub scim_deleted: bool,
}

/// No relations are declared; joins are written explicitly where needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
