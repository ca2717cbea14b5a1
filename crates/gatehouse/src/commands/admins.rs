//! `gatehouse admin …`, `gatehouse domain-admin …` and `gatehouse master-user …`: the accounts that act on
//! other accounts.

use gatehouse_store::{
    Actor, AdminChanges, AdminRole, DomainAdminChanges, MasterScope, NewDomainAdmin, NewMasterScope, NewMasterUser,
};

use super::{CommandContext, domain_names};
use crate::cli::{AdminCommand, DomainAdminCommand, MasterUserCommand};
use crate::output::{print_list, yes_no};

/// Runs an `admin` command.
pub async fn admin(ctx: &CommandContext, command: AdminCommand) -> anyhow::Result<()> {
    let actor = Actor::cli();
    match command {
        AdminCommand::Add { username, password } => {
            let hash = ctx.new_password_hash(password.password_stdin, "administrator").await?;
            let store = ctx.store().await?;
            let admin = store.create_admin(&actor, &username, hash).await?;
            store.close().await;
            eprintln!("added administrator {}", admin.username);
        }
        AdminCommand::List(args) => {
            let store = ctx.store().await?;
            let admins = store.list_admins(AdminRole::Admin).await?;
            store.close().await;
            print_list(args.json, &admins, &["ADMIN", "ACTIVE"], |a| vec![a.username.clone(), yes_no(a.active)]);
        }
        AdminCommand::Edit { username, active, password, password_stdin, required } => {
            let password_hash = if password || password_stdin {
                Some(ctx.new_password_hash(password_stdin, "administrator").await?)
            } else {
                None
            };
            let changes = AdminChanges {
                password_hash,
                active,
                force_password_change: required.force_password_change,
                force_totp: required.force_totp,
            };
            let store = ctx.store().await?;
            let admin = store.update_admin(&actor, &username, AdminRole::Admin, changes).await?;
            store.close().await;
            eprintln!("changed administrator {}", admin.username);
        }
        AdminCommand::Remove { username } => {
            let store = ctx.store().await?;
            store.remove_admin(&actor, &username, AdminRole::Admin).await?;
            store.close().await;
            eprintln!("removed administrator {username}");
        }
    }
    Ok(())
}

/// Runs a `domain-admin` command.
pub async fn domain_admin(ctx: &CommandContext, command: DomainAdminCommand) -> anyhow::Result<()> {
    let actor = Actor::cli();
    match command {
        DomainAdminCommand::Add { username, domains, acl, password } => {
            let domains = domain_names(&domains)?;
            let password_hash = ctx.new_password_hash(password.password_stdin, "domain administrator").await?;
            let store = ctx.store().await?;
            let admin =
                store.create_domain_admin(&actor, NewDomainAdmin { username, password_hash, domains, acl }).await?;
            store.close().await;
            eprintln!("added domain administrator {}", admin.username);
        }
        DomainAdminCommand::List(args) => {
            let store = ctx.store().await?;
            let admins = store.list_admins(AdminRole::DomainAdmin).await?;
            store.close().await;
            print_list(args.json, &admins, &["DOMAIN ADMIN", "ACTIVE", "DOMAINS", "PERMISSIONS"], |a| {
                vec![a.username.clone(), yes_no(a.active), a.domains.join(","), a.acl.join(",")]
            });
        }
        DomainAdminCommand::Edit { username, domains, acl, active, password, password_stdin, required } => {
            let password_hash = if password || password_stdin {
                Some(ctx.new_password_hash(password_stdin, "domain administrator").await?)
            } else {
                None
            };
            let changes = DomainAdminChanges {
                password_hash,
                domains: domains.map(|d| domain_names(&d)).transpose()?,
                acl,
                active,
                force_password_change: required.force_password_change,
                force_totp: required.force_totp,
            };
            let store = ctx.store().await?;
            let admin = store.update_domain_admin(&actor, &username, changes).await?;
            store.close().await;
            eprintln!("changed domain administrator {}", admin.username);
        }
        DomainAdminCommand::Remove { username } => {
            let store = ctx.store().await?;
            store.remove_admin(&actor, &username, AdminRole::DomainAdmin).await?;
            store.close().await;
            eprintln!("removed domain administrator {username}");
        }
    }
    Ok(())
}

/// Runs a `master-user` command.
pub async fn master_user(ctx: &CommandContext, command: MasterUserCommand) -> anyhow::Result<()> {
    let actor = Actor::cli();
    match command {
        MasterUserCommand::Add { username, scope, domains, password } => {
            let scope = match scope.as_str() {
                "global" | "domain" if !domains.is_empty() => {
                    anyhow::bail!("--domains is only for scope 'owned'")
                }
                "global" => NewMasterScope::Global,
                "domain" => NewMasterScope::Domain,
                _ => NewMasterScope::Owned(domain_names(&domains)?),
            };
            let password_hash = ctx.new_password_hash(password.password_stdin, "master user").await?;
            let store = ctx.store().await?;
            let master = store.create_master_user(&actor, NewMasterUser { username, password_hash, scope }).await?;
            store.close().await;
            eprintln!("added master user {} (scope {})", master.username, master.scope.kind());
        }
        MasterUserCommand::List(args) => {
            let store = ctx.store().await?;
            let masters = store.list_master_users().await?;
            store.close().await;
            print_list(args.json, &masters, &["MASTER USER", "SCOPE", "DOMAINS", "ACTIVE"], |m| {
                let domains = match &m.scope {
                    MasterScope::Global => "*".to_string(),
                    MasterScope::Domain(domain) => domain.clone(),
                    MasterScope::Owned(domains) => domains.join(","),
                };
                vec![m.username.clone(), m.scope.kind().to_string(), domains, yes_no(m.active)]
            });
        }
        MasterUserCommand::Remove { username } => {
            let store = ctx.store().await?;
            store.remove_master_user(&actor, &username).await?;
            store.close().await;
            eprintln!("removed master user {username}");
        }
    }
    Ok(())
}
