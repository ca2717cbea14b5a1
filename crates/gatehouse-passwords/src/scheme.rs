//! Scheme names and the `{SCHEME[.ENC]}payload` syntax: which schemes exist,
//! how a stored string is split, and how its payload is decoded (Dovecot's
//! `password_get_scheme`, `password_scheme_lookup` and `password_decode`).

use core::fmt;
use zeroize::Zeroizing;

use crate::encoding::{dovecot_base64_decode, hex_decode};

/// A password scheme Gatehouse can verify.
///
/// Dovecot's names, plus `{ARGON2}` (389-ds, mailcow imports) and the
/// 389-ds/FreeIPA `{PBKDF2-SHA512}`, `{PBKDF2-SHA256}`, `{PBKDF2-SHA1}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scheme {
    /// `{ARGON2I}`: libsodium Argon2 PHC string.
    Argon2i,
    /// `{ARGON2ID}`: libsodium Argon2 PHC string.
    Argon2id,
    /// `{ARGON2}`: Argon2i or Argon2id PHC string (not a Dovecot name).
    Argon2,
    /// `{BLF-CRYPT}`: bcrypt `$2a$`/`$2b$`/`$2x$`/`$2y$`.
    BlfCrypt,
    /// `{CRYPT}`: crypt(3), dispatched on the hash's prefix.
    Crypt,
    /// `{DES-CRYPT}`: crypt(3), dispatched on the hash's prefix.
    DesCrypt,
    /// `{SHA256-CRYPT}`: crypt(3), dispatched on the hash's prefix.
    Sha256Crypt,
    /// `{SHA512-CRYPT}`: crypt(3), dispatched on the hash's prefix.
    Sha512Crypt,
    /// `{MD5-CRYPT}`: `$1$` MD5-crypt.
    Md5Crypt,
    /// `{MD5}`: MD5-crypt, or a PLAIN-MD5 digest (hex or base64).
    Md5,
    /// `{PBKDF2}`: Dovecot's `$1$salt$rounds$hex` PBKDF2-HMAC-SHA1
    /// (also accepts 389-ds' `rounds$ab64salt$ab64hash`).
    Pbkdf2,
    /// `{PBKDF2-SHA1}`: 389-ds `rounds$ab64salt$ab64hash`.
    Pbkdf2Sha1,
    /// `{PBKDF2-SHA256}`: 389-ds `rounds$ab64salt$ab64hash`.
    Pbkdf2Sha256,
    /// `{PBKDF2-SHA512}`: FreeIPA/389-ds `rounds$ab64salt$ab64hash`.
    Pbkdf2Sha512,
    /// `{SCRAM-SHA-1}`: `iter,salt,storedkey,serverkey`.
    ScramSha1,
    /// `{SCRAM-SHA-256}`: `iter,salt,storedkey,serverkey`.
    ScramSha256,
    /// `{SHA}`: unsalted SHA-1.
    Sha,
    /// `{SHA1}`: unsalted SHA-1.
    Sha1,
    /// `{SHA256}`: unsalted SHA-256.
    Sha256,
    /// `{SHA512}`: unsalted SHA-512.
    Sha512,
    /// `{SSHA}`: salted SHA-1.
    Ssha,
    /// `{SSHA256}`: salted SHA-256.
    Ssha256,
    /// `{SSHA512}`: salted SHA-512.
    Ssha512,
    /// `{SMD5}`: salted MD5.
    Smd5,
    /// `{LDAP-MD5}`: unsalted MD5, base64.
    LdapMd5,
    /// `{PLAIN-MD5}`: unsalted MD5, hex.
    PlainMd5,
    /// `{PLAIN-MD4}`: unsalted MD4, hex.
    PlainMd4,
    /// `{PLAIN}`: plaintext.
    Plain,
    /// `{CLEAR}`: plaintext.
    Clear,
    /// `{CLEARTEXT}`: plaintext.
    Cleartext,
    /// `{PLAIN-TRUNC}`: `<length>-<plaintext>`, possibly truncated.
    PlainTrunc,
    /// `{CRAM-MD5}`: HMAC-MD5 inner/outer context, hex.
    CramMd5,
    /// `{HMAC-MD5}`: same as CRAM-MD5.
    HmacMd5,
}

