//! SCIM tokens: the bearer tokens identity providers push users to `/scim/v2` with.
//!
//! A token is shown once as `gs_<id>_<secret>` (the `tokens` module: only a hash of the secret is stored). It
//! belongs to one OpenID Connect or Keycloak provider, whose provisioning settings apply to what it pushes,
//! and is limited to at least one domain. Tokens are revoked rather than deleted, so the audit log's
//! `scim:<name>` entries keep pointing at a listed token.

use gatehouse_core::{DomainName, Error, Result};
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, NotSet, PaginatorTrait, QueryFilter, QueryOrder, Set};
use serde::Serialize;
use serde_json::json;

use crate::entity::{identity_provider, scim_token};
use crate::logs::audit;
use crate::tokens::{hash_secret, new_secret, parse_token, secret_matches};
use crate::{Actor, ActorRole, IdentityProviderKind, Store, commit, db_err, now};

/// Prefix of every SCIM token.
pub const SCIM_TOKEN_PREFIX: &str = "gs_";
/// `last_used_at` is written at most this often (seconds) per token.
const TOUCH_INTERVAL: i64 = 60;
/// Longest token name, in characters.
const MAX_NAME_CHARS: usize = 100;
/// Size of the `domains` column that is used.
const MAX_DOMAINS_CHARS: usize = 2000;

/// A SCIM token as listed: never its secret or hash.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ScimToken {
    /// Id (part of the token).
    pub id: i64,
    /// Unique name; what it does is audited as `scim:<name>`.
    pub name: String,
    /// The identity provider whose users it pushes.
    pub provider: String,
    /// The domains (ASCII names) it may create and change mailboxes in; never empty.
    pub domains: Vec<String>,
    /// Not revoked.
    pub active: bool,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last request with it (updated at most once a minute).
    pub last_used_at: Option<i64>,
}

impl ScimToken {
    /// Whether the token may see and change mailboxes of `domain` (an ASCII name).
    pub fn allows_domain(&self, domain: &str) -> bool {
        self.domains.iter().any(|allowed| allowed.eq_ignore_ascii_case(domain))
    }

    /// The actor its changes are audited as: role API, name `scim:<name>`.
    pub fn actor(&self) -> Actor {
        Actor { name: format!("scim:{}", self.name), role: ActorRole::Api }
    }

    /// Whether its last use is more than a minute ago (or unrecorded).
    pub fn last_use_is_stale(&self) -> bool {
        self.last_used_at.is_none_or(|at| now() - at >= TOUCH_INTERVAL)
    }
}

/// A SCIM token to create.
#[derive(Debug, Clone)]
pub struct NewScimToken {
    /// Unique name (1 to 100 characters).
    pub name: String,
    /// An OpenID Connect or Keycloak provider.
    pub provider: String,
    /// At least one domain.
    pub domains: Vec<DomainName>,
}

fn to_record(row: scim_token::Model) -> ScimToken {
    ScimToken {
        id: row.id,
        name: row.name,
        provider: row.provider,
        domains: row.domains.split(',').map(str::trim).filter(|d| !d.is_empty()).map(str::to_string).collect(),
        active: row.active,
        created_at: row.created_at,
        last_used_at: row.last_used_at,
    }
}

