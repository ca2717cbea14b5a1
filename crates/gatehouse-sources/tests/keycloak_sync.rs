//! Syncs of 10 000 Keycloak users, read page by page from the admin REST API stand-in, into a real store on each
//! database engine: the import, a dry run, template changes, disabled and deleted users deactivated (never
//! deleted) under the `deactivate` policy, the threshold and zero-user refusals, and the job log — the same
//! plan-and-apply machinery as LDAP's syncs.

use std::collections::BTreeMap;
use std::time::Instant;

use gatehouse_core::{DomainName, Error, MailboxAddress, ProtocolSet, Secret};
use gatehouse_sources::SourceRegistry;
use gatehouse_sources::dispatch::OIDC_CLIENT_SECRET;
use gatehouse_store::{
    Actor, DEPROVISIONED_BY, IdentityProviderChanges, IdentityProviderKind, LogFilter, NewDomain, NewIdentityProvider,
    NewTemplate, Store,
};
use gatehouse_testkit::oidc::{KeycloakAdminApi, KeycloakUser, OidcClient, OpenIdProvider, ProviderOptions};
use serde_json::json;

const COUNT: usize = 10_000;

fn mail(n: usize) -> String {
    format!("u{n:05}@example.org")
}

fn people(count: usize, template: impl Fn(usize) -> &'static str) -> Vec<KeycloakUser> {
    (0..count)
        .map(|n| {
            let mut user = KeycloakUser::new(&format!("u{n:05}"), &mail(n), &[("mailcow_template", template(n))]);
            user.first_name = Some("User".into());
            user.last_name = Some(n.to_string());
            user
        })
        .collect()
}

fn even_staff(n: usize) -> &'static str {
    if n.is_multiple_of(2) { "staff" } else { "it" }
}

async fn prepare(store: &Store, keycloak: &OpenIdProvider) {
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
        name: "kc".into(),
        kind: IdentityProviderKind::Keycloak,
        settings: json!({
            "server_url": format!("http://127.0.0.1:{}", keycloak.port),
            "realm": "mail",
            "client_id": "gatehouse",
            "import_users": true,
            "periodic_sync": true,
            "deprovision": "deactivate",
            "deprovision_threshold_percent": 10,
        }),
        secrets: BTreeMap::from([(OIDC_CLIENT_SECRET.to_string(), Secret::new("service-secret"))]),
    };
    store.create_identity_provider(&actor, provider).await.unwrap();
    let mappings = [("staff".to_string(), "staff".to_string()), ("it".to_string(), "it".to_string())];
    store.set_attribute_mappings(&actor, "kc", &mappings).await.unwrap();
}

fn address(text: &str) -> MailboxAddress {
    MailboxAddress::parse(text).unwrap()
}

