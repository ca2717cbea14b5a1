//! The web peers of the test kit, proven on real programs: nginx with `auth_request`, SOGo behind it with proxy
//! authentication, and headless Chromium through chromedriver. Each test skips locally (and fails in CI) when
//! its program is missing.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gatehouse_testkit::browser::Browser;
use gatehouse_testkit::free_port;
use gatehouse_testkit::nginx::Nginx;
use gatehouse_testkit::oidc::{OidcClient, OpenIdProvider, ProviderOptions};
use gatehouse_testkit::sogo::{Sogo, SogoOptions};

/// One HTTP request as the stub saw it (header names lower-cased).
#[derive(Debug, Clone)]
struct Request {
    method: String,
    target: String,
    headers: BTreeMap<String, String>,
    body: String,
}

/// A stub's answer.
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn new(status: u16, body: impl Into<String>) -> Response {
        Response { status, headers: Vec::new(), body: body.into() }
    }

    fn header(mut self, name: &str, value: impl Into<String>) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }
}

type Handler = dyn Fn(&Request) -> Response + Send + Sync;

/// A tiny HTTP/1.x server on a loopback port: one thread per connection, one request per connection
/// (`Connection: close`), every request recorded. It lives as long as the test process.
struct Stub {
    port: u16,
    seen: Arc<Mutex<Vec<Request>>>,
}

impl Stub {
    fn start(handler: impl Fn(&Request) -> Response + Send + Sync + 'static) -> Stub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let record = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (handler, record) = (handler.clone(), record.clone());
                std::thread::spawn(move || serve(stream, &*handler, &record));
            }
        });
        Stub { port, seen }
    }

    fn requests(&self) -> Vec<Request> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve(stream: TcpStream, handler: &Handler, record: &Mutex<Vec<Request>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
    let mut headers = BTreeMap::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
        }
    }
    let length = headers.get("content-length").and_then(|l| l.parse::<usize>().ok()).unwrap_or(0);
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let request = Request { method, target, headers, body: String::from_utf8_lossy(&body).into_owned() };
    record.lock().unwrap().push(request.clone());
    let response = handler(&request);
    let mut out =
        format!("HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n", response.status, response.body.len());
    for (name, value) in &response.headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(&response.body);
    let mut stream = stream;
    let _ = stream.write_all(out.as_bytes());
}

