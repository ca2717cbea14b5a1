//! The Keycloak source against the admin REST API stand-in (written from Keycloak's documented API, served beside
//! the realm's OIDC endpoints by the real npm oidc-provider, whose client-credentials tokens it accepts): the
//! mailpassword login with `exact=true` (a user's password never opens another user's mailbox, as mailcow's
//! `exact=1` substring search lets it), disabled users, the role restriction, base64-wrapped hashes, the
//! service-account token kept and renewed once when refused, 403 without `view-users`, a server that is down,
//! paged listings, and the connection test's user-profile warning.

use std::collections::BTreeMap;

use gatehouse_core::{Error, MailboxAddress, Secret};
use gatehouse_passwords::{GenerateScheme, HashPool, HashPoolConfig, generate};
use gatehouse_sources::dispatch::OIDC_CLIENT_SECRET;
use gatehouse_sources::{Credentials, Source, SourceLogin, SourceSettings};
use gatehouse_store::IdentityProviderKind;
use gatehouse_testkit::oidc::{KeycloakAdminApi, KeycloakUser, OidcClient, OpenIdProvider, ProviderOptions};
use serde_json::{Value, json};

const SECRET: &str = "service-secret";

fn hash(password: &str) -> String {
    generate(password.as_bytes(), &GenerateScheme::BlfCrypt { cost: 5 }).unwrap()
}

fn user(name: &str, email: &str, password: Option<&str>, template: Option<&str>) -> KeycloakUser {
    let mut user = KeycloakUser::new(name, email, &[]);
    if let Some(password) = password {
        user.attributes.insert("mailcow_password".into(), vec![hash(password)]);
    }
    if let Some(template) = template {
        user.attributes.insert("mailcow_template".into(), vec![template.into()]);
    }
    user.first_name = Some(name.to_uppercase());
    user.last_name = Some("Example".into());
    user
}

/// A realm `mail` whose admin API the service accounts of `gatehouse` (view-users) and `blind` (nothing) use.
fn start_keycloak() -> Option<OpenIdProvider> {
    let mut options = ProviderOptions::keycloak("mail");
    let mut admin = KeycloakAdminApi::viewable_by("gatehouse");
    admin.service_accounts.insert("blind".into(), vec![]);
    admin.clients = vec![("uuid-webmail".into(), "webmail".into())];
    options.keycloak_admin = Some(admin);
    let clients = [
        OidcClient::confidential("gatehouse", SECRET, "http://127.0.0.1:1/oidc/callback"),
        OidcClient::confidential("blind", SECRET, "http://127.0.0.1:1/oidc/callback"),
    ];
    OpenIdProvider::start(&options, &clients, &BTreeMap::new())
}

fn realm(keycloak: &OpenIdProvider, client: &str, extra: Value) -> Source {
    let mut settings = json!({
        "server_url": format!("http://127.0.0.1:{}", keycloak.port),
        "realm": "mail",
        "client_id": client,
        "mailpassword_flow": true,
        "timeout_seconds": 3,
    });
    for (key, value) in extra.as_object().unwrap() {
        settings[key] = value.clone();
    }
    let parsed = SourceSettings::parse(IdentityProviderKind::Keycloak, &settings).unwrap();
    let secrets = BTreeMap::from([(OIDC_CLIENT_SECRET.to_string(), Secret::new(SECRET))]);
    Source::build(parsed, &secrets).unwrap()
}

fn pool() -> HashPool {
    HashPool::new(HashPoolConfig { workers: 1, ..HashPoolConfig::default() }).unwrap()
}

fn address(text: &str) -> MailboxAddress {
    MailboxAddress::parse(text).unwrap()
}

async fn login(source: &Source, pool: &HashPool, who: &str, password: &str) -> Result<SourceLogin, Error> {
    source.authenticate(&address(who), &Credentials::password(password.as_bytes()), Some(pool)).await
}

