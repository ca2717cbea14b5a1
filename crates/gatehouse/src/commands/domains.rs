//! `gatehouse domain …`: add, list, change and remove mail domains.

use gatehouse_core::DomainName;
use gatehouse_store::{DomainChanges, NewDomain, Principal};

use super::CommandContext;
use crate::cli::DomainCommand;
use crate::output::{limit, print_list, yes_no};

/// Runs a `domain` command.
pub async fn run(ctx: &CommandContext, command: DomainCommand) -> anyhow::Result<()> {
    let store = ctx.store().await?;
    // The command line reaches everything; it goes through the same scoped store as the web UI and the API.
    let scoped = store.scoped(Principal::cli());
    match command {
        DomainCommand::Add { name, limits, inactive } => {
            let mut new = NewDomain::new(DomainName::parse(&name)?);
            new.active = !inactive;
            new.description = limits.description.unwrap_or_default();
            new.max_mailboxes = limits.max_mailboxes.unwrap_or(0);
            new.default_quota_mib = limits.default_quota_mib.unwrap_or(0);
            new.max_quota_mib = limits.max_quota_mib.unwrap_or(0);
            new.total_quota_mib = limits.total_quota_mib.unwrap_or(0);
            let domain = scoped.create_domain(new).await?;
            eprintln!("added domain {}", domain.name);
        }
        DomainCommand::List(args) => {
            let domains = scoped.list_domains().await?;
            print_list(
                args.json,
                &domains,
                &["DOMAIN", "ACTIVE", "MAILBOXES", "QUOTA USED", "MAX QUOTA", "TOTAL QUOTA", "DESCRIPTION"],
                |d| {
                    let name = if d.unicode_name != d.name {
                        format!("{} ({})", d.unicode_name, d.name)
                    } else {
                        d.name.clone()
                    };
                    vec![
                        name,
                        yes_no(d.active),
                        format!("{}/{}", d.mailboxes, limit(d.max_mailboxes, "")),
                        format!("{} MiB", d.quota_used_mib),
                        limit(d.max_quota_mib, " MiB"),
                        limit(d.total_quota_mib, " MiB"),
                        d.description.clone(),
                    ]
                },
            );
        }
        DomainCommand::Edit { name, limits, active } => {
            let changes = DomainChanges {
                description: limits.description,
                active,
                max_mailboxes: limits.max_mailboxes,
                default_quota_mib: limits.default_quota_mib,
                max_quota_mib: limits.max_quota_mib,
                total_quota_mib: limits.total_quota_mib,
            };
            let domain = scoped.update_domain(&DomainName::parse(&name)?, changes).await?;
            eprintln!("changed domain {}", domain.name);
        }
        DomainCommand::Remove { name } => {
            let name = DomainName::parse(&name)?;
            scoped.remove_domain(&name).await?;
            eprintln!("removed domain {name}");
        }
    }
    store.close().await;
    Ok(())
}
