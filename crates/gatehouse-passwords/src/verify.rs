//! Verification of a candidate password against a stored `{SCHEME}hash`,
//! scheme by scheme, following Dovecot 2.3's `password_verify()` semantics.
//! Every comparison of secret-dependent bytes is constant-time.

use hmac::{KeyInit as _, Mac as _};
use md4::Md4;
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

use crate::crypt::{self, CryptError, CryptKind};
use crate::encoding::{dovecot_base64_decode, hex_decode};
use crate::scheme::{self, Encoding, ParseError, Scheme};
use crate::{Verification, VerifyLimits, VerifyOptions};

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

fn matched(ok: bool) -> Verification {
    if ok { Verification::Match } else { Verification::Mismatch }
}

fn malformed(scheme: Scheme, msg: impl core::fmt::Display) -> Verification {
    Verification::Malformed(format!("{}: {msg}", scheme.name()))
}

/// Entry point behind [`crate::verify`].
pub(crate) fn verify(stored: &str, candidate: &[u8], options: &VerifyOptions) -> Verification {
    let parsed = match scheme::parse(stored) {
        Ok(p) => p,
        Err(ParseError::Unsupported(msg)) => return Verification::Unsupported(msg),
        Err(ParseError::NoPrefix) => {
            if !options.allow_unprefixed_plaintext {
                return Verification::Unsupported(
                    "stored password has no {SCHEME} prefix and is not a recognised crypt form \
                     (unprefixed plaintext is disabled)"
                        .into(),
                );
            }
            if candidate.contains(&0) {
                return Verification::Mismatch;
            }
            return matched(ct_eq(stored.as_bytes(), candidate));
        }
    };
    // Dovecot treats the candidate as a C string, so a NUL can never be part
    // of a password it verifies. Refuse rather than truncate.
    if candidate.contains(&0) {
        return Verification::Mismatch;
    }
    let raw = match scheme::decode(parsed.scheme, parsed.explicit_encoding, parsed.payload) {
        Ok(raw) => raw,
        Err(msg) => return malformed(parsed.scheme, msg),
    };
    verify_raw(parsed.scheme, &raw, candidate, &options.limits)
}

/// Verifies decoded payload bytes for one scheme.
fn verify_raw(scheme: Scheme, raw: &[u8], pw: &[u8], limits: &VerifyLimits) -> Verification {
    match scheme {
        Scheme::Plain | Scheme::Clear | Scheme::Cleartext => matched(ct_eq(raw, pw)),
        Scheme::PlainTrunc => plain_trunc(raw, pw),
        Scheme::Sha | Scheme::Sha1 => matched(ct_eq(&Sha1::digest(pw), raw)),
        Scheme::Sha256 => matched(ct_eq(&Sha256::digest(pw), raw)),
        Scheme::Sha512 => matched(ct_eq(&Sha512::digest(pw), raw)),
        Scheme::PlainMd5 | Scheme::LdapMd5 => matched(ct_eq(&Md5::digest(pw), raw)),
        Scheme::PlainMd4 => matched(ct_eq(&Md4::digest(pw), raw)),
        Scheme::Ssha => salted::<Sha1>(scheme, raw, pw),
        Scheme::Ssha256 => salted::<Sha256>(scheme, raw, pw),
        Scheme::Ssha512 => salted::<Sha512>(scheme, raw, pw),
        Scheme::Smd5 => salted::<Md5>(scheme, raw, pw),
        Scheme::Md5 => md5_scheme(raw, pw),
        Scheme::Md5Crypt => match crypt::md5_crypt(pw, raw, false) {
            Ok(out) => matched(ct_eq(out.as_bytes(), raw)),
            Err(e) => crypt_error(e),
        },
        Scheme::BlfCrypt => blf_crypt(raw, pw, limits),
        Scheme::Crypt | Scheme::DesCrypt | Scheme::Sha256Crypt | Scheme::Sha512Crypt => {
            crypt_family(scheme, raw, pw, limits)
        }
        Scheme::Argon2 | Scheme::Argon2i | Scheme::Argon2id => argon2(scheme, raw, pw, limits),
        Scheme::Pbkdf2 => {
            if raw.starts_with(b"$1$") {
                dovecot_pbkdf2(raw, pw, limits)
            } else {
                ldap_pbkdf2::<Sha1>(scheme, raw, pw, limits)
            }
        }
        Scheme::Pbkdf2Sha1 => ldap_pbkdf2::<Sha1>(scheme, raw, pw, limits),
        Scheme::Pbkdf2Sha256 => ldap_pbkdf2::<Sha256>(scheme, raw, pw, limits),
        Scheme::Pbkdf2Sha512 => ldap_pbkdf2::<Sha512>(scheme, raw, pw, limits),
        Scheme::ScramSha1 => scram::<Sha1>(scheme, raw, pw, limits),
        Scheme::ScramSha256 => scram::<Sha256>(scheme, raw, pw, limits),
        Scheme::CramMd5 | Scheme::HmacMd5 => matched(ct_eq(&cram_md5_context(pw)[..], raw)),
    }
}

