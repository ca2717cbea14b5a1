//! SOGo's user list kept in SOGo's own database (PostgreSQL and MariaDB), from a Gatehouse store on SQLite: the
//! table is created, filled with the mailboxes that may use webmail, and brought up to date — display names,
//! the webmail flag, inactive mailboxes and domains — with nothing else touched.

use gatehouse_core::{DomainName, MailboxAddress, ProtocolSet, Secret};
use gatehouse_server::sogo_users::{SogoUsers, SyncCounts};
use gatehouse_store::{Actor, ActorRole, DomainChanges, MailboxChanges, NewDomain, NewMailbox, Store};
use gatehouse_testkit::{Engine, TestDatabase};
use sea_orm::{ConnectionTrait, Database, Statement};

fn actor() -> Actor {
    Actor { name: "cli:test".into(), role: ActorRole::Cli }
}

async fn rows(url: &str) -> Vec<(String, String, String)> {
    let db = Database::connect(url).await.unwrap();
    let backend = db.get_database_backend();
    let sql = "SELECT c_uid, c_cn, c_password FROM sogo_users ORDER BY c_uid";
    let rows = db.query_all_raw(Statement::from_string(backend, sql)).await.unwrap();
    let out = rows
        .iter()
        .map(|r| {
            (r.try_get("", "c_uid").unwrap(), r.try_get("", "c_cn").unwrap(), r.try_get("", "c_password").unwrap())
        })
        .collect();
    let _ = db.close().await;
    out
}

#[tokio::test]
async fn the_table_follows_the_mailboxes_that_may_use_webmail() {
    let local = TestDatabase::create(Engine::Sqlite).await.unwrap();
    let store = Store::open(local.url()).await.unwrap();
    for domain in ["example.org", "other.org"] {
        store.create_domain(&actor(), NewDomain::new(DomainName::parse(domain).unwrap())).await.unwrap();
    }
    for (address, protocols) in
        [("alice@example.org", "all"), ("bob@example.org", "imap,smtp"), ("carol@other.org", "all")]
    {
        let mut new = NewMailbox::new(MailboxAddress::parse(address).unwrap());
        new.protocols = Some(protocols.parse::<ProtocolSet>().unwrap());
        store.create_mailbox(&actor(), new).await.unwrap();
    }
    for engine in [Engine::Postgres, Engine::MariaDb] {
        let Some(sogo_db) = TestDatabase::create(engine).await else { continue };
        let url = Secret::new(sogo_db.url().expose());
        let users = SogoUsers::connect(&url).await.unwrap();
        let first = users.sync(&store).await.unwrap();
        assert_eq!(first, SyncCounts { added: 2, ..Default::default() }, "{engine:?}: bob has no webmail");
        let listed = rows(sogo_db.url().expose()).await;
        assert_eq!(
            listed,
            vec![
                ("alice@example.org".into(), "alice".into(), "!".into()),
                ("carol@other.org".into(), "carol".into(), "!".into()),
            ],
            "{engine:?}"
        );

        // Changes: a display name, bob gets webmail, alice loses it, carol's domain goes inactive.
        let changes = |f: fn(&mut MailboxChanges)| {
            let mut changes = MailboxChanges::default();
            f(&mut changes);
            changes
        };
        let alice = MailboxAddress::parse("alice@example.org").unwrap();
        let bob = MailboxAddress::parse("bob@example.org").unwrap();
        store.update_mailbox(&actor(), &bob, changes(|c| c.protocols = Some(ProtocolSet::ALL))).await.unwrap();
        store.update_mailbox(&actor(), &bob, changes(|c| c.display_name = Some("Bob Example".into()))).await.unwrap();
        let counts = users.sync(&store).await.unwrap();
        assert_eq!(counts, SyncCounts { added: 1, unchanged: 2, ..Default::default() }, "{engine:?}");
        store.update_mailbox(&actor(), &alice, changes(|c| c.protocols = Some("imap".parse().unwrap()))).await.unwrap();
        let domain_off = DomainChanges { active: Some(false), ..Default::default() };
        store.update_domain(&actor(), &DomainName::parse("other.org").unwrap(), domain_off).await.unwrap();
        store.update_mailbox(&actor(), &bob, changes(|c| c.display_name = Some("Robert".into()))).await.unwrap();
        let counts = users.sync(&store).await.unwrap();
        assert_eq!(counts, SyncCounts { updated: 1, removed: 2, ..Default::default() }, "{engine:?}");
        assert_eq!(rows(sogo_db.url().expose()).await, vec![("bob@example.org".into(), "Robert".into(), "!".into())]);
        assert_eq!(users.sync(&store).await.unwrap(), SyncCounts { unchanged: 1, ..Default::default() }, "idempotent");
        // Put things back for the next engine.
        store.update_mailbox(&actor(), &alice, changes(|c| c.protocols = Some(ProtocolSet::ALL))).await.unwrap();
        store
            .update_mailbox(&actor(), &bob, changes(|c| c.protocols = Some("imap,smtp".parse().unwrap())))
            .await
            .unwrap();
        let domain_on = DomainChanges { active: Some(true), ..Default::default() };
        store.update_domain(&actor(), &DomainName::parse("other.org").unwrap(), domain_on).await.unwrap();
        sogo_db.drop_database().await;
    }
    store.close().await;
}
