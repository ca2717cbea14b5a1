//! `gatehouse doctor`: checks what this instance can see of its own setup — the configuration and its files, the
//! database and its migrations, the listeners and who may call them, a running server, each identity provider —
//! and prints one finding per check with what to do. Nothing is changed (the database is not migrated).

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use gatehouse_store::Store;

use super::CommandContext;
use super::config::reachable;

/// How long each network check (a running server, an identity provider) may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Ok,
    Warning,
    Problem,
}

/// The findings so far, printed as they come.
#[derive(Default)]
struct Report {
    warnings: usize,
    problems: usize,
}

impl Report {
    fn add(&mut self, level: Level, what: &str, text: impl AsRef<str>) {
        let label = match level {
            Level::Ok => "ok      ",
            Level::Warning => {
                self.warnings += 1;
                "warning "
            }
            Level::Problem => {
                self.problems += 1;
                "PROBLEM "
            }
        };
        outln!("{label} {what}: {}", text.as_ref());
    }
}

/// Runs `gatehouse doctor`; fails (exit code 1) when a finding is a problem.
pub async fn run(ctx: &CommandContext, config_file: Option<&Path>) -> anyhow::Result<()> {
    let mut report = Report::default();
    files(ctx, config_file, &mut report);
    let store = database(ctx, &mut report).await;
    listeners(ctx, &mut report);
    running_server(ctx, &mut report).await;
    if let Some(store) = store {
        identity_providers(&store, &mut report).await;
        store.close().await;
    }
    outln!("\n{} problem(s), {} warning(s)", report.problems, report.warnings);
    if report.problems > 0 {
        return Err(crate::Exit(std::process::ExitCode::from(1)).into());
    }
    Ok(())
}

/// The configuration file and the secret key file: present, and private where they hold secrets.
fn files(ctx: &CommandContext, config_file: Option<&Path>, report: &mut Report) {
    match config_file {
        None => report.add(Level::Ok, "configuration", "no file; defaults and GATEHOUSE_* variables"),
        Some(path) => {
            let from_file = gatehouse_config::Config::load_from(Some(path), Vec::new()).map(|loaded| loaded.config);
            let secrets = from_file.map(|config| secrets_in(&config)).unwrap_or_default();
            match (gatehouse_store::sealing::looser_than_private(path), secrets.is_empty()) {
                (Some(_), false) => report.add(
                    Level::Problem,
                    "configuration",
                    format!(
                        "{} holds secrets ({}) and other users can read it: chmod 0640 it, owned by root and the \
                         service's group, or move the secrets to *_FILE variables",
                        path.display(),
                        secrets.join(", ")
                    ),
                ),
                _ => report.add(Level::Ok, "configuration", format!("{} read", path.display())),
            }
        }
    }
    let key = ctx.secret_key_path();
    if !key.exists() {
        report.add(
            Level::Problem,
            "secret key",
            format!("no file at {}: `gatehouse init` creates it, or set secret_key_file", key.display()),
        );
    } else if let Some(warning) = gatehouse_store::sealing::looser_than_private(&key) {
        report.add(Level::Problem, "secret key", format!("{warning}: chmod 0600 it"));
    } else {
        report.add(Level::Ok, "secret key", format!("{} (readable by its owner only)", key.display()));
    }
}

/// The settings of `config` that are secrets, by name.
fn secrets_in(config: &gatehouse_config::Config) -> Vec<&'static str> {
    let mut names = Vec::new();
    if config.database_url.has_password() {
        names.push("database_url");
    }
    if config.dovecot.shared_secret.as_ref().is_some_and(|s| !s.is_empty()) {
        names.push("dovecot.shared_secret");
    }
    if config.dovecot.doveadm_api_key.as_ref().is_some_and(|s| !s.is_empty()) {
        names.push("dovecot.doveadm_api_key");
    }
    if config.sogo.users_url.as_ref().is_some_and(|s| !s.is_empty()) {
        names.push("sogo.users_url");
    }
    names
}

