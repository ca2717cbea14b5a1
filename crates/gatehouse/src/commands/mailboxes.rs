//! `gatehouse mailbox …`: add, list, change and remove mailboxes.

use anyhow::bail;
use gatehouse_core::{DomainName, MailboxAddress, ProtocolSet};
use gatehouse_store::{LOCAL_AUTH_SOURCE, MailboxChanges, NewMailbox, Principal};

use super::CommandContext;
use crate::cli::MailboxCommand;
use crate::output::{limit, print_list, yes_no};

fn protocols(text: Option<String>) -> anyhow::Result<Option<ProtocolSet>> {
    Ok(text.map(|p| p.parse::<ProtocolSet>()).transpose()?)
}

/// Runs a `mailbox` command.
pub async fn run(ctx: &CommandContext, command: MailboxCommand) -> anyhow::Result<()> {
    match command {
        MailboxCommand::Add {
            address,
            password,
            no_password,
            name,
            template,
            quota_mib,
            protocols: protocol_list,
            auth_source,
            inactive,
            force_password_change,
        } => {
            let address = MailboxAddress::parse(&address)?;
            let is_local = auth_source.as_deref().is_none_or(|s| s == LOCAL_AUTH_SOURCE);
            if !is_local && password.password_stdin {
                bail!("a mailbox whose auth source is an identity provider logs in there; it takes no local password");
            }
            let mut new = NewMailbox::new(address);
            new.protocols = protocols(protocol_list)?;
            // Hash before opening the store: a slow prompt must not hold database connections.
            new.password_hash = if is_local && !no_password {
                Some(ctx.new_password_hash(password.password_stdin, "mailbox").await?)
            } else {
                None
            };
            new.display_name = name;
            new.template = template;
            new.quota_mib = quota_mib;
            new.auth_source = auth_source;
            new.active = inactive.then_some(false);
            new.force_password_change = force_password_change;
            let store = ctx.store().await?;
            let scoped = store.scoped(Principal::cli());
            let mailbox = scoped.create_mailbox(new).await?;
            store.close().await;
            eprintln!("added mailbox {}", mailbox.address);
        }
        MailboxCommand::List { domain, list } => {
            let store = ctx.store().await?;
            let scoped = store.scoped(Principal::cli());
            let domain = domain.map(|d| DomainName::parse(&d)).transpose()?;
            let mailboxes = scoped.list_mailboxes(domain.as_ref()).await?;
            store.close().await;
            print_list(
                list.json,
                &mailboxes,
                &["MAILBOX", "NAME", "ACTIVE", "AUTH SOURCE", "QUOTA", "PROTOCOLS", "TEMPLATE"],
                |m| {
                    vec![
                        m.address.clone(),
                        m.display_name.clone(),
                        yes_no(m.active),
                        m.auth_source.clone(),
                        limit(m.quota_mib, " MiB"),
                        m.protocols.to_string(),
                        m.template.clone().unwrap_or_else(|| "-".into()),
                    ]
                },
            );
        }
        MailboxCommand::Edit {
            address,
            password,
            password_stdin,
            name,
            template,
            quota_mib,
            protocols: protocol_list,
            auth_source,
            active,
            force_password_change,
            force_totp,
        } => {
            let address = MailboxAddress::parse(&address)?;
            let password_hash = if password || password_stdin {
                Some(ctx.new_password_hash(password_stdin, "mailbox").await?)
            } else {
                None
            };
            let changes = MailboxChanges {
                display_name: name,
                password_hash,
                auth_source,
                template,
                quota_mib,
                protocols: protocols(protocol_list)?,
                active,
                force_password_change,
                force_totp,
                ..MailboxChanges::default()
            };
            let store = ctx.store().await?;
            let scoped = store.scoped(Principal::cli());
            let mailbox = scoped.update_mailbox(&address, changes).await?;
            store.close().await;
            eprintln!("changed mailbox {}", mailbox.address);
        }
        MailboxCommand::Remove { address } => {
            let address = MailboxAddress::parse(&address)?;
            let store = ctx.store().await?;
            let scoped = store.scoped(Principal::cli());
            scoped.remove_mailbox(&address).await?;
            store.close().await;
            eprintln!("removed mailbox {address}");
        }
    }
    Ok(())
}
