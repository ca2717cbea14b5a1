//! SOGo's user list, kept by Gatehouse in SOGo's own database: SOGo reads its users from a table or view in
//! PostgreSQL or MariaDB (never SQLite), and keeps its own data there anyway. With `sogo.users_url` pointing at
//! that database, Gatehouse keeps the table `sogo_users` (`c_uid, c_name, c_password, c_cn, mail`) equal to the
//! mailboxes that may use webmail — at start, after every change this process makes, and every minute (other
//! processes' changes) — so webmail works whatever database Gatehouse itself uses.
//!
//! The password column holds `!`, which no hash equals: SOGo trusts Gatehouse's proxy authentication and its
//! own login form opens nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use gatehouse_core::{Error, Secret};
use gatehouse_store::Store;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, Statement, TransactionTrait};

/// The table SOGo's SQL user source reads.
pub const TABLE: &str = "sogo_users";
/// The longest address or display name the table holds.
const COLUMN_CHARS: usize = 255;

/// What one sync changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncCounts {
    /// Rows added.
    pub added: usize,
    /// Rows whose display name changed.
    pub updated: usize,
    /// Rows removed (the mailbox is gone, inactive or without webmail).
    pub removed: usize,
    /// Rows left as they were.
    pub unchanged: usize,
}

/// The connection to SOGo's database.
pub struct SogoUsers {
    db: DatabaseConnection,
}

/// The URL SOGo itself is given for the table (`SOGoUserSources` … `viewURL`): its scheme is `postgresql` or
/// `mysql`, and the table is the last path segment.
pub fn view_url(users_url: &str) -> String {
    let base = users_url.split('?').next().unwrap_or(users_url).trim_end_matches('/');
    let base = base.strip_prefix("postgres://").map(|rest| format!("postgresql://{rest}")).unwrap_or(base.to_string());
    let base = base.strip_prefix("mariadb://").map(|rest| format!("mysql://{rest}")).unwrap_or(base);
    format!("{base}/{TABLE}")
}

fn unavailable(what: &str, err: impl std::fmt::Display) -> Error {
    Error::Unavailable(format!("SOGo's database: {what}: {err}"))
}

impl SogoUsers {
    /// Connects to SOGo's database (`postgres://…` or `mysql://…`) and creates the table if it is missing.
    pub async fn connect(users_url: &Secret) -> Result<Self, Error> {
        let url = users_url.expose();
        let scheme = url.split_once("://").map(|(scheme, _)| scheme.to_ascii_lowercase()).unwrap_or_default();
        let url = match scheme.as_str() {
            "postgres" | "postgresql" => url.replacen("postgresql://", "postgres://", 1),
            "mysql" | "mariadb" => url.replacen("mariadb://", "mysql://", 1),
            _ => {
                return Err(Error::invalid(
                    "sogo.users_url must name SOGo's PostgreSQL (postgres://…) or MariaDB/MySQL (mysql://…) database",
                ));
            }
        };
        let mut options = ConnectOptions::new(url);
        options
            .max_connections(2)
            .min_connections(0)
            .connect_timeout(Duration::from_secs(5))
            .acquire_timeout(Duration::from_secs(5))
            .sqlx_logging(false);
        let db = Database::connect(options).await.map_err(|err| unavailable("cannot connect", err))?;
        let create = format!(
            "CREATE TABLE IF NOT EXISTS {TABLE} (c_uid VARCHAR({COLUMN_CHARS}) NOT NULL PRIMARY KEY, \
             c_name VARCHAR({COLUMN_CHARS}) NOT NULL, c_password VARCHAR({COLUMN_CHARS}) NOT NULL, \
             c_cn VARCHAR({COLUMN_CHARS}), mail VARCHAR({COLUMN_CHARS}))"
        );
        db.execute_unprepared(&create).await.map_err(|err| unavailable("cannot create the table", err))?;
        Ok(SogoUsers { db })
    }

