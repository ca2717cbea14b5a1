//! Gatehouse configuration.
//!
//! Layers, lowest first: built-in defaults, the TOML file (`--config`, else `./gatehouse.toml` if present),
//! mailcow's `ALLOW_ADMIN_EMAIL_LOGIN` variable, `GATEHOUSE_…` environment variables (nesting with `__`,
//! e.g. `GATEHOUSE_LISTEN__PUBLIC`), and `GATEHOUSE_…_FILE` variables that name a file holding the value
//! (for secrets handed over by systemd credentials or container secrets). Command-line flags are applied on
//! top by the binary. Unknown keys in the file are an error; unknown `GATEHOUSE_` variables are a warning.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use gatehouse_core::Secret;
use serde::{Deserialize, Serialize};

pub use gatehouse_core::{DatabaseKind, DatabaseUrl};

/// Prefix of every Gatehouse environment variable.
pub const ENV_PREFIX: &str = "GATEHOUSE_";
/// Environment variables with the prefix that are not configuration keys but are still ours.
const ENV_NOT_KEYS: &[&str] = &["GATEHOUSE_CONFIG"];
/// The file read when `--config` is not given, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "gatehouse.toml";

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the data lives: `sqlite://…`, `postgres://…` or `mysql://…`.
    pub database_url: DatabaseUrl,
    /// Log filter in `tracing` syntax, e.g. `info` or `gatehouse=debug,info`.
    pub log: String,
    /// Log line format: `text` (colours only on a terminal) or `json` (one object per line, for journald and
    /// log shippers).
    pub log_format: LogFormat,
    /// The file holding the key that seals identity-provider secrets in the database and derives the internal
    /// endpoints' shared secret. Default: `gatehouse.key` beside the SQLite database, or `./data/gatehouse.key`
    /// with PostgreSQL and MariaDB. Back it up apart from the database: one without the other is useless.
    pub secret_key_file: Option<String>,
    /// Password of the `admin` account created on the first start; random (printed once) when unset.
    pub admin_password: Option<Secret>,
    /// Listener addresses.
    pub listen: Listen,
    /// Web UI settings.
    pub web: Web,
    /// How new passwords are hashed.
    pub passwords: Passwords,
    /// Login decisions.
    pub auth: Auth,
    /// The Dovecot endpoints on the internal listener.
    pub dovecot: Dovecot,
    /// The brute-force guard.
    pub guard: Guard,
    /// Identity-provider syncs started by the server.
    pub sync: Sync,
    /// Connection limits and timeouts of every listener.
    pub limits: Limits,
    /// SOGo (webmail).
    pub sogo: Sogo,
}

/// SOGo (webmail): where Gatehouse keeps SOGo's user list.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Sogo {
    /// SOGo's own database (`postgres://…` or `mysql://…`), where Gatehouse keeps the table `sogo_users` SOGo
    /// reads its users from; needed when Gatehouse itself runs on SQLite, which SOGo cannot read.
    pub users_url: Option<Secret>,
    /// Seconds between full refreshes of that table (changes made by this server are written at once).
    pub sync_seconds: u64,
}

impl Default for Sogo {
    fn default() -> Self {
        Sogo { users_url: None, sync_seconds: 60 }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines; colours only when standard error is a terminal.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Connection limits and timeouts, applied to each listener (public, internal, SASL) separately.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Open connections per listener; at the limit, the connection idle the longest is closed to admit a new
    /// one (one busy with a request never is).
    pub max_connections: usize,
    /// Seconds an HTTP connection may stay open without a request (keep-alive), and a client may take to send
    /// a request's headers.
    pub http_idle_seconds: u64,
    /// Seconds a SASL (Postfix) connection may stay open without an exchange.
    pub sasl_idle_seconds: u64,
    /// Unfinished exchanges (LOGIN or PLAIN waiting for the client's next line) one SASL connection may hold.
    pub sasl_pending_per_connection: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_connections: 1000, http_idle_seconds: 60, sasl_idle_seconds: 600, sasl_pending_per_connection: 16 }
    }
}

/// Identity-provider syncs started by the server (each provider's own interval decides when one is due).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Sync {
    /// Seconds between checks for due syncs; 0 turns periodic syncs off in this process.
    pub check_seconds: u64,
}

impl Default for Sync {
    fn default() -> Self {
        Sync { check_seconds: 60 }
    }
}

