//! Secrets at rest: identity-provider secrets (bind passwords, client secrets) are stored sealed with a key that
//! lives outside the database, so a copy of the database alone (a backup, a dump, a stolen file) does not give
//! them away.
//!
//! The key is 32 random bytes kept in a file of its own (`secret_key_file`, mode 0600), created by
//! `gatehouse init` or the first `gatehouse serve`. A sealed value is `sealed:v1:` followed by URL-safe base64
//! of a 12-byte random nonce and the ChaCha20-Poly1305 ciphertext with its tag; the associated data names the
//! row it belongs to, so a sealed value moved to another provider or secret name does not open.
//!
//! The same key also derives the shared secret of the internal endpoints (see [`SecretKey::derive`]), so one
//! file is all an operator keeps apart from the database backup.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse_core::{Error, Result, Secret};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use ring::hmac;
use zeroize::Zeroizing;

/// What every sealed value starts with.
pub const SEALED_PREFIX: &str = "sealed:v1:";
const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;

/// The key that seals secrets at rest. `Debug` never shows it.
#[derive(Clone)]
pub struct SecretKey {
    bytes: Zeroizing<[u8; KEY_LEN]>,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey([redacted])")
    }
}

/// How a key file was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFile {
    /// It existed.
    Existing,
    /// It was created just now.
    Created,
}

impl SecretKey {
    /// A random key that lives only in this process (for tests and throw-away stores): what it seals cannot be
    /// opened by another process.
    pub fn ephemeral() -> Self {
        SecretKey { bytes: Zeroizing::new(rand::random()) }
    }

    /// Reads the key file at `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|err| match err.kind() {
            std::io::ErrorKind::NotFound => Error::not_found("secret key file", path.display().to_string()),
            _ => Error::Unavailable(format!("cannot read the secret key file {}: {err}", path.display())),
        })?);
        let decoded = Zeroizing::new(URL_SAFE_NO_PAD.decode(text.trim()).map_err(|_| {
            Error::invalid(format!("the secret key file {} does not hold a Gatehouse key", path.display()))
        })?);
        let bytes: [u8; KEY_LEN] = decoded.as_slice().try_into().map_err(|_| {
            Error::invalid(format!("the secret key file {} does not hold a 32-byte key", path.display()))
        })?;
        Ok(SecretKey { bytes: Zeroizing::new(bytes) })
    }

    /// Reads the key file at `path`, or creates it (mode 0600, its folder 0700 if missing) with a new random key.
    pub fn load_or_create(path: &Path) -> Result<(Self, KeyFile)> {
        match Self::load(path) {
            Ok(key) => return Ok((key, KeyFile::Existing)),
            Err(Error::NotFound { .. }) => {}
            Err(err) => return Err(err),
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            create_private_dir(parent)?;
        }
        let key = SecretKey::ephemeral();
        let encoded = Zeroizing::new(URL_SAFE_NO_PAD.encode(key.bytes.as_slice()));
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .and_then(|mut file| file.write_all(format!("{}\n", encoded.as_str()).as_bytes()).and(file.sync_all()));
        match written {
            Ok(()) => Ok((key, KeyFile::Created)),
            // Another process created it first: use theirs.
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok((Self::load(path)?, KeyFile::Existing)),
            Err(err) => Err(Error::Unavailable(format!("cannot create the secret key file {}: {err}", path.display()))),
        }
    }

    fn aead(&self) -> LessSafeKey {
        LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, self.bytes.as_slice()).expect("a 32-byte key"))
    }

    /// Seals `plaintext` for the row named by `context`.
    pub fn seal(&self, context: &str, plaintext: &str) -> String {
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let mut data = Zeroizing::new(plaintext.as_bytes().to_vec());
        self.aead()
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(context.as_bytes()),
                &mut *data,
            )
            .expect("sealing cannot fail for inputs this small");
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&data);
        format!("{SEALED_PREFIX}{}", URL_SAFE_NO_PAD.encode(out))
    }

    /// Opens a value [`SecretKey::seal`] made for `context`.
    pub fn unseal(&self, context: &str, sealed: &str) -> Result<Secret> {
        let wrong_key = || {
            Error::Internal(format!(
                "the stored secret {context} cannot be opened with this secret key (a different secret_key_file \
                 than the one it was written with?)"
            ))
        };
        let encoded = sealed.strip_prefix(SEALED_PREFIX).ok_or_else(wrong_key)?;
        let mut data = URL_SAFE_NO_PAD.decode(encoded).map_err(|_| wrong_key())?;
        if data.len() < NONCE_LEN {
            return Err(wrong_key());
        }
        let mut ciphertext = Zeroizing::new(data.split_off(NONCE_LEN));
        let nonce = Nonce::try_assume_unique_for_key(&data).map_err(|_| wrong_key())?;
        let plaintext = self
            .aead()
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut ciphertext)
            .map_err(|_| wrong_key())?;
        let text = std::str::from_utf8(plaintext).map_err(|_| wrong_key())?;
        Ok(Secret::new(text))
    }

    /// A keyed fingerprint of `data` (hex HMAC-SHA256 under the key derived for `purpose`): equal data gives
    /// equal fingerprints on every process that shares the key file, and nobody without it can compute or test
    /// one.
    pub fn fingerprint(&self, purpose: &str, data: &[u8]) -> String {
        let derived = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, self.bytes.as_slice()), purpose.as_bytes());
        let key = hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref());
        hex::encode(hmac::sign(&key, data).as_ref())
    }

    /// A secret derived from the key for one purpose (HMAC-SHA256 of the purpose, hex): the same on every
    /// process that shares the key file.
    pub fn derive(&self, purpose: &str) -> Secret {
        let key = hmac::Key::new(hmac::HMAC_SHA256, self.bytes.as_slice());
        let tag = hmac::sign(&key, purpose.as_bytes());
        Secret::new(hex::encode(tag.as_ref()))
    }
}

