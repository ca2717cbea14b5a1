//! One module per command group. Each command opens the store, does one store operation (one transaction)
//! and prints the result.

pub mod admins;
pub mod api_keys;
pub mod app_passwords;
pub mod auth;
pub mod config;
pub mod domains;
pub mod guard;
pub mod idp;
pub mod logs;
pub mod mailboxes;
pub mod pw;
pub mod serve;
pub mod sync;
pub mod templates;

use anyhow::Context;
use gatehouse_config::Config;
use std::time::Duration;

use gatehouse_engine::{Engine, EngineConfig, GuardConfig};
use gatehouse_passwords::{GenerateScheme, HashPool, HashPoolConfig};
use gatehouse_server::{AuthService, CallerPolicy};
use gatehouse_sources::SourceRegistry;
use gatehouse_store::Store;
use zeroize::Zeroizing;

use crate::password_input::read_new_password;

/// What every command needs.
pub struct CommandContext {
    /// The loaded configuration.
    pub config: Config,
}

impl CommandContext {
    /// Opens the store (applying migrations).
    pub async fn store(&self) -> anyhow::Result<Store> {
        Ok(Store::open(&self.config.database_url).await?)
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
        let sources = SourceRegistry::new(store.clone());
        let engine = Engine::with_sources(store.clone(), sources, pool.clone(), config);
        Ok(AuthService::new(engine, &auth.master_separator))
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
            password_scheme: self.password_scheme()?,
        })
    }

    /// Who may call the Dovecot endpoints.
    pub fn dovecot_callers(&self) -> anyhow::Result<CallerPolicy> {
        let dovecot = &self.config.dovecot;
        let allowed_networks = networks("dovecot.allowed_networks", &dovecot.allowed_networks)?;
        Ok(CallerPolicy { shared_secret: dovecot.shared_secret.clone().filter(|s| !s.is_empty()), allowed_networks })
    }

    /// Reads a new password and hashes it with the configured scheme.
    pub async fn new_password_hash(&self, from_stdin: bool, what: &str) -> anyhow::Result<String> {
        let password = read_new_password(from_stdin, what)?;
        self.hash(&self.hash_pool(Some(1))?, password).await
    }

    /// Hashes a password with the configured scheme on `pool`.
    pub async fn hash(&self, pool: &HashPool, password: Zeroizing<String>) -> anyhow::Result<String> {
        let bytes = Zeroizing::new(password.as_bytes().to_vec());
        Ok(pool.generate(bytes, self.password_scheme()?).await?)
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