impl Store {
    /// Creates a SCIM token and returns it with its token text, `gs_<id>_<secret>`: the only time it is known.
    pub async fn create_scim_token(&self, actor: &Actor, new: NewScimToken) -> Result<(ScimToken, String)> {
        let name = new.name.trim().to_string();
        if name.is_empty() {
            return Err(Error::invalid("a SCIM token needs a name"));
        }
        gatehouse_core::text::check_free_text("SCIM token name", &name, MAX_NAME_CHARS)?;
        let mut domains: Vec<String> = new.domains.iter().map(|d| d.as_str().to_string()).collect();
        domains.sort();
        domains.dedup();
        if domains.is_empty() {
            return Err(Error::invalid("a SCIM token must be limited to one or more domains (--domains)"));
        }
        if domains.join(",").len() > MAX_DOMAINS_CHARS {
            return Err(Error::invalid(format!("the domain list is longer than {MAX_DOMAINS_CHARS} characters")));
        }
        let secret = new_secret();

        let (_writer, txn) = self.begin().await?;
        let provider = identity_provider::Entity::find()
            .filter(identity_provider::Column::Name.eq(new.provider.as_str()))
            .one(&txn)
            .await
            .map_err(db_err)?
            .ok_or_else(|| Error::not_found("identity provider", &new.provider))?;
        let kind: IdentityProviderKind = provider.kind.parse()?;
        if kind == IdentityProviderKind::Ldap {
            return Err(Error::invalid(format!(
                "'{}' is an LDAP directory, which Gatehouse reads itself; SCIM tokens belong to OpenID Connect or \
                 Keycloak providers",
                provider.name
            )));
        }
        let taken = scim_token::Entity::find()
            .filter(scim_token::Column::Name.eq(name.as_str()))
            .count(&txn)
            .await
            .map_err(db_err)?;
        if taken > 0 {
            return Err(Error::already_exists("SCIM token", name));
        }
        let inserted = scim_token::ActiveModel {
            id: NotSet,
            name: Set(name),
            token_hash: Set(hash_secret(secret.as_bytes())),
            provider: Set(provider.name.clone()),
            domains: Set(domains.join(",")),
            active: Set(true),
            created_at: Set(now()),
            last_used_at: Set(None),
        }
        .insert(&txn)
        .await
        .map_err(db_err)?;
        let details = json!({ "id": inserted.id, "provider": inserted.provider, "domains": domains });
        audit(&txn, actor, "scim_token.add", &inserted.name, details).await?;
        commit(txn).await?;
        let token = format!("{SCIM_TOKEN_PREFIX}{}_{secret}", inserted.id);
        Ok((to_record(inserted), token))
    }

    /// All SCIM tokens, revoked ones included, oldest first.
    pub async fn list_scim_tokens(&self) -> Result<Vec<ScimToken>> {
        let rows =
            scim_token::Entity::find().order_by_asc(scim_token::Column::Id).all(&self.db).await.map_err(db_err)?;
        Ok(rows.into_iter().map(to_record).collect())
    }

    /// Revokes the SCIM token named `name`; it stops working at once and stays listed. Revoking a revoked
    /// token changes nothing and is not audited again.
    pub async fn revoke_scim_token(&self, actor: &Actor, name: &str) -> Result<ScimToken> {
        let (_writer, txn) = self.begin().await?;
        let row = scim_token::Entity::find()
            .filter(scim_token::Column::Name.eq(name))
            .one(&txn)
            .await
            .map_err(db_err)?
            .ok_or_else(|| Error::not_found("SCIM token", name))?;
        if !row.active {
            return Ok(to_record(row));
        }
        let mut active: scim_token::ActiveModel = row.into();
        active.active = Set(false);
        let updated = active.update(&txn).await.map_err(db_err)?;
        audit(&txn, actor, "scim_token.revoke", &updated.name, json!({ "id": updated.id })).await?;
        commit(txn).await?;
        Ok(to_record(updated))
    }

    /// The active SCIM token `token` is; `None` for anything else (not a SCIM token, unknown id, wrong secret,
    /// revoked). Only database failures are errors.
    pub async fn scim_token_for(&self, token: &str) -> Result<Option<ScimToken>> {
        let Some((id, secret)) = parse_token(SCIM_TOKEN_PREFIX, token.trim()) else { return Ok(None) };
        let Some(row) = scim_token::Entity::find_by_id(id).one(&self.db).await.map_err(db_err)? else {
            return Ok(None);
        };
        if !secret_matches(secret, &row.token_hash) || !row.active {
            return Ok(None);
        }
        Ok(Some(to_record(row)))
    }

    /// Notes that a SCIM token was used: sets `last_used_at`, at most once a minute.
    pub async fn touch_scim_token(&self, id: i64) -> Result<()> {
        let time = now();
        scim_token::Entity::update_many()
            .col_expr(scim_token::Column::LastUsedAt, Expr::value(time))
            .filter(scim_token::Column::Id.eq(id))
            .filter(
                Condition::any()
                    .add(scim_token::Column::LastUsedAt.is_null())
                    .add(scim_token::Column::LastUsedAt.lte(time - TOUCH_INTERVAL)),
            )
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(())
    }
}
