//! Passkeys: the WebAuthn relying party's ceremonies (registration and authentication), through `webauthn-rs`.
//!
//! The relying party is the public URL of the web interface: its host is the RP ID and its origin the only
//! origin accepted. Each ceremony starts with a challenge whose state stays here, keyed by a random ceremony id
//! and bound to the account it was started for; finishing takes the state out, so a challenge works once, and
//! states expire after [`CEREMONY_TTL`]. What `webauthn-rs` checks (Level 2 §7.1 and §7.2): the challenge, the
//! origin and RP ID hash, user presence and user verification (passkeys require it), the signature against the
//! stored public key, and the signature counter — a counter that does not grow for an authenticator that keeps
//! one is refused as a possible clone. Attestation is not asked for ("none").
//!
//! Registrations ask for a discoverable credential (resident key), so a passkey can later sign in without a
//! name being typed first.
//!
//! Pure logic over in-memory state: the store keeps the credentials ([`RegisteredPasskey`] is what to store),
//! and the engine decides the sign-in ([`crate::Engine`]). The ceremony state lives in this process, so the
//! two requests of one ceremony must reach the same Gatehouse process.

use std::sync::Arc;
use std::time::Duration;

use data_encoding::BASE64URL_NOPAD;
use gatehouse_core::Error;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Url, Uuid, Webauthn, WebauthnBuilder, WebauthnError,
};

/// How long a started ceremony can be finished.
pub const CEREMONY_TTL: Duration = Duration::from_secs(300);
/// Started ceremonies kept at most (the oldest are forgotten first).
const MAX_PENDING: u64 = 10_000;

/// A challenge to hand to the browser.
#[derive(Debug, Clone)]
pub struct Challenge {
    /// The ceremony's id, to send back with the browser's answer.
    pub ceremony: String,
    /// The options for `navigator.credentials.create()` or `.get()`, as JSON (`{"publicKey": …}`).
    pub options: serde_json::Value,
}

/// A passkey registered by a finished ceremony: what the store keeps.
#[derive(Debug, Clone)]
pub struct RegisteredPasskey {
    /// The credential id, base64url without padding.
    pub credential_id: String,
    /// The user handle the authenticator keeps with it.
    pub user_handle: String,
    /// The relying party's record of the credential (JSON).
    pub credential: String,
    /// The signature counter at registration.
    pub counter: i64,
}

/// A passkey used by a finished authentication.
#[derive(Debug, Clone)]
pub struct PasskeyUse {
    /// Which of the credentials given signed.
    pub index: usize,
    /// The credential id that signed, base64url without padding.
    pub credential_id: String,
    /// Its signature counter now.
    pub counter: i64,
    /// The credential record with the new counter and flags, to store.
    pub credential: String,
}

/// The state of a started ceremony.
enum Pending {
    Registration { account: String, user_handle: String, state: PasskeyRegistration },
    Authentication { account: String, state: PasskeyAuthentication },
    SignIn { state: DiscoverableAuthentication },
}

/// Who answered a passwordless sign-in, as the answer says (not checked yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// The user handle the authenticator keeps with the credential.
    pub user_handle: String,
    /// The credential id, base64url without padding.
    pub credential_id: String,
}

/// The relying party: the ceremonies of one public URL.
pub struct Passkeys {
    webauthn: Webauthn,
    pending: moka::sync::Cache<String, Arc<Pending>>,
}

impl std::fmt::Debug for Passkeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passkeys").field("pending", &self.pending.entry_count()).finish()
    }
}

/// A client fault: what the browser sent does not complete the ceremony.
fn refused(what: &str, err: impl std::fmt::Display) -> Error {
    Error::invalid(format!("{what}: {err}"))
}

/// A refused authentication. A signature counter that did not grow, on an authenticator that keeps one, means
/// the key may have been copied: said as such, and logged as a warning.
fn not_accepted(err: WebauthnError) -> Error {
    if matches!(err, WebauthnError::CredentialPossibleCompromise) {
        tracing::warn!("a passkey's signature counter went back: the passkey may have been copied");
        return Error::invalid("the passkey's signature counter went back: it may have been copied");
    }
    refused("the passkey was not accepted", err)
}

/// Reads a stored credential record.
fn stored(credential: &str) -> Result<Passkey, Error> {
    serde_json::from_str(credential).map_err(|err| Error::Internal(format!("a stored passkey is unreadable: {err}")))
}

fn record(passkey: &Passkey) -> Result<String, Error> {
    serde_json::to_string(passkey).map_err(|err| Error::Internal(format!("a passkey cannot be stored: {err}")))
}