/// Dovecot's CRAM-MD5 "context": the MD5 chaining values after compressing
/// the outer (`key ^ 0x5c`) and inner (`key ^ 0x36`) HMAC pad blocks, each as
/// four little-endian words (`hmac_md5_get_cram_context`). Keys longer than
/// 64 bytes are first hashed, as in HMAC.
pub(crate) fn cram_md5_context(pw: &[u8]) -> Zeroizing<[u8; 32]> {
    const IV: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];
    let mut key = Zeroizing::new([0u8; 64]);
    if pw.len() > 64 {
        key[..16].copy_from_slice(&Md5::digest(pw));
    } else {
        key[..pw.len()].copy_from_slice(pw);
    }
    let mut out = Zeroizing::new([0u8; 32]);
    for (half, pad) in [(0usize, 0x5cu8), (1, 0x36u8)] {
        let mut block = Zeroizing::new([0u8; 64]);
        for (b, k) in block.iter_mut().zip(key.iter()) {
            *b = k ^ pad;
        }
        let mut state = IV;
        md5::block_api::compress(&mut state, core::slice::from_ref(&*block));
        for (i, w) in state.iter().enumerate() {
            out[half * 16 + i * 4..half * 16 + i * 4 + 4].copy_from_slice(&w.to_le_bytes());
        }
    }
    out
}

/// `<digest><salt>`: any salt length of at least one byte.
fn salted<D: Digest>(scheme: Scheme, raw: &[u8], pw: &[u8]) -> Verification {
    let dlen = <D as Digest>::output_size();
    if raw.len() <= dlen {
        return malformed(scheme, "password is too short (no salt)");
    }
    let mut h = D::new();
    h.update(pw);
    h.update(&raw[dlen..]);
    matched(ct_eq(&h.finalize(), &raw[..dlen]))
}

/// Dovecot's `plain_trunc_verify`: `<length>-<password>`; a stored password
/// of exactly `length` bytes matches any candidate with that prefix.
fn plain_trunc(raw: &[u8], pw: &[u8]) -> Verification {
    let digits = raw.iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == raw.len() || raw[digits] != b'-' {
        return malformed(Scheme::PlainTrunc, "missing length: prefix");
    }
    // Dovecot accumulates in a size_t without overflow checks; saturate.
    let trunc_len =
        raw[..digits].iter().fold(0usize, |acc, d| acc.saturating_mul(10).saturating_add(usize::from(d - b'0')));
    let stored = &raw[digits + 1..];
    if stored.len() == trunc_len && pw.len() >= trunc_len {
        return matched(ct_eq(stored, &pw[..trunc_len]));
    }
    matched(ct_eq(stored, pw))
}

