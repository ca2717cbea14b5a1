//! Scheme-name parsing for generation and the rehash-on-login policy.

use gatehouse_passwords::{GenerateScheme, PasswordError, generate, needs_rehash};

#[test]
fn from_name_parses_doveadm_names() {
    assert_eq!(GenerateScheme::default(), GenerateScheme::BlfCrypt { cost: 12 });
    assert_eq!(GenerateScheme::from_name("BLF-CRYPT", Some(10)).unwrap(), GenerateScheme::BlfCrypt { cost: 10 });
    assert_eq!("blf-crypt".parse::<GenerateScheme>().unwrap(), GenerateScheme::default());
    assert_eq!(
        GenerateScheme::from_name("argon2id", Some(4)).unwrap(),
        GenerateScheme::Argon2id { m_cost_kib: 65536, t_cost: 4, p_cost: 1 }
    );
    assert_eq!(GenerateScheme::from_name("SHA512-CRYPT", None).unwrap(), GenerateScheme::Sha512Crypt { rounds: 5000 });
    assert_eq!(GenerateScheme::from_name("ssha512", None).unwrap(), GenerateScheme::Ssha512);
    assert_eq!(GenerateScheme::from_name("SSHA256", None).unwrap(), GenerateScheme::Ssha256);
    assert!(matches!(GenerateScheme::from_name("MD5-CRYPT", None), Err(PasswordError::UnknownScheme(_))));
    assert!(matches!(GenerateScheme::from_name("BLF-CRYPT", Some(3)), Err(PasswordError::InvalidParameter { .. })));
    assert!(GenerateScheme::from_name("BLF-CRYPT", Some(32)).is_err());
    assert!(GenerateScheme::from_name("SHA512-CRYPT", Some(999)).is_err());
    assert!(GenerateScheme::from_name("SSHA512", Some(5)).is_err());
    assert_eq!(GenerateScheme::default().to_string(), "BLF-CRYPT");
}

#[test]
fn generated_formats() {
    let h = generate(b"pw", &GenerateScheme::Sha512Crypt { rounds: 5000 }).unwrap();
    assert!(h.starts_with("{SHA512-CRYPT}$6$") && !h.contains("rounds="), "{h}");
    let h = generate(b"pw", &GenerateScheme::Sha512Crypt { rounds: 1000 }).unwrap();
    assert!(h.starts_with("{SHA512-CRYPT}$6$rounds=1000$"), "{h}");
    let h = generate(b"pw", &GenerateScheme::Argon2id { m_cost_kib: 64, t_cost: 1, p_cost: 1 }).unwrap();
    assert!(h.starts_with("{ARGON2ID}$argon2id$v=19$m=64,t=1,p=1$"), "{h}");
    let h = generate(b"pw", &GenerateScheme::Ssha512).unwrap();
    assert!(h.starts_with("{SSHA512}"));
    assert_eq!(generate(b"a\0b", &GenerateScheme::Ssha512), Err(PasswordError::NulByte));
}

