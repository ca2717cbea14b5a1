//! Compatibility with the real Dovecot: the committed doveadm vector file,
//! and (when `doveadm` is installed) fresh vectors both ways.
//!
//! `fixture_vectors` needs nothing but the file. `live_doveadm` runs
//! `doveadm` when present; with `CI=true` a missing `doveadm` is a failure.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt as _;
use std::process::Command;

use gatehouse_passwords::{GenerateScheme, Verification, VerifyOptions, generate, verify};

const FIXTURE: &str = include_str!("fixtures/doveadm-vectors.txt");

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).expect("fixture candidate is hex")
}

#[test]
fn fixture_vectors() {
    let opts = VerifyOptions::default();
    let mut failures = Vec::new();
    let mut counts = [0usize; 3];
    for (lineno, line) in FIXTURE.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let mut cols = line.splitn(3, '\t');
        let (verdict, cand, stored) = (cols.next().unwrap(), unhex(cols.next().unwrap()), cols.next().unwrap());
        let got = verify(stored, &cand, &opts);
        let ok = match verdict {
            "match" => {
                counts[0] += 1;
                got == Verification::Match
            }
            "mismatch" => {
                counts[1] += 1;
                got == Verification::Mismatch
            }
            "error" => {
                counts[2] += 1;
                matches!(got, Verification::Malformed(_) | Verification::Unsupported(_))
            }
            other => panic!("line {}: unknown verdict {other}", lineno + 1),
        };
        if !ok {
            failures.push(format!(
                "line {}: doveadm said {verdict}, we said {got:?}: {stored} / {:?}",
                lineno + 1,
                String::from_utf8_lossy(&cand)
            ));
        }
    }
    assert!(counts[0] > 400 && counts[1] > 800, "fixture too small: {counts:?}");
    assert!(failures.is_empty(), "{} disagreements:\n{}", failures.len(), failures.join("\n"));
}

/// Every scheme doveadm can produce must appear in the fixture with a match.
#[test]
fn fixture_covers_every_doveadm_scheme() {
    let schemes = [
        "BLF-CRYPT",
        "SHA512-CRYPT",
        "SHA256-CRYPT",
        "MD5-CRYPT",
        "MD5",
        "DES-CRYPT",
        "CRYPT",
        "ARGON2I",
        "ARGON2ID",
        "PBKDF2",
        "SSHA",
        "SSHA256",
        "SSHA512",
        "SHA",
        "SHA1",
        "SHA256",
        "SHA512",
        "SMD5",
        "LDAP-MD5",
        "PLAIN-MD5",
        "PLAIN-MD4",
        "PLAIN",
        "CLEAR",
        "CLEARTEXT",
        "SCRAM-SHA-1",
        "SCRAM-SHA-256",
        "CRAM-MD5",
        "HMAC-MD5",
        "PLAIN-TRUNC",
    ];
    for s in schemes {
        let prefix = format!("{{{s}}}");
        let prefix_enc = format!("{{{s}.");
        assert!(
            FIXTURE.lines().any(|l| l.starts_with("match\t")
                && (l.contains(&format!("\t{prefix}")) || l.contains(&format!("\t{prefix_enc}")))),
            "no matching vector for {s}"
        );
    }
}

// ---------------------------------------------------------------------------
// Live doveadm

fn doveadm_present() -> bool {
    Command::new("doveadm").args(["-O", "pw", "-l"]).output().map(|o| o.status.success()).unwrap_or(false)
}

fn doveadm_generate(scheme: &str, rounds: Option<u32>, pw: &[u8]) -> Option<String> {
    let mut cmd = Command::new("doveadm");
    cmd.args(["-O", "pw", "-s", scheme]);
    if let Some(r) = rounds {
        cmd.args(["-r", &r.to_string()]);
    }
    cmd.arg("-p").arg(OsStr::from_bytes(pw));
    let out = cmd.output().expect("run doveadm");
    assert!(out.status.success(), "doveadm pw -s {scheme} failed: {}", String::from_utf8_lossy(&out.stderr));
    // Stored hashes are text; only PLAIN of a non-UTF-8 password is not.
    String::from_utf8(out.stdout).ok().map(|s| s.trim_end().to_string())
}

fn doveadm_test(stored: &str, pw: &[u8]) -> bool {
    Command::new("doveadm")
        .args(["-O", "pw", "-t", stored, "-p"])
        .arg(OsStr::from_bytes(pw))
        .output()
        .expect("run doveadm")
        .status
        .success()
}

