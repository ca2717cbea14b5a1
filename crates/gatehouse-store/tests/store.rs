//! The store's test suite, run unchanged against SQLite, PostgreSQL and MariaDB, each test in its own fresh
//! database. Without `TEST_POSTGRES_URL` / `TEST_MYSQL_URL` the server variants skip on a developer machine and
//! fail in CI.

use gatehouse_core::{DomainName, Error, MailboxAddress, ProtocolSet, Secret, Service};
use gatehouse_store::*;
use gatehouse_testkit::{Engine, TestDatabase};
use serde_json::json;
use std::collections::BTreeMap;

gatehouse_testkit::on_every_engine!(
    migrations_are_recorded_and_reapplying_is_a_no_op,
    domains_are_unique_and_stored_in_ascii,
    mailbox_count_limit_is_enforced_and_nothing_is_written_on_refusal,
    quotas_are_checked_against_per_mailbox_and_total_limits,
    mailboxes_need_an_existing_active_domain_and_a_unique_address,
    templates_fill_unset_settings_and_leave_their_hash,
    switching_auth_source_keeps_the_local_hash,
    domain_limits_cannot_drop_below_current_usage,
    domains_with_mailboxes_cannot_be_removed,
    administrators_and_domain_administrators,
    master_users_have_three_scopes,
    identity_provider_secrets_are_never_listed,
    identity_provider_secrets_are_sealed_at_rest,
    logs_record_and_filter,
    large_auth_log_batches_keep_every_row_in_order,
    concurrent_additions_never_exceed_the_domain_limit,
    login_lookups_and_revisions_for_the_engine,
    job_leases_are_exclusive_until_released_or_expired,
    deprovisioning_is_recorded_and_cleared_by_an_admin,
    web_sessions_end_with_the_account_changes_that_matter,
    batches_of_mailboxes_keep_what_the_rules_allow,
    mailbox_lists_are_searched_sorted_and_paged_in_the_database,
    auth_activity_is_counted_per_bucket_and_top_failures,
    log_pages_are_windows_counted_up_to_a_cap,
    domain_lists_are_searched_and_paged_with_the_usage_of_each,
    the_smaller_lists_are_searched_and_paged_too,
);

fn cli() -> Actor {
    Actor { name: "cli:test".into(), role: ActorRole::Cli }
}

fn domain(name: &str) -> DomainName {
    DomainName::parse(name).unwrap()
}

fn address(text: &str) -> MailboxAddress {
    MailboxAddress::parse(text).unwrap()
}

async fn add_domain(store: &Store, name: &str, configure: impl FnOnce(&mut NewDomain)) -> Domain {
    let mut new = NewDomain::new(domain(name));
    configure(&mut new);
    store.create_domain(&cli(), new).await.unwrap()
}

async fn add_mailbox(store: &Store, text: &str, configure: impl FnOnce(&mut NewMailbox)) -> Result<Mailbox, Error> {
    let mut new = NewMailbox::new(address(text));
    configure(&mut new);
    store.create_mailbox(&cli(), new).await
}

async fn audit_count(store: &Store) -> usize {
    store.audit_log(&LogFilter { limit: Some(10_000), ..Default::default() }).await.unwrap().len()
}

async fn migrations_are_recorded_and_reapplying_is_a_no_op(store: Store) {
    let applied = store.applied_migrations().await.unwrap();
    assert_eq!(
        applied,
        vec![
            "m20261123_000001_initial_schema",
            "m20261123_000002_login_state",
            "m20261123_000003_job_leases",
            "m20261123_000004_web",
            "m20261204_000005_oidc_sign_in",
            "m20261204_000006_provider_admins",
            "m20261207_000007_scim",
            "m20261207_000008_login_changes",
            "m20261207_000009_legacy_app_passwords",
            "m20261207_000010_passkeys",
            "m20261208_000011_admin_lists"
        ]
    );
    store.ping().await.unwrap();
    add_domain(&store, "example.org", |_| {}).await;
    // Opening the same database again applies nothing and keeps the data.
    assert_eq!(store.list_domains().await.unwrap().len(), 1);
}

async fn domains_are_unique_and_stored_in_ascii(store: Store) {
    let created = add_domain(&store, "Bücher.Example", |d| d.description = "books".into()).await;
    assert_eq!(created.name, "xn--bcher-kva.example");
    assert_eq!(created.unicode_name, "bücher.example");
    let again = store.create_domain(&cli(), NewDomain::new(domain("bücher.example"))).await.unwrap_err();
    assert!(matches!(again, Error::AlreadyExists { .. }), "{again}");
    let listed = store.list_domains().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].description, "books");

    let bad = NewDomain { default_quota_mib: 500, max_quota_mib: 100, ..NewDomain::new(domain("bad.example")) };
    let err = store.create_domain(&cli(), bad).await.unwrap_err();
    assert!(err.to_string().contains("default quota"), "{err}");
}

async fn mailbox_count_limit_is_enforced_and_nothing_is_written_on_refusal(store: Store) {
    add_domain(&store, "example.org", |d| d.max_mailboxes = 2).await;
    add_mailbox(&store, "a@example.org", |_| {}).await.unwrap();
    add_mailbox(&store, "b@example.org", |_| {}).await.unwrap();
    let before = audit_count(&store).await;
    let err = add_mailbox(&store, "c@example.org", |_| {}).await.unwrap_err();
    assert!(matches!(err, Error::Refused(_)), "{err:?}");
    assert!(err.to_string().contains("already has 2 of its 2 allowed mailboxes"), "{err}");
    assert_eq!(store.list_mailboxes(None).await.unwrap().len(), 2);
    assert_eq!(audit_count(&store).await, before, "a refused change writes no audit entry");
    let usage = store.domain(&domain("example.org")).await.unwrap();
    assert_eq!(usage.mailboxes, 2);
}

async fn quotas_are_checked_against_per_mailbox_and_total_limits(store: Store) {
    add_domain(&store, "example.org", |d| {
        d.max_quota_mib = 1000;
        d.total_quota_mib = 1500;
        d.default_quota_mib = 500;
    })
    .await;
    let first = add_mailbox(&store, "a@example.org", |_| {}).await.unwrap();
    assert_eq!(first.quota_mib, 500, "the domain default applies");
    let err = add_mailbox(&store, "b@example.org", |m| m.quota_mib = Some(1001)).await.unwrap_err();
    assert!(err.to_string().contains("exceeds domain example.org's limit of 1000 MiB"), "{err}");
    let err = add_mailbox(&store, "b@example.org", |m| m.quota_mib = Some(0)).await.unwrap_err();
    assert!(err.to_string().contains("unlimited"), "{err}");
    add_mailbox(&store, "b@example.org", |m| m.quota_mib = Some(1000)).await.unwrap();
    let err = add_mailbox(&store, "c@example.org", |m| m.quota_mib = Some(1)).await.unwrap_err();
    assert!(err.to_string().contains("total quota"), "{err}");
    // Raising a quota is checked too, leaving the mailbox's own old quota out of the sum.
    let changes = MailboxChanges { quota_mib: Some(600), ..Default::default() };
    let err = store.update_mailbox(&cli(), &address("a@example.org"), changes).await.unwrap_err();
    assert!(err.to_string().contains("total quota"), "{err}");
    let changes = MailboxChanges { quota_mib: Some(400), ..Default::default() };
    assert_eq!(store.update_mailbox(&cli(), &address("a@example.org"), changes).await.unwrap().quota_mib, 400);
    assert_eq!(store.domain(&domain("example.org")).await.unwrap().quota_used_mib, 1400);
}

