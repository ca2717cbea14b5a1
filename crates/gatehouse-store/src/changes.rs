//! Changes that affect logins (a mailbox's state, password, protocols, app passwords or second factor; a
//! domain; an identity provider's active flag). Each is written to the change feed (the `login_changes`
//! table) in the transaction that makes it, and once that transaction has committed it is announced inside
//! this process to the listeners ([`Store::on_login_change`]) — synchronously, so this process never answers
//! from memory what it has just changed. Other processes follow the feed ([`Store::login_changes_after`]).

use std::sync::{Arc, RwLock};

use gatehouse_core::Result;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, NotSet, QueryFilter, QueryOrder, QuerySelect, Set,
};

use crate::entity::login_change;
use crate::{Store, db_err, now};

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginChange {
    /// A mailbox (canonical address): its state, password, protocols, app passwords or second factor.
    Mailbox(String),
    /// A domain (ASCII name): every mailbox in it.
    Domain(String),
    /// An identity provider (its name): every mailbox bound to it.
    Provider(String),
    /// A web session (its id, the hash of its cookie) changed or ended.
    Session(String),
}

impl LoginChange {
    fn kind(&self) -> &'static str {
        match self {
            LoginChange::Mailbox(_) => "mailbox",
            LoginChange::Domain(_) => "domain",
            LoginChange::Provider(_) => "provider",
            LoginChange::Session(_) => "session",
        }
    }

    fn subject(&self) -> &str {
        match self {
            LoginChange::Mailbox(name)
            | LoginChange::Domain(name)
            | LoginChange::Provider(name)
            | LoginChange::Session(name) => name,
        }
    }

    fn parse(kind: &str, subject: String) -> Option<LoginChange> {
        match kind {
            "mailbox" => Some(LoginChange::Mailbox(subject)),
            "domain" => Some(LoginChange::Domain(subject)),
            "provider" => Some(LoginChange::Provider(subject)),
            "session" => Some(LoginChange::Session(subject)),
            _ => None,
        }
    }
}

/// A change read from the feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEntry {
    /// Its position in the feed (ascending, with gaps).
    pub id: i64,
    /// What changed; `None` for a kind this version does not know (a newer node wrote it).
    pub change: Option<LoginChange>,
}

/// Someone told of each committed change.
type Listener = Arc<dyn Fn(&LoginChange) + Send + Sync>;

/// The listeners every clone of a store shares.
#[derive(Clone, Default)]
pub(crate) struct Announcer(Arc<RwLock<Vec<Listener>>>);

impl std::fmt::Debug for Announcer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Announcer")
    }
}

impl Announcer {
    /// Tells every listener of a committed change.
    pub(crate) fn announce(&self, change: LoginChange) {
        let listeners = self.0.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        for listener in listeners {
            listener(&change);
        }
    }

    /// Tells every listener of several committed changes.
    pub(crate) fn announce_all(&self, changes: Vec<LoginChange>) {
        for change in changes {
            self.announce(change);
        }
    }
}

/// Writes `change` to the feed, inside the transaction `db` that makes it. Write it as the transaction's last
/// statement: its position is taken now but seen by other processes only at the commit, and followers wait only
/// a little while for a position that is missing.
pub(crate) async fn record(db: &impl ConnectionTrait, change: &LoginChange) -> Result<()> {
    login_change::ActiveModel {
        id: NotSet,
        kind: Set(change.kind().to_string()),
        subject: Set(change.subject().to_string()),
        created_at: Set(now()),
    }
    .insert(db)
    .await
    .map_err(db_err)?;
    Ok(())
}

impl Store {
    /// Calls `listener` with every change this process commits, right after the commit.
    pub fn on_login_change(&self, listener: impl Fn(&LoginChange) + Send + Sync + 'static) {
        self.announcer.0.write().unwrap_or_else(|poisoned| poisoned.into_inner()).push(Arc::new(listener));
    }

    /// The newest position in the feed (0 when it is empty).
    pub async fn latest_login_change(&self) -> Result<i64> {
        let newest =
            login_change::Entity::find().order_by_desc(login_change::Column::Id).one(&self.db).await.map_err(db_err)?;
        Ok(newest.map_or(0, |row| row.id))
    }

    /// The changes after position `after`, and those at the positions `missing` (positions a follower skipped
    /// because their transactions had not committed yet), oldest first, at most `limit`.
    pub async fn login_changes_after(&self, after: i64, missing: &[i64], limit: u64) -> Result<Vec<FeedEntry>> {
        let mut condition = sea_orm::Condition::any().add(login_change::Column::Id.gt(after));
        if !missing.is_empty() {
            condition = condition.add(login_change::Column::Id.is_in(missing.iter().copied()));
        }
        let rows = login_change::Entity::find()
            .filter(condition)
            .order_by_asc(login_change::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(db_err)?;
        Ok(rows
            .into_iter()
            .map(|row| FeedEntry { id: row.id, change: LoginChange::parse(&row.kind, row.subject) })
            .collect())
    }

    /// Deletes the changes written before `before` (Unix seconds); returns how many.
    pub async fn prune_login_changes(&self, before: i64) -> Result<u64> {
        let deleted = login_change::Entity::delete_many()
            .filter(login_change::Column::CreatedAt.lt(before))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(deleted.rows_affected)
    }
}
