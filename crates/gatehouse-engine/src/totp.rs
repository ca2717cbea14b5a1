//! TOTP (RFC 6238), the second factor of web logins: secrets, code checks, recovery codes. The engine decides
//! the second factor with these ([`crate::Engine::second_factor`]); the web layer shows enrolment QR codes.
//!
//! Pure logic, no IO; the directory keeps the secrets and enforces replay protection (claiming the step
//! [`check_code`] matched). The parameters are the ones every
//! authenticator app understands: HMAC-SHA1, 6 digits, 30-second steps, one step of clock skew either way.
//! HOTP (RFC 4226) is a few lines over the `hmac` and `sha1` crates the password schemes already use, so no
//! TOTP crate is needed.
//!
//! Recovery codes are 12 random characters from a 32-symbol alphabet without look-alikes (60 bits), shown
//! as `abcd-efgh-jkmn`. They are high-entropy, so a fast hash (SHA-256) is the right way to store them.

use data_encoding::BASE32_NOPAD;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Length of a TOTP step in seconds.
pub const PERIOD: u64 = 30;
/// Digits of a code.
pub const DIGITS: u32 = 6;
/// Bytes of a new secret (160 bits, the HMAC-SHA1 block output size RFC 4226 recommends).
pub const SECRET_BYTES: usize = 20;
/// How many recovery codes [`new_recovery_codes`] makes.
pub const RECOVERY_CODE_COUNT: usize = 10;

/// Symbols of recovery codes: digits and lowercase letters without `i`, `l`, `o` and `u` (Crockford's
/// base32 alphabet), 32 of them, so each character carries 5 bits.
const RECOVERY_ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
/// Characters per recovery code (60 bits), in groups of [`RECOVERY_GROUP`].
const RECOVERY_LENGTH: usize = 12;
const RECOVERY_GROUP: usize = 4;

/// A new random secret: [`SECRET_BYTES`] bytes, base32 without padding (32 characters, uppercase).
pub fn new_secret() -> String {
    let bytes: [u8; SECRET_BYTES] = rand::random();
    BASE32_NOPAD.encode(&bytes)
}

/// Checks a code typed by a user against the base32 `secret` at `unix_time`.
///
/// Accepts exactly [`DIGITS`] digits (spaces and other whitespace are removed first), compares in constant
/// time against the steps before, at and after the current one, and returns the matching step. The caller
/// must then claim the step with `Store::use_totp_step`, which refuses a step already used (replay). An
/// undecodable secret matches nothing.
pub fn check_code(secret: &str, code: &str, unix_time: u64) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let key = decode_secret(secret)?;
    let now = (unix_time / PERIOD) as i64;
    let mut found = None;
    // All three steps are computed and compared, whatever matches, so the time taken says nothing.
    for step in [now - 1, now, now + 1] {
        if step < 0 {
            continue;
        }
        let expected = format!("{:0width$}", hotp(&key, step as u64, DIGITS), width = DIGITS as usize);
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) {
            found = Some(step);
        }
    }
    found
}

/// The code for `unix_time`, as an authenticator app shows it (for tests and diagnostics); `None` for an
/// undecodable secret.
pub fn current_code(secret: &str, unix_time: u64) -> Option<String> {
    let key = decode_secret(secret)?;
    Some(format!("{:0width$}", hotp(&key, unix_time / PERIOD, DIGITS), width = DIGITS as usize))
}

/// Decodes a base32 secret leniently: any case, spaces and `=` padding ignored.
fn decode_secret(secret: &str) -> Option<Vec<u8>> {
    let cleaned: String =
        secret.chars().filter(|c| !c.is_whitespace() && *c != '=').map(|c| c.to_ascii_uppercase()).collect();
    BASE32_NOPAD.decode(cleaned.as_bytes()).ok().filter(|key| !key.is_empty())
}

/// HOTP (RFC 4226) with HMAC-SHA1: dynamic truncation of the MAC of the big-endian counter.
fn hotp(key: &[u8], counter: u64, digits: u32) -> u32 {
    let mut mac = Hmac::<Sha1>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[digest.len() - 1] & 0x0f);
    let binary =
        u32::from_be_bytes([digest[offset], digest[offset + 1], digest[offset + 2], digest[offset + 3]]) & 0x7fff_ffff;
    binary % 10u32.pow(digits)
}

/// [`RECOVERY_CODE_COUNT`] new recovery codes like `abcd-ef12-jkmn` (12 symbols, 60 bits each). Show them to
/// the user once; store only [`hash_recovery_code`] of each.
pub fn new_recovery_codes() -> Vec<String> {
    (0..RECOVERY_CODE_COUNT)
        .map(|_| {
            let bytes: [u8; RECOVERY_LENGTH] = rand::random();
            let mut code = String::with_capacity(RECOVERY_LENGTH + RECOVERY_LENGTH / RECOVERY_GROUP);
            for (i, byte) in bytes.iter().enumerate() {
                if i > 0 && i % RECOVERY_GROUP == 0 {
                    code.push('-');
                }
                // 256 is a multiple of 32: every symbol is equally likely.
                code.push(char::from(RECOVERY_ALPHABET[usize::from(byte & 31)]));
            }
            code
        })
        .collect()
}

/// A recovery code as typed, normalised: lowercase, without whitespace or dashes, with the look-alikes the
/// alphabet leaves out read as what they resemble (`o` → `0`, `i` and `l` → `1`).
pub fn normalise_recovery_code(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| match c.to_ascii_lowercase() {
            'o' => '0',
            'i' | 'l' => '1',
            other => other,
        })
        .collect()
}

