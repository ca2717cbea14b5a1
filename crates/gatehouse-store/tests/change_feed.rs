//! The change feed on SQLite, PostgreSQL and MariaDB: every change that can affect a login is written with it
//! and announced to this process's listeners after its commit (never when it is refused), read back in order
//! from a position and with the positions a follower is still waiting for, and pruned by age.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use gatehouse_core::{DomainName, MailboxAddress};
use gatehouse_store::*;
use serde_json::json;

gatehouse_testkit::on_every_engine!(
    every_login_change_is_written_and_announced,
    the_feed_is_read_from_a_position,
    web_session_changes_and_ends_are_written_and_announced
);

fn cli() -> Actor {
    Actor { name: "cli:test".into(), role: ActorRole::Cli }
}

fn address(text: &str) -> MailboxAddress {
    MailboxAddress::parse(text).unwrap()
}

/// Collects every change the store announces to this process.
fn record_announcements(store: &Store) -> Arc<Mutex<Vec<LoginChange>>> {
    let announced = Arc::new(Mutex::new(Vec::new()));
    let seen = announced.clone();
    store.on_login_change(move |change| seen.lock().unwrap().push(change.clone()));
    announced
}

/// What the feed holds after position `after`.
async fn feed_after(store: &Store, after: i64) -> Vec<LoginChange> {
    store.login_changes_after(after, &[], 1000).await.unwrap().into_iter().filter_map(|entry| entry.change).collect()
}

async fn every_login_change_is_written_and_announced(store: Store) {
    let announced = record_announcements(&store);
    let take = || std::mem::take(&mut *announced.lock().unwrap());

    store.create_domain(&cli(), NewDomain::new(DomainName::parse("example.org").unwrap())).await.unwrap();
    let alice = address("alice@example.org");
    store.create_mailbox(&cli(), NewMailbox::new(alice.clone())).await.unwrap();
    let provider = NewIdentityProvider {
        name: "corp".into(),
        kind: IdentityProviderKind::Oidc,
        settings: json!({}),
        secrets: BTreeMap::new(),
    };
    store.create_identity_provider(&cli(), provider).await.unwrap();
    assert_eq!(take(), [], "creations change no login that exists");
    let start = store.latest_login_change().await.unwrap();

    let mailbox = LoginChange::Mailbox("alice@example.org".into());
    let changes = MailboxChanges { active: Some(false), ..Default::default() };
    store.update_mailbox(&cli(), &alice, changes).await.unwrap();
    let token = NewAppPassword {
        name: "phone".into(),
        secret_hash: "x".into(),
        protocols: "imap".parse().unwrap(),
        expires_at: None,
    };
    let created = store.create_app_password(&cli(), &alice, token).await.unwrap();
    store.revoke_app_password(&cli(), &alice, created.id).await.unwrap();
    let edit = DomainChanges { active: Some(false), ..Default::default() };
    store.update_domain(&cli(), &DomainName::parse("example.org").unwrap(), edit).await.unwrap();
    let deactivate = IdentityProviderChanges { active: Some(false), ..Default::default() };
    store.update_identity_provider(&cli(), "corp", deactivate).await.unwrap();
    let settings_only = IdentityProviderChanges { settings: Some(json!({ "x": 1 })), ..Default::default() };
    store.update_identity_provider(&cli(), "corp", settings_only).await.unwrap();
    store.remove_mailbox(&cli(), &alice).await.unwrap();
    let expected = vec![
        mailbox.clone(),
        mailbox.clone(),
        mailbox.clone(),
        LoginChange::Domain("example.org".into()),
        LoginChange::Provider("corp".into()),
        mailbox.clone(),
    ];
    assert_eq!(take(), expected, "announced after each commit");
    assert_eq!(feed_after(&store, start).await, expected, "and written to the feed, in order");

    // A refused change is neither written nor announced.
    let before = store.latest_login_change().await.unwrap();
    let changes = MailboxChanges { active: Some(true), ..Default::default() };
    assert!(store.update_mailbox(&cli(), &alice, changes).await.is_err(), "alice is gone");
    assert_eq!((take(), store.latest_login_change().await.unwrap()), (vec![], before));
}

