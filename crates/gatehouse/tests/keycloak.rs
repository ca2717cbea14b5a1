//! Keycloak's mailpassword flow through real Dovecot (IMAP) and real Postfix (SMTP AUTH with swaks), against
//! the admin REST API stand-in served beside the realm by the real npm oidc-provider: the first protocol login
//! creates the mailbox from the user's template attribute, a user whose address contains another user's
//! address cannot open that mailbox with their own password (mailcow's `exact=1` hole), a disabled Keycloak
//! user is refused, and a Keycloak that stops answering makes logins a temporary failure. `gatehouse idp test`
//! names each step, and `gatehouse sync --idp` reads the realm page by page.

mod support;

use gatehouse_passwords::{GenerateScheme, generate};
use gatehouse_testkit::oidc::{KeycloakUser, OpenIdProvider};
use serde_json::json;
use support::mail::imap_login;
use support::{Server, cli, cli_ok};

const DB: &str = "sqlite://./data/gatehouse.db";

fn person(name: &str, password: &str, template: Option<&str>) -> KeycloakUser {
    let mut user = KeycloakUser::new(name, &format!("{name}@example.org"), &[]);
    let hash = generate(password.as_bytes(), &GenerateScheme::BlfCrypt { cost: 5 }).unwrap();
    user.attributes.insert("mailcow_password".into(), vec![hash]);
    if let Some(template) = template {
        user.attributes.insert("mailcow_template".into(), vec![template.into()]);
    }
    user.first_name = Some(name[..1].to_uppercase() + &name[1..]);
    user.last_name = Some("Example".into());
    user
}

fn mailboxes(dir: &std::path::Path) -> Vec<serde_json::Value> {
    let listed = cli_ok(dir, DB, &["mailbox", "list", "--json"], "");
    serde_json::from_str::<serde_json::Value>(&listed).unwrap().as_array().unwrap().clone()
}