/// How the payload after `}` is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// Raw bytes.
    None,
    /// Standard base64 with padding.
    Base64,
    /// Hexadecimal.
    Hex,
}

/// Static facts Dovecot keeps per scheme.
struct Info {
    name: &'static str,
    default_encoding: Encoding,
    /// Expected decoded length, 0 if variable. Non-zero enables hex/base64
    /// auto-detection.
    raw_len: usize,
}

impl Scheme {
    /// Every scheme, for listing and tests.
    pub const ALL: [Scheme; 33] = [
        Scheme::Argon2i,
        Scheme::Argon2id,
        Scheme::Argon2,
        Scheme::BlfCrypt,
        Scheme::Crypt,
        Scheme::DesCrypt,
        Scheme::Sha256Crypt,
        Scheme::Sha512Crypt,
        Scheme::Md5Crypt,
        Scheme::Md5,
        Scheme::Pbkdf2,
        Scheme::Pbkdf2Sha1,
        Scheme::Pbkdf2Sha256,
        Scheme::Pbkdf2Sha512,
        Scheme::ScramSha1,
        Scheme::ScramSha256,
        Scheme::Sha,
        Scheme::Sha1,
        Scheme::Sha256,
        Scheme::Sha512,
        Scheme::Ssha,
        Scheme::Ssha256,
        Scheme::Ssha512,
        Scheme::Smd5,
        Scheme::LdapMd5,
        Scheme::PlainMd5,
        Scheme::PlainMd4,
        Scheme::Plain,
        Scheme::Clear,
        Scheme::Cleartext,
        Scheme::PlainTrunc,
        Scheme::CramMd5,
        Scheme::HmacMd5,
    ];

    fn info(self) -> Info {
        use Encoding::{Base64, Hex, None};
        let (name, default_encoding, raw_len) = match self {
            Scheme::Argon2i => ("ARGON2I", None, 0),
            Scheme::Argon2id => ("ARGON2ID", None, 0),
            Scheme::Argon2 => ("ARGON2", None, 0),
            Scheme::BlfCrypt => ("BLF-CRYPT", None, 0),
            Scheme::Crypt => ("CRYPT", None, 0),
            Scheme::DesCrypt => ("DES-CRYPT", None, 0),
            Scheme::Sha256Crypt => ("SHA256-CRYPT", None, 0),
            Scheme::Sha512Crypt => ("SHA512-CRYPT", None, 0),
            Scheme::Md5Crypt => ("MD5-CRYPT", None, 0),
            Scheme::Md5 => ("MD5", None, 0),
            Scheme::Pbkdf2 => ("PBKDF2", None, 0),
            Scheme::Pbkdf2Sha1 => ("PBKDF2-SHA1", None, 0),
            Scheme::Pbkdf2Sha256 => ("PBKDF2-SHA256", None, 0),
            Scheme::Pbkdf2Sha512 => ("PBKDF2-SHA512", None, 0),
            Scheme::ScramSha1 => ("SCRAM-SHA-1", None, 0),
            Scheme::ScramSha256 => ("SCRAM-SHA-256", None, 0),
            Scheme::Sha => ("SHA", Base64, 20),
            Scheme::Sha1 => ("SHA1", Base64, 20),
            Scheme::Sha256 => ("SHA256", Base64, 32),
            Scheme::Sha512 => ("SHA512", Base64, 64),
            Scheme::Ssha => ("SSHA", Base64, 0),
            Scheme::Ssha256 => ("SSHA256", Base64, 0),
            Scheme::Ssha512 => ("SSHA512", Base64, 0),
            Scheme::Smd5 => ("SMD5", Base64, 0),
            Scheme::LdapMd5 => ("LDAP-MD5", Base64, 16),
            Scheme::PlainMd5 => ("PLAIN-MD5", Hex, 16),
            Scheme::PlainMd4 => ("PLAIN-MD4", Hex, 16),
            Scheme::Plain => ("PLAIN", None, 0),
            Scheme::Clear => ("CLEAR", None, 0),
            Scheme::Cleartext => ("CLEARTEXT", None, 0),
            Scheme::PlainTrunc => ("PLAIN-TRUNC", None, 0),
            Scheme::CramMd5 => ("CRAM-MD5", Hex, 32),
            Scheme::HmacMd5 => ("HMAC-MD5", Hex, 32),
        };
        Info { name, default_encoding, raw_len }
    }

