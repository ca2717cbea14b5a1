//! The crypt(3) family as Dovecot sees it: each function returns the string
//! `crypt(password, setting)` would return, and callers compare it with the
//! stored hash in constant time, exactly like Dovecot's `crypt_verify`.
//!
//! Behaviour follows libxcrypt (what Debian's Dovecot links for `{CRYPT}`,
//! `{DES-CRYPT}`, `{SHA256-CRYPT}`, `{SHA512-CRYPT}`), Dovecot's bundled
//! crypt_blowfish for `{BLF-CRYPT}`, and Dovecot's own md5crypt for
//! `{MD5-CRYPT}`/`{MD5}`.

pub(crate) mod bcrypt;

use md5::{Digest as _, Md5};
use zeroize::Zeroizing;

use crate::encoding::{crypt_b64_from_24bit, is_crypt_char};

/// Which crypt algorithm a stored string selects, by its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CryptKind {
    /// `$2a$`, `$2b$`, `$2x$`, `$2y$`.
    Bcrypt,
    /// `$1$`.
    Md5,
    /// `$5$`.
    Sha256,
    /// `$6$`.
    Sha512,
    /// Two salt characters from `[./0-9A-Za-z]`, 13 characters in all.
    Des,
    /// `$y$` yescrypt (Debian's default for /etc/shadow).
    Yescrypt,
}

