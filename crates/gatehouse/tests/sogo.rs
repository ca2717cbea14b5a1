//! Webmail single sign-on through real programs: nginx with the locations `gatehouse config nginx` prints, SOGo
//! 5.8 trusting proxy authentication, and Dovecot with the shipped Lua passdb. A Gatehouse login opens SOGo's
//! mail view (SOGo logs into IMAP with the SSO token), the token opens nothing else and dies with the session,
//! DAV works with an app password scoped to `dav` only, spoofed identity headers are ignored, and an
//! administrator's impersonation is allowed, audited and bounded by the domain-admin tenant.

mod support;

use base64::Engine as _;
use gatehouse_testkit::free_port;
use support::http::{Client, request};
use support::mail::{imap_login, pop3_login};
use support::{Server, cli_ok};

/// The SSO token a session's cookie yields, as nginx would get it from `/nginx/auth`.
fn sso_token(server: &Server, client: &Client, uri: &str) -> Option<String> {
    let cookie = client.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
    let headers =
        [("Cookie", cookie.as_str()), ("X-Original-URI", uri), ("X-Gatehouse-Secret", server.secret.as_str())];
    let answer = request(server.internal, "GET", "/nginx/auth", &headers, "");
    let auth = answer.header("x-auth")?.strip_prefix("Basic ")?.to_string();
    let decoded = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(auth).ok()?).ok()?;
    Some(decoded.split_once(':')?.1.to_string())
}

