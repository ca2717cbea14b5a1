//! One module per command group. Each command opens the store, does one store operation (one transaction)
//! and prints the result.

pub mod admins;
pub mod api_keys;
pub mod app_passwords;
pub mod auth;
pub mod config;
pub mod doctor;
pub mod domains;
pub mod guard;
pub mod idp;
pub mod import;
pub mod logs;
pub mod mailboxes;
pub mod passkeys;
pub mod pw;
pub mod scim_tokens;
pub mod serve;
pub mod sync;
pub mod templates;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use gatehouse_config::Config;
use gatehouse_core::Secret;

use gatehouse_engine::{Engine, EngineConfig, GuardConfig};
use gatehouse_passwords::{GenerateScheme, HashPool, HashPoolConfig};
use gatehouse_server::{AuthService, CallerPolicy};
use gatehouse_sources::SourceRegistry;
use gatehouse_store::{KeyFile, SecretKey, Store};
use zeroize::Zeroizing;

use crate::password_input::read_new_password;

/// What every command needs.
pub struct CommandContext {
    /// The loaded configuration.
    pub config: Config,
}

/// What the shared secret of the internal endpoints is derived for (see [`CommandContext::internal_secret`]).
const INTERNAL_SECRET_PURPOSE: &str = "gatehouse internal endpoints v1";

/// A problem with the configuration or the files it names (exit code 78).
#[derive(Debug)]
pub struct ConfigProblem(pub String);

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigProblem {}

impl CommandContext {
    /// Opens the existing store (applying pending migrations). A database that does not exist yet is not
    /// created: the error names the one looked for and how to create it.
    pub async fn store(&self) -> anyhow::Result<Store> {
        // Without the key file the database may well be missing too; that is then what the operator needs to hear.
        let (key, missing_key) = match self.secret_key() {
            Ok(key) => (key, None),
            Err(err) => (SecretKey::ephemeral(), Some(err)),
        };
        let options = gatehouse_store::OpenOptions { create: false, secret_key: key };
        match Store::open_with(&self.config.database_url, options).await {
            Ok(store) => match missing_key {
                None => Ok(store),
                Some(err) => {
                    store.close().await;
                    Err(err)
                }
            },
            Err(gatehouse_core::Error::NotFound { kind, name }) => Err(ConfigProblem(format!(
                "no {} at {name} (database_url = {}): create it with `gatehouse init` (or start `gatehouse serve`) \
                 in the folder it is meant to live in, or point --database-url, GATEHOUSE_DATABASE_URL or --config at \
                 the existing one",
                if kind == "database" { "Gatehouse database" } else { kind },
                self.config.database_url
            ))
            .into()),
            Err(err) => Err(err.into()),
        }
    }

    /// Opens the store, creating the database and the secret key file when they do not exist yet (`serve` and
    /// `init`), seals secrets an older Gatehouse stored in plain text, and warns about files other users can
    /// read.
    pub async fn create_store(&self) -> anyhow::Result<Store> {
        let path = self.secret_key_path();
        let (key, how) = SecretKey::load_or_create(&path).map_err(|err| self.key_problem(err))?;
        if how == KeyFile::Created {
            tracing::info!(file = %path.display(), "created the secret key file; back it up apart from the database");
        }
        if let Some(warning) = gatehouse_store::sealing::looser_than_private(&path) {
            tracing::warn!("{warning}");
        }
        let options = gatehouse_store::OpenOptions { create: true, secret_key: key };
        let store = Store::open_with(&self.config.database_url, options).await?;
        for warning in store.permission_warnings() {
            tracing::warn!("{warning}");
        }
        let sealed = store.seal_stored_secrets().await?;
        if sealed > 0 {
            tracing::info!(sealed, "sealed identity-provider secrets that were stored in plain text");
        }
        Ok(store)
    }