fn test_passwords() -> Vec<Vec<u8>> {
    // Random bytes without NUL (Dovecot passwords are C strings), including
    // invalid UTF-8 and a 90-byte one past bcrypt's 72-byte limit.
    let random: Vec<u8> = (0..90).map(|_| rand::random_range(1..=255u8)).collect();
    vec![b"hunter2".to_vec(), "Grüße, 世界! ✓".as_bytes().to_vec(), random]
}

fn wrong(pw: &[u8]) -> Vec<u8> {
    let mut w = pw.to_vec();
    w[0] = if w[0] == b'X' { b'Y' } else { b'X' };
    w
}

#[test]
fn live_doveadm() {
    if !doveadm_present() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("CI=true but doveadm is not installed (apt-get install dovecot-core)");
        }
        eprintln!("skipping live_doveadm: doveadm not installed");
        return;
    }
    let opts = VerifyOptions::default();
    let mut failures = Vec::new();

    // 1. Fresh vectors from doveadm, verified by us.
    let fresh: &[(&str, Option<u32>)] = &[
        ("BLF-CRYPT", Some(4)),
        ("SHA512-CRYPT", None),
        ("SHA512-CRYPT", Some(1000)),
        ("SHA256-CRYPT", None),
        ("MD5-CRYPT", None),
        ("MD5", None),
        ("DES-CRYPT", None),
        ("CRYPT", Some(4)),
        ("PBKDF2", Some(1000)),
        ("SSHA", None),
        ("SSHA256", None),
        ("SSHA512", None),
        ("SHA", None),
        ("SHA256", None),
        ("SHA512", None),
        ("SMD5", None),
        ("LDAP-MD5", None),
        ("PLAIN-MD5", None),
        ("PLAIN-MD4", None),
        ("PLAIN", None),
        ("CRAM-MD5", None),
        ("SCRAM-SHA-1", None),
        ("SCRAM-SHA-256", None),
        ("SSHA512.HEX", None),
        ("PLAIN.B64", None),
    ];
    let passwords = test_passwords();
    for (scheme, rounds) in fresh {
        for pw in &passwords {
            let Some(stored) = doveadm_generate(scheme, *rounds, pw) else {
                assert!(scheme.starts_with("PLAIN") && std::str::from_utf8(pw).is_err());
                continue;
            };
            let good = verify(&stored, pw, &opts);
            let bad = verify(&stored, &wrong(pw), &opts);
            // DES only looks at 8 bytes, so "wrong" must differ there: it does (byte 0).
            if good != Verification::Match || bad != Verification::Mismatch {
                failures.push(format!("doveadm {scheme}: {stored} -> {good:?} / wrong {bad:?}"));
            }
        }
    }
    // One expensive Argon2 pair, with doveadm's default parameters.
    for scheme in ["ARGON2ID", "ARGON2I"] {
        let pw = &passwords[1];
        let stored = doveadm_generate(scheme, None, pw).unwrap();
        if verify(&stored, pw, &opts) != Verification::Match
            || verify(&stored, &wrong(pw), &opts) != Verification::Mismatch
        {
            failures.push(format!("doveadm {scheme}: {stored}"));
        }
    }

    // 2. Our hashes, checked by `doveadm pw -t`.
    let ours = [
        GenerateScheme::BlfCrypt { cost: 4 },
        GenerateScheme::default(),
        GenerateScheme::Argon2id { m_cost_kib: 1024, t_cost: 1, p_cost: 1 },
        GenerateScheme::from_name("ARGON2ID", None).unwrap(),
        GenerateScheme::Sha512Crypt { rounds: 1000 },
        GenerateScheme::Sha512Crypt { rounds: 5000 },
        GenerateScheme::Ssha512,
        GenerateScheme::Ssha256,
    ];
    for scheme in ours {
        for pw in &passwords {
            let stored = generate(pw, &scheme).unwrap();
            if !doveadm_test(&stored, pw) {
                failures.push(format!("doveadm rejected our {scheme}: {stored}"));
            }
            if doveadm_test(&stored, &wrong(pw)) {
                failures.push(format!("doveadm accepted a wrong password for our {scheme}: {stored}"));
            }
            // Expensive defaults: one password is enough.
            if matches!(
                scheme,
                GenerateScheme::BlfCrypt { cost: 12 } | GenerateScheme::Argon2id { m_cost_kib: 65536, .. }
            ) {
                break;
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
