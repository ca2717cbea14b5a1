//! `gatehouse passkey list|remove`: a mailbox's or an administrator's passkeys, for an operator (a lost device,
//! an administrator locked out).

use gatehouse_core::MailboxAddress;
use gatehouse_store::{Actor, Passkey, Principal, TotpPrincipal};

use super::CommandContext;
use crate::cli::PasskeyCommand;
use crate::output::{print_list, utc_time};

/// Runs a `passkey` command.
pub async fn run(ctx: &CommandContext, command: PasskeyCommand) -> anyhow::Result<()> {
    let store = ctx.store().await?;
    // Mailboxes go through the same scoped store as the web UI and the API; administrators have no domain.
    let scoped = store.scoped(Principal::cli());
    match command {
        PasskeyCommand::List { account, admin, list } => {
            let passkeys: Vec<Passkey> = if admin {
                store.passkeys(TotpPrincipal::Admin(&account)).await?
            } else {
                scoped.list_passkeys(&MailboxAddress::parse(&account)?).await?
            };
            print_list(list.json, &passkeys, &["ID", "NAME", "ADDED", "LAST USED"], |p| {
                vec![
                    p.id.to_string(),
                    p.name.clone(),
                    utc_time(p.created_at),
                    p.last_used_at.map(utc_time).unwrap_or_else(|| "-".into()),
                ]
            });
        }
        PasskeyCommand::Remove { account, id, admin } => {
            if admin {
                store.remove_passkey(&Actor::cli(), TotpPrincipal::Admin(&account), id).await?;
            } else {
                scoped.remove_passkey(&MailboxAddress::parse(&account)?, id).await?;
            }
            eprintln!("removed passkey {id} of {account}");
        }
    }
    store.close().await;
    Ok(())
}
