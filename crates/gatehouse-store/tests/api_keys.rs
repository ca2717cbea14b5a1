//! API keys in the store, run unchanged against SQLite, PostgreSQL and MariaDB, each test in its own fresh
//! database. Without `TEST_POSTGRES_URL` / `TEST_MYSQL_URL` the server variants skip on a developer machine and
//! fail in CI.

use gatehouse_core::{DomainName, Error, MailboxAddress};
use gatehouse_store::*;

gatehouse_testkit::on_every_engine!(
    a_new_key_is_shown_once_and_found_by_its_token_only,
    keys_are_checked_on_creation_and_normalised,
    revoked_keys_stop_working_and_stay_listed,
    last_use_is_recorded,
    logs_can_be_limited_to_domains,
);

fn cli() -> Actor {
    Actor { name: "cli:test".into(), role: ActorRole::Cli }
}

fn domain(name: &str) -> DomainName {
    DomainName::parse(name).unwrap()
}

fn new_key(name: &str) -> NewApiKey {
    NewApiKey { name: name.into(), access: ApiKeyAccess::ReadOnly, allowed_networks: Vec::new(), domains: Vec::new() }
}

async fn a_new_key_is_shown_once_and_found_by_its_token_only(store: Store) {
    let (key, token) = store.create_api_key(&cli(), new_key("monitoring")).await.unwrap();
    assert_eq!(key.name, "monitoring");
    assert_eq!(key.access, ApiKeyAccess::ReadOnly);
    assert!(key.active && key.last_used_at.is_none());
    let prefix = format!("{API_KEY_PREFIX}{}_", key.id);
    let secret = token.strip_prefix(&prefix).expect("token carries the id");
    assert_eq!(secret.len(), 32);
    assert!(secret.bytes().all(|b| b.is_ascii_alphanumeric()));

    assert_eq!(store.api_key_for_token(&token).await.unwrap(), Some(key.clone()));
    // Anything but the exact token finds nothing.
    let mut wrong_secret = token.clone();
    let last = wrong_secret.pop().unwrap();
    wrong_secret.push(if last == 'a' { 'b' } else { 'a' });
    let other_id = format!("{API_KEY_PREFIX}{}_{secret}", key.id + 1);
    for candidate in [wrong_secret.as_str(), other_id.as_str(), "", "gk_", "Bearer x", secret] {
        assert_eq!(store.api_key_for_token(candidate).await.unwrap(), None, "{candidate}");
    }

    // Listings never carry the secret or its hash.
    let listed = store.list_api_keys().await.unwrap();
    assert_eq!(listed, vec![key.clone()]);
    let json = serde_json::to_string(&listed).unwrap();
    assert!(!json.contains(secret), "{json}");
    assert!(!json.to_lowercase().contains("hash"), "{json}");

    // The creation is audited without the secret.
    let audit = store.audit_log(&LogFilter::default()).await.unwrap();
    let entry = audit.iter().find(|e| e.action == "api_key.add").expect("audited");
    assert_eq!((entry.actor.as_str(), entry.target.as_str()), ("cli:test", "monitoring"));
    assert!(!entry.details.to_string().contains(secret));
}

async fn keys_are_checked_on_creation_and_normalised(store: Store) {
    let new = NewApiKey {
        name: "  provisioning ".into(),
        access: ApiKeyAccess::ReadWrite,
        allowed_networks: vec!["192.0.2.77/24".into(), "2001:db8::1".into(), " ".into(), "192.0.2.0/24".into()],
        domains: vec![domain("b.example"), domain("A.example"), domain("b.example")],
    };
    let (key, _) = store.create_api_key(&cli(), new).await.unwrap();
    assert_eq!(key.name, "provisioning");
    assert_eq!(key.allowed_networks, vec!["192.0.2.0/24", "2001:db8::1/128"]);
    assert_eq!(key.domains, vec!["a.example", "b.example"]);
    assert!(key.may_write() && key.is_domain_limited() && key.has_network_limit());
    assert!(key.allows_address("192.0.2.200".parse().unwrap()));
    assert!(key.allows_address("::ffff:192.0.2.1".parse().unwrap()));
    assert!(key.allows_address("2001:db8::1".parse().unwrap()));
    assert!(!key.allows_address("192.0.3.1".parse().unwrap()));
    assert!(!key.allows_address("2001:db8::2".parse().unwrap()));
    assert!(key.allows_domain("a.example") && !key.allows_domain("c.example"));
    assert_eq!(key.actor(), Actor { name: "api-key:provisioning".into(), role: ActorRole::Api });
    assert_eq!(store.list_api_keys().await.unwrap(), vec![key]);

    let duplicate = store.create_api_key(&cli(), new_key("provisioning")).await.unwrap_err();
    assert!(matches!(duplicate, Error::AlreadyExists { .. }), "{duplicate}");
    for bad_name in ["", "   ", "line\nbreak", &"x".repeat(101)] {
        let err = store.create_api_key(&cli(), new_key(bad_name)).await.unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{bad_name}: {err}");
    }
    for bad_network in ["10.0.0.0/33", "example.org", "10.0.0.0/"] {
        let new = NewApiKey { allowed_networks: vec![bad_network.into()], ..new_key("network") };
        let err = store.create_api_key(&cli(), new).await.unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{bad_network}: {err}");
    }
    assert_eq!(store.list_api_keys().await.unwrap().len(), 1, "nothing is written on refusal");

    let open = store.create_api_key(&cli(), new_key("open")).await.unwrap().0;
    assert!(!open.may_write() && !open.is_domain_limited() && !open.has_network_limit());
    assert!(open.allows_address("203.0.113.1".parse().unwrap()) && open.allows_domain("any.example"));
}

