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

mod activity;
mod actor;
mod admins;
mod api_keys;
mod app_links;
mod app_passwords;
mod changes;
mod db_error;
mod domains;
mod identity_providers;
mod jobs;
mod listing;
mod login;
mod logs;
mod mailboxes;
mod master_users;
mod oidc_sign_ins;
mod passkeys;
mod scim_tokens;
mod scim_users;
mod scoped;
pub mod sealing;
mod templates;
mod tokens;
mod totp;
mod userdb;
mod web_sessions;

pub(crate) use gatehouse_core::clock::now;
use std::sync::Arc;
use std::time::Duration;

use gatehouse_core::{DatabaseKind, DatabaseUrl, Error, Result};
use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, SqliteTransactionMode, TransactionOptions,
    TransactionTrait,
};
use sea_orm_migration::MigratorTrait;

pub use activity::{ActivityCount, FailureCount, FailureKey};
pub use actor::{Actor, ActorRole};
pub use admins::{
    AdminAccount, AdminChanges, DOMAIN_ADMIN_PERMISSIONS, DomainAdminChanges, NewDomainAdmin, ProviderAdmin,
};
pub use api_keys::{API_KEY_PREFIX, ApiKey, ApiKeyAccess, NewApiKey};
pub use app_links::{AppLink, AppLinkChanges, NewAppLink};
pub use app_passwords::{AppPassword, NewAppPassword};
pub use changes::{FeedEntry, LoginChange};
pub use domains::{Domain, DomainChanges, DomainOrder, DomainSearch, NewDomain};
pub use gatehouse_core::AdminRole;
pub use identity_providers::{
    AttributeMapping, IdentityProvider, IdentityProviderChanges, IdentityProviderKind, NewIdentityProvider,
};
pub use jobs::JobRun;
pub use listing::{MAX_PAGE_SIZE, Page, Window};
pub use logs::{AuditEntry, AuthLogEntry, AuthResult, LOG_COUNT_CAP, LogFilter, NewAuthLogEntry};
pub use mailboxes::{
    DEPROVISIONED_BY, LOCAL_AUTH_SOURCE, Mailbox, MailboxChanges, MailboxOrder, MailboxSearch, NewMailbox,
    SCIM_ATTRIBUTE, TEMPLATE_HASH, public_attributes,
};
pub use master_users::{MasterScope, MasterUser, NewMasterScope, NewMasterUser};
pub use oidc_sign_ins::{NewSignIn, PendingSignIn};
pub use passkeys::{MAX_PASSKEYS, NewPasskey, Passkey, PasskeyOwner};
pub use scim_tokens::{NewScimToken, SCIM_TOKEN_PREFIX, ScimToken};
pub use scim_users::{ScimSelect, ScimUser};
pub use scoped::{Access, Principal, ScopedStore};
pub use sealing::{KeyFile, SecretKey};
pub use templates::{NewTemplate, Template, TemplateChanges};
pub use totp::{TotpPrincipal, TotpState};
pub use userdb::{DeliverableMailbox, WebmailUser};
pub use web_sessions::{
    ADMIN_SESSIONS, DOMAIN_ADMIN_SESSIONS, SsoTokenRow, USER_SESSIONS, WebSessionRow, WebmailOpening,
};

use db_error::db_err;

/// The store. Cheap to clone (a pointer): all clones share one connection pool and everything else.
#[derive(Clone, Debug)]
pub struct Store(Arc<StoreInner>);

impl std::ops::Deref for Store {
    type Target = StoreInner;

    fn deref(&self) -> &StoreInner {
        &self.0
    }
}

/// What every clone of a [`Store`] shares.
#[derive(Debug)]
pub struct StoreInner {
    db: DatabaseConnection,
    url: DatabaseUrl,
    kind: DatabaseKind,
    /// Serialises write transactions on SQLite, which has no row locks: without it two concurrent
    /// transactions that read, then write, would fail with "database is locked" instead of one waiting.
    sqlite_writer: Arc<tokio::sync::Mutex<()>>,
    /// Seals identity-provider secrets at rest.
    secret_key: SecretKey,
    /// Announces committed changes that affect logins to this process.
    announcer: changes::Announcer,
}