impl Passkeys {
    /// The relying party of `public_url` (the web interface's address as browsers see it: `https://…`, or
    /// `http://localhost…`, the one insecure origin browsers allow).
    pub fn new(public_url: &str, name: &str) -> Result<Passkeys, Error> {
        let url = Url::parse(public_url)
            .map_err(|err| Error::invalid(format!("web.public_url {public_url} is not a URL: {err}")))?;
        let host = url.host_str().ok_or_else(|| Error::invalid("web.public_url names no host"))?.to_string();
        let origin = Url::parse(&url.origin().ascii_serialization())
            .map_err(|err| Error::invalid(format!("web.public_url {public_url}: {err}")))?;
        let webauthn = WebauthnBuilder::new(&host, &origin)
            .and_then(|builder| builder.rp_name(name).timeout(CEREMONY_TTL).build())
            .map_err(|err| Error::invalid(format!("passkeys cannot use web.public_url {public_url}: {err}")))?;
        let pending = moka::sync::Cache::builder().max_capacity(MAX_PENDING).time_to_live(CEREMONY_TTL).build();
        Ok(Passkeys { webauthn, pending })
    }

    fn remember(&self, pending: Pending) -> String {
        let ceremony = BASE64URL_NOPAD.encode(&rand::random::<[u8; 24]>());
        self.pending.insert(ceremony.clone(), Arc::new(pending));
        ceremony
    }

    /// Takes a started ceremony out (it works once); `None` when unknown, expired or used.
    fn take(&self, ceremony: &str) -> Option<Arc<Pending>> {
        self.pending.remove(ceremony)
    }

    /// A new user handle for an account's first passkey (later ones reuse the stored one).
    pub fn new_user_handle() -> String {
        Uuid::new_v4().to_string()
    }

    /// Starts registering a passkey for `account` (a key such as `mailbox:alice@example.org`), shown to the
    /// user as `user_name` / `display_name`; `existing` are the account's stored credentials, which the
    /// authenticator is told not to register twice.
    pub fn start_registration(
        &self,
        account: &str,
        user_handle: &str,
        user_name: &str,
        display_name: &str,
        existing: &[String],
    ) -> Result<Challenge, Error> {
        let handle = Uuid::parse_str(user_handle)
            .map_err(|err| Error::Internal(format!("a stored passkey user handle is not a UUID: {err}")))?;
        let exclude = existing.iter().map(|c| stored(c).map(|p| p.cred_id().clone())).collect::<Result<Vec<_>, _>>()?;
        let (options, state) = self
            .webauthn
            .start_passkey_registration(handle, user_name, display_name, Some(exclude).filter(|e| !e.is_empty()))
            .map_err(|err| Error::Internal(format!("a passkey registration cannot start: {err}")))?;
        let mut options = serde_json::to_value(&options)
            .map_err(|err| Error::Internal(format!("passkey options cannot be written: {err}")))?;
        // A discoverable credential, so it can sign in without a name typed first.
        if let Some(selection) =
            options.pointer_mut("/publicKey/authenticatorSelection").and_then(|s| s.as_object_mut())
        {
            selection.insert("residentKey".into(), "required".into());
            selection.insert("requireResidentKey".into(), true.into());
        }
        let ceremony = self.remember(Pending::Registration {
            account: account.to_string(),
            user_handle: user_handle.to_string(),
            state,
        });
        Ok(Challenge { ceremony, options })
    }

    /// Finishes a registration started for `account` with the browser's answer (the JSON of the
    /// `PublicKeyCredential`, binary fields base64url).
    pub fn finish_registration(&self, ceremony: &str, account: &str, answer: &str) -> Result<RegisteredPasskey, Error> {
        let pending =
            self.take(ceremony).ok_or_else(|| Error::invalid("the passkey registration expired; start again"))?;
        let Pending::Registration { account: started_for, user_handle, state } = pending.as_ref() else {
            return Err(Error::invalid("not a passkey registration"));
        };
        if started_for != account {
            return Err(Error::invalid("the passkey registration was started for another account"));
        }
        let answer: RegisterPublicKeyCredential =
            serde_json::from_str(answer).map_err(|err| refused("the passkey answer is malformed", err))?;
        let passkey = self
            .webauthn
            .finish_passkey_registration(&answer, state)
            .map_err(|err| refused("the passkey was not accepted", err))?;
        Ok(RegisteredPasskey {
            credential_id: BASE64URL_NOPAD.encode(passkey.cred_id()),
            user_handle: user_handle.clone(),
            credential: record(&passkey)?,
            counter: 0,
        })
    }