/// The brute-force guard: failed logins per address and per username, escalating delays, temporary bans.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Guard {
    /// Seconds a failure counts.
    pub window_seconds: u64,
    /// Failures from one address within the window that ban it.
    pub ban_after: u32,
    /// Failures after which answers are delayed.
    pub delay_after: u32,
    /// The longest delay, in milliseconds.
    pub max_delay_ms: u64,
    /// Length of a first ban in seconds; it doubles with each further ban.
    pub ban_seconds: u64,
    /// The longest ban in seconds.
    pub max_ban_seconds: u64,
    /// Networks never delayed or banned (the mail server's own programs).
    #[serde(deserialize_with = "string_list::deserialize")]
    pub trusted_networks: Vec<String>,
}

impl Default for Guard {
    fn default() -> Self {
        Guard {
            window_seconds: 600,
            ban_after: 15,
            delay_after: 3,
            max_delay_ms: 2000,
            ban_seconds: 1800,
            max_ban_seconds: 86_400,
            trusted_networks: vec!["127.0.0.0/8".into(), "::1/128".into()],
        }
    }
}

/// Login decisions.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Auth {
    /// Separator of master logins, `mailbox*master` (Dovecot's `auth_master_user_separator`).
    pub master_separator: String,
    /// Seconds a verified login is remembered (changes to the account end it at once anyway).
    pub cache_ttl_seconds: u64,
    /// Administrators (any mailbox) and domain administrators with `login_as` (their domains) may log in as
    /// master users, `mailbox*admin`, with their own passwords.
    pub admins_as_masters: bool,
    /// While the database is unreachable, a login the database confirmed within this many seconds is still
    /// allowed from memory; 0 turns that off.
    pub outage_grace_seconds: u64,
}

impl Default for Auth {
    fn default() -> Self {
        Auth {
            master_separator: "*".into(),
            cache_ttl_seconds: 300,
            admins_as_masters: false,
            outage_grace_seconds: 300,
        }
    }
}

/// Who may call the internal endpoints (Dovecot, nginx, the guard and stats): callers presenting the shared
/// secret (header `X-Gatehouse-Secret`), or calling from one of the allowed networks.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Dovecot {
    /// The shared secret; unset means the one derived from the secret key (what `gatehouse config dovecot`,
    /// `config nginx` and `config secret` print).
    pub shared_secret: Option<Secret>,
    /// Source networks allowed without the secret (CIDR, comma-separated in the environment); none by default.
    #[serde(deserialize_with = "string_list::deserialize")]
    pub allowed_networks: Vec<String>,
    /// The system user owning the mail, for Dovecot's userdb.
    pub mail_uid: String,
    /// Its group.
    pub mail_gid: String,
    /// Every mailbox's home folder, e.g. `/var/vmail/%d/%n`: `%u` (address), `%n` (local part) and `%d`
    /// (domain) are filled in; unset leaves Dovecot's `mail_home`.
    pub mail_home: Option<String>,
    /// The mail location handed to Dovecot (same variables); unset leaves Dovecot's `mail_location`.
    pub mail_location: Option<String>,
    /// doveadm's HTTP API (`http://127.0.0.1:8080/doveadm/v1`): when set, every change that can affect a login
    /// empties Dovecot's auth cache of that mailbox at once (`gatehouse config dovecot --part doveadm`).
    pub doveadm_url: Option<String>,
    /// The API key of doveadm's HTTP API (Dovecot's `doveadm_api_key`); needed with `doveadm_url`.
    pub doveadm_api_key: Option<Secret>,
}

impl Default for Dovecot {
    fn default() -> Self {
        Dovecot {
            shared_secret: None,
            allowed_networks: Vec::new(),
            mail_uid: "vmail".into(),
            mail_gid: "vmail".into(),
            mail_home: None,
            mail_location: None,
            doveadm_url: None,
            doveadm_api_key: None,
        }
    }
}

/// Listener addresses.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Listen {
    /// The public listener: web UI, REST API, SOGo login redirector.
    pub public: SocketAddr,
    /// The internal listener: Dovecot passdb and policy, nginx `auth_request`. Keep it off the internet.
    pub internal: SocketAddr,
    /// A second internal listener, speaking TLS, for scripts that only speak https (mailcow's
    /// `passwd-verify.lua`); off when unset. Same endpoints and callers as the plain internal listener.
    pub internal_tls: Option<SocketAddr>,
    /// PEM certificate chain for `internal_tls`; without it (and the key), a self-signed certificate is made
    /// once and kept beside the secret key file (`internal-tls.crt`, `internal-tls.key`).
    pub internal_tls_cert: Option<String>,
    /// PEM private key for `internal_tls`.
    pub internal_tls_key: Option<String>,
    /// Dovecot's auth protocol for Postfix (`smtpd_sasl_type = dovecot`): `host:port` or `unix:/path`;
    /// off when unset.
    pub sasl: Option<String>,
}

