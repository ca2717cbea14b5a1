//! `gatehouse auth test`: one login through the same engine the server uses, printed as a decision.

use std::process::ExitCode;

use anyhow::Context;
use gatehouse_engine::{Credentials, Decision, EntryPoint, LoginRequest, LoginService};

use super::CommandContext;
use crate::cli::AuthCommand;
use crate::password_input::read_password;

/// Exit code for a denied login.
pub const DENIED: u8 = 1;
/// Exit code for a temporary failure (sysexits' EX_TEMPFAIL).
pub const TEMPFAIL: u8 = 75;

/// Runs an `auth` command; the exit code carries the decision.
pub async fn run(ctx: &CommandContext, command: AuthCommand) -> anyhow::Result<()> {
    let AuthCommand::Test { user, service, rip, master } = command;
    let service = LoginService::from_name(&service).with_context(|| format!("unknown service '{service}'"))?;
    let password = read_password("Password: ", false)?;
    let (username, authzid) = match master {
        Some(master) => (master, Some(user)),
        None => (user, None),
    };
    let store = ctx.store().await?;
    let pool = ctx.hash_pool(Some(1))?;
    let auth = ctx.auth_service(&store, &pool)?;
    let request = LoginRequest {
        username,
        authzid,
        credentials: Credentials::Password(password),
        service,
        remote_ip: rip,
        secured: true,
        entry: EntryPoint::Operator,
        master_second_pass: None,
    };
    let decision = auth.login_and_record(&request).await;
    store.close().await;
    let code = match decision {
        Decision::Allowed { user, master_user, via, .. } => {
            let master = master_user.map(|m| format!(" (master user {m})")).unwrap_or_default();
            outln!("allowed: {user}{master} via {via:?}");
            ExitCode::SUCCESS
        }
        Decision::Denied { reason, detail } => {
            outln!("denied: {} ({detail})", reason.as_str());
            ExitCode::from(DENIED)
        }
        Decision::TempFail { cause } => {
            outln!("temporary failure: {cause}");
            ExitCode::from(TEMPFAIL)
        }
    };
    Err(crate::Exit(code).into())
}
