//! SCIM tokens and the SCIM Users of mailboxes (row id, userName and externalId lookups, uniqueness, deletion), run
//! unchanged against SQLite, PostgreSQL and MariaDB, each test in its own fresh database.

use std::collections::BTreeMap;

use gatehouse_core::{DomainName, MailboxAddress};
use gatehouse_store::*;
use serde_json::json;

gatehouse_testkit::on_every_engine!(tokens_belong_to_a_provider_and_domains, mailboxes_are_found_by_id_and_source);

fn cli() -> Actor {
    Actor { name: "cli:test".into(), role: ActorRole::Cli }
}

async fn provider(store: &Store, name: &str, kind: IdentityProviderKind) {
    let new = NewIdentityProvider { name: name.into(), kind, settings: json!({}), secrets: BTreeMap::new() };
    store.create_identity_provider(&cli(), new).await.unwrap();
}

async fn tokens_belong_to_a_provider_and_domains(store: Store) {
    provider(&store, "okta", IdentityProviderKind::Oidc).await;
    provider(&store, "corp", IdentityProviderKind::Ldap).await;
    let new = |name: &str, provider: &str, domains: &[&str]| NewScimToken {
        name: name.into(),
        provider: provider.into(),
        domains: domains.iter().map(|d| DomainName::parse(d).unwrap()).collect(),
    };
    let err = store.create_scim_token(&cli(), new("t", "okta", &[])).await.unwrap_err();
    assert!(err.to_string().contains("one or more domains"), "{err}");
    let err = store.create_scim_token(&cli(), new("t", "corp", &["example.org"])).await.unwrap_err();
    assert!(err.to_string().contains("LDAP directory"), "{err}");
    let err = store.create_scim_token(&cli(), new("t", "nope", &["example.org"])).await.unwrap_err();
    assert!(matches!(err, gatehouse_core::Error::NotFound { .. }), "{err}");

    let (token, text) = store.create_scim_token(&cli(), new("push", "okta", &["b.org", "a.org"])).await.unwrap();
    assert_eq!((token.domains.clone(), token.provider.as_str()), (vec!["a.org".to_string(), "b.org".into()], "okta"));
    assert!(text.starts_with(&format!("{SCIM_TOKEN_PREFIX}{}_", token.id)));
    assert_eq!(store.scim_token_for(&text).await.unwrap(), Some(token.clone()));
    let mut wrong = text.clone();
    wrong.pop();
    wrong.push(if text.ends_with('a') { 'b' } else { 'a' });
    assert_eq!(store.scim_token_for(&wrong).await.unwrap(), None);
    assert_eq!(store.scim_token_for(&text.replacen("gs_", "gk_", 1)).await.unwrap(), None);
    assert!(token.allows_domain("A.org") && !token.allows_domain("c.org"));
    let err = store.create_scim_token(&cli(), new("push", "okta", &["a.org"])).await.unwrap_err();
    assert!(matches!(err, gatehouse_core::Error::AlreadyExists { .. }), "{err}");

    store.touch_scim_token(token.id).await.unwrap();
    let listed = store.list_scim_tokens().await.unwrap();
    assert!(listed[0].last_used_at.is_some());
    let revoked = store.revoke_scim_token(&cli(), "push").await.unwrap();
    assert!(!revoked.active);
    assert_eq!(store.scim_token_for(&text).await.unwrap(), None, "revoked tokens stop at once");
    assert_eq!(store.list_scim_tokens().await.unwrap().len(), 1, "and stay listed");
    let audit = store.audit_log(&LogFilter::default()).await.unwrap();
    assert!(audit.iter().any(|e| e.action == "scim_token.revoke"));
}

