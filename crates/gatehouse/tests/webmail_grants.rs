//! Webmail grants are worth what allowed them, at every request: `/nginx/auth` (asked by nginx for every SOGo
//! request) and the SSO token (SOGo's IMAP password) stop the moment the setting, the mailbox's webmail flag,
//! the mailbox or its domain change. And what nginx passes on to SOGo carries no identity of the client's
//! making and no Gatehouse session cookie, through the real nginx with the locations `gatehouse config nginx`
//! prints, in front of a backend that records what it receives.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use gatehouse_testkit::free_port;
use support::http::{Client, request};
use support::{Server, cli_ok};

/// What `/nginx/auth` answers for a browser with `client`'s cookies at `uri`: the status and the mailbox.
fn nginx_auth(server: &Server, client: &Client, uri: &str) -> (u16, Option<String>, Option<String>) {
    let cookie = client.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
    let headers =
        [("Cookie", cookie.as_str()), ("X-Original-URI", uri), ("X-Gatehouse-Secret", server.secret.as_str())];
    let answer = request(server.internal, "GET", "/nginx/auth", &headers, "");
    let token = answer.header("x-auth").and_then(|auth| {
        let decoded = base64::engine::general_purpose::STANDARD.decode(auth.strip_prefix("Basic ")?).ok()?;
        Some(String::from_utf8(decoded).ok()?.split_once(':')?.1.to_string())
    });
    (answer.status, answer.header("x-user").map(str::to_string), token)
}