async fn ten_thousand_keycloak_users(store: Store) {
    let mut options = ProviderOptions::keycloak("mail");
    options.keycloak_admin = Some(KeycloakAdminApi::viewable_by("gatehouse"));
    let clients =
        ["gatehouse", "blind"].map(|id| OidcClient::confidential(id, "service-secret", "http://127.0.0.1:1/cb"));
    let Some(keycloak) = OpenIdProvider::start(&options, &clients, &BTreeMap::new()) else { return };
    let mut users = people(COUNT, even_staff);
    keycloak.set_keycloak_users(&users);
    prepare(&store, &keycloak).await;
    let registry = SourceRegistry::new(store.clone());

    let dry = registry.sync("kc", true, &()).await.unwrap();
    assert_eq!((dry.entries, dry.created), (COUNT, COUNT));
    assert!(store.list_mailboxes(None).await.unwrap().is_empty(), "a dry run changes nothing");

    let started = Instant::now();
    let report = registry.sync("kc", false, &()).await.unwrap();
    eprintln!("KEYCLOAK IMPORT of {COUNT} users: {:.2} s ({})", started.elapsed().as_secs_f64(), report.summary());
    assert_eq!((report.entries, report.created, report.skipped), (COUNT, COUNT, 0), "{report:?}");
    let u1 = store.mailbox(&address(&mail(1))).await.unwrap();
    assert_eq!((u1.template.as_deref(), u1.quota_mib, u1.auth_source.as_str()), (Some("it"), 2048, "kc"));
    assert_eq!((u1.display_name.as_str(), u1.external_id.as_deref()), ("User 1", Some("id-u00001")));
    let pages = keycloak.keycloak_requests().iter().filter(|l| l.starts_with("GET /users?first=")).count();
    assert_eq!(pages, 2 * (COUNT / 100 + 1), "two runs of 101 pages of at most 100 users");

    let again = registry.sync("kc", false, &()).await.unwrap();
    assert_eq!((again.created, again.updated, again.deactivated, again.unchanged), (0, 0, 0, COUNT));

    // 100 staff members move to IT, five users are disabled and five deleted: exactly those change.
    for user in users.iter_mut().take(200).step_by(2) {
        user.attributes.insert("mailcow_template".into(), vec!["it".into()]);
    }
    for user in &mut users[300..305] {
        user.enabled = false;
    }
    users.drain(5_000..5_005);
    keycloak.set_keycloak_users(&users);
    let started = Instant::now();
    let changed = registry.sync("kc", false, &()).await.unwrap();
    eprintln!("KEYCLOAK RESYNC with 110 changes: {:.2} s ({})", started.elapsed().as_secs_f64(), changed.summary());
    assert_eq!((changed.updated, changed.deactivated), (100, 10), "{changed:?}");
    let moved = store.mailbox(&address(&mail(0))).await.unwrap();
    assert_eq!((moved.template.as_deref(), moved.quota_mib), (Some("it"), 2048));
    for gone in [mail(300), mail(5_000)] {
        let mailbox = store.mailbox(&address(&gone)).await.unwrap();
        assert!(!mailbox.active, "{gone} is deactivated, not deleted");
        assert_eq!(mailbox.attributes[DEPROVISIONED_BY], json!("kc"));
    }

    // 2 000 more disappear (20 %, above the 10 % threshold): refused, nothing changed.
    let kept: Vec<KeycloakUser> = users[2_000..].to_vec();
    keycloak.set_keycloak_users(&kept);
    let err = registry.sync("kc", false, &()).await.unwrap_err();
    assert!(matches!(err, Error::Refused(_)) && err.to_string().contains("would deactivate"), "{err}");
    assert!(store.mailbox(&address(&mail(1_000))).await.unwrap().active);

    // A realm that answers no users at all: refused as well.
    keycloak.set_keycloak_users(&[]);
    let err = registry.sync("kc", false, &()).await.unwrap_err();
    assert!(err.to_string().contains("no entries"), "{err}");
    let active = store.list_mailboxes(None).await.unwrap().iter().filter(|m| m.active).count();
    assert_eq!(active, COUNT - 10, "nothing was deactivated by the refused runs");
    let runs = store.job_log(&LogFilter { subject: Some("kc".into()), ..Default::default() }).await.unwrap();
    assert_eq!((runs[0].status.as_str(), runs[1].status.as_str()), ("refused", "refused"));

    // A service account without view-users: the run fails as a server fault and changes nothing.
    let changes = IdentityProviderChanges {
        settings: Some(json!({
            "server_url": format!("http://127.0.0.1:{}", keycloak.port), "realm": "mail", "client_id": "blind",
            "import_users": true, "periodic_sync": true, "deprovision": "deactivate",
        })),
        ..Default::default()
    };
    store.update_identity_provider(&Actor::cli(), "kc", changes).await.unwrap();
    let err = registry.sync("kc", false, &()).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err}");
    let runs = store.job_log(&LogFilter { subject: Some("kc".into()), ..Default::default() }).await.unwrap();
    assert_eq!(runs[0].status, "failed");
}

gatehouse_testkit::on_every_engine!(ten_thousand_keycloak_users);
