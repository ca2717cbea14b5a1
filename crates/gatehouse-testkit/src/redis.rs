//! A private Redis for tests: loopback only, a password as mailcow sets one (`requirepass`), nothing saved to
//! disk. Commands are sent with `redis-cli`, as an operator would.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{free_port, program, require_peer};

/// A running redis-server, stopped on drop.
pub struct Redis {
    child: Child,
    _dir: tempfile::TempDir,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// The password it asks for.
    pub password: String,
}

impl Redis {
    /// Starts redis-server with `password`. `None` (after [`require_peer`]) when redis-server or redis-cli is
    /// missing (package redis-server).
    pub fn start(password: &str) -> Option<Redis> {
        for name in ["redis-server", "redis-cli"] {
            if program(name).is_none() {
                require_peer("Redis", &format!("{name} is missing (package redis-server)"));
                return None;
            }
        }
        let dir = tempfile::Builder::new().prefix("gatehouse-redis-").tempdir().unwrap();
        let port = free_port();
        let child = Command::new(program("redis-server").unwrap())
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--requirepass", password, "--dir"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let redis = Redis { child, _dir: dir, port, password: password.to_string() };
        let deadline = Instant::now() + Duration::from_secs(20);
        while redis.try_command(&["PING"]).as_deref() != Some("PONG") {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(redis)
    }

    /// Runs one command with redis-cli and returns its raw output, trimmed; `None` when redis-cli failed.
    fn try_command(&self, args: &[&str]) -> Option<String> {
        let output = Command::new(program("redis-cli").unwrap())
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "--no-auth-warning", "--raw", "-a"])
            .arg(&self.password)
            .args(args)
            .output()
            .ok()?;
        output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
    }

    /// Runs one command (`SET key value`, `GET key`, …) and returns its output.
    pub fn command(&self, args: &[&str]) -> String {
        self.try_command(args).unwrap_or_else(|| panic!("redis-cli {args:?} failed"))
    }

    /// Every key with its value as `DUMP` gives it, to show that nothing was written.
    pub fn snapshot(&self) -> Vec<(String, String)> {
        let mut keys: Vec<String> =
            self.command(&["KEYS", "*"]).lines().map(str::to_string).filter(|k| !k.is_empty()).collect();
        keys.sort();
        keys.into_iter()
            .map(|key| {
                let value = self.command(&["DUMP", &key]);
                (key, value)
            })
            .collect()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
