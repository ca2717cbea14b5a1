//! API keys for the REST API.
//!
//! A key is shown once as a token `gk_<id>_<secret>` (the `tokens` module: the id selects one row, only a hash
//! of the secret is stored). A key is read-only or read-write, may be limited
//! to source networks (CIDRs) and to domains, and is revoked rather than deleted, so the audit log's
//! `api-key:<name>` entries keep pointing at a listed key.
//!
//! For keys limited to domains, the log queries take the domains in [`crate::LogFilter::domains`].

use std::net::IpAddr;
use std::str::FromStr;

use gatehouse_core::{DomainName, Error, Result};
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, NotSet, PaginatorTrait, QueryFilter, QueryOrder, Set};
use serde::Serialize;
use serde_json::json;

use crate::entity::api_key;
use crate::listing::{Page, Window, any_contains, window_of};
use crate::logs::audit;
use crate::tokens::{hash_secret, new_secret, parse_token, secret_matches};
use crate::{Actor, Store, commit, db_err, now};

/// Prefix of every API-key token.
pub const API_KEY_PREFIX: &str = "gk_";
/// `last_used_at` is written at most this often (seconds) per key.
const API_KEY_TOUCH_INTERVAL: i64 = 60;
/// Longest key name, in characters.
const MAX_NAME_CHARS: usize = 100;
/// Size of the `domains` column.
const MAX_DOMAINS_CHARS: usize = 2000;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ApiKeyAccess {
    /// Only reads (`GET`).
    ReadOnly,
    /// Reads and changes.
    ReadWrite,
}

impl ApiKeyAccess {
    /// `read-only` or `read-write`, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiKeyAccess::ReadOnly => "read-only",
            ApiKeyAccess::ReadWrite => "read-write",
        }
    }
}

impl std::fmt::Display for ApiKeyAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ApiKeyAccess {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "read-only" => Ok(ApiKeyAccess::ReadOnly),
            "read-write" => Ok(ApiKeyAccess::ReadWrite),
            other => {
                Err(Error::invalid(format!("unknown API key access '{other}' (expected read-only or read-write)")))
            }
        }
    }
}

/// An API key as listed: never its secret or hash.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ApiKey {
    /// Id (part of the token).
    pub id: i64,
    /// Unique name; changes are audited as `api-key:<name>`.
    pub name: String,
    /// Read-only or read-write.
    pub access: ApiKeyAccess,
    /// Networks (CIDR) requests must come from; empty means any.
    pub allowed_networks: Vec<String>,
    /// Domains (ASCII names) the key is limited to; empty means all domains.
    pub domains: Vec<String>,
    /// Not revoked.
    pub active: bool,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last request with it (updated at most once a minute).
    pub last_used_at: Option<i64>,
}

impl ApiKey {
    /// Whether the key may change things.
    pub fn may_write(&self) -> bool {
        self.access == ApiKeyAccess::ReadWrite
    }

    /// Whether the key is limited to source networks.
    pub fn has_network_limit(&self) -> bool {
        !self.allowed_networks.is_empty()
    }

    /// Whether a request from `peer` may use the key. IPv4-mapped IPv6 addresses count as IPv4.
    pub fn allows_address(&self, peer: IpAddr) -> bool {
        if self.allowed_networks.is_empty() {
            return true;
        }
        let peer = match peer {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
            v4 => v4,
        };
        // A stored entry that no longer parses matches nothing: the key fails closed.
        self.allowed_networks.iter().filter_map(|text| Network::parse(text).ok()).any(|net| net.contains(peer))
    }

    /// Whether the key is limited to some domains.
    pub fn is_domain_limited(&self) -> bool {
        !self.domains.is_empty()
    }

    /// Whether the key may see and change `domain` (an ASCII name) and what belongs to it.
    pub fn allows_domain(&self, domain: &str) -> bool {
        self.domains.is_empty() || self.domains.iter().any(|allowed| allowed.eq_ignore_ascii_case(domain))
    }

    /// Whether its last use is more than a minute ago (or unrecorded), so that
    /// [`Store::touch_api_key`] would record a new one.
    pub fn last_use_is_stale(&self) -> bool {
        self.last_used_at.is_none_or(|at| now() - at >= API_KEY_TOUCH_INTERVAL)
    }

    /// The actor its changes are audited as: role API, name `api-key:<name>`.
    pub fn actor(&self) -> Actor {
        self.principal().actor
    }

    /// The key as a principal of the scoped store: its domains, read-only or not.
    pub fn principal(&self) -> crate::Principal {
        crate::Principal::api_key(&self.name, &self.domains, !self.may_write())
    }
}

