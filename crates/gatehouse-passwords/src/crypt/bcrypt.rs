//! bcrypt (`$2a$`, `$2b$`, `$2x$`, `$2y$`) with the exact semantics of
//! Openwall's crypt_blowfish, which Dovecot bundles for `{BLF-CRYPT}` and
//! libxcrypt uses for `{CRYPT}`:
//!
//! * the key is the password as a C string *including* its terminating NUL,
//!   cycled to fill 72 bytes (so only the first 72 bytes count);
//! * `$2x$` reproduces the historic sign-extension bug for bytes >= 0x80;
//! * `$2a$` applies crypt_blowfish's anti-collision "safety" tweak;
//! * `$2b$` and `$2y$` are the correct algorithm;
//! * the result string is the setting's first 28 characters, the canonical
//!   last salt character, then 31 characters of hash.
//!
//! The Blowfish primitive comes from the `blowfish` crate.

use blowfish::Blowfish;
use zeroize::{Zeroize, Zeroizing};

use crate::encoding::{bcrypt_b64_decode, bcrypt_b64_encode};

/// Smallest cost crypt_blowfish accepts.
pub(crate) const MIN_COST: u32 = 4;
/// Largest cost crypt_blowfish accepts.
pub(crate) const MAX_COST: u32 = 31;

/// Parsed `$2?$NN$<22 salt chars>` setting.
pub(crate) struct Setting {
    /// The variant letter: `a`, `b`, `x` or `y`.
    pub variant: u8,
    /// log2 of the iteration count.
    pub cost: u32,
    salt: [u8; 16],
}

/// Why a bcrypt setting could not be used.
#[derive(Debug)]
pub(crate) enum SettingError {
    /// Not a `$2?$NN$salt` string at all.
    NotBcrypt,
    /// Looks like bcrypt, but crypt_blowfish would refuse it (bad variant,
    /// cost outside 4..=31, or invalid salt characters).
    Invalid(&'static str),
}

/// Parses the first 29 characters of a bcrypt string like crypt_blowfish.
pub(crate) fn parse_setting(s: &[u8]) -> Result<Setting, SettingError> {
    if s.len() < 4 || s[0] != b'$' || s[1] != b'2' || s[3] != b'$' {
        return Err(SettingError::NotBcrypt);
    }
    let variant = s[2];
    if !matches!(variant, b'a' | b'b' | b'x' | b'y') {
        return Err(SettingError::Invalid("unknown bcrypt variant"));
    }
    if s.len() < 7 + 22 {
        return Err(SettingError::Invalid("bcrypt setting is too short"));
    }
    if !(b'0'..=b'3').contains(&s[4]) || !s[5].is_ascii_digit() || s[6] != b'$' {
        return Err(SettingError::Invalid("bcrypt cost must be two digits"));
    }
    let cost = u32::from(s[4] - b'0') * 10 + u32::from(s[5] - b'0');
    if !(MIN_COST..=MAX_COST).contains(&cost) {
        return Err(SettingError::Invalid("bcrypt cost outside 4..=31"));
    }
    let salt = bcrypt_b64_decode::<16>(&s[7..29]).ok_or(SettingError::Invalid("invalid bcrypt salt characters"))?;
    Ok(Setting { variant, cost, salt })
}

/// Builds the two 72-byte Blowfish keys crypt_blowfish derives from a
/// password: `initial` (XORed into P before the salted expansion, with the
/// `$2a$` safety bit applied) and `expanded` (used in the cost loop).
fn derive_keys(password: &[u8], variant: u8) -> (Zeroizing<[u8; 72]>, Zeroizing<[u8; 72]>) {
    let bug = variant == b'x';
    let safety: u32 = if variant == b'a' { 0x10000 } else { 0 };
    let mut expanded = Zeroizing::new([0u8; 72]);
    let mut pos = 0usize;
    let mut sign: u32 = 0;
    let mut diff: u32 = 0;
    let mut words = Zeroizing::new([0u32; 18]);
    for word in words.iter_mut() {
        let mut correct: u32 = 0;
        let mut buggy: u32 = 0;
        for j in 0..4 {
            // The key is a C string: the terminating NUL is part of the cycle.
            let byte = password.get(pos).copied().unwrap_or(0);
            correct = (correct << 8) | u32::from(byte);
            // The historic bug: `char` was signed and sign-extended.
            buggy = (buggy << 8) | (i32::from(byte as i8) as u32);
            if j != 0 {
                sign |= buggy & 0x80;
            }
            if byte == 0 {
                pos = 0;
            } else {
                pos += 1;
            }
        }
        diff |= correct ^ buggy;
        *word = if bug { buggy } else { correct };
    }
    diff |= diff >> 16;
    diff &= 0xffff;
    diff += 0xffff; // bit 16 is set iff some word differed
    sign <<= 9; // bit 7 -> bit 16
    sign &= !diff & safety;

    for (i, w) in words.iter().enumerate() {
        expanded[i * 4..i * 4 + 4].copy_from_slice(&w.to_be_bytes());
    }
    let mut initial = Zeroizing::new(*expanded);
    let first = (words[0] ^ sign).to_be_bytes();
    initial[..4].copy_from_slice(&first);
    diff.zeroize();
    sign.zeroize();
    (initial, expanded)
}

/// The raw 23-byte bcrypt output for a parsed setting.
fn raw_hash(password: &[u8], setting: &Setting) -> Zeroizing<[u8; 24]> {
    let (initial, expanded) = derive_keys(password, setting.variant);
    let mut state = Blowfish::bc_init_state();
    state.salted_expand_key(&setting.salt, &initial[..]);
    for _ in 0..(1u64 << setting.cost) {
        state.bc_expand_key(&expanded[..]);
        state.bc_expand_key(&setting.salt);
    }
    // "OrpheanBeholderScryDoubt" as big-endian words.
    let mut ctext: [u32; 6] = [0x4f72_7068, 0x6561_6e42, 0x6568_6f6c, 0x6465_7253, 0x6372_7944, 0x6f75_6274];
    for pair in ctext.chunks_exact_mut(2) {
        for _ in 0..64 {
            let [l, r] = state.bc_encrypt([pair[0], pair[1]]);
            pair[0] = l;
            pair[1] = r;
        }
    }
    let mut out = Zeroizing::new([0u8; 24]);
    for (i, w) in ctext.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&w.to_be_bytes());
    }
    ctext.zeroize();
    out
}