/// The database: reachable, Gatehouse's schema, its migrations. Returns the opened store when the schema is
/// current (opening it then changes nothing).
async fn database(ctx: &CommandContext, report: &mut Report) -> Option<Store> {
    let url = &ctx.config.database_url;
    let state = match Store::inspect_schema(url).await {
        Ok(state) => state,
        Err(gatehouse_core::Error::NotFound { kind, name }) => {
            report.add(
                Level::Problem,
                "database",
                format!("no {kind} at {name}: `gatehouse init` creates it, or point database_url at the existing one"),
            );
            return None;
        }
        Err(err) => {
            report.add(Level::Problem, "database", format!("{url}: {err}"));
            return None;
        }
    };
    if !state.unknown.is_empty() {
        report.add(
            Level::Problem,
            "migrations",
            format!(
                "a newer Gatehouse applied {} to {url}; this one refuses the database: run the newer version (there \
                 are no down migrations; to go back, restore a backup)",
                state.unknown.join(", ")
            ),
        );
        return None;
    }
    if !state.pending.is_empty() {
        report.add(
            Level::Warning,
            "migrations",
            format!(
                "{} applied, {} to apply ({}): back the database up; the next `gatehouse serve` (or any command) \
                 applies them",
                state.applied.len(),
                state.pending.len(),
                state.pending.join(", ")
            ),
        );
        return None;
    }
    report.add(Level::Ok, "database", format!("{url}, {} migrations, all applied", state.applied.len()));
    match ctx.store().await {
        Ok(store) => {
            for warning in store.permission_warnings() {
                report.add(Level::Problem, "database files", format!("{warning}: chmod it to its owner only"));
            }
            Some(store)
        }
        Err(err) => {
            report.add(Level::Problem, "database", format!("{err:#}"));
            None
        }
    }
}

/// Where the listeners are and who may call the internal one without the secret.
fn listeners(ctx: &CommandContext, report: &mut Report) {
    let listen = &ctx.config.listen;
    let internal = listen.internal.ip();
    let what = "internal listener";
    if internal.is_loopback() {
        report.add(Level::Ok, what, format!("{} (loopback)", listen.internal));
    } else if internal.is_unspecified() || !is_private(internal) {
        report.add(
            Level::Problem,
            what,
            format!(
                "{} is reachable from {}: it answers Dovecot and nginx, and nobody else should reach it. Bind it \
                 to loopback, or to an address on the mail servers' own network",
                listen.internal,
                if internal.is_unspecified() { "every network" } else { "the internet" }
            ),
        );
    } else {
        report.add(
            Level::Warning,
            what,
            format!(
                "{} is on a network: callers' shared secret and passwords cross it unencrypted unless they use \
                 listen.internal_tls",
                listen.internal
            ),
        );
    }
    for network in &ctx.config.dovecot.allowed_networks {
        let loopback = network.parse::<ipnet::IpNet>().is_ok_and(|net| net.network().is_loopback());
        if !loopback {
            report.add(
                Level::Warning,
                "dovecot.allowed_networks",
                format!(
                    "callers from {network} need no shared secret: any process there can ask for password \
                     decisions. Remove it and give those callers the secret (`gatehouse config secret`)"
                ),
            );
        }
    }
    match listen.sasl.as_deref().filter(|s| !s.is_empty()) {
        None => report.add(Level::Ok, "auth-protocol listener", "off (Postfix asks through Dovecot, if at all)"),
        Some(text) => match text.parse::<gatehouse_server::SaslAddress>() {
            Ok(gatehouse_server::SaslAddress::Tcp(addr)) if !addr.ip().is_loopback() => report.add(
                Level::Warning,
                "auth-protocol listener",
                format!("{addr} is not loopback: anyone who reaches it can try passwords; prefer a unix socket"),
            ),
            Ok(address) => report.add(Level::Ok, "auth-protocol listener", address.to_string()),
            Err(err) => report.add(Level::Problem, "listen.sasl", err),
        },
    }
    let dovecot = &ctx.config.dovecot;
    let has_key = dovecot.doveadm_api_key.as_ref().is_some_and(|k| !k.is_empty());
    match (dovecot.doveadm_url.as_deref().filter(|u| !u.is_empty()), has_key) {
        (Some(_), false) => report.add(
            Level::Problem,
            "doveadm",
            "dovecot.doveadm_url is set without dovecot.doveadm_api_key: Dovecot's auth cache is never emptied",
        ),
        (None, true) => {
            report.add(Level::Warning, "doveadm", "dovecot.doveadm_api_key is set but dovecot.doveadm_url is not")
        }
        (Some(url), true) => report.add(Level::Ok, "doveadm", format!("changes empty Dovecot's auth cache at {url}")),
        (None, false) => report.add(
            Level::Warning,
            "doveadm",
            "not configured: a revoked app password or a deactivated mailbox keeps working in Dovecot until its auth \
             cache entry expires (set dovecot.doveadm_url and dovecot.doveadm_api_key, then `gatehouse config \
             dovecot --part doveadm`)",
        ),
    }
    match ctx.config.web.public_url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
        None => report.add(
            Level::Warning,
            "web.public_url",
            "not set: sign-in at identity providers needs it (their redirect URI), and pages cannot name themselves",
        ),
        Some(url) => match url::Url::parse(url) {
            Ok(parsed) if parsed.scheme() == "https" => report.add(Level::Ok, "web.public_url", url),
            Ok(parsed) if parsed.host_str().is_some_and(is_loopback_host) => {
                report.add(Level::Ok, "web.public_url", format!("{url} (loopback only)"))
            }
            Ok(_) => report.add(
                Level::Problem,
                "web.public_url",
                format!("{url} is not https: passwords and session cookies would cross the network in clear"),
            ),
            Err(err) => report.add(Level::Problem, "web.public_url", format!("{url}: {err}")),
        },
    }
}