/// An API key to create.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    /// Unique name (1 to 100 characters).
    pub name: String,
    /// Read-only or read-write.
    pub access: ApiKeyAccess,
    /// Networks (CIDR, or single addresses) requests must come from; empty means any.
    pub allowed_networks: Vec<String>,
    /// Domains the key is limited to; empty means all. They need not exist yet (a limited key may create
    /// them).
    pub domains: Vec<DomainName>,
}

/// An IP network: an address with its host bits cleared, and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Network {
    address: IpAddr,
    prefix: u8,
}

impl Network {
    /// Parses `addr/len` or a single address (as `/32` or `/128`), clearing the host bits.
    fn parse(text: &str) -> Result<Network> {
        let text = text.trim();
        let invalid = || Error::invalid(format!("'{text}' is not a network (CIDR such as 192.0.2.0/24) or an address"));
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => {
                let address: IpAddr = address.parse().map_err(|_| invalid())?;
                let prefix: u8 = prefix.parse().map_err(|_| invalid())?;
                (address, Some(prefix))
            }
            None => (text.parse::<IpAddr>().map_err(|_| invalid())?, None),
        };
        let address = match address {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
            v4 => v4,
        };
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(invalid());
        }
        let address = match address {
            IpAddr::V4(v4) => IpAddr::V4((u32::from(v4) & mask_u32(prefix)).into()),
            IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & mask_u128(prefix)).into()),
        };
        Ok(Network { address, prefix })
    }

    fn contains(&self, peer: IpAddr) -> bool {
        match (self.address, peer) {
            (IpAddr::V4(net), IpAddr::V4(peer)) => u32::from(peer) & mask_u32(self.prefix) == u32::from(net),
            (IpAddr::V6(net), IpAddr::V6(peer)) => u128::from(peer) & mask_u128(self.prefix) == u128::from(net),
            _ => false,
        }
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

/// The netmask of an IPv4 prefix (at most 32).
fn mask_u32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32u32.saturating_sub(u32::from(prefix))).unwrap_or(0)
}

/// The netmask of an IPv6 prefix (at most 128).
fn mask_u128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128u32.saturating_sub(u32::from(prefix))).unwrap_or(0)
}

fn split_list(text: &str) -> Vec<String> {
    text.split(',').map(str::trim).filter(|item| !item.is_empty()).map(str::to_string).collect()
}

fn to_record(row: api_key::Model) -> Result<ApiKey> {
    Ok(ApiKey {
        id: row.id,
        access: row.access.parse().map_err(|_| {
            Error::Internal(format!("API key {} has the unknown access '{}' in the database", row.id, row.access))
        })?,
        allowed_networks: split_list(&row.allowed_networks),
        domains: split_list(&row.domains),
        name: row.name,
        active: row.active,
        created_at: row.created_at,
        last_used_at: row.last_used_at,
    })
}

/// `LOWER(column) LIKE '%@domain'` for each domain, OR-ed. Domain names are validated ASCII (letters, digits,
/// `-`, `.`), so they hold no LIKE wildcard.
impl Store {
    /// Creates an API key and returns it with its token, `gk_<id>_<secret>`: the only time the token is
    /// known. Networks are stored normalised (`192.0.2.7/24` becomes `192.0.2.0/24`, an address `/32`).
    pub async fn create_api_key(&self, actor: &Actor, new: NewApiKey) -> Result<(ApiKey, String)> {
        let name = new.name.trim().to_string();
        if name.is_empty() {
            return Err(Error::invalid("an API key needs a name"));
        }
        gatehouse_core::text::check_free_text("API key name", &name, MAX_NAME_CHARS)?;
        let mut networks: Vec<String> = Vec::new();
        for text in new.allowed_networks.iter().filter(|n| !n.trim().is_empty()) {
            let network = Network::parse(text)?.to_string();
            if !networks.contains(&network) {
                networks.push(network);
            }
        }
        let mut domains: Vec<String> = new.domains.iter().map(|d| d.as_str().to_string()).collect();
        domains.sort();
        domains.dedup();
        if domains.join(",").len() > MAX_DOMAINS_CHARS {
            return Err(Error::invalid(format!("the domain list is longer than {MAX_DOMAINS_CHARS} characters")));
        }
        let secret = new_secret();

        let (_writer, txn) = self.begin().await?;
        let taken = api_key::Entity::find()
            .filter(api_key::Column::Name.eq(name.as_str()))
            .count(&txn)
            .await
            .map_err(db_err)?;
        if taken > 0 {
            return Err(Error::already_exists("API key", name));
        }
        let inserted = api_key::ActiveModel {
            id: NotSet,
            name: Set(name),
            key_hash: Set(hash_secret(secret.as_bytes())),
            access: Set(new.access.as_str().to_string()),
            allowed_networks: Set(networks.join(",")),
            active: Set(true),
            created_at: Set(now()),
            last_used_at: Set(None),
            domains: Set(domains.join(",")),
        }
        .insert(&txn)
        .await
        .map_err(db_err)?;
        audit(
            &txn,
            actor,
            "api_key.add",
            &inserted.name,
            json!({
                "id": inserted.id,
                "access": inserted.access,
                "allowed_networks": networks,
                "domains": domains,
            }),
        )
        .await?;
        commit(txn).await?;
        let token = format!("{API_KEY_PREFIX}{}_{secret}", inserted.id);
        Ok((to_record(inserted)?, token))
    }

