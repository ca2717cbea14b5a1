//! Argon2i / Argon2id in libsodium's PHC string format
//! (`$argon2id$v=19$m=65536,t=3,p=1$<salt>$<hash>`), which Dovecot's
//! `{ARGON2I}`/`{ARGON2ID}` schemes store. The primitive is the `argon2` crate.

use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use zeroize::Zeroizing;

/// Parsed Argon2 PHC string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Phc {
    /// Argon2i or Argon2id.
    pub algorithm: Algorithm,
    /// 0x10 or 0x13.
    pub version: Version,
    /// Memory in KiB.
    pub m_cost: u32,
    /// Passes.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
    /// Raw salt.
    pub salt: Vec<u8>,
    /// Raw expected output.
    pub hash: Vec<u8>,
}

fn parse_kv(s: &str, key: &str) -> Option<u32> {
    let v = s.strip_prefix(key)?.strip_prefix('=')?;
    if v.is_empty() || !v.bytes().all(|c| c.is_ascii_digit()) || v.len() > 10 {
        return None;
    }
    v.parse().ok()
}

/// Parses `$argon2i$…` / `$argon2id$…` like libsodium: `v=` is optional
/// (defaulting to 0x10), `m`, `t`, `p` must appear in that order, salt and
/// hash are unpadded standard base64.
pub(crate) fn parse(s: &str) -> Result<Phc, &'static str> {
    let mut parts = s.split('$');
    if parts.next() != Some("") {
        return Err("Argon2 hash must start with $");
    }
    let algorithm = match parts.next() {
        Some("argon2i") => Algorithm::Argon2i,
        Some("argon2id") => Algorithm::Argon2id,
        _ => return Err("not an Argon2i/Argon2id hash"),
    };
    let mut field = parts.next().ok_or("truncated Argon2 hash")?;
    let mut version = Version::V0x10;
    if let Some(v) = parse_kv(field, "v") {
        version = match v {
            0x10 => Version::V0x10,
            0x13 => Version::V0x13,
            _ => return Err("unsupported Argon2 version"),
        };
        field = parts.next().ok_or("truncated Argon2 hash")?;
    }
    let mut params = field.split(',');
    let m_cost = params.next().and_then(|p| parse_kv(p, "m")).ok_or("invalid Argon2 m=")?;
    let t_cost = params.next().and_then(|p| parse_kv(p, "t")).ok_or("invalid Argon2 t=")?;
    let p_cost = params.next().and_then(|p| parse_kv(p, "p")).ok_or("invalid Argon2 p=")?;
    if params.next().is_some() {
        return Err("unexpected Argon2 parameter");
    }
    let salt = STANDARD_NO_PAD
        .decode(parts.next().ok_or("missing Argon2 salt")?)
        .map_err(|_| "invalid Argon2 salt encoding")?;
    let hash = STANDARD_NO_PAD
        .decode(parts.next().ok_or("missing Argon2 hash")?)
        .map_err(|_| "invalid Argon2 hash encoding")?;
    if parts.next().is_some() {
        return Err("trailing data after Argon2 hash");
    }
    Ok(Phc { algorithm, version, m_cost, t_cost, p_cost, salt, hash })
}

/// Computes the Argon2 output for `phc`'s parameters and salt.
pub(crate) fn compute(password: &[u8], phc: &Phc) -> Result<Zeroizing<Vec<u8>>, String> {
    let params = Params::new(phc.m_cost, phc.t_cost, phc.p_cost, Some(phc.hash.len()))
        .map_err(|e| format!("invalid Argon2 parameters: {e}"))?;
    let ctx = Argon2::new(phc.algorithm, phc.version, params);
    let mut out = Zeroizing::new(vec![0u8; phc.hash.len()]);
    ctx.hash_password_into(password, &phc.salt, &mut out).map_err(|e| format!("Argon2 failed: {e}"))?;
    Ok(out)
}

/// Generates a new Argon2id (v=19) PHC string with a 16-byte salt and a
/// 32-byte output, as libsodium's `crypto_pwhash_str` does.
pub(crate) fn generate(password: &[u8], m_cost: u32, t_cost: u32, p_cost: u32) -> Result<String, String> {
    let phc = Phc {
        algorithm: Algorithm::Argon2id,
        version: Version::V0x13,
        m_cost,
        t_cost,
        p_cost,
        salt: rand::random::<[u8; 16]>().to_vec(),
        hash: vec![0u8; 32],
    };
    let out = compute(password, &phc)?;
    Ok(format!(
        "$argon2id$v=19$m={m_cost},t={t_cost},p={p_cost}${}${}",
        STANDARD_NO_PAD.encode(&phc.salt),
        STANDARD_NO_PAD.encode(&out[..])
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_libsodium_strings() {
        let p =
            parse("$argon2i$v=19$m=32768,t=4,p=1$r9kOqbw9q3wcduMag0Euug$E8WiVQ5gWe2rsyE39fD3fIh+/kxV7DElXjPezquQNkM")
                .unwrap();
        assert_eq!((p.m_cost, p.t_cost, p.p_cost), (32768, 4, 1));
        assert_eq!(p.algorithm, Algorithm::Argon2i);
        assert_eq!(p.salt.len(), 16);
        assert_eq!(p.hash.len(), 32);
        assert!(parse("$argon2d$v=19$m=8,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA").is_err());
        assert!(parse("$argon2id$v=19$t=1,m=8,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA").is_err());
    }

    #[test]
    fn round_trip_small() {
        let h = generate(b"pw", 64, 1, 1).unwrap();
        let p = parse(&h).unwrap();
        assert_eq!(&compute(b"pw", &p).unwrap()[..], &p.hash[..]);
        assert_ne!(&compute(b"pw2", &p).unwrap()[..], &p.hash[..]);
    }
}
