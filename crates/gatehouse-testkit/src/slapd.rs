//! A private OpenLDAP `slapd` for tests: loopback only, a plain `ldap://` listener (StartTLS-capable) and an
//! `ldaps://` listener, with a CA and server certificate generated for the run (the server certificate names
//! `localhost` and `127.0.0.1`). The directory holds `dc=example,dc=org` with `ou=people` plus the LDIF a
//! test adds; the admin is `cn=admin,dc=example,dc=org` / `adminpw`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{free_port, require_peer};

/// A running slapd, stopped on drop.
pub struct Slapd {
    child: Child,
    dir: tempfile::TempDir,
    /// Port of `ldap://127.0.0.1` (plain and StartTLS).
    pub ldap_port: u16,
    /// Port of `ldaps://127.0.0.1`.
    pub ldaps_port: u16,
}

/// The base entries every test directory starts with.
const BASE: &str = "dn: dc=example,dc=org\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n\
dn: ou=people,dc=example,dc=org\nobjectClass: organizationalUnit\nou: people\n";

fn run(dir: &Path, program: &str, args: &[&str]) {
    let output =
        Command::new(program).current_dir(dir).args(args).output().unwrap_or_else(|err| panic!("{program}: {err}"));
    assert!(output.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&output.stderr));
}

/// Writes a CA (`<name>.pem`, `<name>.key`) into `dir`.
pub fn make_ca(dir: &Path, name: &str) -> PathBuf {
    run(
        dir,
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-days",
            "2",
            "-subj",
            &format!("/CN=Gatehouse test {name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    dir.join(format!("{name}.pem"))
}

impl Slapd {
    /// Starts slapd with the base entries and `ldif`. `None` (after [`require_peer`]) when slapd, slapadd or
    /// openssl are missing.
    pub fn start(ldif: &str) -> Option<Slapd> {
        for program in ["/usr/sbin/slapd", "/usr/sbin/slapadd", "/usr/bin/openssl"] {
            if !Path::new(program).exists() {
                require_peer("OpenLDAP", &format!("{program} is missing (packages slapd, ldap-utils, openssl)"));
                return None;
            }
        }
        let dir = tempfile::Builder::new().prefix("gatehouse-slapd-").tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("db")).unwrap();
        make_ca(root, "ca");
        run(
            root,
            "openssl",
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=localhost",
            ],
        );
        std::fs::write(
            root.join("server.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n\
             keyUsage=digitalSignature,keyEncipherment\n",
        )
        .unwrap();
        run(
            root,
            "openssl",
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.pem",
                "-days",
                "2",
                "-extfile",
                "server.ext",
            ],
        );
        let r = root.display();
        std::fs::write(
            root.join("slapd.conf"),
            format!(
                "include /etc/ldap/schema/core.schema\ninclude /etc/ldap/schema/cosine.schema\n\
                 include /etc/ldap/schema/inetorgperson.schema\npidfile {r}/slapd.pid\nmodulepath /usr/lib/ldap\n\
                 moduleload back_mdb\nsizelimit unlimited\nTLSCACertificateFile {r}/ca.pem\nTLSCertificateFile {r}/server.pem\n\
                 TLSCertificateKeyFile {r}/server.key\ndatabase mdb\nmaxsize 1073741824\nsuffix \"dc=example,dc=org\"\n\
                 rootdn \"cn=admin,dc=example,dc=org\"\nrootpw adminpw\ndirectory {r}/db\nindex objectClass eq\n\
                 index mail,uid eq\naccess to attrs=userPassword by anonymous auth by self write by * none\n\
                 access to * by * read\n"
            ),
        )
        .unwrap();
        std::fs::write(root.join("data.ldif"), format!("{BASE}\n{ldif}")).unwrap();
        run(root, "/usr/sbin/slapadd", &["-q", "-f", "slapd.conf", "-l", "data.ldif"]);
        let (ldap_port, ldaps_port) = (free_port(), free_port());
        let urls = format!("ldap://127.0.0.1:{ldap_port}/ ldaps://127.0.0.1:{ldaps_port}/");
        let child = Command::new("/usr/sbin/slapd")
            .args(["-f", "slapd.conf", "-h", &urls, "-d", "0"])
            .current_dir(root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start slapd");
        let slapd = Slapd { child, dir, ldap_port, ldaps_port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", ldap_port)).is_err() {
            assert!(Instant::now() < deadline, "slapd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(slapd)
    }

    /// The CA that signed the server certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A folder for the test's own files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops slapd (it can be tested as "down" afterwards).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}
