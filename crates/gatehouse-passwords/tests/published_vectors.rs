//! Vectors for formats doveadm cannot produce (or produces unusably), built
//! from their published definitions. Each test names where its format is
//! defined.

use gatehouse_passwords::{Verification, VerifyOptions, verify};

fn check(stored: &str, good: &[u8], bad: &[u8]) {
    let opts = VerifyOptions::default();
    assert_eq!(verify(stored, good, &opts), Verification::Match, "{stored} with {good:?}");
    assert_eq!(verify(stored, bad, &opts), Verification::Mismatch, "{stored} with {bad:?}");
}

/// FreeIPA / 389-ds `{PBKDF2-SHA512}<iterations>$<salt>$<hash>`.
/// Defined by 389-ds-base `src/plugins/pwdchan/src/lib.rs` (`pbkdf2_decompose`,
/// `pbkdf2_encrypt`): salt and hash are passlib "ab64" (standard base64 with
/// `.` for `+`, padding optional), the key length is the decoded hash length,
/// PBKDF2 per RFC 8018 with HMAC-SHA-512.
#[test]
fn freeipa_pbkdf2_sha512() {
    // The vector from 389-ds-base's own test `pwdchan_pbkdf2_sha512_basic`.
    check(
        "{PBKDF2-SHA512}10000$Je1Uw19Bfv5lArzZ6V3EPw$g4T/1sqBUYWl9o93MVnyQ/8zKGSkPbKaXXsT8WmysXQJhWy8MRP2JFudSL.N9RklQYgDPxPjnfum/F2f/TrppA",
        b"password",
        b"password!",
    );
    // Computed independently with Python's hashlib.pbkdf2_hmac('sha512', ...).
    check(
        "{PBKDF2-SHA512}10000$MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODk$yyrqEhu0M/bEG4Qu..EI1QA3Pm1X6AEjB6rfcQJCPUOfd.EeuThgFBPo5CwsvmCXBCmmBGpcpgo2/N4KAZ.38Q",
        b"password",
        b"Password",
    );
    // Same hash written with standard base64 and padding (389-ds accepts both).
    check(
        "{PBKDF2-SHA512}10000$MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODk=$yyrqEhu0M/bEG4Qu++EI1QA3Pm1X6AEjB6rfcQJCPUOfd+EeuThgFBPo5CwsvmCXBCmmBGpcpgo2/N4KAZ+38Q==",
        b"password",
        b"Password",
    );
    check(
        "{PBKDF2-SHA512}1000$AAECAwQFBgcICQoLDA0ODxAREhMUFRYX$Yx5auyiZJru.Dfi16D/0gLoda1x8J29NNJ7XLcQf.09ES9v3.5G2n7.Qkew4WBqd.jeR0oFG63qzG7v4qMblVA",
        "pässwörd".as_bytes(),
        "passwörd".as_bytes(),
    );
    // No truncation at 72 bytes (unlike bcrypt).
    let long = [b'x'; 80];
    check(
        "{PBKDF2-SHA512}1000$c2FsdHNhbHRzYWx0c2FsdA$BAryhhM2vkMup7gNA6LB/6dDIi/S86/YpxvUOP2RQb6CtyBHGOrnlpucx8BOUq6wsAJ6aRPzmLjocE3pvwvWvA",
        &long,
        &long[..72],
    );
    let opts = VerifyOptions::default();
    assert!(matches!(verify("{PBKDF2-SHA512}x$y$z", b"password", &opts), Verification::Malformed(_)));
}

/// 389-ds `{PBKDF2-SHA256}` / `{PBKDF2-SHA1}`: same definition as above.
#[test]
fn ds389_pbkdf2_sha256_and_sha1() {
    // Vectors from 389-ds-base's tests `pwdchan_pbkdf2_sha256_basic` and
    // `pwdchan_pbkdf2_sha1_basic`.
    check(
        "{PBKDF2-SHA256}10000$henZGfPWw79Cs8ORDeVNrQ$1dTJy73v6n3bnTmTZFghxHXHLsAzKaAy8SksDfZBPIw",
        b"password",
        b"password!",
    );
    check(
        "{PBKDF2-SHA256}36000$eElFb3p1WlZBb1lt$uW1b35DUKyhvQAf1mBqMvoBDcqSD06juzyO/nmyV0+w=",
        b"eicieY7ahchaoCh0eeTa",
        b"password!",
    );
    check("{PBKDF2-SHA1}10000$ZBEH6B07rgQpJSikyvMU2w$TAA03a5IYkz1QlPsbJKvUsTqNV", b"password", b"password!");
    // 389-ds also writes `{PBKDF2}` in this form (SHA-1); Dovecot's own
    // `{PBKDF2}` starts with `$1$` and is tested against doveadm.
    check("{PBKDF2}10000$IlfapjA351LuDSwYC0IQ8Q$saHqQTuYnjJN/tmAndT.8mJt.6w", b"password", b"incorrect");
}

/// `{PLAIN-MD4}`: hex MD4 (RFC 1320). Test suite values from RFC 1320 §A.5.
#[test]
fn plain_md4_rfc1320() {
    check("{PLAIN-MD4}a448017aaf21d8525fc10ae87aa6729d", b"abc", b"abd");
    check("{PLAIN-MD4}d9130a8164549fe818874806e1c7014b", b"message digest", b"message digesT");
    check(
        "{PLAIN-MD4}e33b4ddc9c38f2199c3e7b164fcc0536",
        b"12345678901234567890123456789012345678901234567890123456789012345678901234567890",
        b"1234567890",
    );
    check("{plain-md4}31D6CFE0D16AE931B73C59D7E0C089C0", b"", b"a");
}