async fn mailboxes_need_an_existing_active_domain_and_a_unique_address(store: Store) {
    let err = add_mailbox(&store, "a@missing.example", |_| {}).await.unwrap_err();
    assert_eq!(err.to_string(), "domain 'missing.example' does not exist");
    add_domain(&store, "off.example", |d| d.active = false).await;
    let err = add_mailbox(&store, "a@off.example", |_| {}).await.unwrap_err();
    assert!(err.to_string().contains("inactive"), "{err}");
    add_domain(&store, "example.org", |_| {}).await;
    add_mailbox(&store, "Alice@Example.org", |m| m.password_hash = Some("{PLAIN}x".into())).await.unwrap();
    let err = add_mailbox(&store, "alice@example.org", |_| {}).await.unwrap_err();
    assert_eq!(err.to_string(), "mailbox 'alice@example.org' already exists");
    let listed = store.list_mailboxes(Some(&domain("example.org"))).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].address, "alice@example.org");
    assert_eq!(listed[0].display_name, "alice");
    assert!(listed[0].has_local_password);
    assert_eq!(listed[0].protocols, ProtocolSet::ALL);
    store.remove_mailbox(&cli(), &address("alice@example.org")).await.unwrap();
    assert!(store.list_mailboxes(None).await.unwrap().is_empty());
    let err = store.remove_mailbox(&cli(), &address("alice@example.org")).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }));
}

async fn templates_fill_unset_settings_and_leave_their_hash(store: Store) {
    add_domain(&store, "example.org", |_| {}).await;
    let template = store
        .create_template(
            &cli(),
            NewTemplate {
                name: "staff".into(),
                quota_mib: 2048,
                protocols: "imap,smtp,sogo".parse().unwrap(),
                active: true,
                attributes: json!({ "tls_enforce_in": true }),
            },
        )
        .await
        .unwrap();
    assert_eq!(template.protocols.to_string(), "imap,smtp,sogo");
    let err = store
        .create_template(
            &cli(),
            NewTemplate {
                name: "staff".into(),
                quota_mib: 0,
                protocols: ProtocolSet::ALL,
                active: true,
                attributes: json!({}),
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }));

    let from_template = add_mailbox(&store, "a@example.org", |m| m.template = Some("staff".into())).await.unwrap();
    assert_eq!(from_template.quota_mib, 2048);
    assert!(from_template.protocols.contains(Service::Sogo) && !from_template.protocols.contains(Service::Pop3));
    assert_eq!(from_template.template.as_deref(), Some("staff"));
    let hash = from_template.attributes["template_hash"].as_str().unwrap().to_string();
    assert_eq!(hash.len(), 64);
    assert_eq!(from_template.attributes["tls_enforce_in"], json!(true));

    let overridden = add_mailbox(&store, "b@example.org", |m| {
        m.template = Some("staff".into());
        m.quota_mib = Some(10);
        m.protocols = Some("imap".parse().unwrap());
    })
    .await
    .unwrap();
    assert_eq!((overridden.quota_mib, overridden.protocols.to_string().as_str()), (10, "imap"));

    let err = add_mailbox(&store, "c@example.org", |m| m.template = Some("nope".into())).await.unwrap_err();
    assert_eq!(err.to_string(), "template 'nope' does not exist");

    let changed = store
        .update_template(&cli(), "staff", TemplateChanges { quota_mib: Some(4096), ..Default::default() })
        .await
        .unwrap();
    assert_eq!((changed.quota_mib, changed.mailboxes), (4096, 2));
    // Re-applying the changed template gives the mailbox the new settings and a new hash.
    let reapplied = store
        .update_mailbox(
            &cli(),
            &address("a@example.org"),
            MailboxChanges { template: Some("staff".into()), ..Default::default() },
        )
        .await
        .unwrap();
    assert_eq!(reapplied.quota_mib, 4096);
    assert_ne!(reapplied.attributes["template_hash"].as_str().unwrap(), hash);

    store.remove_template(&cli(), "staff").await.unwrap();
    let kept = store.mailbox(&address("a@example.org")).await.unwrap();
    assert_eq!((kept.template, kept.quota_mib), (None, 4096), "mailboxes keep their settings");
}

async fn switching_auth_source_keeps_the_local_hash(store: Store) {
    add_domain(&store, "example.org", |_| {}).await;
    let hash = "{BLF-CRYPT}$2y$05$abcdefghijklmnopqrstuu5Q3Ykn2E1cOxVfZ5fiTbMj8sD2k0Zqm".to_string();
    add_mailbox(&store, "a@example.org", |m| m.password_hash = Some(hash.clone())).await.unwrap();
    let err = store
        .update_mailbox(
            &cli(),
            &address("a@example.org"),
            MailboxChanges { auth_source: Some("corp".into()), ..Default::default() },
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("unknown auth source 'corp'"), "{err}");

    store
        .create_identity_provider(
            &cli(),
            NewIdentityProvider {
                name: "corp".into(),
                kind: IdentityProviderKind::Ldap,
                settings: json!({ "hosts": ["ldap.example.org"] }),
                secrets: BTreeMap::new(),
            },
        )
        .await
        .unwrap();
    let moved = store
        .update_mailbox(
            &cli(),
            &address("a@example.org"),
            MailboxChanges { auth_source: Some("corp".into()), ..Default::default() },
        )
        .await
        .unwrap();
    assert_eq!(moved.auth_source, "corp");
    assert!(moved.has_local_password);
    let back = store
        .update_mailbox(
            &cli(),
            &address("a@example.org"),
            MailboxChanges { auth_source: Some(LOCAL_AUTH_SOURCE.into()), ..Default::default() },
        )
        .await
        .unwrap();
    assert_eq!(back.auth_source, "local");
    assert_eq!(store.mailbox_password_hash(&address("a@example.org")).await.unwrap(), Some(hash));
    assert!(!serde_json::to_string(&back).unwrap().contains("$2y$"), "records never carry the hash");
}

