//! Entity for the `passkeys` table: a WebAuthn credential of a mailbox or an administrator.

use sea_orm::entity::prelude::*;

/// A WebAuthn credential of a mailbox or an administrator.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "passkeys")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub principal_kind: String,
    pub principal_id: i64,
    #[sea_orm(column_type = "Text")]
    pub credential_id: String,
    pub credential_hash: String,
    pub user_handle: String,
    pub name: String,
    #[sea_orm(column_type = "Text")]
    pub credential: String,
    pub counter: i64,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// No relations are declared; joins are written explicitly where needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
