//! What the engine remembers of mailboxes between logins: the [`MailboxLogin`] a login checks (state, domain
//! and provider state, protocols, hash, revision), so a login answered from the result cache needs no database
//! round trip.
//!
//! The memory is kept coherent by the change feed: a change made in this process is forgotten synchronously
//! once it has committed; a change made elsewhere (the CLI, another node) once this process reads it from the
//! feed. The memory answers only while the feed is being read: when the last good read of the feed started
//! more than [`FRESHNESS`] ago (or never), lookups go to the database, so a change is never ignored for longer
//! than that, even while the feed cannot be read. What the database returns is remembered, unless something was
//! forgotten while it was being read (it could predate that change).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use crate::directory::MailboxLogin;

/// How recent the start of the last good read of the change feed must be for the memory to answer.
pub const FRESHNESS: Duration = Duration::from_millis(750);

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The remembered mailboxes.
pub(crate) struct MailboxMemory {
    /// By canonical address; shared, so a lookup costs no copy.
    entries: moka::sync::Cache<String, Arc<MailboxLogin>>,
    /// Bumped by every forget, so a lookup that raced one does not store what it read.
    epoch: AtomicU64,
    /// When the last good read of the change feed started (milliseconds since the epoch; 0: never).
    feed_read_at: AtomicI64,
}

impl MailboxMemory {
    pub fn new(capacity: u64) -> Self {
        MailboxMemory {
            entries: moka::sync::Cache::builder().max_capacity(capacity).build(),
            epoch: AtomicU64::new(0),
            feed_read_at: AtomicI64::new(0),
        }
    }

    /// Whether the memory may answer: the change feed was read recently.
    pub fn answers(&self) -> bool {
        let read_at = self.feed_read_at.load(Ordering::Acquire);
        read_at > 0 && now_millis() - read_at <= FRESHNESS.as_millis() as i64
    }

    /// Notes a good read of the change feed that started at `started_at` (milliseconds since the epoch), after
    /// its changes were forgotten.
    pub fn feed_read(&self, started_at: i64) {
        self.feed_read_at.fetch_max(started_at, Ordering::AcqRel);
    }

    /// Notes that the change feed cannot be read: the memory stops answering at once.
    pub fn feed_lost(&self) {
        self.feed_read_at.store(0, Ordering::Release);
    }

    /// The remembered mailbox `address`, whether or not the memory may answer now (the outage path).
    pub fn peek(&self, address: &str) -> Option<Arc<MailboxLogin>> {
        self.entries.get(address)
    }

    /// The epoch to pass to [`MailboxMemory::remember`] for a lookup starting now.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Remembers what a lookup that started at `epoch` read, unless something was forgotten since.
    pub fn remember(&self, epoch: u64, address: &str, mailbox: &Arc<MailboxLogin>) {
        if mailbox.address != address {
            return;
        }
        self.entries.insert(mailbox.address.clone(), Arc::clone(mailbox));
        // A forget that ran between the lookup and this insert may have missed the entry: undo it.
        if self.epoch.load(Ordering::Acquire) != epoch {
            self.entries.invalidate(address);
        }
    }

    /// Forgets one mailbox.
    pub fn forget(&self, address: &str) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.entries.invalidate(address);
    }

    /// Drops what is remembered of a mailbox the directory no longer has.
    pub fn discard(&self, address: &str) {
        self.entries.invalidate(address);
    }

    /// Forgets every mailbox (a domain or an identity provider changed: rare, and all their mailboxes with it).
    pub fn forget_all(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.entries.invalidate_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_core::ProtocolSet;

    fn mailbox(address: &str, revision: i64) -> Arc<MailboxLogin> {
        Arc::new(MailboxLogin {
            id: 1,
            address: address.into(),
            domain: "example.org".into(),
            active: true,
            domain_active: true,
            protocols: ProtocolSet::ALL,
            auth_source: "local".into(),
            source_active: true,
            external_id: None,
            password_hash: None,
            second_factor_enabled: false,
            legacy_app_passwords: false,
            force_totp: false,
            force_password_change: false,
            revision,
        })
    }

    #[test]
    fn it_answers_only_while_the_feed_is_read() {
        let memory = MailboxMemory::new(10);
        assert!(!memory.answers(), "never read");
        memory.feed_read(now_millis());
        assert!(memory.answers());
        memory.feed_read(now_millis() - 10_000);
        assert!(memory.answers(), "an older read does not move the mark back");
        memory.feed_lost();
        assert!(!memory.answers());
        let memory = MailboxMemory::new(10);
        memory.feed_read(now_millis() - FRESHNESS.as_millis() as i64 - 10);
        assert!(!memory.answers(), "too long ago");
    }

    #[test]
    fn a_lookup_that_raced_a_forget_is_not_remembered() {
        let memory = MailboxMemory::new(10);
        let epoch = memory.epoch();
        memory.remember(epoch, "a@example.org", &mailbox("a@example.org", 1));
        assert_eq!(memory.peek("a@example.org").map(|m| m.revision), Some(1));

        let epoch = memory.epoch();
        memory.forget("b@example.org");
        memory.remember(epoch, "a@example.org", &mailbox("a@example.org", 2));
        assert_eq!(memory.peek("a@example.org"), None, "read before a forget: not kept");

        memory.remember(memory.epoch(), "A@example.org", &mailbox("a@example.org", 3));
        assert_eq!(memory.peek("a@example.org"), None, "only under its own address");
        memory.remember(memory.epoch(), "a@example.org", &mailbox("a@example.org", 3));
        memory.forget_all();
        assert_eq!(memory.peek("a@example.org"), None);
    }
}