    /// Where the secret key file is: `secret_key_file`, else `gatehouse.key` beside the SQLite database, else
    /// `./data/gatehouse.key`.
    pub fn secret_key_path(&self) -> PathBuf {
        if let Some(path) = self.config.secret_key_file.as_deref().filter(|p| !p.trim().is_empty()) {
            return PathBuf::from(path);
        }
        let folder = self
            .config
            .database_url
            .sqlite_path()
            .and_then(|db| db.parent().map(std::path::Path::to_path_buf))
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("./data"));
        folder.join("gatehouse.key")
    }

    /// The secret key; a missing key file is not created.
    pub fn secret_key(&self) -> anyhow::Result<SecretKey> {
        SecretKey::load(&self.secret_key_path()).map_err(|err| self.key_problem(err))
    }

    fn key_problem(&self, err: gatehouse_core::Error) -> anyhow::Error {
        let path = self.secret_key_path();
        let path = std::path::absolute(&path).unwrap_or(path);
        match err {
            gatehouse_core::Error::NotFound { .. } => ConfigProblem(format!(
                "no secret key file at {}: `gatehouse init` (or the first `gatehouse serve`) creates it; set \
                 secret_key_file (GATEHOUSE_SECRET_KEY_FILE) if it lives elsewhere",
                path.display()
            ))
            .into(),
            gatehouse_core::Error::Invalid(why) => ConfigProblem(why).into(),
            other => other.into(),
        }
    }

    /// The shared secret of the internal endpoints: `dovecot.shared_secret`, else one derived from the secret key
    /// (the same for every process that shares the key file).
    pub fn internal_secret(&self) -> anyhow::Result<Secret> {
        match self.config.dovecot.shared_secret.clone().filter(|s| !s.is_empty()) {
            Some(secret) => Ok(secret),
            None => Ok(self.secret_key()?.derive(INTERNAL_SECRET_PURPOSE)),
        }
    }

    /// The scheme new password hashes are made with.
    pub fn password_scheme(&self) -> anyhow::Result<GenerateScheme> {
        let passwords = &self.config.passwords;
        GenerateScheme::from_name(&passwords.scheme, passwords.rounds)
            .with_context(|| format!("configuration passwords.scheme = {:?}", passwords.scheme))
    }

    /// The hash pool: every hash is computed on its threads, never on the async runtime's. `workers`
    /// overrides the configured thread count (commands need only one).
    pub fn hash_pool(&self, workers: Option<usize>) -> anyhow::Result<HashPool> {
        let passwords = &self.config.passwords;
        let defaults = HashPoolConfig::default();
        let config = HashPoolConfig {
            workers: workers.unwrap_or(if passwords.hash_workers == 0 {
                defaults.workers
            } else {
                passwords.hash_workers
            }),
            queue_limit: passwords.hash_queue_limit,
            memory_budget_kib: passwords.hash_memory_budget_mib.saturating_mul(1024),
            default_scheme: self.password_scheme()?,
            queue_wait_observer: None,
        };
        HashPool::new(config).context("starting the hashing threads")
    }

    /// The login engine over `store`, with logging.
    pub fn auth_service(&self, store: &Store, pool: &HashPool) -> anyhow::Result<std::sync::Arc<AuthService>> {
        let auth = &self.config.auth;
        anyhow::ensure!(!auth.master_separator.is_empty(), "auth.master_separator must not be empty");
        let guard = &self.config.guard;
        let config = EngineConfig {
            master_separator: auth.master_separator.clone(),
            password_scheme: self.password_scheme()?,
            cache_ttl: std::time::Duration::from_secs(auth.cache_ttl_seconds),
            admins_as_masters: auth.admins_as_masters,
            admins_open_webmail: self.config.web.allow_admin_email_login,
            outage_grace: Duration::from_secs(auth.outage_grace_seconds),
            guard: GuardConfig {
                window: Duration::from_secs(guard.window_seconds),
                ban_after: guard.ban_after.max(1),
                delay_after: guard.delay_after,
                max_delay: Duration::from_millis(guard.max_delay_ms),
                ban_time: Duration::from_secs(guard.ban_seconds),
                max_ban_time: Duration::from_secs(guard.max_ban_seconds),
                trusted_networks: networks("guard.trusted_networks", &guard.trusted_networks)?,
                ..GuardConfig::default()
            },
            ..EngineConfig::default()
        };
        let sources = SourceRegistry::new(store.clone()).with_hash_pool(pool.clone());
        let mut engine = Engine::with_sources(store.clone(), sources, pool.clone(), config);
        // Passkeys belong to the site browsers reach: without web.public_url there is no relying party.
        if let Some(url) = self.config.web.public_url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
            match gatehouse_engine::passkey::Passkeys::new(url, "Gatehouse") {
                Ok(passkeys) => engine = engine.with_passkeys(passkeys),
                Err(err) => tracing::warn!("passkeys are off: {err}"),
            }
        }
        Ok(AuthService::new(engine, &auth.master_separator))
    }

    /// The listeners' connection limits. The process's open-file limit is raised to what the system allows, and
    /// limits the file descriptors cannot hold are refused.
    pub fn server_limits(&self) -> anyhow::Result<gatehouse_server::ServerLimits> {
        let limits = &self.config.limits;
        if limits.max_connections == 0 || limits.http_idle_seconds == 0 || limits.sasl_idle_seconds == 0 {
            return Err(ConfigProblem("limits.max_connections and the idle times must be greater than 0".into()).into());
        }
        let files = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
        // Three listeners, and room for the database pool, log files and the directories' connections.
        let needed = 3 * limits.max_connections as u64 + 256;
        if files < needed {
            tracing::warn!(
                open_file_limit = files,
                "the open-file limit is lower than limits.max_connections needs ({needed}); raise it (LimitNOFILE) \
                 or lower limits.max_connections"
            );
        }
        let connection_limits = |idle: u64| gatehouse_server::listener::ConnectionLimits {
            max_connections: limits.max_connections,
            idle_timeout: Duration::from_secs(idle),
        };
        Ok(gatehouse_server::ServerLimits {
            http: connection_limits(limits.http_idle_seconds),
            sasl: connection_limits(limits.sasl_idle_seconds),
            sasl_pending_per_connection: limits.sasl_pending_per_connection.max(1),
        })
    }

    /// Where the internal TLS listener's certificate is: `listen.internal_tls_cert` / `_key`, else the
    /// self-signed pair beside the secret key file.
    pub fn internal_tls_files(&self) -> anyhow::Result<gatehouse_server::tls::CertificateFiles> {
        let listen = &self.config.listen;
        match (listen.internal_tls_cert.as_deref(), listen.internal_tls_key.as_deref()) {
            (Some(cert), Some(key)) => {
                Ok(gatehouse_server::tls::CertificateFiles { cert: cert.into(), key: key.into() })
            }
            (None, None) => {
                let path = self.secret_key_path();
                let folder = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
                Ok(gatehouse_server::tls::CertificateFiles::generated_in(folder))
            }
            _ => Err(ConfigProblem("listen.internal_tls_cert and listen.internal_tls_key go together".into()).into()),
        }
    }

    /// The internal TLS listener's configuration, making the self-signed certificate when none is configured.
    pub fn internal_tls_config(
        &self,
        address: std::net::SocketAddr,
    ) -> anyhow::Result<std::sync::Arc<rustls::ServerConfig>> {
        let files = self.internal_tls_files()?;
        if self.config.listen.internal_tls_cert.is_none() {
            let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
            let reachable = config::reachable(address).ip().to_string();
            if !names.contains(&reachable) {
                names.push(reachable);
            }
            if gatehouse_server::tls::ensure_self_signed(&files, &names)? {
                tracing::info!(certificate = %files.cert.display(), "made a self-signed certificate for the internal TLS listener");
            }
        }
        Ok(gatehouse_server::tls::server_config(&files).map_err(|err| ConfigProblem(err.to_string()))?)
    }

    /// The web UI's settings.
    pub fn web_config(&self) -> anyhow::Result<gatehouse_server::web::WebConfig> {
        let web = &self.config.web;
        let public_url = web
            .public_url
            .as_deref()
            .filter(|u| !u.trim().is_empty())
            .map(|u| url::Url::parse(u).with_context(|| format!("web.public_url '{u}' is not a URL")))
            .transpose()?;
        let secure_cookies = public_url.as_ref().is_some_and(|u| u.scheme() == "https");
        anyhow::ensure!(web.session_idle_minutes > 0 && web.session_max_hours > 0, "web session lifetimes must be > 0");
        anyhow::ensure!(web.webmail_path.starts_with('/'), "web.webmail_path must start with /");
        Ok(gatehouse_server::web::WebConfig {
            allow_admin_email_login: web.allow_admin_email_login,
            public_url,
            trusted_proxies: networks("web.trusted_proxies", &web.trusted_proxies)?,
            sessions: gatehouse_server::web::session::SessionPolicy {
                idle: Duration::from_secs(web.session_idle_minutes * 60),
                max: Duration::from_secs(web.session_max_hours * 3600),
                secure_cookies,
            },
            webmail_path: web.webmail_path.clone(),
            hide_local_login: web.hide_local_login,
            sign_in_provider: web.sign_in_provider.clone().filter(|name| !name.trim().is_empty()),
            password_scheme: self.password_scheme()?,
            password_policy: self.password_policy(),
        })
    }

    /// Who may call the internal endpoints: callers presenting the shared secret, or from the allowed networks.
    pub fn dovecot_callers(&self) -> anyhow::Result<CallerPolicy> {
        let dovecot = &self.config.dovecot;
        let allowed_networks = networks("dovecot.allowed_networks", &dovecot.allowed_networks)?;
        Ok(CallerPolicy { shared_secret: Some(self.internal_secret()?), allowed_networks })
    }

    /// The rule for new passwords.
    pub fn password_policy(&self) -> gatehouse_core::PasswordPolicy {
        gatehouse_core::PasswordPolicy { min_chars: self.config.passwords.min_length, ..Default::default() }
    }

    /// Reads a new password, checks it against the password rule and hashes it with the configured scheme.
    pub async fn new_password_hash(&self, from_stdin: bool, what: &str) -> anyhow::Result<String> {
        let password = read_new_password(from_stdin, what)?;
        self.password_policy().check(&password)?;
        self.hash(&self.hash_pool(Some(1))?, password).await
    }

    /// Hashes a password with the configured scheme on `pool`.
    pub async fn hash(&self, pool: &HashPool, password: Zeroizing<Vec<u8>>) -> anyhow::Result<String> {
        Ok(pool.generate(password, self.password_scheme()?).await?)
    }
}

/// Parses a list of networks (CIDR) or single addresses from the configuration key `key`.
fn networks(key: &str, items: &[String]) -> anyhow::Result<Vec<ipnet::IpNet>> {
    items
        .iter()
        .map(|net| {
            net.parse::<ipnet::IpNet>()
                .or_else(|_| net.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .with_context(|| format!("{key}: '{net}' is not a network (CIDR) or an address"))
        })
        .collect()
}

/// Parses a comma list of domains.
pub fn domain_names(names: &[String]) -> anyhow::Result<Vec<gatehouse_core::DomainName>> {
    names.iter().filter(|n| !n.trim().is_empty()).map(|n| Ok(gatehouse_core::DomainName::parse(n)?)).collect()
}