async fn revoked_keys_stop_working_and_stay_listed(store: Store) {
    let (key, token) = store.create_api_key(&cli(), new_key("old")).await.unwrap();
    let revoked = store.revoke_api_key(&cli(), key.id).await.unwrap();
    assert!(!revoked.active);
    assert_eq!(store.api_key_for_token(&token).await.unwrap(), None);
    assert_eq!(store.list_api_keys().await.unwrap(), vec![revoked.clone()]);
    // Revoking again changes nothing and is not audited twice.
    assert_eq!(store.revoke_api_key(&cli(), key.id).await.unwrap(), revoked);
    let audit = store.audit_log(&LogFilter::default()).await.unwrap();
    assert_eq!(audit.iter().filter(|e| e.action == "api_key.revoke" && e.target == "old").count(), 1);

    let err = store.revoke_api_key(&cli(), key.id + 100).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
}

async fn last_use_is_recorded(store: Store) {
    let (key, token) = store.create_api_key(&cli(), new_key("used")).await.unwrap();
    store.touch_api_key(key.id).await.unwrap();
    let first = store.api_key_for_token(&token).await.unwrap().unwrap().last_used_at.expect("recorded");
    assert!(first > 0);
    // Within the interval a second touch writes nothing new.
    store.touch_api_key(key.id).await.unwrap();
    assert_eq!(store.api_key_for_token(&token).await.unwrap().unwrap().last_used_at, Some(first));
    // Touching an unknown key is harmless.
    store.touch_api_key(key.id + 100).await.unwrap();
}

async fn logs_can_be_limited_to_domains(store: Store) {
    for name in ["a.example", "b.example"] {
        store.create_domain(&cli(), NewDomain::new(domain(name))).await.unwrap();
        let address = MailboxAddress::parse(&format!("user@{name}")).unwrap();
        store.create_mailbox(&cli(), NewMailbox::new(address)).await.unwrap();
    }
    for username in ["user@a.example", "User@A.Example", "user@b.example", "user@xa.example", "a.example"] {
        store
            .record_auth(NewAuthLogEntry {
                service: "imap".into(),
                username: username.into(),
                master_user: None,
                remote_ip: None,
                result: AuthResult::Failure,
                reason: "wrong password".into(),
                app_password_id: None,
            })
            .await
            .unwrap();
    }
    let in_domains =
        |filter: LogFilter, domains: &[DomainName]| LogFilter { domains: Some(domains.to_vec()), ..filter };
    let only_a = [domain("a.example")];
    let auth = store.auth_log(&in_domains(LogFilter::default(), &only_a)).await.unwrap();
    let mut users: Vec<&str> = auth.iter().map(|e| e.username.as_str()).collect();
    users.sort();
    assert_eq!(users, vec!["User@A.Example", "user@a.example"]);
    let limited = LogFilter { limit: Some(1), ..Default::default() };
    assert_eq!(store.auth_log(&in_domains(limited.clone(), &only_a)).await.unwrap().len(), 1);
    let subject = LogFilter { subject: Some("user@b.example".into()), ..Default::default() };
    assert!(store.auth_log(&in_domains(subject.clone(), &only_a)).await.unwrap().is_empty());
    assert!(store.auth_log(&in_domains(LogFilter::default(), &[])).await.unwrap().is_empty());

    let audit = store.audit_log(&in_domains(LogFilter::default(), &only_a)).await.unwrap();
    let mut targets: Vec<&str> = audit.iter().map(|e| e.target.as_str()).collect();
    targets.sort();
    assert_eq!(targets, vec!["a.example", "user@a.example"]);
    let both = [domain("a.example"), domain("b.example")];
    assert_eq!(store.audit_log(&in_domains(LogFilter::default(), &both)).await.unwrap().len(), 4);

    // The other filters run in the database too, so `limit` counts matching entries.
    let imap = LogFilter { service: Some("imap".into()), limit: Some(3), ..Default::default() };
    assert_eq!(store.auth_log(&imap).await.unwrap().len(), 3);
    let web = LogFilter { service: Some("web".into()), ..Default::default() };
    assert!(store.auth_log(&web).await.unwrap().is_empty());
    let successes = LogFilter { result: Some(AuthResult::Success), ..Default::default() };
    assert!(store.auth_log(&successes).await.unwrap().is_empty());
    let mailbox_adds = LogFilter { action_prefix: Some("mailbox.".into()), ..Default::default() };
    assert_eq!(store.audit_log(&mailbox_adds).await.unwrap().len(), 2);
    let by_cli = LogFilter { actor: Some("nobody".into()), ..Default::default() };
    assert!(store.audit_log(&by_cli).await.unwrap().is_empty());
}