/// Sends one HTTP/1.0 request to `127.0.0.1:port` and returns (status, lower-cased headers, body).
fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, BTreeMap<String, String>, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut request = format!("{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

/// How many processes have `needle` in their command line.
fn processes_with(needle: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .filter(|c| String::from_utf8_lossy(c).contains(needle))
        .count()
}

const ALICE: &str = "alice@example.org";

/// `Basic base64(alice@example.org:whatever)`.
const ALICE_BASIC: &str = "Basic YWxpY2VAZXhhbXBsZS5vcmc6d2hhdGV2ZXI=";

/// The auth endpoint of the stubs: 401 when the original URI mentions "deny", else 200 with alice's identity.
fn auth_answer(request: &Request) -> Response {
    if request.headers.get("x-original-uri").is_some_and(|u| u.contains("deny")) {
        return Response::new(401, "").header("WWW-Authenticate", "Basic realm=\"stub\"");
    }
    Response::new(200, "").header("X-User", ALICE).header("X-Auth", ALICE_BASIC).header("X-Auth-Type", "Basic")
}

/// The `auth_request` locations of the SOGo tests, as in the integration contracts (§6.2).
fn auth_locations(auth_port: u16, backend: &str, prefix: &str) -> String {
    format!(
        r#"
    location = /_auth {{
      internal;
      proxy_pass http://127.0.0.1:{auth_port}/nginx-auth;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URI $request_uri;
      proxy_set_header X-Original-Method $request_method;
      proxy_set_header X-Real-IP $remote_addr;
    }}
    location {prefix} {{
      auth_request /_auth;
      auth_request_set $user $upstream_http_x_user;
      auth_request_set $auth $upstream_http_x_auth;
      auth_request_set $auth_type $upstream_http_x_auth_type;
      proxy_set_header x-webobjects-remote-user $user;
      proxy_set_header Authorization $auth;
      proxy_set_header x-webobjects-auth-type $auth_type;
      proxy_set_header Host $http_host;
      proxy_set_header x-webobjects-server-protocol HTTP/1.0;
      proxy_set_header x-webobjects-remote-host $remote_addr;
      proxy_set_header x-webobjects-server-name $server_name;
      proxy_set_header x-webobjects-server-url http://$http_host;
      proxy_set_header x-webobjects-server-port $server_port;
      proxy_pass {backend};
    }}"#
    )
}

#[test]
fn nginx_serves_and_replaces_identity_headers_after_auth_request() {
    let stub = Stub::start(|request| {
        if request.target.starts_with("/nginx-auth") {
            return auth_answer(request);
        }
        // The backend echoes what it received.
        let headers: String = request.headers.iter().map(|(n, v)| format!("{n}: {v}\n")).collect();
        Response::new(200, format!("{} {}\n{headers}", request.method, request.target))
    });
    let port = free_port();
    let server = format!(
        "server {{\n    listen 127.0.0.1:{port};\n    location = /hello {{ return 200 \"hi\"; }}\n{}\n}}",
        auth_locations(stub.port, &format!("http://127.0.0.1:{}", stub.port), "/app/")
    );
    let Some(mut nginx) = Nginx::start(&server) else { return };

    let (status, _, body) = http(port, "GET", "/hello", &[]);
    assert_eq!((status, body.as_str()), (200, "hi"));

    let (status, _, body) = http(
        port,
        "POST",
        "/app/page?x=1",
        &[("x-webobjects-remote-user", "evil"), ("Authorization", "Basic ZXZpbDpldmls")],
    );
    assert_eq!(status, 200, "{body}\n{}", nginx.error_log());
    assert!(body.starts_with("POST /app/page?x=1\n"), "{body}");
    assert!(body.contains(&format!("x-webobjects-remote-user: {ALICE}\n")), "{body}");
    assert!(!body.contains("evil"), "a client-sent identity header reached the backend:\n{body}");
    assert!(body.contains(&format!("authorization: {ALICE_BASIC}\n")), "{body}");
    assert!(body.contains("x-webobjects-auth-type: Basic\n"), "{body}");

    // The auth subrequest is a GET carrying the original method and URI (and the client's headers).
    let auth: Vec<Request> = stub.requests().into_iter().filter(|r| r.target == "/nginx-auth").collect();
    let first = auth.first().expect("an auth subrequest");
    assert_eq!(first.method, "GET");
    assert_eq!(first.headers.get("x-original-method").map(String::as_str), Some("POST"));
    assert_eq!(first.headers.get("x-original-uri").map(String::as_str), Some("/app/page?x=1"));
    assert_eq!(first.headers.get("x-webobjects-remote-user").map(String::as_str), Some("evil"));

    // A 401 from the auth endpoint denies, with its WWW-Authenticate, and the backend is not reached.
    let before = stub.requests().len();
    let (status, headers, _) = http(port, "GET", "/app/deny", &[]);
    assert_eq!(status, 401);
    assert_eq!(headers.get("www-authenticate").map(String::as_str), Some("Basic realm=\"stub\""));
    assert!(stub.requests()[before..].iter().all(|r| r.target != "/app/deny"));
    assert!(nginx.access_log().contains("\"GET /hello HTTP/1.0\" 200"), "{}", nginx.access_log());

    nginx.stop();
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "nginx still listens after stop");
}

#[test]
fn sogo_behind_nginx_answers_propfind_for_the_proxy_user() {
    let Some(sogo) = Sogo::start(SogoOptions::default()) else { return };
    sogo.add_user(ALICE, "Alice Example");
    let auth = Stub::start(auth_answer);
    let port = free_port();
    let server =
        format!("server {{\n    listen 127.0.0.1:{port};\n{}\n}}", auth_locations(auth.port, &sogo.url(), "/SOGo"));
    let Some(nginx) = Nginx::start(&server) else { return };

    let (status, _, body) =
        http(port, "PROPFIND", &format!("/SOGo/dav/{ALICE}/"), &[("Depth", "0"), ("x-webobjects-remote-user", "evil")]);
    assert_eq!(status, 207, "{body}\n{}\n{}", nginx.error_log(), sogo.log());
    assert!(body.contains(&format!("<D:href>/SOGo/dav/{ALICE}/</D:href>")), "{body}");
    assert!(body.contains("<D:displayname>Alice Example</D:displayname>"), "{body}");
    assert!(sogo.log().contains(&format!("starting method 'PROPFIND' on uri '/SOGo/dav/{ALICE}/'")), "{}", sogo.log());

    // Denied by the hub: nginx answers 401 and SOGo never sees the request.
    let (status, _, _) = http(port, "PROPFIND", "/SOGo/dav/deny/", &[("Depth", "0")]);
    assert_eq!(status, 401);
    assert!(!sogo.log().contains("/SOGo/dav/deny/"));
}