#[test]
fn keycloak_mailpassword_logins_through_dovecot_and_postfix() {
    let Some(mut keycloak) = OpenIdProvider::start_keycloak("mail", "gatehouse", "service-secret") else { return };
    let mut dora = person("dora", "dorapw", Some("staff"));
    dora.enabled = false;
    keycloak.set_keycloak_users(&[
        person("alice", "alicepw", Some("staff")),
        // ice@example.org is a substring of alice@example.org: Keycloak's substring search finds both.
        person("ice", "icepw", Some("staff")),
        person("ivan", "ivanpw", Some("it")),
        dora,
    ]);

    let dir = tempfile::tempdir().unwrap();
    support::init(dir.path(), DB, "admin-pw");
    std::fs::write(dir.path().join("gatehouse.toml"), "[web]\npublic_url = \"https://mail.example.org/\"\n").unwrap();
    let run = |args: &[&str]| cli_ok(dir.path(), DB, args, "");
    run(&["domain", "add", "example.org"]);
    run(&["template", "add", "staff", "--quota-mib", "512", "--protocols", "imap,smtp"]);
    run(&["template", "add", "it", "--quota-mib", "2048", "--protocols", "imap"]);
    let settings = json!({
        "server_url": format!("http://127.0.0.1:{}", keycloak.port),
        "realm": "mail",
        "client_id": "gatehouse",
        "mailpassword_flow": true,
        "create_on_login": true,
        "timeout_seconds": 3,
    });
    let add = ["idp", "add", "kc", "--type", "keycloak", "--settings", &settings.to_string(), "--secret-stdin"];
    cli_ok(dir.path(), DB, &add, "service-secret\n");
    run(&["idp", "map", "kc", "staff=staff", "it=it"]);

    let tested = run(&["idp", "test", "kc", "--user", "alice@example.org"]);
    for line in [
        "ok    client credentials",
        "ok    admin API readable (view-users): 4 users",
        "ok    attributes visible: mailcow_template on 4 of 4, mailcow_password on 4 of 4",
        "ok    find alice@example.org: id-alice (Alice Example; enabled; template values: staff; mailcow_password set)",
    ] {
        assert!(tested.contains(line), "missing {line:?} in:\n{tested}");
    }
    assert!(!tested.contains("service-secret") && !tested.contains("$2y$"), "no secrets or hashes: {tested}");

    let sasl = gatehouse_testkit::free_port();
    let server = Server::start_with_env(
        dir.path(),
        DB,
        Some("admin-pw"),
        &[("GATEHOUSE_LISTEN__SASL", &format!("127.0.0.1:{sasl}"))],
    );
    let Some(dovecot) = support::start_dovecot(dir.path(), DB, server.internal) else { return };
    let Some(postfix) = support::start_postfix(dir.path(), DB, sasl, dovecot.auth) else { return };
    let smtp = |port: u16, user: &str, password: &str| {
        postfix
            .swaks(port, &["--auth", "PLAIN", "--auth-user", user, "--auth-password", password, "--quit-after", "AUTH"])
    };

    // A wrong password creates nothing; the right one creates the mailbox from the mapped template.
    assert!(!imap_login(dovecot.imap, "alice@example.org", "wrong").ok());
    assert!(mailboxes(dir.path()).is_empty(), "a wrong password creates nothing");
    let first = imap_login(dovecot.imap, "alice@example.org", "alicepw");
    assert!(first.ok(), "{first:?}\n{}", dovecot.log());
    let created = mailboxes(dir.path());
    assert_eq!(created.len(), 1, "{created:?}");
    let alice = &created[0];
    assert_eq!((&alice["address"], &alice["auth_source"]), (&json!("alice@example.org"), &json!("kc")));
    assert_eq!((&alice["template"], &alice["quota_mib"]), (&json!("staff"), &json!(512)));
    assert_eq!((&alice["display_name"], &alice["external_id"]), (&json!("Alice Example"), &json!("id-alice")));
    let lookups: Vec<String> =
        keycloak.keycloak_requests().into_iter().filter(|l| l.starts_with("GET /users?email=")).collect();
    assert!(lookups.iter().all(|l| l.contains("exact=true")), "the literal true, never exact=1: {lookups:?}");

    // SMTP AUTH through Postfix, directly and through Dovecot's auth service; ivan's mailbox is created by his
    // first SMTP login, and his template (IMAP only) then refuses SMTP.
    for port in [postfix.direct, postfix.via_dovecot] {
        let ok = smtp(port, "alice@example.org", "alicepw");
        assert!(ok.has("235"), "{}\n{}", ok.transcript, postfix.log());
        let theirs = smtp(port, "alice@example.org", "icepw");
        assert!(theirs.has("535") && !theirs.transcript.contains("Temporary"), "ice's password is not alice's");
    }
    let ivan = smtp(postfix.direct, "ivan@example.org", "ivanpw");
    assert!(ivan.has("535"), "the it template has no SMTP: {}", ivan.transcript);
    let ivan = mailboxes(dir.path()).into_iter().find(|m| m["address"] == "ivan@example.org").expect("created");
    assert_eq!((&ivan["template"], &ivan["quota_mib"]), (&json!("it"), &json!(2048)));
    assert!(imap_login(dovecot.imap, "ivan@example.org", "ivanpw").ok());

    // ice@example.org's password opens ice's mailbox only: alice's stays closed to it, over every protocol.
    assert!(imap_login(dovecot.imap, "ice@example.org", "icepw").ok());
    assert!(!imap_login(dovecot.imap, "alice@example.org", "icepw").ok());
    let web = support::http::Client::default().login(server.public, "/", "alice@example.org", "icepw");
    assert_eq!(web.status, 401, "the web login refuses it too");

    // A disabled Keycloak user: refused, and no mailbox is created.
    assert!(!imap_login(dovecot.imap, "dora@example.org", "dorapw").ok());
    assert!(!mailboxes(dir.path()).iter().any(|m| m["address"] == "dora@example.org"));
    support::eventually_logged(
        "the disabled user's refusal is logged",
        || run(&["log", "auth", "--json", "--limit", "50"]),
        |decisions| decisions.contains("dora@example.org") && decisions.contains("disabled"),
    );

    // Keycloak stops answering: a login it must check is a temporary failure, never a wrong password.
    // (Passwords checked less than a minute ago are remembered, so this one is new.)
    keycloak.halt();
    let during = imap_login(dovecot.imap, "ice@example.org", "another-password");
    assert!(!during.ok() && during.line().contains("UNAVAILABLE"), "{during:?}");
    let down = support::http::Client::default().login(server.public, "/", "ice@example.org", "another-password");
    assert_eq!(down.status, 503, "the web login says 'try again': {}", down.body);
    let smtp_down = smtp(postfix.direct, "alice@example.org", "another-password");
    // Postfix shows the reason of a failed AUTH with 535 (it answers 454 only when the auth server is gone).
    assert!(
        smtp_down.transcript.contains("Temporary authentication failure"),
        "SMTP says temporary failure: {}",
        smtp_down.transcript
    );
    keycloak.resume();
    assert!(imap_login(dovecot.imap, "ice@example.org", "icepw").ok(), "back once Keycloak answers");
    let (status, _) = server.terminate();
    assert!(status.success());
}