/// A crypt(3) result that cannot be computed.
#[derive(Debug)]
pub(crate) enum CryptError {
    /// A `$id$` we do not implement (yescrypt, scrypt, sha1crypt, BSDi, …).
    Unsupported(String),
    /// The setting is invalid; libxcrypt would return its `*0` failure token.
    /// The reason is kept for `Debug` output when investigating data.
    Invalid(#[allow(dead_code)] &'static str),
}

/// Classifies a stored crypt string by its prefix, as libxcrypt dispatches.
pub(crate) fn classify(stored: &[u8]) -> Result<CryptKind, CryptError> {
    if stored.len() >= 4 && stored.starts_with(b"$2") && stored[3] == b'$' {
        return Ok(CryptKind::Bcrypt);
    }
    if stored.starts_with(b"$1$") {
        return Ok(CryptKind::Md5);
    }
    if stored.starts_with(b"$5$") {
        return Ok(CryptKind::Sha256);
    }
    if stored.starts_with(b"$6$") {
        return Ok(CryptKind::Sha512);
    }
    if stored.starts_with(b"$y$") {
        return Ok(CryptKind::Yescrypt);
    }
    if stored.first() == Some(&b'$') {
        let id_end = stored[1..].iter().position(|&c| c == b'$').map_or(stored.len(), |p| p + 1);
        let id = String::from_utf8_lossy(&stored[1..id_end]);
        let what = match &*id {
            "gy" => "gost-yescrypt ($gy$)",
            "7" => "scrypt ($7$)",
            "sha1" => "sha1crypt ($sha1$)",
            "md5" => "SunMD5 ($md5$)",
            "3" => "NT hash ($3$)",
            _ => "an unknown crypt(3) method",
        };
        return Err(CryptError::Unsupported(format!("CRYPT: {what} is not supported")));
    }
    if stored.first() == Some(&b'_') {
        return Err(CryptError::Unsupported("CRYPT: BSDi extended DES (_…) is not supported".into()));
    }
    if stored.len() >= 2 && is_crypt_char(stored[0]) && is_crypt_char(stored[1]) {
        return Ok(CryptKind::Des);
    }
    Err(CryptError::Invalid("not a crypt(3) string"))
}

/// `crypt(password, setting)` for any supported kind (libxcrypt semantics).
#[cfg(test)]
pub(crate) fn crypt(password: &[u8], setting: &[u8]) -> Result<String, CryptError> {
    match classify(setting)? {
        CryptKind::Bcrypt => bcrypt::crypt(password, setting).map_err(|e| match e {
            bcrypt::SettingError::NotBcrypt => CryptError::Invalid("not a bcrypt string"),
            bcrypt::SettingError::Invalid(m) => CryptError::Invalid(m),
        }),
        CryptKind::Md5 => md5_crypt(password, setting, true),
        CryptKind::Sha256 => sha_crypt(password, setting, ShaVariant::Sha256),
        CryptKind::Sha512 => sha_crypt(password, setting, ShaVariant::Sha512),
        CryptKind::Des => des_crypt(password, setting),
        CryptKind::Yescrypt => Err(CryptError::Unsupported("use yescrypt_verify".into())),
    }
}

/// Memory (KiB) a `$y$` hash needs: 128 · r · N · p bytes.
pub(crate) fn yescrypt_memory_kib(stored: &[u8]) -> Option<u64> {
    if !stored.starts_with(b"$y$") {
        return None;
    }
    let text = core::str::from_utf8(stored).ok()?;
    let params: yescrypt::Params = text.split('$').nth(2)?.parse().ok()?;
    let bytes = 128u128 * u128::from(params.r()) * u128::from(params.n()) * u128::from(params.p());
    u64::try_from(bytes / 1024).ok()
}

/// Verifies a `$y$` yescrypt string (RustCrypto `yescrypt`). `Ok(true)` on
/// match; `Err` when the string cannot be parsed.
pub(crate) fn yescrypt_verify(password: &[u8], stored: &[u8]) -> Result<bool, CryptError> {
    use yescrypt::password_hash::{Error, PasswordVerifier as _};
    let text = core::str::from_utf8(stored).map_err(|_| CryptError::Invalid("invalid yescrypt hash"))?;
    match yescrypt::Yescrypt::default().verify_password(password, text) {
        Ok(()) => Ok(true),
        Err(Error::PasswordInvalid) => Ok(false),
        Err(_) => Err(CryptError::Invalid("invalid yescrypt hash")),
    }
}

/// Traditional DES crypt: 2 salt characters, the first 8 password bytes,
/// 7 bits of each. DES itself comes from `pwhash`.
pub(crate) fn des_crypt(password: &[u8], setting: &[u8]) -> Result<String, CryptError> {
    if setting.len() < 2 || !is_crypt_char(setting[0]) || !is_crypt_char(setting[1]) {
        return Err(CryptError::Invalid("invalid DES salt"));
    }
    let salt = core::str::from_utf8(&setting[..2]).map_err(|_| CryptError::Invalid("invalid DES salt"))?;
    let key = Zeroizing::new(password[..password.len().min(8)].to_vec());
    #[allow(deprecated)] // pwhash deprecates DES for *new* hashes; we only verify.
    pwhash::unix_crypt::hash_with(salt, &*key).map_err(|_| CryptError::Invalid("invalid DES salt"))
}

/// Dovecot's (and libxcrypt's) MD5-crypt. The salt is what follows an
/// optional `$1$`, up to the next `$`, at most 8 characters. With `strict`,
/// libxcrypt's refusal of `:` and newline in the salt is applied.
pub(crate) fn md5_crypt(password: &[u8], setting: &[u8], strict: bool) -> Result<String, CryptError> {
    const MAGIC: &[u8] = b"$1$";
    let rest = setting.strip_prefix(MAGIC).unwrap_or(setting);
    let salt_len = rest.iter().take(8).position(|&c| c == b'$').unwrap_or(rest.len().min(8));
    let salt = &rest[..salt_len];
    if strict && salt.iter().any(|&c| c == b':' || c == b'\n') {
        return Err(CryptError::Invalid("invalid MD5-crypt salt"));
    }

    let mut alt = Md5::new();
    alt.update(password);
    alt.update(salt);
    alt.update(password);
    let alt = Zeroizing::new(alt.finalize());

    let mut ctx = Md5::new();
    ctx.update(password);
    ctx.update(MAGIC);
    ctx.update(salt);
    let mut remaining = password.len();
    while remaining > 0 {
        let n = remaining.min(16);
        ctx.update(&alt[..n]);
        remaining -= n;
    }
    let mut i = password.len();
    while i > 0 {
        if i & 1 == 1 {
            ctx.update([0u8]);
        } else {
            ctx.update(&password[..1]);
        }
        i >>= 1;
    }
    let mut fin = Zeroizing::new([0u8; 16]);
    fin.copy_from_slice(&ctx.finalize());

    for round in 0..1000u32 {
        let mut c = Md5::new();
        if round & 1 == 1 {
            c.update(password);
        } else {
            c.update(&fin[..]);
        }
        if round % 3 != 0 {
            c.update(salt);
        }
        if round % 7 != 0 {
            c.update(password);
        }
        if round & 1 == 1 {
            c.update(&fin[..]);
        } else {
            c.update(password);
        }
        fin.copy_from_slice(&c.finalize());
    }

    let mut out = String::with_capacity(3 + salt.len() + 1 + 22);
    out.push_str("$1$");
    out.push_str(&String::from_utf8_lossy(salt));
    out.push('$');
    let f = &fin;
    crypt_b64_from_24bit(&mut out, f[0], f[6], f[12], 4);
    crypt_b64_from_24bit(&mut out, f[1], f[7], f[13], 4);
    crypt_b64_from_24bit(&mut out, f[2], f[8], f[14], 4);
    crypt_b64_from_24bit(&mut out, f[3], f[9], f[15], 4);
    crypt_b64_from_24bit(&mut out, f[4], f[10], f[5], 4);
    crypt_b64_from_24bit(&mut out, 0, 0, f[11], 2);
    Ok(out)
}

/// SHA-256-crypt or SHA-512-crypt.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ShaVariant {
    /// `$5$`.
    Sha256,
    /// `$6$`.
    Sha512,
}