async fn domain_limits_cannot_drop_below_current_usage(store: Store) {
    add_domain(&store, "example.org", |_| {}).await;
    for name in ["a", "b", "c"] {
        add_mailbox(&store, &format!("{name}@example.org"), |m| m.quota_mib = Some(100)).await.unwrap();
    }
    let name = domain("example.org");
    let err = store
        .update_domain(&cli(), &name, DomainChanges { max_mailboxes: Some(2), ..Default::default() })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("has 3 mailboxes"), "{err}");
    let err = store
        .update_domain(&cli(), &name, DomainChanges { total_quota_mib: Some(250), ..Default::default() })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("already use 300 MiB"), "{err}");
    let err = store
        .update_domain(&cli(), &name, DomainChanges { max_quota_mib: Some(50), ..Default::default() })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("above the new limit"), "{err}");
    let updated = store
        .update_domain(
            &cli(),
            &name,
            DomainChanges {
                max_mailboxes: Some(3),
                total_quota_mib: Some(300),
                active: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((updated.max_mailboxes, updated.total_quota_mib, updated.active), (3, 300, false));
}

async fn domains_with_mailboxes_cannot_be_removed(store: Store) {
    add_domain(&store, "example.org", |_| {}).await;
    add_mailbox(&store, "a@example.org", |_| {}).await.unwrap();
    let err = store.remove_domain(&cli(), &domain("example.org")).await.unwrap_err();
    assert!(err.to_string().contains("still has 1 mailbox"), "{err}");
    store.remove_mailbox(&cli(), &address("a@example.org")).await.unwrap();
    store.remove_domain(&cli(), &domain("example.org")).await.unwrap();
    assert!(store.list_domains().await.unwrap().is_empty());
}

async fn administrators_and_domain_administrators(store: Store) {
    assert!(store.bootstrap_admin("admin", "{PLAIN}x".into()).await.unwrap());
    assert!(!store.bootstrap_admin("admin", "{PLAIN}y".into()).await.unwrap(), "bootstrap runs once");
    let err = store.remove_admin(&cli(), "admin", AdminRole::Admin).await.unwrap_err();
    assert!(err.to_string().contains("last active administrator"), "{err}");
    store.create_admin(&cli(), "Second", "{PLAIN}x".into()).await.unwrap();
    let err = store.create_admin(&cli(), "second", "{PLAIN}x".into()).await.unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }));
    store.remove_admin(&cli(), "admin", AdminRole::Admin).await.unwrap();

    add_domain(&store, "a.example", |_| {}).await;
    add_domain(&store, "b.example", |_| {}).await;
    let err = store
        .create_domain_admin(
            &cli(),
            NewDomainAdmin {
                username: "da".into(),
                password_hash: "{PLAIN}x".into(),
                domains: vec![domain("missing.example")],
                acl: vec!["login_as".into()],
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "domain 'missing.example' does not exist");
    let err = store
        .create_domain_admin(
            &cli(),
            NewDomainAdmin {
                username: "da".into(),
                password_hash: "{PLAIN}x".into(),
                domains: vec![domain("a.example")],
                acl: vec!["delete_everything".into()],
            },
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("unknown permission"), "{err}");
    let err = store
        .create_domain_admin(
            &cli(),
            NewDomainAdmin {
                username: "second".into(),
                password_hash: "{PLAIN}x".into(),
                domains: vec![],
                acl: vec![],
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "one namespace for both roles");
    let created = store
        .create_domain_admin(
            &cli(),
            NewDomainAdmin {
                username: "da".into(),
                password_hash: "{PLAIN}x".into(),
                domains: vec![domain("a.example")],
                acl: vec!["login_as".into()],
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (created.domains.clone(), created.acl.clone()),
        (vec!["a.example".to_string()], vec!["login_as".to_string()])
    );
    let edited = store
        .update_domain_admin(
            &cli(),
            "da",
            DomainAdminChanges {
                domains: Some(vec![domain("a.example"), domain("b.example")]),
                acl: Some(vec![]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(edited.domains, vec!["a.example".to_string(), "b.example".to_string()]);
    assert!(edited.acl.is_empty());
    let listed = store.list_admins(AdminRole::DomainAdmin).await.unwrap();
    assert_eq!(listed, vec![edited.clone()]);
    let found = store.search_admins(AdminRole::DomainAdmin, Some("DA"), Window::default()).await.unwrap();
    assert_eq!((found.total, found.items), (1, vec![edited]), "searched, with its domains");
    let none = store.search_admins(AdminRole::DomainAdmin, Some("second"), Window::default()).await.unwrap();
    assert_eq!(none.total, 0, "administrators are not domain administrators");
    assert_eq!(store.list_admins(AdminRole::Admin).await.unwrap().len(), 1);
    store.remove_admin(&cli(), "da", AdminRole::DomainAdmin).await.unwrap();
    assert!(store.list_admins(AdminRole::DomainAdmin).await.unwrap().is_empty());
}

async fn master_users_have_three_scopes(store: Store) {
    add_domain(&store, "dovecot.example", |_| {}).await;
    add_domain(&store, "other.example", |_| {}).await;
    let global = store
        .create_master_user(
            &cli(),
            NewMasterUser {
                username: "spamtrainer".into(),
                password_hash: "{PLAIN}x".into(),
                scope: NewMasterScope::Global,
            },
        )
        .await
        .unwrap();
    assert!(global.scope.allows("anything.example"));
    let err = store
        .create_master_user(
            &cli(),
            NewMasterUser { username: "owner".into(), password_hash: "{PLAIN}x".into(), scope: NewMasterScope::Domain },
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("must be an address"), "{err}");
    let own = store
        .create_master_user(
            &cli(),
            NewMasterUser {
                username: "master@dovecot.example".into(),
                password_hash: "{PLAIN}x".into(),
                scope: NewMasterScope::Domain,
            },
        )
        .await
        .unwrap();
    assert_eq!(own.scope, MasterScope::Domain("dovecot.example".into()));
    assert!(own.scope.allows("dovecot.example") && !own.scope.allows("other.example"));
    let err = store
        .create_master_user(
            &cli(),
            NewMasterUser {
                username: "reseller".into(),
                password_hash: "{PLAIN}x".into(),
                scope: NewMasterScope::Owned(vec![]),
            },
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("at least one domain"), "{err}");
    let owned = store
        .create_master_user(
            &cli(),
            NewMasterUser {
                username: "reseller".into(),
                password_hash: "{PLAIN}x".into(),
                scope: NewMasterScope::Owned(vec![domain("other.example"), domain("dovecot.example")]),
            },
        )
        .await
        .unwrap();
    assert!(owned.scope.allows("other.example") && !owned.scope.allows("third.example"));
    let listed = store.list_master_users().await.unwrap();
    let names: Vec<_> = listed.iter().map(|m| (m.username.as_str(), m.scope.kind())).collect();
    assert_eq!(names, vec![("master@dovecot.example", "domain"), ("reseller", "owned"), ("spamtrainer", "global")]);
    assert_eq!(listed[1].scope, MasterScope::Owned(vec!["dovecot.example".into(), "other.example".into()]));
    store.remove_master_user(&cli(), "reseller").await.unwrap();
    assert_eq!(store.list_master_users().await.unwrap().len(), 2);
}

/// The stored value of every identity-provider secret, read past the store.
async fn raw_secret_values(store: &Store) -> Vec<String> {
    use sea_orm::{ConnectionTrait, Statement};
    let db = sea_orm::Database::connect(store.url().expose()).await.unwrap();
    let backend = db.get_database_backend();
    let rows =
        db.query_all_raw(Statement::from_string(backend, "SELECT value FROM identity_provider_secrets")).await.unwrap();
    let values = rows.iter().map(|row| row.try_get::<String>("", "value").unwrap()).collect();
    let _ = db.close().await;
    values
}

async fn identity_provider_secrets_are_sealed_at_rest(store: Store) {
    let mut secrets = BTreeMap::new();
    secrets.insert("bind_password".to_string(), Secret::new("sealed-bind-pw"));
    let new = NewIdentityProvider {
        name: "corp".into(),
        kind: "ldap".parse().unwrap(),
        settings: json!({}),
        secrets: secrets.clone(),
    };
    store.create_identity_provider(&cli(), new).await.unwrap();
    let raw = raw_secret_values(&store).await;
    assert_eq!(raw.len(), 1);
    assert!(raw[0].starts_with("sealed:v1:") && !raw[0].contains("sealed-bind-pw"), "{raw:?}");
    assert_eq!(store.identity_provider_secrets("corp").await.unwrap()["bind_password"].expose(), "sealed-bind-pw");

    // Another key (a different key file) cannot open it, and says so.
    let other =
        Store::open_with(store.url(), OpenOptions { create: false, secret_key: SecretKey::ephemeral() }).await.unwrap();
    let err = other.identity_provider_secrets("corp").await.unwrap_err();
    assert!(err.to_string().contains("cannot be opened with this secret key"), "{err}");
    other.close().await;

    // A value written in plain text by an earlier Gatehouse is sealed at the next start.
    {
        use sea_orm::{ConnectionTrait, Statement};
        let db = sea_orm::Database::connect(store.url().expose()).await.unwrap();
        let backend = db.get_database_backend();
        db.execute_raw(Statement::from_string(backend, "UPDATE identity_provider_secrets SET value = 'legacy-pw'"))
            .await
            .unwrap();
        let _ = db.close().await;
    }
    assert_eq!(store.identity_provider_secrets("corp").await.unwrap()["bind_password"].expose(), "legacy-pw");
    assert_eq!(store.seal_stored_secrets().await.unwrap(), 1);
    assert_eq!(store.seal_stored_secrets().await.unwrap(), 0);
    let raw = raw_secret_values(&store).await;
    assert!(raw[0].starts_with("sealed:v1:") && !raw[0].contains("legacy-pw"), "{raw:?}");
    assert_eq!(store.identity_provider_secrets("corp").await.unwrap()["bind_password"].expose(), "legacy-pw");
}

async fn identity_provider_secrets_are_never_listed(store: Store) {
    store
        .create_template(
            &cli(),
            NewTemplate {
                name: "staff".into(),
                quota_mib: 0,
                protocols: ProtocolSet::ALL,
                active: true,
                attributes: json!({}),
            },
        )
        .await
        .unwrap();
    let mut secrets = BTreeMap::new();
    secrets.insert("bind_password".to_string(), Secret::new("very-secret-bind-pw"));
    let created = store
        .create_identity_provider(
            &cli(),
            NewIdentityProvider {
                name: "corp-ldap".into(),
                kind: "LDAP".parse().unwrap(),
                settings: json!({ "base_dn": "dc=example,dc=org" }),
                secrets,
            },
        )
        .await
        .unwrap();
    assert_eq!(created.secret_names, vec!["bind_password".to_string()]);
    let err = store
        .create_identity_provider(
            &cli(),
            NewIdentityProvider {
                name: "local".into(),
                kind: IdentityProviderKind::Oidc,
                settings: json!({}),
                secrets: BTreeMap::new(),
            },
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("reserved"), "{err}");
    let mapped = store
        .set_attribute_mappings(&cli(), "corp-ldap", &[("cn=staff,ou=groups,dc=example,dc=org".into(), "staff".into())])
        .await
        .unwrap();
    assert_eq!(mapped.mappings[0].template, "staff");
    let err = store.set_attribute_mappings(&cli(), "corp-ldap", &[("x".into(), "missing".into())]).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }));
    let err = store.remove_template(&cli(), "staff").await.unwrap_err();
    assert!(err.to_string().contains("attribute mapping"), "{err}");

    let listed = store.list_identity_providers().await.unwrap();
    let printed = format!("{listed:?} {}", serde_json::to_string(&listed).unwrap());
    assert!(!printed.contains("very-secret-bind-pw"), "{printed}");
    let audit = serde_json::to_string(&store.audit_log(&LogFilter::default()).await.unwrap()).unwrap();
    assert!(!audit.contains("very-secret-bind-pw"), "{audit}");
    assert_eq!(
        store.identity_provider_secrets("corp-ldap").await.unwrap()["bind_password"].expose(),
        "very-secret-bind-pw"
    );

    add_domain(&store, "example.org", |_| {}).await;
    add_mailbox(&store, "a@example.org", |m| m.auth_source = Some("corp-ldap".into())).await.unwrap();
    let err = store.remove_identity_provider(&cli(), "corp-ldap").await.unwrap_err();
    assert!(err.to_string().contains("use identity provider corp-ldap"), "{err}");
    store.remove_mailbox(&cli(), &address("a@example.org")).await.unwrap();
    store.remove_identity_provider(&cli(), "corp-ldap").await.unwrap();
    assert!(store.list_identity_providers().await.unwrap().is_empty());
}

async fn logs_record_and_filter(store: Store) {
    for (user, result) in [
        ("a@example.org", AuthResult::Success),
        ("b@example.org", AuthResult::Failure),
        ("a@example.org", AuthResult::TempFail),
    ] {
        store
            .record_auth(NewAuthLogEntry {
                service: "imap".into(),
                username: user.into(),
                master_user: None,
                remote_ip: Some("192.0.2.1".into()),
                result,
                reason: "test".into(),
                app_password_id: (result == AuthResult::Success).then_some(7),
            })
            .await
            .unwrap();
    }
    let entries =
        store.auth_log(&LogFilter { subject: Some("a@example.org".into()), ..Default::default() }).await.unwrap();
    assert_eq!(entries.iter().map(|e| e.result).collect::<Vec<_>>(), vec![AuthResult::TempFail, AuthResult::Success]);
    assert!(entries[1].via_app_password && !entries[0].via_app_password);

    add_domain(&store, "example.org", |_| {}).await;
    let audit =
        store.audit_log(&LogFilter { subject: Some("example.org".into()), ..Default::default() }).await.unwrap();
    assert_eq!(
        (audit[0].action.as_str(), audit[0].actor.as_str(), audit[0].actor_role.as_str()),
        ("domain.add", "cli:test", "cli")
    );

    let job = store.start_job("sync", Some("corp")).await.unwrap();
    let running = store.job_log(&LogFilter::default()).await.unwrap();
    assert_eq!((running[0].status.as_str(), running[0].finished_at), ("running", None));
    store.finish_job(job, "ok", json!({ "created": 3 })).await.unwrap();
    let done = store.job_log(&LogFilter { subject: Some("corp".into()), ..Default::default() }).await.unwrap();
    assert_eq!(done[0].status, "ok");
    assert_eq!(done[0].summary["created"], json!(3));
    assert!(done[0].finished_at.is_some());
}

async fn large_auth_log_batches_keep_every_row_in_order(store: Store) {
    // 1 000 rows: written as several multi-row statements of different sizes, in one transaction.
    let entries: Vec<_> = (0..1000_i64)
        .map(|n| {
            let entry = NewAuthLogEntry {
                service: if n % 2 == 0 { "imap" } else { "smtp" }.into(),
                username: format!("user{n}@example.org"),
                master_user: (n % 7 == 0).then(|| "master".to_string()),
                remote_ip: (n % 3 != 0).then(|| format!("192.0.2.{}", n % 250)),
                result: if n % 5 == 0 { AuthResult::Failure } else { AuthResult::Success },
                reason: format!("reason {n}"),
                app_password_id: (n % 11 == 0).then_some(n),
            };
            (1_700_000_000 + n, entry)
        })
        .collect();
    store.record_auth_batch(entries).await.unwrap();
    let rows = store.auth_log(&LogFilter { limit: Some(5000), ..Default::default() }).await.unwrap();
    assert_eq!(rows.len(), 1000);
    // Newest first: row n is the last but n.
    for (position, row) in rows.iter().rev().enumerate() {
        let n = position as i64;
        assert_eq!(row.username, format!("user{n}@example.org"));
        assert_eq!(row.created_at, 1_700_000_000 + n);
        assert_eq!(row.service, if n % 2 == 0 { "imap" } else { "smtp" });
        assert_eq!(row.master_user.as_deref(), (n % 7 == 0).then_some("master"));
        assert_eq!(row.remote_ip, (n % 3 != 0).then(|| format!("192.0.2.{}", n % 250)));
        assert_eq!(row.result, if n % 5 == 0 { AuthResult::Failure } else { AuthResult::Success });
        assert_eq!(row.reason, format!("reason {n}"));
        assert_eq!((row.via_app_password, row.app_password_id), (n % 11 == 0, (n % 11 == 0).then_some(n)));
    }
    store.record_auth_batch(Vec::new()).await.unwrap();
}

async fn concurrent_additions_never_exceed_the_domain_limit(store: Store) {
    add_domain(&store, "example.org", |d| d.max_mailboxes = 3).await;
    // Several stores (as several Gatehouse processes would have) on one database, except on SQLite, where
    // one process serialises its writers and other processes wait on the file lock.
    let url = store.url().clone();
    let mut stores = vec![store.clone()];
    if store.kind() != gatehouse_core::DatabaseKind::Sqlite {
        for _ in 0..3 {
            stores.push(Store::open(&url).await.unwrap());
        }
    }
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(12));
    let attempts: Vec<_> = (0..12)
        .map(|i| {
            let (store, start) = (stores[i % stores.len()].clone(), start.clone());
            tokio::spawn(async move {
                store.ping().await.unwrap();
                start.wait().await;
                store.create_mailbox(&cli(), NewMailbox::new(address(&format!("u{i}@example.org")))).await
            })
        })
        .collect();
    let mut created = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(_) => created += 1,
            Err(err) => assert!(err.to_string().contains("allowed mailboxes"), "unexpected error: {err}"),
        }
    }
    assert_eq!(created, 3);
    assert_eq!(store.list_mailboxes(None).await.unwrap().len(), 3);
}