#[test]
fn keycloak_syncs_from_the_command_line() {
    let Some(keycloak) = OpenIdProvider::start_keycloak("mail", "gatehouse", "service-secret") else { return };
    let mut users: Vec<KeycloakUser> =
        (0..150).map(|n| person(&format!("user{n:03}"), "pw", Some(if n < 100 { "staff" } else { "it" }))).collect();
    users.push(KeycloakUser::new("outsider", "outsider@elsewhere.org", &[("mailcow_template", "staff")]));
    keycloak.set_keycloak_users(&users);

    let dir = tempfile::tempdir().unwrap();
    support::init(dir.path(), DB, "admin-pw");
    let run = |args: &[&str]| cli_ok(dir.path(), DB, args, "");
    run(&["domain", "add", "example.org"]);
    run(&["template", "add", "staff", "--protocols", "imap,smtp"]);
    run(&["template", "add", "it", "--protocols", "imap"]);
    let settings = json!({
        "server_url": format!("http://127.0.0.1:{}", keycloak.port),
        "realm": "mail",
        "client_id": "gatehouse",
        "import_users": true,
        "periodic_sync": true,
        "deprovision": "deactivate",
        "deprovision_threshold_percent": 5,
    });
    let add = ["idp", "add", "kc", "--type", "keycloak", "--settings", &settings.to_string(), "--secret-stdin"];
    cli_ok(dir.path(), DB, &add, "service-secret\n");
    run(&["idp", "map", "kc", "staff=staff", "it=it"]);

    let dry = run(&["sync", "--idp", "kc", "--dry-run"]);
    assert!(dry.contains("kc (dry run): 151 entries; 150 created"), "{dry}");
    assert!(dry.contains("skipped outsider@elsewhere.org"), "{dry}");
    assert!(mailboxes(dir.path()).is_empty(), "a dry run changes nothing");
    let real: serde_json::Value = serde_json::from_str(&run(&["sync", "--idp", "kc", "--json"])).unwrap();
    assert_eq!((&real[0]["entries"], &real[0]["created"], &real[0]["skipped"]), (&151.into(), &150.into(), &1.into()));
    let pages = keycloak.keycloak_requests().iter().filter(|l| l.starts_with("GET /users?first=")).count();
    assert_eq!(pages, 2 * 2, "two runs of two pages of at most 100");

    // Three users are disabled in Keycloak (2 %, under the 5 % threshold): deactivated, never deleted.
    for user in &mut users[10..13] {
        user.enabled = false;
    }
    keycloak.set_keycloak_users(&users);
    let second: serde_json::Value = serde_json::from_str(&run(&["sync", "--idp", "kc", "--json"])).unwrap();
    assert_eq!((&second[0]["deactivated"], &second[0]["unchanged"]), (&3.into(), &147.into()), "{second}");
    let all = mailboxes(dir.path());
    assert_eq!(all.len(), 150);
    let user010 = all.iter().find(|m| m["address"] == "user010@example.org").unwrap();
    assert_eq!(user010["active"], false);

    // Twenty more vanish (over the threshold): refused with the reason, nothing changed, exit code 1.
    keycloak.set_keycloak_users(&users[20..]);
    let (code, _, stderr) = cli(dir.path(), DB, &["sync", "--idp", "kc"], "");
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("would deactivate"), "{stderr}");
    assert_eq!(mailboxes(dir.path()).iter().filter(|m| m["active"] == true).count(), 147);
    let jobs: serde_json::Value = serde_json::from_str(&run(&["log", "jobs", "--json"])).unwrap();
    let statuses: Vec<&str> = jobs.as_array().unwrap().iter().map(|j| j["status"].as_str().unwrap()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == "ok").count(), 3, "{statuses:?}");
    assert_eq!(statuses[0], "refused", "newest first: {statuses:?}");
}
