//! `gatehouse app-password add|list|revoke`.

use anyhow::{Context, bail};
use gatehouse_core::{MailboxAddress, ProtocolSet};
use gatehouse_engine::app_password;
use gatehouse_passwords::{GenerateScheme, Zeroizing};
use gatehouse_store::{NewAppPassword, Principal};
use time::format_description::well_known::Rfc3339;

use super::CommandContext;
use crate::cli::AppPasswordCommand;
use crate::output::{print_list, utc_time, yes_no};

/// Parses `--expires`: a date means through that day (UTC); an RFC 3339 time is taken as it is.
fn expiry(text: &str) -> anyhow::Result<i64> {
    if let Ok(at) = gatehouse_core::expiry::end_of_day(text) {
        return Ok(at);
    }
    let at = time::OffsetDateTime::parse(text, &Rfc3339).with_context(|| {
        format!("--expires '{text}': expected YYYY-MM-DD (through that day, UTC) or an RFC 3339 time")
    })?;
    Ok(at.unix_timestamp())
}

/// Runs an `app-password` command.
pub async fn run(ctx: &CommandContext, command: AppPasswordCommand) -> anyhow::Result<()> {
    let store = ctx.store().await?;
    // The command line reaches everything; it goes through the same scoped store as the web UI and the API.
    let scoped = store.scoped(Principal::cli());
    match command {
        AppPasswordCommand::Add { address, name, protocols, expires } => {
            let address = MailboxAddress::parse(&address)?;
            let protocols: ProtocolSet = protocols.parse()?;
            if protocols.is_empty() {
                bail!("an app password needs at least one protocol");
            }
            let secret = Zeroizing::new(app_password::new_secret());
            // High-entropy random secrets need no slow hash: a salted SHA-256 verifies in microseconds.
            let pool = ctx.hash_pool(Some(1))?;
            let secret_hash =
                pool.generate(Zeroizing::new(secret.as_bytes().to_vec()), GenerateScheme::Ssha256).await?;
            let new = NewAppPassword {
                name,
                protocols,
                expires_at: expires.as_deref().map(expiry).transpose()?,
                secret_hash,
            };
            let created = scoped.create_app_password(&address, new).await?;
            eprintln!(
                "created app password {} ({}) for {}; it is shown only now:",
                created.id, created.name, created.mailbox
            );
            outln!("{}", app_password::token(created.id, &secret));
        }
        AppPasswordCommand::List { address, list } => {
            let passwords = scoped.list_app_passwords(&MailboxAddress::parse(&address)?).await?;
            print_list(list.json, &passwords, &["ID", "NAME", "PROTOCOLS", "ACTIVE", "EXPIRES", "LAST USED"], |p| {
                vec![
                    p.id.to_string(),
                    p.name.clone(),
                    p.protocols.to_string(),
                    yes_no(p.active),
                    gatehouse_core::expiry::describe(p.expires_at),
                    p.last_used_at.map(utc_time).unwrap_or_else(|| "-".into()),
                ]
            });
        }
        AppPasswordCommand::Revoke { address, id } => {
            let revoked = scoped.revoke_app_password(&MailboxAddress::parse(&address)?, id).await?;
            eprintln!("revoked app password {} ({}) of {}", revoked.id, revoked.name, revoked.mailbox);
        }
    }
    store.close().await;
    Ok(())
}
