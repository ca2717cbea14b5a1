//! Tests of configuration layering.

use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn defaults_work_without_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing_default = dir.path().join("nothing-here.toml");
    assert!(Config::load_from(Some(&missing_default), vec![]).is_err(), "an explicit missing file is an error");
    let loaded = Config::load_from(None, vec![]).unwrap();
    assert_eq!(loaded.config.database_url.expose(), "sqlite://./data/gatehouse.db");
    assert_eq!(loaded.config.listen.public.to_string(), "127.0.0.1:8080");
    assert_eq!(loaded.config.listen.internal.to_string(), "127.0.0.1:8081");
    assert!(!loaded.config.web.allow_admin_email_login);
}

#[test]
fn file_then_environment_then_file_variables() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gatehouse.toml");
    std::fs::write(
        &file,
        "database_url = \"postgres://u:p@h/db\"\n[listen]\npublic = \"0.0.0.0:9000\"\n[web]\nallow_admin_email_login = true\n",
    )
    .unwrap();
    let secret_file = dir.path().join("admin-password");
    std::fs::write(&secret_file, "from-a-file\n").unwrap();

    let loaded = Config::load_from(
        Some(&file),
        env(&[
            ("GATEHOUSE_LISTEN__INTERNAL", "127.0.0.1:9999"),
            ("GATEHOUSE_ADMIN_PASSWORD_FILE", secret_file.to_str().unwrap()),
            ("GATEHOUSE_LOG", "debug"),
        ]),
    )
    .unwrap();
    let config = loaded.config;
    assert_eq!(config.database_url.expose(), "postgres://u:p@h/db");
    assert_eq!(config.listen.public.to_string(), "0.0.0.0:9000");
    assert_eq!(config.listen.internal.to_string(), "127.0.0.1:9999");
    assert_eq!(config.log, "debug");
    assert_eq!(config.admin_password.as_ref().unwrap().expose(), "from-a-file");
    assert!(config.web.allow_admin_email_login);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn mailcow_allow_admin_email_login_is_an_alias() {
    for (value, expected) in [("y", true), ("YES", true), ("n", false), ("no", false)] {
        let loaded = Config::load_from(None, env(&[("ALLOW_ADMIN_EMAIL_LOGIN", value)])).unwrap();
        assert_eq!(loaded.config.web.allow_admin_email_login, expected, "{value}");
    }
    let err = Config::load_from(None, env(&[("ALLOW_ADMIN_EMAIL_LOGIN", "maybe")])).unwrap_err();
    assert!(err.to_string().contains("maybe"), "{err}");
    // The Gatehouse name wins over the mailcow alias.
    let loaded = Config::load_from(
        None,
        env(&[("ALLOW_ADMIN_EMAIL_LOGIN", "y"), ("GATEHOUSE_WEB__ALLOW_ADMIN_EMAIL_LOGIN", "no")]),
    )
    .unwrap();
    assert!(!loaded.config.web.allow_admin_email_login);
}

#[test]
fn unknown_variables_warn_and_unknown_file_keys_fail() {
    let loaded = Config::load_from(None, env(&[("GATEHOUSE_DATABSE_URL", "x"), ("GATEHOUSE_CONFIG", "y")])).unwrap();
    assert_eq!(loaded.warnings, vec!["ignoring the unknown environment variable GATEHOUSE_DATABSE_URL".to_string()]);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[listen]\npublik = \"0.0.0.0:1\"\n").unwrap();
    let err = Config::load_from(Some(&file), vec![]).unwrap_err();
    assert!(err.to_string().contains("publik"), "{err}");
}

#[test]
fn secrets_are_redacted_in_debug_output() {
    let loaded = Config::load_from(
        None,
        env(&[("GATEHOUSE_ADMIN_PASSWORD", "hunter2"), ("GATEHOUSE_DATABASE_URL", "postgres://u:pw123@h/d")]),
    )
    .unwrap();
    let debug = format!("{:?}", loaded.config);
    assert!(!debug.contains("hunter2") && !debug.contains("pw123"), "{debug}");
}

#[test]
fn a_missing_secret_file_is_a_clear_error() {
    let err = Config::load_from(None, env(&[("GATEHOUSE_ADMIN_PASSWORD_FILE", "/nonexistent/secret")])).unwrap_err();
    assert!(err.to_string().contains("GATEHOUSE_ADMIN_PASSWORD_FILE"), "{err}");
}

#[test]
fn network_lists_come_as_lists_or_comma_strings() {
    let loaded =
        Config::load_from(None, env(&[("GATEHOUSE_DOVECOT__ALLOWED_NETWORKS", "10.0.0.0/8, 192.0.2.1/32")])).unwrap();
    assert_eq!(loaded.config.dovecot.allowed_networks, vec!["10.0.0.0/8".to_string(), "192.0.2.1/32".to_string()]);
    assert!(
        Config::default().dovecot.allowed_networks.is_empty(),
        "only the shared secret opens the internal endpoints"
    );
}