    /// Makes the table equal to the mailboxes that may use webmail, in one transaction.
    pub async fn sync(&self, store: &Store) -> Result<SyncCounts, Error> {
        let wanted: BTreeMap<String, String> =
            store.webmail_users().await?.into_iter().map(|user| (user.address, user.display_name)).collect();
        let backend = self.db.get_database_backend();
        let txn = self.db.begin().await.map_err(|err| unavailable("cannot begin", err))?;
        let rows = txn
            .query_all_raw(Statement::from_string(backend, format!("SELECT c_uid, c_cn FROM {TABLE}")))
            .await
            .map_err(|err| unavailable("cannot read the table", err))?;
        let mut present = BTreeMap::new();
        for row in rows {
            let uid: String = row.try_get("", "c_uid").map_err(|err| unavailable("reading c_uid", err))?;
            let cn: Option<String> = row.try_get("", "c_cn").map_err(|err| unavailable("reading c_cn", err))?;
            present.insert(uid, cn.unwrap_or_default());
        }
        let mut counts = SyncCounts::default();
        let table = Alias::new(TABLE);
        for (uid, _) in present.iter().filter(|(uid, _)| !wanted.contains_key(*uid)) {
            let delete =
                Query::delete().from_table(table.clone()).and_where(Expr::col(Alias::new("c_uid")).eq(uid)).to_owned();
            txn.execute_raw(backend.build(&delete)).await.map_err(|err| unavailable("cannot remove a row", err))?;
            counts.removed += 1;
        }
        for (uid, cn) in &wanted {
            let cn: String = cn.chars().take(COLUMN_CHARS).collect();
            match present.get(uid) {
                Some(current) if *current == cn => counts.unchanged += 1,
                Some(_) => {
                    let update = Query::update()
                        .table(table.clone())
                        .value(Alias::new("c_cn"), cn)
                        .and_where(Expr::col(Alias::new("c_uid")).eq(uid))
                        .to_owned();
                    txn.execute_raw(backend.build(&update))
                        .await
                        .map_err(|err| unavailable("cannot update a row", err))?;
                    counts.updated += 1;
                }
                None => {
                    let insert = Query::insert()
                        .into_table(table.clone())
                        .columns(["c_uid", "c_name", "c_password", "c_cn", "mail"].map(Alias::new))
                        .values_panic([
                            uid.clone().into(),
                            uid.clone().into(),
                            "!".into(),
                            cn.into(),
                            uid.clone().into(),
                        ])
                        .to_owned();
                    txn.execute_raw(backend.build(&insert))
                        .await
                        .map_err(|err| unavailable("cannot add a row", err))?;
                    counts.added += 1;
                }
            }
        }
        txn.commit().await.map_err(|err| unavailable("cannot commit", err))?;
        Ok(counts)
    }

    /// Keeps the table at `users_url` in sync until `stop` fires: now, after each change this process announces
    /// (a second later, so a burst is one sync), and every `every`. An unreachable database is retried.
    pub async fn run(users_url: Secret, store: Store, every: Duration, mut stop: tokio::sync::watch::Receiver<bool>) {
        // Coalesced: any number of changes leaves one wake-up.
        let changes = std::sync::Arc::new(tokio::sync::Notify::new());
        let notify = changes.clone();
        store.on_login_change(move |_| notify.notify_one());
        let warning = crate::listener::RateLimitedWarning::new("SOGo users");
        let mut connected: Option<SogoUsers> = None;
        loop {
            if connected.is_none() {
                match SogoUsers::connect(&users_url).await {
                    Ok(users) => connected = Some(users),
                    Err(err) => warning.warn(format_args!("cannot reach SOGo's database: {err}")),
                }
            }
            if let Some(users) = &connected {
                match users.sync(&store).await {
                    Ok(counts) if counts.added + counts.updated + counts.removed > 0 => tracing::info!(
                        added = counts.added,
                        updated = counts.updated,
                        removed = counts.removed,
                        "SOGo's user list brought up to date"
                    ),
                    Ok(_) => {}
                    Err(err) => warning.warn(format_args!("cannot bring SOGo's user list up to date: {err}")),
                }
            }
            let changed = tokio::select! {
                _ = tokio::time::sleep(every) => false,
                _ = changes.notified() => true,
                _ = stop.wait_for(|stopped| *stopped) => return,
            };
            if changed {
                // A burst of changes becomes one sync.
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::view_url;

    #[test]
    fn sogo_is_given_its_own_url_form() {
        assert_eq!(
            view_url("postgres://sogo:pw@127.0.0.1:5432/sogo"),
            "postgresql://sogo:pw@127.0.0.1:5432/sogo/sogo_users"
        );
        assert_eq!(view_url("mysql://sogo:pw@db/sogo?ssl-mode=disabled"), "mysql://sogo:pw@db/sogo/sogo_users");
    }
}
