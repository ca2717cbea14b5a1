//! The web sessions this process remembers, so nginx's `auth_request` for a webmail page (asked for every SOGo
//! request) needs no database round trip. Like the engine's memory of mailboxes, it answers only while the change
//! feed is being read: every write to a session (its state saved, the session ended — by a logout, a password
//! change, a deactivation, a provider's back-channel logout) is a change in the feed, forgotten here at once when
//! this process made it and within a second when another did. A session's expiry is checked at every use.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use gatehouse_core::clock::now;
use gatehouse_store::WebSessionRow;

/// How many sessions are remembered at most.
const CAPACITY: u64 = 100_000;

/// The remembered sessions, by id (the hash of the cookie).
pub struct RememberedSessions {
    entries: moka::sync::Cache<String, Arc<WebSessionRow>>,
    /// Bumped by every forget, so a lookup that raced one does not store what it read.
    epoch: AtomicU64,
}

impl Default for RememberedSessions {
    fn default() -> Self {
        RememberedSessions {
            entries: moka::sync::Cache::builder().max_capacity(CAPACITY).build(),
            epoch: AtomicU64::new(0),
        }
    }
}

impl RememberedSessions {
    /// The session `id` if it is remembered and has not expired.
    pub fn get(&self, id: &str) -> Option<Arc<WebSessionRow>> {
        let row = self.entries.get(id)?;
        if row.expires_at <= now() {
            self.entries.invalidate(id);
            return None;
        }
        Some(row)
    }

    /// The epoch to pass to [`RememberedSessions::remember`] for a lookup starting now.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Remembers what a lookup that started at `epoch` read, unless something was forgotten since.
    pub fn remember(&self, epoch: u64, row: &Arc<WebSessionRow>) {
        self.entries.insert(row.id.clone(), Arc::clone(row));
        if self.epoch.load(Ordering::Acquire) != epoch {
            self.entries.invalidate(&row.id);
        }
    }

    /// Forgets one session (it changed or ended).
    pub fn forget(&self, id: &str) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.entries.invalidate(id);
    }

    /// Forgets every session.
    pub fn forget_all(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.entries.invalidate_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, expires_at: i64) -> Arc<WebSessionRow> {
        Arc::new(WebSessionRow {
            id: id.into(),
            principal_kind: "user".into(),
            principal: "alice@example.org".into(),
            data: "{}".into(),
            expires_at,
        })
    }

    #[test]
    fn sessions_are_remembered_until_forgotten_or_expired() {
        let sessions = RememberedSessions::default();
        sessions.remember(sessions.epoch(), &row("a", now() + 60));
        assert!(sessions.get("a").is_some());
        sessions.forget("a");
        assert!(sessions.get("a").is_none());
        sessions.remember(sessions.epoch(), &row("b", now() - 1));
        assert!(sessions.get("b").is_none(), "expired");
        let epoch = sessions.epoch();
        sessions.forget("other");
        sessions.remember(epoch, &row("c", now() + 60));
        assert!(sessions.get("c").is_none(), "read before a forget: not kept");
        sessions.remember(sessions.epoch(), &row("d", now() + 60));
        sessions.forget_all();
        assert!(sessions.get("d").is_none());
    }
}
