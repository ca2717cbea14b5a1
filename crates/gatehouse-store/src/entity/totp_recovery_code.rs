//! Entity for the `totp_recovery_codes` table: one-time recovery codes for accounts with TOTP.

use sea_orm::entity::prelude::*;

/// One recovery code (hashed).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "totp_recovery_codes")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub principal_kind: String,
    pub principal_id: i64,
    #[sea_orm(column_type = "Text")]
    pub code_hash: String,
    pub used_at: Option<i64>,
    pub created_at: i64,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
