//! The command line, tested by running the real binary against a temporary SQLite database.

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

/// A temporary folder with its own database; every command runs there with a low bcrypt cost.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    /// A folder where `gatehouse init` has run.
    fn new() -> Self {
        let sandbox = Sandbox::empty();
        sandbox.cmd(&["init"]).env("GATEHOUSE_ADMIN_PASSWORD", "admin-pw").assert().success();
        sandbox
    }

    /// A folder without a database.
    fn empty() -> Self {
        Sandbox { dir: tempfile::tempdir().unwrap() }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::cargo_bin("gatehouse").unwrap();
        cmd.current_dir(self.dir.path())
            .env_remove("GATEHOUSE_CONFIG")
            .env_remove("RUST_LOG")
            .env("GATEHOUSE_PASSWORDS__ROUNDS", "4")
            // The sandbox's accounts have short passwords; the password rule itself is tested in rules.rs.
            .env("GATEHOUSE_PASSWORDS__MIN_LENGTH", "1")
            .args(args);
        cmd
    }

    fn ok(&self, args: &[&str]) {
        self.cmd(args).assert().success();
    }

    fn with_password(&self, args: &[&str], password: &str) -> assert_cmd::assert::Assert {
        self.cmd(args).write_stdin(format!("{password}\n")).assert()
    }

    fn json(&self, args: &[&str]) -> Value {
        let output = self.cmd(args).output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice(&output.stdout).unwrap()
    }
}

#[test]
fn only_init_and_serve_create_the_database_and_it_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let sandbox = Sandbox::empty();
    let expected = sandbox.dir.path().join("data/gatehouse.db");
    // From a folder without a database, a command says which one it looked for and creates nothing.
    sandbox.cmd(&["mailbox", "list"]).assert().code(78).stderr(
        predicate::str::contains(expected.display().to_string()).and(predicate::str::contains("gatehouse init")),
    );
    assert!(!sandbox.dir.path().join("data").exists(), "nothing was created");

    sandbox.cmd(&["init"]).env("GATEHOUSE_ADMIN_PASSWORD", "admin-pw").assert().success();
    let mode = |name: &str| std::fs::metadata(sandbox.dir.path().join(name)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("data"), 0o700);
    assert_eq!(mode("data/gatehouse.db"), 0o600);
    assert_eq!(mode("data/gatehouse.key"), 0o600);
    sandbox.cmd(&["mailbox", "list"]).assert().success();
    // A second init changes nothing and creates no second administrator.
    sandbox.cmd(&["init"]).assert().success().stderr(predicate::str::contains("with the password").not());
    assert_eq!(sandbox.json(&["admin", "list", "--json"]).as_array().unwrap().len(), 1);

    // A database others can read is warned about at start.
    std::fs::set_permissions(&expected, std::fs::Permissions::from_mode(0o644)).unwrap();
    sandbox.cmd(&["init"]).assert().success().stderr(predicate::str::contains("accessible to other users"));
}

#[test]
fn the_domain_mailbox_limit_refuses_the_third_mailbox_and_writes_nothing() {
    let sandbox = Sandbox::new();
    sandbox.ok(&["domain", "add", "example.org", "--max-mailboxes", "2"]);
    sandbox.with_password(&["mailbox", "add", "a@example.org", "--password-stdin"], "pw-a").success();
    sandbox.with_password(&["mailbox", "add", "b@example.org", "--password-stdin"], "pw-b").success();
    sandbox
        .with_password(&["mailbox", "add", "c@example.org", "--password-stdin"], "pw-c")
        .code(1)
        .stderr(predicate::eq("gatehouse: error: domain example.org already has 2 of its 2 allowed mailboxes\n"));
    let mailboxes = sandbox.json(&["mailbox", "list", "--json"]);
    let addresses: Vec<&str> = mailboxes.as_array().unwrap().iter().map(|m| m["address"].as_str().unwrap()).collect();
    assert_eq!(addresses, vec!["a@example.org", "b@example.org"]);
    let domains = sandbox.json(&["domain", "list", "--json"]);
    assert_eq!(domains[0]["mailboxes"], 2);
    // The audit log shows the two additions and not the refused third.
    let audit = sandbox.json(&["log", "audit", "--json"]);
    let actions: Vec<(&str, &str)> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["target"].as_str().unwrap()))
        .filter(|(action, _)| *action != "admin.bootstrap")
        .collect();
    assert_eq!(
        actions,
        vec![("mailbox.add", "b@example.org"), ("mailbox.add", "a@example.org"), ("domain.add", "example.org")]
    );
    assert!(audit[0]["actor"].as_str().unwrap().starts_with("cli:"));
}