/// `{PLAIN-TRUNC}<length>-<password>`: defined by Dovecot's
/// `plain_trunc_verify()` in `src/auth/password-scheme.c`: if the stored
/// password is exactly `<length>` bytes, a candidate matches when its first
/// `<length>` bytes equal it; otherwise candidate and stored password must be
/// equal. (doveadm writes `{PLAIN-TRUNC}` without the length, which Dovecot
/// itself then refuses.)
#[test]
fn plain_trunc_dovecot_definition() {
    check("{PLAIN-TRUNC}8-password", b"password", b"passwor");
    check("{PLAIN-TRUNC}8-password", b"password-and-more", b"Password-and-more");
    check("{PLAIN-TRUNC}20-password", b"password", b"password-and-more");
    let opts = VerifyOptions::default();
    // A zero length makes every candidate match, in Dovecot too (see the
    // doveadm fixture); a `needs_rehash` upgrade fixes such entries.
    assert_eq!(verify("{PLAIN-TRUNC}0-", b"anything", &opts), Verification::Match);
    assert!(matches!(verify("{PLAIN-TRUNC}password", b"password", &opts), Verification::Malformed(_)));
}

/// `{MD5}` with a hex or base64 MD5 digest instead of MD5-crypt: Dovecot's
/// `md5_verify()` (`src/auth/password-scheme.c`) falls back to PLAIN-MD5
/// decoding. mailcow's docs give `{MD5}1a1dc91c907325c69271ddf0c944bc72`
/// for "pass" (md5("pass")), which mailcow's own PHP never accepted.
#[test]
fn md5_hex_mistakes() {
    check("{MD5}1a1dc91c907325c69271ddf0c944bc72", b"pass", b"Pass");
    check("{MD5}1A1DC91C907325C69271DDF0C944BC72", b"pass", b"Pass");
    check("{MD5}Gh3JHJBzJcaScd3wyUS8cg==", b"pass", b"Pass");
    check("{PLAIN-MD5}1a1dc91c907325c69271ddf0c944bc72", b"pass", b"Pass");
    let opts = VerifyOptions::default();
    // Wrong length / not a digest: Dovecot reports an error.
    assert!(matches!(verify("{MD5}1a1dc91c907325c6", b"pass", &opts), Verification::Malformed(_)));
}

/// `{ARGON2}`: 389-ds and mailcow imports write Argon2 PHC strings under
/// this name (not a Dovecot scheme). Vector from 389-ds-base's
/// `src/plugins/pwdchan/src/lib.rs` test comments.
#[test]
fn argon2_alias() {
    check(
        "{ARGON2}$argon2id$v=19$m=65536,t=2,p=1$IyTQMsvzB2JHDiWx8fq7Ew$VhYOA7AL0kbRXI5g2kOyyp8St1epkNj7WZyUY4pAIQQ",
        b"password",
        b"password!",
    );
}

/// Unprefixed crypt forms are verified as that form; other unprefixed
/// strings are refused unless plaintext is explicitly allowed.
#[test]
fn unprefixed_forms() {
    let opts = VerifyOptions::default();
    // libxcrypt crypt("pässwörd", "$6$abcdefgh").
    let sha = "$6$abcdefgh$qlUjQo8xiC5dmwOr49rtm.DQdv9onQYoWr0dgDR2SqMkw1296.hIZnRd/ltg71cpfDQGxCw0Bli1kXypCoIxg0";
    assert_eq!(verify(sha, "pässwörd".as_bytes(), &opts), Verification::Match);
    assert_eq!(verify(sha, b"password", &opts), Verification::Mismatch);
    // crypt_blowfish test vector ("U*U", $2a$05$CCCCCCCCCCCCCCCCCCCCC.).
    let blf = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";
    assert_eq!(verify(blf, b"U*U", &opts), Verification::Match);
    assert_eq!(verify(blf, b"U*V", &opts), Verification::Mismatch);

    assert!(matches!(verify("secret", b"secret", &opts), Verification::Unsupported(_)));
    assert!(matches!(verify("{PLAIN", b"{PLAIN", &opts), Verification::Unsupported(_)));
    let allow = VerifyOptions { allow_unprefixed_plaintext: true, ..VerifyOptions::default() };
    assert_eq!(verify("secret", b"secret", &allow), Verification::Match);
    assert_eq!(verify("secret", b"Secret", &allow), Verification::Mismatch);
}

/// Dovecot handles passwords as C strings; a NUL in the candidate never
/// matches (no truncation at the NUL).
#[test]
fn nul_in_candidate_never_matches() {
    let opts = VerifyOptions::default();
    assert_eq!(verify("{PLAIN}abc", b"abc\0", &opts), Verification::Mismatch);
    assert_eq!(verify("{PLAIN}abc", b"abc\0def", &opts), Verification::Mismatch);
    assert_eq!(verify("{PLAIN-TRUNC}3-abc", b"abc\0", &opts), Verification::Mismatch);
}

/// Work limits stop hostile or corrupt stored parameters.
#[test]
fn limits_refuse_expensive_hashes() {
    let opts = VerifyOptions::default();
    let bcrypt31 = "{BLF-CRYPT}$2y$31$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";
    assert!(matches!(verify(bcrypt31, b"x", &opts), Verification::Malformed(_)));
    let argon_huge =
        "{ARGON2ID}$argon2id$v=19$m=4194304,t=3,p=1$IyTQMsvzB2JHDiWx8fq7Ew$VhYOA7AL0kbRXI5g2kOyyp8St1epkNj7WZyUY4pAIQQ";
    assert!(matches!(verify(argon_huge, b"x", &opts), Verification::Malformed(_)));
    let sha_huge = "{SHA512-CRYPT}$6$rounds=999999999$abc$x";
    assert!(matches!(verify(sha_huge, b"x", &opts), Verification::Malformed(_)));
}
