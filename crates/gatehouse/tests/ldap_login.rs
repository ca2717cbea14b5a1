//! Logins of LDAP-bound mailboxes through real Dovecot, with a real slapd: the password is checked by a bind
//! at the directory (StartTLS with the provider's CA), app passwords still work, the protocol gate applies,
//! and a directory outage is a temporary failure that leaves local mailboxes unaffected. Syncs run by the
//! server on their own and by `gatehouse sync`.

mod support;

use gatehouse_testkit::slapd::Slapd;
use support::mail::{imap_login, pop3_login};
use support::{Server, cli, cli_ok, eventually};

const MORE_PEOPLE: &str = "dn: uid=erin,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: erin
cn: Erin
sn: Example
mail: erin@example.org
employeeType: visitor
userPassword: erinpw

dn: uid=frank,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: frank
cn: Frank
sn: Example
mail: frank@elsewhere.org
employeeType: it
userPassword: frankpw
";

fn people() -> String {
    format!("{}\n{MORE_PEOPLE}", support::LDAP_PEOPLE)
}

#[test]
fn ldap_bound_mailboxes_log_in_through_dovecot() {
    let Some(mut slapd) = Slapd::start(&people()) else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = "sqlite://./data/gatehouse.db";
    support::init(dir.path(), db, "admin-pw");
    let run = |args: &[&str], stdin: &str| cli_ok(dir.path(), db, args, stdin);
    run(&["domain", "add", "example.org"], "");
    let mut settings = support::ldap_settings(&slapd);
    settings["template_attribute"] = "employeeType".into();
    settings["create_on_login"] = true.into();
    let settings = settings.to_string();
    let (code, _, stderr) = cli(
        dir.path(),
        db,
        &["idp", "add", "corp", "--type", "ldap", "--settings", "{\"hosts\":[]}", "--bind-password-stdin"],
        "adminpw\n",
    );
    assert_ne!(code, 0, "invalid settings are refused: {stderr}");
    let mut typo: serde_json::Value = serde_json::from_str(&settings).unwrap();
    typo["create_on_logon"] = true.into();
    let (code, _, stderr) = cli(
        dir.path(),
        db,
        &["idp", "add", "corp", "--type", "ldap", "--settings", &typo.to_string(), "--bind-password-stdin"],
        "adminpw\n",
    );
    assert!(code != 0 && stderr.contains("unknown ldap setting(s): create_on_logon"), "a typo is named: {stderr}");
    let (code, _, stderr) = cli(dir.path(), db, &["idp", "add", "corp", "--type", "oidc", "--settings", "{}"], "");
    assert!(code != 0 && stderr.contains("OpenID Connect settings: missing field `issuer`"), "{stderr}");
    let (code, _, stderr) = cli(dir.path(), db, &["idp", "edit", "corp", "--settings", "{}"], "");
    assert!(code != 0 && stderr.contains("does not exist"), "nothing was stored by the refused commands: {stderr}");
    run(&["idp", "add", "corp", "--type", "ldap", "--settings", &settings, "--bind-password-stdin"], "adminpw\n");
    let (code, _, stderr) = cli(dir.path(), db, &["idp", "edit", "corp", "--settings", "{\"sync_intervall\":5}"], "");
    assert!(code != 0 && stderr.contains("sync_intervall"), "an edit with a typo is refused: {stderr}");
    let listed = run(&["idp", "list", "--json"], "");
    assert!(!listed.contains("sync_intervall"), "{listed}");
    assert!(listed.contains("bind_password") && !listed.contains("adminpw"), "secret names only: {listed}");
    let tested = run(&["idp", "test", "corp", "--user", "carol@example.org"], "");
    assert!(
        tested.contains("ok    connect (TCP and TLS): StartTLS, certificate checked")
            && tested.contains("ok    bind as the service account")
            && tested.contains("uid=carol,ou=people"),
        "{tested}"
    );
    run(&["mailbox", "add", "carol@example.org", "--auth-source", "corp", "--protocols", "imap,smtp"], "");
    run(&["template", "add", "it-staff", "--quota-mib", "100", "--protocols", "imap"], "");
    run(&["template", "add", "staff", "--protocols", "imap,smtp"], "");
    run(&["idp", "map", "corp", "staff=staff", "it=it-staff"], "");
    run(&["mailbox", "add", "alice@example.org", "--password-stdin"], "alicepw\n");
    let token = run(&["app-password", "add", "carol@example.org", "--name", "phone", "--protocols", "imap"], "");

    let server = Server::start(dir.path(), db, Some("admin-pw"));
    let Some(dovecot) = support::start_dovecot(dir.path(), db, server.internal) else { return };
    assert!(imap_login(dovecot.imap, "carol@example.org", "carolpw").ok(), "{}", dovecot.log());
    assert!(!imap_login(dovecot.imap, "carol@example.org", "wrong").ok());
    assert!(
        !imap_login(dovecot.imap, "carol@example.org", "").ok(),
        "an empty password never becomes an anonymous bind"
    );
    assert!(!pop3_login(dovecot.pop3, "carol@example.org", "carolpw").ok(), "POP3 is disabled for carol");
    assert!(imap_login(dovecot.imap, "carol@example.org", token.trim()).ok(), "app passwords work for IdP mailboxes");

    // First logins create mailboxes from the template mapped from a multi-valued attribute.
    assert!(!imap_login(dovecot.imap, "dave@example.org", "wrong").ok());
    assert!(!run(&["mailbox", "list", "--json"], "").contains("dave@"), "a wrong password creates nothing");
    assert!(imap_login(dovecot.imap, "dave@example.org", "davepw").ok(), "{}", dovecot.log());
    let mailboxes: serde_json::Value = serde_json::from_str(&run(&["mailbox", "list", "--json"], "")).unwrap();
    let dave =
        mailboxes.as_array().unwrap().iter().find(|m| m["address"] == "dave@example.org").expect("dave was created");
    assert_eq!(dave["template"], "it-staff");
    assert_eq!(dave["auth_source"], "corp");
    assert_eq!(dave["quota_mib"], 100);
    assert_eq!(dave["display_name"], "Dave Example");
    assert_eq!(dave["external_id"], "uid=dave,ou=people,dc=example,dc=org");
    assert!(!pop3_login(dovecot.pop3, "dave@example.org", "davepw").ok(), "the template allows IMAP only");
    // No mapped value and no default template, or no such domain: refused, nothing created.
    assert!(!imap_login(dovecot.imap, "erin@example.org", "erinpw").ok());
    assert!(!imap_login(dovecot.imap, "frank@elsewhere.org", "frankpw").ok());
    let listed = run(&["mailbox", "list", "--json"], "");
    assert!(!listed.contains("erin@") && !listed.contains("frank@"), "{listed}");

    // The web UI checks the same directory password (and refuses a wrong one without saying why).
    let mut web = support::http::Client::default();
    assert_eq!(web.login(server.public, "/", "carol@example.org", "carolpw").status, 303);
    assert!(web.get(server.public, "/").body.contains("carol@example.org"));
    let wrong = support::http::Client::default().login(server.public, "/", "carol@example.org", "nope");
    assert_eq!(wrong.status, 401);

    // The directory goes away: a login that needs it is a temporary failure; local mailboxes carry on.
    slapd.stop();
    let during = imap_login(dovecot.imap, "carol@example.org", "another-password");
    assert!(!during.ok() && during.line().contains("UNAVAILABLE"), "{during:?}");
    assert!(imap_login(dovecot.imap, "alice@example.org", "alicepw").ok());
    let down = support::http::Client::default().login(server.public, "/", "carol@example.org", "another-password");
    assert_eq!(down.status, 503, "the web login says 'try again', not 'wrong password'");
    assert!(down.body.contains("cannot check logins right now"), "{}", down.body);
    let (status, _) = server.terminate();
    assert!(status.success());
}

