//! Entity for the `totp_secrets` table: the TOTP secret of a mailbox or an administrator.

use sea_orm::entity::prelude::*;

/// The TOTP secret of a mailbox or an administrator.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "totp_secrets")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub principal_kind: String,
    pub principal_id: i64,
    #[sea_orm(column_type = "Text")]
    pub secret: String,
    pub confirmed: bool,
    pub last_used_step: Option<i64>,
    pub created_at: i64,
}

/// No relations are declared; joins are written explicitly where needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
