//! Gatehouse's store: every table behind one interface, on SQLite (embedded default), PostgreSQL or
//! MariaDB/MySQL, chosen at runtime by the database URL.
//!
//! Each public operation is one transaction: it either applies completely (with its audit-log entry) or not
//! at all. Rules that protect the data (domain limits, quotas, uniqueness, references) are enforced here, in
//! one place, with errors that say what was refused and why. Database failures become
//! [`Error::Unavailable`] (a server fault), never a client fault.
//!
//! Modules: [`entity`] (tables), `migration` (schema versions), and one module per area: domains,
//! templates, mailboxes, admins, master users, identity providers, logs, jobs (leases).

pub mod entity;
mod migration;

mod admins;
mod api_keys;
mod app_links;
mod app_passwords;
mod db_error;
mod domains;
mod identity_providers;
mod jobs;
mod login;
mod logs;
mod mailboxes;
mod master_users;
mod records;
mod templates;
mod totp;
mod web_sessions;

use std::sync::Arc;
use std::time::Duration;

use gatehouse_core::{DatabaseKind, DatabaseUrl, Error, Result};
use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, SqliteTransactionMode, TransactionOptions,
    TransactionTrait,
};
use sea_orm_migration::MigratorTrait;

pub use api_keys::{API_KEY_PREFIX, ApiKey, ApiKeyAccess, NewApiKey};
pub use app_links::{AppLink, AppLinkChanges, NewAppLink};
pub use app_passwords::{AppPassword, NewAppPassword};
pub use records::*;
pub use totp::{TotpPrincipal, TotpState};
pub use web_sessions::{ADMIN_SESSIONS, DOMAIN_ADMIN_SESSIONS, SsoTokenRow, USER_SESSIONS, WebSessionRow};

use db_error::db_err;

/// The store. Cheap to clone; all clones share one connection pool.
#[derive(Clone, Debug)]
pub struct Store {
    db: DatabaseConnection,
    url: DatabaseUrl,
    kind: DatabaseKind,
    /// Serialises write transactions on SQLite, which has no row locks: without it two concurrent
    /// transactions that read, then write, would fail with "database is locked" instead of one waiting.
    sqlite_writer: Arc<tokio::sync::Mutex<()>>,
}

/// Held for the length of a write transaction; on SQLite it keeps other writers of this process waiting.
pub(crate) type WriterGuard = Option<tokio::sync::OwnedMutexGuard<()>>;

impl Store {
    /// Connects, creates the SQLite file and its folder if needed, and applies pending migrations.
    pub async fn open(url: &DatabaseUrl) -> Result<Store> {
        let kind = url.kind().map_err(Error::Invalid)?;
        let mut connect_url = url.expose().to_string();
        if kind == DatabaseKind::Sqlite {
            if let Some(path) = url.sqlite_path()
                && let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
            {
                std::fs::create_dir_all(parent).map_err(|err| {
                    Error::Unavailable(format!("cannot create the database folder {}: {err}", parent.display()))
                })?;
            }
            if !connect_url.contains("mode=") {
                connect_url.push_str(if connect_url.contains('?') { "&mode=rwc" } else { "?mode=rwc" });
            }
        }
        let mut options = ConnectOptions::new(connect_url);
        options
            .max_connections(if kind == DatabaseKind::Sqlite { 4 } else { 16 })
            .min_connections(1)
            .connect_timeout(Duration::from_secs(5))
            .acquire_timeout(Duration::from_secs(5))
            .sqlx_logging(false);
        if kind == DatabaseKind::Sqlite && url.sqlite_path().is_some() {
            // WAL lets readers run beside the writer; with WAL, `synchronous = NORMAL` is crash-safe (a power
            // loss may drop the last commits, never corrupt the file) and avoids an fsync per login record.
            options.map_sqlx_sqlite_opts(|opts| {
                opts.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(5))
            });
        }
        let db = Database::connect(options)
            .await
            .map_err(|err| Error::Unavailable(format!("cannot connect to the database {url}: {err}")))?;
        let pending = migration::Migrator::get_pending_migrations(&db).await.map_err(db_err)?;
        for migration in &pending {
            tracing::info!(migration = migration.name(), "applying database migration");
        }
        migration::Migrator::up(&db, None).await.map_err(|err| match db_err(err) {
            Error::Unavailable(detail) => Error::Unavailable(format!("database migration failed: {detail}")),
            other => Error::Internal(format!("database migration failed: {other}")),
        })?;
        Ok(Store { db, url: url.clone(), kind, sqlite_writer: Arc::new(tokio::sync::Mutex::new(())) })
    }

    /// The database URL (its `Display` masks the password).
    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// Which SQL engine this store runs on.
    pub fn kind(&self) -> DatabaseKind {
        self.kind
    }

    /// Checks that the database answers (used by `/healthz`).
    pub async fn ping(&self) -> Result<()> {
        self.db.ping().await.map_err(|err| Error::Unavailable(format!("database unreachable: {}", db_err(err))))
    }

    /// Names of the migrations applied to this database, oldest first.
    pub async fn applied_migrations(&self) -> Result<Vec<String>> {
        let applied = migration::Migrator::get_applied_migrations(&self.db).await.map_err(db_err)?;
        Ok(applied.into_iter().map(|m| m.name().to_string()).collect())
    }

    /// Closes the connection pool.
    pub async fn close(self) {
        let _ = self.db.close().await;
    }

    /// Starts a write transaction. Keep the guard alive until the transaction ends.
    async fn begin(&self) -> Result<(WriterGuard, DatabaseTransaction)> {
        let writer = match self.kind {
            DatabaseKind::Sqlite => Some(self.sqlite_writer.clone().lock_owned().await),
            _ => None,
        };
        // On SQLite the transaction takes the database's write lock at BEGIN (IMMEDIATE): a deferred one that
        // read first and then wrote would fail with SQLITE_BUSY_SNAPSHOT whenever another connection (the auth
        // log writer, a job lease, a second process) committed in between, instead of waiting its turn.
        let options = TransactionOptions {
            sqlite_transaction_mode: (self.kind == DatabaseKind::Sqlite).then_some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        };
        let txn = self.db.begin_with_options(options).await.map_err(db_err)?;
        Ok((writer, txn))
    }

    /// Whether row locks (`SELECT … FOR UPDATE`) are available; SQLite serialises writers instead.
    fn supports_row_locks(&self) -> bool {
        self.kind != DatabaseKind::Sqlite
    }
}

/// The current time as Unix seconds.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

async fn commit(txn: DatabaseTransaction) -> Result<()> {
    txn.commit().await.map_err(db_err)
}
