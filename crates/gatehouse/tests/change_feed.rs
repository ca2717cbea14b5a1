//! The change feed against a running `gatehouse serve`, on SQLite, PostgreSQL and MariaDB: logins answered from
//! memory stop within a second of a change another process made (an app password revoked and a mailbox
//! deactivated with the CLI); with the feed unreadable the server answers from the database (a change made by
//! hand is seen at once) and says so; and after a burst of logins the auth log holds one row per answer, with
//! nothing dropped, also when the server is stopped right after answering.

mod support;

use std::time::{Duration, Instant};

use gatehouse_testkit::{Engine, TestDatabase};
use serde_json::{Value, json};
use support::{Server, cli_ok};

/// How long after the CLI's change the server must refuse.
const WITHIN: Duration = Duration::from_secs(1);

fn ask(server: &Server, user: &str, password: &str) -> u16 {
    let body = json!({ "user": user, "password": password, "service": "imap" }).to_string();
    let started = Instant::now();
    server.post_internal("/dovecot/auth", &body).unwrap_or_else(|| panic!("no answer after {:?}", started.elapsed())).0
}

fn stats(server: &Server) -> Value {
    let (status, body) = server.get_internal("/stats", &[]).expect("an answer");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Asks until the answer is no longer 200; returns how long that took and the answer.
fn refused_after(server: &Server, user: &str, password: &str, since: Instant) -> (Duration, u16) {
    loop {
        let status = ask(server, user, password);
        if status != 200 || since.elapsed() > Duration::from_secs(10) {
            return (since.elapsed(), status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "not within 10 s: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn changes_made_elsewhere_reach_the_server_within_a_second(engine: Engine) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let Some(database) = runtime.block_on(TestDatabase::create(engine)) else { return };
    let url = database.url().expose().to_string();
    let dir = tempfile::tempdir().unwrap();
    support::init(dir.path(), &url, "admin-pw");
    let run = |args: &[&str], stdin: &str| cli_ok(dir.path(), &url, args, stdin);
    run(&["domain", "add", "example.org"], "");
    for (address, password) in [("alice@example.org", "alicepw\n"), ("bob@example.org", "bobpw\n")] {
        run(&["mailbox", "add", address, "--password-stdin"], password);
    }
    run(&["mailbox", "add", "carol@example.org", "--password-stdin"], "carolpw\n");
    let token = run(&["app-password", "add", "alice@example.org", "--name", "phone", "--protocols", "imap"], "");
    let token = token.trim().to_string();
    let server = Server::start(dir.path(), &url, Some("admin-pw"));
    wait_for("the first read of the feed", || stats(&server)["change_feed"]["last_read_ms_ago"].is_number());

    for (user, password) in
        [("alice@example.org", token.as_str()), ("bob@example.org", "bobpw"), ("carol@example.org", "carolpw")]
    {
        assert_eq!(ask(&server, user, password), 200, "{user}");
        assert_eq!(ask(&server, user, password), 200, "{user}, cached");
    }

    // An app password revoked with the CLI (another process).
    let listed: Value =
        serde_json::from_str(&run(&["app-password", "list", "alice@example.org", "--json"], "")).unwrap();
    let id = listed[0]["id"].as_i64().unwrap().to_string();
    run(&["app-password", "revoke", "alice@example.org", &id], "");
    let (took, status) = refused_after(&server, "alice@example.org", &token, Instant::now());
    assert_eq!(status, 403, "refused: the credential is revoked");
    assert!(took <= WITHIN, "the revoked app password still worked after {took:?}");

    // A mailbox deactivated with the CLI.
    run(&["mailbox", "edit", "bob@example.org", "--active", "false"], "");
    let (took, status) = refused_after(&server, "bob@example.org", "bobpw", Instant::now());
    assert_eq!(status, 403, "refused: the mailbox is inactive");
    assert!(took <= WITHIN, "the deactivated mailbox still logged in after {took:?}");
    let feed = stats(&server)["change_feed"].clone();
    assert!(feed["applied"].as_u64().unwrap() >= 2 && feed["failing"] == json!(false), "{feed}");

    // The feed made unreadable: the server says so and answers from the database, never from memory.
    runtime.block_on(database.execute("ALTER TABLE login_changes RENAME TO login_changes_away"));
    wait_for("the feed noticed as unreadable", || stats(&server)["change_feed"]["failing"] == json!(true));
    assert_eq!(ask(&server, "carol@example.org", "carolpw"), 200);
    runtime.block_on(
        database.execute(
            "UPDATE mailboxes SET active = false, revision = revision + 1 WHERE address = 'carol@example.org'",
        ),
    );
    assert_eq!(ask(&server, "carol@example.org", "carolpw"), 403, "a change made by hand is seen at once");
    runtime.block_on(database.execute("ALTER TABLE login_changes_away RENAME TO login_changes"));
    wait_for("the feed read again", || stats(&server)["change_feed"]["failing"] == json!(false));
    run(&["mailbox", "edit", "carol@example.org", "--active", "true"], "");
    let since = Instant::now();
    wait_for("carol active again", || ask(&server, "carol@example.org", "carolpw") == 200);
    assert!(since.elapsed() <= WITHIN + Duration::from_millis(100), "{:?}", since.elapsed());

    let (status, log) = server.terminate();
    assert!(status.success());
    assert!(log.contains("cannot read the change feed"), "{log}");
    assert!(log.contains("the change feed is read again"), "{log}");
    runtime.block_on(database.drop_database());
}

#[test]
fn sqlite() {
    changes_made_elsewhere_reach_the_server_within_a_second(Engine::Sqlite);
}

#[test]
fn postgres() {
    changes_made_elsewhere_reach_the_server_within_a_second(Engine::Postgres);
}

#[test]
fn mariadb() {
    changes_made_elsewhere_reach_the_server_within_a_second(Engine::MariaDb);
}

#[test]
fn a_burst_of_logins_leaves_one_auth_log_row_per_answer() {
    const THREADS: usize = 8;
    const EACH: usize = 250;
    let dir = tempfile::tempdir().unwrap();
    let db = "sqlite://./data/gatehouse.db";
    support::init(dir.path(), db, "admin-pw");
    cli_ok(dir.path(), db, &["domain", "add", "example.org"], "");
    cli_ok(dir.path(), db, &["mailbox", "add", "alice@example.org", "--password-stdin"], "alicepw\n");
    // Warnings only: nobody reads the server's standard error until it stops, and a line per login would fill
    // the pipe.
    let server = Server::start_with_env(dir.path(), db, Some("admin-pw"), &[("RUST_LOG", "warn")]);
    let answered: usize = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                let server = &server;
                scope.spawn(move || (0..EACH).filter(|_| ask(server, "alice@example.org", "alicepw") == 200).count())
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    assert_eq!(answered, THREADS * EACH);
    wait_for("the auth log written", || {
        let log = &stats(&server)["auth_log"];
        log["written"].as_u64() == Some(answered as u64)
    });
    let log = stats(&server)["auth_log"].clone();
    assert_eq!((&log["queued"], &log["dropped"]), (&json!(answered), &json!(0)), "{log}");
    let rows: Value = serde_json::from_str(&cli_ok(
        dir.path(),
        db,
        &["log", "auth", "--json", "--limit", &(answered * 2).to_string()],
        "",
    ))
    .unwrap();
    assert_eq!(rows.as_array().unwrap().len(), answered, "one row per answered request");

    // Stopped right after answering: what was still queued is written before the process ends.
    let more = (0..200).filter(|_| ask(&server, "alice@example.org", "alicepw") == 200).count();
    assert_eq!(more, 200);
    let (status, log) = server.terminate();
    assert!(status.success(), "{log}");
    let rows: Value = serde_json::from_str(&cli_ok(
        dir.path(),
        db,
        &["log", "auth", "--json", "--limit", &((answered + more) * 2).to_string()],
        "",
    ))
    .unwrap();
    assert_eq!(rows.as_array().unwrap().len(), answered + more, "the rows queued at shutdown are written");
}