/// Whether a URL's host is this machine.
fn is_loopback_host(host: &str) -> bool {
    host == "localhost"
        || host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Private, link-local or unique-local addresses: not reachable from the internet.
fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xfe00) == 0xfc00 || (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

/// Whether `gatehouse serve` answers on the internal listener, and whether it reaches the database.
async fn running_server(ctx: &CommandContext, report: &mut Report) {
    let address = reachable(ctx.config.listen.internal);
    let what = "running server";
    match tokio::time::timeout(CHECK_TIMEOUT, healthz(address)).await {
        Ok(Ok(200)) => report.add(Level::Ok, what, format!("answers on {address}, and reaches the database")),
        Ok(Ok(503)) => report.add(
            Level::Problem,
            what,
            format!("answers on {address} but cannot reach the database: logins are temporary failures"),
        ),
        Ok(Ok(status)) => report.add(
            Level::Problem,
            what,
            format!("{address} answered /healthz with {status}: is another program listening there?"),
        ),
        Ok(Err(err)) => report.add(
            Level::Warning,
            what,
            format!("nothing answers on {address} ({err}): is `gatehouse serve` running?"),
        ),
        Err(_) => report.add(Level::Problem, what, format!("{address} did not answer /healthz within 10 s")),
    }
}

/// `GET /healthz` on `address`; the status code.
async fn healthz(address: std::net::SocketAddr) -> std::io::Result<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: gatehouse\r\nConnection: close\r\n\r\n").await?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await?;
    std::str::from_utf8(&head[9..12])
        .ok()
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "not an HTTP answer"))
}

/// Each active identity provider's connection test.
async fn identity_providers(store: &Store, report: &mut Report) {
    let providers = match store.list_identity_providers().await {
        Ok(providers) => providers,
        Err(err) => {
            report.add(Level::Problem, "identity providers", err.to_string());
            return;
        }
    };
    if providers.is_empty() {
        report.add(Level::Ok, "identity providers", "none");
    }
    for provider in providers {
        let what = format!("identity provider {}", provider.name);
        if !provider.active {
            report.add(Level::Ok, &what, "inactive, not checked");
            continue;
        }
        if provider.ignores_tls_errors() {
            report.add(
                Level::Warning,
                &what,
                "ignore_tls_errors is on: anyone between Gatehouse and the provider can answer for it",
            );
        }
        let source = match gatehouse_sources::registry::build_source(store, &provider).await {
            Ok(source) => source,
            Err(err) => {
                report.add(Level::Problem, &what, format!("its settings are unusable: {err}"));
                continue;
            }
        };
        let steps = match tokio::time::timeout(CHECK_TIMEOUT, source.test(None)).await {
            Ok(steps) => steps,
            Err(_) => {
                report.add(Level::Problem, &what, "the connection test did not finish within 10 s");
                continue;
            }
        };
        let failed: Vec<String> = steps
            .iter()
            .filter_map(|(step, outcome)| outcome.as_ref().err().map(|why| format!("{step}: {why}")))
            .collect();
        if failed.is_empty() {
            report.add(Level::Ok, &what, format!("{} connection steps passed", steps.len()));
        } else {
            report.add(
                Level::Problem,
                &what,
                format!("{} (`gatehouse idp test {}` shows every step)", failed.join("; "), provider.name),
            );
        }
    }
}
