//! Entity for the `sso_tokens` table: webmail single-sign-on tokens, each for one mailbox and one web session.

use sea_orm::entity::prelude::*;

/// One single-sign-on token.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sso_tokens")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub session_id: String,
    pub mailbox: String,
    #[sea_orm(column_type = "Text")]
    pub secret_hash: String,
    pub impersonator: Option<String>,
    pub expires_at: i64,
    pub created_at: i64,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
