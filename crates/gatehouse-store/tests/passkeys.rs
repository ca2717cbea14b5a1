//! Passkeys in the store, run unchanged against SQLite, PostgreSQL and MariaDB, each test in its own fresh
//! database: registering, listing and removing them for mailboxes and administrators, one credential per
//! account across all accounts, the limit per account, finding the owner of a credential (passwordless
//! sign-in), recording a use, the mailbox revision the login engine caches by, and removal with the account.

use gatehouse_core::{AdminRole, DomainName, Error, MailboxAddress};
use gatehouse_engine::Directory;
use gatehouse_store::*;

gatehouse_testkit::on_every_engine!(
    passkeys_of_a_mailbox_are_added_listed_and_removed,
    a_credential_belongs_to_one_account,
    the_owner_of_a_credential_is_found_and_its_use_recorded,
    names_and_the_limit_per_account_are_checked,
    removing_an_account_removes_its_passkeys,
);

fn cli() -> Actor {
    Actor { name: "cli:test".into(), role: ActorRole::Cli }
}

/// A domain with the mailboxes `alice@example.org` and `bob@example.org`.
async fn mailboxes(store: &Store) -> (MailboxAddress, MailboxAddress) {
    store.create_domain(&cli(), NewDomain::new(DomainName::parse("example.org").unwrap())).await.unwrap();
    let alice = MailboxAddress::parse("alice@example.org").unwrap();
    let bob = MailboxAddress::parse("bob@example.org").unwrap();
    store.create_mailbox(&cli(), NewMailbox::new(alice.clone())).await.unwrap();
    store.create_mailbox(&cli(), NewMailbox::new(bob.clone())).await.unwrap();
    (alice, bob)
}

fn new_passkey(name: &str, credential_id: &str) -> NewPasskey {
    NewPasskey {
        name: name.into(),
        credential_id: credential_id.into(),
        user_handle: "5f0c6a2e-8d4b-4c53-9a41-0e6f1b2c3d4e".into(),
        credential: format!("{{\"cred\":{{\"cred_id\":\"{credential_id}\"}}}}"),
        counter: 3,
    }
}

async fn revision(store: &Store, address: &str) -> i64 {
    Directory::mailbox(store, address).await.unwrap().unwrap().revision
}

async fn passkey_audit(store: &Store, subject: &str) -> Vec<String> {
    let filter = LogFilter { subject: Some(subject.into()), limit: Some(1000), ..Default::default() };
    let mut actions: Vec<String> = store
        .audit_log(&filter)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .filter(|a| a.starts_with("passkey."))
        .collect();
    actions.reverse();
    actions
}

async fn passkeys_of_a_mailbox_are_added_listed_and_removed(store: Store) {
    let (alice, _) = mailboxes(&store).await;
    let principal = TotpPrincipal::Mailbox(&alice);
    assert!(store.passkeys(principal).await.unwrap().is_empty());
    let before = revision(&store, "alice@example.org").await;
    let laptop = store.add_passkey(&cli(), principal, new_passkey(" Laptop ", "Y3JlZC1vbmU")).await.unwrap();
    assert_eq!((laptop.name.as_str(), laptop.counter, laptop.last_used_at), ("Laptop", 3, None));
    let after_add = revision(&store, "alice@example.org").await;
    assert!(after_add > before, "a new second factor changes what the mail protocols accept");
    let key = store.add_passkey(&cli(), principal, new_passkey("YubiKey", "Y3JlZC10d28")).await.unwrap();
    let listed = store.passkeys(principal).await.unwrap();
    assert_eq!(listed.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["Laptop", "YubiKey"]);
    assert_eq!(listed[0].credential, "{\"cred\":{\"cred_id\":\"Y3JlZC1vbmU\"}}", "the record comes back as stored");
    store.remove_passkey(&cli(), principal, laptop.id).await.unwrap();
    assert!(revision(&store, "alice@example.org").await > after_add);
    assert_eq!(store.passkeys(principal).await.unwrap(), vec![key]);
    assert!(matches!(store.remove_passkey(&cli(), principal, laptop.id).await, Err(Error::NotFound { .. })));
    assert_eq!(passkey_audit(&store, "alice@example.org").await, ["passkey.add", "passkey.add", "passkey.remove"]);
    let unknown = MailboxAddress::parse("nobody@example.org").unwrap();
    assert!(matches!(store.passkeys(TotpPrincipal::Mailbox(&unknown)).await, Err(Error::NotFound { .. })));
}