/// How [`Store::open_with`] opens a database.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Create the database when it does not exist yet (the SQLite file and its folder, or the schema of an
    /// empty server database). Without it, a missing database is [`Error::NotFound`] naming what was looked for.
    pub create: bool,
    /// The key that seals secrets at rest.
    pub secret_key: SecretKey,
}

/// Held for the length of a write transaction; on SQLite it keeps other writers of this process waiting.
pub(crate) type WriterGuard = Option<tokio::sync::OwnedMutexGuard<()>>;

/// Which migrations a database has, read without changing it ([`Store::inspect_schema`]).
#[derive(Debug, Clone, Default)]
pub struct SchemaState {
    /// Applied migrations this build knows, oldest first.
    pub applied: Vec<String>,
    /// Migrations this build applies at its next start, in order.
    pub pending: Vec<String>,
    /// Applied migrations this build does not know: a newer Gatehouse upgraded the database, and this build
    /// refuses it.
    pub unknown: Vec<String>,
}

impl Store {
    /// Reads which migrations the database at `url` has, changing nothing (SQLite is opened read-only). A
    /// database, or a schema, that does not exist is [`Error::NotFound`].
    pub async fn inspect_schema(url: &DatabaseUrl) -> Result<SchemaState> {
        use sea_orm::ConnectionTrait;
        let kind = url.kind().map_err(Error::Invalid)?;
        let mut connect_url = url.expose().to_string();
        if kind == DatabaseKind::Sqlite {
            if let Some(path) = url.sqlite_path()
                && !path.exists()
            {
                return Err(Error::not_found("database", absolute(&path).display().to_string()));
            }
            if !connect_url.contains("mode=") {
                connect_url.push_str(if connect_url.contains('?') { "&mode=ro" } else { "?mode=ro" });
            }
        }
        let mut connect = ConnectOptions::new(connect_url);
        connect
            .max_connections(1)
            .connect_timeout(Duration::from_secs(5))
            .acquire_timeout(Duration::from_secs(5))
            .sqlx_logging(false);
        let db = Database::connect(connect)
            .await
            .map_err(|err| Error::Unavailable(format!("cannot connect to the database {url}: {err}")))?;
        let state = async {
            if !migration::schema_exists(&db).await? {
                return Err(Error::NotFound { kind: "Gatehouse schema in the database", name: url.to_string() });
            }
            let backend = db.get_database_backend();
            let rows = db
                .query_all_raw(sea_orm::Statement::from_string(
                    backend,
                    "SELECT version FROM seaql_migrations ORDER BY version",
                ))
                .await
                .map_err(db_err)?;
            let applied: Vec<String> = rows
                .iter()
                .map(|row| row.try_get::<String>("", "version"))
                .collect::<std::result::Result<_, _>>()
                .map_err(db_err)?;
            let known: Vec<String> = migration::Migrator::migrations().iter().map(|m| m.name().to_string()).collect();
            Ok(SchemaState {
                applied: applied.iter().filter(|name| known.contains(name)).cloned().collect(),
                pending: known.iter().filter(|name| !applied.contains(name)).cloned().collect(),
                unknown: applied.iter().filter(|name| !known.contains(name)).cloned().collect(),
            })
        }
        .await;
        let _ = db.close().await;
        state
    }

    /// Connects, creates the database if needed, and applies pending migrations, with a key that lives only in
    /// this process (for tests and tools that never share sealed secrets with another process).
    pub async fn open(url: &DatabaseUrl) -> Result<Store> {
        Self::open_with(url, OpenOptions { create: true, secret_key: SecretKey::ephemeral() }).await
    }