/// Smallest `rounds=` libxcrypt accepts.
pub(crate) const SHA_ROUNDS_MIN: u32 = 1_000;
/// Largest `rounds=` libxcrypt accepts.
pub(crate) const SHA_ROUNDS_MAX: u32 = 999_999_999;
/// Rounds used when the setting has no `rounds=`.
pub(crate) const SHA_ROUNDS_DEFAULT: u32 = 5_000;

/// Parsed parameters of a `$5$`/`$6$` setting.
pub(crate) struct ShaSetting<'a> {
    /// Number of rounds.
    pub rounds: u32,
    /// Whether `rounds=` was written explicitly.
    pub explicit_rounds: bool,
    /// The salt (at most 16 bytes).
    pub salt: &'a [u8],
}

/// Parses `$5$[rounds=N$]salt[$…]` with libxcrypt's rules: `rounds=` must
/// be a decimal in range without leading zero, and the salt ends at `$` or
/// the end of the string, is cut to 16 characters, and may not contain `:` or
/// a newline.
pub(crate) fn parse_sha_setting(setting: &[u8], variant: ShaVariant) -> Result<ShaSetting<'_>, CryptError> {
    let magic: &[u8] = match variant {
        ShaVariant::Sha256 => b"$5$",
        ShaVariant::Sha512 => b"$6$",
    };
    let mut rest = setting.strip_prefix(magic).ok_or(CryptError::Invalid("wrong SHA-crypt prefix"))?;
    let mut rounds = SHA_ROUNDS_DEFAULT;
    let mut explicit_rounds = false;
    if let Some(num) = rest.strip_prefix(b"rounds=") {
        let digits = num.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 || num[0] == b'0' || num.get(digits) != Some(&b'$') || digits > 10 {
            return Err(CryptError::Invalid("invalid SHA-crypt rounds"));
        }
        let value: u64 = core::str::from_utf8(&num[..digits])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(CryptError::Invalid("invalid SHA-crypt rounds"))?;
        if value < u64::from(SHA_ROUNDS_MIN) || value > u64::from(SHA_ROUNDS_MAX) {
            return Err(CryptError::Invalid("SHA-crypt rounds out of range"));
        }
        rounds = value as u32;
        explicit_rounds = true;
        rest = &num[digits + 1..];
    }
    let salt_end = rest.iter().position(|&c| c == b'$' || c == b':' || c == b'\n').unwrap_or(rest.len());
    if salt_end < rest.len() && rest[salt_end] != b'$' {
        return Err(CryptError::Invalid("invalid SHA-crypt salt"));
    }
    Ok(ShaSetting { rounds, explicit_rounds, salt: &rest[..salt_end.min(16)] })
}

/// `crypt(password, setting)` for `$5$` and `$6$`, built on the raw
/// algorithm from the `sha-crypt` crate.
pub(crate) fn sha_crypt(password: &[u8], setting: &[u8], variant: ShaVariant) -> Result<String, CryptError> {
    let s = parse_sha_setting(setting, variant)?;
    Ok(format_sha_crypt(password, s.salt, s.rounds, s.explicit_rounds, variant))
}

