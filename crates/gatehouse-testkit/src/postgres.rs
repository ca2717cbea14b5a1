//! A private PostgreSQL server for one test, which the test may stop and start again (a database outage) without
//! disturbing the shared test servers: `initdb` into a temporary folder, `pg_ctl` on a free loopback port, trust
//! authentication. As root, the server runs as the `postgres` user (it refuses to run as root).

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::{free_port, is_root, require_peer, wait_for_port, wait_for_port_closed};

/// A running private PostgreSQL, stopped (and deleted) on drop.
pub struct PrivatePostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl PrivatePostgres {
    /// Creates and starts the server; `None` (after [`require_peer`]) when PostgreSQL's server binaries are
    /// missing.
    pub fn start() -> Option<PrivatePostgres> {
        let bin = std::fs::read_dir("/usr/lib/postgresql").ok().and_then(|versions| {
            versions.flatten().map(|v| v.path().join("bin")).filter(|b| b.join("initdb").exists()).max()
        });
        let Some(bin) = bin else {
            require_peer("PostgreSQL", "no /usr/lib/postgresql/*/bin/initdb (package postgresql)");
            return None;
        };
        let dir = tempfile::Builder::new().prefix("gatehouse-pg-").tempdir().expect("temporary folder");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let pg = PrivatePostgres { dir, bin, port: free_port() };
        if is_root() {
            let status = Command::new("chown").arg("postgres:").arg(pg.dir.path()).status().expect("chown");
            assert!(status.success(), "chown of the PostgreSQL folder failed");
        }
        let data = pg.data();
        let output = pg
            .as_server_user(&pg.bin.join("initdb"))
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(&data)
            .output()
            .expect("run initdb");
        assert!(output.status.success(), "initdb failed: {}", String::from_utf8_lossy(&output.stderr));
        pg.start_again();
        Some(pg)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn as_server_user(&self, program: &std::path::Path) -> Command {
        let mut command = if is_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        };
        command.stdin(Stdio::null());
        command
    }

    /// The URL of its `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the (stopped) server and waits until it accepts connections.
    pub fn start_again(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100",
            self.port,
            self.dir.path().display()
        );
        let output = self
            .as_server_user(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.path().join("server.log"))
            .args(["-w", "-t", "60", "-o", &options, "start"])
            .output()
            .expect("run pg_ctl start");
        assert!(output.status.success(), "pg_ctl start failed: {}", String::from_utf8_lossy(&output.stderr));
        assert!(wait_for_port(self.port, Duration::from_secs(30)), "PostgreSQL did not come up");
    }

    /// Stops the server at once (connections are cut), as a crash or an outage would.
    pub fn stop(&self) {
        let _ = self
            .as_server_user(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        assert!(wait_for_port_closed(self.port, Duration::from_secs(30)), "PostgreSQL did not stop");
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            self.stop();
        }
    }
}