/// Whether Dovecot's endpoint accepts `token` as `mailbox`'s IMAP password (what SOGo does with it).
fn token_opens_imap(server: &Server, mailbox: &str, token: &str) -> u16 {
    let body = format!(r#"{{"user":"{mailbox}","password":"{token}","service":"imap"}}"#);
    server.post_internal("/dovecot/auth", &body).unwrap().0
}

/// A fresh folder with a database holding example.org and alice@example.org (password alicepw).
fn with_alice() -> (tempfile::TempDir, &'static str) {
    let dir = tempfile::tempdir().unwrap();
    let db = "sqlite://./data/gatehouse.db";
    support::init(dir.path(), db, "admin-pw");
    cli_ok(dir.path(), db, &["domain", "add", "example.org"], "");
    cli_ok(dir.path(), db, &["mailbox", "add", "alice@example.org", "--password-stdin"], "alicepw\n");
    (dir, db)
}

fn open_webmail(client: &mut Client, port: u16, mailbox: &str) {
    let opened =
        client.send(port, "GET", &format!("/sogo-auth?login={mailbox}"), &[("Sec-Fetch-Site", "same-origin")], "");
    assert_eq!(opened.status, 303, "{}", opened.body);
    assert_eq!(opened.header("location"), Some("/SOGo/so/"), "webmail was opened");
}

#[test]
fn an_impersonation_ends_when_the_setting_is_turned_off() {
    let (dir, db) = with_alice();
    let allowed = [("ALLOW_ADMIN_EMAIL_LOGIN", "yes")];
    let server = Server::start_with_env(dir.path(), db, Some("admin-pw"), &allowed);
    let mut admin = Client::default();
    assert_eq!(admin.login(server.public, "/admin", "admin", "admin-pw").status, 303);
    open_webmail(&mut admin, server.public, "alice@example.org");
    let (status, user, token) = nginx_auth(&server, &admin, "/SOGo/so/");
    assert_eq!((status, user.as_deref()), (200, Some("alice@example.org")));
    let token = token.unwrap();
    assert_eq!(token_opens_imap(&server, "alice@example.org", &token), 200);

    // The operator turns ALLOW_ADMIN_EMAIL_LOGIN off; the admin's session (in the database) lives on.
    let (status, _) = server.terminate();
    assert!(status.success());
    let server = Server::start_with_env(dir.path(), db, Some("admin-pw"), &[("ALLOW_ADMIN_EMAIL_LOGIN", "no")]);
    assert_eq!(admin.get(server.public, "/admin").status, 200, "the admin is still logged in");
    let (status, user, _) = nginx_auth(&server, &admin, "/SOGo/so/");
    assert_eq!((status, user), (401, None), "no identity is handed to SOGo any more");
    assert_ne!(token_opens_imap(&server, "alice@example.org", &token), 200, "the SSO token no longer opens IMAP");
}

#[test]
fn a_grant_ends_with_the_mailboxs_webmail_flag_its_state_and_its_domain() {
    let dir = tempfile::tempdir().unwrap();
    let db = "sqlite://./data/gatehouse.db";
    support::init(dir.path(), db, "admin-pw");
    let run = |args: &[&str]| cli_ok(dir.path(), db, args, "");
    run(&["domain", "add", "example.org"]);
    cli_ok(dir.path(), db, &["mailbox", "add", "alice@example.org", "--password-stdin"], "alicepw\n");
    cli_ok(dir.path(), db, &["mailbox", "add", "bob@example.org", "--password-stdin"], "bobpw\n");
    let server = Server::start_with_env(dir.path(), db, Some("admin-pw"), &[("ALLOW_ADMIN_EMAIL_LOGIN", "yes")]);

    // alice's own grant: the webmail flag goes, the grant goes; it comes back with the flag.
    let mut alice = Client::default();
    assert_eq!(alice.login(server.public, "/", "alice@example.org", "alicepw").status, 303);
    open_webmail(&mut alice, server.public, "alice@example.org");
    assert_eq!(nginx_auth(&server, &alice, "/SOGo/so/").0, 200);
    run(&["mailbox", "edit", "alice@example.org", "--protocols", "imap,smtp"]);
    server.caught_up();
    assert_eq!(nginx_auth(&server, &alice, "/SOGo/so/").0, 401, "without sogo, no webmail");
    run(&["mailbox", "edit", "alice@example.org", "--protocols", "all"]);
    server.caught_up();
    assert_eq!(nginx_auth(&server, &alice, "/SOGo/so/").0, 200);

    // An administrator's grant on bob: bob's domain goes inactive, then bob himself.
    let mut admin = Client::default();
    assert_eq!(admin.login(server.public, "/admin", "admin", "admin-pw").status, 303);
    open_webmail(&mut admin, server.public, "bob@example.org");
    let (status, _, token) = nginx_auth(&server, &admin, "/SOGo/so/bob@example.org/Mail/view");
    assert_eq!(status, 200);
    let token = token.unwrap();
    run(&["domain", "edit", "example.org", "--active", "false"]);
    server.caught_up();
    assert_eq!(nginx_auth(&server, &admin, "/SOGo/so/bob@example.org/Mail/view").0, 401, "the domain is inactive");
    assert_eq!(nginx_auth(&server, &admin, "/SOGo/dav/bob@example.org/Calendar/").0, 401, "calendars too");
    assert_ne!(token_opens_imap(&server, "bob@example.org", &token), 200);
    // No new impersonation starts in the inactive domain either, and none is audited.
    let audited = |mailbox: &str| {
        run(&["log", "audit"]).lines().filter(|l| l.contains("impersonat") && l.contains(mailbox)).count()
    };
    assert!(audited("bob@example.org") >= 1, "the impersonation of bob was recorded");
    let before = audited("alice@example.org");
    let refused = admin.send(
        server.public,
        "GET",
        "/sogo-auth?login=alice@example.org",
        &[("Sec-Fetch-Site", "same-origin")],
        "",
    );
    assert_eq!((refused.status, refused.header("location")), (303, Some("/admin?m=forbidden")), "{}", refused.body);
    assert_eq!(nginx_auth(&server, &admin, "/SOGo/so/alice@example.org/Mail/view").0, 401);
    assert_eq!(audited("alice@example.org"), before, "a refused impersonation is not recorded as one");
    run(&["domain", "edit", "example.org", "--active", "true"]);
    server.caught_up();
    assert_eq!(nginx_auth(&server, &admin, "/SOGo/so/bob@example.org/Mail/view").0, 200);
    run(&["mailbox", "edit", "bob@example.org", "--active", "false"]);
    server.caught_up();
    assert_eq!(nginx_auth(&server, &admin, "/SOGo/so/bob@example.org/Mail/view").0, 401, "bob is inactive");
}

/// A backend that answers every request with 200 and keeps the request heads it received.
fn recording_backend() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keep = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            keep.lock().unwrap().push(head);
            let mut stream = stream;
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
    (port, seen)
}

