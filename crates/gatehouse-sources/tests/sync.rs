//! Syncs from a real OpenLDAP slapd into a real store: a 10 000-entry import (bulk-loaded with slapadd), template
//! changes for 100 entries, deletions with the `deactivate` policy, the threshold refusals, the lease that keeps
//! a second process out, the job log, and which periodic runs are due.

use std::collections::BTreeMap;
use std::time::Instant;

use gatehouse_core::{DomainName, Error, MailboxAddress, ProtocolSet, Secret};
use gatehouse_engine::{Credentials, ExternalCheck, IdentitySources};
use gatehouse_sources::SourceRegistry;
use gatehouse_sources::dispatch::LDAP_BIND_PASSWORD;
use gatehouse_sources::registry::SYNC_JOB;
use gatehouse_store::{
    Actor, DEPROVISIONED_BY, IdentityProviderChanges, IdentityProviderKind, LogFilter, MailboxChanges, NewDomain,
    NewIdentityProvider, NewTemplate, Store, TemplateChanges,
};
use gatehouse_testkit::slapd::Slapd;
use gatehouse_testkit::{Engine, TestDatabase};
use ldap3::{LdapConnAsync, Mod};
use serde_json::json;

const ADMIN_DN: &str = "cn=admin,dc=example,dc=org";

fn dn(n: usize) -> String {
    format!("uid=u{n:05},ou=people,dc=example,dc=org")
}

fn mail(n: usize) -> String {
    format!("u{n:05}@example.org")
}

/// `count` people; even ones are staff, odd ones are in IT (with a first value that maps to nothing, so the
/// multi-valued attribute's first *mapped* value decides).
fn people(count: usize) -> String {
    let mut ldif = String::with_capacity(count * 220);
    for n in 0..count {
        let kind = if n % 2 == 0 { "staff" } else { "it" };
        ldif.push_str(&format!(
            "dn: {}\nobjectClass: inetOrgPerson\nuid: u{n:05}\ncn: User {n}\nsn: {n}\ndisplayName: User {n}\n\
             mail: {}\nemployeeType: everyone\nemployeeType: {kind}\nuserPassword: pw{n}\n\n",
            dn(n),
            mail(n)
        ));
    }
    ldif.push_str("dn: ou=empty,dc=example,dc=org\nobjectClass: organizationalUnit\nou: empty\n\n");
    ldif
}

fn settings(slapd: &Slapd) -> serde_json::Value {
    json!({
        "hosts": ["127.0.0.1"],
        "port": slapd.ldap_port,
        "security": "plain",
        "bind_dn": ADMIN_DN,
        "base_dn": "ou=people,dc=example,dc=org",
        "template_attribute": "employeeType",
        "import_users": true,
        "periodic_sync": true,
        "default_template": "staff",
        "deprovision": "deactivate",
        "deprovision_threshold_percent": 10,
    })
}

async fn prepare(store: &Store, slapd: &Slapd) {
    let actor = Actor::cli();
    let mut domain = NewDomain::new(DomainName::parse("example.org").unwrap());
    domain.max_mailboxes = 0;
    domain.total_quota_mib = 0;
    store.create_domain(&actor, domain).await.unwrap();
    for (name, quota) in [("staff", 1024), ("it", 2048)] {
        let template = NewTemplate {
            name: name.into(),
            quota_mib: quota,
            protocols: ProtocolSet::ALL,
            active: true,
            attributes: json!({}),
        };
        store.create_template(&actor, template).await.unwrap();
    }
    let provider = NewIdentityProvider {
        name: "corp".into(),
        kind: IdentityProviderKind::Ldap,
        settings: settings(slapd),
        secrets: BTreeMap::from([(LDAP_BIND_PASSWORD.to_string(), Secret::new("adminpw"))]),
    };
    store.create_identity_provider(&actor, provider).await.unwrap();
    let mappings = [("staff".to_string(), "staff".to_string()), ("it".to_string(), "it".to_string())];
    store.set_attribute_mappings(&actor, "corp", &mappings).await.unwrap();
}