/// Whether a stored value is sealed.
pub fn is_sealed(value: &str) -> bool {
    value.starts_with(SEALED_PREFIX)
}

/// Creates a folder (and its parents) readable only by its owner; an existing folder is left as it is.
pub fn create_private_dir(path: &Path) -> Result<()> {
    if path.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|err| Error::Unavailable(format!("cannot create the folder {}: {err}", path.display())))
}

/// A warning when `path` (a file holding secrets, or its folder) can be read by other users, else `None`.
pub fn looser_than_private(path: &Path) -> Option<String> {
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then(|| {
        format!(
            "{} is accessible to other users (mode {mode:04o}) although it holds secrets; run chmod {} {}",
            path.display(),
            if path.is_dir() { "700" } else { "600" },
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_context() {
        let key = SecretKey::ephemeral();
        let sealed = key.seal("idp:1:bind_password", "hunter2");
        assert!(is_sealed(&sealed) && !sealed.contains("hunter2"));
        assert_eq!(key.unseal("idp:1:bind_password", &sealed).unwrap().expose(), "hunter2");
        assert!(key.unseal("idp:2:bind_password", &sealed).is_err(), "moved to another row");
        assert!(SecretKey::ephemeral().unseal("idp:1:bind_password", &sealed).is_err(), "another key");
        assert_ne!(key.seal("c", "same"), key.seal("c", "same"), "a fresh nonce each time");
    }

    #[test]
    fn key_files_are_created_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/gatehouse.key");
        let (created, how) = SecretKey::load_or_create(&path).unwrap();
        assert_eq!(how, KeyFile::Created);
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
        let (loaded, how) = SecretKey::load_or_create(&path).unwrap();
        assert_eq!(how, KeyFile::Existing);
        assert_eq!(loaded.derive("x").expose(), created.derive("x").expose());
        assert!(looser_than_private(&path).is_none());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(looser_than_private(&path).unwrap().contains("chmod 600"));
        std::fs::write(&path, "not a key\n").unwrap();
        assert!(SecretKey::load(&path).is_err());
    }
}
