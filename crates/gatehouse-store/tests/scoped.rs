//! The access-control layer: one store, seen by an administrator, a domain administrator, a domain-limited
//! read-write API key and a read-only API key, on SQLite, PostgreSQL and MariaDB.

use gatehouse_core::{DomainName, Error, MailboxAddress};
use gatehouse_store::*;

gatehouse_testkit::on_every_engine!(
    each_principal_reaches_only_its_domains,
    only_administrators_change_limits_auth_sources_and_instance_objects,
    read_only_access_changes_nothing,
    logs_are_limited_to_the_domains_within_reach,
);

fn domain(name: &str) -> DomainName {
    DomainName::parse(name).unwrap()
}

fn address(text: &str) -> MailboxAddress {
    MailboxAddress::parse(text).unwrap()
}

/// Two domains with a mailbox each, and an app password on the other domain's mailbox.
async fn two_tenants(store: &Store) -> i64 {
    let admin = store.scoped(Principal::admin("root"));
    for name in ["example.org", "other.org"] {
        admin.create_domain(NewDomain::new(domain(name))).await.unwrap();
    }
    admin.create_mailbox(NewMailbox::new(address("alice@example.org"))).await.unwrap();
    admin.create_mailbox(NewMailbox::new(address("bob@other.org"))).await.unwrap();
    let new = NewAppPassword {
        name: "phone".into(),
        protocols: "imap".parse().unwrap(),
        expires_at: None,
        secret_hash: "{SSHA256}x".into(),
    };
    admin.create_app_password(&address("bob@other.org"), new).await.unwrap().id
}

fn is_not_found(result: Result<impl std::fmt::Debug, Error>) -> bool {
    matches!(result, Err(Error::NotFound { .. }))
}

fn is_forbidden(result: Result<impl std::fmt::Debug, Error>) -> bool {
    matches!(result, Err(Error::Forbidden(_)))
}

async fn each_principal_reaches_only_its_domains(store: Store) {
    let bobs_app = two_tenants(&store).await;
    let helper = store.scoped(Principal::domain_admin("helper", &["example.org".to_string()]));
    let key = store.scoped(Principal::api_key("provisioner", &["example.org".to_string()], false));
    for scoped in [&helper, &key] {
        let names: Vec<String> = scoped.list_domains().await.unwrap().into_iter().map(|d| d.name).collect();
        assert_eq!(names, ["example.org"]);
        let mailboxes: Vec<String> =
            scoped.list_mailboxes(None).await.unwrap().into_iter().map(|m| m.address).collect();
        assert_eq!(mailboxes, ["alice@example.org"]);
        // Another domain's objects do not exist for it, just like objects that do not exist at all.
        assert!(is_not_found(scoped.domain(&domain("other.org")).await));
        assert!(is_not_found(scoped.domain(&domain("nowhere.org")).await));
        assert!(is_not_found(scoped.list_mailboxes(Some(&domain("other.org"))).await));
        assert!(is_not_found(scoped.mailbox(&address("bob@other.org")).await));
        assert!(is_not_found(scoped.list_app_passwords(&address("bob@other.org")).await));
        let changes = MailboxChanges { quota_mib: Some(1), ..MailboxChanges::default() };
        assert!(is_not_found(scoped.update_mailbox(&address("bob@other.org"), changes).await));
        assert!(is_not_found(scoped.remove_mailbox(&address("bob@other.org")).await));
        assert!(is_not_found(scoped.revoke_app_password(&address("bob@other.org"), bobs_app).await));
        // A mailbox of its own with the other's app-password id finds nothing either.
        assert!(is_not_found(scoped.revoke_app_password(&address("alice@example.org"), bobs_app).await));
        let description = DomainChanges { description: Some("mine now".into()), ..DomainChanges::default() };
        assert!(is_not_found(scoped.update_domain(&domain("other.org"), description).await));
        assert!(is_forbidden(scoped.create_mailbox(NewMailbox::new(address("mallory@other.org"))).await));
        // Within reach it works, recorded as the principal.
        let name = format!("Alice by {}", scoped.actor().name);
        let changes = MailboxChanges { display_name: Some(name.clone()), ..MailboxChanges::default() };
        assert_eq!(scoped.update_mailbox(&address("alice@example.org"), changes).await.unwrap().display_name, name);
    }
    let bob = store.mailbox(&address("bob@other.org")).await.unwrap();
    assert!(bob.active && bob.quota_mib != 1, "bob is untouched");
    assert!(store.list_app_passwords(&address("bob@other.org")).await.unwrap()[0].active);
    assert!(store.mailbox(&address("mallory@other.org")).await.is_err());
    let alice = LogFilter { subject: Some("alice@example.org".into()), ..LogFilter::default() };
    let actors: Vec<(String, String)> =
        store.audit_log(&alice).await.unwrap().into_iter().map(|e| (e.actor, e.actor_role)).take(2).collect();
    assert_eq!(
        actors,
        [("api-key:provisioner".to_string(), "api".to_string()), ("helper".to_string(), "domain_admin".to_string())]
    );
}