/// `{MD5}`: MD5-crypt if it starts with `$1$`, else a PLAIN-MD5 digest.
fn md5_scheme(raw: &[u8], pw: &[u8]) -> Verification {
    if raw.starts_with(b"$1$") {
        return match crypt::md5_crypt(pw, raw, false) {
            Ok(out) => matched(ct_eq(out.as_bytes(), raw)),
            Err(e) => crypt_error(e),
        };
    }
    let Ok(text) = core::str::from_utf8(raw) else {
        return malformed(Scheme::Md5, "not a valid MD5-CRYPT or PLAIN-MD5 password");
    };
    match scheme::decode(Scheme::PlainMd5, None, text) {
        Ok(digest) => matched(ct_eq(&Md5::digest(pw), &digest)),
        Err(_) => malformed(Scheme::Md5, "not a valid MD5-CRYPT or PLAIN-MD5 password"),
    }
}

/// Maps a crypt(3) failure. libxcrypt answers an invalid setting with its
/// `*0` failure token, which never equals the stored string, so Dovecot
/// reports a plain mismatch; we do the same. Unsupported methods stay
/// [`Verification::Unsupported`] so operators see them.
fn crypt_error(e: CryptError) -> Verification {
    match e {
        CryptError::Unsupported(msg) => Verification::Unsupported(msg),
        CryptError::Invalid(_) => Verification::Mismatch,
    }
}

fn blf_crypt(raw: &[u8], pw: &[u8], limits: &VerifyLimits) -> Verification {
    match crypt::bcrypt::parse_setting(raw) {
        Ok(setting) if setting.cost > limits.max_bcrypt_cost => malformed(
            Scheme::BlfCrypt,
            format_args!("bcrypt cost {} exceeds the configured limit {}", setting.cost, limits.max_bcrypt_cost),
        ),
        Ok(_) => match crypt::bcrypt::crypt(pw, raw) {
            Ok(out) => matched(ct_eq(out.as_bytes(), raw)),
            Err(_) => malformed(Scheme::BlfCrypt, "invalid bcrypt hash"),
        },
        Err(crypt::bcrypt::SettingError::NotBcrypt) => {
            malformed(Scheme::BlfCrypt, "password is not a blowfish password")
        }
        Err(crypt::bcrypt::SettingError::Invalid(msg)) => malformed(Scheme::BlfCrypt, msg),
    }
}

/// Dovecot's `crypt_verify`: bcrypt strings go to BLF-CRYPT, an empty hash
/// never matches, anything else is `crypt(pw, stored) == stored`.
fn crypt_family(scheme: Scheme, raw: &[u8], pw: &[u8], limits: &VerifyLimits) -> Verification {
    if raw.is_empty() {
        return Verification::Mismatch;
    }
    match crypt::classify(raw) {
        Ok(CryptKind::Bcrypt) => blf_crypt(raw, pw, limits),
        Ok(kind @ (CryptKind::Sha256 | CryptKind::Sha512)) => {
            let variant = if kind == CryptKind::Sha256 { crypt::ShaVariant::Sha256 } else { crypt::ShaVariant::Sha512 };
            match crypt::parse_sha_setting(raw, variant) {
                Ok(s) if s.rounds > limits.max_sha_crypt_rounds => malformed(
                    scheme,
                    format_args!(
                        "SHA-crypt rounds {} exceed the configured limit {}",
                        s.rounds, limits.max_sha_crypt_rounds
                    ),
                ),
                Ok(_) => match crypt::sha_crypt(pw, raw, variant) {
                    Ok(out) => matched(ct_eq(out.as_bytes(), raw)),
                    Err(e) => crypt_error(e),
                },
                Err(e) => crypt_error(e),
            }
        }
        Ok(CryptKind::Md5) => match crypt::md5_crypt(pw, raw, true) {
            Ok(out) => matched(ct_eq(out.as_bytes(), raw)),
            Err(e) => crypt_error(e),
        },
        Ok(CryptKind::Des) => match crypt::des_crypt(pw, raw) {
            Ok(out) => matched(ct_eq(out.as_bytes(), raw)),
            Err(e) => crypt_error(e),
        },
        Ok(CryptKind::Yescrypt) => match crypt::yescrypt_memory_kib(raw) {
            Some(kib) if kib > u64::from(limits.max_memory_kib) => {
                malformed(scheme, format_args!("yescrypt needs {kib} KiB, over the configured limit"))
            }
            Some(_) => match crypt::yescrypt_verify(pw, raw) {
                Ok(ok) => matched(ok),
                Err(e) => crypt_error(e),
            },
            None => crypt_error(CryptError::Invalid("invalid yescrypt parameters")),
        },
        Err(e) => crypt_error(e),
    }
}