#[test]
fn the_cli_is_audited_as_the_operating_system_account_running_it() {
    let sandbox = Sandbox::new();
    let account = String::from_utf8(std::process::Command::new("id").arg("-un").output().unwrap().stdout).unwrap();
    let account = account.trim();
    // The environment can claim anything; the process's uid decides.
    sandbox.cmd(&["domain", "add", "a.example"]).env("USER", "mallory").env_remove("SUDO_USER").assert().success();
    sandbox.cmd(&["domain", "add", "b.example"]).env_remove("USER").env("SUDO_USER", "alice").assert().success();
    let audit = sandbox.json(&["log", "audit", "--json"]);
    let actor_of = |target: &str| {
        audit.as_array().unwrap().iter().find(|e| e["target"] == target).unwrap()["actor"].as_str().unwrap().to_string()
    };
    assert_eq!(actor_of("a.example"), format!("cli:{account}"));
    let under_sudo = actor_of("b.example");
    if account == "root" {
        assert_eq!(under_sudo, "cli:root (sudo from alice)");
    } else {
        assert_eq!(under_sudo, format!("cli:{account}"), "sudo's claim counts only for root");
    }
    assert!(!audit.to_string().contains("cli:unknown") && !audit.to_string().contains("mallory"));
}

#[test]
fn an_unknown_domain_fails_clearly() {
    let sandbox = Sandbox::new();
    sandbox
        .with_password(&["mailbox", "add", "a@nowhere.example", "--password-stdin"], "pw")
        .code(1)
        .stderr(predicate::eq("gatehouse: error: domain 'nowhere.example' does not exist\n"));
    assert_eq!(sandbox.json(&["mailbox", "list", "--json"]), serde_json::json!([]));
}

#[test]
fn a_duplicate_address_fails_even_with_other_case() {
    let sandbox = Sandbox::new();
    sandbox.ok(&["domain", "add", "example.org"]);
    sandbox.with_password(&["mailbox", "add", "alice@example.org", "--password-stdin"], "pw").success();
    sandbox
        .with_password(&["mailbox", "add", "Alice@EXAMPLE.org", "--password-stdin"], "pw")
        .code(1)
        .stderr(predicate::eq("gatehouse: error: mailbox 'alice@example.org' already exists\n"));
}

#[test]
fn a_quota_over_the_domain_limit_fails() {
    let sandbox = Sandbox::new();
    sandbox.ok(&["domain", "add", "example.org", "--max-quota-mib", "1024", "--default-quota-mib", "512"]);
    sandbox
        .with_password(&["mailbox", "add", "a@example.org", "--password-stdin", "--quota-mib", "2048"], "pw")
        .code(1)
        .stderr(predicate::str::contains("exceeds domain example.org's limit of 1024 MiB per mailbox"));
    sandbox.with_password(&["mailbox", "add", "a@example.org", "--password-stdin"], "pw").success();
    let mailbox = &sandbox.json(&["mailbox", "list", "--json"])[0];
    assert_eq!(mailbox["quota_mib"], 512);
    assert_eq!(mailbox["has_local_password"], true);
    assert!(mailbox.get("password_hash").is_none());
}

