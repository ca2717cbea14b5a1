//! A private Postfix 3.7 on loopback with two submission ports, each configured with the `main.cf` lines it is
//! given (what `gatehouse config postfix` prints): one asking Gatehouse's auth-protocol listener directly, the
//! other asking Dovecot's auth service. STARTTLS with a self-signed certificate made by `openssl`. Driven with
//! swaks.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{free_port, is_root, program, require_peer};

/// The name Postfix greets with and its certificate carries.
const HOSTNAME: &str = "mx.gatehouse.test";

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
    /// Starts Postfix: the `direct` port configured with the `main.cf` lines `direct`, the `via_dovecot` port with
    /// `via_dovecot` (as `-o` overrides of its master.cf line). `None` (after [`require_peer`]) without postfix,
    /// swaks with TLS, openssl or root.
    pub fn start(direct: &str, via_dovecot: &str) -> Option<Postfix> {
        let (Some(postfix), Some(_), Some(openssl)) = (program("postfix"), program("swaks"), program("openssl")) else {
            require_peer("Postfix", "packages postfix, swaks and openssl are not installed");
            return None;
        };
        let tls = Command::new("perl").args(["-MNet::SSLeay", "-MIO::Socket::SSL", "-e", "1"]).output();
        if !tls.is_ok_and(|out| out.status.success()) {
            require_peer("Postfix", "swaks needs libnet-ssleay-perl and libio-socket-ssl-perl for STARTTLS");
            return None;
        }
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
        let (cert, key) = (root.join("conf/cert.pem"), root.join("conf/key.pem"));
        let made = Command::new(openssl)
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", &format!("/CN={HOSTNAME}")])
            .args([
                "-addext",
                &format!("subjectAltName=DNS:{HOSTNAME}"),
                "-addext",
                "basicConstraints=critical,CA:FALSE",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .unwrap();
        assert!(made.status.success(), "openssl req: {}", String::from_utf8_lossy(&made.stderr));
        let (direct_port, via_dovecot_port) = (free_port(), free_port());
        std::fs::write(
            root.join("conf/main.cf"),
            format!(
                "compatibility_level = 3.6\nqueue_directory = {root}/spool\ndata_directory = {root}/data\n\
                 myhostname = mx.gatehouse.test\nmydestination =\ninet_interfaces = 127.0.0.1\ninet_protocols = ipv4\n\
                 mynetworks =\nmaillog_file = {root}/postfix.log\nmaillog_file_prefixes = /tmp, /var\n\
                 smtpd_tls_security_level = may\nsmtpd_tls_cert_file = {cert}\nsmtpd_tls_key_file = {key}\n\
                 relayhost = [127.0.0.1]:9\nalias_maps =\nalias_database =\n\n{direct}",
                root = root.display(),
                cert = cert.display(),
                key = key.display(),
            ),
        )
        .unwrap();
        let overrides: String =
            main_cf_settings(via_dovecot).map(|(name, value)| format!(" -o {{ {name} = {value} }}")).collect();
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
            "tlsmgr unix - - n 1000? 1 tlsmgr",
        ];
        std::fs::write(
            root.join("conf/master.cf"),
            format!(
                "127.0.0.1:{direct_port} inet n - n - - smtpd\n\
                 127.0.0.1:{via_dovecot_port} inet n - n - - smtpd{overrides}\n{}\n",
                daemons.join("\n")
            ),
        )
        .unwrap();
        let output = Command::new(&postfix).arg("-c").arg(root.join("conf")).arg("start").output().unwrap();
        let instance = Postfix { dir, direct: direct_port, via_dovecot: via_dovecot_port };
        assert!(
            output.status.success(),
            "postfix start failed: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            instance.log()
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", direct_port)).is_err() {
            assert!(Instant::now() < deadline, "Postfix did not start:\n{}", instance.log());
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(instance)
    }

    /// Postfix's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postfix.log")).unwrap_or_default()
    }

    /// Runs swaks against `port` with `args` after STARTTLS.
    pub fn swaks(&self, port: u16, args: &[&str]) -> Session {
        self.swaks_without_tls(port, &[&["--tls"], args].concat())
    }

    /// Runs swaks against `port` with `args`, from a loopback address of its own (so Dovecot's per-address
    /// auth penalty after failures cannot push its answers past Postfix's 10 s timeout).
    pub fn swaks_without_tls(&self, port: u16, args: &[&str]) -> Session {
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

    /// An SMTP session on `port` after EHLO, STARTTLS (the certificate checked against the one Postfix was
    /// given) and EHLO again.
    pub fn smtp_over_tls(&self, port: u16) -> SmtpSession {
        use rustls::pki_types::{CertificateDer, pem::PemObject};
        let _ = rustls::crypto::ring::default_provider().install_default();
        let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut plain = SmtpSession { io: BufReader::new(Box::new(tcp.try_clone().unwrap())) };
        assert_eq!(plain.reply(), 220);
        assert_eq!(plain.command("EHLO client.example"), 250);
        assert_eq!(plain.command("STARTTLS"), 220);
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from_pem_file(self.conf().join("cert.pem")).unwrap()).unwrap();
        let config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
        let connection = rustls::ClientConnection::new(Arc::new(config), HOSTNAME.try_into().unwrap()).unwrap();
        let mut session = SmtpSession { io: BufReader::new(Box::new(rustls::StreamOwned::new(connection, tcp))) };
        assert_eq!(session.command("EHLO client.example"), 250);
        session
    }
}

/// Reading and writing one SMTP connection.
trait Connection: std::io::Read + Write {}
impl<T: std::io::Read + Write> Connection for T {}

/// An SMTP conversation: one command, one reply code.
pub struct SmtpSession {
    io: BufReader<Box<dyn Connection>>,
}

impl SmtpSession {
    /// Sends `line` and returns the reply's code (0 when the connection ended).
    pub fn command(&mut self, line: &str) -> u16 {
        self.io.get_mut().write_all(format!("{line}\r\n").as_bytes()).unwrap();
        self.io.get_mut().flush().unwrap();
        self.reply()
    }

    /// Reads a (multi-line) reply and returns its code.
    fn reply(&mut self) -> u16 {
        let mut line = String::new();
        loop {
            line.clear();
            if self.io.read_line(&mut line).unwrap_or(0) == 0 {
                return 0;
            }
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return line.get(..3).and_then(|code| code.parse().ok()).unwrap_or(0);
            }
        }
    }
}

/// The `name = value` settings of `main.cf` lines (comments and blank lines skipped).
fn main_cf_settings(lines: &str) -> impl Iterator<Item = (&str, &str)> {
    lines
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| (name.trim(), value.trim()))
}

impl Drop for Postfix {
    fn drop(&mut self) {
        if let Some(postfix) = program("postfix") {
            let _ = Command::new(postfix).arg("-c").arg(self.conf()).arg("stop").output();
        }
    }
}