#[test]
fn sogo_stops_and_frees_its_port_and_database() {
    let Some(mut sogo) = Sogo::start(SogoOptions::default()) else { return };
    let port = sogo.port();
    let database = sogo.database_url().to_string();
    let started = std::time::Instant::now();
    sogo.stop();
    assert!(started.elapsed() < Duration::from_secs(10), "stopping took {:?}", started.elapsed());
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "sogod still listens after stop");
    assert_eq!(processes_with(&sogo.dir().display().to_string()), 0, "sogod processes are left");
    // The database and its role are gone.
    let name = database.rsplit('/').next().unwrap().to_string();
    let admin =
        std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| gatehouse_testkit::sogo::DEFAULT_POSTGRES_URL.into());
    let left = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
        use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
        let conn = Database::connect(admin.as_str()).await.unwrap();
        let row = conn
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT (SELECT count(*) FROM pg_database WHERE datname = $1) + \
                 (SELECT count(*) FROM pg_roles WHERE rolname = $1) AS n",
                [name.clone().into()],
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get::<i64>("", "n").unwrap()
    });
    assert_eq!(left, 0, "database or role {name} is left");
}

#[tokio::test]
async fn browser_fills_and_submits_a_form() {
    let stub = Stub::start(|request| match (request.method.as_str(), request.target.as_str()) {
        ("GET", "/form") => Response::new(
            200,
            "<!doctype html><html><head><title>Login</title></head><body>\
             <form method=post action=/submit><input id=user name=user><input id=pw name=pw type=password>\
             <button id=go type=submit>Go</button></form></body></html>",
        )
        .header("Content-Type", "text/html; charset=utf-8"),
        ("POST", "/submit") => {
            let form: BTreeMap<String, String> =
                url::form_urlencoded::parse(request.body.as_bytes()).into_owned().collect();
            let user = form.get("user").cloned().unwrap_or_default();
            Response::new(
                200,
                format!(
                    "<!doctype html><html><head><title>Done</title></head><body><p id=result>Hello, {user} ({} chars of password)</p></body></html>",
                    form.get("pw").map_or(0, String::len)
                ),
            )
            .header("Content-Type", "text/html; charset=utf-8")
            .header("Set-Cookie", format!("session=s-{user}; Path=/; HttpOnly"))
        }
        _ => Response::new(404, "not found"),
    });
    let Some(browser) = Browser::start().await else { return };
    let base = format!("http://127.0.0.1:{}", stub.port);

    browser.goto(&format!("{base}/form")).await;
    assert_eq!(browser.title().await, "Login");
    browser.fill("#user", "alice").await;
    browser.fill("#pw", "secret").await;
    browser.click("#go").await;

    assert_eq!(browser.text("#result").await, "Hello, alice (6 chars of password)");
    assert_eq!(browser.current_url().await.as_str(), format!("{base}/submit"));
    assert!(browser.source().await.contains("<title>Done</title>"));
    assert_eq!(browser.cookie("session").await.as_deref(), Some("s-alice"));
    let posted = stub.requests().into_iter().find(|r| r.method == "POST").expect("the form was posted");
    assert_eq!(posted.body, "user=alice&pw=secret");

    let shot = browser.screenshot(browser.dir().join("done.png")).await;
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 1000, "not a PNG: {} bytes", png.len());

    let profile = browser.dir().display().to_string();
    browser.close().await;
    assert_eq!(processes_with(&profile), 0, "Chromium or chromedriver processes are left");
}