fn argon2(scheme: Scheme, raw: &[u8], pw: &[u8], limits: &VerifyLimits) -> Verification {
    let Ok(text) = core::str::from_utf8(raw) else {
        return malformed(scheme, "not an Argon2 PHC string");
    };
    let phc = match crate::argon2::parse(text) {
        Ok(p) => p,
        Err(msg) => return malformed(scheme, msg),
    };
    if phc.m_cost > limits.max_memory_kib
        || phc.t_cost > limits.max_argon2_t_cost
        || phc.p_cost > limits.max_argon2_p_cost
    {
        return malformed(
            scheme,
            format_args!(
                "Argon2 parameters m={},t={},p={} exceed the configured limits",
                phc.m_cost, phc.t_cost, phc.p_cost
            ),
        );
    }
    match crate::argon2::compute(pw, &phc) {
        Ok(out) => matched(ct_eq(&out, &phc.hash)),
        Err(msg) => malformed(scheme, msg),
    }
}

/// Dovecot `{PBKDF2}`: `$1$<salt>$<rounds>$<40 hex>`, PBKDF2-HMAC-SHA1 over
/// the salt's ASCII bytes, 20-byte key.
fn dovecot_pbkdf2(raw: &[u8], pw: &[u8], limits: &VerifyLimits) -> Verification {
    let scheme = Scheme::Pbkdf2;
    let fields: Vec<&[u8]> = raw[3..].split(|&c| c == b'$').collect();
    if fields.len() != 3 {
        return malformed(scheme, "invalid PBKDF2 passdb entry format");
    }
    let Some(rounds) = parse_u32(fields[1]) else {
        return malformed(scheme, "invalid PBKDF2 passdb entry format");
    };
    let expected = match hex_decode(fields[2]) {
        Some(k) if fields[2].len() == 40 => k,
        _ => return malformed(scheme, "PBKDF2 hash not 160bit hex-encoded"),
    };
    if rounds == 0 {
        return malformed(scheme, "PBKDF2 rounds must be at least 1");
    }
    if rounds > limits.max_pbkdf2_rounds {
        return malformed(scheme, "PBKDF2 rounds exceed the configured limit");
    }
    let mut key = Zeroizing::new([0u8; 20]);
    pbkdf2::pbkdf2_hmac::<Sha1>(pw, fields[0], rounds, &mut key[..]);
    matched(ct_eq(&key[..], &expected))
}

fn parse_u32(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 10 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    core::str::from_utf8(s).ok()?.parse().ok()
}

/// 389-ds/FreeIPA PBKDF2 (`src/plugins/pwdchan` in 389-ds-base):
/// `<rounds>$<salt>$<hash>`, salt and hash in passlib's "ab64" (standard
/// base64 with `.` for `+`, padding optional); the key length is the decoded
/// hash's length.
fn ldap_pbkdf2<D>(scheme: Scheme, raw: &[u8], pw: &[u8], limits: &VerifyLimits) -> Verification
where
    D: hmac::EagerHash + Digest,
{
    let fields: Vec<&[u8]> = raw.split(|&c| c == b'$').collect();
    if fields.len() != 3 {
        return malformed(scheme, "expected <rounds>$<salt>$<hash>");
    }
    let Some(rounds) = parse_u32(fields[0]) else {
        return malformed(scheme, "invalid iteration count");
    };
    let (Some(salt), Some(expected)) = (ab64_decode(fields[1]), ab64_decode(fields[2])) else {
        return malformed(scheme, "invalid base64 in salt or hash");
    };
    if rounds == 0 || expected.is_empty() {
        return malformed(scheme, "zero iterations or empty hash");
    }
    if rounds > limits.max_pbkdf2_rounds {
        return malformed(scheme, "iteration count exceeds the configured limit");
    }
    let mut key = Zeroizing::new(vec![0u8; expected.len()]);
    pbkdf2::pbkdf2_hmac::<D>(pw, &salt, rounds, &mut key);
    matched(ct_eq(&key, &expected))
}

