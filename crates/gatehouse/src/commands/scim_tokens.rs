//! `gatehouse scim-token add|list|revoke`: the bearer tokens identity providers push users to `/scim/v2`
//! with.
//!
//! `add` prints the token (`gs_<id>_<secret>`) once on standard output, and nothing else there, so a script can
//! capture it; only a hash is stored, so it cannot be shown again. A token belongs to one OpenID Connect or
//! Keycloak provider and is limited to the domains given.

use gatehouse_core::Error;
use gatehouse_store::{Actor, NewScimToken};

use super::{CommandContext, domain_names};
use crate::cli::ScimTokenCommand;
use crate::output::{print_list, utc_time, yes_no};

/// Runs a `scim-token` command.
pub async fn run(ctx: &CommandContext, command: ScimTokenCommand) -> anyhow::Result<()> {
    let actor = Actor::cli();
    let store = ctx.store().await?;
    match command {
        ScimTokenCommand::Add { name, idp, domains } => {
            let domains = domain_names(&domains)?;
            for domain in &domains {
                if let Err(Error::NotFound { .. }) = store.domain(domain).await {
                    eprintln!("note: domain {domain} does not exist (yet); users in it are refused until it does");
                }
            }
            let (token, secret) =
                store.create_scim_token(&actor, NewScimToken { name, provider: idp, domains }).await?;
            eprintln!(
                "created SCIM token {} for identity provider {} (domains: {}); it is shown only now:",
                token.name,
                token.provider,
                token.domains.join(","),
            );
            outln!("{secret}");
        }
        ScimTokenCommand::List(list) => {
            let tokens = store.list_scim_tokens().await?;
            print_list(list.json, &tokens, &["NAME", "PROVIDER", "DOMAINS", "ACTIVE", "CREATED", "LAST USED"], |t| {
                vec![
                    t.name.clone(),
                    t.provider.clone(),
                    t.domains.join(","),
                    yes_no(t.active),
                    utc_time(t.created_at),
                    t.last_used_at.map(utc_time).unwrap_or_else(|| "-".into()),
                ]
            });
        }
        ScimTokenCommand::Revoke { name } => {
            let revoked = store.revoke_scim_token(&actor, &name).await?;
            eprintln!("revoked SCIM token {}", revoked.name);
        }
    }
    store.close().await;
    Ok(())
}
