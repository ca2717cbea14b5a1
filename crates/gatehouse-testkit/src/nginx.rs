//! A private nginx for tests: a full `nginx.conf` in a temporary folder (pid file, logs and every `*_temp_path`
//! inside it) whose `http {}` holds the caller's `server { ... }` block. The caller picks the port in its
//! `listen` directive (use [`free_port`](crate::free_port)); [`Nginx::start`] waits until every `listen` address
//! of the block accepts connections.
//!
//! nginx runs in the foreground (`daemon off`) with a master process (as root, the workers run as `nobody`), so
//! the test holds the master as a child process. [`Nginx::stop`] (and drop) sends SIGTERM, waits for a fast
//! shutdown and kills whatever is left of the process tree.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{process, require_peer, wait_for_addr};

/// The nginx binary (Debian package `nginx`).
pub const NGINX: &str = "/usr/sbin/nginx";

/// A running nginx, stopped on drop.
pub struct Nginx {
    child: Option<Child>,
    dir: tempfile::TempDir,
    listen: Vec<SocketAddr>,
}

impl Nginx {
    /// Starts nginx with `server_block` (one or more `server { ... }` blocks, or any other `http`-level text)
    /// and waits until its `listen` addresses answer. `None` (after [`require_peer`]) when nginx is missing.
    /// Panics, with nginx's own error, when the configuration is refused or nginx does not come up.
    pub fn start(server_block: &str) -> Option<Nginx> {
        if !Path::new(NGINX).exists() {
            require_peer("nginx", &format!("{NGINX} is missing (package nginx)"));
            return None;
        }
        let dir = tempfile::Builder::new().prefix("gatehouse-nginx-").tempdir().expect("temporary folder");
        // The workers (user nobody) must reach the temp paths and any files a test serves from here.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("temp")).unwrap();
        std::fs::write(root.join("nginx.conf"), config(root, server_block)).unwrap();
        let listen = listen_addresses(server_block);
        assert!(!listen.is_empty(), "the server block has no `listen address:port;` directive");
        let stderr = std::fs::File::create(root.join("stderr.log")).unwrap();
        let child = Command::new(NGINX)
            .arg("-p")
            .arg(root)
            .arg("-c")
            .arg(root.join("nginx.conf"))
            .arg("-e")
            .arg(root.join("error.log"))
            .current_dir(root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start nginx");
        let mut nginx = Nginx { child: Some(child), dir, listen };
        let deadline = Instant::now() + Duration::from_secs(20);
        for addr in nginx.listen.clone() {
            while !wait_for_addr(addr, Duration::from_millis(100)) {
                if let Some(Ok(Some(status))) = nginx.child.as_mut().map(Child::try_wait) {
                    panic!(
                        "nginx exited ({status}) before listening on {addr}:\n{}{}",
                        nginx.read("stderr.log"),
                        nginx.error_log()
                    );
                }
                assert!(Instant::now() < deadline, "nginx did not listen on {addr}:\n{}", nginx.error_log());
            }
        }
        Some(nginx)
    }

    /// The temporary folder (configuration, logs, temp paths); a test may put files to serve here.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The path of the generated configuration.
    pub fn config_file(&self) -> PathBuf {
        self.dir.path().join("nginx.conf")
    }

    /// The `listen` addresses found in the server block.
    pub fn listen(&self) -> &[SocketAddr] {
        &self.listen
    }

    /// The error log so far (level `info`: also shows `auth request unexpected status` and upstream errors).
    pub fn error_log(&self) -> String {
        self.read("error.log")
    }

    /// The access log so far (nginx's `combined` format).
    pub fn access_log(&self) -> String {
        self.read("access.log")
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    /// Stops nginx (fast shutdown, then SIGKILL after 5 s) and waits until its ports are closed. Idempotent.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        process::stop_child(&mut child, Some("TERM"), Duration::from_secs(5));
        for addr in &self.listen {
            let deadline = Instant::now() + Duration::from_secs(5);
            while std::net::TcpStream::connect_timeout(addr, Duration::from_millis(100)).is_ok()
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The whole configuration around the caller's text.
fn config(root: &Path, server_block: &str) -> String {
    let r = root.display();
    let mime = if Path::new("/etc/nginx/mime.types").exists() { "include /etc/nginx/mime.types;\n  " } else { "" };
    format!(
        "daemon off;\nmaster_process on;\nworker_processes 1;\npid {r}/nginx.pid;\nerror_log {r}/error.log info;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n  {mime}default_type application/octet-stream;\n  access_log {r}/access.log;\n  \
         client_body_temp_path {r}/temp/body;\n  proxy_temp_path {r}/temp/proxy;\n  fastcgi_temp_path {r}/temp/fastcgi;\n  \
         uwsgi_temp_path {r}/temp/uwsgi;\n  scgi_temp_path {r}/temp/scgi;\n\n{server_block}\n}}\n"
    )
}

/// The TCP addresses of the `listen` directives in `text`: `listen 127.0.0.1:8080;`, `listen [::1]:8080 ...;`
/// or `listen 8080;` (checked on 127.0.0.1). Unix sockets are skipped.
fn listen_addresses(text: &str) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    let mut tokens =
        text.split(|c: char| c.is_whitespace() || c == ';' || c == '{' || c == '}').filter(|t| !t.is_empty());
    while let Some(token) = tokens.next() {
        if token != "listen" {
            continue;
        }
        let Some(value) = tokens.next() else { break };
        if value.starts_with("unix:") {
            continue;
        }
        let addr = if let Ok(port) = value.parse::<u16>() {
            Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port))
        } else if let Some((host, port)) = value.rsplit_once(':') {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let ip = match host {
                "*" | "localhost" => Ok(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                _ => host.parse::<IpAddr>(),
            };
            match (ip, port.parse::<u16>()) {
                (Ok(ip), Ok(port)) => {
                    Some(SocketAddr::new(if ip.is_unspecified() { IpAddr::V4(Ipv4Addr::LOCALHOST) } else { ip }, port))
                }
                _ => None,
            }
        } else {
            None
        };
        if let Some(addr) = addr.filter(|a| !out.contains(a)) {
            out.push(addr);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::listen_addresses;

    #[test]
    fn listen_directives_are_found() {
        let block = "server { listen 127.0.0.1:18080; listen [::1]:18081 ssl; listen 18082;\n listen unix:/x.sock;\n\
                     location / { return 200; } }";
        let found: Vec<String> = listen_addresses(block).iter().map(ToString::to_string).collect();
        assert_eq!(found, ["127.0.0.1:18080", "[::1]:18081", "127.0.0.1:18082"]);
    }
}
