//! A private Dovecot 2.3 (IMAP, POP3, ManageSieve and an auth-client listener) on loopback. Its authentication
//! part (passdb, userdb, quota) is the caller's: the Gatehouse tests give it what `gatehouse config dovecot`
//! prints, asking a running Gatehouse.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{free_port, is_root, program, require_peer};

/// A running Dovecot, stopped on drop.
pub struct Dovecot {
    child: Child,
    /// Its folder (configuration, sockets, log, mail).
    pub dir: tempfile::TempDir,
    /// IMAP port.
    pub imap: u16,
    /// POP3 port.
    pub pop3: u16,
    /// ManageSieve port.
    pub sieve: u16,
    /// The auth-client listener (what Postfix uses with `smtpd_sasl_type = dovecot`).
    pub auth: u16,
    config: PathBuf,
}

impl Dovecot {
    /// Starts Dovecot with the authentication configuration `auth_conf` returns (given Dovecot's folder).
    /// `None` (after [`require_peer`]) when Dovecot, its Lua module, lua-cjson, root or the `vmail` user are
    /// missing.
    pub fn start_with(auth_conf: impl FnOnce(&Path) -> String) -> Option<Dovecot> {
        let Some(dovecot) = program("dovecot") else {
            require_peer("Dovecot", "packages dovecot-imapd, dovecot-pop3d, dovecot-managesieved, dovecot-auth-lua");
            return None;
        };
        if !is_root() {
            require_peer("Dovecot", "the tests must run as root to start Dovecot");
            return None;
        }
        if !Path::new("/usr/share/lua/5.4/cjson.lua").exists()
            && !Path::new("/usr/lib/x86_64-linux-gnu/lua/5.4/cjson.so").exists()
        {
            require_peer("Dovecot", "package lua-cjson (Lua 5.4 build) is not installed");
            return None;
        }
        if !Command::new("id").arg("vmail").output().is_ok_and(|o| o.status.success()) {
            require_peer("Dovecot", "the system user 'vmail' does not exist (scripts/test creates it)");
            return None;
        }
        let dir = tempfile::Builder::new().prefix("gatehouse-dovecot-").tempdir().unwrap();
        let root = dir.path().to_path_buf();
        std::fs::set_permissions(&root, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let mail = root.join("mail");
        std::fs::create_dir(&mail).unwrap();
        std::fs::set_permissions(&mail, std::os::unix::fs::PermissionsExt::from_mode(0o1777)).unwrap();
        let auth_conf = auth_conf(&root);
        let config = root.join("dovecot.conf");
        // Ports are free when chosen, but another test may take one before Dovecot binds it: then Dovecot exits
        // at once, and it is started again on new ports.
        let mut attempt = 0;
        let log = || std::fs::read_to_string(root.join("dovecot.log")).unwrap_or_default();
        let (child, imap, pop3, sieve, auth) = loop {
            attempt += 1;
            let (imap, pop3, sieve, auth) = (free_port(), free_port(), free_port(), free_port());
            std::fs::write(&config, format!(
                "base_dir = {root}/run\nstate_dir = {root}/state\ninstance_name = gatehouse-test-{imap}\n\
                 log_path = {root}/dovecot.log\nprotocols = imap pop3 sieve\nlisten = 127.0.0.1\nssl = no\n\
                 disable_plaintext_auth = no\nauth_verbose = yes\nauth_failure_delay = 0\ndefault_login_user = dovenull\n\
                 default_internal_user = dovecot\nmail_location = maildir:{root}/mail/%d/%n\nmail_home = {root}/mail/%d/%n\nfirst_valid_uid = 1\n\
                 service imap-login {{\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {imap}\n  }}\n  inet_listener imaps {{\n    port = 0\n  }}\n}}\n\
                 service pop3-login {{\n  inet_listener pop3 {{\n    address = 127.0.0.1\n    port = {pop3}\n  }}\n  inet_listener pop3s {{\n    port = 0\n  }}\n}}\n\
                 service managesieve-login {{\n  inet_listener sieve {{\n    address = 127.0.0.1\n    port = {sieve}\n  }}\n}}\n\
                 service auth {{\n  inet_listener auth-client {{\n    address = 127.0.0.1\n    port = {auth}\n  }}\n}}\n\
                 # ---- from `gatehouse config dovecot` (passdb, userdb, quota) ----\n{auth_conf}",
                root = root.display()
            ))
            .unwrap();
            let mut child = Command::new(&dovecot)
                .args(["-F", "-c"])
                .arg(&config)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start dovecot");
            // A loaded machine (the whole suite on two cores) has been seen to need more than 20 s.
            let deadline = Instant::now() + Duration::from_secs(45);
            let exited = loop {
                if std::net::TcpStream::connect(("127.0.0.1", imap)).is_ok() {
                    break None;
                }
                if let Some(status) = child.try_wait().unwrap() {
                    break Some(status);
                }
                if Instant::now() >= deadline {
                    let _ = child.kill();
                    panic!("Dovecot did not start within 45 s:\n{}", log());
                }
                std::thread::sleep(Duration::from_millis(100));
            };
            let Some(status) = exited else { break (child, imap, pop3, sieve, auth) };
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
            }
            let why = format!("{stderr}{}", log());
            assert!(
                why.contains("Address already in use") && attempt < 3,
                "Dovecot exited ({status}) while starting:\n{why}"
            );
        };
        let dovecot = Dovecot { child, dir, imap, pop3, sieve, auth, config };
        Some(dovecot)
    }

    /// Dovecot's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }

    /// Delivers `message` to `user` with dovecot-lda (as an MTA would); returns its exit status (67: no such
    /// user).
    pub fn deliver(&self, user: &str, message: &str) -> std::process::ExitStatus {
        use std::io::Write;
        let mut child = Command::new("/usr/lib/dovecot/dovecot-lda")
            .arg("-c")
            .arg(&self.config)
            .args(["-d", user, "-f", "sender@example.net"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run dovecot-lda");
        child.stdin.take().unwrap().write_all(message.as_bytes()).unwrap();
        child.wait().unwrap()
    }

    /// Runs `doveadm` against this instance.
    pub fn doveadm(&self, args: &[&str]) -> std::process::Output {
        Command::new(program("doveadm").expect("doveadm")).arg("-c").arg(&self.config).args(args).output().unwrap()
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = self.doveadm(&["stop"]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