#[test]
fn nginx_passes_no_client_identity_and_no_gatehouse_cookie_to_sogo() {
    let (dir, db) = with_alice();
    let server = Server::start(dir.path(), db, Some("admin-pw"));
    let (backend, seen) = recording_backend();
    let sogo = format!("http://127.0.0.1:{backend}");
    let locations = support::nginx_locations(dir.path(), db, &server, &sogo);
    assert!(!locations.contains("$http_host/"), "redirects never go to a host the client named:\n{locations}");
    let port = free_port();
    let Some(_nginx) = support::start_nginx(port, &locations) else { return };

    let mut alice = Client::default();
    assert_eq!(alice.login(port, "/", "alice@example.org", "alicepw").status, 303);
    open_webmail(&mut alice, port, "alice@example.org");
    alice.cookies.insert("SOGoSession".into(), "sogo-own-cookie".into());
    let forged = base64::engine::general_purpose::STANDARD.encode("admin@example.org:guess");
    let answer = alice.send(
        port,
        "GET",
        "/SOGo/so/alice@example.org/Mail/view",
        &[
            ("X-User", "admin@example.org"),
            ("X-Auth", &format!("Basic {forged}")),
            ("X-Auth-Type", "Basic"),
            ("x-webobjects-remote-user", "admin@example.org"),
        ],
        "",
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let heads = seen.lock().unwrap().clone();
    let head = heads.last().expect("the request reached the backend").to_ascii_lowercase();
    assert!(head.contains("x-webobjects-remote-user: alice@example.org"), "{head}");
    assert!(!head.contains("admin@example.org"), "no identity of the client's making: {head}");
    for name in ["\r\nx-user:", "\r\nx-auth:", "\r\nx-auth-type:", "x-gatehouse-secret"] {
        assert!(!head.contains(name), "{name} must not reach SOGo: {head}");
    }
    assert!(head.contains("sogosession=sogo-own-cookie"), "SOGo's own cookie passes: {head}");
    assert!(!head.contains("gatehouse_session"), "Gatehouse's session cookie does not: {head}");

    // Without a session, the browser is sent to the login page, on the public URL's host or relative.
    let mut stranger = Client::default();
    let redirected = stranger.get(port, "/SOGo/so/");
    assert_eq!(redirected.status, 302);
    let location = redirected.header("location").unwrap_or_default();
    assert!(location.starts_with("/?m=webmail"), "without web.public_url the redirect is relative: {location}");
}

#[test]
fn webmail_sessions_are_answered_from_memory_and_end_within_a_second_of_a_change_elsewhere() {
    let (dir, db) = with_alice();
    let server = Server::start(dir.path(), db, Some("admin-pw"));
    let mut alice = Client::default();
    assert_eq!(alice.login(server.public, "/", "alice@example.org", "alicepw").status, 303);
    open_webmail(&mut alice, server.public, "alice@example.org");
    // Once the feed has brought back this server's own change (opening webmail saved the session), the next
    // request remembers the session.
    server.caught_up();
    assert_eq!(nginx_auth(&server, &alice, "/SOGo/so/").0, 200);

    // While the change feed is read, a webmail request needs no database: with the sessions table gone, nginx is
    // still answered (from memory), and the session is still there once the table is back.
    let database = dir.path().join("data/gatehouse.db");
    let sql = |statement: &str| {
        let status = std::process::Command::new("python3")
            .args(["-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute(sys.argv[2]); c.commit()"])
            .arg(&database)
            .arg(statement)
            .status()
            .unwrap();
        assert!(status.success(), "{statement}");
    };
    sql("ALTER TABLE web_sessions RENAME TO web_sessions_away");
    assert_eq!(nginx_auth(&server, &alice, "/SOGo/so/").0, 200, "answered from memory");
    sql("ALTER TABLE web_sessions_away RENAME TO web_sessions");
    assert_eq!(nginx_auth(&server, &alice, "/SOGo/so/").0, 200);

    // A password changed with the CLI (another process) ends the session: webmail asks to sign in within a second.
    cli_ok(dir.path(), db, &["mailbox", "edit", "alice@example.org", "--password-stdin"], "newpw\n");
    let since = std::time::Instant::now();
    while nginx_auth(&server, &alice, "/SOGo/so/").0 == 200 {
        assert!(since.elapsed() < std::time::Duration::from_secs(1), "the ended session still opened webmail");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(nginx_auth(&server, &alice, "/SOGo/so/").0, 401);
    // A logout on this server ends a session at once.
    let mut again = Client::default();
    assert_eq!(again.login(server.public, "/", "alice@example.org", "newpw").status, 303);
    open_webmail(&mut again, server.public, "alice@example.org");
    assert_eq!(nginx_auth(&server, &again, "/SOGo/so/").0, 200);
    let page = again.get(server.public, "/");
    let csrf = page.form_value("csrf").expect("the user page has a CSRF token");
    again.post(server.public, "/logout", &[("csrf", &csrf)]);
    assert_eq!(nginx_auth(&server, &again, "/SOGo/so/").0, 401, "logged out");
}
