//! Byte encodings used inside stored hashes: Dovecot's lenient base64 and hex
//! decoders, the little-endian "crypt" base64 used by MD5-/SHA-crypt, and the
//! big-endian bcrypt base64.

use zeroize::Zeroizing;

/// Standard base64 alphabet (RFC 4648), as Dovecot's `base64_decode` uses it.
const STD_B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Alphabet of the crypt(3) family (`$1$`, `$5$`, `$6$`, DES salts).
pub(crate) const CRYPT_B64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Alphabet of bcrypt (`$2?$`), in bcrypt's own order.
const BCRYPT_B64: &[u8; 64] = b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

fn std_value(c: u8) -> Option<u32> {
    STD_B64.iter().position(|&x| x == c).map(|v| v as u32)
}

/// Decodes base64 the way Dovecot 2.3's `base64_decode` does for stored
/// passwords: ASCII whitespace is skipped, `=` padding is required to complete
/// the last quantum, nothing may follow the padding, and unused trailing bits
/// are ignored. Returns `None` on invalid input.
pub(crate) fn dovecot_base64_decode(input: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let mut out = Zeroizing::new(Vec::with_capacity(input.len() / 4 * 3 + 3));
    let mut quantum = [0u32; 4];
    let mut filled = 0usize;
    let mut padding = 0usize;
    for &c in input {
        if matches!(c, b' ' | b'\t' | b'\r' | b'\n') {
            continue;
        }
        if c == b'=' {
            // Padding is only valid in the last two positions of a quantum.
            if filled < 2 {
                return None;
            }
            padding += 1;
            filled += 1;
            if filled == 4 {
                let bytes = 3 - padding;
                let word = (quantum[0] << 18) | (quantum[1] << 12) | (quantum[2] << 6);
                out.extend_from_slice(&word.to_be_bytes()[1..1 + bytes]);
                filled = 0;
            }
            continue;
        }
        if padding > 0 {
            // Data after padding.
            return None;
        }
        quantum[filled] = std_value(c)?;
        filled += 1;
        if filled == 4 {
            let word = (quantum[0] << 18) | (quantum[1] << 12) | (quantum[2] << 6) | quantum[3];
            out.extend_from_slice(&word.to_be_bytes()[1..4]);
            filled = 0;
        }
    }
    if filled != 0 {
        return None;
    }
    // A quantum that started after padding is caught above; a lone padded
    // quantum followed by more data is also rejected there.
    Some(out)
}

/// Decodes hex (either case) the way Dovecot's `hex_to_binary` does: an even
/// number of hex digits and nothing else.
pub(crate) fn hex_decode(input: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if !input.len().is_multiple_of(2) {
        return None;
    }
    let mut out = Zeroizing::new(Vec::with_capacity(input.len() / 2));
    for pair in input.chunks_exact(2) {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out.push((hi * 16 + lo) as u8);
    }
    Some(out)
}

/// Standard base64 with padding, for the strings we generate.
pub(crate) fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Appends `n` crypt-alphabet characters of the 24-bit group
/// `b2 << 16 | b1 << 8 | b0`, least significant six bits first (the
/// `b64_from_24bit` helper of the MD5-crypt and SHA-crypt specifications).
pub(crate) fn crypt_b64_from_24bit(out: &mut String, b2: u8, b1: u8, b0: u8, n: usize) {
    let mut w = (u32::from(b2) << 16) | (u32::from(b1) << 8) | u32::from(b0);
    for _ in 0..n {
        out.push(CRYPT_B64[(w & 0x3f) as usize] as char);
        w >>= 6;
    }
}

/// Whether `c` belongs to the crypt(3) salt alphabet `[./0-9A-Za-z]`.
pub(crate) fn is_crypt_char(c: u8) -> bool {
    CRYPT_B64.contains(&c)
}

fn bcrypt_value(c: u8) -> Option<u32> {
    BCRYPT_B64.iter().position(|&x| x == c).map(|v| v as u32)
}

/// Encodes bytes with bcrypt's base64 (big-endian groups, no padding).
pub(crate) fn bcrypt_b64_encode(bytes: &[u8], out: &mut String) {
    for chunk in bytes.chunks(3) {
        let b0 = u32::from(chunk[0]);
        let b1 = chunk.get(1).copied().map_or(0, u32::from);
        let b2 = chunk.get(2).copied().map_or(0, u32::from);
        let w = (b0 << 16) | (b1 << 8) | b2;
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(BCRYPT_B64[((w >> (18 - 6 * i)) & 0x3f) as usize] as char);
        }
    }
}

/// Decodes exactly `N` bytes from bcrypt base64, ignoring unused trailing bits
/// of the last character as crypt_blowfish's `BF_decode` does.
pub(crate) fn bcrypt_b64_decode<const N: usize>(input: &[u8]) -> Option<[u8; N]> {
    let needed = (N * 8).div_ceil(6);
    if input.len() < needed {
        return None;
    }
    let mut out = [0u8; N];
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    let mut pos = 0usize;
    for &c in &input[..needed] {
        acc = (acc << 6) | bcrypt_value(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            if pos < N {
                out[pos] = (acc >> bits) as u8;
                pos += 1;
            }
            acc &= (1 << bits) - 1;
        }
    }
    (pos == N).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dovecot_base64_rules() {
        assert_eq!(&*dovecot_base64_decode(b"cMOkc3N3w7ZyZA==").unwrap(), "pässwörd".as_bytes());
        assert_eq!(&*dovecot_base64_decode(b" cMOk c3N3\nw7ZyZA==").unwrap(), "pässwörd".as_bytes());
        // Missing padding, extra padding and trailing data are rejected.
        assert!(dovecot_base64_decode(b"cMOkc3N3w7ZyZA").is_none());
        assert!(dovecot_base64_decode(b"cMOkc3N3w7ZyZA===").is_none());
        assert!(dovecot_base64_decode(b"cMOkc3N3w7ZyZA==xx").is_none());
        // Unused trailing bits are ignored.
        assert_eq!(&*dovecot_base64_decode(b"cMOkc3N3w7ZyZB==").unwrap(), "pässwörd".as_bytes());
        assert_eq!(&*dovecot_base64_decode(b"").unwrap(), b"");
    }

    #[test]
    fn hex_rules() {
        assert_eq!(&*hex_decode(b"00fFaA").unwrap(), &[0, 0xff, 0xaa]);
        assert!(hex_decode(b"0").is_none());
        assert!(hex_decode(b"0g").is_none());
    }

    #[test]
    fn bcrypt_b64_round_trip() {
        let bytes: [u8; 16] = core::array::from_fn(|i| (i * 37) as u8);
        let mut s = String::new();
        bcrypt_b64_encode(&bytes, &mut s);
        assert_eq!(s.len(), 22);
        assert_eq!(bcrypt_b64_decode::<16>(s.as_bytes()).unwrap(), bytes);
    }
}
