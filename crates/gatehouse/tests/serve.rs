//! `gatehouse serve`, tested as a real process: both listeners answer `/healthz`, the first start creates the
//! administrator, SIGTERM stops it cleanly, and a lost database turns the health check to 503.

mod support;

use std::time::{Duration, Instant};

use gatehouse_testkit::{Engine, TestDatabase};
use support::{Server, get};

#[test]
fn serve_answers_health_on_both_listeners_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "sqlite://./data/gatehouse.db", None);
    for port in [server.public, server.internal] {
        let (status, body) = get(port, "/healthz").unwrap();
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\"status\":\"ok\""), "{body}");
    }
    assert_eq!(get(server.public, "/nope").unwrap().0, 404);
    let (status, stderr) = server.terminate();
    assert!(status.success(), "exit status {status:?}\n{stderr}");
    assert!(stderr.contains("Created the administrator 'admin' with the password:"), "{stderr}");
    assert!(stderr.contains("received SIGTERM"), "{stderr}");

    // The second start finds the administrator and prints no password.
    let server = Server::start(dir.path(), "sqlite://./data/gatehouse.db", None);
    let (status, stderr) = server.terminate();
    assert!(status.success());
    assert!(!stderr.contains("with the password"), "{stderr}");
}

#[test]
fn a_configured_admin_password_is_used_and_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "sqlite://./data/gatehouse.db", Some("configured-secret-pw"));
    let (status, stderr) = server.terminate();
    assert!(status.success());
    assert!(stderr.contains("created the administrator 'admin' with the configured password"), "{stderr}");
    assert!(!stderr.contains("configured-secret-pw"), "{stderr}");
}

#[test]
fn health_turns_to_503_when_the_database_goes_away() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let Some(database) = runtime.block_on(TestDatabase::create(Engine::Postgres)) else { return };
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), database.url().expose(), Some("pw"));
    assert_eq!(get(server.internal, "/healthz").unwrap().0, 200);
    runtime.block_on(database.drop_database());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = get(server.internal, "/healthz").expect("the server still answers");
        if status == 503 {
            assert!(body.contains("unavailable"), "{body}");
            assert_eq!(get(server.public, "/healthz").unwrap().0, 503);
            break;
        }
        assert!(Instant::now() < deadline, "health stayed {status} after the database was dropped");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (status, _) = server.terminate();
    assert!(status.success());
}