/// Computes the full crypt string crypt_blowfish would return for `setting`
/// (whose first 29 characters are used), e.g. `$2y$05$…` (60 characters).
pub(crate) fn crypt(password: &[u8], setting_str: &[u8]) -> Result<String, SettingError> {
    let setting = parse_setting(setting_str)?;
    let out = format_hash(password, &setting);
    debug_assert_eq!(&out.as_bytes()[..28], &setting_str[..28]);
    Ok(out)
}

/// Formats `$2?$NN$<salt><hash>`. Re-encoding the decoded salt reproduces the
/// setting's first 21 salt characters and the canonical 22nd one, exactly as
/// crypt_blowfish does.
fn format_hash(password: &[u8], setting: &Setting) -> String {
    let raw = raw_hash(password, setting);
    let mut out = String::with_capacity(60);
    out.push_str(&format!("$2{}${:02}$", char::from(setting.variant), setting.cost));
    bcrypt_b64_encode(&setting.salt, &mut out);
    bcrypt_b64_encode(&raw[..23], &mut out);
    out
}

/// Generates a new `$2y$` hash with a random salt. `cost` must be in 4..=31.
pub(crate) fn generate(password: &[u8], cost: u32) -> String {
    let setting = Setting { variant: b'y', cost, salt: rand::random() };
    format_hash(password, &setting)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Vectors computed with libxcrypt's crypt() on Debian 12 (the same
    // crypt_blowfish code Dovecot bundles), see tests/fixtures/make-vectors.sh.
    const SALT: &str = "$2?$05$CCCCCCCCCCCCCCCCCCCCC.";

    fn setting(v: char) -> String {
        SALT.replace('?', &v.to_string())
    }

    #[test]
    fn sign_extension_bug_and_safety() {
        let cases: &[(&[u8], char, &str)] = &[
            (b"\xa3", 'a', "BvtRGGx3p8o0C5C36uS442Qqnrwofrq"),
            (b"\xa3", 'x', "Qjdj3GXX7D0sFE9jji6wxSTWIhqI3US"),
            (b"\xa3", 'y', "BvtRGGx3p8o0C5C36uS442Qqnrwofrq"),
            (b"\xff\xff\xa3", 'a', "euRNRfAA6e0fjpTfQPPAMU1PCOf9IHq"),
            (b"\xff\xff\xa3", 'b', "Qjdj3GXX7D0sFE9jji6wxSTWIhqI3US"),
            (b"\xff\xa3345", 'x', "VmFQpoXeVuKTzkg2ZRsAf.8PZJZg142"),
            (b"\xd1\x91", 'x', "QZ7A0p9q1Ag9Utfnfl/xif8NiDtVhO."),
        ];
        for (pw, v, hash) in cases {
            let s = setting(*v);
            let out = crypt(pw, s.as_bytes()).unwrap();
            assert_eq!(out, format!("{s}{hash}"), "{pw:?} {v}");
        }
    }

    #[test]
    fn rejects_bad_settings() {
        assert!(matches!(crypt(b"x", b"$2c$05$CCCCCCCCCCCCCCCCCCCCC."), Err(SettingError::Invalid(_))));
        assert!(matches!(crypt(b"x", b"$2y$03$CCCCCCCCCCCCCCCCCCCCC."), Err(SettingError::Invalid(_))));
        assert!(matches!(crypt(b"x", b"$2y$05$CCCCCCCCCCCCCCCCCCCC!."), Err(SettingError::Invalid(_))));
        assert!(matches!(crypt(b"x", b"$6$abc"), Err(SettingError::NotBcrypt)));
    }

    #[test]
    fn canonicalises_last_salt_char() {
        let a = crypt(b"x", b"$2b$04$CCCCCCCCCCCCCCCCCCCCC.").unwrap();
        let b = crypt(b"x", b"$2b$04$CCCCCCCCCCCCCCCCCCCCC/").unwrap();
        assert_eq!(a, b);
        assert!(a.starts_with("$2b$04$CCCCCCCCCCCCCCCCCCCCC."));
    }
}