#[test]
fn passwords_are_never_command_line_arguments() {
    let sandbox = Sandbox::new();
    sandbox.ok(&["domain", "add", "example.org"]);
    sandbox.cmd(&["mailbox", "add", "a@example.org", "--password", "secret"]).assert().code(2);
    // Without a terminal and without --password-stdin there is nobody to ask.
    sandbox
        .cmd(&["mailbox", "add", "a@example.org"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("use --password-stdin"));
    sandbox.with_password(&["mailbox", "add", "a@example.org", "--password-stdin"], "").code(1);
    assert_eq!(sandbox.json(&["mailbox", "list", "--json"]), serde_json::json!([]));
}

#[test]
fn templates_and_protocols_from_the_command_line() {
    let sandbox = Sandbox::new();
    sandbox.ok(&["domain", "add", "example.org"]);
    sandbox.ok(&["template", "add", "staff", "--quota-mib", "100", "--protocols", "imap,smtp"]);
    sandbox
        .with_password(&["mailbox", "add", "a@example.org", "--password-stdin", "--template", "staff"], "pw")
        .success();
    sandbox
        .with_password(&["mailbox", "add", "b@example.org", "--password-stdin", "--protocols", "imap,lmtp"], "pw")
        .code(1)
        .stderr(predicate::str::contains("unknown protocol 'lmtp'"));
    let mailbox = &sandbox.json(&["mailbox", "list", "--json"])[0];
    assert_eq!(mailbox["protocols"], serde_json::json!(["imap", "smtp"]));
    assert_eq!(mailbox["template"], "staff");
    sandbox.ok(&["mailbox", "edit", "a@example.org", "--protocols", "all", "--active", "false"]);
    let mailbox = &sandbox.json(&["mailbox", "list", "--json"])[0];
    assert_eq!(mailbox["protocols"].as_array().unwrap().len(), 7);
    assert_eq!(mailbox["active"], false);
    let templates = sandbox.json(&["template", "list", "--json"]);
    assert_eq!(templates[0]["mailboxes"], 1);
}

#[test]
fn administrators_domain_administrators_and_master_users() {
    let sandbox = Sandbox::new();
    sandbox.ok(&["domain", "add", "a.example"]);
    sandbox.ok(&["domain", "add", "b.example"]);
    sandbox.with_password(&["admin", "add", "root-admin", "--password-stdin"], "pw").success();
    // `init` made `admin`; without it, root-admin is the last one.
    sandbox.ok(&["admin", "remove", "admin"]);
    sandbox
        .cmd(&["admin", "remove", "root-admin"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("last active administrator"));
    sandbox.with_password(&["domain-admin", "add", "da", "--domains", "a.example", "--password-stdin"], "pw").success();
    let das = sandbox.json(&["domain-admin", "list", "--json"]);
    assert_eq!(das[0]["domains"], serde_json::json!(["a.example"]));
    assert_eq!(das[0]["acl"], serde_json::json!(["login_as"]));
    sandbox.ok(&["domain-admin", "edit", "da", "--domains", "a.example,b.example", "--acl", "none"]);
    let das = sandbox.json(&["domain-admin", "list", "--json"]);
    assert_eq!(das[0]["domains"], serde_json::json!(["a.example", "b.example"]));
    assert_eq!(das[0]["acl"], serde_json::json!([]));

    sandbox
        .with_password(&["master-user", "add", "master@a.example", "--scope", "domain", "--password-stdin"], "pw")
        .success();
    sandbox
        .with_password(
            &[
                "master-user",
                "add",
                "reseller",
                "--scope",
                "owned",
                "--domains",
                "a.example,b.example",
                "--password-stdin",
            ],
            "pw",
        )
        .success();
    sandbox
        .with_password(
            &["master-user", "add", "x", "--scope", "owned", "--domains", "c.example", "--password-stdin"],
            "pw",
        )
        .code(1)
        .stderr(predicate::str::contains("domain 'c.example' does not exist"));
    let masters = sandbox.json(&["master-user", "list", "--json"]);
    assert_eq!(masters[0]["username"], "master@a.example");
    assert_eq!(masters[0]["scope"], "domain");
    assert_eq!(masters[0]["domains"], "a.example");
    assert_eq!(masters[1]["domains"], serde_json::json!(["a.example", "b.example"]));
    sandbox.cmd(&["master-user", "list"]).assert().success().stdout(predicate::str::contains("reseller"));
    let all = format!("{masters}{das}");
    assert!(!all.contains("$2y$"), "hashes never leave the store: {all}");
}

#[test]
fn configuration_errors_and_unreachable_databases_have_their_own_exit_codes() {
    let sandbox = Sandbox::new();
    std::fs::write(sandbox.dir.path().join("gatehouse.toml"), "[listen]\npublik = 1\n").unwrap();
    sandbox.cmd(&["domain", "list"]).assert().code(78).stderr(predicate::str::contains("publik"));
    std::fs::remove_file(sandbox.dir.path().join("gatehouse.toml")).unwrap();

    let port = gatehouse_testkit::free_port();
    let url = format!("postgres://gatehouse:hidden-pw@127.0.0.1:{port}/gatehouse");
    sandbox
        .cmd(&["--database-url", &url, "domain", "list"])
        .assert()
        .code(75)
        .stderr(predicate::str::contains("temporarily unavailable").and(predicate::str::contains("hidden-pw").not()));
}

#[test]
fn pw_hashes_and_tests_like_doveadm() {
    let sandbox = Sandbox::new();
    let output = sandbox.cmd(&["pw", "-s", "SHA512-CRYPT", "-r", "6000"]).write_stdin("pässwörd\n").output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let hash = String::from_utf8(output.stdout).unwrap().trim().to_string();
    assert!(hash.starts_with("{SHA512-CRYPT}$6$rounds=6000$"), "{hash}");
    sandbox.cmd(&["pw", "--test", &hash]).write_stdin("pässwörd\n").assert().code(0);
    sandbox.cmd(&["pw", "--test", &hash]).write_stdin("passwörd\n").assert().code(1);
    sandbox
        .cmd(&["pw", "--test", "{NOPE}abc"])
        .write_stdin("x\n")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unsupported password scheme"));
    sandbox.cmd(&["pw", "-s", "MD5-CRYPT"]).write_stdin("x\n").assert().code(2);
    // The configured default scheme and cost apply without -s (bcrypt cost 4 in this sandbox).
    let output = sandbox.cmd(&["pw"]).write_stdin("secret\n").output().unwrap();
    let default_hash = String::from_utf8(output.stdout).unwrap().trim().to_string();
    assert!(default_hash.starts_with("{BLF-CRYPT}$2y$04$"), "{default_hash}");

    // Dovecot itself accepts what Gatehouse writes.
    if std::process::Command::new("doveadm").arg("help").output().is_err() {
        gatehouse_testkit::require_peer("doveadm", "package dovecot-core is not installed");
        return;
    }
    for (stored, password) in [(&hash, "pässwörd"), (&default_hash, "secret")] {
        let status =
            std::process::Command::new("doveadm").args(["pw", "-t", stored, "-p", password]).output().unwrap().status;
        assert!(status.success(), "doveadm rejected {stored}");
    }
}

#[test]
fn a_reader_that_goes_away_ends_a_listing_quietly() {
    let sandbox = Sandbox::new();
    sandbox.ok(&["domain", "add", "example.org"]);
    // `gatehouse domain list | head -0`: the reading end is closed before anything is written.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let output = std::process::Command::new(assert_cmd::cargo::cargo_bin("gatehouse"))
        .current_dir(sandbox.dir.path())
        .env_remove("RUST_LOG")
        .args(["domain", "list"])
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked") && stderr.is_empty(), "{stderr}");
}

#[test]
fn a_port_in_use_is_a_configuration_error_on_one_line() {
    let sandbox = Sandbox::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let internal = format!("127.0.0.1:{}", gatehouse_testkit::free_port());
    let assert = sandbox.cmd(&["serve", "--public", &address, "--internal", &internal]).assert().code(78);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    let error_lines: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(error_lines.len(), 1, "{stderr}");
    assert!(
        error_lines[0].starts_with("gatehouse: error: cannot listen on") && error_lines[0].contains(&address),
        "{stderr}"
    );
    assert!(!stderr.contains('\u{1b}'), "no colour codes when stderr is not a terminal: {stderr:?}");
}

#[test]
fn an_expiry_date_means_through_that_day_and_listings_say_so() {
    let sandbox = Sandbox::new();
    sandbox.ok(&["domain", "add", "example.org"]);
    sandbox.with_password(&["mailbox", "add", "a@example.org", "--password-stdin"], "pw").success();
    sandbox.ok(&[
        "app-password",
        "add",
        "a@example.org",
        "--name",
        "phone",
        "--protocols",
        "imap",
        "--expires",
        "2027-06-30",
    ]);
    sandbox
        .cmd(&["app-password", "list", "a@example.org"])
        .assert()
        .success()
        .stdout(predicate::str::contains("through 2027-06-30 (UTC)"));
    let listed = sandbox.json(&["app-password", "list", "a@example.org", "--json"]);
    assert_eq!(listed[0]["expires_at"], 1_814_400_000, "the midnight after 2027-06-30, UTC");
}

#[test]
fn sync_failures_are_one_line_and_listings_hide_gatehouses_own_bookkeeping() {
    let sandbox = Sandbox::new();
    let port = gatehouse_testkit::free_port();
    let settings = format!(
        r#"{{"hosts":["127.0.0.1"],"port":{port},"security":"plain","bind_dn":"cn=x,dc=example,dc=org","base_dn":"dc=example,dc=org","periodic_sync":true}}"#
    );
    sandbox
        .with_password(
            &["idp", "add", "corp", "--type", "ldap", "--settings", &settings, "--bind-password-stdin"],
            "pw",
        )
        .success();
    let output = sandbox.cmd(&["sync", "--idp", "corp"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(75), "the directory is unreachable: try again. {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("gatehouse: error: corp: ") && !stderr.contains('\u{1b}'), "{stderr}");

    sandbox.ok(&["domain", "add", "example.org"]);
    sandbox.ok(&["template", "add", "staff", "--quota-mib", "100"]);
    sandbox
        .with_password(&["mailbox", "add", "a@example.org", "--password-stdin", "--template", "staff"], "pw")
        .success();
    let listed = sandbox.json(&["mailbox", "list", "--json"]);
    assert!(!listed.to_string().contains("template_hash"), "{listed}");
}

#[test]
fn completions_and_the_manual_page_come_from_the_help_texts() {
    let run = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse")).args(args).output().unwrap();
        assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    };
    let bash = run(&["completions", "bash"]);
    assert!(bash.contains("_gatehouse()") && bash.contains("import") && bash.contains("doctor"), "{bash}");
    assert!(run(&["completions", "zsh"]).contains("#compdef gatehouse"));
    let page = run(&["manpage"]);
    assert!(page.contains(".TH gatehouse 1") && page.contains("the authentication hub"), "{page}");
    // A closed pipe ends them quietly, as every command.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["completions", "zsh"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    assert!(!String::from_utf8_lossy(&output.stderr).contains("panicked"), "{output:?}");
}