/// passlib "ab64": `.` stands for `+`, padding optional, trailing bits ignored.
fn ab64_decode(s: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine as _;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const ENGINE: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    let mapped: Vec<u8> = s.iter().map(|&c| if c == b'.' { b'+' } else { c }).collect();
    ENGINE.decode(mapped).ok()
}

/// Dovecot `{SCRAM-SHA-1}` / `{SCRAM-SHA-256}`:
/// `<iterations>,<b64 salt>,<b64 StoredKey>,<b64 ServerKey>`; the candidate
/// matches when `H(HMAC(Hi(pw, salt, i), "Client Key")) == StoredKey`.
fn scram<D>(scheme: Scheme, raw: &[u8], pw: &[u8], limits: &VerifyLimits) -> Verification
where
    D: hmac::EagerHash + Digest,
{
    let fields: Vec<&[u8]> = raw.split(|&c| c == b',').collect();
    if fields.len() != 4 {
        return malformed(scheme, "invalid SCRAM passdb entry format");
    }
    let Some(iter) = parse_u32(fields[0]) else {
        return malformed(scheme, "invalid SCRAM iteration count");
    };
    let (Some(salt), Some(stored_key)) = (dovecot_base64_decode(fields[1]), dovecot_base64_decode(fields[2])) else {
        return malformed(scheme, "invalid base64 in SCRAM entry");
    };
    let dlen = <D as Digest>::output_size();
    if iter == 0 || stored_key.len() != dlen {
        return malformed(scheme, "invalid SCRAM entry");
    }
    if iter > limits.max_pbkdf2_rounds {
        return malformed(scheme, "SCRAM iteration count exceeds the configured limit");
    }
    let mut salted = Zeroizing::new(vec![0u8; dlen]);
    pbkdf2::pbkdf2_hmac::<D>(pw, &salt, iter, &mut salted);
    let Ok(mut mac) = hmac::Hmac::<D>::new_from_slice(&salted) else {
        return malformed(scheme, "HMAC key rejected");
    };
    mac.update(b"Client Key");
    let client_key = Zeroizing::new(mac.finalize().into_bytes().to_vec());
    let computed = <D as Digest>::digest(&client_key);
    matched(ct_eq(&computed, &stored_key))
}

/// Memory (KiB) verifying `stored` will allocate, for the pool's memory
/// budget: Argon2's `m` when it is within `limits`, else 0.
pub(crate) fn memory_cost_kib(stored: &str, limits: &VerifyLimits) -> u32 {
    let Ok(parsed) = scheme::parse(stored) else {
        return 0;
    };
    if matches!(parsed.scheme, Scheme::Crypt | Scheme::DesCrypt | Scheme::Sha256Crypt | Scheme::Sha512Crypt) {
        return match crypt::yescrypt_memory_kib(parsed.payload.as_bytes()) {
            Some(kib) if kib <= u64::from(limits.max_memory_kib) => kib as u32,
            _ => 0,
        };
    }
    if !matches!(parsed.scheme, Scheme::Argon2 | Scheme::Argon2i | Scheme::Argon2id) {
        return 0;
    }
    let payload: Zeroizing<Vec<u8>> = match parsed.explicit_encoding {
        None | Some(Encoding::None) => Zeroizing::new(parsed.payload.as_bytes().to_vec()),
        Some(enc) => match scheme::decode(parsed.scheme, Some(enc), parsed.payload) {
            Ok(d) => d,
            Err(_) => return 0,
        },
    };
    let Ok(text) = core::str::from_utf8(&payload) else {
        return 0;
    };
    match crate::argon2::parse(text) {
        Ok(p) if p.m_cost <= limits.max_memory_kib => p.m_cost,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cram_md5_matches_doveadm() {
        // doveadm pw -s CRAM-MD5 -p pw
        assert_eq!(
            hex::encode(&cram_md5_context(b"pw")[..]),
            "d3b327e40131add8092e3cb400c690fb8c4c989cd9d0f4ebd9644e4aa7b64cfa"
        );
    }
}
