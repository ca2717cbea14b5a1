//! Entity for the `app_passwords` table: an application password of a mailbox.

use sea_orm::entity::prelude::*;

/// An application password of a mailbox.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "app_passwords")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub mailbox_id: i64,
    pub name: String,
    #[sea_orm(column_type = "Text")]
    pub secret_hash: String,
    pub protocols: String,
    pub active: bool,
    pub expires_at: Option<i64>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    /// Brought over from another system: its clients type the bare secret.
    pub legacy: bool,
    /// The keyed fingerprint of a legacy app password's secret, recorded at its first successful use.
    pub fingerprint: Option<String>,
}

/// No relations are declared; joins are written explicitly where needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
