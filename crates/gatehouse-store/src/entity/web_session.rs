//! Entity for the `web_sessions` table: a server-side web session.

use sea_orm::entity::prelude::*;

/// A server-side web session.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "web_sessions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    #[sea_orm(column_type = "Text")]
    pub data: String,
    pub expires_at: i64,
    pub principal_kind: String,
    pub principal: String,
    /// The identity provider the session was signed in at, if any.
    pub idp_provider: Option<String>,
    /// The provider's session id (`sid`), for back-channel logout.
    pub idp_session: Option<String>,
    /// The user's `sub` at the provider, for back-channel logout without a `sid`.
    pub idp_subject: Option<String>,
}

/// No relations are declared; joins are written explicitly where needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
