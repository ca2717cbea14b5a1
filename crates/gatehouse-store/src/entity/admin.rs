//! Entity for the `admins` table: an administrator or domain administrator.

use sea_orm::entity::prelude::*;

/// An administrator or domain administrator.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "admins")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub username: String,
    pub role: String,
    #[sea_orm(column_type = "Text")]
    pub password_hash: String,
    pub active: bool,
    pub force_password_change: bool,
    pub force_totp: bool,
    pub acl: String,
    pub auth_source: String,
    pub external_id: Option<String>,
    pub created_at: i64,
    pub modified_at: i64,
}

/// No relations are declared; joins are written explicitly where needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