#[test]
fn rehash_policy() {
    let blf12 = GenerateScheme::default();
    let argon = GenerateScheme::Argon2id { m_cost_kib: 65536, t_cost: 3, p_cost: 1 };
    let ssha512 = GenerateScheme::Ssha512;
    let weak = [
        "{PLAIN}pw",
        "{CLEAR}pw",
        "{CLEARTEXT}pw",
        "{PLAIN-TRUNC}2-pw",
        "{MD5}$1$BPyY3OE2$0PMGgBtTmAOwKCZKbVYyd.",
        "{MD5-CRYPT}$1$BPyY3OE2$0PMGgBtTmAOwKCZKbVYyd.",
        "$1$BPyY3OE2$0PMGgBtTmAOwKCZKbVYyd.",
        "{CRYPT}$1$BPyY3OE2$0PMGgBtTmAOwKCZKbVYyd.",
        "{PLAIN-MD5}1a1dc91c907325c69271ddf0c944bc72",
        "{LDAP-MD5}Gh3JHJBzJcaScd3wyUS8cg==",
        "{SMD5}2OPIQGFJAXXUEp0jzgBMqjuDHrc=",
        "{PLAIN-MD4}a448017aaf21d8525fc10ae87aa6729d",
        "{SHA}9Rfd8dMqES/xrVXGbRsSyzjn6Pc=",
        "{SHA256}RpcL73Cs7YEj8NXQlHF+KlzUEgQeA7JjdgSf5lsoNKQ=",
        "{DES-CRYPT}qLVgWeBU/8jNU",
        "{CRYPT}qLVgWeBU/8jNU",
    ];
    for s in weak {
        for d in [blf12, argon, ssha512] {
            assert!(needs_rehash(s, &d), "{s} should be rehashed to {d}");
        }
    }
    // Low bcrypt cost (doveadm's default is 5, PHP's old default 10).
    let blf5 = "{BLF-CRYPT}$2y$05$DIEyBMEAF182REqq1oBMFe2u6jgZvhaGB3h8DLu/sdlBhsZ8.klsm";
    let blf10 = "{BLF-CRYPT}$2y$10$DIEyBMEAF182REqq1oBMFe2u6jgZvhaGB3h8DLu/sdlBhsZ8.klsm";
    let blf12s = "{BLF-CRYPT}$2y$12$DIEyBMEAF182REqq1oBMFe2u6jgZvhaGB3h8DLu/sdlBhsZ8.klsm";
    assert!(needs_rehash(blf5, &blf12));
    assert!(needs_rehash(blf10, &blf12));
    assert!(!needs_rehash(blf12s, &blf12));
    assert!(needs_rehash(blf5, &argon));
    assert!(!needs_rehash(blf10, &argon));
    assert!(needs_rehash("$2y$05$DIEyBMEAF182REqq1oBMFe2u6jgZvhaGB3h8DLu/sdlBhsZ8.klsm", &blf12));
    // Never "upgrade" to a weaker default.
    assert!(!needs_rehash(blf5, &ssha512));
    assert!(!needs_rehash(blf12s, &ssha512));
    // Salted SHA is weaker than an iterated default, fine for an SSHA default.
    let ssha = "{SSHA512}QpIKfi05y1D3RFbYC+4vZ15JLQSE1LfuX2da4LrBFHOu2DgFMhnULdt/KhjQVECIMoI+JRpE5jIENAuldDYvsulIuTY=";
    assert!(needs_rehash(ssha, &blf12));
    assert!(!needs_rehash(ssha, &ssha512));
    assert!(needs_rehash("{SSHA}EyO00oobEfE32sn9nx4uD7O2qv3xnp1j", &ssha512));
    // Strong schemes stay, unless same family with weaker parameters.
    let sha512c = "{SHA512-CRYPT}$6$ylAmMTCkbiGe6K8n$aZ0w/feW8K.hfGJ5//UEKF14P6q8wIhrAsN/0ynB7tpP2g2xTjXSRDZgZYbrrJX8lhzUqEdAbm8ilXhi2hLIL/";
    assert!(!needs_rehash(sha512c, &blf12));
    assert!(needs_rehash(sha512c, &GenerateScheme::Sha512Crypt { rounds: 10000 }));
    let a_low =
        "{ARGON2ID}$argon2id$v=19$m=19456,t=2,p=1$2PjKMLPFeBdolD87zV+kgA$dtHYV/TDVwznd19/FjRLdGAeCBRYW8uRAMXXUBfkCaE";
    let a_def =
        "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$2PjKMLPFeBdolD87zV+kgA$dtHYV/TDVwznd19/FjRLdGAeCBRYW8uRAMXXUBfkCaE";
    assert!(needs_rehash(a_low, &argon));
    assert!(!needs_rehash(a_def, &argon));
    assert!(!needs_rehash(a_low, &blf12));
    assert!(!needs_rehash("{PBKDF2}$1$lycqaMrs8.ZStfEL$5000$d0d2ee0ada3c962af4ebc72ccf4ec8c3467bdec1", &blf12));
    // Unknown / unparseable: never verified, so nothing to rehash.
    assert!(!needs_rehash("{NOPE}x", &blf12));
    // Unprefixed plaintext (only verifies when allowed) is always weak.
    assert!(needs_rehash("secret", &blf12));
}