#[test]
fn webmail_single_sign_on_through_nginx_sogo_and_dovecot() {
    let dir = tempfile::tempdir().unwrap();
    let db = "sqlite://./data/gatehouse.db";
    support::init(dir.path(), db, "admin-pw");
    let run = |args: &[&str], stdin: &str| cli_ok(dir.path(), db, args, stdin);
    run(&["domain", "add", "example.org"], "");
    run(&["domain", "add", "other.org"], "");
    for (address, password) in
        [("alice@example.org", "alicepw"), ("bob@example.org", "bobpw"), ("carol@other.org", "carolpw")]
    {
        run(&["mailbox", "add", address, "--password-stdin"], &format!("{password}\n"));
    }
    run(
        &["domain-admin", "add", "helper", "--domains", "example.org", "--acl", "login_as", "--password-stdin"],
        "helperpw\n",
    );
    let dav_only = run(&["app-password", "add", "alice@example.org", "--name", "calendar", "--protocols", "dav"], "");
    let imap_only = run(&["app-password", "add", "alice@example.org", "--name", "mail", "--protocols", "imap"], "");

    let server = Server::start_with_env(dir.path(), db, Some("admin-pw"), &[("ALLOW_ADMIN_EMAIL_LOGIN", "yes")]);
    let Some((dovecot, sogo)) = support::start_dovecot_and_sogo(dir.path(), db, server.internal) else { return };
    // Gatehouse runs on SQLite, which SOGo cannot read: it keeps SOGo's user list in SOGo's own database.
    std::fs::write(dir.path().join("gatehouse.toml"), format!("[sogo]\nusers_url = \"{}\"\n", sogo.database_url()))
        .unwrap();
    let (code, _, synced) = support::cli(dir.path(), db, &["sogo", "sync"], "");
    assert_eq!(code, 0, "{synced}");
    assert!(synced.contains("3 added"), "alice, bob and carol may use webmail: {synced}");
    let settings = run(&["config", "sogo"], "");
    assert!(settings.contains("/sogo_users"), "config sogo names the table Gatehouse keeps: {settings}");
    let locations = support::nginx_locations(dir.path(), db, &server, &sogo.url());
    assert!(locations.contains("proxy_set_header x-webobjects-remote-user $gatehouse_user;"), "{locations}");
    let port = free_port();
    let Some(nginx) = support::start_nginx(port, &locations) else { return };

    // Not logged in: webmail sends the browser to Gatehouse's login, whatever identity header it sends.
    let mut stranger = Client::default();
    let spoofed = stranger.send(
        port,
        "GET",
        "/SOGo/so/bob@example.org/Mail/0/view",
        &[("x-webobjects-remote-user", "bob@example.org")],
        "",
    );
    assert_eq!(spoofed.status, 302, "{spoofed:?}");
    assert!(spoofed.header("location").unwrap().ends_with("/?m=webmail"), "{spoofed:?}");

    // alice logs into Gatehouse through nginx and opens webmail.
    let mut alice = Client::default();
    let login = alice.login(port, "/", "alice@example.org", "alicepw");
    assert_eq!((login.status, login.header("location")), (303, Some("/")), "{login:?}");
    let home = alice.get(port, "/");
    assert!(home.body.contains("Open webmail"), "{}", home.body);
    let open = alice.get(port, "/sogo-auth?login=alice%40example.org");
    assert_eq!((open.status, open.header("location")), (303, Some("/SOGo/so/")), "{open:?}");
    let folders = alice.get(port, "/SOGo/so/alice@example.org/Mail/0/view");
    assert_eq!(folders.status, 200, "{folders:?}\n{}", sogo.log());
    assert!(folders.body.contains("INBOX"), "SOGo listed the folders over IMAP: {}", folders.body);
    assert!(dovecot.log().contains("user=<alice@example.org>"), "{}", dovecot.log());
    // Her session does not open bob's webmail, even with a spoofed header.
    let other = alice.send(
        port,
        "GET",
        "/SOGo/so/bob@example.org/Mail/0/view",
        &[("x-webobjects-remote-user", "bob@example.org")],
        "",
    );
    assert_eq!(other.status, 302, "{other:?}");
    // She cannot open bob's webmail through /sogo-auth either.
    let refused = alice.get(port, "/sogo-auth?login=bob%40example.org");
    assert_eq!(refused.header("location"), Some("/?m=forbidden"), "{refused:?}");

    // The SSO token: IMAP for alice only, not POP3, not bob.
    let token = sso_token(&server, &alice, "/SOGo/so/").expect("the session yields a token");
    assert!(token.starts_with("ghsso_"));
    assert!(imap_login(dovecot.imap, "alice@example.org", &token).ok());
    assert!(!imap_login(dovecot.imap, "bob@example.org", &token).ok());
    assert!(!pop3_login(dovecot.pop3, "alice@example.org", &token).ok());
    // A token never appears in a page.
    assert!(!alice.get(port, "/").body.contains(&token));

    // Logout ends the session and the token (Gatehouse refuses it at once; Dovecot once its auth cache, 60 s,
    // forgets the earlier success — flushed here).
    let csrf = alice.get(port, "/").form_value("csrf").unwrap();
    let out = alice.post(port, "/logout", &[("csrf", &csrf)]);
    assert_eq!(out.status, 303, "{out:?}");
    dovecot.doveadm(&["auth", "cache", "flush"]);
    assert!(!imap_login(dovecot.imap, "alice@example.org", &token).ok(), "the token died with the session");
    assert_eq!(alice.get(port, "/SOGo/so/alice@example.org/Mail/0/view").status, 302);

    // Signed in again: her page says where she is signed in and that webmail is open; closing it there ends
    // the webmail (SOGo's next page asks to sign in) and keeps her page.
    assert_eq!(alice.login(port, "/", "alice@example.org", "alicepw").status, 303);
    assert_eq!(alice.get(port, "/sogo-auth?login=alice%40example.org").header("location"), Some("/SOGo/so/"));
    assert_eq!(alice.get(port, "/SOGo/so/alice@example.org/Mail/0/view").status, 200);
    let page = alice.get(port, "/");
    assert!(page.body.contains("<strong>this browser</strong>") && page.body.contains(r#"id="close-webmail""#));
    assert!(page.body.contains("<td>127.0.0.1</td>") && page.body.contains("<td>yes</td>"), "{}", page.body);
    let csrf = page.form_value("csrf").unwrap();
    assert_eq!(alice.post(port, "/webmail/close", &[("csrf", &csrf)]).status, 303);
    assert_eq!(alice.get(port, "/SOGo/so/alice@example.org/Mail/0/view").status, 302, "webmail closed");
    let page = alice.get(port, "/");
    assert!(page.body.contains("Webmail closed.") && !page.body.contains(r#"id="close-webmail""#), "{}", page.body);

    // DAV with app passwords: a `dav` one works, an `imap` one does not, and a spoofed header changes nothing.
    let basic = |token: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("alice@example.org:{}", token.trim()))
        )
    };
    let propfind = |auth: &str| {
        request(
            port,
            "PROPFIND",
            "/SOGo/dav/alice@example.org/",
            &[("Authorization", auth), ("Depth", "0"), ("x-webobjects-remote-user", "bob@example.org")],
            "",
        )
    };
    let dav = propfind(&basic(&dav_only));
    assert_eq!(dav.status, 207, "{dav:?}");
    assert!(dav.body.contains("alice@example.org") && !dav.body.contains("bob@example.org"), "{}", dav.body);
    assert_eq!(propfind(&basic(&imap_only)).status, 401);
    assert_eq!(propfind(&basic("wrong")).status, 401);
    let challenge = request(port, "PROPFIND", "/SOGo/dav/alice@example.org/", &[("Depth", "0")], "");
    assert_eq!(challenge.status, 401);
    assert!(challenge.header("www-authenticate").is_some_and(|v| v.starts_with("Basic")), "{challenge:?}");

    // The administrator opens bob's webmail (impersonation): allowed, audited, in bob's own log.
    let mut admin = Client::default();
    assert_eq!(admin.login(port, "/admin", "admin", "admin-pw").status, 303);
    let page = admin.get(port, "/admin/mailboxes");
    assert!(page.body.contains("Webmail as this user"), "{}", page.body);
    assert_eq!(admin.get(port, "/sogo-auth?login=bob%40example.org").header("location"), Some("/SOGo/so/"));
    let bob_view = admin.get(port, "/SOGo/so/bob@example.org/Mail/0/view");
    assert_eq!(bob_view.status, 200, "{bob_view:?}");
    assert!(bob_view.body.contains("INBOX"));
    let audit = run(&["log", "audit", "--json"], "");
    assert!(audit.contains("webmail.impersonate") && audit.contains("bob@example.org"), "{audit}");
    support::eventually_logged(
        "the impersonated login is logged",
        || run(&["log", "auth", "--json"], ""),
        |log| log.contains("opened by admin admin"),
    );
    // bob sees on his own page that an administrator has his webmail open.
    let mut bob = Client::default();
    assert_eq!(bob.login(port, "/", "bob@example.org", "bobpw").status, 303);
    let page = bob.get(port, "/");
    assert!(page.body.contains("The administrator admin has your webmail open since"), "{}", page.body);

    // A domain admin with login_as: own domain yes, another domain no.
    let mut helper = Client::default();
    assert_eq!(helper.login(port, "/domainadmin", "helper", "helperpw").status, 303);
    assert_eq!(helper.get(port, "/sogo-auth?login=bob%40example.org").header("location"), Some("/SOGo/so/"));
    assert_eq!(
        helper.get(port, "/sogo-auth?login=carol%40other.org").header("location"),
        Some("/domainadmin?m=forbidden")
    );
    assert_eq!(helper.get(port, "/SOGo/so/carol@other.org/Mail/0/view").status, 302);

    drop(nginx);
    drop(sogo);
    let (status, _) = server.terminate();
    assert!(status.success());
}