async fn only_administrators_change_limits_auth_sources_and_instance_objects(store: Store) {
    two_tenants(&store).await;
    let helper = store.scoped(Principal::domain_admin("helper", &["example.org".to_string()]));
    let key = store.scoped(Principal::api_key("provisioner", &["example.org".to_string()], false));
    let limits = || DomainChanges { max_mailboxes: Some(5), ..DomainChanges::default() };
    assert!(is_forbidden(helper.update_domain(&domain("example.org"), limits()).await));
    assert!(is_forbidden(helper.create_domain(NewDomain::new(domain("new.example"))).await));
    assert!(is_forbidden(helper.remove_domain(&domain("example.org")).await));
    let mut sourced = NewMailbox::new(address("carol@example.org"));
    sourced.auth_source = Some("corp".into());
    assert!(is_forbidden(helper.create_mailbox(sourced).await));
    let templated = MailboxChanges { template: Some("staff".into()), ..MailboxChanges::default() };
    assert!(is_forbidden(helper.update_mailbox(&address("alice@example.org"), templated).await));
    assert!(is_forbidden(helper.instance()));
    assert!(is_forbidden(key.instance()), "an API key reaches no instance-wide objects");
    // What a domain administrator may change: the description, and mailboxes within the domain's limits.
    let description = DomainChanges { description: Some("ours".into()), ..DomainChanges::default() };
    assert_eq!(helper.update_domain(&domain("example.org"), description).await.unwrap().description, "ours");
    helper.create_mailbox(NewMailbox::new(address("carol@example.org"))).await.unwrap();
    // A read-write key manages its domains: limits, and new domains on its list only.
    assert_eq!(key.update_domain(&domain("example.org"), limits()).await.unwrap().max_mailboxes, 5);
    assert!(is_forbidden(key.create_domain(NewDomain::new(domain("new.example"))).await));
    assert!(store.scoped(Principal::admin("root")).instance().is_ok());
    assert!(store.scoped(Principal::cli()).instance().is_ok());
}

async fn read_only_access_changes_nothing(store: Store) {
    let bobs_app = two_tenants(&store).await;
    let reader = store.scoped(Principal::api_key("monitor", &[], true));
    assert_eq!(reader.list_domains().await.unwrap().len(), 2);
    assert_eq!(reader.list_app_passwords(&address("bob@other.org")).await.unwrap().len(), 1);
    let before = store.audit_log(&LogFilter::default()).await.unwrap().len();
    assert!(is_forbidden(reader.create_domain(NewDomain::new(domain("new.example"))).await));
    assert!(is_forbidden(reader.create_mailbox(NewMailbox::new(address("x@example.org"))).await));
    let off = MailboxChanges { active: Some(false), ..MailboxChanges::default() };
    assert!(is_forbidden(reader.update_mailbox(&address("bob@other.org"), off).await));
    assert!(is_forbidden(reader.remove_mailbox(&address("bob@other.org")).await));
    assert!(is_forbidden(reader.revoke_app_password(&address("bob@other.org"), bobs_app).await));
    let description = DomainChanges { description: Some("x".into()), ..DomainChanges::default() };
    assert!(is_forbidden(reader.update_domain(&domain("other.org"), description).await));
    assert_eq!(store.audit_log(&LogFilter::default()).await.unwrap().len(), before, "nothing was written");
}

async fn logs_are_limited_to_the_domains_within_reach(store: Store) {
    two_tenants(&store).await;
    for user in ["alice@example.org", "bob@other.org"] {
        let entry = NewAuthLogEntry {
            service: "imap".into(),
            username: user.into(),
            master_user: None,
            remote_ip: None,
            result: AuthResult::Success,
            reason: "test".into(),
            app_password_id: None,
        };
        store.record_auth(entry).await.unwrap();
    }
    let job = store.start_job("sync", Some("corp")).await.unwrap();
    store.finish_job(job, "ok", serde_json::json!({})).await.unwrap();

    let helper = store.scoped(Principal::domain_admin("helper", &["example.org".to_string()]));
    let users: Vec<String> =
        helper.auth_log(&LogFilter::default()).await.unwrap().into_iter().map(|e| e.username).collect();
    assert_eq!(users, ["alice@example.org"]);
    let asked_for_other = LogFilter { domains: Some(vec![domain("other.org")]), ..LogFilter::default() };
    assert!(helper.auth_log(&asked_for_other).await.unwrap().is_empty(), "a filter cannot widen the reach");
    let bobs = LogFilter { subject: Some("bob@other.org".into()), ..LogFilter::default() };
    assert!(helper.auth_log(&bobs).await.unwrap().is_empty());
    let targets: Vec<String> =
        helper.audit_log(&LogFilter::default()).await.unwrap().into_iter().map(|e| e.target).collect();
    assert!(!targets.is_empty() && targets.iter().all(|t| t.ends_with("example.org")), "{targets:?}");
    assert!(helper.job_log(&LogFilter::default()).await.unwrap().is_empty(), "syncs concern every domain");

    let admin = store.scoped(Principal::admin("root"));
    assert_eq!(admin.auth_log(&LogFilter::default()).await.unwrap().len(), 2);
    assert_eq!(admin.job_log(&LogFilter::default()).await.unwrap().len(), 1);
    let unlimited_reader = store.scoped(Principal::api_key("monitor", &[], true));
    assert_eq!(unlimited_reader.job_log(&LogFilter::default()).await.unwrap().len(), 1);
}