async fn login_lookups_and_revisions_for_the_engine(store: Store) {
    use gatehouse_engine::{Directory, MasterScopeLogin};
    add_domain(&store, "example.org", |_| {}).await;
    add_mailbox(&store, "alice@example.org", |m| {
        m.password_hash = Some("{PLAIN}old".into());
        m.protocols = Some("imap,smtp".parse().unwrap());
    })
    .await
    .unwrap();
    let login = Directory::mailbox(&store, "alice@example.org").await.unwrap().unwrap();
    assert_eq!((login.domain.as_str(), login.active, login.domain_active), ("example.org", true, true));
    assert_eq!(login.protocols.to_string(), "imap,smtp");
    assert!(!login.second_factor_enabled);
    assert!(Directory::mailbox(&store, "nobody@example.org").await.unwrap().is_none());

    // Every change that can affect a login bumps the revision.
    let created = store
        .create_app_password(
            &cli(),
            &address("alice@example.org"),
            NewAppPassword {
                name: "phone".into(),
                protocols: "smtp".parse().unwrap(),
                expires_at: None,
                secret_hash: "{SSHA256}x".into(),
            },
        )
        .await
        .unwrap();
    let after_add = Directory::mailbox(&store, "alice@example.org").await.unwrap().unwrap().revision;
    assert!(after_add > login.revision);
    let app = store.app_password(created.id).await.unwrap().unwrap();
    assert_eq!((app.mailbox_id, app.active, app.protocols.to_string()), (login.id, true, "smtp".to_string()));
    store.revoke_app_password(&cli(), &address("alice@example.org"), created.id).await.unwrap();
    assert!(!store.app_password(created.id).await.unwrap().unwrap().active);
    let after_revoke = Directory::mailbox(&store, "alice@example.org").await.unwrap().unwrap().revision;
    assert!(after_revoke > after_add);
    store
        .update_domain(
            &cli(),
            &domain("example.org"),
            DomainChanges { description: Some("x".into()), ..Default::default() },
        )
        .await
        .unwrap();
    assert!(Directory::mailbox(&store, "alice@example.org").await.unwrap().unwrap().revision > after_revoke);
    assert_eq!(store.list_app_passwords(&address("alice@example.org")).await.unwrap()[0].name, "phone");

    // Rehash is a compare-and-swap on the old hash.
    assert!(!store.replace_password_hash(login.id, "{PLAIN}other", "{PLAIN}new").await.unwrap());
    assert!(store.replace_password_hash(login.id, "{PLAIN}old", "{PLAIN}new").await.unwrap());
    assert_eq!(
        store.mailbox_password_hash(&address("alice@example.org")).await.unwrap().as_deref(),
        Some("{PLAIN}new")
    );

    // Master users and administrators acting as masters.
    store
        .create_master_user(
            &cli(),
            NewMasterUser {
                username: "m@example.org".into(),
                password_hash: "{PLAIN}m".into(),
                scope: NewMasterScope::Domain,
            },
        )
        .await
        .unwrap();
    let master = store.master_user("m@example.org").await.unwrap().unwrap();
    assert_eq!(master.scope, MasterScopeLogin::Domain("example.org".into()));
    store.create_admin(&cli(), "root", "{PLAIN}r".into()).await.unwrap();
    store
        .create_domain_admin(
            &cli(),
            NewDomainAdmin {
                username: "helper".into(),
                password_hash: "{PLAIN}h".into(),
                domains: vec![domain("example.org")],
                acl: vec!["login_as".into()],
            },
        )
        .await
        .unwrap();
    store
        .create_domain_admin(
            &cli(),
            NewDomainAdmin {
                username: "viewer".into(),
                password_hash: "{PLAIN}v".into(),
                domains: vec![domain("example.org")],
                acl: vec![],
            },
        )
        .await
        .unwrap();
    assert_eq!(store.admin_as_master("root").await.unwrap().unwrap().scope, MasterScopeLogin::Global);
    assert_eq!(
        store.admin_as_master("helper").await.unwrap().unwrap().scope,
        MasterScopeLogin::Owned(vec!["example.org".into()])
    );
    assert!(store.admin_as_master("viewer").await.unwrap().is_none(), "no login_as, no master login");
}