    /// The canonical (Dovecot) upper-case name, e.g. `"BLF-CRYPT"`.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// Looks a scheme name up case-insensitively, without encoding suffix.
    pub fn from_name(name: &str) -> Option<Scheme> {
        Scheme::ALL.iter().copied().find(|s| s.name().eq_ignore_ascii_case(name))
    }

    pub(crate) fn default_encoding(self) -> Encoding {
        self.info().default_encoding
    }

    pub(crate) fn raw_len(self) -> usize {
        self.info().raw_len
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Dovecot scheme names we know but cannot verify, with the reason.
fn known_unsupported(name: &str) -> Option<&'static str> {
    const LIST: [(&str, &str); 6] = [
        ("DIGEST-MD5", "DIGEST-MD5 hashes include the user name and realm"),
        ("OTP", "OTP (one-time passwords) is not supported"),
        ("SKEY", "S/KEY is not supported"),
        ("RPA", "RPA is not supported"),
        ("LANMAN", "LANMAN is not supported"),
        ("NTLM", "NTLM is not supported"),
    ];
    LIST.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, why)| *why)
}

/// A stored string split into scheme, encoding and payload.
#[derive(Debug)]
pub(crate) struct Parsed<'a> {
    /// The scheme that verifies the payload.
    pub scheme: Scheme,
    /// Encoding named by a `.HEX`/`.B64`/`.BASE64` suffix, if any.
    pub explicit_encoding: Option<Encoding>,
    /// Everything after the `}` (or the whole string when unprefixed).
    pub payload: &'a str,
}

/// Why a stored string cannot be parsed.
#[derive(Debug)]
pub(crate) enum ParseError {
    /// Unknown or unsupported scheme (with a message for the log).
    Unsupported(String),
    /// No prefix, not a recognisable crypt form; may be plaintext.
    NoPrefix,
}

/// Splits `{NAME[.ENC]}payload`. Unprefixed strings in a recognisable crypt
/// or PHC form are mapped to the matching scheme; Dovecot's own rule that an
/// unprefixed `$1$salt$hash$junk` is MD5-CRYPT cut at the third `$` applies.
pub(crate) fn parse(stored: &str) -> Result<Parsed<'_>, ParseError> {
    if let Some(rest) = stored.strip_prefix('{')
        && let Some(end) = rest.find('}')
    {
        let full_name = &rest[..end];
        let payload = &rest[end + 1..];
        let (name, suffix) = match full_name.find('.') {
            Some(dot) => (&full_name[..dot], Some(&full_name[dot + 1..])),
            None => (full_name, None),
        };
        let explicit_encoding = match suffix {
            None => None,
            Some(s) if s.eq_ignore_ascii_case("hex") => Some(Encoding::Hex),
            Some(s) if s.eq_ignore_ascii_case("b64") || s.eq_ignore_ascii_case("base64") => Some(Encoding::Base64),
            Some(s) => {
                return Err(ParseError::Unsupported(format!("unknown encoding suffix .{s} in scheme {full_name}")));
            }
        };
        let scheme = match Scheme::from_name(name) {
            Some(s) => s,
            None => {
                let msg = match known_unsupported(name) {
                    Some(why) => format!("unsupported password scheme {name}: {why}"),
                    None => format!("unknown password scheme {name}"),
                };
                return Err(ParseError::Unsupported(msg));
            }
        };
        return Ok(Parsed { scheme, explicit_encoding, payload });
    }
    let b = stored.as_bytes();
    let (scheme, payload) = if let Some(after) = stored.strip_prefix("$1$") {
        // $1$<salt>$<hash>[$<ignored>]
        match after.find('$') {
            Some(p) => {
                let hash_start = 3 + p + 1;
                let end = stored[hash_start..].find('$').map_or(stored.len(), |q| hash_start + q);
                (Scheme::Md5Crypt, &stored[..end])
            }
            None => return Err(ParseError::NoPrefix),
        }
    } else if b.len() >= 4 && b.starts_with(b"$2") && b[3] == b'$' {
        (Scheme::BlfCrypt, stored)
    } else if stored.starts_with("$5$") {
        (Scheme::Sha256Crypt, stored)
    } else if stored.starts_with("$6$") {
        (Scheme::Sha512Crypt, stored)
    } else if stored.starts_with("$argon2id$") {
        (Scheme::Argon2id, stored)
    } else if stored.starts_with("$argon2i$") {
        (Scheme::Argon2i, stored)
    } else {
        return Err(ParseError::NoPrefix);
    };
    Ok(Parsed { scheme, explicit_encoding: None, payload })
}

