//! Following the change feed: every quarter second this process reads the changes committed since its last read
//! (by itself, the CLI or another node) and makes the engine forget what they touch, then tells the engine the
//! read succeeded — its memory of mailboxes answers only while such reads keep coming. A read that fails makes
//! the engine look everything up in the database until reads succeed again (with a warning), so a change is
//! never ignored, only noticed more slowly.
//!
//! Positions are taken when a change is written and seen when its transaction commits, so transactions that
//! commit out of order leave a position missing for a moment: missing positions are asked for again for
//! [`WAIT_FOR_MISSING`] (a rolled-back transaction leaves one missing for good). Changes older than an hour are
//! pruned every ten minutes.

use std::collections::BTreeMap;
use std::sync::Weak;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gatehouse_engine::memory::now_millis;
use gatehouse_store::{LoginChange, Store};

use crate::AuthService;

/// How often the feed is read.
pub const READ_EVERY: Duration = Duration::from_millis(250);
/// How long a missing position is asked for again.
const WAIT_FOR_MISSING: Duration = Duration::from_secs(10);
/// The most missing positions tracked at once.
const MOST_MISSING: usize = 1000;
/// Changes read per query.
const PAGE: u64 = 1000;
/// How often old changes are pruned, and how old they must be (seconds).
const PRUNE_EVERY: Duration = Duration::from_secs(600);
const KEEP_SECONDS: i64 = 3600;
/// How often a feed that keeps failing is warned about.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// The follower's state, for `/stats`.
#[derive(Debug, Default)]
pub struct FeedStats {
    /// The newest position read.
    pub position: AtomicI64,
    /// Changes applied.
    pub applied: AtomicU64,
    /// Reads that failed.
    pub failed_reads: AtomicU64,
    /// The last read failed (the engine looks everything up in the database).
    pub failing: AtomicBool,
    /// When the last good read started (milliseconds since the Unix epoch).
    pub last_read_at: AtomicI64,
}

/// Makes the engine forget what `change` touches, then has Dovecot's auth cache emptied of it (when configured),
/// so Dovecot's next question is answered from what is now true.
pub(crate) fn apply(service: &AuthService, change: Option<&LoginChange>) {
    match change {
        Some(LoginChange::Mailbox(address)) => service.engine.forget(address),
        // A web session: nothing Dovecot knows of.
        Some(LoginChange::Session(id)) => return service.sessions.forget(id),
        Some(LoginChange::Domain(_) | LoginChange::Provider(_)) => service.engine.forget_every_mailbox(),
        // A kind a newer version wrote: everything, to be safe.
        None => {
            service.engine.forget_every_mailbox();
            service.sessions.forget_all();
        }
    }
    if let Some(doveadm) = service.doveadm.get() {
        doveadm.flush(change);
    }
}

/// Where the follower is.
struct Follower {
    /// The newest position seen; `None` before the first read.
    position: Option<i64>,
    /// Positions below it not seen yet, with when they were first missed.
    missing: BTreeMap<i64, Instant>,
}

impl Follower {
    /// One read: everything after the position, and the missing positions.
    async fn read(&mut self, store: &Store, service: &AuthService) -> gatehouse_core::Result<()> {
        let mut position = match self.position {
            Some(position) => position,
            None => {
                // The first read starts a page before the newest change, so the positions missing among the
                // latest ones are waited for; what was remembered before it may predate those changes.
                let newest = store.latest_login_change().await?;
                service.engine.forget_every_mailbox();
                (newest - PAGE as i64).max(0)
            }
        };
        let now = Instant::now();
        self.missing.retain(|_, since| now.duration_since(*since) < WAIT_FOR_MISSING);
        loop {
            let asked: Vec<i64> = self.missing.keys().copied().collect();
            let entries = store.login_changes_after(position, &asked, PAGE).await?;
            for entry in &entries {
                apply(service, entry.change.as_ref());
                service.feed.applied.fetch_add(1, Ordering::Relaxed);
                if self.missing.remove(&entry.id).is_some() {
                    continue;
                }
                // Positions skipped on the way may belong to transactions that commit later.
                for skipped in (position + 1)..entry.id {
                    if self.missing.len() >= MOST_MISSING {
                        break;
                    }
                    self.missing.insert(skipped, now);
                }
                position = position.max(entry.id);
            }
            self.position = Some(position);
            service.feed.position.store(position, Ordering::Relaxed);
            if entries.len() < PAGE as usize {
                return Ok(());
            }
        }
    }
}

/// Follows the feed for `service` until the service is gone.
pub(crate) async fn follow(store: Store, service: Weak<AuthService>) {
    let mut follower = Follower { position: None, missing: BTreeMap::new() };
    let mut last_prune = Instant::now();
    let mut last_warning: Option<Instant> = None;
    loop {
        let Some(service) = service.upgrade() else { return };
        let started = now_millis();
        match follower.read(&store, &service).await {
            Ok(()) => {
                service.engine.feed_read(started);
                service.feed.last_read_at.store(started, Ordering::Relaxed);
                if service.feed.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!("the change feed is read again; logins use remembered mailboxes again");
                    last_warning = None;
                }
            }
            Err(err) => {
                service.engine.feed_lost();
                service.feed.failed_reads.fetch_add(1, Ordering::Relaxed);
                service.feed.failing.store(true, Ordering::Relaxed);
                if last_warning.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
                    tracing::warn!("cannot read the change feed ({err}); logins look mailboxes up in the database");
                    last_warning = Some(Instant::now());
                }
            }
        }
        if last_prune.elapsed() >= PRUNE_EVERY {
            last_prune = Instant::now();
            match store.prune_login_changes(gatehouse_core::clock::now() - KEEP_SECONDS).await {
                Ok(pruned) if pruned > 0 => tracing::debug!(pruned, "old changes pruned from the feed"),
                Ok(_) => {}
                Err(err) => tracing::warn!("cannot prune the change feed: {err}"),
            }
        }
        drop(service);
        tokio::time::sleep(READ_EVERY).await;
    }
}
