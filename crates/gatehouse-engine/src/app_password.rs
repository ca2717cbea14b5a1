//! App-password tokens carry their own id, `gh_<id>_<secret>`, so a login verifies exactly one stored hash —
//! never a loop over every app password of the mailbox (mailcow's `apppass_login`).

use rand::distr::{Alphanumeric, SampleString};

/// Prefix of every app-password token.
pub const PREFIX: &str = "gh_";
/// Length of the random secret part (alphanumeric: about 190 bits).
pub const SECRET_LEN: usize = 32;

/// A new random secret for an app password.
pub fn new_secret() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), SECRET_LEN)
}

/// The token the user types: `gh_<id>_<secret>`.
pub fn token(id: i64, secret: &str) -> String {
    format!("{PREFIX}{id}_{secret}")
}

/// Splits a token into its id and secret; `None` when the password is not in token form.
pub fn parse(password: &[u8]) -> Option<(i64, &[u8])> {
    parse_token(password, PREFIX, SECRET_LEN)
}

/// Splits `<prefix><id>_<secret>` (the form of every Gatehouse token) into id and secret, checking the secret's
/// length; `None` for anything else.
pub(crate) fn parse_token<'a>(password: &'a [u8], prefix: &str, secret_len: usize) -> Option<(i64, &'a [u8])> {
    let rest = password.strip_prefix(prefix.as_bytes())?;
    let split = rest.iter().position(|b| *b == b'_')?;
    let (id, secret) = (&rest[..split], &rest[split + 1..]);
    if id.is_empty() || id.len() > 18 || !id.iter().all(u8::is_ascii_digit) || secret.len() != secret_len {
        return None;
    }
    Some((std::str::from_utf8(id).ok()?.parse().ok()?, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        let secret = new_secret();
        let token = token(42, &secret);
        assert_eq!(parse(token.as_bytes()), Some((42, secret.as_bytes())));
    }

    #[test]
    fn ordinary_passwords_are_not_tokens() {
        for password in ["hunter2", "gh_", "gh_x_abc", "gh_1_short", "gh__aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"] {
            assert_eq!(parse(password.as_bytes()), None, "{password}");
        }
    }
}