/// Decodes a payload like Dovecot's `password_decode`: explicit suffix wins;
/// otherwise schemes with a fixed digest length guess hex when the payload
/// is exactly twice that length (falling back to base64), others use their
/// default encoding. The decoded length must match a fixed digest length.
pub(crate) fn decode(scheme: Scheme, explicit: Option<Encoding>, payload: &str) -> Result<Zeroizing<Vec<u8>>, String> {
    let raw_len = scheme.raw_len();
    let bytes = payload.as_bytes();
    let decoded = match explicit {
        Some(enc) => decode_as(enc, bytes).ok_or_else(|| invalid(enc))?,
        None => {
            let enc = scheme.default_encoding();
            if enc != Encoding::None && raw_len != 0 {
                if bytes.len() == raw_len * 2 {
                    match hex_decode(bytes) {
                        Some(d) => d,
                        None => dovecot_base64_decode(bytes).ok_or_else(|| invalid(Encoding::Base64))?,
                    }
                } else {
                    dovecot_base64_decode(bytes).ok_or_else(|| invalid(Encoding::Base64))?
                }
            } else {
                decode_as(enc, bytes).ok_or_else(|| invalid(enc))?
            }
        }
    };
    if raw_len != 0 && decoded.len() != raw_len {
        return Err(format!("{} input length isn't valid ({} instead of {raw_len})", scheme.name(), decoded.len()));
    }
    Ok(decoded)
}

fn decode_as(enc: Encoding, bytes: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    match enc {
        Encoding::None => Some(Zeroizing::new(bytes.to_vec())),
        Encoding::Base64 => dovecot_base64_decode(bytes),
        Encoding::Hex => hex_decode(bytes),
    }
}

fn invalid(enc: Encoding) -> String {
    match enc {
        Encoding::Hex => "input isn't valid HEX encoded data".into(),
        _ => "input isn't valid base64 encoded data".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_case_insensitive() {
        assert_eq!(Scheme::from_name("blf-crypt"), Some(Scheme::BlfCrypt));
        assert_eq!(Scheme::from_name("Ssha512"), Some(Scheme::Ssha512));
        assert_eq!(Scheme::from_name("NOPE"), None);
        for s in Scheme::ALL {
            assert_eq!(Scheme::from_name(s.name()), Some(s));
        }
    }

    #[test]
    fn parse_suffix_and_unprefixed() {
        let p = parse("{ssha256.hex}00").unwrap();
        assert_eq!(p.scheme, Scheme::Ssha256);
        assert_eq!(p.explicit_encoding, Some(Encoding::Hex));
        assert!(matches!(parse("{SHA.foo}x"), Err(ParseError::Unsupported(_))));
        assert!(matches!(parse("{DIGEST-MD5}x"), Err(ParseError::Unsupported(_))));
        let p = parse("$1$salt$hash$junk").unwrap();
        assert_eq!((p.scheme, p.payload), (Scheme::Md5Crypt, "$1$salt$hash"));
        assert!(matches!(parse("plaintext"), Err(ParseError::NoPrefix)));
        assert!(matches!(parse("{PLAIN"), Err(ParseError::NoPrefix)));
    }
}