    /// Connects and applies pending migrations. A new SQLite database and its folder are created readable by
    /// their owner only (0600 / 0700): they hold password hashes and TOTP keys.
    pub async fn open_with(url: &DatabaseUrl, options: OpenOptions) -> Result<Store> {
        let kind = url.kind().map_err(Error::Invalid)?;
        let mut connect_url = url.expose().to_string();
        if kind == DatabaseKind::Sqlite {
            if let Some(path) = url.sqlite_path()
                && !path.exists()
            {
                if !options.create {
                    return Err(Error::not_found("database", absolute(&path).display().to_string()));
                }
                create_private_file(&path)?;
            }
            if !connect_url.contains("mode=") {
                connect_url.push_str(if connect_url.contains('?') { "&mode=rwc" } else { "?mode=rwc" });
            }
        }
        let mut connect = ConnectOptions::new(connect_url);
        connect
            .max_connections(if kind == DatabaseKind::Sqlite { 4 } else { 16 })
            .min_connections(1)
            .connect_timeout(Duration::from_secs(5))
            .acquire_timeout(Duration::from_secs(5))
            .sqlx_logging(false);
        if kind == DatabaseKind::Sqlite && url.sqlite_path().is_some() {
            // WAL lets readers run beside the writer; with WAL, `synchronous = NORMAL` is crash-safe (a power
            // loss may drop the last commits, never corrupt the file) and avoids an fsync per login record.
            connect.map_sqlx_sqlite_opts(|opts| {
                opts.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(5))
            });
        }
        let db = Database::connect(connect)
            .await
            .map_err(|err| Error::Unavailable(format!("cannot connect to the database {url}: {err}")))?;
        if !options.create && !migration::schema_exists(&db).await? {
            let _ = db.close().await;
            let what = match url.sqlite_path() {
                Some(path) => absolute(&path).display().to_string(),
                None => url.to_string(),
            };
            return Err(Error::NotFound { kind: "Gatehouse schema in the database", name: what });
        }
        let pending = migration::Migrator::get_pending_migrations(&db).await.map_err(db_err)?;
        for migration in &pending {
            tracing::info!(migration = migration.name(), "applying database migration");
        }
        migration::Migrator::up(&db, None).await.map_err(|err| match db_err(err) {
            Error::Unavailable(detail) => Error::Unavailable(format!("database migration failed: {detail}")),
            other => Error::Internal(format!("database migration failed: {other}")),
        })?;
        Ok(Store(Arc::new(StoreInner {
            db,
            url: url.clone(),
            kind,
            sqlite_writer: Arc::new(tokio::sync::Mutex::new(())),
            secret_key: options.secret_key,
            announcer: changes::Announcer::default(),
        })))
    }

    /// Warnings about database files other users can read (SQLite only): the file, its WAL and shared-memory
    /// files, and their folder.
    pub fn permission_warnings(&self) -> Vec<String> {
        let Some(path) = self.url.sqlite_path() else { return Vec::new() };
        let mut paths = vec![path.clone()];
        for suffix in ["-wal", "-shm"] {
            let mut name = path.clone().into_os_string();
            name.push(suffix);
            paths.push(name.into());
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            paths.push(parent.to_path_buf());
        }
        paths.iter().filter_map(|p| sealing::looser_than_private(p)).collect()
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

    /// Closes the connection pool (for every clone).
    pub async fn close(self) {
        let _ = self.db.close_by_ref().await;
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

/// `path` made absolute against the working directory (for messages that must say which file was meant).
fn absolute(path: &std::path::Path) -> std::path::PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Creates an empty SQLite database file readable by its owner only, in a folder only its owner can enter (a
/// folder that exists already keeps its mode). SQLite gives its WAL and shared-memory files the same mode.
fn create_private_file(path: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        sealing::create_private_dir(parent)?;
    }
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(_) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(Error::Unavailable(format!("cannot create the database file {}: {err}", path.display()))),
    }
}

async fn commit(txn: DatabaseTransaction) -> Result<()> {
    txn.commit().await.map_err(db_err)
}