    /// Starts an authentication of `account` with its stored credentials (at least one).
    pub fn start_authentication(&self, account: &str, credentials: &[String]) -> Result<Challenge, Error> {
        let passkeys = credentials.iter().map(|c| stored(c)).collect::<Result<Vec<_>, _>>()?;
        if passkeys.is_empty() {
            return Err(Error::invalid("this account has no passkey"));
        }
        let (options, state) = self
            .webauthn
            .start_passkey_authentication(&passkeys)
            .map_err(|err| Error::Internal(format!("a passkey authentication cannot start: {err}")))?;
        let options = serde_json::to_value(&options)
            .map_err(|err| Error::Internal(format!("passkey options cannot be written: {err}")))?;
        let ceremony = self.remember(Pending::Authentication { account: account.to_string(), state });
        Ok(Challenge { ceremony, options })
    }

    /// Finishes an authentication started for `account`: checks the browser's answer against the challenge and
    /// the stored credential it names (`stored` are the account's credentials now, so one removed meanwhile
    /// is refused), and returns the use to record.
    pub fn finish_authentication(
        &self,
        ceremony: &str,
        account: &str,
        answer: &str,
        credentials: &[String],
    ) -> Result<PasskeyUse, Error> {
        let pending = self.take(ceremony).ok_or_else(|| Error::invalid("the passkey sign-in expired; start again"))?;
        let Pending::Authentication { account: started_for, state } = pending.as_ref() else {
            return Err(Error::invalid("not a passkey sign-in"));
        };
        if started_for != account {
            return Err(Error::invalid("the passkey sign-in was started for another account"));
        }
        let answer: PublicKeyCredential =
            serde_json::from_str(answer).map_err(|err| refused("the passkey answer is malformed", err))?;
        let (index, mut current) = credentials
            .iter()
            .map(|c| stored(c))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .enumerate()
            .find(|(_, p)| p.cred_id().as_slice() == AsRef::<[u8]>::as_ref(&answer.raw_id))
            .ok_or_else(|| Error::invalid("this passkey is not registered to the account"))?;
        let result = self.webauthn.finish_passkey_authentication(&answer, state).map_err(not_accepted)?;
        current.update_credential(&result);
        Ok(PasskeyUse {
            index,
            credential_id: BASE64URL_NOPAD.encode(result.cred_id()),
            counter: i64::from(result.counter()),
            credential: record(&current)?,
        })
    }
}

impl Passkeys {
    /// Starts a passwordless sign-in: a challenge any discoverable credential of this site can answer, with
    /// user verification required. The account is learnt from the answer ([`Passkeys::claimed`]).
    pub fn start_sign_in(&self) -> Result<Challenge, Error> {
        let (options, state) = self
            .webauthn
            .start_discoverable_authentication()
            .map_err(|err| Error::Internal(format!("a passkey sign-in cannot start: {err}")))?;
        let mut options = serde_json::to_value(&options)
            .map_err(|err| Error::Internal(format!("passkey options cannot be written: {err}")))?;
        // A button starts it, not the browser's autofill: the modal request, not the conditional one.
        if let Some(options) = options.as_object_mut() {
            options.remove("mediation");
        }
        let ceremony = self.remember(Pending::SignIn { state });
        Ok(Challenge { ceremony, options })
    }

    /// Forgets a started ceremony (an answer refused before it was checked: the challenge is used up).
    pub fn abandon(&self, ceremony: &str) {
        self.pending.invalidate(ceremony);
    }

    /// The user handle and credential id a sign-in answer names, to find the stored credential by; nothing
    /// is verified yet.
    pub fn claimed(&self, answer: &str) -> Result<Claimed, Error> {
        let answer: PublicKeyCredential =
            serde_json::from_str(answer).map_err(|err| refused("the passkey answer is malformed", err))?;
        let (handle, credential_id) = self
            .webauthn
            .identify_discoverable_authentication(&answer)
            .map_err(|err| refused("the passkey names no account", err))?;
        Ok(Claimed { user_handle: handle.to_string(), credential_id: BASE64URL_NOPAD.encode(credential_id) })
    }

