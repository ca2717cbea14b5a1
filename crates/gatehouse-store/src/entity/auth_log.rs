//! Entity for the `auth_log` table: one login decision.

use sea_orm::entity::prelude::*;

/// One login decision.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "auth_log")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub created_at: i64,
    pub service: String,
    pub username: String,
    pub master_user: Option<String>,
    pub remote_ip: Option<String>,
    pub result: String,
    #[sea_orm(column_type = "Text")]
    pub reason: String,
    pub via_app_password: bool,
    pub app_password_id: Option<i64>,
}

/// No relations are declared; joins are written explicitly where needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