async fn mailboxes_are_found_by_id_and_source(store: Store) {
    provider(&store, "okta", IdentityProviderKind::Oidc).await;
    provider(&store, "entra", IdentityProviderKind::Oidc).await;
    for domain in ["example.org", "example.net"] {
        store.create_domain(&cli(), NewDomain::new(DomainName::parse(domain).unwrap())).await.unwrap();
    }
    let scim = |user_name: &str, external_id: Option<&str>| ScimUser {
        user_name: user_name.into(),
        external_id: external_id.map(str::to_string),
        document: json!({ "userName": user_name }),
        deleted: false,
    };
    let pushed = |address: &str, source: &str, user: Option<ScimUser>| {
        let mut new = NewMailbox::new(MailboxAddress::parse(address).unwrap());
        new.auth_source = Some(source.into());
        new.scim = user;
        new
    };
    let alice =
        store.create_mailbox(&cli(), pushed("alice@example.org", "okta", Some(scim("Alice", Some("A-1"))))).await;
    let alice = alice.unwrap();
    // Sign-ins create mailboxes without a SCIM User: SCIM sees them under their address.
    store.create_mailbox(&cli(), pushed("dave@example.org", "okta", None)).await.unwrap();
    store.create_mailbox(&cli(), pushed("erin@example.net", "okta", Some(scim("erin", None)))).await.unwrap();
    store.create_mailbox(&cli(), NewMailbox::new(MailboxAddress::parse("bob@example.org").unwrap())).await.unwrap();
    assert_eq!(alice.attributes[SCIM_ATTRIBUTE], json!({ "userName": "Alice" }));
    let found = store.mailbox_by_id(alice.id).await.unwrap().unwrap();
    assert_eq!((found.address.as_str(), found.domain.as_str()), ("alice@example.org", "example.org"));
    assert_eq!(store.mailbox_by_id(alice.id + 1000).await.unwrap(), None);

    // userName is unique per provider, case-insensitively; another provider may use it.
    let err = store.create_mailbox(&cli(), pushed("alice2@example.org", "okta", Some(scim("ALICE", None)))).await;
    assert!(matches!(err, Err(gatehouse_core::Error::AlreadyExists { .. })), "{err:?}");
    store.create_mailbox(&cli(), pushed("alice@example.net", "entra", Some(scim("alice", None)))).await.unwrap();

    let org = ["example.org".to_string()];
    let addresses = |found: &(u64, Vec<Mailbox>)| found.1.iter().map(|m| m.address.clone()).collect::<Vec<_>>();
    let all = store.scim_users("okta", &org, ScimSelect::All, 0, None).await.unwrap();
    assert_eq!((all.0, addresses(&all)), (2, vec!["alice@example.org".to_string(), "dave@example.org".into()]));
    let page = store.scim_users("okta", &org, ScimSelect::All, 1, Some(1)).await.unwrap();
    assert_eq!((page.0, addresses(&page)), (2, vec!["dave@example.org".to_string()]));
    for (select, expected) in [
        (ScimSelect::UserName("alice"), vec!["alice@example.org"]),
        (ScimSelect::UserName("alice@example.org"), vec![]),
        (ScimSelect::UserName("Dave@Example.org"), vec!["dave@example.org"]),
        (ScimSelect::UserName("erin"), vec![]),
        (ScimSelect::ExternalId("A-1"), vec!["alice@example.org"]),
        (ScimSelect::ExternalId("a-1"), vec![]),
    ] {
        let found = store.scim_users("okta", &org, select, 0, None).await.unwrap();
        assert_eq!(addresses(&found), expected, "{select:?}");
    }
    let both = ["example.org".to_string(), "example.net".to_string()];
    let erin = store.scim_users("okta", &both, ScimSelect::UserName("erin"), 0, None).await.unwrap();
    assert_eq!(addresses(&erin), ["erin@example.net"]);

    // A deleted User is gone for SCIM and frees its userName and externalId; the mailbox stays.
    let mut deleted = scim("Alice", Some("A-1"));
    deleted.deleted = true;
    let changes = MailboxChanges { scim: Some(deleted), ..Default::default() };
    let alice_address = MailboxAddress::parse("alice@example.org").unwrap();
    let changed = store.update_mailbox(&cli(), &alice_address, changes).await.unwrap();
    assert!(changed.scim_deleted);
    assert_eq!(changed.revision, alice.revision + 1, "each change counts (SCIM's version)");
    let gone = store.scim_users("okta", &org, ScimSelect::ExternalId("A-1"), 0, None).await.unwrap();
    assert_eq!(gone.0, 0);
    assert_eq!(store.scim_users("okta", &org, ScimSelect::All, 0, None).await.unwrap().0, 1);
    store.create_mailbox(&cli(), pushed("alice2@example.org", "okta", Some(scim("alice", None)))).await.unwrap();
    // Taking the deleted User back with the name now in use is refused.
    let changes = MailboxChanges { scim: Some(scim("Alice", None)), ..Default::default() };
    let err = store.update_mailbox(&cli(), &alice_address, changes).await.unwrap_err();
    assert!(matches!(err, gatehouse_core::Error::AlreadyExists { .. }), "{err}");
}
