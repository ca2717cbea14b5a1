//! Entity for the `oidc_sign_ins` table: sign-ins started at an OpenID Connect provider and not yet finished.

use sea_orm::entity::prelude::*;

/// One pending sign-in, keyed by the hash of its `state`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "oidc_sign_ins")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub state_hash: String,
    pub provider: String,
    pub browser_hash: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub purpose: String,
    pub expires_at: i64,
    pub created_at: i64,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
