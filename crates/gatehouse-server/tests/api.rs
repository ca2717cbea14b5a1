//! The REST API over HTTP: the router on a real store (SQLite) and a real hash pool, served on a loopback port
//! with connection info as the public listener serves it, called with a plain HTTP client. Every reply body is
//! kept and checked at the end of each test for secrets: API-key secrets, password hashes, plaintext
//! passwords.

use std::net::SocketAddr;
use std::sync::Mutex;

use axum::Router;
use axum::body::Bytes;
use axum::http::{Method, Request, StatusCode, header};
use gatehouse_core::{DomainName, MailboxAddress};
use gatehouse_passwords::{GenerateScheme, HashPool, HashPoolConfig, VerifyOptions};
use gatehouse_server::api::{ApiState, router};
use gatehouse_store::{
    Actor, ActorRole, ApiKeyAccess, AuthResult, LogFilter, NewApiKey, NewAuthLogEntry, NewDomain, NewMailbox, Store,
};
use gatehouse_testkit::{Engine, TestDatabase};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

/// Fast enough for tests, and a real scheme the store's hash must verify in.
const SCHEME: GenerateScheme = GenerateScheme::BlfCrypt { cost: 4 };
/// A password sent in requests; no reply may contain it.
const PASSWORD: &str = "correct horse battery staple";

/// How the server is reached.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Serving {
    /// With `ConnectInfo<SocketAddr>`, as the public listener.
    WithConnectInfo,
    /// Without it (a misconfigured embedding).
    WithoutConnectInfo,
}

/// A running API with its store, and every reply body seen.
struct Api {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
    store: Store,
    secrets: Mutex<Vec<String>>,
    bodies: Mutex<Vec<String>>,
    server: tokio::task::JoinHandle<()>,
    _database: TestDatabase,
}

/// A reply.
struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    json: Value,
}

impl Reply {
    fn error_kind(&self) -> &str {
        self.json["error"].as_str().unwrap_or("")
    }
}

impl Api {
    async fn start(serving: Serving, trusted_proxies: &[&str]) -> Api {
        let database = TestDatabase::create(Engine::Sqlite).await.expect("SQLite needs no server");
        let store = Store::open(database.url()).await.expect("open the store");
        let hash_pool =
            HashPool::new(HashPoolConfig { workers: 1, default_scheme: SCHEME, ..HashPoolConfig::default() }).unwrap();
        let state = ApiState {
            store: store.clone(),
            hash_pool,
            password_scheme: SCHEME,
            password_policy: gatehouse_core::PasswordPolicy::default(),
            trusted_proxies: trusted_proxies.iter().map(|net| net.parse().unwrap()).collect(),
        };
        let app: Router = Router::new().nest("/api/v1", router(state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let result = match serving {
                Serving::WithConnectInfo => {
                    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await
                }
                Serving::WithoutConnectInfo => axum::serve(listener, app).await,
            };
            result.expect("serve the API");
        });
        Api {
            base: format!("http://{address}/api/v1"),
            client: Client::builder(TokioExecutor::new()).build_http(),
            store,
            secrets: Mutex::new(Vec::new()),
            bodies: Mutex::new(Vec::new()),
            server,
            _database: database,
        }
    }

    /// Creates a key in the store (as the CLI would) and returns its token.
    async fn key(&self, name: &str, access: ApiKeyAccess, networks: &[&str], domains: &[&str]) -> String {
        let new = NewApiKey {
            name: name.into(),
            access,
            allowed_networks: networks.iter().map(|n| n.to_string()).collect(),
            domains: domains.iter().map(|d| DomainName::parse(d).unwrap()).collect(),
        };
        let (_, token) = self.store.create_api_key(&cli(), new).await.unwrap();
        let secret = token.rsplit('_').next().unwrap().to_string();
        self.secrets.lock().unwrap().push(secret);
        token
    }