#[tokio::test]
async fn a_database_from_a_newer_gatehouse_is_refused() {
    let database = TestDatabase::create(Engine::Sqlite).await.unwrap();
    let store = Store::open(database.url()).await.unwrap();
    let current = Store::inspect_schema(database.url()).await.unwrap();
    assert_eq!(current.applied, store.applied_migrations().await.unwrap());
    assert!(current.pending.is_empty() && current.unknown.is_empty(), "{current:?}");
    store.close().await;
    let path = database.url().sqlite_path().unwrap();
    let raw = sea_orm::Database::connect(format!("sqlite://{}", path.display())).await.unwrap();
    use sea_orm::ConnectionTrait;
    raw.execute_unprepared("INSERT INTO seaql_migrations (version, applied_at) VALUES ('m20991231_000001_future', 0)")
        .await
        .unwrap();
    raw.execute_unprepared("DELETE FROM seaql_migrations WHERE version = 'm20261207_000008_login_changes'")
        .await
        .unwrap();
    raw.close().await.unwrap();
    // Inspecting says what is missing and what is unknown, and changes nothing.
    for _ in 0..2 {
        let state = Store::inspect_schema(database.url()).await.unwrap();
        assert_eq!(state.pending, vec!["m20261207_000008_login_changes"]);
        assert_eq!(state.unknown, vec!["m20991231_000001_future"]);
        assert_eq!(state.applied.len(), current.applied.len() - 1);
    }
    let err = Store::open(database.url()).await.unwrap_err();
    assert!(err.to_string().contains("m20991231_000001_future"), "{err}");
    let missing = gatehouse_core::DatabaseUrl::new(format!("sqlite://{}.missing", path.display()));
    assert!(matches!(Store::inspect_schema(&missing).await, Err(Error::NotFound { .. })));
    assert!(!std::path::Path::new(&format!("{}.missing", path.display())).exists(), "not created");
}

#[tokio::test]
async fn an_unreachable_database_is_a_server_fault() {
    let port = gatehouse_testkit::free_port();
    let url = gatehouse_core::DatabaseUrl::new(format!("postgres://nobody:secret-pw@127.0.0.1:{port}/none"));
    let err = Store::open(&url).await.unwrap_err();
    assert_eq!(err.fault(), gatehouse_core::Fault::Server, "{err}");
    assert!(!err.to_string().contains("secret-pw"), "{err}");
}