/// The stored form of a recovery code: SHA-256 (hex) of its [normalised](normalise_recovery_code) form.
pub fn hash_recovery_code(code: &str) -> String {
    hex::encode(Sha256::digest(normalise_recovery_code(code).as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The RFC 6238 test key for SHA1, in base32.
    fn rfc_secret() -> String {
        BASE32_NOPAD.encode(b"12345678901234567890")
    }

    #[test]
    fn rfc_6238_sha1_vectors() {
        let key = b"12345678901234567890";
        for (time, expected) in [
            (59u64, 94287082u32),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ] {
            assert_eq!(hotp(key, time / PERIOD, 8), expected, "8 digits at {time}");
            let six = format!("{:06}", expected % 1_000_000);
            assert_eq!(current_code(&rfc_secret(), time).unwrap(), six, "6 digits at {time}");
            assert_eq!(check_code(&rfc_secret(), &six, time), Some((time / PERIOD) as i64), "check at {time}");
        }
        assert_eq!(current_code(&rfc_secret(), 1111111109).unwrap(), "081804");
        assert_eq!(current_code(&rfc_secret(), 59).unwrap(), "287082");
    }

    #[test]
    fn rfc_4226_hotp_vectors() {
        let expected = [755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489];
        for (counter, code) in expected.into_iter().enumerate() {
            assert_eq!(hotp(b"12345678901234567890", counter as u64, 6), code);
        }
    }

    #[test]
    fn one_step_of_skew_either_way() {
        let secret = rfc_secret();
        // 287082 is the code of step 1 (t = 30..59).
        assert_eq!(check_code(&secret, "287082", 59), Some(1));
        assert_eq!(check_code(&secret, "287082", 30 + 30), Some(1), "one step late");
        assert_eq!(check_code(&secret, "287082", 0), Some(1), "one step early");
        assert_eq!(check_code(&secret, "287082", 59 + 60), None, "two steps late");
        // Step 0 at time 0: the step before does not exist.
        assert_eq!(check_code(&secret, "755224", 0), Some(0));
    }

    #[test]
    fn codes_must_be_exactly_six_digits() {
        let secret = rfc_secret();
        assert_eq!(check_code(&secret, " 287 082 ", 59), Some(1), "spaces are removed");
        assert_eq!(check_code(&secret, "287082\t", 59), Some(1));
        for bad in ["", "28708", "2870820", "94287082", "28708a", "287-082", "２８７０８２", "000000"] {
            assert_eq!(check_code(&secret, bad, 59), None, "{bad:?}");
        }
        assert_eq!(check_code("not base32!", "287082", 59), None);
        assert_eq!(check_code("", "287082", 59), None);
    }

    #[test]
    fn secrets_are_lenient_on_case_spacing_and_padding() {
        let secret = rfc_secret();
        let lower = secret.to_lowercase();
        assert_eq!(check_code(&lower, "287082", 59), Some(1));
        let spaced: String =
            secret.as_bytes().chunks(4).map(|c| std::str::from_utf8(c).unwrap()).collect::<Vec<_>>().join(" ");
        assert_eq!(check_code(&spaced, "287082", 59), Some(1));
        let padded = BASE32_NOPAD.encode(b"1234567890") + "======";
        assert!(check_code(&padded, &current_code(&padded, 1000).unwrap(), 1000).is_some());
    }

    #[test]
    fn new_secrets_are_160_bit_base32() {
        let a = new_secret();
        let b = new_secret();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_uppercase() || (b'2'..=b'7').contains(&c)), "{a}");
        assert_eq!(BASE32_NOPAD.decode(a.as_bytes()).unwrap().len(), SECRET_BYTES);
        assert_ne!(a, b);
        let code = current_code(&a, 1_700_000_000).unwrap();
        assert_eq!(check_code(&a, &code, 1_700_000_000), Some(1_700_000_000 / 30));
    }

    #[test]
    fn recovery_codes_look_right_and_differ() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODE_COUNT);
        for code in &codes {
            assert_eq!(code.len(), 14, "{code}");
            let groups: Vec<&str> = code.split('-').collect();
            assert_eq!(groups.len(), 3, "{code}");
            assert!(groups.iter().all(|g| g.len() == 4));
            assert!(code.bytes().filter(|b| *b != b'-').all(|b| RECOVERY_ALPHABET.contains(&b)), "{code}");
            assert!(!code.contains(['i', 'l', 'o', 'u']));
        }
        let unique: std::collections::BTreeSet<_> = codes.iter().collect();
        assert_eq!(unique.len(), codes.len());
        // log2(32) * 12 = 60 bits.
        assert_eq!(RECOVERY_ALPHABET.len(), 32);
        assert!((RECOVERY_ALPHABET.len() as f64).log2() * RECOVERY_LENGTH as f64 >= 60.0);
    }

    #[test]
    fn recovery_codes_are_normalised_before_hashing() {
        assert_eq!(normalise_recovery_code(" ABCD-ef12 - jkmn "), "abcdef12jkmn");
        assert_eq!(normalise_recovery_code("oOiIlL"), "001111");
        let hash = hash_recovery_code("abcd-ef12-jkmn");
        assert_eq!(hash.len(), 64);
        assert!(hash.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(hash_recovery_code("ABCD EF12 JKMN"), hash);
        assert_eq!(hash_recovery_code("abcdef12jkmn"), hash);
        assert_ne!(hash_recovery_code("abcd-ef12-jkmm"), hash);
        // SHA-256("abc") for a fixed vector.
        assert_eq!(hash_recovery_code("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
