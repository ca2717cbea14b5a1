//! `gatehouse-bench-seed`: fills an initialised Gatehouse database with many domains, mailboxes and auth-log
//! rows through the store's own API, for `bench/admin-pages` (how fast the administration pages render on a
//! large installation).
//!
//!     gatehouse-bench-seed --database-url URL [--domains N] [--mailboxes N] [--auth-log N]
//!
//! Defaults: 50 domains, 50 000 mailboxes, 1 000 000 auth-log rows. The database must have been created by
//! `gatehouse --database-url URL init` (the tool refuses one without the schema, or with migrations pending).
//!
//! What it writes (deterministic: the same sizes give the same rows, apart from the times):
//!
//! - domains `d000.example`, `d001.example`, … (active, without limits);
//! - mailboxes `user00000@d000.example`, … in consecutive blocks per domain (with 50 domains and 50 000
//!   mailboxes, `user00000` to `user00999` are in `d000.example`), display name `Person N of team M` (M is N
//!   modulo 100), quotas between 0 (unlimited) and 10 000 MiB, every tenth one (N ending in 9) inactive, no
//!   password; 1 000 per call of `create_mailboxes` (one transaction each, each mailbox must be created);
//! - auth-log rows over the last 30 days, oldest first (so row ids follow time, as in a real log), for the
//!   seeded mailboxes, services imap, smtp, sogo, web and pop3, about 15 % failures ("wrong password"), clients
//!   from 300 addresses in 198.51.100.0/24 and 203.0.113.0/24; 10 000 rows per `record_auth_batch`.
//!
//! Progress and the seconds of each phase go to stderr; at the end one JSON line goes to stdout:
//! `{"domains":…,"mailboxes":…,"auth_log":…,"seconds":…,"seconds_domains":…,"seconds_mailboxes":…,"seconds_auth_log":…}`.

use std::process::ExitCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use gatehouse_core::{DatabaseUrl, DomainName, MailboxAddress};
use gatehouse_store::{Actor, ActorRole, AuthResult, NewAuthLogEntry, NewDomain, NewMailbox, Store};

/// Mailboxes per `create_mailboxes` call (one transaction).
const MAILBOX_BATCH: usize = 1_000;
/// Auth-log rows per `record_auth_batch` call (one transaction).
const AUTH_LOG_BATCH: usize = 10_000;
/// How far back the auth log reaches.
const AUTH_LOG_SPAN_SECONDS: i64 = 30 * 86_400;
/// The services of the auth log, with their weights (out of 100).
const SERVICES: [(&str, u64); 5] = [("imap", 45), ("smtp", 30), ("sogo", 10), ("web", 10), ("pop3", 5)];
/// Client addresses: this many in each of the two documentation networks.
const ADDRESSES_PER_NETWORK: u64 = 150;

const USAGE: &str = "usage: gatehouse-bench-seed --database-url URL [--domains N] [--mailboxes N] [--auth-log N]

Seeds an initialised Gatehouse database (`gatehouse --database-url URL init`) with domains d000.example …,
mailboxes user00000@dNNN.example … and auth-log rows of the last 30 days. Defaults: 50 domains, 50000
mailboxes, 1000000 auth-log rows.";

/// The command line.
struct Options {
    database_url: String,
    domains: usize,
    mailboxes: usize,
    auth_log: usize,
}

/// Reads the command line; `Err` holds what to print before the usage.
fn parse_args(args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options { database_url: String::new(), domains: 50, mailboxes: 50_000, auth_log: 1_000_000 };
    let mut args = args;
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            return Err(String::new());
        }
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name.to_string(), Some(value.to_string())),
            _ => (arg.clone(), None),
        };
        if !["--database-url", "--domains", "--mailboxes", "--auth-log"].contains(&name.as_str()) {
            return Err(format!("unknown argument {arg}"));
        }
        let value = match inline.or_else(|| args.next()) {
            Some(value) => value,
            None => return Err(format!("{name} needs a value")),
        };
        let number =
            || value.replace('_', "").parse::<usize>().map_err(|_| format!("{name}: '{value}' is not a number"));
        match name.as_str() {
            "--database-url" => options.database_url = value.clone(),
            "--domains" => options.domains = number()?,
            "--mailboxes" => options.mailboxes = number()?,
            "--auth-log" => options.auth_log = number()?,
            _ => return Err(format!("unknown argument {arg}")),
        }
    }
    if options.database_url.is_empty() {
        return Err("--database-url is required".into());
    }
    if options.domains == 0 {
        return Err("--domains must be at least 1".into());
    }
    if options.auth_log > 0 && options.mailboxes == 0 {
        return Err("auth-log rows need mailboxes to name (--mailboxes 0 with --auth-log > 0)".into());
    }
    Ok(options)
}

/// A small deterministic generator (SplitMix64): the same seed gives the same data set.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The name of domain `index`.
fn domain_name(index: usize) -> String {
    format!("d{index:03}.example")
}