#[tokio::test]
async fn a_missing_database_is_created_only_when_asked_and_private() {
    use std::os::unix::fs::PermissionsExt;
    let existing_only = || OpenOptions { create: false, secret_key: SecretKey::ephemeral() };
    let dir = tempfile::tempdir().unwrap();
    let url = gatehouse_core::DatabaseUrl::new(format!("sqlite://{}/data/gatehouse.db", dir.path().display()));
    let err = Store::open_with(&url, existing_only()).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    assert!(err.to_string().contains(&format!("{}/data/gatehouse.db", dir.path().display())), "{err}");
    assert!(!dir.path().join("data").exists(), "nothing is created");

    let store = Store::open_with(&url, OpenOptions { create: true, secret_key: SecretKey::ephemeral() }).await.unwrap();
    let mode = |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir.path().join("data")), 0o700);
    assert_eq!(mode(&dir.path().join("data/gatehouse.db")), 0o600);
    assert_eq!(mode(&dir.path().join("data/gatehouse.db-wal")), 0o600, "SQLite's WAL file takes the file's mode");
    assert!(store.permission_warnings().is_empty(), "{:?}", store.permission_warnings());
    store.close().await;

    std::fs::set_permissions(dir.path().join("data/gatehouse.db"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let store = Store::open_with(&url, existing_only()).await.unwrap();
    let warnings = store.permission_warnings();
    assert!(warnings.iter().any(|w| w.contains("gatehouse.db is accessible to other users")), "{warnings:?}");
    store.close().await;

    // A server database without Gatehouse's tables is not set up by a command that may not create.
    let Some(empty) = TestDatabase::create(Engine::Postgres).await else { return };
    let err = Store::open_with(empty.url(), existing_only()).await.unwrap_err();
    assert!(err.to_string().contains("Gatehouse schema"), "{err}");
    let store =
        Store::open_with(empty.url(), OpenOptions { create: true, secret_key: SecretKey::ephemeral() }).await.unwrap();
    store.close().await;
    Store::open_with(empty.url(), existing_only()).await.unwrap().close().await;
    empty.drop_database().await;
}

async fn job_leases_are_exclusive_until_released_or_expired(store: Store) {
    assert!(store.acquire_lease("sync:corp", "node-a", 60).await.unwrap());
    assert!(!store.acquire_lease("sync:corp", "node-b", 60).await.unwrap(), "held by node-a");
    assert!(store.acquire_lease("sync:corp", "node-a", 60).await.unwrap(), "the holder renews");
    assert!(store.acquire_lease("sync:other", "node-b", 60).await.unwrap(), "leases are per name");
    store.release_lease("sync:corp", "node-b").await.unwrap();
    assert!(!store.acquire_lease("sync:corp", "node-b", 60).await.unwrap(), "only the holder releases");
    store.release_lease("sync:corp", "node-a").await.unwrap();
    assert!(store.acquire_lease("sync:corp", "node-b", 60).await.unwrap(), "free after release");
    // An expired lease (its holder died) is taken over.
    assert!(store.acquire_lease("sync:crashed", "node-a", -5).await.unwrap());
    assert!(store.acquire_lease("sync:crashed", "node-b", 60).await.unwrap(), "expired leases are taken over");
    assert!(!store.acquire_lease("sync:crashed", "node-a", 60).await.unwrap());
    // Renewing only extends a lease still held: a renewal arriving after the release takes nothing back.
    assert!(store.renew_lease("sync:crashed", "node-b", 60).await.unwrap());
    assert!(!store.renew_lease("sync:crashed", "node-a", 60).await.unwrap(), "not node-a's");
    store.release_lease("sync:crashed", "node-b").await.unwrap();
    assert!(!store.renew_lease("sync:crashed", "node-b", 60).await.unwrap());
    assert_eq!(store.lease_holder("sync:crashed").await.unwrap(), None);
    // A stopping process gives back every lease it holds.
    assert!(store.acquire_lease("sync:one", "node-c", 60).await.unwrap());
    assert!(store.acquire_lease("sync:two", "node-c", 60).await.unwrap());
    store.release_leases_of("node-c").await.unwrap();
    assert_eq!(store.lease_holder("sync:one").await.unwrap(), None);
    assert_eq!(store.lease_holder("sync:two").await.unwrap(), None);
    assert!(store.lease_holder("sync:other").await.unwrap().is_some(), "other holders keep theirs");

    // Many contenders at once: exactly one wins.
    let mut tasks = Vec::new();
    for n in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move { store.acquire_lease("sync:race", &format!("node-{n}"), 60).await }));
    }
    let mut winners = 0;
    for task in tasks {
        winners += usize::from(task.await.unwrap().unwrap());
    }
    assert_eq!(winners, 1);
}

async fn deprovisioning_is_recorded_and_cleared_by_an_admin(store: Store) {
    add_domain(&store, "example.org", |_| {}).await;
    add_mailbox(&store, "dana@example.org", |_| {}).await.unwrap();
    let dana = address("dana@example.org");
    let changes = MailboxChanges { deprovisioned_by: Some(Some("corp".into())), ..Default::default() };
    let mailbox = store.update_mailbox(&cli(), &dana, changes).await.unwrap();
    assert!(!mailbox.active);
    assert_eq!(mailbox.attributes[DEPROVISIONED_BY], json!("corp"));
    let changes = MailboxChanges { deprovisioned_by: Some(None), ..Default::default() };
    let mailbox = store.update_mailbox(&cli(), &dana, changes).await.unwrap();
    assert!(mailbox.active);
    assert!(mailbox.attributes.get(DEPROVISIONED_BY).is_none());
    // An admin's own change forgets the sync's record, so a later sync leaves the admin's decision alone.
    let changes = MailboxChanges { deprovisioned_by: Some(Some("corp".into())), ..Default::default() };
    store.update_mailbox(&cli(), &dana, changes).await.unwrap();
    let changes = MailboxChanges { active: Some(false), ..Default::default() };
    let mailbox = store.update_mailbox(&cli(), &dana, changes).await.unwrap();
    assert!(!mailbox.active);
    assert!(mailbox.attributes.get(DEPROVISIONED_BY).is_none());
}

async fn web_sessions_end_with_the_account_changes_that_matter(store: Store) {
    add_domain(&store, "example.org", |_| {}).await;
    add_mailbox(&store, "erin@example.org", |_| {}).await.unwrap();
    let session = |id: &str, kind: &str, principal: &str| WebSessionRow {
        id: id.into(),
        principal_kind: kind.into(),
        principal: principal.into(),
        data: "{}".into(),
        expires_at: i64::MAX / 2,
    };
    let erin = address("erin@example.org");
    store.create_web_session(&session("s1", USER_SESSIONS, "erin@example.org")).await.unwrap();
    let token = store.create_sso_token("s1", "erin@example.org", "hash", None, i64::MAX / 2).await.unwrap();
    // A display-name change keeps the session; a deactivation ends it and its SSO token.
    let rename = MailboxChanges { display_name: Some("Erin".into()), ..Default::default() };
    store.update_mailbox(&cli(), &erin, rename).await.unwrap();
    assert!(store.web_session("s1").await.unwrap().is_some());
    let off = MailboxChanges { active: Some(false), ..Default::default() };
    store.update_mailbox(&cli(), &erin, off).await.unwrap();
    assert!(store.web_session("s1").await.unwrap().is_none());
    assert!(store.sso_token(token).await.unwrap().is_none());
    // A new password ends sessions too, and so does removing the mailbox.
    store.create_web_session(&session("s2", USER_SESSIONS, "erin@example.org")).await.unwrap();
    let password = MailboxChanges { password_hash: Some("{PLAIN}new".into()), ..Default::default() };
    store.update_mailbox(&cli(), &erin, password).await.unwrap();
    assert!(store.web_session("s2").await.unwrap().is_none());
    store.create_web_session(&session("s3", USER_SESSIONS, "erin@example.org")).await.unwrap();
    store.remove_mailbox(&cli(), &erin).await.unwrap();
    assert!(store.web_session("s3").await.unwrap().is_none());
    // Domain administrators: losing a permission ends their sessions.
    let new = NewDomainAdmin {
        username: "helper".into(),
        password_hash: "{PLAIN}h".into(),
        domains: vec![domain("example.org")],
        acl: vec!["login_as".into()],
    };
    store.create_domain_admin(&cli(), new).await.unwrap();
    store.create_web_session(&session("s4", DOMAIN_ADMIN_SESSIONS, "helper")).await.unwrap();
    let changes = DomainAdminChanges { acl: Some(vec![]), ..Default::default() };
    store.update_domain_admin(&cli(), "helper", changes).await.unwrap();
    assert!(store.web_session("s4").await.unwrap().is_none());
}