/// Web UI settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Web {
    /// Whether admins and domain admins with the `login_as` permission may open a mailbox's webmail without
    /// its password. Also read from mailcow's `ALLOW_ADMIN_EMAIL_LOGIN` (y/yes/n/no).
    #[serde(deserialize_with = "yes_no::deserialize")]
    pub allow_admin_email_login: bool,
    /// The address users reach Gatehouse and webmail at (`https://mail.example.org`). With `https`, cookies
    /// are marked Secure; it is also the origin form posts must come from.
    pub public_url: Option<String>,
    /// Reverse proxies (nginx) whose `X-Real-IP` / `X-Forwarded-For` names the client; other peers are the
    /// client themselves.
    pub trusted_proxies: Vec<String>,
    /// Minutes of inactivity after which a web session ends.
    pub session_idle_minutes: u64,
    /// Hours after which a web session ends regardless of activity.
    pub session_max_hours: u64,
    /// Where webmail (SOGo) starts, on the same host.
    pub webmail_path: String,
    /// Hide the password form of the mailbox login page behind "Sign in with a password" (`/?local=1`), for
    /// sites whose users sign in at an identity provider.
    pub hide_local_login: bool,
    /// Send mailbox users who open the login page straight to this identity provider's sign-in; `/?local=1`
    /// still shows the page.
    pub sign_in_provider: Option<String>,
}

impl Default for Web {
    fn default() -> Self {
        Web {
            allow_admin_email_login: false,
            public_url: None,
            trusted_proxies: vec!["127.0.0.1/32".into(), "::1/128".into()],
            session_idle_minutes: 30,
            session_max_hours: 12,
            webmail_path: "/SOGo/so/".into(),
            hide_local_login: false,
            sign_in_provider: None,
        }
    }
}

/// How new passwords are hashed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Passwords {
    /// Scheme for new hashes, as `doveadm pw -s` names it (`BLF-CRYPT`, `ARGON2ID`, `SHA512-CRYPT`, …).
    pub scheme: String,
    /// Cost or rounds for the scheme (bcrypt cost, SHA-crypt rounds); the scheme's default when unset.
    pub rounds: Option<u32>,
    /// Hashing threads; 0 means one per CPU.
    pub hash_workers: usize,
    /// Hash jobs that may wait beyond the running ones before logins get "temporary failure".
    pub hash_queue_limit: usize,
    /// MiB that memory-hard hashes (Argon2) may use at once.
    pub hash_memory_budget_mib: u32,
    /// Fewest characters of a new password (every entry point).
    pub min_length: usize,
}

impl Default for Passwords {
    fn default() -> Self {
        Passwords {
            scheme: "BLF-CRYPT".to_string(),
            rounds: None,
            hash_workers: 0,
            hash_queue_limit: 256,
            hash_memory_budget_mib: 256,
            min_length: 8,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            database_url: DatabaseUrl::default(),
            log: "info".to_string(),
            log_format: LogFormat::Text,
            secret_key_file: None,
            admin_password: None,
            listen: Listen::default(),
            web: Web::default(),
            passwords: Passwords::default(),
            auth: Auth::default(),
            dovecot: Dovecot::default(),
            guard: Guard::default(),
            sync: Sync::default(),
            limits: Limits::default(),
            sogo: Sogo::default(),
        }
    }
}

impl Default for Listen {
    fn default() -> Self {
        Listen {
            public: SocketAddr::from(([127, 0, 0, 1], 8080)),
            internal: SocketAddr::from(([127, 0, 0, 1], 8081)),
            internal_tls: None,
            internal_tls_cert: None,
            internal_tls_key: None,
            sasl: None,
        }
    }
}

/// A loaded configuration and the warnings found while loading it (to be logged once logging is set up).
#[derive(Debug)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// The file that was read, if any.
    pub file: Option<PathBuf>,
    /// Human-readable warnings (unknown environment variables, …).
    pub warnings: Vec<String>,
}

/// A configuration error, with the key or file it concerns in the message.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

impl Config {
    /// Loads the configuration from `file` (or the default file if present) and the process environment.
    pub fn load(file: Option<&Path>) -> Result<Loaded, ConfigError> {
        Self::load_from(file, std::env::vars().collect())
    }

