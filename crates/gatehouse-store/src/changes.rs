//! Changes that affect logins, announced inside this process once their transaction has committed: the login
//! engine drops what it remembers about the mailbox (or the domain's mailboxes), so a success it verified before
//! a change is not answered from memory afterwards — not even while the database is unreachable.
//!
//! Changes made by other processes reach the engine through the revisions it checks at the next login.

use tokio::sync::broadcast;

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginChange {
    /// A mailbox (canonical address): its state, password, protocols, app passwords or second factor.
    Mailbox(String),
    /// A domain (ASCII name): every mailbox in it.
    Domain(String),
}

/// The announcer every clone of a store shares.
#[derive(Debug, Clone)]
pub(crate) struct Announcer(broadcast::Sender<LoginChange>);

impl Default for Announcer {
    fn default() -> Self {
        Announcer(broadcast::channel(1024).0)
    }
}

impl Announcer {
    /// Announces a committed change (nobody listening is fine).
    pub(crate) fn announce(&self, change: LoginChange) {
        let _ = self.0.send(change);
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<LoginChange> {
        self.0.subscribe()
    }
}