async fn batches_of_mailboxes_keep_what_the_rules_allow(store: Store) {
    add_domain(&store, "example.org", |d| d.max_mailboxes = 3).await;
    add_mailbox(&store, "first@example.org", |_| {}).await.unwrap();
    let news: Vec<NewMailbox> = ["a@example.org", "a@example.org", "b@example.org", "c@example.org", "x@missing.org"]
        .iter()
        .map(|text| NewMailbox::new(address(text)))
        .collect();
    let outcomes = store.create_mailboxes(&cli(), news).await.unwrap();
    let kept: Vec<bool> = outcomes.iter().map(Result::is_ok).collect();
    assert_eq!(kept, vec![true, false, true, false, false], "{outcomes:?}");
    assert!(matches!(outcomes[1], Err(Error::AlreadyExists { .. })), "{:?}", outcomes[1]);
    assert!(outcomes[3].as_ref().unwrap_err().to_string().contains("allowed mailboxes"), "{:?}", outcomes[3]);
    let listed: Vec<String> = store.list_mailboxes(None).await.unwrap().into_iter().map(|m| m.address).collect();
    assert_eq!(listed, vec!["a@example.org", "b@example.org", "first@example.org"]);
    // Each created mailbox has its audit entry; the refused ones left nothing behind.
    let adds = LogFilter { action_prefix: Some("mailbox.add".into()), ..Default::default() };
    assert_eq!(store.audit_log(&adds).await.unwrap().len(), 3);
}

async fn mailbox_lists_are_searched_sorted_and_paged_in_the_database(store: Store) {
    add_domain(&store, "example.org", |_| {}).await;
    add_domain(&store, "shop.example", |_| {}).await;
    for i in 0..30 {
        let text = format!("user{i:02}@example.org");
        add_mailbox(&store, &text, |m| {
            m.quota_mib = Some(1000 - i);
            m.display_name = Some(if i % 10 == 0 { format!("Team Lead {i}") } else { format!("Person {i}") });
            m.active = Some(i % 3 != 0);
        })
        .await
        .unwrap();
    }
    add_mailbox(&store, "under_score@shop.example", |m| m.display_name = Some("50% Off".into())).await.unwrap();
    add_mailbox(&store, "underXscore@shop.example", |_| {}).await.unwrap();
    let addresses = |page: &Page<Mailbox>| page.items.iter().map(|m| m.address.clone()).collect::<Vec<_>>();

    let first =
        store.search_mailboxes(&MailboxSearch { window: Window::new(0, 10), ..Default::default() }).await.unwrap();
    assert_eq!((first.total, first.items.len()), (32, 10));
    assert_eq!(first.items[0].address, "under_score@shop.example");
    let last =
        store.search_mailboxes(&MailboxSearch { window: Window::new(30, 10), ..Default::default() }).await.unwrap();
    assert_eq!(addresses(&last), ["user28@example.org", "user29@example.org"]);
    assert_eq!(last.total, 32);

    // Sorted by quota (ties by address), both ways.
    let by_quota = MailboxSearch { order: MailboxOrder::Quota, window: Window::new(0, 3), ..Default::default() };
    let page = store.search_mailboxes(&by_quota).await.unwrap();
    assert_eq!(addresses(&page), ["under_score@shop.example", "underxscore@shop.example", "user29@example.org"]);
    let page = store.search_mailboxes(&MailboxSearch { descending: true, ..by_quota.clone() }).await.unwrap();
    assert_eq!(page.items[0].address, "user00@example.org");

    // Text in the address or the display name, any case; wildcards taken literally.
    let text = |t: &str| MailboxSearch { text: Some(t.into()), ..Default::default() };
    let page = store.search_mailboxes(&text("TEAM lead")).await.unwrap();
    assert_eq!(addresses(&page), ["user00@example.org", "user10@example.org", "user20@example.org"]);
    assert_eq!(addresses(&store.search_mailboxes(&text("r_s")).await.unwrap()), ["under_score@shop.example"]);
    assert_eq!(addresses(&store.search_mailboxes(&text("50%")).await.unwrap()), ["under_score@shop.example"]);
    assert_eq!(store.search_mailboxes(&text("%")).await.unwrap().total, 1);

    // Domains and state.
    let shop = MailboxSearch { domains: Some(vec![domain("shop.example")]), ..Default::default() };
    assert_eq!(store.search_mailboxes(&shop).await.unwrap().total, 2);
    let inactive = MailboxSearch { active: Some(false), ..Default::default() };
    assert_eq!(store.search_mailboxes(&inactive).await.unwrap().total, 10);
    let nowhere = MailboxSearch { domains: Some(vec![domain("nowhere.example")]), ..Default::default() };
    assert_eq!(store.search_mailboxes(&nowhere).await.unwrap(), Page::empty(0, 50));

    // A domain administrator's view: its domains only, and other domains are "not found".
    let helper = store.scoped(Principal::domain_admin("helper", &["shop.example".to_string()]));
    assert_eq!(helper.search_mailboxes(MailboxSearch::default()).await.unwrap().total, 2);
    let err = helper
        .search_mailboxes(MailboxSearch { domains: Some(vec![domain("example.org")]), ..Default::default() })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
}

async fn auth_activity_is_counted_per_bucket_and_top_failures(store: Store) {
    let entry = |service: &str, user: &str, ip: &str, result: AuthResult| NewAuthLogEntry {
        service: service.into(),
        username: user.into(),
        master_user: None,
        remote_ip: Some(ip.into()),
        result,
        reason: "test".into(),
        app_password_id: None,
    };
    let hour = 3600;
    let base = 1_800_000_000 - 1_800_000_000 % hour;
    let mut rows = vec![(base - 10, entry("imap", "old@example.org", "192.0.2.1", AuthResult::Failure))];
    for i in 0..5 {
        rows.push((base + i, entry("imap", "alice@example.org", "192.0.2.1", AuthResult::Success)));
    }
    for i in 0..3 {
        rows.push((base + hour + i, entry("imap", "bob@other.org", "192.0.2.9", AuthResult::Failure)));
    }
    rows.push((base + hour + 5, entry("smtp", "alice@example.org", "192.0.2.7", AuthResult::Failure)));
    rows.push((base + hour + 6, entry("web", "carol@example.org", "192.0.2.7", AuthResult::TempFail)));
    store.record_auth_batch(rows).await.unwrap();

    let activity = store.auth_activity(base, hour, None).await.unwrap();
    let counted: Vec<(i64, &str, AuthResult, u64)> =
        activity.iter().map(|a| (a.bucket - base, a.service.as_str(), a.result, a.count)).collect();
    assert!(counted.contains(&(0, "imap", AuthResult::Success, 5)), "{counted:?}");
    assert!(counted.contains(&(hour, "imap", AuthResult::Failure, 3)), "{counted:?}");
    assert!(counted.contains(&(hour, "smtp", AuthResult::Failure, 1)), "{counted:?}");
    assert!(counted.contains(&(hour, "web", AuthResult::TempFail, 1)), "{counted:?}");
    assert_eq!(counted.len(), 4, "the row before `since` is left out: {counted:?}");

    let users = store.top_failures(FailureKey::Username, base, 10, None).await.unwrap();
    let users: Vec<(&str, u64)> = users.iter().map(|f| (f.key.as_str(), f.failures)).collect();
    assert_eq!(users, [("bob@other.org", 3), ("alice@example.org", 1)]);
    let addresses = store.top_failures(FailureKey::RemoteIp, base, 1, None).await.unwrap();
    assert_eq!(addresses, [FailureCount { key: "192.0.2.9".into(), failures: 3 }]);

    // A domain's view counts its mailboxes only.
    let mine = [domain("example.org")];
    let users = store.top_failures(FailureKey::Username, base, 10, Some(&mine)).await.unwrap();
    assert_eq!(users, [FailureCount { key: "alice@example.org".into(), failures: 1 }]);
    let activity = store.auth_activity(base, hour, Some(&mine)).await.unwrap();
    assert_eq!(activity.iter().map(|a| a.count).sum::<u64>(), 7);
    assert!(store.auth_activity(base, hour, Some(&[])).await.unwrap().is_empty());
}