async fn the_feed_is_read_from_a_position(store: Store) {
    assert_eq!(store.latest_login_change().await.unwrap(), 0, "empty");
    store.create_domain(&cli(), NewDomain::new(DomainName::parse("example.org").unwrap())).await.unwrap();
    for name in ["a", "b", "c", "d"] {
        let mailbox = address(&format!("{name}@example.org"));
        store.create_mailbox(&cli(), NewMailbox::new(mailbox.clone())).await.unwrap();
        let changes = MailboxChanges { display_name: Some(name.to_uppercase()), ..Default::default() };
        store.update_mailbox(&cli(), &mailbox, changes).await.unwrap();
    }
    let all = store.login_changes_after(0, &[], 1000).await.unwrap();
    let ids: Vec<i64> = all.iter().map(|entry| entry.id).collect();
    assert_eq!(ids.len(), 4);
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "oldest first: {ids:?}");
    assert_eq!(store.latest_login_change().await.unwrap(), ids[3]);

    // From a position, with a page size, and with positions a follower is still waiting for.
    let after = store.login_changes_after(ids[1], &[], 1).await.unwrap();
    assert_eq!(after.iter().map(|e| e.id).collect::<Vec<_>>(), [ids[2]]);
    let with_missing = store.login_changes_after(ids[2], &[ids[0], 999_999], 1000).await.unwrap();
    assert_eq!(with_missing.iter().map(|e| e.id).collect::<Vec<_>>(), [ids[0], ids[3]]);
    assert_eq!(with_missing[0].change, Some(LoginChange::Mailbox("a@example.org".into())));

    // Pruning by age.
    assert_eq!(store.prune_login_changes(gatehouse_core::clock::now() - 60).await.unwrap(), 0, "all recent");
    assert_eq!(store.prune_login_changes(gatehouse_core::clock::now() + 1).await.unwrap(), 4);
    assert_eq!(store.login_changes_after(0, &[], 1000).await.unwrap(), []);
}

async fn web_session_changes_and_ends_are_written_and_announced(store: Store) {
    let announced = record_announcements(&store);
    let take = || std::mem::take(&mut *announced.lock().unwrap());
    store.create_domain(&cli(), NewDomain::new(DomainName::parse("example.org").unwrap())).await.unwrap();
    let alice = address("alice@example.org");
    store.create_mailbox(&cli(), NewMailbox::new(alice.clone())).await.unwrap();
    let session = |id: &str| WebSessionRow {
        id: id.into(),
        principal_kind: USER_SESSIONS.into(),
        principal: "alice@example.org".into(),
        data: "{}".into(),
        expires_at: gatehouse_core::clock::now() + 600,
    };
    for id in ["s1", "s2", "s3"] {
        store.create_web_session(&session(id)).await.unwrap();
    }
    let start = store.latest_login_change().await.unwrap();
    assert_eq!(take(), [], "a new session changes nothing remembered");
    store.update_web_session("s1", "{\"x\":1}", gatehouse_core::clock::now() + 600).await.unwrap();
    store.delete_web_session("s2").await.unwrap();
    assert_eq!(take(), [LoginChange::Session("s1".into()), LoginChange::Session("s2".into())]);
    // A new password ends every session of the mailbox, each announced and in the feed.
    let changes = MailboxChanges { password_hash: Some("{PLAIN}x".into()), ..Default::default() };
    store.update_mailbox(&cli(), &alice, changes).await.unwrap();
    let mut ended = take();
    ended.sort_by_key(|change| format!("{change:?}"));
    let expected = [
        LoginChange::Mailbox("alice@example.org".into()),
        LoginChange::Session("s1".into()),
        LoginChange::Session("s3".into()),
    ];
    assert_eq!(ended, expected);
    let mut fed = feed_after(&store, start).await;
    fed.sort_by_key(|change| format!("{change:?}"));
    assert_eq!(fed.len(), 5, "{fed:?}");
    assert_eq!(store.web_session("s1").await.unwrap(), None);
    assert_eq!(store.web_session("s3").await.unwrap(), None);
}
