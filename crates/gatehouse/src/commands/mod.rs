//! One module per command group. Each command opens the store, does one store operation (one transaction)
//! and prints the result.

pub mod admins;
pub mod domains;
pub mod logs;
pub mod mailboxes;
pub mod serve;
pub mod templates;

use anyhow::Context;
use gatehouse_config::Config;
use gatehouse_passwords::GenerateScheme;
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

    /// Reads a new password and hashes it off the async runtime's worker threads.
    pub async fn new_password_hash(&self, from_stdin: bool, what: &str) -> anyhow::Result<String> {
        let password = read_new_password(from_stdin, what)?;
        self.hash(password).await
    }

    /// Hashes a password with the configured scheme on a blocking thread.
    pub async fn hash(&self, password: Zeroizing<String>) -> anyhow::Result<String> {
        let scheme = self.password_scheme()?;
        let hash = tokio::task::spawn_blocking(move || gatehouse_passwords::generate(password.as_bytes(), &scheme))
            .await
            .context("hashing task")??;
        Ok(hash)
    }
}

/// Parses a comma list of domains.
pub fn domain_names(names: &[String]) -> anyhow::Result<Vec<gatehouse_core::DomainName>> {
    names.iter().filter(|n| !n.trim().is_empty()).map(|n| Ok(gatehouse_core::DomainName::parse(n)?)).collect()
}
