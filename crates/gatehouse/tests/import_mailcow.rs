//! `gatehouse import mailcow` against a MariaDB database with mailcow's own tables (its `domain` and `mailbox`
//! definitions) and representative rows: hashes in each scheme mailcow writes (BLF-CRYPT, SSHA, SSHA256, SSHA512),
//! protocol flags, forced password change, a mailbox whose logins mailcow refuses (`active = 2`), one bound to
//! mailcow's LDAP provider, a resource; an administrator, a domain administrator without `login_as`; TOTP keys
//! and a security key; app links in mailcow's Redis. A dry run writes nothing; the import creates; a second run changes
//! nothing; a change in mailcow is carried over by the next run; mailcow's tables and Redis are never written. Then real
//! Dovecot logs the imported mailboxes in with their old passwords and honours their flags, the web login takes
//! the old TOTP key, and the administrators sign in with their mailcow passwords. A second mailcow with a Keycloak
//! provider (the admin API stand-in beside the real oidc-provider): the provider comes across with its client
//! secret sealed, its user's mailbox is bound to it, and the mailpassword flow logs in through Dovecot.

mod support;

use gatehouse_passwords::{GenerateScheme, generate};
use gatehouse_testkit::oidc::{KeycloakUser, OpenIdProvider};
use gatehouse_testkit::redis::Redis;
use gatehouse_testkit::slapd::Slapd;
use gatehouse_testkit::{Engine, TestDatabase};
use serde_json::Value;
use support::http::Client;
use support::mail::{imap_login, pop3_login};
use support::{Server, cli, cli_ok};

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// mailcow's `domain` and `mailbox` tables, as `data/web/inc/init_db.inc.php` creates them.
const MAILCOW_TABLES: &str = "
CREATE TABLE domain (
  domain VARCHAR(255) NOT NULL, description VARCHAR(255), aliases INT(10) NOT NULL DEFAULT '0',
  mailboxes INT(10) NOT NULL DEFAULT '0', defquota BIGINT(20) NOT NULL DEFAULT '3072',
  maxquota BIGINT(20) NOT NULL DEFAULT '102400', quota BIGINT(20) NOT NULL DEFAULT '102400',
  relayhost VARCHAR(255) NOT NULL DEFAULT '0', backupmx TINYINT(1) NOT NULL DEFAULT '0',
  gal TINYINT(1) NOT NULL DEFAULT '1', relay_all_recipients TINYINT(1) NOT NULL DEFAULT '0',
  relay_unknown_only TINYINT(1) NOT NULL DEFAULT '0', created DATETIME(0) NOT NULL DEFAULT NOW(0),
  modified DATETIME ON UPDATE CURRENT_TIMESTAMP, active TINYINT(1) NOT NULL DEFAULT '1',
  PRIMARY KEY (domain)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 ROW_FORMAT=DYNAMIC;
CREATE TABLE mailbox (
  username VARCHAR(255) NOT NULL, password VARCHAR(255) NOT NULL, name VARCHAR(255), description VARCHAR(255),
  mailbox_path_prefix VARCHAR(150) DEFAULT '/var/vmail/', quota BIGINT(20) NOT NULL DEFAULT '102400',
  local_part VARCHAR(255) NOT NULL, domain VARCHAR(255) NOT NULL, attributes JSON,
  custom_attributes JSON NOT NULL DEFAULT ('{}'), kind VARCHAR(100) NOT NULL DEFAULT '',
  multiple_bookings INT NOT NULL DEFAULT -1,
  authsource ENUM('mailcow', 'keycloak', 'generic-oidc', 'ldap') DEFAULT 'mailcow',
  created DATETIME(0) NOT NULL DEFAULT NOW(0), modified DATETIME ON UPDATE CURRENT_TIMESTAMP,
  active TINYINT(1) NOT NULL DEFAULT '1',
  PRIMARY KEY (username), KEY domain (domain), KEY kind (kind)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 ROW_FORMAT=DYNAMIC;
CREATE TABLE admin (
  username VARCHAR(255) NOT NULL, password VARCHAR(255) NOT NULL, superadmin TINYINT(1) NOT NULL DEFAULT '0',
  created DATETIME(0) NOT NULL DEFAULT NOW(0), modified DATETIME ON UPDATE NOW(0),
  active TINYINT(1) NOT NULL DEFAULT '1', attributes JSON, PRIMARY KEY (username)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 ROW_FORMAT=DYNAMIC;
CREATE TABLE domain_admins (
  id INT NOT NULL AUTO_INCREMENT, username VARCHAR(255) NOT NULL, domain VARCHAR(255) NOT NULL,
  created DATETIME(0) NOT NULL DEFAULT NOW(0), active TINYINT(1) NOT NULL DEFAULT '1',
  PRIMARY KEY (id), KEY username (username)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 ROW_FORMAT=DYNAMIC;
CREATE TABLE da_acl (
  username VARCHAR(255) NOT NULL, syncjobs TINYINT(1) NOT NULL DEFAULT '1',
  quarantine TINYINT(1) NOT NULL DEFAULT '1', login_as TINYINT(1) NOT NULL DEFAULT '1',
  sogo_access TINYINT(1) NOT NULL DEFAULT '1', app_passwds TINYINT(1) NOT NULL DEFAULT '1',
  protocol_access TINYINT(1) NOT NULL DEFAULT '1', PRIMARY KEY (username)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 ROW_FORMAT=DYNAMIC;
CREATE TABLE tfa (
  id INT NOT NULL AUTO_INCREMENT, key_id VARCHAR(255) NOT NULL, username VARCHAR(255) NOT NULL,
  authmech ENUM('yubi_otp', 'u2f', 'hotp', 'totp', 'webauthn'), secret VARCHAR(255) DEFAULT NULL,
  keyHandle VARCHAR(1023) DEFAULT NULL, publicKey VARCHAR(4096) DEFAULT NULL, counter INT NOT NULL DEFAULT '0',
  certificate TEXT, active TINYINT(1) NOT NULL DEFAULT '0', PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 ROW_FORMAT=DYNAMIC;
CREATE TABLE app_passwd (
  id INT NOT NULL AUTO_INCREMENT, name VARCHAR(255) NOT NULL, mailbox VARCHAR(255) NOT NULL,
  domain VARCHAR(255) NOT NULL, password VARCHAR(255) NOT NULL, created DATETIME(0) NOT NULL DEFAULT NOW(0),
  modified DATETIME ON UPDATE CURRENT_TIMESTAMP, imap_access TINYINT(1) NOT NULL DEFAULT '1',
  smtp_access TINYINT(1) NOT NULL DEFAULT '1', dav_access TINYINT(1) NOT NULL DEFAULT '1',
  eas_access TINYINT(1) NOT NULL DEFAULT '1', pop3_access TINYINT(1) NOT NULL DEFAULT '1',
  sieve_access TINYINT(1) NOT NULL DEFAULT '1', active TINYINT(1) NOT NULL DEFAULT '1',
  PRIMARY KEY (id), KEY mailbox (mailbox), KEY password (password), KEY domain (domain)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 ROW_FORMAT=DYNAMIC;
CREATE TABLE templates (
  id INT NOT NULL AUTO_INCREMENT, template VARCHAR(255) NOT NULL, type VARCHAR(255) NOT NULL, attributes JSON,
  created DATETIME(0) NOT NULL DEFAULT NOW(0), modified DATETIME ON UPDATE CURRENT_TIMESTAMP, PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 ROW_FORMAT=DYNAMIC;
INSERT INTO templates (template, type, attributes) VALUES
  ('Staff', 'mailbox', '{\"quota\":\"2147483648\",\"active\":\"1\",\"imap_access\":\"1\",\"smtp_access\":\"1\",\"pop3_access\":\"0\",\"sieve_access\":\"1\",\"sogo_access\":\"1\",\"eas_access\":\"0\",\"dav_access\":\"0\"}'),
  ('Default', 'domain', '{\"max_num_mboxes_for_domain\":\"10\"}');
CREATE TABLE identity_provider (
  `key` VARCHAR(255) NOT NULL, `value` TEXT NOT NULL, created DATETIME(0) NOT NULL DEFAULT NOW(0),
  modified DATETIME ON UPDATE CURRENT_TIMESTAMP, PRIMARY KEY (`key`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 ROW_FORMAT=DYNAMIC;
CREATE TABLE api (
  api_key VARCHAR(255) NOT NULL, allow_from VARCHAR(512) NOT NULL, skip_ip_check TINYINT(1) NOT NULL DEFAULT '0',
  created DATETIME(0) NOT NULL DEFAULT NOW(0), modified DATETIME ON UPDATE NOW(0),
  access ENUM('ro', 'rw') NOT NULL DEFAULT 'rw', active TINYINT(1) NOT NULL DEFAULT '1', PRIMARY KEY (api_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 ROW_FORMAT=DYNAMIC;
INSERT INTO api (api_key, allow_from, access, active) VALUES
  ('ABCDEF-012345-MAILCOW-RW', '192.0.2.0/24,127.0.0.1', 'rw', 1), ('FEDCBA-543210-MAILCOW-OFF', '127.0.0.1', 'ro', 0);
";

/// mailcow's app passwords (SSHA256 with a 16-character salt, as mailcow writes them): owner, name, hash, the
/// secret the client types, active.
const APP_PASSWORDS: [(&str, &str, &str, &str, i32); 4] = [
    (
        "alice@example.org",
        "Phone",
        "{SSHA256}GIA6CtD/kfbH+9p4cVlCWhUP3PbCLptHsI0m4+RYlWYwYTFiMmMzZDRlNWY2YTdi",
        "alice-app-secret",
        1,
    ),
    (
        "alice@example.org",
        "Old laptop",
        "{SSHA256}jME+pdO1kYmgg3PsPs1EyQc3FufCeAlE3KP17zlezEYxYTFiMmMzZDRlNWY2YTdi",
        "alice-old-secret",
        0,
    ),
    (
        "tina@example.org",
        "Phone",
        "{SSHA256}8zK27L5c4Sn2FgqV0FqgjKSB4IZPyDNtKcCcSFx1Bb4yYTFiMmMzZDRlNWY2YTdi",
        "tina-app-secret",
        1,
    ),
    (
        "frank@example.org",
        "Phone",
        "{SSHA256}UNRWE+4fTMxTplvzGFv23xK9MjzVWeavbhpNBudjcwAzYTFiMmMzZDRlNWY2YTdi",
        "frank-app-secret",
        1,
    ),
];

/// frank, who signs in at mailcow's LDAP directory.
const FRANK_LDIF: &str = "dn: uid=frank,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: frank
cn: Frank
sn: Example
mail: frank@example.org
employeeType: staff
userPassword: frankpw
";

/// tina's TOTP key in mailcow (base32).
const TINA_TOTP: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

/// mailcow's attributes of a mailbox with these protocols on (the rest off).
fn attributes(on: &[&str], force_pw_update: bool) -> String {
    let mut attributes = serde_json::json!({
        "force_pw_update": if force_pw_update { "1" } else { "0" },
        "force_tfa": "0",
        "tls_enforce_in": "0",
        "tls_enforce_out": "0",
        "mailbox_format": "maildir:",
        "quarantine_notification": "never",
        "quarantine_category": "reject",
    });
    for protocol in ["imap", "pop3", "smtp", "sieve", "sogo", "eas", "dav"] {
        let value = if on.contains(&protocol) { "1" } else { "0" };
        attributes[format!("{protocol}_access")] = value.into();
    }
    attributes.to_string()
}

fn mailbox_row(
    address: &str,
    hash: &str,
    quota_mib: i64,
    attributes: &str,
    authsource: &str,
    kind: &str,
    active: i32,
) -> String {
    let (local, domain) = address.split_once('@').unwrap();
    format!(
        "INSERT INTO mailbox (username, password, name, quota, local_part, domain, attributes, kind, authsource, \
         active) VALUES ('{address}', '{hash}', 'Name of {local}', {}, '{local}', '{domain}', '{attributes}', \
         '{kind}', '{authsource}', {active});",
        quota_mib * 1024 * 1024
    )
}

#[test]
fn a_mailcow_database_comes_across_and_dovecot_logs_its_mailboxes_in() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let Some(mailcow) = runtime.block_on(TestDatabase::create(Engine::MariaDb)) else { return };
    // `{BLF-CRYPT}$2y$10$…`, as mailcow writes it with PHP's password_hash.
    let alice = generate(b"alicepw", &GenerateScheme::BlfCrypt { cost: 10 }).unwrap();
    let all = ["imap", "pop3", "smtp", "sieve", "sogo", "eas", "dav"];
    let mut sql = MAILCOW_TABLES.to_string();
    sql.push_str(
        "INSERT INTO domain (domain, description, mailboxes, defquota, maxquota, quota, active) VALUES \
         ('example.org', 'Main', 10, 1024, 4096, 20480, 1), ('old.example', '', 5, 512, 1024, 2048, 0);",
    );
    for row in [
        mailbox_row("alice@example.org", &alice, 2048, &attributes(&["imap", "smtp", "sogo"], false), "mailcow", "", 1),
        mailbox_row(
            "bob@example.org",
            "{SSHA256}tDHmM3swCa21jFuuHrKAny7HchgtDMEeGVFEEXWLICM1ZjJjOWExZTdiM2Q0YzYw",
            1024,
            &attributes(&all, false),
            "mailcow",
            "",
            1,
        ),
        mailbox_row(
            "carol@example.org",
            "{SSHA512}LfiToc9EDjO9IdhXpqbjUIvYAJytUSeS8OnOGRTWOK4o3zFoVHi32XMeqwUy0r7UeLz/lyVs9SS87sD8+g9+LDVmMmM5YTFlN2IzZDRjNjA=",
            1024,
            &attributes(&all, true),
            "mailcow",
            "",
            1,
        ),
        mailbox_row(
            "dave@example.org",
            "{SSHA}az8Vl5rMqYLz+9XO7Z/WLzE13ps1ZjJjOWExZTdiM2Q0YzYw",
            1024,
            &attributes(&all, false),
            "mailcow",
            "",
            1,
        ),
        mailbox_row(
            "tina@example.org",
            "{SSHA}az8Vl5rMqYLz+9XO7Z/WLzE13ps1ZjJjOWExZTdiM2Q0YzYw",
            1024,
            &attributes(&all, false),
            "mailcow",
            "",
            1,
        ),
        mailbox_row(
            "erin@example.org",
            "{SSHA}az8Vl5rMqYLz+9XO7Z/WLzE13ps1ZjJjOWExZTdiM2Q0YzYw",
            1024,
            &attributes(&all, false),
            "mailcow",
            "",
            2,
        ),
        mailbox_row("frank@example.org", "", 1024, &attributes(&all, false), "ldap", "", 1),
        mailbox_row(
            "room@example.org",
            "{SSHA}az8Vl5rMqYLz+9XO7Z/WLzE13ps1ZjJjOWExZTdiM2Q0YzYw",
            0,
            "{}",
            "mailcow",
            "location",
            1,
        ),
        mailbox_row(
            "gone@old.example",
            "{SSHA}az8Vl5rMqYLz+9XO7Z/WLzE13ps1ZjJjOWExZTdiM2Q0YzYw",
            512,
            &attributes(&all, false),
            "mailcow",
            "",
            0,
        ),
    ] {
        sql.push_str(&row);
    }
    let admin_hash = generate(b"mailcow-admin-pw", &GenerateScheme::BlfCrypt { cost: 5 }).unwrap();
    let helper_hash = generate(b"helper-pw", &GenerateScheme::Ssha512).unwrap();
    sql.push_str(&format!(
        "INSERT INTO admin (username, password, superadmin, active, attributes) VALUES \
         ('admin', '{admin_hash}', 1, 1, '{{\"force_tfa\":\"0\",\"force_pw_update\":\"0\"}}'), \
         ('helper', '{helper_hash}', 0, 1, '{{\"force_tfa\":\"0\",\"force_pw_update\":\"1\"}}'); \
         INSERT INTO domain_admins (username, domain) VALUES ('helper', 'example.org'); \
         INSERT INTO da_acl (username, login_as) VALUES ('helper', 0); \
         INSERT INTO tfa (key_id, username, authmech, secret, active) VALUES \
         ('phone', 'tina@example.org', 'totp', '{TINA_TOTP}', 1), \
         ('tablet', 'tina@example.org', 'totp', 'KRSXG5CTMVRXEZLU', 1), \
         ('key', 'admin', 'webauthn', NULL, 1);"
    ));
    for (mailbox, name, hash, _, active) in APP_PASSWORDS {
        // IMAP and SMTP only, as mailcow's mobileconfig creates them.
        sql.push_str(&format!(
            "INSERT INTO app_passwd (name, mailbox, domain, password, dav_access, eas_access, pop3_access, \
             sieve_access, active) VALUES ('{name}', '{mailbox}', 'example.org', '{hash}', 0, 0, 0, 0, {active});"
        ));
    }
    // mailcow's LDAP provider, pointing at a real directory that knows frank.
    let Some(slapd) = Slapd::start(&format!("{}\n{FRANK_LDIF}", support::LDAP_PEOPLE)) else { return };
    let ldap = [
        ("authsource", "ldap".to_string()),
        ("host", "127.0.0.1".to_string()),
        ("port", slapd.ldap_port.to_string()),
        ("use_ssl", "0".to_string()),
        ("use_tls", "0".to_string()),
        ("ignore_ssl_error", "0".to_string()),
        ("basedn", "ou=people,dc=example,dc=org".to_string()),
        ("binddn", "cn=admin,dc=example,dc=org".to_string()),
        ("bindpass", "adminpw".to_string()),
        ("username_field", "mail".to_string()),
        ("filter", "(objectClass=inetOrgPerson)".to_string()),
        ("attribute_field", "employeeType".to_string()),
        ("login_provisioning", "1".to_string()),
        ("periodic_sync", "0".to_string()),
        ("import_users", "0".to_string()),
        ("sync_interval", "15".to_string()),
        ("mappers", "[\"staff\"]".to_string()),
        ("templates", "[\"Staff\"]".to_string()),
    ];
    for (key, value) in ldap {
        sql.push_str(&format!(
            "INSERT INTO identity_provider (`key`, `value`) VALUES ('{key}', '{}');",
            value.replace('\\', "\\\\").replace('\'', "\\'")
        ));
    }
    runtime.block_on(mailcow.execute(&sql));
    let checksum = || {
        runtime.block_on(async {
            use sea_orm::ConnectionTrait;
            let db = sea_orm::Database::connect(mailcow.url().expose()).await.unwrap();
            let rows = db
                .query_all_raw(sea_orm::Statement::from_string(
                    sea_orm::DbBackend::MySql,
                    "CHECKSUM TABLE domain, mailbox, admin, domain_admins, da_acl, tfa, app_passwd, api, templates, \
                     identity_provider EXTENDED"
                        .to_string(),
                ))
                .await
                .unwrap();
            let sums: Vec<i64> = rows.iter().map(|row| row.try_get::<i64>("", "Checksum").unwrap()).collect();
            let _ = db.close().await;
            sums
        })
    };
    let before = checksum();
    // mailcow's app links live in its Redis (key APP_LINKS, JSON as mailcow's customize() writes it; "Old" in the
    // shape older versions wrote), behind the password mailcow.conf's REDISPASS holds.
    let Some(redis) = Redis::start("mailcow-redis-pw") else { return };
    redis.command(&[
        "SET",
        "APP_LINKS",
        r#"[{"Webmail":{"link":"/SOGo/so/","user_link":"/SOGo/so/%u","hide":true}},{"Wiki":{"link":"https://wiki.example.org/","user_link":"https://wiki.example.org/u/%u","hide":false}},{"Old":"https://old.example.org/"}]"#,
    ]);
    redis.command(&["SET", "OTHER", "untouched"]);
    let redis_before = redis.snapshot();
    let redis_url = format!("redis://127.0.0.1:{}", redis.port);

    let dir = tempfile::tempdir().unwrap();
    let db = "sqlite://./data/gatehouse.db";
    support::init(dir.path(), db, "admin-pw");
    let from = mailcow.url().expose().to_string();
    let conf = dir.path().join("mailcow.conf");
    std::fs::write(&conf, "MAILCOW_HOSTNAME=mail.example.org\nALLOW_ADMIN_EMAIL_LOGIN=y\nREDISPASS=mailcow-redis-pw\n")
        .unwrap();
    let conf = conf.to_str().unwrap().to_string();
    let import = |extra: &[&str]| {
        let mut args = vec![
            "import",
            "mailcow",
            "--from",
            from.as_str(),
            "--json",
            "--mailcow-conf",
            &conf,
            "--redis",
            &redis_url,
        ];
        args.extend_from_slice(extra);
        let (code, stdout, stderr) = cli(dir.path(), db, &args, "");
        assert_eq!(code, 0, "{stderr}\n{stdout}");
        serde_json::from_str::<Value>(&stdout).unwrap()
    };
    let mailboxes =
        || -> Value { serde_json::from_str(&cli_ok(dir.path(), db, &["mailbox", "list", "--json"], "")).unwrap() };
    let action = |report: &Value, name: &str| {
        report["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("{name}: {report}"))
            .clone()
    };

    // A dry run says what would happen and writes nothing.
    let planned = import(&["--dry-run"]);
    assert_eq!(planned["dry_run"], true);
    assert_eq!(planned["domains"]["created"], 2, "{planned}");
    assert_eq!(planned["mailboxes"]["created"], 8, "frank bound to the provider it would create: {planned}");
    assert_eq!(planned["mailboxes"]["skipped"], 1, "{planned}");
    assert_eq!(mailboxes().as_array().unwrap().len(), 0, "a dry run writes nothing");
    assert_eq!(planned["administrators"]["created"], 1, "helper; admin exists: {planned}");
    assert_eq!(planned["administrators"]["updated"], 1, "{planned}");
    assert_eq!(planned["app_links"]["created"], 3, "{planned}");

    // The import.
    let report = import(&[]);
    assert_eq!((&report["domains"]["created"], &report["mailboxes"]["created"]), (&2.into(), &8.into()), "{report}");
    assert_eq!(action(&report, "frank@example.org")["action"], "created");
    assert_eq!((&report["templates"]["created"], &report["identity_providers"]["created"]), (&1.into(), &1.into()));
    let provider: Value = serde_json::from_str(&cli_ok(dir.path(), db, &["idp", "show", "ldap"], "")).unwrap();
    assert_eq!(provider["settings"]["user_filter"], "(&(objectClass=inetOrgPerson)(mail=%u))", "{provider}");
    assert_eq!(provider["mappings"][0]["template"], "Staff", "{provider}");
    assert!(!provider.to_string().contains("adminpw"), "the bind password is stored as a secret, never shown");
    assert!(action(&report, "room@example.org")["reason"].as_str().unwrap().contains("resource"));
    assert_eq!(action(&report, "admin")["changes"], serde_json::json!(["password"]), "{report}");
    assert_eq!(report["second_factors"]["created"], 1, "{report}");
    assert_eq!(report["app_passwords"]["created"], 4, "{report}");
    assert_eq!(action(&report, "frank@example.org: Phone")["action"], "created");
    let listed = cli_ok(dir.path(), db, &["app-password", "list", "alice@example.org", "--json"], "");
    let listed: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    assert!(listed.as_array().unwrap().iter().all(|a| a["legacy"] == true), "{listed}");
    // API keys: made anew with mailcow's access and networks, the token shown once.
    assert_eq!((&report["api_keys"]["created"], &report["api_keys"]["skipped"]), (&1.into(), &1.into()), "{report}");
    let key = report["entries"].as_array().unwrap().iter().find(|e| e["kind"] == "API key" && e["action"] == "created");
    let key = key.unwrap().to_string();
    assert!(key.contains("read-write, from 192.0.2.0/24, 127.0.0.1") && !key.contains("MAILCOW-RW"), "{key}");
    let token = key.split("shown once): ").nth(1).unwrap().split('"').next().unwrap().to_string();
    assert_eq!(report["app_links"]["created"], 3, "{report}");
    let setting = action(&report, "web.allow_admin_email_login");
    assert!(setting["reason"].as_str().unwrap().contains("set web.allow_admin_email_login = true"), "{setting}");
    assert_eq!(report["second_factors"]["skipped"], 2, "a second TOTP and a security key: {report}");
    let key = action(&report, "admin (webauthn key)");
    assert!(key["reason"].as_str().unwrap().contains("must enrol again"), "{key}");
    let helper: Value = serde_json::from_str(&cli_ok(dir.path(), db, &["domain-admin", "list", "--json"], "")).unwrap();
    let helper = &helper[0];
    assert_eq!(
        (&helper["username"], &helper["domains"], &helper["acl"], &helper["force_password_change"]),
        (&"helper".into(), &serde_json::json!(["example.org"]), &serde_json::json!([]), &true.into()),
        "{helper}"
    );
    let listed = mailboxes();
    let find = |address: &str| listed.as_array().unwrap().iter().find(|m| m["address"] == address).unwrap().clone();
    let imported = find("alice@example.org");
    assert_eq!(
        (&imported["quota_mib"], &imported["display_name"]),
        (&2048.into(), &"Name of alice".into()),
        "{imported}"
    );
    assert_eq!(imported["protocols"], serde_json::json!(["imap", "smtp", "sogo"]), "{imported}");
    assert_eq!(find("carol@example.org")["force_password_change"], true);
    let erin = find("erin@example.org");
    assert_eq!((&erin["active"], &erin["protocols"]), (&true.into(), &serde_json::json!([])), "active = 2: {erin}");
    assert_eq!(find("gone@old.example")["active"], false);
    let domains: Value = serde_json::from_str(&cli_ok(dir.path(), db, &["domain", "list", "--json"], "")).unwrap();
    let main = domains.as_array().unwrap().iter().find(|d| d["name"] == "example.org").unwrap();
    assert_eq!(
        (&main["max_mailboxes"], &main["default_quota_mib"], &main["max_quota_mib"], &main["total_quota_mib"]),
        (&10.into(), &1024.into(), &4096.into(), &20480.into()),
        "{main}"
    );

    // Again: nothing changes.
    let again = import(&[]);
    assert_eq!(again["domains"]["unchanged"], 2, "{again}");
    assert_eq!(again["mailboxes"]["unchanged"], 8, "{again}");
    assert_eq!(again["templates"]["unchanged"], 1, "{again}");
    assert_eq!(again["identity_providers"]["unchanged"], 1, "{again}");
    assert_eq!(again["administrators"]["unchanged"], 2, "{again}");
    assert_eq!(again["second_factors"]["unchanged"], 1, "{again}");
    assert_eq!(again["app_passwords"]["unchanged"], 4, "{again}");
    assert_eq!(again["api_keys"]["unchanged"], 1, "{again}");
    assert_eq!(again["app_links"]["unchanged"], 3, "{again}");
    assert_eq!(mailboxes().as_array().unwrap().len(), 8);
    assert_eq!(checksum(), before, "mailcow's tables are only read");
    assert_eq!(redis.snapshot(), redis_before, "mailcow's Redis is only read");

    // A change in mailcow is carried over, and only that.
    runtime.block_on(
        mailcow.execute("UPDATE mailbox SET quota = 3072 * 1024 * 1024 WHERE username = 'alice@example.org'"),
    );
    redis.command(&[
        "SET",
        "APP_LINKS",
        r#"[{"Webmail":{"link":"/SOGo/so/","user_link":"/SOGo/so/%u","hide":true}},{"Wiki":{"link":"https://wiki.example.org/","user_link":"https://wiki.example.org/u/%u","hide":false}},{"Old":{"link":"https://old.example.org/","user_link":"","hide":"1"}}]"#,
    ]);
    let redis_current = redis.snapshot();
    let changed = import(&[]);
    assert_eq!(changed["mailboxes"]["updated"], 1, "{changed}");
    assert_eq!(action(&changed, "alice@example.org")["changes"], serde_json::json!(["quota"]));
    assert_eq!(changed["app_links"]["updated"], 1, "{changed}");
    assert_eq!(action(&changed, "Old")["changes"], serde_json::json!(["hidden_on_login"]), "{changed}");

    let current = checksum();
    import(&[]);
    assert_eq!(checksum(), current, "mailcow's tables are only read");
    assert_eq!(redis.snapshot(), redis_current, "mailcow's Redis is only read");
    // A wrong Redis password, and a Redis that does not answer: a clear error, and nothing changes here.
    let audit_rows = || cli_ok(dir.path(), db, &["log", "audit", "--json"], "");
    let audited = audit_rows();
    let wrong = format!("redis://:not-the-password@127.0.0.1:{}", redis.port);
    let (code, _, stderr) = cli(dir.path(), db, &["import", "mailcow", "--from", &from, "--redis", &wrong], "");
    assert_eq!(code, 78, "{stderr}");
    assert!(stderr.contains("refused the password") && !stderr.contains("not-the-password"), "{stderr}");
    let down = format!("redis://127.0.0.1:{}", gatehouse_testkit::free_port());
    let (code, _, stderr) = cli(dir.path(), db, &["import", "mailcow", "--from", &from, "--redis", &down], "");
    assert_eq!(code, 75, "an unreachable Redis is a temporary failure: {stderr}");
    assert!(stderr.contains("mailcow's Redis"), "{stderr}");
    assert_eq!(audit_rows(), audited, "nothing was written");

    // Real Dovecot: the old passwords, the old flags.
    let server = Server::start(dir.path(), db, Some("admin-pw"));
    let Some(dovecot) = support::start_dovecot(dir.path(), db, server.internal) else { return };
    assert!(imap_login(dovecot.imap, "alice@example.org", "alicepw").ok(), "BLF-CRYPT: {}", dovecot.log());
    assert!(imap_login(dovecot.imap, "bob@example.org", "bobpw").ok(), "SSHA256");
    assert!(imap_login(dovecot.imap, "carol@example.org", "carolpw").ok(), "SSHA512");
    assert!(imap_login(dovecot.imap, "dave@example.org", "davepw").ok(), "SSHA");
    assert!(!imap_login(dovecot.imap, "tina@example.org", "davepw").ok(), "with TOTP, mail needs app passwords");
    // The app passwords mailcow's clients have: the bare secret, scopes and active flag as in mailcow.
    assert!(imap_login(dovecot.imap, "tina@example.org", "tina-app-secret").ok(), "{}", dovecot.log());
    assert!(imap_login(dovecot.imap, "alice@example.org", "alice-app-secret").ok());
    assert!(!imap_login(dovecot.imap, "alice@example.org", "alice-old-secret").ok(), "revoked in mailcow");
    assert!(!pop3_login(dovecot.pop3, "alice@example.org", "alice-app-secret").ok(), "IMAP and SMTP only");
    assert!(!imap_login(dovecot.imap, "tina@example.org", "alice-app-secret").ok(), "alice's, not tina's");
    // frank signs in at the LDAP directory mailcow's provider named, and his app password works too.
    assert!(imap_login(dovecot.imap, "frank@example.org", "frankpw").ok(), "{}", dovecot.log());
    assert!(imap_login(dovecot.imap, "frank@example.org", "frank-app-secret").ok());
    assert!(!imap_login(dovecot.imap, "frank@example.org", "wrong").ok());
    assert!(!imap_login(dovecot.imap, "alice@example.org", "wrong").ok());
    assert!(!pop3_login(dovecot.pop3, "alice@example.org", "alicepw").ok(), "alice had no POP3 in mailcow");
    assert!(!imap_login(dovecot.imap, "erin@example.org", "davepw").ok(), "mailcow refused erin's logins");
    assert!(!imap_login(dovecot.imap, "gone@old.example", "davepw").ok(), "inactive in mailcow");

    // The web login with the old TOTP secret; the administrators with their mailcow passwords; the API key.
    let port = server.public;
    let listed = support::http::request(port, "GET", "/api/v1/domains", &[("X-API-Key", &token)], "");
    assert_eq!(listed.status, 200, "{listed:?}");
    let mut web = Client::default();
    // mailcow's app links: the login page shows those mailcow did not hide there, the user page each with %u.
    let login_page = web.get(port, "/").body;
    assert!(login_page.contains(r#"<a href="https://wiki.example.org/">Wiki</a>"#), "{login_page}");
    assert!(!login_page.contains("Webmail") && !login_page.contains("old.example.org"), "{login_page}");
    assert_eq!(web.login(port, "/", "tina@example.org", "davepw").status, 303);
    assert_eq!(web.get(port, "/").header("location"), Some("/totp"), "the second factor is asked for");
    let csrf = web.get(port, "/totp").form_value("csrf").unwrap();
    let code = gatehouse_server::totp::current_code(TINA_TOTP, unix_now()).unwrap();
    let passed = web.post(port, "/totp", &[("csrf", &csrf), ("code", &code)]);
    assert_eq!((passed.status, passed.header("location")), (303, Some("/")), "{passed:?}");
    let user_page = web.get(port, "/").body;
    for link in [
        r#"<a href="/SOGo/so/tina%40example.org">Webmail</a>"#,
        r#"<a href="https://wiki.example.org/u/tina%40example.org">Wiki</a>"#,
        r#"<a href="https://old.example.org/">Old</a>"#,
    ] {
        assert!(user_page.contains(link), "{link}: {user_page}");
    }
    assert_eq!(Client::default().login(port, "/admin", "admin", "mailcow-admin-pw").status, 303);
    assert_eq!(Client::default().login(port, "/admin", "admin", "admin-pw").status, 401, "the old password is gone");
    assert_eq!(Client::default().login(port, "/domainadmin", "helper", "helper-pw").status, 303);
}

#[test]
fn the_import_needs_a_mysql_url_and_says_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let db = "sqlite://./data/gatehouse.db";
    support::init(dir.path(), db, "admin-pw");
    let (code, _, stderr) = cli(dir.path(), db, &["import", "mailcow", "--from", "postgres://x@127.0.0.1/mailcow"], "");
    assert!(code != 0 && stderr.contains("mysql://"), "{stderr}");
    let port = gatehouse_testkit::free_port();
    let url = format!("mysql://mailcow:secret-pw@127.0.0.1:{port}/mailcow");
    let (code, _, stderr) = cli(dir.path(), db, &["import", "mailcow", "--from", &url], "");
    assert_eq!(code, 75, "an unreachable mailcow is a temporary failure: {stderr}");
    assert!(stderr.contains("cannot connect to mailcow's database") && !stderr.contains("secret-pw"), "{stderr}");
}

#[test]
fn mailcows_keycloak_provider_comes_across_and_its_users_log_in_with_their_mail_password() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let Some(mailcow) = runtime.block_on(TestDatabase::create(Engine::MariaDb)) else { return };
    let Some(keycloak) = OpenIdProvider::start_keycloak("mail", "gatehouse", "service-secret") else { return };
    let mut kim = KeycloakUser::new("kim", "kim@example.org", &[]);
    let hash = generate(b"kimpw", &GenerateScheme::BlfCrypt { cost: 5 }).unwrap();
    kim.attributes.insert("mailcow_password".into(), vec![hash]);
    kim.attributes.insert("mailcow_template".into(), vec!["staff".into()]);
    keycloak.set_keycloak_users(&[kim]);

    let mut sql = MAILCOW_TABLES.to_string();
    sql.push_str(
        "INSERT INTO domain (domain, mailboxes, defquota, maxquota, quota) VALUES ('example.org', 10, 1024, 4096, \
         20480);",
    );
    sql.push_str(&mailbox_row("kim@example.org", "", 1024, &attributes(&["imap"], false), "keycloak", "", 1));
    let settings = [
        ("authsource", "keycloak".to_string()),
        ("server_url", format!("http://127.0.0.1:{}/", keycloak.port)),
        ("realm", "mail".to_string()),
        ("client_id", "gatehouse".to_string()),
        ("client_secret", "service-secret".to_string()),
        ("redirect_url", "https://mail.example.org/".to_string()),
        ("version", "26.1.3".to_string()),
        ("mailpassword_flow", "1".to_string()),
        ("periodic_sync", "0".to_string()),
        ("import_users", "0".to_string()),
        ("sync_interval", "15".to_string()),
        ("ignore_ssl_error", "0".to_string()),
        ("login_provisioning", "1".to_string()),
    ];
    for (key, value) in settings {
        sql.push_str(&format!("INSERT INTO identity_provider (`key`, `value`) VALUES ('{key}', '{value}');"));
    }
    runtime.block_on(mailcow.execute(&sql));

    let dir = tempfile::tempdir().unwrap();
    let db = "sqlite://./data/gatehouse.db";
    support::init(dir.path(), db, "admin-pw");
    let from = mailcow.url().expose().to_string();
    let (code, stdout, stderr) = cli(dir.path(), db, &["import", "mailcow", "--from", &from, "--json"], "");
    assert_eq!(code, 0, "{stderr}\n{stdout}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["identity_providers"]["created"], 1, "{report}");
    assert_eq!(report["mailboxes"]["created"], 1, "{report}");
    let provider: Value = serde_json::from_str(&cli_ok(dir.path(), db, &["idp", "show", "keycloak"], "")).unwrap();
    assert_eq!(provider["settings"]["server_url"], format!("http://127.0.0.1:{}", keycloak.port), "{provider}");
    assert_eq!(provider["settings"]["mailpassword_flow"], true, "{provider}");
    assert!(!provider.to_string().contains("service-secret"), "the client secret is stored as a secret");
    let listed: Value = serde_json::from_str(&cli_ok(dir.path(), db, &["mailbox", "list", "--json"], "")).unwrap();
    assert_eq!(listed[0]["auth_source"], "keycloak", "{listed}");
    // The browser sign-in step of the test needs the address Keycloak sends browsers back to.
    std::fs::write(dir.path().join("gatehouse.toml"), "[web]\npublic_url = \"https://mail.example.org/\"\n").unwrap();
    let (code, tested, stderr) = cli(dir.path(), db, &["idp", "test", "keycloak"], "");
    assert!(code == 0 && tested.contains("ok    client credentials"), "{tested}\n{stderr}");

    // Keycloak's mailpassword flow through real Dovecot, as in mailcow.
    let server = Server::start(dir.path(), db, Some("admin-pw"));
    let Some(dovecot) = support::start_dovecot(dir.path(), db, server.internal) else { return };
    assert!(imap_login(dovecot.imap, "kim@example.org", "kimpw").ok(), "{}", dovecot.log());
    assert!(!imap_login(dovecot.imap, "kim@example.org", "wrong").ok());
}
