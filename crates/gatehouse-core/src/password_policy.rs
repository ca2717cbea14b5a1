//! The one rule for new passwords, whatever sets them (command line, web UI, REST API): not empty, at least
//! [`PasswordPolicy::min_chars`] characters, at most [`PasswordPolicy::max_bytes`] bytes, and no NUL (which a
//! SASL PLAIN login cannot carry). Passwords are bytes; characters are counted as UTF-8 when they are, else one
//! per byte.

use crate::Error;

/// What a new password must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordPolicy {
    /// Fewest characters.
    pub min_chars: usize,
    /// Most bytes.
    pub max_bytes: usize,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy { min_chars: 8, max_bytes: 4096 }
    }
}

impl PasswordPolicy {
    /// Checks a new password.
    pub fn check(&self, password: &[u8]) -> Result<(), Error> {
        if password.is_empty() {
            return Err(Error::invalid("the password is empty"));
        }
        if password.len() > self.max_bytes {
            return Err(Error::invalid(format!("the password is longer than {} bytes", self.max_bytes)));
        }
        if password.contains(&0) {
            return Err(Error::invalid("the password contains a NUL byte, which mail logins cannot carry"));
        }
        let chars = std::str::from_utf8(password).map(|text| text.chars().count()).unwrap_or(password.len());
        if chars < self.min_chars {
            return Err(Error::invalid(format!("the password needs at least {} characters", self.min_chars)));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_passwords_follow_one_rule() {
        let policy = PasswordPolicy::default();
        assert!(policy.check(b"long enough").is_ok());
        assert!(policy.check("pässwörd".as_bytes()).is_ok(), "eight characters, ten bytes");
        assert!(policy.check(b"caf\xe9-cr\xe8me").is_ok(), "Latin-1 counts bytes");
        assert_eq!(policy.check(b"short").unwrap_err().to_string(), "the password needs at least 8 characters");
        assert_eq!(policy.check(b"").unwrap_err().to_string(), "the password is empty");
        assert!(policy.check(&[b'x'; 4097]).unwrap_err().to_string().contains("longer than 4096 bytes"));
        assert!(policy.check(b"with\0nul-byte").is_err());
    }
}
