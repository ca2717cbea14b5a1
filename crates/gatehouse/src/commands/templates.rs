//! `gatehouse template …`: add, list, change and remove mailbox templates.

use anyhow::Context;
use gatehouse_core::ProtocolSet;
use gatehouse_store::{Actor, NewTemplate, TemplateChanges};

use super::CommandContext;
use crate::cli::TemplateCommand;
use crate::output::{limit, print_list, yes_no};

fn attributes(text: Option<String>) -> anyhow::Result<Option<serde_json::Value>> {
    text.map(|t| serde_json::from_str(&t).context("--attributes must be a JSON object")).transpose()
}

/// Runs a `template` command.
pub async fn run(ctx: &CommandContext, command: TemplateCommand) -> anyhow::Result<()> {
    let store = ctx.store().await?;
    let actor = Actor::cli();
    match command {
        TemplateCommand::Add { name, quota_mib, protocols, inactive, attributes: attrs } => {
            let new = NewTemplate {
                name,
                quota_mib,
                protocols: protocols.parse::<ProtocolSet>()?,
                active: !inactive,
                attributes: attributes(attrs)?.unwrap_or_else(|| serde_json::json!({})),
            };
            let template = store.create_template(&actor, new).await?;
            eprintln!("added template {}", template.name);
        }
        TemplateCommand::List(args) => {
            let templates = store.list_templates().await?;
            print_list(args.json, &templates, &["TEMPLATE", "QUOTA", "PROTOCOLS", "ACTIVE", "MAILBOXES"], |t| {
                vec![
                    t.name.clone(),
                    limit(t.quota_mib, " MiB"),
                    t.protocols.to_string(),
                    yes_no(t.active),
                    t.mailboxes.to_string(),
                ]
            });
        }
        TemplateCommand::Edit { name, quota_mib, protocols, active, attributes: attrs } => {
            let changes = TemplateChanges {
                quota_mib,
                protocols: protocols.map(|p| p.parse::<ProtocolSet>()).transpose()?,
                active,
                attributes: attributes(attrs)?,
            };
            let template = store.update_template(&actor, &name, changes).await?;
            eprintln!("changed template {}", template.name);
        }
        TemplateCommand::Remove { name } => {
            store.remove_template(&actor, &name).await?;
            eprintln!("removed template {name}");
        }
    }
    store.close().await;
    Ok(())
}