    async fn send(&self, method: Method, path: &str, headers: &[(&str, &str)], body: Option<String>) -> Reply {
        let mut request = Request::builder().method(method).uri(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let request = request.body(Full::new(Bytes::from(body.unwrap_or_default()))).unwrap();
        let response = self.client.request(request).await.expect("the API answers");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8(bytes.to_vec()).expect("UTF-8 body");
        self.bodies.lock().unwrap().push(text.clone());
        let json = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).expect("a JSON body") };
        Reply { status, headers, json }
    }

    /// A request with `Authorization: Bearer <token>`.
    async fn call(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> Reply {
        let bearer = format!("Bearer {token}");
        self.send(method, path, &[("authorization", &bearer)], body.map(|b| b.to_string())).await
    }

    async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, token, None).await
    }

    /// Checks that no reply so far carried a key secret, a password hash or the plaintext password.
    fn assert_no_secret_was_returned(&self) {
        let secrets = self.secrets.lock().unwrap();
        for body in self.bodies.lock().unwrap().iter() {
            for secret in secrets.iter() {
                assert!(!body.contains(secret.as_str()), "a reply carries an API key secret: {body}");
            }
            for marker in ["{BLF-CRYPT}", "$2y$", "{SSHA256}", "{ARGON2ID}", "password_hash", "secret_hash", "key_hash"]
            {
                assert!(!body.contains(marker), "a reply carries a hash ({marker}): {body}");
            }
            assert!(!body.contains(PASSWORD), "a reply carries the plaintext password: {body}");
        }
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn cli() -> Actor {
    Actor { name: "cli:test".into(), role: ActorRole::Cli }
}

async fn add_domain(store: &Store, name: &str) {
    store.create_domain(&cli(), NewDomain::new(DomainName::parse(name).unwrap())).await.unwrap();
}

async fn add_mailbox(store: &Store, address: &str) {
    store.create_mailbox(&cli(), NewMailbox::new(MailboxAddress::parse(address).unwrap())).await.unwrap();
}

async fn record_login(store: &Store, username: &str) {
    let entry = NewAuthLogEntry {
        service: "imap".into(),
        username: username.into(),
        master_user: None,
        remote_ip: Some("192.0.2.1".into()),
        result: AuthResult::Success,
        reason: "ok".into(),
        app_password_id: None,
    };
    store.record_auth(entry).await.unwrap();
}

fn names(reply: &Reply, field: &str) -> Vec<String> {
    reply.json.as_array().expect("a list").iter().map(|item| item[field].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn requests_without_a_valid_key_are_refused() {
    let api = Api::start(Serving::WithConnectInfo, &[]).await;
    let token = api.key("reader", ApiKeyAccess::ReadOnly, &[], &[]).await;

    let missing = api.send(Method::GET, "/domains", &[], None).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(missing.error_kind(), "unauthorized");
    assert!(missing.headers.get(header::WWW_AUTHENTICATE).is_some());

    let (prefix, secret) = token.rsplit_once('_').unwrap();
    let flipped: String = secret.chars().rev().collect();
    for wrong in [format!("{prefix}_{flipped}"), format!("gk_999_{secret}"), "gk_1_short".into(), "nonsense".into()] {
        let reply = api.get("/domains", &wrong).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{wrong}");
        assert_eq!(reply.error_kind(), "unauthorized");
    }
    let basic = api.send(Method::GET, "/domains", &[("authorization", "Basic dXNlcjpwdw==")], None).await;
    assert_eq!(basic.status, StatusCode::UNAUTHORIZED);

    // Both ways of presenting the key work.
    assert_eq!(api.get("/domains", &token).await.status, StatusCode::OK);
    assert_eq!(api.send(Method::GET, "/domains", &[("x-api-key", &token)], None).await.status, StatusCode::OK);

    // A revoked key stops at once.
    let id = api.store.list_api_keys().await.unwrap()[0].id;
    api.store.revoke_api_key(&cli(), id).await.unwrap();
    let revoked = api.get("/domains", &token).await;
    assert_eq!(revoked.status, StatusCode::UNAUTHORIZED);
    assert_eq!(revoked.error_kind(), "unauthorized");

    // The use was recorded.
    assert!(api.store.list_api_keys().await.unwrap()[0].last_used_at.is_some());
    // The document needs no key; unknown endpoints answer JSON.
    assert_eq!(api.send(Method::GET, "/openapi.json", &[], None).await.status, StatusCode::OK);
    let unknown = api.send(Method::GET, "/nothing-here", &[], None).await;
    assert_eq!((unknown.status, unknown.error_kind()), (StatusCode::NOT_FOUND, "not_found"));
    api.assert_no_secret_was_returned();
}

#[tokio::test]
async fn read_only_keys_can_only_read() {
    let api = Api::start(Serving::WithConnectInfo, &[]).await;
    add_domain(&api.store, "example.org").await;
    add_mailbox(&api.store, "user@example.org").await;
    let token = api.key("reader", ApiKeyAccess::ReadOnly, &[], &[]).await;

    assert_eq!(names(&api.get("/domains", &token).await, "name"), vec!["example.org"]);
    assert_eq!(api.get("/mailboxes/user@example.org", &token).await.status, StatusCode::OK);
    assert_eq!(api.get("/logs/audit", &token).await.status, StatusCode::OK);
    let refused = [
        api.call(Method::POST, "/domains", &token, Some(json!({ "name": "other.org" }))).await,
        api.call(Method::PATCH, "/domains/example.org", &token, Some(json!({ "active": false }))).await,
        api.call(Method::DELETE, "/mailboxes/user@example.org", &token, None).await,
        api.call(
            Method::POST,
            "/mailboxes/user@example.org/app-passwords",
            &token,
            Some(json!({ "name": "x", "protocols": ["imap"] })),
        )
        .await,
    ];
    for reply in refused {
        assert_eq!((reply.status, reply.error_kind()), (StatusCode::FORBIDDEN, "forbidden"), "{}", reply.json);
    }
    assert_eq!(api.store.list_domains().await.unwrap().len(), 1);
    assert!(api.store.domain(&DomainName::parse("example.org").unwrap()).await.unwrap().active);
    assert_eq!(api.store.list_mailboxes(None).await.unwrap().len(), 1);
    api.assert_no_secret_was_returned();
}

#[tokio::test]
async fn network_limits_apply_to_the_client_address() {
    let api = Api::start(Serving::WithConnectInfo, &[]).await;
    let elsewhere = api.key("elsewhere", ApiKeyAccess::ReadWrite, &["192.0.2.0/24"], &[]).await;
    let loopback = api.key("loopback", ApiKeyAccess::ReadWrite, &["127.0.0.0/8", "::1"], &[]).await;
    let refused = api.get("/domains", &elsewhere).await;
    assert_eq!((refused.status, refused.error_kind()), (StatusCode::FORBIDDEN, "forbidden"));
    assert_eq!(api.get("/domains", &loopback).await.status, StatusCode::OK);
    // Forwarding headers count only from trusted proxies.
    let bearer = format!("Bearer {elsewhere}");
    let forwarded = [("authorization", bearer.as_str()), ("x-real-ip", "192.0.2.5")];
    assert_eq!(api.send(Method::GET, "/domains", &forwarded, None).await.status, StatusCode::FORBIDDEN);
    api.assert_no_secret_was_returned();

    let proxied = Api::start(Serving::WithConnectInfo, &["127.0.0.1/32"]).await;
    let elsewhere = proxied.key("elsewhere", ApiKeyAccess::ReadOnly, &["192.0.2.0/24"], &[]).await;
    let bearer = format!("Bearer {elsewhere}");
    let inside = [("authorization", bearer.as_str()), ("x-real-ip", "192.0.2.5")];
    assert_eq!(proxied.send(Method::GET, "/domains", &inside, None).await.status, StatusCode::OK);
    let outside = [("authorization", bearer.as_str()), ("x-real-ip", "198.51.100.5")];
    assert_eq!(proxied.send(Method::GET, "/domains", &outside, None).await.status, StatusCode::FORBIDDEN);
    proxied.assert_no_secret_was_returned();

    // Without connection info, a network-limited key cannot be checked and is refused; others work.
    let blind = Api::start(Serving::WithoutConnectInfo, &[]).await;
    let limited = blind.key("limited", ApiKeyAccess::ReadOnly, &["127.0.0.0/8"], &[]).await;
    let open = blind.key("open", ApiKeyAccess::ReadOnly, &[], &[]).await;
    assert_eq!(blind.get("/domains", &limited).await.status, StatusCode::FORBIDDEN);
    assert_eq!(blind.get("/domains", &open).await.status, StatusCode::OK);
    blind.assert_no_secret_was_returned();
}

#[tokio::test]
async fn domain_limited_keys_see_and_change_only_their_domains() {
    let api = Api::start(Serving::WithConnectInfo, &[]).await;
    for domain in ["a.example", "b.example"] {
        add_domain(&api.store, domain).await;
        add_mailbox(&api.store, &format!("user@{domain}")).await;
        record_login(&api.store, &format!("user@{domain}")).await;
    }
    let token = api.key("a-only", ApiKeyAccess::ReadWrite, &[], &["a.example"]).await;

    // Lists are filtered.
    assert_eq!(names(&api.get("/domains", &token).await, "name"), vec!["a.example"]);
    assert_eq!(names(&api.get("/mailboxes", &token).await, "address"), vec!["user@a.example"]);
    assert_eq!(names(&api.get("/mailboxes?domain=a.example", &token).await, "address"), vec!["user@a.example"]);
    assert_eq!(names(&api.get("/logs/auth", &token).await, "username"), vec!["user@a.example"]);
    let audit = api.get("/logs/audit", &token).await;
    assert!(names(&audit, "target").iter().all(|t| t.ends_with("a.example")), "{}", audit.json);
    assert_eq!(api.get("/logs/jobs", &token).await.json, json!([]));

    // Objects of other domains look like objects that do not exist.
    let unknown = api.get("/domains/nowhere.example", &token).await;
    let hidden = api.get("/domains/b.example", &token).await;
    assert_eq!((hidden.status, hidden.error_kind()), (unknown.status, unknown.error_kind()));
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    let not_found = [
        api.call(Method::PATCH, "/domains/b.example", &token, Some(json!({ "active": false }))).await,
        api.call(Method::DELETE, "/domains/b.example", &token, None).await,
        api.get("/mailboxes?domain=b.example", &token).await,
        api.get("/mailboxes/user@b.example", &token).await,
        api.call(Method::PATCH, "/mailboxes/user@b.example", &token, Some(json!({ "password": PASSWORD }))).await,
        api.call(Method::DELETE, "/mailboxes/user@b.example", &token, None).await,
        api.get("/mailboxes/user@b.example/app-passwords", &token).await,
        api.call(
            Method::POST,
            "/mailboxes/user@b.example/app-passwords",
            &token,
            Some(json!({ "name": "x", "protocols": ["imap"] })),
        )
        .await,
        api.call(Method::DELETE, "/mailboxes/user@b.example/app-passwords/1", &token, None).await,
    ];
    for reply in not_found {
        assert_eq!((reply.status, reply.error_kind()), (StatusCode::NOT_FOUND, "not_found"), "{}", reply.json);
    }
    // Creating outside its domains is forbidden.
    for (path, body) in [
        ("/domains", json!({ "name": "c.example" })),
        ("/mailboxes", json!({ "address": "new@b.example", "password": PASSWORD })),
    ] {
        let reply = api.call(Method::POST, path, &token, Some(body)).await;
        assert_eq!((reply.status, reply.error_kind()), (StatusCode::FORBIDDEN, "forbidden"), "{}", reply.json);
    }
    // Inside them it works.
    let created = api.call(Method::POST, "/mailboxes", &token, Some(json!({ "address": "new@a.example" }))).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.json);

    // Nothing of b.example changed.
    let b = api.store.domain(&DomainName::parse("b.example").unwrap()).await.unwrap();
    assert!(b.active);
    assert_eq!(b.mailboxes, 1);
    assert_eq!(api.store.mailbox_password_hash(&MailboxAddress::parse("user@b.example").unwrap()).await.unwrap(), None);
    api.assert_no_secret_was_returned();
}

#[tokio::test]
async fn domains_and_mailboxes_are_managed_with_hashed_passwords() {
    let api = Api::start(Serving::WithConnectInfo, &[]).await;
    let token = api.key("provisioning", ApiKeyAccess::ReadWrite, &[], &[]).await;

    let created = api
        .call(
            Method::POST,
            "/domains",
            &token,
            Some(json!({ "name": "Example.ORG", "max_quota_mib": 100, "default_quota_mib": 50 })),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.json);
    assert_eq!(created.json["name"], "example.org");
    let duplicate = api.call(Method::POST, "/domains", &token, Some(json!({ "name": "example.org" }))).await;
    assert_eq!((duplicate.status, duplicate.error_kind()), (StatusCode::CONFLICT, "already_exists"));

    let mailbox = api
        .call(
            Method::POST,
            "/mailboxes",
            &token,
            Some(json!({ "address": "User@example.org", "password": PASSWORD, "protocols": ["imap", "smtp"] })),
        )
        .await;
    assert_eq!(mailbox.status, StatusCode::CREATED, "{}", mailbox.json);
    assert_eq!(mailbox.json["address"], "user@example.org");
    assert_eq!(mailbox.json["has_local_password"], true);
    assert_eq!(mailbox.json["protocols"], json!(["imap", "smtp"]));
    assert_eq!(mailbox.json["quota_mib"], 50);
    assert!(mailbox.json.get("password").is_none());
    let address = MailboxAddress::parse("user@example.org").unwrap();
    let verifies = |hash: &str, password: &str| {
        gatehouse_passwords::verify(hash, password.as_bytes(), &VerifyOptions::default()).is_match()
    };
    let hash = api.store.mailbox_password_hash(&address).await.unwrap().expect("a stored hash");
    assert!(hash.starts_with("{BLF-CRYPT}"), "{hash}");
    assert!(verifies(&hash, PASSWORD));

    let changed = api
        .call(
            Method::PATCH,
            "/mailboxes/user@example.org",
            &token,
            Some(json!({ "password": "new password", "display_name": "User" })),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.json);
    assert_eq!(changed.json["display_name"], "User");
    let hash = api.store.mailbox_password_hash(&address).await.unwrap().unwrap();
    assert!(verifies(&hash, "new password") && !verifies(&hash, PASSWORD));
    assert_eq!(api.get("/mailboxes/user@example.org", &token).await.json["display_name"], "User");

    // Error mapping.
    let cases = [
        (
            api.call(Method::PATCH, "/mailboxes/user@example.org", &token, Some(json!({ "quota_mib": 500 }))).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "refused",
        ),
        (
            api.call(Method::DELETE, "/domains/example.org", &token, None).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "refused",
        ),
        (api.get("/domains/unknown.example", &token).await, StatusCode::NOT_FOUND, "not_found"),
        (api.get("/mailboxes/nobody@example.org", &token).await, StatusCode::NOT_FOUND, "not_found"),
        (api.get("/domains/not_a_domain", &token).await, StatusCode::BAD_REQUEST, "invalid"),
        (api.get("/mailboxes/no-at-sign", &token).await, StatusCode::BAD_REQUEST, "invalid"),
        (
            api.call(Method::POST, "/mailboxes", &token, Some(json!({ "address": "x@example.org", "password": "" })))
                .await,
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            api.call(
                Method::POST,
                "/mailboxes",
                &token,
                Some(json!({ "address": "x@example.org", "protocols": ["lmtp"] })),
            )
            .await,
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            api.call(Method::POST, "/domains", &token, Some(json!({ "name": "x.example", "colour": "red" }))).await,
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            api.call(Method::POST, "/domains", &token, Some(json!({ "description": "no name" }))).await,
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (api.get("/logs/auth?limit=many", &token).await, StatusCode::BAD_REQUEST, "invalid"),
        (api.call(Method::PUT, "/domains", &token, None).await, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
    ];
    for (reply, status, kind) in cases {
        assert_eq!((reply.status, reply.error_kind()), (status, kind), "{}", reply.json);
        assert!(reply.json["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
    let bearer = format!("Bearer {token}");
    let malformed = api.send(Method::POST, "/domains", &[("authorization", &bearer)], Some("{\"name\": ".into())).await;
    assert_eq!((malformed.status, malformed.error_kind()), (StatusCode::BAD_REQUEST, "invalid"));

    // Removal.
    assert_eq!(
        api.call(Method::DELETE, "/mailboxes/user@example.org", &token, None).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(api.call(Method::DELETE, "/domains/example.org", &token, None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(api.get("/domains/example.org", &token).await.status, StatusCode::NOT_FOUND);

    // Every change is attributed to the key.
    let audit = api.store.audit_log(&LogFilter { limit: Some(1000), ..Default::default() }).await.unwrap();
    let by_key: Vec<&str> =
        audit.iter().filter(|e| e.actor == "api-key:provisioning").map(|e| e.action.as_str()).rev().collect();
    assert_eq!(by_key, vec!["domain.add", "mailbox.add", "mailbox.edit", "mailbox.remove", "domain.remove"]);
    assert!(audit.iter().filter(|e| e.actor == "api-key:provisioning").all(|e| e.actor_role == "api"));
    let logged = api.get("/logs/audit?subject=example.org&limit=10", &token).await;
    assert_eq!(names(&logged, "action"), vec!["domain.remove", "domain.add"]);
    api.assert_no_secret_was_returned();
}

#[tokio::test]
async fn app_password_tokens_are_returned_once() {
    let api = Api::start(Serving::WithConnectInfo, &[]).await;
    add_domain(&api.store, "example.org").await;
    add_mailbox(&api.store, "user@example.org").await;
    let token = api.key("helpdesk", ApiKeyAccess::ReadWrite, &[], &["example.org"]).await;
    let path = "/mailboxes/user@example.org/app-passwords";

    let created =
        api.call(Method::POST, path, &token, Some(json!({ "name": "Phone", "protocols": ["imap", "smtp"] }))).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.json);
    let id = created.json["id"].as_i64().unwrap();
    let app_token = created.json["token"].as_str().unwrap().to_string();
    assert!(app_token.starts_with(&format!("gh_{id}_")), "{app_token}");
    assert_eq!(created.json["protocols"], json!(["imap", "smtp"]));
    let app_secret = app_token.rsplit('_').next().unwrap().to_string();

    let listed = api.get(path, &token).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(names(&listed, "name"), vec!["Phone"]);
    assert!(listed.json[0].get("token").is_none());
    assert!(!listed.json.to_string().contains(&app_secret));

    let bad = [
        (
            api.call(Method::POST, path, &token, Some(json!({ "name": "None", "protocols": [] }))).await,
            StatusCode::BAD_REQUEST,
        ),
        (
            api.call(
                Method::POST,
                path,
                &token,
                Some(json!({ "name": "Old", "protocols": ["imap"], "expires_at": 1 })),
            )
            .await,
            StatusCode::BAD_REQUEST,
        ),
        (api.call(Method::DELETE, &format!("{path}/abc"), &token, None).await, StatusCode::BAD_REQUEST),
        (api.call(Method::DELETE, &format!("{path}/{}", id + 100), &token, None).await, StatusCode::NOT_FOUND),
        (api.get("/mailboxes/nobody@example.org/app-passwords", &token).await, StatusCode::NOT_FOUND),
    ];
    for (reply, status) in bad {
        assert_eq!(reply.status, status, "{}", reply.json);
    }

    let revoked = api.call(Method::DELETE, &format!("{path}/{id}"), &token, None).await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.json);
    assert_eq!(revoked.json["active"], false);
    assert_eq!(api.get(path, &token).await.json[0]["active"], false);

    // The token was in exactly one reply: the creation.
    let bodies = api.bodies.lock().unwrap().clone();
    assert_eq!(bodies.iter().filter(|b| b.contains(&app_secret)).count(), 1);
    api.assert_no_secret_was_returned();
}

#[tokio::test]
async fn a_database_outage_is_503_without_details() {
    let api = Api::start(Serving::WithConnectInfo, &[]).await;
    let token = api.key("reader", ApiKeyAccess::ReadOnly, &[], &[]).await;
    api.store.clone().close().await;
    let reply = api.get("/domains", &token).await;
    assert_eq!((reply.status, reply.error_kind()), (StatusCode::SERVICE_UNAVAILABLE, "unavailable"));
    let detail = reply.json["detail"].as_str().unwrap();
    assert!(!detail.contains("sqlite") && !detail.contains("pool"), "{detail}");
}

#[tokio::test]
async fn the_openapi_document_lists_every_route() {
    let api = Api::start(Serving::WithConnectInfo, &[]).await;
    let document = api.send(Method::GET, "/openapi.json", &[], None).await;
    assert_eq!(document.status, StatusCode::OK);
    assert!(document.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("application/json"));
    let document = document.json;
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(document["servers"][0]["url"], "/api/v1");
    assert!(document["components"]["securitySchemes"]["bearer"].is_object());
    assert!(document["components"]["securitySchemes"]["api_key"].is_object());

    let expected: &[(&str, &[&str])] = &[
        ("/domains", &["get", "post"]),
        ("/domains/{name}", &["get", "patch", "delete"]),
        ("/mailboxes", &["get", "post"]),
        ("/mailboxes/{address}", &["get", "patch", "delete"]),
        ("/mailboxes/{address}/app-passwords", &["get", "post"]),
        ("/mailboxes/{address}/app-passwords/{id}", &["delete"]),
        ("/identity-providers", &["get", "post"]),
        ("/identity-providers/{name}", &["get", "patch", "delete"]),
        ("/identity-providers/{name}/test", &["post"]),
        ("/logs/auth", &["get"]),
        ("/logs/audit", &["get"]),
        ("/logs/jobs", &["get"]),
        ("/openapi.json", &["get"]),
    ];
    let paths = document["paths"].as_object().unwrap();
    let mut documented: Vec<(String, String)> = paths
        .iter()
        .flat_map(|(path, item)| item.as_object().unwrap().keys().map(move |method| (path.clone(), method.clone())))
        .collect();
    documented.sort();
    let mut wanted: Vec<(String, String)> = expected
        .iter()
        .flat_map(|(path, methods)| methods.iter().map(move |m| (path.to_string(), m.to_string())))
        .collect();
    wanted.sort();
    assert_eq!(documented, wanted);

    // Every documented operation is served (a key-less request reaches the key check, not the fallback).
    for (path, method) in &documented {
        let concrete =
            path.replace("{name}", "example.org").replace("{address}", "user@example.org").replace("{id}", "1");
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let reply = api.send(method.clone(), &concrete, &[], None).await;
        let expected = if path == "/openapi.json" { StatusCode::OK } else { StatusCode::UNAUTHORIZED };
        assert_eq!(reply.status, expected, "{method} {concrete}: {}", reply.json);
    }
    // Request bodies and replies are described with their schemas, passwords as write-only.
    let schemas = &document["components"]["schemas"];
    for name in ["DomainView", "MailboxView", "NewMailboxRequest", "CreatedAppPassword", "ErrorBody", "AuditEntryView"]
    {
        assert!(schemas[name].is_object(), "schema {name} missing");
    }
    assert_eq!(schemas["NewMailboxRequest"]["properties"]["password"]["writeOnly"], true);
}

#[tokio::test]
async fn identity_providers_are_managed_with_write_only_secrets() {
    let api = Api::start(Serving::WithConnectInfo, &[]).await;
    add_domain(&api.store, "example.org").await;
    let admin = api.key("admin", ApiKeyAccess::ReadWrite, &[], &[]).await;
    let reader = api.key("reader", ApiKeyAccess::ReadOnly, &[], &[]).await;
    let limited = api.key("limited", ApiKeyAccess::ReadWrite, &[], &["example.org"]).await;
    let client_secret = "oidc-client-secret-never-returned";
    api.secrets.lock().unwrap().push(client_secret.to_string());
    // Nothing listens on port 1: adding checks what can be checked without the network.
    let settings = json!({ "issuer": "http://127.0.0.1:1", "client_id": "gatehouse", "label": "Company login" });
    let create = |body: Value| api.call(Method::POST, "/identity-providers", &admin, Some(body));

    let missing = create(json!({ "name": "corp", "kind": "oidc", "settings": settings })).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST, "{}", missing.json);
    assert!(missing.json["detail"].as_str().unwrap().contains("client secret is required"), "{}", missing.json);
    let mut typo = settings.clone();
    typo["scope"] = json!("openid");
    let refused =
        create(json!({ "name": "corp", "kind": "oidc", "settings": typo, "secrets": { "client_secret": "x" } }));
    assert!(refused.await.json["detail"].as_str().unwrap().contains("unknown oidc setting(s): scope"));
    let public = json!({ "issuer": "http://127.0.0.1:1", "client_id": "app", "public_client": true });
    let extra =
        create(json!({ "name": "app", "kind": "oidc", "settings": public, "secrets": { "client_secret": "x" } }));
    assert!(extra.await.json["detail"].as_str().unwrap().contains("has no secret 'client_secret'"));
    let unknown_kind = create(json!({ "name": "x", "kind": "saml", "settings": {} })).await;
    assert_eq!(unknown_kind.status, StatusCode::BAD_REQUEST);

    let created = create(
        json!({ "name": "corp", "kind": "oidc", "settings": settings, "secrets": { "client_secret": client_secret } }),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.json);
    assert_eq!(created.json["secret_names"], json!(["client_secret"]));
    assert_eq!(created.json["settings"]["label"], "Company login");

    let changed = api
        .call(
            Method::PATCH,
            "/identity-providers/corp",
            &admin,
            Some(json!({ "settings": { "ignore_tls_errors": true, "label": null } })),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.json);
    assert!(changed.json["settings"].get("label").is_none_or(Value::is_null), "{}", changed.json);
    assert!(changed.json["warnings"][0].as_str().unwrap().contains("TLS certificates are not checked"));
    let bad = api
        .call(Method::PATCH, "/identity-providers/corp", &admin, Some(json!({ "secrets": { "bind_password": "x" } })))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.json);

    let tested = api.call(Method::POST, "/identity-providers/corp/test", &admin, None).await;
    assert_eq!(tested.status, StatusCode::OK, "{}", tested.json);
    let steps = tested.json.as_array().unwrap();
    assert!(steps.iter().any(|s| s["step"] == "discovery" && s["ok"] == false), "{}", tested.json);

    assert_eq!(names(&api.get("/identity-providers", &reader).await, "name"), vec!["corp"]);
    let forbidden = [
        api.call(Method::DELETE, "/identity-providers/corp", &reader, None).await,
        api.call(Method::PATCH, "/identity-providers/corp", &reader, Some(json!({ "active": false }))).await,
        api.get("/identity-providers", &limited).await,
        api.call(Method::POST, "/identity-providers/corp/test", &limited, None).await,
    ];
    for reply in forbidden {
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.json);
    }
    assert_eq!(api.get("/identity-providers/nobody", &admin).await.status, StatusCode::NOT_FOUND);
    let removed = api.call(Method::DELETE, "/identity-providers/corp", &admin, None).await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    assert!(api.store.identity_provider("corp").await.unwrap().is_none());
    let audit = api.store.audit_log(&LogFilter::default()).await.unwrap();
    assert!(audit.iter().any(|entry| entry.actor == "api-key:admin" && entry.target == "corp"), "{audit:?}");
    api.assert_no_secret_was_returned();
}
