//! `gatehouse api-key add|list|revoke`: keys for the REST API (`/api/v1/`).
//!
//! `add` prints the token (`gk_<id>_<secret>`) once on standard output, and nothing else there, so a script can
//! capture it; only a hash is stored, so it cannot be shown again. Keys are read-only unless `--read-write`, and
//! may be limited to source networks and to domains.

use gatehouse_core::Error;
use gatehouse_store::{Actor, ApiKeyAccess, NewApiKey};

use super::{CommandContext, domain_names};
use crate::cli::ApiKeyCommand;
use crate::output::{print_list, utc_time, yes_no};

/// A comma list, or `all` / `any` when empty.
fn list_or(items: &[String], empty: &str) -> String {
    if items.is_empty() { empty.to_string() } else { items.join(",") }
}

/// Runs an `api-key` command.
pub async fn run(ctx: &CommandContext, command: ApiKeyCommand) -> anyhow::Result<()> {
    let actor = Actor::cli();
    let store = ctx.store().await?;
    match command {
        ApiKeyCommand::Add { name, read_write, networks, domains } => {
            let domains = domain_names(&domains)?;
            for domain in &domains {
                if let Err(Error::NotFound { .. }) = store.domain(domain).await {
                    eprintln!("note: domain {domain} does not exist (yet); the key may create it");
                }
            }
            let access = if read_write { ApiKeyAccess::ReadWrite } else { ApiKeyAccess::ReadOnly };
            let new = NewApiKey { name, access, allowed_networks: networks, domains };
            let (key, token) = store.create_api_key(&actor, new).await?;
            eprintln!(
                "created API key {} ({}, {}, networks: {}, domains: {}); its token is shown only now:",
                key.id,
                key.name,
                key.access,
                list_or(&key.allowed_networks, "any"),
                list_or(&key.domains, "all"),
            );
            outln!("{token}");
        }
        ApiKeyCommand::List(list) => {
            let keys = store.list_api_keys().await?;
            print_list(
                list.json,
                &keys,
                &["ID", "NAME", "ACCESS", "NETWORKS", "DOMAINS", "ACTIVE", "CREATED", "LAST USED"],
                |key| {
                    vec![
                        key.id.to_string(),
                        key.name.clone(),
                        key.access.to_string(),
                        list_or(&key.allowed_networks, "any"),
                        list_or(&key.domains, "all"),
                        yes_no(key.active),
                        utc_time(key.created_at),
                        key.last_used_at.map(utc_time).unwrap_or_else(|| "-".into()),
                    ]
                },
            );
        }
        ApiKeyCommand::Revoke { id } => {
            let revoked = store.revoke_api_key(&actor, id).await?;
            eprintln!("revoked API key {} ({})", revoked.id, revoked.name);
        }
    }
    store.close().await;
    Ok(())
}