/// Formats a SHA-crypt string from its parts.
pub(crate) fn format_sha_crypt(
    password: &[u8],
    salt: &[u8],
    rounds: u32,
    explicit_rounds: bool,
    variant: ShaVariant,
) -> String {
    let params = sha_crypt::Params::new(rounds).unwrap_or_default();
    let mut out = String::with_capacity(128);
    out.push_str(match variant {
        ShaVariant::Sha256 => "$5$",
        ShaVariant::Sha512 => "$6$",
    });
    if explicit_rounds {
        out.push_str(&format!("rounds={rounds}$"));
    }
    out.push_str(&String::from_utf8_lossy(salt));
    out.push('$');
    match variant {
        ShaVariant::Sha256 => {
            let d = Zeroizing::new(sha_crypt::sha256_crypt(password, salt, params));
            // Byte groups from the SHA-crypt specification.
            const G: [(usize, usize, usize); 10] = [
                (0, 10, 20),
                (21, 1, 11),
                (12, 22, 2),
                (3, 13, 23),
                (24, 4, 14),
                (15, 25, 5),
                (6, 16, 26),
                (27, 7, 17),
                (18, 28, 8),
                (9, 19, 29),
            ];
            for (a, b, c) in G {
                crypt_b64_from_24bit(&mut out, d[a], d[b], d[c], 4);
            }
            crypt_b64_from_24bit(&mut out, 0, d[31], d[30], 3);
        }
        ShaVariant::Sha512 => {
            let d = Zeroizing::new(sha_crypt::sha512_crypt(password, salt, params));
            for k in 0..21 {
                // Groups (0,21,42), (22,43,1), (44,2,23), … from the specification.
                let step = 3 * (k / 3);
                let a = [0, 22, 44][k % 3] + step;
                let b = [21, 43, 2][k % 3] + step;
                let c = [42, 1, 23][k % 3] + step;
                crypt_b64_from_24bit(&mut out, d[a], d[b], d[c], 4);
            }
            crypt_b64_from_24bit(&mut out, 0, 0, d[63], 2);
        }
    }
    out
}

/// A random salt of `len` characters from the crypt alphabet.
pub(crate) fn random_crypt_salt(len: usize) -> String {
    use rand::Rng as _;
    let mut rng = rand::rng();
    (0..len).map(|_| char::from(crate::encoding::CRYPT_B64[rng.random_range(0..64)])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected strings come from libxcrypt's crypt() (Debian 12), see
    // tests/fixtures/make-vectors.sh.
    #[test]
    fn sha512_matches_libxcrypt() {
        let out = crypt("pässwörd".as_bytes(), b"$6$abcdefgh").unwrap();
        assert_eq!(
            out,
            "$6$abcdefgh$qlUjQo8xiC5dmwOr49rtm.DQdv9onQYoWr0dgDR2SqMkw1296.hIZnRd/ltg71cpfDQGxCw0Bli1kXypCoIxg0"
        );
        let out = crypt("pässwörd".as_bytes(), b"$6$rounds=5000$abcdefgh$").unwrap();
        assert!(out.starts_with("$6$rounds=5000$abcdefgh$qlUjQo8x"));
        let out = crypt("pässwörd".as_bytes(), b"$6$abcdefghijklmnopqrstu$").unwrap();
        assert_eq!(
            out,
            "$6$abcdefghijklmnop$Z142AM4CbyHnvFikRKauX.vgsnvjYLvt4bZlZZZrlgVhDW0zltnUun6G9I5xvVirZ/Y9MRz96lJh5eoUicidR."
        );
        assert!(crypt(b"x", b"$6$rounds=05000$abc").is_err());
        assert!(crypt(b"x", b"$6$rounds=500$abc").is_err());
        assert!(crypt(b"x", b"$6$abc:def$").is_err());
    }

    #[test]
    fn md5_and_des_match_libxcrypt() {
        assert_eq!(crypt("pässwörd".as_bytes(), b"$1$abcdefghijk$").unwrap(), "$1$abcdefgh$xYuxUFvxUOR4Pd6a7EeUS0");
        assert_eq!(crypt("pässwörd".as_bytes(), b"$1$$").unwrap(), "$1$$G9xLeipIGv89GurZHGiz00");
        assert_eq!(crypt("pässwörd".as_bytes(), b"ab").unwrap(), "abzp3RXJm5gNA");
        assert_eq!(crypt(b"", b"ab").unwrap(), "abmF1QH4PEr.E");
        assert!(crypt(b"x", b"!!").is_err());
    }

    #[test]
    fn classify_unsupported() {
        assert!(matches!(classify(b"$gy$j9T$abc$def"), Err(CryptError::Unsupported(_))));
        assert!(matches!(classify(b"_J9..salt"), Err(CryptError::Unsupported(_))));
    }
}
