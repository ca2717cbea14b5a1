//! `gatehouse doctor` against a real instance: a fresh one has no problems; a running server is seen; an LDAP
//! directory (real slapd) passes its connection test and is a problem once it is down; an internal listener on
//! every address, a public URL without https, a secret key file and a configuration file with secrets that
//! others can read are problems, each finding saying what to do; a database without Gatehouse's schema is named.

mod support;

use std::os::unix::fs::PermissionsExt;

use gatehouse_testkit::slapd::Slapd;
use support::{Server, cli_ok};

/// Runs `gatehouse doctor` with `env`; the exit code and standard output.
fn doctor(dir: &std::path::Path, db: &str, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .args(["--database-url", db])
        .args(args)
        .arg("doctor")
        .output()
        .unwrap();
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The finding line about `what`.
fn finding<'a>(report: &'a str, what: &str) -> &'a str {
    report.lines().find(|line| line.get(9..).is_some_and(|rest| rest.starts_with(what))).unwrap_or_else(|| {
        panic!("no finding about {what}:\n{report}");
    })
}

#[test]
fn doctor_finds_what_is_wrong_and_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let db = "sqlite://./data/gatehouse.db";

    // No database yet: named, with the command that creates it.
    let (code, report) = doctor(dir.path(), db, &[], &[]);
    assert_eq!(code, 1, "{report}");
    assert!(finding(&report, "database").contains("gatehouse init"), "{report}");

    support::init(dir.path(), db, "admin-pw");
    let (code, report) = doctor(dir.path(), db, &[], &[]);
    assert_eq!(code, 0, "a fresh instance has no problems:\n{report}");
    assert!(finding(&report, "database").starts_with("ok ") && report.contains("all applied"), "{report}");
    assert!(finding(&report, "secret key").starts_with("ok "), "{report}");
    assert!(finding(&report, "internal listener").starts_with("ok "), "{report}");
    assert!(finding(&report, "running server").starts_with("warning "), "not running yet:\n{report}");
    assert!(report.ends_with("0 problem(s), 3 warning(s)\n"), "{report}");

    // A running server is seen on its internal listener.
    let server = Server::start(dir.path(), db, Some("admin-pw"));
    let internal = format!("127.0.0.1:{}", server.internal);
    let (_, report) = doctor(dir.path(), db, &[], &[("GATEHOUSE_LISTEN__INTERNAL", &internal)]);
    assert!(finding(&report, "running server").starts_with("ok "), "{report}");
    drop(server);

    // An LDAP directory: passes while slapd answers, a problem once it is down.
    if let Some(mut slapd) = Slapd::start(support::LDAP_PEOPLE) {
        let mut settings = support::ldap_settings(&slapd);
        settings["timeout_seconds"] = 2.into();
        let settings = settings.to_string();
        cli_ok(
            dir.path(),
            db,
            &["idp", "add", "corp", "--type", "ldap", "--settings", &settings, "--bind-password-stdin"],
            "adminpw\n",
        );
        let (code, report) = doctor(dir.path(), db, &[], &[]);
        assert_eq!(code, 0, "{report}");
        assert!(finding(&report, "identity provider corp").contains("steps passed"), "{report}");
        slapd.stop();
        let (code, report) = doctor(dir.path(), db, &[], &[]);
        assert_eq!(code, 1, "{report}");
        let down = finding(&report, "identity provider corp");
        assert!(down.starts_with("PROBLEM") && down.contains("gatehouse idp test corp"), "{report}");
        cli_ok(dir.path(), db, &["idp", "edit", "corp", "--active", "false"], "");
    }

    // Settings that expose the instance.
    let (code, report) = doctor(
        dir.path(),
        db,
        &[],
        &[
            ("GATEHOUSE_LISTEN__INTERNAL", "0.0.0.0:8081"),
            ("GATEHOUSE_WEB__PUBLIC_URL", "http://mail.example.org"),
            ("GATEHOUSE_DOVECOT__ALLOWED_NETWORKS", "[\"10.0.0.0/8\"]"),
        ],
    );
    assert_eq!(code, 1, "{report}");
    let internal = finding(&report, "internal listener");
    assert!(internal.starts_with("PROBLEM") && internal.contains("Bind it to loopback"), "{report}");
    assert!(finding(&report, "web.public_url").starts_with("PROBLEM"), "{report}");
    assert!(finding(&report, "dovecot.allowed_networks").contains("10.0.0.0/8"), "{report}");

    // Files others can read.
    let key = dir.path().join("data/gatehouse.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = dir.path().join("gatehouse.toml");
    std::fs::write(&config, "[dovecot]\nshared_secret = \"a-long-shared-secret-value\"\n").unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, report) = doctor(dir.path(), db, &["--config", config.to_str().unwrap()], &[]);
    assert_eq!(code, 1, "{report}");
    assert!(finding(&report, "secret key").starts_with("PROBLEM"), "{report}");
    let configuration = finding(&report, "configuration");
    assert!(configuration.starts_with("PROBLEM") && configuration.contains("dovecot.shared_secret"), "{report}");
    assert!(!report.contains("a-long-shared-secret-value"), "secrets are named, never shown");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (_, report) = doctor(dir.path(), db, &["--config", config.to_str().unwrap()], &[]);
    assert!(finding(&report, "configuration").starts_with("ok "), "{report}");
    assert!(finding(&report, "secret key").starts_with("ok "), "{report}");
}