    /// Loads the configuration from `file` and the given environment (used by tests).
    pub fn load_from(file: Option<&Path>, env: Vec<(String, String)>) -> Result<Loaded, ConfigError> {
        let known = known_keys();
        let mut figment = Figment::from(Serialized::defaults(Config::default()));

        let file = match file {
            Some(path) if !path.exists() => {
                return Err(ConfigError(format!("the file {} does not exist", path.display())));
            }
            Some(path) => Some(path.to_path_buf()),
            None => Some(PathBuf::from(DEFAULT_CONFIG_FILE)).filter(|path| path.exists()),
        };
        if let Some(path) = &file {
            figment = figment.merge(Toml::file_exact(path));
        }

        if let Some((_, value)) = env.iter().find(|(name, _)| name == "ALLOW_ADMIN_EMAIL_LOGIN") {
            figment = figment.merge(("web.allow_admin_email_login", value.clone()));
        }

        let mut warnings = Vec::new();
        let mut from_files = Vec::new();
        for (name, value) in &env {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else { continue };
            if ENV_NOT_KEYS.contains(&name.as_str()) {
                continue;
            }
            let key = rest.to_ascii_lowercase().replace("__", ".");
            if known.contains(&key) {
                continue;
            }
            match key.strip_suffix("_file").filter(|base| known.contains(*base)) {
                Some(base) => {
                    let contents = std::fs::read_to_string(value)
                        .map_err(|err| ConfigError(format!("{name}: cannot read the file {value}: {err}")))?;
                    from_files.push((base.to_string(), contents.trim_end_matches(['\r', '\n']).to_string()));
                }
                None => warnings.push(format!("ignoring the unknown environment variable {name}")),
            }
        }

        for (name, value) in &env {
            if let Some(rest) = name.strip_prefix(ENV_PREFIX) {
                let key = rest.to_ascii_lowercase().replace("__", ".");
                if known.contains(&key) {
                    figment = figment.merge((key, parse_env_value(value)));
                }
            }
        }
        for (key, value) in from_files {
            figment = figment.merge((key, value));
        }

        let config: Config = figment.extract().map_err(|err| ConfigError(describe(err)))?;
        Ok(Loaded { config, file, warnings })
    }
}

/// Environment values are strings; booleans and numbers are recognised the way figment's `Env` does.
fn parse_env_value(value: &str) -> figment::value::Value {
    value.parse::<figment::value::Value>().unwrap_or_else(|_| figment::value::Value::from(value.to_string()))
}

fn describe(err: figment::Error) -> String {
    err.into_iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; ")
}

/// Every configuration key, as a dotted lowercase path (`listen.public`).
pub fn known_keys() -> BTreeSet<String> {
    fn walk(prefix: &str, value: &serde_json::Value, out: &mut BTreeSet<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, inner) in map {
                    let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
                    walk(&path, inner, out);
                }
            }
            _ => {
                out.insert(prefix.to_string());
            }
        }
    }
    let mut keys = BTreeSet::new();
    let defaults = serde_json::to_value(Config::default()).expect("the default configuration serialises");
    walk("", &defaults, &mut keys);
    keys
}

/// Accepts a boolean, or mailcow's `y`/`yes`/`n`/`no` (any case), or `true`/`false`/`1`/`0` as text.
mod yes_no {
    use serde::{Deserialize, Deserializer, de::Error};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Bool(bool),
        Int(i64),
        Text(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
        match Raw::deserialize(deserializer)? {
            Raw::Bool(value) => Ok(value),
            Raw::Int(1) => Ok(true),
            Raw::Int(0) => Ok(false),
            Raw::Int(other) => Err(D::Error::custom(format!("expected y/yes/n/no, found {other}"))),
            Raw::Text(text) => match text.trim().to_ascii_lowercase().as_str() {
                "y" | "yes" | "true" | "1" | "on" => Ok(true),
                "n" | "no" | "false" | "0" | "off" | "" => Ok(false),
                other => Err(D::Error::custom(format!("expected y/yes/n/no, found '{other}'"))),
            },
        }
    }
}

/// Accepts a list, or one string of comma-separated items (as environment variables give it).
mod string_list {
    use serde::{Deserialize, Deserializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        List(Vec<String>),
        Text(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
        Ok(match Raw::deserialize(deserializer)? {
            Raw::List(items) => items,
            Raw::Text(text) => text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect(),
        })
    }
}

#[cfg(test)]
mod tests;