async fn admin_connection(slapd: &Slapd) -> ldap3::Ldap {
    let (conn, mut ldap) = LdapConnAsync::new(&format!("ldap://127.0.0.1:{}", slapd.ldap_port)).await.unwrap();
    ldap3::drive!(conn);
    ldap.simple_bind(ADMIN_DN, "adminpw").await.unwrap().success().unwrap();
    ldap
}

async fn edit_settings(store: &Store, change: impl FnOnce(&mut serde_json::Value)) {
    let mut settings = store.identity_provider("corp").await.unwrap().unwrap().settings;
    change(&mut settings);
    let changes = IdentityProviderChanges { settings: Some(settings), ..Default::default() };
    store.update_identity_provider(&Actor::cli(), "corp", changes).await.unwrap();
}

fn address(text: &str) -> MailboxAddress {
    MailboxAddress::parse(text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_entries_import_update_and_deprovision() {
    const COUNT: usize = 10_000;
    let Some(slapd) = Slapd::start(&people(COUNT)) else { return };
    let database = TestDatabase::create(Engine::Sqlite).await.unwrap();
    let store = Store::open(database.url()).await.unwrap();
    prepare(&store, &slapd).await;
    let registry = SourceRegistry::new(store.clone());

    // A dry run changes nothing and says what would happen.
    let dry = registry.sync("corp", true, &()).await.unwrap();
    assert_eq!((dry.entries, dry.created), (COUNT, COUNT));
    assert!(store.list_mailboxes(None).await.unwrap().is_empty());

    let started = Instant::now();
    let report = registry.sync("corp", false, &()).await.unwrap();
    let import = started.elapsed();
    eprintln!("IMPORT of {COUNT} entries: {:.2} s ({})", import.as_secs_f64(), report.summary());
    assert_eq!((report.entries, report.created, report.skipped), (COUNT, COUNT, 0), "{report:?}");
    let mailboxes = store.list_mailboxes(None).await.unwrap();
    assert_eq!(mailboxes.len(), COUNT);
    let u1 = mailboxes.iter().find(|m| m.address == mail(1)).unwrap();
    assert_eq!((u1.template.as_deref(), u1.quota_mib, u1.auth_source.as_str()), (Some("it"), 2048, "corp"));
    assert_eq!(u1.display_name, "User 1");
    assert_eq!(u1.external_id.as_deref(), Some(dn(1).as_str()));

    // Nothing changed at the source: nothing to do.
    let again = registry.sync("corp", false, &()).await.unwrap();
    assert_eq!((again.created, again.updated, again.deactivated, again.unchanged), (0, 0, 0, COUNT));

    // 100 staff members move to IT: exactly those are updated, with the new template's quota.
    let mut ldap = admin_connection(&slapd).await;
    for n in (0..200).step_by(2) {
        let mods = vec![Mod::Replace("employeeType", ["everyone", "it"].into())];
        ldap.modify(&dn(n), mods).await.unwrap().success().unwrap();
    }
    let started = Instant::now();
    let moved = registry.sync("corp", false, &()).await.unwrap();
    eprintln!("RESYNC with 100 changes: {:.2} s ({})", started.elapsed().as_secs_f64(), moved.summary());
    assert_eq!((moved.updated, moved.unchanged), (100, COUNT - 100), "{moved:?}");
    let u0 = store.mailbox(&address(&mail(0))).await.unwrap();
    assert_eq!((u0.template.as_deref(), u0.quota_mib), (Some("it"), 2048));

    // An admin deactivates one mailbox; ten entries are deleted at the source.
    let held = address(&mail(9_999));
    let changes = MailboxChanges { active: Some(false), ..Default::default() };
    store.update_mailbox(&Actor::cli(), &held, changes).await.unwrap();
    for n in 5_000..5_010 {
        ldap.delete(&dn(n)).await.unwrap().success().unwrap();
    }
    let gone = registry.sync("corp", false, &()).await.unwrap();
    assert_eq!((gone.deactivated, gone.updated), (10, 0), "{gone:?}");
    let deactivated = store.mailbox(&address(&mail(5_000))).await.unwrap();
    assert!(!deactivated.active);
    assert_eq!(deactivated.attributes[DEPROVISIONED_BY], json!("corp"));
    assert!(!store.mailbox(&held).await.unwrap().active, "the admin's decision stands");

    // One comes back: the sync's own deactivation is undone, the admin's is not.
    let returning = mail(5_000);
    let attrs = vec![
        ("objectClass", ["inetOrgPerson"].into()),
        ("uid", ["u05000"].into()),
        ("cn", ["User 5000"].into()),
        ("sn", ["5000"].into()),
        ("mail", [returning.as_str()].into()),
        ("employeeType", ["staff"].into()),
    ];
    ldap.add(&dn(5_000), attrs).await.unwrap().success().unwrap();
    let returned = registry.sync("corp", false, &()).await.unwrap();
    assert_eq!(returned.updated, 1, "{returned:?}");
    let revived = store.mailbox(&address(&mail(5_000))).await.unwrap();
    assert!(revived.active);
    assert!(revived.attributes.get(DEPROVISIONED_BY).is_none());
    assert!(!store.mailbox(&held).await.unwrap().active);

    // A base that holds no users: refused, nothing changed, the refusal is in the job log.
    edit_settings(&store, |s| s["base_dn"] = json!("ou=empty,dc=example,dc=org")).await;
    let err = registry.sync("corp", false, &()).await.unwrap_err();
    assert!(matches!(err, Error::Refused(_)), "{err}");
    assert!(err.to_string().contains("no entries"), "{err}");
    let active = store.list_mailboxes(None).await.unwrap().iter().filter(|m| m.active).count();
    assert_eq!(active, COUNT - 10, "nothing was deactivated");
    let runs = store.job_log(&LogFilter { subject: Some("corp".into()), ..Default::default() }).await.unwrap();
    assert_eq!(runs[0].status, "refused");
    assert!(runs[0].summary["error"].as_str().unwrap().contains("no entries"));
    let first_real = runs.iter().rev().find(|r| r.job == SYNC_JOB).unwrap();
    assert_eq!((first_real.status.as_str(), &first_real.summary["created"]), ("ok", &json!(COUNT)));
    assert!(runs.iter().any(|r| r.job == "sync-dry-run"));

    // Another process holds the lease: this one does not start a second run.
    edit_settings(&store, |s| s["base_dn"] = json!("ou=people,dc=example,dc=org")).await;
    assert!(store.acquire_lease("sync:corp", "other-node:1", 60).await.unwrap());
    let err = registry.sync("corp", false, &()).await.unwrap_err();
    assert!(matches!(err, Error::AlreadyRunning(_)) && err.to_string().contains("already running"), "{err}");
    store.release_lease("sync:corp", "other-node:1").await.unwrap();

    store.close().await;
    database.drop_database().await;
}

/// The smaller cases, on every database engine: template edits, the share threshold, disabled entries,
/// entries whose domain is missing, and which periodic runs are due.
async fn thresholds_disabled_entries_and_due_runs(store: Store) {
    let Some(slapd) = Slapd::start(&people(20)) else { return };
    prepare(&store, &slapd).await;
    // Disabled entries are marked with a description; someone is in a domain Gatehouse does not host.
    edit_settings(&store, |s| {
        s["disabled_filter"] = json!("(description=disabled)");
        s["periodic_sync"] = json!(true);
    })
    .await;
    let mut ldap = admin_connection(&slapd).await;
    let attrs = vec![
        ("objectClass", ["inetOrgPerson"].into()),
        ("uid", ["stranger"].into()),
        ("cn", ["Stranger"].into()),
        ("sn", ["S"].into()),
        ("mail", ["stranger@elsewhere.test"].into()),
    ];
    ldap.add("uid=stranger,ou=people,dc=example,dc=org", attrs).await.unwrap().success().unwrap();
    let registry = SourceRegistry::new(store.clone());
    assert_eq!(registry.run_due_syncs().await.unwrap(), vec!["corp"], "never ran: due");
    assert!(registry.run_due_syncs().await.unwrap().is_empty(), "ran just now: not due");
    let mailboxes = store.list_mailboxes(None).await.unwrap();
    assert_eq!(mailboxes.len(), 20);
    let runs = store.job_log(&LogFilter::default()).await.unwrap();
    assert_eq!(runs[0].summary["skipped"], json!(1), "{:?}", runs[0].summary);
    let reason = runs[0].summary["skipped_examples"][0]["reason"].as_str().unwrap().to_string();
    assert!(reason.contains("elsewhere.test"), "{reason}");

    // A template edit reaches every mailbox made from it.
    let changes = TemplateChanges { quota_mib: Some(4096), ..Default::default() };
    store.update_template(&Actor::cli(), "it", changes).await.unwrap();
    let edited = registry.sync("corp", false, &()).await.unwrap();
    assert_eq!(edited.updated, 10, "{edited:?}");
    assert_eq!(store.mailbox(&address(&mail(3))).await.unwrap().quota_mib, 4096);

    // A login brings the mailbox up to date at once (u2 moves from staff to IT); it never activates one.
    let mods = vec![Mod::Replace("employeeType", ["it"].into()), Mod::Replace("displayName", ["Two"].into())];
    ldap.modify(&dn(2), mods).await.unwrap().success().unwrap();
    assert_eq!(
        registry.authenticate("corp", &mail(2), &Credentials::password(b"pw2")).await.unwrap(),
        ExternalCheck::Valid
    );
    let u2 = store.mailbox(&address(&mail(2))).await.unwrap();
    assert_eq!((u2.template.as_deref(), u2.quota_mib, u2.display_name.as_str()), (Some("it"), 4096, "Two"));
    let changes = MailboxChanges { active: Some(false), ..Default::default() };
    store.update_mailbox(&Actor::cli(), &address(&mail(6)), changes).await.unwrap();
    assert_eq!(
        registry.authenticate("corp", &mail(6), &Credentials::password(b"pw6")).await.unwrap(),
        ExternalCheck::Valid
    );
    assert!(!store.mailbox(&address(&mail(6))).await.unwrap().active, "a login never re-activates");

    // Disabled at the source: deactivated like a deleted entry, and no longer able to log in.
    let mods = vec![Mod::Add("description", ["disabled"].into())];
    ldap.modify(&dn(4), mods).await.unwrap().success().unwrap();
    let disabled = registry.sync("corp", false, &()).await.unwrap();
    assert_eq!(disabled.deactivated, 1, "{disabled:?}");
    assert!(!store.mailbox(&address(&mail(4))).await.unwrap().active);
    assert_eq!(
        registry.authenticate("corp", &mail(4), &Credentials::password(b"pw4")).await.unwrap(),
        ExternalCheck::Unknown
    );

    // Three more disappear: 3 of 20 is above a 10 % threshold (2): refused, nothing changed.
    for n in 10..13 {
        ldap.delete(&dn(n)).await.unwrap().success().unwrap();
    }
    let err = registry.sync("corp", false, &()).await.unwrap_err();
    assert!(err.to_string().contains("would deactivate 3 of the 20"), "{err}");
    assert!(store.mailbox(&address(&mail(10))).await.unwrap().active);
    // With the `ignore` policy they are counted and left alone.
    edit_settings(&store, |s| s["deprovision"] = json!("ignore")).await;
    let ignored = registry.sync("corp", false, &()).await.unwrap();
    assert_eq!((ignored.deactivated, ignored.missing_ignored), (0, 3), "{ignored:?}");
}

gatehouse_testkit::on_every_engine!(thresholds_disabled_entries_and_due_runs);
