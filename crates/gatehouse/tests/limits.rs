//! Floods of idle connections against the real server: more connections than the cap on the internal listener
//! and on the SASL listener, and logins are still answered; idle connections are closed; one SASL connection
//! cannot leave many exchanges pending; the warnings about it stay few.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use base64::Engine as _;
use support::Server;

/// Reads the SASL greeting up to DONE.
fn greeting(reader: &mut BufReader<TcpStream>) {
    let mut line = String::new();
    loop {
        line.clear();
        assert!(reader.read_line(&mut line).unwrap() > 0, "the SASL listener closed during its greeting");
        if line.trim_end() == "DONE" {
            return;
        }
    }
}

/// One PLAIN exchange on a fresh SASL connection; returns the answer line.
fn sasl_plain(port: u16, user: &str, password: &str) -> String {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    greeting(&mut reader);
    let response = base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
    write!(writer, "VERSION\t1\t0\nCPID\t1\nAUTH\t1\tPLAIN\tservice=smtp\trip=192.0.2.30\tresp={response}\n").unwrap();
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    line.trim_end().to_string()
}

#[test]
fn floods_of_idle_connections_do_not_lock_out_logins() {
    let dir = tempfile::tempdir().unwrap();
    let db = "sqlite://./data/gatehouse.db";
    support::init(dir.path(), db, "admin-pw");
    support::cli_ok(dir.path(), db, &["domain", "add", "example.org"], "");
    support::cli_ok(dir.path(), db, &["mailbox", "add", "alice@example.org", "--password-stdin"], "alicepw\n");
    let sasl = gatehouse_testkit::free_port();
    let server = Server::start_with_env(
        dir.path(),
        db,
        Some("admin-pw"),
        &[
            ("GATEHOUSE_LISTEN__SASL", &format!("127.0.0.1:{sasl}")),
            ("GATEHOUSE_LIMITS__MAX_CONNECTIONS", "40"),
            ("GATEHOUSE_LIMITS__HTTP_IDLE_SECONDS", "3"),
            ("GATEHOUSE_LIMITS__SASL_IDLE_SECONDS", "3"),
            ("GATEHOUSE_LIMITS__SASL_PENDING_PER_CONNECTION", "4"),
        ],
    );
    let login = r#"{"user":"alice@example.org","password":"alicepw","service":"imap","remote_ip":"192.0.2.30"}"#;
    assert_eq!(server.post_internal("/dovecot/auth", login).unwrap().0, 200);

    // Five times the cap of idle connections on each listener, sending nothing.
    let started = Instant::now();
    let flood: Vec<TcpStream> = (0..200)
        .flat_map(|_| [TcpStream::connect(("127.0.0.1", server.internal)), TcpStream::connect(("127.0.0.1", sasl))])
        .map(|stream| stream.expect("the listeners accept"))
        .collect();
    std::thread::sleep(Duration::from_millis(300));

    // Logins are still answered, over HTTP and SASL.
    let (status, body) = server.post_internal("/dovecot/auth", login).expect("the internal listener answers");
    assert_eq!(status, 200, "{body}");
    assert!(sasl_plain(sasl, "alice@example.org", "alicepw").starts_with("OK\t1\tuser=alice@example.org"));
    assert!(started.elapsed() < Duration::from_secs(3), "answered before any idle timeout: {:?}", started.elapsed());

    // Most of the flood was closed to make room, the rest when idle too long.
    let deadline = Instant::now() + Duration::from_secs(10);
    for mut stream in flood {
        stream
            .set_read_timeout(Some(deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1))))
            .unwrap();
        let mut buffer = [0u8; 4096];
        let closed = loop {
            match stream.read(&mut buffer) {
                Ok(0) => break true,
                Ok(_) => continue, // the SASL greeting
                Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => break true,
                Err(_) => break false,
            }
        };
        assert!(closed, "an idle connection was still open after the idle timeout");
    }

    // One connection cannot leave many exchanges pending: PLAIN without its response waits for a CONT.
    let stream = TcpStream::connect(("127.0.0.1", sasl)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    greeting(&mut reader);
    writer.write_all(b"VERSION\t1\t0\nCPID\t1\n").unwrap();
    let mut answers = Vec::new();
    for id in 1..=6 {
        writeln!(writer, "AUTH\t{id}\tPLAIN\tservice=smtp").unwrap();
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        answers.push(line.trim_end().to_string());
    }
    assert!(answers[..4].iter().all(|a| a.starts_with("CONT\t")), "{answers:?}");
    assert!(answers[4].starts_with("FAIL\t5\t") && answers[4].contains("Too many unfinished"), "{answers:?}");

    let (status, stderr) = server.terminate();
    assert!(status.success(), "{stderr}");
    let warnings = stderr.lines().filter(|l| l.contains("connections are open")).count();
    assert!(
        (1..=4).contains(&warnings),
        "the cap is reported, but not once per connection: {warnings} lines\n{stderr}"
    );
}