async fn log_pages_are_windows_counted_up_to_a_cap(store: Store) {
    let entry = |i: u64| NewAuthLogEntry {
        service: if i.is_multiple_of(2) { "imap".into() } else { "smtp".into() },
        username: format!("user{}@example.org", i % 3),
        master_user: None,
        remote_ip: Some(format!("192.0.2.{}", i % 5)),
        result: AuthResult::Failure,
        reason: format!("attempt {i}"),
        app_password_id: None,
    };
    let rows: Vec<(i64, NewAuthLogEntry)> = (0..LOG_COUNT_CAP + 50).map(|i| (1_000 + i as i64, entry(i))).collect();
    store.record_auth_batch(rows).await.unwrap();

    let newest = LogFilter { limit: Some(10), ..Default::default() };
    let page = store.auth_log_page(&newest, false).await.unwrap();
    assert_eq!((page.total, page.more, page.items.len()), (LOG_COUNT_CAP, true, 10), "capped");
    assert_eq!(page.items[0].reason, format!("attempt {}", LOG_COUNT_CAP + 49));
    let second = store.auth_log_page(&LogFilter { offset: Some(10), ..newest.clone() }, false).await.unwrap();
    assert_eq!(second.items[0].reason, format!("attempt {}", LOG_COUNT_CAP + 39));
    let oldest = store.auth_log_page(&newest, true).await.unwrap();
    assert_eq!(oldest.items[0].reason, "attempt 0");

    // Filters narrow the count below the cap: exact.
    let one_address = LogFilter { remote_ip: Some("192.0.2.1".into()), service: Some("smtp".into()), ..newest };
    let page = store.auth_log_page(&one_address, false).await.unwrap();
    let expected = (0..LOG_COUNT_CAP + 50).filter(|i| i % 5 == 1 && i % 2 == 1).count() as u64;
    assert_eq!((page.total, page.more), (expected, false));
    assert!(page.items.iter().all(|e| e.remote_ip.as_deref() == Some("192.0.2.1") && e.service == "smtp"));
    let none = LogFilter { domains: Some(Vec::new()), ..Default::default() };
    assert_eq!(store.auth_log_page(&none, false).await.unwrap().total, 0);
}

async fn domain_lists_are_searched_and_paged_with_the_usage_of_each(store: Store) {
    for i in 0..12 {
        add_domain(&store, &format!("d{i:02}.example"), |d| {
            d.description = if i % 4 == 0 { "Sales office".into() } else { "Engineering".into() };
            d.active = i != 5;
        })
        .await;
    }
    add_domain(&store, "bücher.example", |_| {}).await;
    for (address, quota) in [("a@d01.example", 100), ("b@d01.example", 250), ("c@d02.example", 0)] {
        add_mailbox(&store, address, |m| m.quota_mib = Some(quota)).await.unwrap();
    }
    let page = store.search_domains(&DomainSearch { window: Window::new(0, 5), ..Default::default() }).await.unwrap();
    assert_eq!((page.total, page.items.len()), (13, 5));
    let d01 = page.items.iter().find(|d| d.name == "d01.example").unwrap();
    assert_eq!((d01.mailboxes, d01.quota_used_mib), (2, 350), "usage of the page's domains");
    assert_eq!(store.list_domains().await.unwrap().iter().find(|d| d.name == "d02.example").unwrap().mailboxes, 1);
    let text = |t: &str| DomainSearch { text: Some(t.into()), ..Default::default() };
    assert_eq!(store.search_domains(&text("SALES")).await.unwrap().total, 3, "descriptions, any case");
    let unicode = store.search_domains(&text("bücher")).await.unwrap();
    assert_eq!(unicode.items.iter().map(|d| d.unicode_name.as_str()).collect::<Vec<_>>(), ["bücher.example"]);
    let inactive = DomainSearch { active: Some(false), ..Default::default() };
    assert_eq!(store.search_domains(&inactive).await.unwrap().items[0].name, "d05.example");
    let newest =
        DomainSearch { order: DomainOrder::Created, descending: true, window: Window::new(0, 1), ..Default::default() };
    assert_eq!(store.search_domains(&newest).await.unwrap().items[0].name, "xn--bcher-kva.example");
    let helper = store.scoped(Principal::domain_admin("helper", &["d03.example".to_string()]));
    let own = helper.search_domains(DomainSearch::default()).await.unwrap();
    assert_eq!(own.items.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(), ["d03.example"]);
    assert_eq!(helper.domain_names().await.unwrap(), ["d03.example"]);
}

async fn the_smaller_lists_are_searched_and_paged_too(store: Store) {
    add_domain(&store, "example.org", |_| {}).await;
    for name in ["staff", "students", "guests"] {
        let new = NewTemplate {
            name: name.into(),
            quota_mib: 100,
            protocols: "imap".parse().unwrap(),
            active: true,
            attributes: json!({}),
        };
        store.create_template(&cli(), new).await.unwrap();
    }
    add_mailbox(&store, "a@example.org", |m| m.template = Some("students".into())).await.unwrap();
    let page = store.search_templates(Some("U"), Window::new(0, 1)).await.unwrap();
    assert_eq!((page.total, page.items.len(), page.items[0].name.as_str()), (2, 1, "guests"));
    let students = store.search_templates(Some("dents"), Window::default()).await.unwrap();
    assert_eq!(students.items[0].mailboxes, 1, "mailboxes counted for the page's templates");

    for name in ["trainer", "backup@example.org"] {
        let scope = if name.contains('@') { NewMasterScope::Domain } else { NewMasterScope::Global };
        let new = NewMasterUser { username: name.into(), password_hash: "{PLAIN}x".into(), scope };
        store.create_master_user(&cli(), new).await.unwrap();
    }
    let masters = store.search_master_users(Some("BACK"), Window::default()).await.unwrap();
    assert_eq!(masters.total, 1);
    assert_eq!(masters.items[0].scope, MasterScope::Domain("example.org".into()), "the domain of its scope");

    for name in ["monitoring", "billing", "monitoring-2"] {
        let new = NewApiKey {
            name: name.into(),
            access: ApiKeyAccess::ReadOnly,
            allowed_networks: Vec::new(),
            domains: Vec::new(),
        };
        store.create_api_key(&cli(), new).await.unwrap();
    }
    let keys = store.search_api_keys(Some("monitor"), Window::new(1, 1)).await.unwrap();
    assert_eq!((keys.total, keys.items[0].name.as_str()), (2, "monitoring-2"), "oldest first, second page");

    for (name, url) in [("Docs", "https://docs.example.org/"), ("Status", "https://status.example.org/")] {
        let new = NewAppLink { name: name.into(), url: url.into(), user_url: None, hidden_on_login: false };
        store.create_app_link(&cli(), new).await.unwrap();
    }
    let links = store.search_app_links(Some("STATUS.example"), Window::default()).await.unwrap();
    assert_eq!(links.items.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(), ["Status"]);
}
