//! `gatehouse idp add|list|show|edit|map|remove|test`: identity providers. Settings are validated before they are stored;
//! secrets (an LDAP bind password, an OpenID Connect client secret) are read from the terminal or standard input, stored apart, and never
//! listed.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use gatehouse_core::{MailboxAddress, Secret};
use gatehouse_sources::SourceSettings;
use gatehouse_sources::dispatch::{check_provider, merge_settings};
use gatehouse_sources::registry::build_source;
use gatehouse_store::{Actor, IdentityProviderChanges, IdentityProviderKind, NewIdentityProvider};

use super::CommandContext;
use crate::cli::IdpCommand;
use crate::output::{print_list, yes_no};
use crate::password_input::read_new_secret_text;

/// Runs an `idp` command.
pub async fn run(ctx: &CommandContext, command: IdpCommand) -> anyhow::Result<()> {
    let actor = Actor::cli();
    match command {
        IdpCommand::Add { name, kind, settings, secret_stdin } => {
            let kind: IdentityProviderKind = kind.parse()?;
            let settings: serde_json::Value =
                serde_json::from_str(&settings).context("--settings must be a JSON object")?;
            let parsed = SourceSettings::parse(kind, &settings)?;
            let mut secrets = BTreeMap::new();
            for (secret, what) in parsed.secrets() {
                let text = read_new_secret_text(secret_stdin, what)?;
                secrets.insert(secret.to_string(), Secret::new(text.as_str()));
            }
            // Checks what can be checked without the network (hosts, filter, CA file).
            check_provider(kind, &settings, &secrets, &[])?;
            let store = ctx.store().await?;
            let created =
                store.create_identity_provider(&actor, NewIdentityProvider { name, kind, settings, secrets }).await?;
            store.close().await;
            eprintln!(
                "added identity provider {} ({}); run `gatehouse idp test {}` to check it",
                created.name, created.kind, created.name
            );
        }
        IdpCommand::List(args) => {
            let store = ctx.store().await?;
            let providers = store.list_identity_providers().await?;
            store.close().await;
            for provider in providers.iter().filter(|p| p.ignores_tls_errors()) {
                eprintln!("warning: {}: TLS certificates are not checked (ignore_tls_errors)", provider.name);
            }
            print_list(args.json, &providers, &["NAME", "TYPE", "ACTIVE", "SECRETS", "MAPPINGS"], |p| {
                vec![
                    p.name.clone(),
                    p.kind.to_string(),
                    yes_no(p.active),
                    p.secret_names.join(","),
                    p.mappings.len().to_string(),
                ]
            });
        }
        IdpCommand::Show { name } => {
            let store = ctx.store().await?;
            let provider = store.identity_provider(&name).await?;
            store.close().await;
            let provider = provider.with_context(|| format!("identity provider '{name}' does not exist"))?;
            if provider.ignores_tls_errors() {
                eprintln!("warning: {}: TLS certificates are not checked (ignore_tls_errors)", provider.name);
            }
            outln!("{}", serde_json::to_string_pretty(&provider)?);
        }
        IdpCommand::Edit { name, settings, secret, secret_stdin, active } => {
            let store = ctx.store().await?;
            let provider = store
                .identity_provider(&name)
                .await?
                .with_context(|| format!("identity provider '{name}' does not exist"))?;
            let mut changes = IdentityProviderChanges { active, ..Default::default() };
            if let Some(patch) = settings {
                let patch: serde_json::Value =
                    serde_json::from_str(&patch).context("--settings must be a JSON object")?;
                changes.settings = Some(merge_settings(&provider.settings, &patch)?);
            }
            let parsed = SourceSettings::parse(provider.kind, changes.settings.as_ref().unwrap_or(&provider.settings))?;
            if secret || secret_stdin {
                for (secret, what) in parsed.secrets() {
                    let text = read_new_secret_text(secret_stdin, what)?;
                    changes.secrets.insert(secret.to_string(), Secret::new(text.as_str()));
                }
            }
            if let Some(settings) = &changes.settings {
                // The new settings are checked as far as they can be without the network.
                check_provider(provider.kind, settings, &changes.secrets, &provider.secret_names)?;
            }
            let updated = store.update_identity_provider(&actor, &name, changes).await?;
            store.close().await;
            eprintln!("changed identity provider {}", updated.name);
        }
        IdpCommand::Map { name, pairs } => {
            let mappings = pairs
                .iter()
                .map(|pair| {
                    pair.rsplit_once('=')
                        .map(|(value, template)| (value.to_string(), template.to_string()))
                        .with_context(|| format!("'{pair}' is not VALUE=TEMPLATE"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let store = ctx.store().await?;
            let provider = store.set_attribute_mappings(&actor, &name, &mappings).await?;
            store.close().await;
            eprintln!("{} now maps {} attribute value(s) to templates", provider.name, provider.mappings.len());
        }
        IdpCommand::Remove { name } => {
            let store = ctx.store().await?;
            store.remove_identity_provider(&actor, &name).await?;
            store.close().await;
            eprintln!("removed identity provider {name}");
        }
        IdpCommand::Test { name, user } => {
            let store = ctx.store().await?;
            let provider = store
                .identity_provider(&name)
                .await?
                .with_context(|| format!("identity provider '{name}' does not exist"))?;
            let source = build_source(&store, &provider).await?;
            store.close().await;
            let sample = user.map(|u| MailboxAddress::parse(&u)).transpose()?;
            let mut failed = false;
            let mut steps = source.test(sample.as_ref()).await;
            if source.as_oidc().is_some() {
                steps.push(("browser sign-in".to_string(), sign_in_addresses(ctx, &name)));
            }
            for (step, outcome) in steps {
                match outcome {
                    Ok(detail) => outln!("ok    {step}: {detail}"),
                    Err(detail) => {
                        failed = true;
                        outln!("FAIL  {step}: {detail}");
                    }
                }
            }
            if failed {
                bail!("the connection test of {name} failed");
            }
        }
    }
    Ok(())
}

/// What the provider's client must allow for the browser sign-in, from `web.public_url`.
fn sign_in_addresses(ctx: &CommandContext, name: &str) -> Result<String, String> {
    let Some(url) = ctx.config.web.public_url.as_deref().filter(|u| !u.trim().is_empty()) else {
        return Err("web.public_url is not set: the provider cannot send browsers back to Gatehouse".to_string());
    };
    let base = url.trim_end_matches('/');
    Ok(format!(
        "register the redirect URI {base}/oidc/callback, the post-logout redirect URI {base}/oidc/signed-out and, \
         for back-channel logout, {base}/oidc/backchannel-logout/{}",
        gatehouse_core::text::percent_encode(name)
    ))
}