/// The domain mailbox `index` belongs to: consecutive blocks of (about) `mailboxes / domains` mailboxes.
fn domain_of(index: usize, domains: usize, mailboxes: usize) -> usize {
    // u128: 50 000 × 50 fits in usize anyway, but a large run must not overflow.
    usize::try_from(index as u128 * domains as u128 / mailboxes.max(1) as u128).unwrap_or(0)
}

/// The address of mailbox `index`.
fn address(index: usize, domains: usize, mailboxes: usize) -> String {
    format!("user{index:05}@{}", domain_name(domain_of(index, domains, mailboxes)))
}

/// Client address number `index` (0 to 2 × [`ADDRESSES_PER_NETWORK`] − 1).
fn client_address(index: u64) -> String {
    if index < ADDRESSES_PER_NETWORK {
        format!("198.51.100.{}", index + 1)
    } else {
        format!("203.0.113.{}", index - ADDRESSES_PER_NETWORK + 1)
    }
}

/// Seconds since `started`, for messages.
fn seconds(started: Instant) -> f64 {
    started.elapsed().as_secs_f64()
}

async fn seed(options: &Options) -> Result<(f64, f64, f64), String> {
    let url = DatabaseUrl::new(options.database_url.clone());
    // An initialised database only: this tool never creates a schema (a typo in the URL would otherwise make a
    // new SQLite file and seed that).
    let schema = Store::inspect_schema(&url)
        .await
        .map_err(|err| format!("{err} (create the database with `gatehouse --database-url URL init` first)"))?;
    if !schema.pending.is_empty() || !schema.unknown.is_empty() {
        return Err(format!(
            "the schema of {url} does not match this build (pending: {:?}, unknown: {:?}); run the same build's \
             `gatehouse init` first",
            schema.pending, schema.unknown
        ));
    }
    let store = Store::open(&url).await.map_err(|err| format!("cannot open {url}: {err}"))?;
    let actor = Actor { name: "bench-seed".into(), role: ActorRole::Cli };

    eprintln!(
        "seeding {url}: {} domains, {} mailboxes, {} auth-log rows",
        options.domains, options.mailboxes, options.auth_log
    );

    // Domains.
    let started = Instant::now();
    let mut domains = Vec::with_capacity(options.domains);
    for index in 0..options.domains {
        let name = DomainName::parse(&domain_name(index)).map_err(|err| format!("domain {index}: {err}"))?;
        store
            .create_domain(&actor, NewDomain::new(name.clone()))
            .await
            .map_err(|err| format!("creating domain {name}: {err}"))?;
        domains.push(name);
    }
    let domain_seconds = seconds(started);
    eprintln!("domains: {} in {domain_seconds:.1} s", options.domains);

    // Mailboxes.
    let started = Instant::now();
    let mut mix = Mix(0x6761_7465_686f_7573);
    let mut created = 0usize;
    let mut next_report = Instant::now();
    while created < options.mailboxes {
        let end = Ord::min(created + MAILBOX_BATCH, options.mailboxes);
        let mut batch = Vec::with_capacity(end - created);
        for index in created..end {
            let domain = domains[domain_of(index, options.domains, options.mailboxes)].clone();
            let local = format!("user{index:05}");
            let address = MailboxAddress::from_parts(&local, domain).map_err(|err| format!("{local}: {err}"))?;
            let mut new = NewMailbox::new(address);
            new.display_name = Some(format!("Person {index} of team {}", index % 100));
            new.quota_mib = Some(i64::try_from(mix.below(10_001)).unwrap_or(0));
            new.active = Some(index % 10 != 9);
            batch.push(new);
        }
        let outcomes = store
            .create_mailboxes(&actor, batch)
            .await
            .map_err(|err| format!("creating mailboxes {created} to {}: {err}", end - 1))?;
        for (offset, outcome) in outcomes.into_iter().enumerate() {
            if let Err(err) = outcome {
                return Err(format!(
                    "mailbox {} was refused: {err}",
                    address(created + offset, options.domains, options.mailboxes)
                ));
            }
        }
        created = end;
        if next_report.elapsed().as_secs() >= 5 || created == options.mailboxes {
            next_report = Instant::now();
            let elapsed = seconds(started);
            eprintln!(
                "mailboxes: {created} of {} ({elapsed:.0} s, {:.0}/s)",
                options.mailboxes,
                created as f64 / elapsed
            );
        }
    }
    let mailbox_seconds = seconds(started);
    eprintln!("mailboxes: {} in {mailbox_seconds:.1} s", options.mailboxes);

    // Auth log: oldest first, evenly over the last 30 days with a little jitter.
    let started = Instant::now();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let now = i64::try_from(now).unwrap_or(i64::MAX);
    let first = now - AUTH_LOG_SPAN_SECONDS;
    let total = i64::try_from(options.auth_log).unwrap_or(i64::MAX);
    let step = Ord::max(AUTH_LOG_SPAN_SECONDS / Ord::max(total, 1), 1);
    let weights: u64 = SERVICES.iter().map(|(_, w)| w).sum();
    let mailboxes = u64::try_from(options.mailboxes).unwrap_or(u64::MAX);
    let mut written = 0usize;
    let mut next_report = Instant::now();
    while written < options.auth_log {
        let end = Ord::min(written + AUTH_LOG_BATCH, options.auth_log);
        let mut batch = Vec::with_capacity(end - written);
        for row in written..end {
            let row = i64::try_from(row).unwrap_or(i64::MAX);
            let at = first
                + row * AUTH_LOG_SPAN_SECONDS / Ord::max(total, 1)
                + i64::try_from(mix.below(u64::try_from(step).unwrap_or(1))).unwrap_or(0);
            let mut pick = mix.below(weights);
            let service = SERVICES
                .iter()
                .find(|(_, weight)| {
                    let hit = pick < *weight;
                    pick = pick.saturating_sub(*weight);
                    hit
                })
                .map_or("imap", |(name, _)| name);
            let user = usize::try_from(mix.below(mailboxes)).unwrap_or(0);
            let failed = mix.below(100) < 15;
            let reason = if failed {
                "wrong password".to_string()
            } else if mix.below(4) == 0 {
                "Password".to_string()
            } else {
                "Password (cached)".to_string()
            };
            batch.push((
                at,
                NewAuthLogEntry {
                    service: service.to_string(),
                    username: address(user, options.domains, options.mailboxes),
                    master_user: None,
                    remote_ip: Some(client_address(mix.below(2 * ADDRESSES_PER_NETWORK))),
                    result: if failed { AuthResult::Failure } else { AuthResult::Success },
                    reason,
                    app_password_id: None,
                },
            ));
        }
        store
            .record_auth_batch(batch)
            .await
            .map_err(|err| format!("writing auth-log rows {written} to {}: {err}", end - 1))?;
        written = end;
        if next_report.elapsed().as_secs() >= 5 || written == options.auth_log {
            next_report = Instant::now();
            let elapsed = seconds(started);
            eprintln!(
                "auth log: {written} of {} ({elapsed:.0} s, {:.0}/s)",
                options.auth_log,
                written as f64 / elapsed
            );
        }
    }
    let auth_seconds = seconds(started);
    eprintln!("auth log: {} rows in {auth_seconds:.1} s", options.auth_log);
    store.close().await;
    Ok((domain_seconds, mailbox_seconds, auth_seconds))
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(problem) => {
            if !problem.is_empty() {
                eprintln!("gatehouse-bench-seed: {problem}\n");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(if problem.is_empty() { 0 } else { 2 });
        }
    };
    let started = Instant::now();
    match seed(&options).await {
        Ok((domains, mailboxes, auth_log)) => {
            let total = seconds(started);
            eprintln!("seeded in {total:.1} s");
            println!(
                "{{\"domains\":{},\"mailboxes\":{},\"auth_log\":{},\"seconds\":{total:.1},\"seconds_domains\":{domains:.1},\"seconds_mailboxes\":{mailboxes:.1},\"seconds_auth_log\":{auth_log:.1}}}",
                options.domains, options.mailboxes, options.auth_log
            );
            ExitCode::SUCCESS
        }
        Err(problem) => {
            eprintln!("gatehouse-bench-seed: {problem}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailboxes_fill_domains_in_blocks() {
        assert_eq!(address(0, 50, 50_000), "user00000@d000.example");
        assert_eq!(address(42, 50, 50_000), "user00042@d000.example");
        assert_eq!(address(999, 50, 50_000), "user00999@d000.example");
        assert_eq!(address(1_000, 50, 50_000), "user01000@d001.example");
        assert_eq!(address(49_999, 50, 50_000), "user49999@d049.example");
        assert_eq!(address(1_999, 50, 2_000), "user01999@d049.example");
    }

    #[test]
    fn client_addresses_cover_both_networks() {
        assert_eq!(client_address(0), "198.51.100.1");
        assert_eq!(client_address(149), "198.51.100.150");
        assert_eq!(client_address(156), "203.0.113.7");
        assert_eq!(client_address(299), "203.0.113.150");
    }

    #[test]
    fn arguments_are_read() {
        let args = ["--database-url", "sqlite://x.db", "--mailboxes=2000", "--auth-log", "50_000"];
        let options = parse_args(args.iter().map(|s| s.to_string())).expect("valid");
        assert_eq!((options.domains, options.mailboxes, options.auth_log), (50, 2_000, 50_000));
        assert!(parse_args(["--domains", "3"].iter().map(|s| s.to_string())).is_err());
        assert!(parse_args(["--database-url", "x", "--bogus", "1"].iter().map(|s| s.to_string())).is_err());
    }
}
