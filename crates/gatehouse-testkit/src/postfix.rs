//! A private Postfix 3.7 on loopback with two submission ports: one asks Gatehouse's auth-protocol listener
//! directly, the other asks Dovecot's auth service (`smtpd_sasl_type = dovecot` both times). Driven with swaks.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::{free_port, is_root, program, require_peer};

/// A running Postfix, stopped on drop.
pub struct Postfix {
    dir: tempfile::TempDir,
    /// smtpd asking Gatehouse directly.
    pub direct: u16,
    /// smtpd asking Dovecot.
    pub via_dovecot: u16,
}

/// What swaks saw.
pub struct Session {
    /// The server's replies, one per line.
    pub transcript: String,
}

impl Session {
    /// Whether a reply line starts with `code`.
    pub fn has(&self, code: &str) -> bool {
        self.transcript.lines().any(|line| {
            let reply = line.trim_start_matches(['<', '~', '*', '-', ' ']);
            line.starts_with('<') && reply.starts_with(code)
        })
    }
}

impl Postfix {
    /// Starts Postfix; `None` (after [`require_peer`]) without postfix, swaks or root.
    pub fn start(gatehouse_sasl: u16, dovecot_auth: u16) -> Option<Postfix> {
        let (Some(postfix), Some(_)) = (program("postfix"), program("swaks")) else {
            require_peer("Postfix", "packages postfix and swaks are not installed");
            return None;
        };
        if !is_root() {
            require_peer("Postfix", "the tests must run as root to start Postfix");
            return None;
        }
        let dir = tempfile::Builder::new().prefix("gatehouse-postfix-").tempdir().unwrap();
        let root = dir.path();
        std::fs::set_permissions(root, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        for sub in ["conf", "spool", "data"] {
            std::fs::create_dir(root.join(sub)).unwrap();
        }
        let chown = Command::new("chown").arg("postfix").arg(root.join("data")).status().unwrap();
        assert!(chown.success());
        let (direct, via_dovecot) = (free_port(), free_port());
        std::fs::write(
            root.join("conf/main.cf"),
            format!(
                "compatibility_level = 3.6\nqueue_directory = {root}/spool\ndata_directory = {root}/data\n\
                 myhostname = mx.gatehouse.test\nmydestination =\ninet_interfaces = 127.0.0.1\ninet_protocols = ipv4\n\
                 mynetworks =\nmaillog_file = {root}/postfix.log\nmaillog_file_prefixes = /tmp, /var\n\
                 smtpd_sasl_auth_enable = yes\nsmtpd_sasl_type = dovecot\n\
                 smtpd_sasl_path = inet:127.0.0.1:{gatehouse_sasl}\nsmtpd_tls_security_level = none\n\
                 smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination\n\
                 relayhost = [127.0.0.1]:9\nalias_maps =\nalias_database =\n",
                root = root.display()
            ),
        )
        .unwrap();
        let daemons = [
            "pickup unix n - n 60 1 pickup",
            "cleanup unix n - n - 0 cleanup",
            "qmgr unix n - n 300 1 qmgr",
            "rewrite unix - - n - - trivial-rewrite",
            "bounce unix - - n - 0 bounce",
            "defer unix - - n - 0 bounce",
            "trace unix - - n - 0 bounce",
            "verify unix - - n - 1 verify",
            "flush unix n - n 1000? 0 flush",
            "proxymap unix - - n - - proxymap",
            "smtp unix - - n - - smtp",
            "relay unix - - n - - smtp",
            "error unix - - n - - error",
            "retry unix - - n - - error",
            "discard unix - - n - - discard",
            "anvil unix - - n - 1 anvil",
            "scache unix - - n - 1 scache",
            "postlog unix-dgram n - n - 1 postlogd",
            "showq unix n - n - - showq",
        ];
        std::fs::write(
            root.join("conf/master.cf"),
            format!(
                "127.0.0.1:{direct} inet n - n - - smtpd\n\
                 127.0.0.1:{via_dovecot} inet n - n - - smtpd -o smtpd_sasl_path=inet:127.0.0.1:{dovecot_auth}\n{}\n",
                daemons.join("\n")
            ),
        )
        .unwrap();
        let output = Command::new(&postfix).arg("-c").arg(root.join("conf")).arg("start").output().unwrap();
        let instance = Postfix { dir, direct, via_dovecot };
        assert!(
            output.status.success(),
            "postfix start failed: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            instance.log()
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", direct)).is_err() {
            assert!(Instant::now() < deadline, "Postfix did not start:\n{}", instance.log());
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(instance)
    }

    /// Postfix's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postfix.log")).unwrap_or_default()
    }

    /// Runs swaks against `port` with `args`, from a loopback address of its own (so Dovecot's per-address
    /// auth penalty after failures cannot push its answers past Postfix's 10 s timeout).
    pub fn swaks(&self, port: u16, args: &[&str]) -> Session {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(1);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let source = format!("127.2.{}.{}", (n >> 8) & 0xff, (n & 0xff).max(1));
        let output = Command::new(program("swaks").unwrap())
            .args(["--server", &format!("127.0.0.1:{port}"), "--timeout", "30", "--local-interface", &source])
            .args(args)
            .output()
            .unwrap();
        Session { transcript: String::from_utf8_lossy(&output.stdout).into_owned() }
    }

    fn conf(&self) -> std::path::PathBuf {
        self.dir.path().join("conf")
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        if let Some(postfix) = program("postfix") {
            let _ = Command::new(postfix).arg("-c").arg(self.conf()).arg("stop").output();
        }
    }
}