#[tokio::test]
async fn dropping_a_browser_kills_chromium() {
    let Some(browser) = Browser::start().await else { return };
    browser.goto("data:text/html,<p id=x>ok</p>").await;
    assert_eq!(browser.text("#x").await, "ok");
    let profile = browser.dir().display().to_string();
    assert!(processes_with(&profile) > 2, "chromedriver and Chromium's processes should be running");
    drop(browser);
    assert_eq!(processes_with(&profile), 0, "Chromium or chromedriver processes are left after drop");
}

/// The discovery document of `provider`, fetched over HTTP.
fn discovery(provider: &OpenIdProvider) -> serde_json::Value {
    let path = provider.discovery_url().split_once(&format!(":{}", provider.port)).unwrap().1.to_string();
    let (status, _, body) = http(provider.port, "GET", &path, &[]);
    assert_eq!(status, 200, "{body}\n{}", provider.log());
    serde_json::from_str(&body).unwrap()
}

/// The `kid`s the provider's JWKS publishes.
fn key_ids(provider: &OpenIdProvider) -> Vec<String> {
    let jwks_uri = discovery(provider)["jwks_uri"].as_str().unwrap().to_string();
    let path = jwks_uri.split_once(&format!(":{}", provider.port)).unwrap().1.to_string();
    let (status, _, body) = http(provider.port, "GET", &path, &[]);
    assert_eq!(status, 200, "{body}");
    let keys: serde_json::Value = serde_json::from_str(&body).unwrap();
    keys["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_string()).collect()
}

#[test]
fn openid_providers_serve_discovery_keys_pkce_and_keycloak_paths() {
    let redirect = "http://127.0.0.1:1/oidc/callback";
    let clients = [OidcClient::confidential("gatehouse", "client-secret", redirect)];
    let accounts = [("alice".to_string(), serde_json::json!({ "email": "alice@example.org", "email_verified": true }))]
        .into_iter()
        .collect();

    let Some(generic) = OpenIdProvider::start(&ProviderOptions::default(), &clients, &accounts) else { return };
    let document = discovery(&generic);
    assert_eq!(document["issuer"], generic.issuer.as_str());
    assert_eq!(document["authorization_endpoint"], format!("{}/auth", generic.issuer).as_str());
    assert_eq!(document["code_challenge_methods_supported"], serde_json::json!(["S256"]));
    assert_eq!(key_ids(&generic), vec!["key-1"]);
    // A registered client without a PKCE challenge is sent back with an error; an unknown client is not sent
    // anywhere.
    let query = format!(
        "client_id=gatehouse&response_type=code&scope=openid&redirect_uri={}",
        redirect.replace(':', "%3A").replace('/', "%2F")
    );
    let (status, headers, _) = http(generic.port, "GET", &format!("/auth?{query}"), &[]);
    assert_eq!(status, 303, "{}", generic.log());
    let location = headers.get("location").cloned().unwrap_or_default();
    assert!(location.starts_with(redirect) && location.contains("error=invalid_request"), "{location}");
    let (status, headers, _) =
        http(generic.port, "GET", &format!("/auth?{}", query.replace("gatehouse", "stranger")), &[]);
    assert_eq!(status, 400);
    assert!(!headers.contains_key("location"));

    let Some(mut keycloak) = OpenIdProvider::start(&ProviderOptions::keycloak("mail"), &clients, &accounts) else {
        return;
    };
    assert!(keycloak.issuer.ends_with("/realms/mail"));
    let document = discovery(&keycloak);
    assert_eq!(document["issuer"], keycloak.issuer.as_str());
    for (field, path) in [
        ("authorization_endpoint", "/protocol/openid-connect/auth"),
        ("token_endpoint", "/protocol/openid-connect/token"),
        ("jwks_uri", "/protocol/openid-connect/certs"),
        ("end_session_endpoint", "/protocol/openid-connect/logout"),
    ] {
        assert_eq!(document[field], format!("{}{path}", keycloak.issuer).as_str(), "{field}");
    }
    assert_eq!(http(keycloak.port, "GET", "/.well-known/openid-configuration", &[]).0, 404, "only under the realm");
    keycloak.rotate_key("key-2");
    assert_eq!(key_ids(&keycloak), vec!["key-2"], "a restart with another key id rotates the key");
    let port = keycloak.port;
    drop(keycloak);
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "the provider still listens after drop");
}