async fn a_credential_belongs_to_one_account(store: Store) {
    let (alice, bob) = mailboxes(&store).await;
    let theirs = store.add_passkey(&cli(), TotpPrincipal::Mailbox(&alice), new_passkey("Key", "c2FtZQ")).await.unwrap();
    for principal in [TotpPrincipal::Mailbox(&alice), TotpPrincipal::Mailbox(&bob)] {
        let again = store.add_passkey(&cli(), principal, new_passkey("Again", "c2FtZQ")).await;
        assert!(matches!(again, Err(Error::AlreadyExists { .. })), "{again:?}");
    }
    // bob cannot remove alice's passkey by its id.
    let removed = store.remove_passkey(&cli(), TotpPrincipal::Mailbox(&bob), theirs.id).await;
    assert!(matches!(removed, Err(Error::NotFound { .. })), "{removed:?}");
    assert_eq!(store.passkeys(TotpPrincipal::Mailbox(&alice)).await.unwrap().len(), 1);
}

async fn the_owner_of_a_credential_is_found_and_its_use_recorded(store: Store) {
    let (alice, _) = mailboxes(&store).await;
    store.create_admin(&cli(), "ops", "{PLAIN}x".into()).await.unwrap();
    let mail = store.add_passkey(&cli(), TotpPrincipal::Mailbox(&alice), new_passkey("Phone", "bWFpbA")).await.unwrap();
    let admin = store.add_passkey(&cli(), TotpPrincipal::Admin("ops"), new_passkey("Key", "YWRtaW4")).await.unwrap();
    let (owner, found) = store.passkey_by_credential("bWFpbA").await.unwrap().unwrap();
    assert_eq!((owner, found.id), (PasskeyOwner::Mailbox("alice@example.org".into()), mail.id));
    let (owner, found) = store.passkey_by_credential("YWRtaW4").await.unwrap().unwrap();
    assert_eq!((owner, found.id), (PasskeyOwner::Admin("ops".into()), admin.id));
    assert!(store.passkey_by_credential("dW5rbm93bg").await.unwrap().is_none());
    store.record_passkey_use(mail.id, 9, "{\"updated\":true}".into()).await.unwrap();
    let used = store.passkeys(TotpPrincipal::Mailbox(&alice)).await.unwrap().remove(0);
    assert_eq!((used.counter, used.credential.as_str()), (9, "{\"updated\":true}"));
    assert!(used.last_used_at.is_some());
    assert_eq!(store.passkeys(TotpPrincipal::Admin("ops")).await.unwrap()[0].last_used_at, None);
}

async fn names_and_the_limit_per_account_are_checked(store: Store) {
    let (alice, _) = mailboxes(&store).await;
    let principal = TotpPrincipal::Mailbox(&alice);
    for name in ["", "   ", "tab\there", &"x".repeat(65)] {
        let added = store.add_passkey(&cli(), principal, new_passkey(name, "bmFtZQ")).await;
        assert!(matches!(added, Err(Error::Invalid(_))), "{name:?}: {added:?}");
    }
    let mut empty = new_passkey("Key", "");
    empty.credential_id.clear();
    assert!(matches!(store.add_passkey(&cli(), principal, empty).await, Err(Error::Invalid(_))));
    for n in 0..MAX_PASSKEYS {
        store.add_passkey(&cli(), principal, new_passkey(&format!("Key {n}"), &format!("a2V5{n}"))).await.unwrap();
    }
    let over = store.add_passkey(&cli(), principal, new_passkey("One more", "b3Zlcg")).await;
    assert!(matches!(over, Err(Error::Refused(_))), "{over:?}");
}

async fn removing_an_account_removes_its_passkeys(store: Store) {
    let (alice, _) = mailboxes(&store).await;
    store.add_passkey(&cli(), TotpPrincipal::Mailbox(&alice), new_passkey("Phone", "Z29uZQ")).await.unwrap();
    store.remove_mailbox(&cli(), &alice).await.unwrap();
    assert!(store.passkey_by_credential("Z29uZQ").await.unwrap().is_none());
    store.create_mailbox(&cli(), NewMailbox::new(alice.clone())).await.unwrap();
    assert!(store.passkeys(TotpPrincipal::Mailbox(&alice)).await.unwrap().is_empty(), "a new alice has none");

    store.create_admin(&cli(), "second", "{PLAIN}x".into()).await.unwrap();
    store.create_admin(&cli(), "third", "{PLAIN}x".into()).await.unwrap();
    store.add_passkey(&cli(), TotpPrincipal::Admin("second"), new_passkey("Key", "c2Vjb25k")).await.unwrap();
    store.remove_admin(&cli(), "second", AdminRole::Admin).await.unwrap();
    assert!(store.passkey_by_credential("c2Vjb25k").await.unwrap().is_none());
}