/// What the stand-in answers a raw admin API request with the service account of `gatehouse`.
async fn raw_users(keycloak: &OpenIdProvider, query: &str) -> Vec<Value> {
    let http = reqwest::Client::new();
    let token: Value = http
        .post(format!("{}/protocol/openid-connect/token", keycloak.issuer))
        .basic_auth("gatehouse", Some(SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = format!("http://127.0.0.1:{}/admin/realms/mail/users?{query}", keycloak.port);
    let answer = http.get(url).bearer_auth(token["access_token"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    answer.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailpassword_logins_take_exactly_the_one_user_with_the_address() {
    let Some(mut keycloak) = start_keycloak() else { return };
    let mut disabled = user("dora", "dora@example.org", Some("dorapw"), None);
    disabled.enabled = false;
    let mut twin_a = user("twin-a", "twin@example.org", Some("twinpw"), None);
    twin_a.id = "id-twin-a".into();
    let twin_b = user("twin-b", "TWIN@example.org", Some("twinpw"), None);
    let mut wrapped = user("walt", "walt@example.org", None, None);
    let ssha = generate(b"waltpw", &GenerateScheme::Ssha512).unwrap();
    use base64::Engine;
    wrapped
        .attributes
        .insert("mailcow_password".into(), vec![base64::engine::general_purpose::STANDARD.encode(ssha.as_bytes())]);
    let mut roleless = user("rita", "rita@example.org", Some("ritapw"), None);
    roleless.realm_roles = vec!["other".into()];
    let mut holder = user("hank", "hank@example.org", Some("hankpw"), None);
    holder.realm_roles = vec!["mail-user".into()];
    let mut client_holder = user("cleo", "cleo@example.org", Some("cleopw"), None);
    client_holder.client_roles = BTreeMap::from([("webmail".to_string(), vec!["mail-user".to_string()])]);
    keycloak.set_keycloak_users(&[
        user("alice", "alice@example.org", Some("alicepw"), Some("staff")),
        user("ice", "ice@example.org", Some("icepw"), None),
        user("nopass", "nopass@example.org", None, None),
        disabled,
        twin_a,
        twin_b,
        wrapped,
        roleless,
        holder,
        client_holder,
    ]);
    let source = realm(&keycloak, "gatehouse", json!({}));
    let pool = pool();

    // The stand-in does what Keycloak does: `exact=1` is a substring search (mailcow's query), `exact=true` not.
    let substring = raw_users(&keycloak, "email=ice%40example.org&exact=1").await;
    let names: Vec<&str> = substring.iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert_eq!(names, ["alice", "ice"], "ordered by username, alice first: mailcow would take her");
    assert_eq!(raw_users(&keycloak, "email=ice%40example.org&exact=true").await.len(), 1);

    let SourceLogin::Valid(account) = login(&source, &pool, "alice@example.org", "alicepw").await.unwrap() else {
        panic!("alice's own password opens her mailbox");
    };
    assert_eq!((account.subject.as_str(), account.address.as_str()), ("id-alice", "alice@example.org"));
    assert_eq!(account.display_name.as_deref(), Some("ALICE Example"));
    assert_eq!(account.template_values, ["staff"]);
    assert!(!account.attributes.contains_key("mailcow_password"), "the hash is not carried along");
    // alice's password does not open ice's mailbox, and a substring of her address is nobody.
    assert_eq!(login(&source, &pool, "ice@example.org", "alicepw").await.unwrap(), SourceLogin::WrongPassword);
    assert!(matches!(login(&source, &pool, "ice@example.org", "icepw").await.unwrap(), SourceLogin::Valid(_)));
    assert_eq!(login(&source, &pool, "lice@example.org", "alicepw").await.unwrap(), SourceLogin::NotFound);
    assert_eq!(login(&source, &pool, "alice@example.org", "wrong").await.unwrap(), SourceLogin::WrongPassword);
    assert_eq!(login(&source, &pool, "alice@example.org", "").await.unwrap(), SourceLogin::WrongPassword);
    assert_eq!(login(&source, &pool, "nopass@example.org", "x").await.unwrap(), SourceLogin::WrongPassword);
    assert_eq!(login(&source, &pool, "twin@example.org", "twinpw").await.unwrap(), SourceLogin::Ambiguous(2));
    assert!(matches!(login(&source, &pool, "walt@example.org", "waltpw").await.unwrap(), SourceLogin::Valid(_)));
    let SourceLogin::NotAllowed(why) = login(&source, &pool, "dora@example.org", "dorapw").await.unwrap() else {
        panic!("a disabled user is refused");
    };
    assert!(why.contains("disabled"), "{why}");
    assert_eq!(
        login(&source, &pool, "dora@example.org", "wrong").await.unwrap(),
        SourceLogin::WrongPassword,
        "the account's state is told only to who knows its password"
    );

    // Restricted to a realm role, then to a client role.
    let by_realm_role = realm(&keycloak, "gatehouse", json!({ "user_role": { "name": "mail-user" } }));
    assert!(matches!(login(&by_realm_role, &pool, "hank@example.org", "hankpw").await.unwrap(), SourceLogin::Valid(_)));
    let refused = login(&by_realm_role, &pool, "rita@example.org", "ritapw").await.unwrap();
    assert_eq!(refused, SourceLogin::NotAllowed("the Keycloak user lacks the realm role mail-user".into()));
    let by_client_role =
        realm(&keycloak, "gatehouse", json!({ "user_role": { "name": "mail-user", "client": "webmail" } }));
    assert!(matches!(
        login(&by_client_role, &pool, "cleo@example.org", "cleopw").await.unwrap(),
        SourceLogin::Valid(_)
    ));
    assert!(matches!(
        login(&by_client_role, &pool, "hank@example.org", "hankpw").await.unwrap(),
        SourceLogin::NotAllowed(_)
    ));

    // One token served every request so far of each source; a restart of Keycloak forgets it: the first request
    // after it is refused (401), a new token is fetched once, and the login goes through.
    let tokens =
        |keycloak: &OpenIdProvider| keycloak.keycloak_requests().iter().filter(|l| l.starts_with("POST token")).count();
    assert_eq!(tokens(&keycloak), 2 + 3, "the two raw requests' own, and one for each of the three sources");
    keycloak.halt();
    let down = login(&source, &pool, "alice@example.org", "alicepw").await.unwrap_err();
    assert!(matches!(down, Error::Unavailable(_)), "a Keycloak that is down is a temporary failure: {down}");
    keycloak.resume();
    assert!(matches!(login(&source, &pool, "alice@example.org", "alicepw").await.unwrap(), SourceLogin::Valid(_)));
    let log = keycloak.keycloak_requests();
    assert!(log.iter().any(|l| l.starts_with("GET /users?") && l.ends_with(" 401")), "{log:?}");
    let lookups: Vec<&String> = log.iter().filter(|l| l.contains("briefRepresentation=false")).collect();
    assert!(lookups.len() > 10 && lookups.iter().all(|l| l.contains("&exact=true&")), "{lookups:?}");

    // A service account without view-users: a temporary failure that says what to grant.
    let blind = realm(&keycloak, "blind", json!({}));
    let err = login(&blind, &pool, "alice@example.org", "alicepw").await.unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)) && err.to_string().contains("view-users"), "{err}");
    // Without the mailpassword flow a password is not this source's to check.
    let browser_only = realm(&keycloak, "gatehouse", json!({ "mailpassword_flow": false }));
    assert!(matches!(
        login(&browser_only, &pool, "alice@example.org", "alicepw").await.unwrap(),
        SourceLogin::Unsupported(_)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_are_paged_and_the_connection_test_names_each_step() {
    let Some(mut keycloak) = start_keycloak() else { return };
    let mut users: Vec<KeycloakUser> = (0..250)
        .map(|n| {
            user(
                &format!("u{n:03}"),
                &format!("u{n:03}@example.org"),
                None,
                Some(if n % 2 == 0 { "staff" } else { "it" }),
            )
        })
        .collect();
    users[7].enabled = false;
    users[9].email = None;
    users[11].realm_roles = vec!["mail-user".into()];
    keycloak.set_keycloak_users(&users);
    let source = realm(&keycloak, "gatehouse", json!({ "periodic_sync": true }));
    let accounts = source.list_accounts(&|_| {}).await.unwrap();
    assert_eq!(accounts.len(), 250);
    assert!(!accounts.iter().find(|a| a.subject == "id-u007").unwrap().enabled);
    assert_eq!(accounts.iter().find(|a| a.subject == "id-u009").unwrap().address, "");
    let pages: Vec<String> =
        keycloak.keycloak_requests().into_iter().filter(|l| l.starts_with("GET /users?first=")).collect();
    assert_eq!(pages.len(), 3, "three pages of 100: {pages:?}");
    assert!(pages[2].starts_with("GET /users?first=200&max=100"), "{pages:?}");

    let restricted =
        realm(&keycloak, "gatehouse", json!({ "periodic_sync": true, "user_role": { "name": "mail-user" } }));
    let accounts = restricted.list_accounts(&|_| {}).await.unwrap();
    assert_eq!(accounts.iter().map(|a| a.subject.as_str()).collect::<Vec<_>>(), ["id-u011"]);

    let steps = source.test(Some(&address("u001@example.org"))).await;
    let step =
        |name: &str| steps.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("{name}: {steps:?}")).1.clone();
    assert!(step("client credentials").is_ok(), "{steps:?}");
    assert_eq!(step("admin API readable (view-users)"), Ok("250 users".to_string()));
    let missing = step("attributes visible").unwrap_err();
    assert!(
        missing.contains("no user carries `mailcow_password` — is the attribute declared in the realm's user profile?"),
        "{missing}"
    );
    assert!(step("find u001@example.org").unwrap().contains("template values: it"), "{steps:?}");

    // Keycloak 24+ with a user profile that declares neither attribute: both are named.
    keycloak.set_user_profile(Some(&["firstName"]));
    let steps = source.test(None).await;
    let missing = steps.iter().find(|(n, _)| n == "attributes visible").unwrap().1.clone().unwrap_err();
    assert!(missing.contains("no user carries `mailcow_template` / `mailcow_password`"), "{missing}");
    keycloak.set_user_profile(None);

    let blind = realm(&keycloak, "blind", json!({}));
    let steps = blind.test(None).await;
    let readable = steps.iter().find(|(n, _)| n == "admin API readable (view-users)").unwrap().1.clone();
    assert!(readable.unwrap_err().contains("realm-management role view-users"), "{steps:?}");
    let wrong_secret = {
        let settings = json!({
            "server_url": format!("http://127.0.0.1:{}", keycloak.port), "realm": "mail", "client_id": "gatehouse",
            "mailpassword_flow": true,
        });
        let parsed = SourceSettings::parse(IdentityProviderKind::Keycloak, &settings).unwrap();
        Source::build(parsed, &BTreeMap::from([(OIDC_CLIENT_SECRET.to_string(), Secret::new("nope"))])).unwrap()
    };
    let steps = wrong_secret.test(None).await;
    let credentials = steps.iter().find(|(n, _)| n == "client credentials").unwrap().1.clone().unwrap_err();
    assert!(
        credentials.contains("invalid_client") && credentials.contains("check the client id and secret"),
        "{credentials}"
    );
}