    /// Finishes a passwordless sign-in against `credential`, the stored record of the credential the answer
    /// names (found through [`Passkeys::claimed`]); the ceremony works once.
    pub fn finish_sign_in(&self, ceremony: &str, answer: &str, credential: &str) -> Result<PasskeyUse, Error> {
        let pending = self.take(ceremony).ok_or_else(|| Error::invalid("the passkey sign-in expired; start again"))?;
        let Pending::SignIn { state } = pending.as_ref() else {
            return Err(Error::invalid("not a passwordless sign-in"));
        };
        let answer: PublicKeyCredential =
            serde_json::from_str(answer).map_err(|err| refused("the passkey answer is malformed", err))?;
        let mut current = stored(credential)?;
        if current.cred_id().as_slice() != AsRef::<[u8]>::as_ref(&answer.raw_id) {
            return Err(Error::invalid("the answer is not from this passkey"));
        }
        let result = self
            .webauthn
            .finish_discoverable_authentication_v2(&answer, state.clone(), &current)
            .map_err(not_accepted)?;
        current.update_credential(&result);
        Ok(PasskeyUse {
            index: 0,
            credential_id: BASE64URL_NOPAD.encode(result.cred_id()),
            counter: i64::from(result.counter()),
            credential: record(&current)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relying_party() -> Passkeys {
        Passkeys::new("https://mail.example.org/", "Gatehouse").unwrap()
    }

    #[test]
    fn registration_asks_for_a_verified_discoverable_credential_of_this_site() {
        let passkeys = relying_party();
        let handle = Passkeys::new_user_handle();
        let challenge = passkeys
            .start_registration("mailbox:alice@example.org", &handle, "alice@example.org", "Alice", &[])
            .unwrap();
        let options = &challenge.options["publicKey"];
        assert_eq!(options["rp"]["id"], "mail.example.org", "{options}");
        assert_eq!(options["user"]["name"], "alice@example.org");
        assert_eq!(options["authenticatorSelection"]["residentKey"], "required", "{options}");
        assert_eq!(options["authenticatorSelection"]["userVerification"], "required", "{options}");
        assert_eq!(options["attestation"], "none", "{options}");
        assert!(options["challenge"].as_str().is_some_and(|c| c.len() >= 22), "{options}");
        let other = passkeys.start_registration("mailbox:alice@example.org", &handle, "a", "A", &[]).unwrap();
        assert_ne!(challenge.ceremony, other.ceremony);
        assert_ne!(options["challenge"], other.options["publicKey"]["challenge"], "a new challenge each time");
    }

    #[test]
    fn a_ceremony_is_bound_to_its_account_and_works_once() {
        let passkeys = relying_party();
        let handle = Passkeys::new_user_handle();
        let started = passkeys.start_registration("mailbox:alice@example.org", &handle, "alice", "Alice", &[]).unwrap();
        let other = passkeys.finish_registration(&started.ceremony, "mailbox:bob@example.org", "{}");
        assert!(matches!(other, Err(Error::Invalid(ref m)) if m.contains("another account")), "{other:?}");
        // Taken out by the first try: a second one finds nothing.
        let again = passkeys.finish_registration(&started.ceremony, "mailbox:alice@example.org", "{}");
        assert!(matches!(again, Err(Error::Invalid(ref m)) if m.contains("expired")), "{again:?}");
        let started = passkeys.start_registration("mailbox:alice@example.org", &handle, "alice", "Alice", &[]).unwrap();
        let malformed = passkeys.finish_registration(&started.ceremony, "mailbox:alice@example.org", "{\"id\":1}");
        assert!(matches!(malformed, Err(Error::Invalid(ref m)) if m.contains("malformed")), "{malformed:?}");
        let unknown = passkeys.finish_authentication("nope", "mailbox:alice@example.org", "{}", &[]);
        assert!(matches!(unknown, Err(Error::Invalid(_))), "{unknown:?}");
    }

    #[test]
    fn a_passwordless_sign_in_names_no_credential_and_requires_verification() {
        let passkeys = relying_party();
        let started = passkeys.start_sign_in().unwrap();
        let options = &started.options["publicKey"];
        assert_eq!(options["userVerification"], "required", "{options}");
        assert!(options["allowCredentials"].as_array().is_none_or(|a| a.is_empty()), "{options}");
        assert!(started.options.get("mediation").is_none(), "a button starts it: {}", started.options);
        let malformed = passkeys.finish_sign_in(&started.ceremony, "{}", "{}");
        assert!(matches!(malformed, Err(Error::Invalid(_))), "{malformed:?}");
        let again = passkeys.finish_sign_in(&started.ceremony, "{}", "{}");
        assert!(matches!(again, Err(Error::Invalid(ref m)) if m.contains("expired")), "works once: {again:?}");
        assert!(matches!(passkeys.claimed("{}"), Err(Error::Invalid(_))));
    }

    #[test]
    fn an_account_without_passkeys_cannot_start_a_sign_in() {
        let started = relying_party().start_authentication("mailbox:alice@example.org", &[]);
        assert!(matches!(started, Err(Error::Invalid(_))), "{started:?}");
    }

    #[test]
    fn the_public_url_must_name_a_host() {
        assert!(Passkeys::new("not a url", "Gatehouse").is_err());
        assert!(Passkeys::new("http://localhost:8080", "Gatehouse").is_ok(), "browsers allow localhost over http");
    }
}
