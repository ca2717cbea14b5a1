//! A 10 000-user Keycloak import shared by two `gatehouse serve` processes on one database, on SQLite,
//! PostgreSQL and MariaDB: only one process runs it (the other, and `gatehouse sync`, are refused while the
//! lease is held), the process running it is killed with SIGKILL in the middle, and the other process completes
//! it once the dead process's lease has expired — every user imported exactly once, the interrupted run marked
//! as such in the job log, and a later run finding nothing to change.

mod support;

use std::time::{Duration, Instant};

use gatehouse_store::{LogFilter, Store};
use gatehouse_testkit::oidc::{KeycloakUser, OpenIdProvider};
use gatehouse_testkit::{Engine, TestDatabase};
use serde_json::json;
use support::{Server, cli, cli_ok};

const COUNT: usize = 10_000;

fn wait_for<T>(what: &str, within: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(found) = check() {
            return found;
        }
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn an_interrupted_import_is_completed_by_the_other_process(engine: Engine) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let Some(database) = runtime.block_on(TestDatabase::create(engine)) else { return };
    let url = database.url().expose().to_string();
    let Some(keycloak) = OpenIdProvider::start_keycloak("mail", "gatehouse", "service-secret") else { return };
    let users: Vec<KeycloakUser> = (0..COUNT)
        .map(|n| {
            KeycloakUser::new(&format!("u{n:05}"), &format!("u{n:05}@example.org"), &[("mailcow_template", "staff")])
        })
        .collect();
    keycloak.set_keycloak_users(&users);

    let dir = tempfile::tempdir().unwrap();
    support::init(dir.path(), &url, "admin-pw");
    let run = |args: &[&str]| cli_ok(dir.path(), &url, args, "");
    run(&["domain", "add", "example.org", "--max-mailboxes", "0", "--total-quota-mib", "0"]);
    run(&["template", "add", "staff", "--protocols", "imap,smtp"]);
    let settings = json!({
        "server_url": format!("http://127.0.0.1:{}", keycloak.port),
        "realm": "mail",
        "client_id": "gatehouse",
        "import_users": true,
        "periodic_sync": true,
        "sync_interval_minutes": 60,
    });
    let add = ["idp", "add", "kc", "--type", "keycloak", "--settings", &settings.to_string(), "--secret-stdin"];
    cli_ok(dir.path(), &url, &add, "service-secret\n");
    run(&["idp", "map", "kc", "staff=staff"]);
    let store = runtime.block_on(Store::open(database.url())).unwrap();
    let count = || runtime.block_on(store.list_mailboxes(None)).unwrap().len();
    let runs = || runtime.block_on(store.job_log(&LogFilter { subject: Some("kc".into()), ..Default::default() }));

    // Both processes look for due syncs every second; the one holding the lease is killed mid-import.
    let env = [("GATEHOUSE_SYNC__CHECK_SECONDS", "1")];
    let first = Server::start_with_env(dir.path(), &url, Some("admin-pw"), &env);
    let second = Server::start_with_env(dir.path(), &url, Some("admin-pw"), &env);
    let holder = wait_for("the import under way", Duration::from_secs(120), || {
        let holder = runtime.block_on(store.lease_holder("sync:kc")).unwrap()?;
        (count() > 0).then_some(holder.0)
    });
    let pid: u32 = holder.split(':').nth(1).and_then(|pid| pid.parse().ok()).expect("host:pid:… names the holder");
    let (victim, survivor) = if pid == first.pid() { (first, second) } else { (second, first) };
    assert_eq!(victim.pid(), pid, "the holder is one of the two servers: {holder}");
    victim.kill();
    let partial = count();
    assert!(partial > 0 && partial < COUNT, "killed in the middle of the import: {partial} mailboxes");
    let interrupted = runs().unwrap();
    assert_eq!(interrupted.len(), 1, "the other process never started a second run: {interrupted:?}");
    assert_eq!(interrupted[0].status, "running");

    // The dead process's lease keeps everybody out until it expires, the command line included.
    let (code, _, stderr) = cli(dir.path(), &url, &["sync", "--idp", "kc"], "");
    assert!(code != 0 && stderr.contains("already running") && stderr.contains(&holder), "{stderr}");

    // Then the surviving process completes the import: every user exactly once.
    let finished = wait_for("the surviving process's run", Duration::from_secs(180), || {
        let runs = runs().unwrap();
        runs.iter().any(|r| r.status == "ok").then_some(runs)
    });
    assert_eq!(finished.len(), 2, "{finished:?}");
    assert_eq!(finished[1].status, "interrupted", "the killed run is marked: {finished:?}");
    let summary = &finished[0].summary;
    let (created, unchanged) = (summary["created"].as_u64().unwrap(), summary["unchanged"].as_u64().unwrap());
    assert_eq!(created + unchanged, COUNT as u64, "{summary}");
    assert!(unchanged as usize >= partial && created > 0, "it kept what the killed run wrote: {summary}");
    assert_eq!((&summary["updated"], &summary["skipped"]), (&json!(0), &json!(0)), "{summary}");
    let mailboxes = runtime.block_on(store.list_mailboxes(None)).unwrap();
    let addresses: std::collections::BTreeSet<&str> = mailboxes.iter().map(|m| m.address.as_str()).collect();
    assert_eq!((mailboxes.len(), addresses.len()), (COUNT, COUNT));
    assert!(mailboxes.iter().all(|m| m.active && m.auth_source == "kc" && m.template.as_deref() == Some("staff")));
    let (status, _) = survivor.terminate();
    assert!(status.success());

    // A run from the command line afterwards finds nothing to do.
    let again: serde_json::Value = serde_json::from_str(&run(&["sync", "--idp", "kc", "--json"])).unwrap();
    assert_eq!((&again[0]["created"], &again[0]["unchanged"]), (&json!(0), &json!(COUNT)), "{again}");
    runtime.block_on(store.close());
    runtime.block_on(database.drop_database());
}

#[test]
fn sqlite() {
    an_interrupted_import_is_completed_by_the_other_process(Engine::Sqlite);
}

#[test]
fn postgres() {
    an_interrupted_import_is_completed_by_the_other_process(Engine::Postgres);
}

#[test]
fn mariadb() {
    an_interrupted_import_is_completed_by_the_other_process(Engine::MariaDb);
}
