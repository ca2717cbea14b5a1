//! The `gatehouse` binary: parses the command line, loads the configuration, sets up logging and runs one
//! command. Errors are printed as one line on stderr; the exit code tells client faults (1) from temporary
//! server faults (75, like sysexits' EX_TEMPFAIL), internal faults (70) and configuration errors (78).

#[macro_use]
mod output;
mod cli;
mod commands;
mod logging;
mod password_input;

use std::process::ExitCode;

use clap::Parser;
use gatehouse_config::Config;
use gatehouse_core::{DatabaseUrl, Fault};

use crate::cli::{Cli, Command};
use crate::commands::CommandContext;

/// Every allocation goes to mimalloc: many small, short-lived ones per request, from every worker thread, which
/// glibc's allocator serves markedly slower (see docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Ends a command with a specific exit code and no error message (a command whose result *is* the code,
/// such as `auth test`).
#[derive(Debug)]
pub struct Exit(pub ExitCode);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {:?}", self.0)
    }
}

impl std::error::Error for Exit {}

const EXIT_CLIENT: u8 = 1;
const EXIT_INTERNAL: u8 = 70;
const EXIT_TEMPFAIL: u8 = 75;
const EXIT_CONFIG: u8 = 78;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Completions and the manual page need no configuration; written through the same output as every command,
    // so a closed pipe ends them quietly.
    let generated = match &cli.command {
        Command::Completions { shell } => {
            let mut text = Vec::new();
            clap_complete::generate(*shell, &mut <Cli as clap::CommandFactory>::command(), "gatehouse", &mut text);
            Some(Ok(text))
        }
        Command::Manpage => {
            let command =
                <Cli as clap::CommandFactory>::command().about("the authentication hub of a self-hosted mail server");
            let mut text = Vec::new();
            Some(clap_mangen::Man::new(command).render(&mut text).map(|()| text))
        }
        _ => None,
    };
    if let Some(generated) = generated {
        return match generated {
            Ok(text) => {
                out!("{}", String::from_utf8_lossy(&text));
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("gatehouse: error: {err}");
                ExitCode::from(EXIT_INTERNAL)
            }
        };
    }
    if let Command::Pw(args) = &cli.command {
        // `pw` needs no configuration beyond the password scheme, and has doveadm's exit codes.
        return commands::pw::run(args, cli.config.as_deref());
    }
    if rustls::crypto::ring::default_provider().install_default().is_err() {
        eprintln!("gatehouse: error: a TLS crypto provider was installed twice");
        return ExitCode::from(EXIT_INTERNAL);
    }
    let loaded = match Config::load(cli.config.as_deref()) {
        Ok(loaded) => loaded,
        Err(err) => {
            eprintln!("gatehouse: error: {err}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let mut config = loaded.config;
    if let Some(url) = cli.database_url {
        config.database_url = DatabaseUrl::new(url);
    }
    // Commands other than `serve` and `init` stay quiet unless a log level was chosen explicitly.
    let quiet = !matches!(cli.command, Command::Serve(_) | Command::Init) && config.log == Config::default().log;
    // Quiet means: only the commands' own warnings (a database file others can read, …); errors end the
    // command and are printed once, on one line.
    logging::init(if quiet { "off,gatehouse::commands=warn" } else { &config.log }, config.log_format);
    if let Some(file) = &loaded.file {
        tracing::debug!(file = %file.display(), "configuration file read");
    }
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }

    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("gatehouse: error: cannot start the async runtime: {err}");
            return ExitCode::from(EXIT_INTERNAL);
        }
    };
    let ctx = CommandContext { config };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => commands::serve::run(&ctx, args).await,
            Command::Init => commands::serve::init(&ctx).await,
            Command::Doctor => commands::doctor::run(&ctx, loaded.file.as_deref()).await,
            Command::Import(command) => commands::import::run(&ctx, command).await,
            Command::Domain(command) => commands::domains::run(&ctx, command).await,
            Command::Template(command) => commands::templates::run(&ctx, command).await,
            Command::Mailbox(command) => commands::mailboxes::run(&ctx, command).await,
            Command::Admin(command) => commands::admins::admin(&ctx, command).await,
            Command::DomainAdmin(command) => commands::admins::domain_admin(&ctx, command).await,
            Command::MasterUser(command) => commands::admins::master_user(&ctx, command).await,
            Command::Log(args) => commands::logs::run(&ctx, args).await,
            Command::Sogo(command) => commands::config::sogo_users(&ctx, command).await,
            Command::Idp(command) => commands::idp::run(&ctx, command).await,
            Command::Sync(args) => commands::sync::run(&ctx, args).await,
            Command::ApiKey(command) => commands::api_keys::run(&ctx, command).await,
            Command::ScimToken(command) => commands::scim_tokens::run(&ctx, command).await,
            Command::Guard(command) => commands::guard::run(&ctx, command).await,
            Command::Config(command) => commands::config::run(&ctx, command),
            Command::AppPassword(command) => commands::app_passwords::run(&ctx, command).await,
            Command::Passkey(command) => commands::passkeys::run(&ctx, command).await,
            Command::Auth(command) => commands::auth::run(&ctx, command).await,
            Command::Pw(_) | Command::Completions { .. } | Command::Manpage => {
                unreachable!("handled before the runtime starts")
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => match err.downcast::<Exit>() {
            Ok(Exit(code)) => code,
            Err(err) => {
                eprintln!("gatehouse: error: {}", one_line(&err));
                ExitCode::from(exit_code(&err))
            }
        },
    }
}

/// The error and its causes on one line.
fn one_line(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ").replace('\n', " ")
}

fn exit_code(err: &anyhow::Error) -> u8 {
    if err.chain().any(|cause| cause.is::<commands::ConfigProblem>()) {
        return EXIT_CONFIG;
    }
    match err.chain().find_map(|cause| cause.downcast_ref::<gatehouse_core::Error>()) {
        Some(gatehouse_core::Error::Unavailable(_) | gatehouse_core::Error::AlreadyRunning(_)) => EXIT_TEMPFAIL,
        Some(inner) if inner.fault() == Fault::Server => EXIT_INTERNAL,
        _ => EXIT_CLIENT,
    }
}