    /// All API keys, revoked ones included, oldest first.
    pub async fn list_api_keys(&self) -> Result<Vec<ApiKey>> {
        api_key::Entity::find()
            .order_by_asc(api_key::Column::Id)
            .all(&self.db)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(to_record)
            .collect()
    }

    /// One page of the API keys whose name contains `text` (ignoring case), oldest first.
    pub async fn search_api_keys(&self, text: Option<&str>, window: Window) -> Result<Page<ApiKey>> {
        let mut query = api_key::Entity::find().order_by_asc(api_key::Column::Id);
        if let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) {
            query = query.filter(any_contains(&[api_key::Column::Name], text));
        }
        let (rows, total) = window_of(&self.db, query, window).await?;
        let items = rows.into_iter().map(to_record).collect::<Result<Vec<_>>>()?;
        Ok(Page { items, total, more: false, offset: window.offset, limit: window.limit })
    }

    /// Revokes an API key; it stops working at once and stays listed (revoked). Revoking a revoked key
    /// changes nothing and is not audited again.
    pub async fn revoke_api_key(&self, actor: &Actor, id: i64) -> Result<ApiKey> {
        let (_writer, txn) = self.begin().await?;
        let row = api_key::Entity::find_by_id(id)
            .one(&txn)
            .await
            .map_err(db_err)?
            .ok_or_else(|| Error::not_found("API key", id.to_string()))?;
        if !row.active {
            return to_record(row);
        }
        let mut active: api_key::ActiveModel = row.into();
        active.active = Set(false);
        let updated = active.update(&txn).await.map_err(db_err)?;
        audit(&txn, actor, "api_key.revoke", &updated.name, json!({ "id": id })).await?;
        commit(txn).await?;
        to_record(updated)
    }

    /// The active key a token belongs to; `None` for anything else (not a token, unknown id, wrong secret,
    /// revoked). Only database failures are errors.
    pub async fn api_key_for_token(&self, token: &str) -> Result<Option<ApiKey>> {
        let Some((id, secret)) = parse_token(API_KEY_PREFIX, token.trim()) else { return Ok(None) };
        let Some(row) = api_key::Entity::find_by_id(id).one(&self.db).await.map_err(db_err)? else {
            return Ok(None);
        };
        if !secret_matches(secret, &row.key_hash) || !row.active {
            return Ok(None);
        }
        to_record(row).map(Some)
    }

    /// Notes that a key was used: sets `last_used_at`, at most once a minute.
    pub async fn touch_api_key(&self, id: i64) -> Result<()> {
        let time = now();
        api_key::Entity::update_many()
            .col_expr(api_key::Column::LastUsedAt, Expr::value(time))
            .filter(api_key::Column::Id.eq(id))
            .filter(
                Condition::any()
                    .add(api_key::Column::LastUsedAt.is_null())
                    .add(api_key::Column::LastUsedAt.lte(time - API_KEY_TOUCH_INTERVAL)),
            )
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_are_normalised_and_matched() {
        let net = Network::parse("192.0.2.77/24").unwrap();
        assert_eq!(net.to_string(), "192.0.2.0/24");
        assert!(net.contains("192.0.2.1".parse().unwrap()));
        assert!(!net.contains("192.0.3.1".parse().unwrap()));
        assert_eq!(Network::parse("2001:db8::1").unwrap().to_string(), "2001:db8::1/128");
        assert_eq!(Network::parse("0.0.0.0/0").unwrap().to_string(), "0.0.0.0/0");
        assert!(Network::parse("0.0.0.0/0").unwrap().contains("203.0.113.9".parse().unwrap()));
        assert_eq!(Network::parse("::ffff:10.1.2.3/8").unwrap().to_string(), "10.0.0.0/8");
        for bad in ["10.0.0.0/33", "::/129", "example.org", "10.0.0.0/", "/8"] {
            assert!(Network::parse(bad).is_err(), "{bad}");
        }
    }
}
