//! The result cache: a verified success is remembered under a keyed hash of (service, user, master,
//! password) together with the revisions of the mailbox and master user it was verified against. A later
//! login with the same key skips the password hash only if those revisions are unchanged, so any change to
//! the mailbox, its app passwords, its domain or the master user takes effect at once (mailcow #6584): the
//! mailbox's current revision comes from the engine's memory of mailboxes, which the change feed keeps
//! coherent, or from the directory. Failures are never cached.

use std::sync::Arc;
use std::time::Duration;

use hmac::{KeyInit, Mac};
use sha2::Sha256;

use crate::Via;

/// What a cached success remembers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CachedSuccess {
    pub mailbox_revision: i64,
    pub master_revision: Option<i64>,
    pub via: Via,
    /// For app passwords: when the credential expires (checked on every hit).
    pub expires_at: Option<i64>,
    /// The mailbox (canonical address).
    pub mailbox: String,
    /// Unix seconds when the database last confirmed this success (its revision unchanged).
    pub confirmed_at: i64,
}

/// The cache. Keys are HMAC-SHA256 under a random per-process key, so memory never holds a password or an
/// offline-guessable digest of one.
pub(crate) struct ResultCache {
    key: [u8; 32],
    entries: moka::sync::Cache<[u8; 32], Arc<CachedSuccess>>,
}

impl ResultCache {
    pub fn new(ttl: Duration, capacity: u64) -> Self {
        ResultCache {
            key: rand::random(),
            entries: moka::sync::Cache::builder().max_capacity(capacity).time_to_live(ttl).build(),
        }
    }

    pub fn key(&self, service: &str, user: &str, master: Option<&str>, password: &[u8]) -> [u8; 32] {
        let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(&self.key).expect("any key length");
        for part in [service.as_bytes(), user.as_bytes(), master.unwrap_or("").as_bytes(), password] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    pub fn get(&self, key: &[u8; 32]) -> Option<Arc<CachedSuccess>> {
        self.entries.get(key)
    }

    pub fn insert(&self, key: [u8; 32], value: CachedSuccess) {
        self.entries.insert(key, Arc::new(value));
    }

    pub fn remove(&self, key: &[u8; 32]) {
        self.entries.invalidate(key);
    }

    /// Drops everything.
    pub fn clear(&self) {
        self.entries.invalidate_all();
    }
}