#[test]
fn ldap_syncs_run_by_the_server_and_from_the_command_line() {
    let Some(slapd) = Slapd::start(&people()) else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = "sqlite://./data/gatehouse.db";
    support::init(dir.path(), db, "admin-pw");
    let run = |args: &[&str]| cli_ok(dir.path(), db, args, "");
    run(&["domain", "add", "example.org"]);
    run(&["template", "add", "it-staff", "--quota-mib", "100", "--protocols", "imap"]);
    run(&["template", "add", "staff", "--protocols", "all"]);
    let settings = serde_json::json!({
        "hosts": ["127.0.0.1"],
        "port": slapd.ldap_port,
        "security": "plain",
        "bind_dn": "cn=admin,dc=example,dc=org",
        "base_dn": "ou=people,dc=example,dc=org",
        "template_attribute": "employeeType",
        "import_users": true,
        "periodic_sync": true,
        "sync_interval_minutes": 60,
    })
    .to_string();
    cli_ok(
        dir.path(),
        db,
        &["idp", "add", "corp", "--type", "ldap", "--settings", &settings, "--bind-password-stdin"],
        "adminpw\n",
    );
    run(&["idp", "map", "corp", "staff=staff", "it=it-staff"]);

    // The server notices that the provider never ran and imports it; the interval then holds it back.
    let server = Server::start_with_env(dir.path(), db, Some("admin-pw"), &[("GATEHOUSE_SYNC__CHECK_SECONDS", "1")]);
    eventually("the server's first sync", || run(&["mailbox", "list"]).contains("dave@example.org"));
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let (status, _) = server.terminate();
    assert!(status.success());
    let jobs: serde_json::Value = serde_json::from_str(&run(&["log", "jobs", "--json"])).unwrap();
    let jobs = jobs.as_array().unwrap();
    assert_eq!(jobs.len(), 1, "one run, then not due for an hour: {jobs:?}");
    assert_eq!((&jobs[0]["status"], &jobs[0]["summary"]["created"]), (&"ok".into(), &2.into()));
    // erin has no mapped value and there is no default template; frank's domain is not hosted.
    assert_eq!(jobs[0]["summary"]["skipped"], 2);

    // From the command line: a dry run changes nothing, a real run applies the new default template.
    run(&["idp", "edit", "corp", "--settings", r#"{"default_template": "staff"}"#]);
    let shown = run(&["idp", "show", "corp"]);
    assert!(shown.contains("\"default_template\": \"staff\"") && !shown.contains("adminpw"), "{shown}");
    let dry = run(&["sync", "--dry-run"]);
    assert!(dry.contains("corp (dry run): 4 entries; 1 created"), "{dry}");
    assert!(dry.contains("skipped frank@elsewhere.org"), "{dry}");
    assert!(!run(&["mailbox", "list"]).contains("erin@"));
    let real: serde_json::Value = serde_json::from_str(&run(&["sync", "--idp", "corp", "--json"])).unwrap();
    assert_eq!((&real[0]["created"], &real[0]["unchanged"]), (&1.into(), &2.into()), "{real}");
    assert!(run(&["mailbox", "list"]).contains("erin@example.org"));
    let (code, _, stderr) = cli(dir.path(), db, &["sync", "--idp", "nope"], "");
    assert_eq!(code, 1, "{stderr}");
    let (code, _, stderr) =
        cli(dir.path(), db, &["idp", "edit", "corp", "--settings", r#"{"security": "telnet"}"#], "");
    assert_ne!(code, 0, "invalid settings are refused: {stderr}");
}
