//! The decision engine against an in-memory directory: every rule of the pipeline, and how much hashing each
//! decision costs (counted on the hash pool).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use gatehouse_core::{AdminRole, Error, ProtocolSet, Service};
use gatehouse_engine::*;
use gatehouse_passwords::{GenerateScheme, HashPool, HashPoolConfig, Verification, VerifyOptions, Zeroizing, generate};

#[derive(Default)]
struct Memory {
    mailboxes: Mutex<HashMap<String, MailboxLogin>>,
    app_passwords: Mutex<HashMap<i64, AppPasswordLogin>>,
    masters: Mutex<HashMap<String, MasterLogin>>,
    sso_tokens: Mutex<HashMap<i64, SsoTokenLogin>>,
    /// TOTP secrets by owner name, with the last time step used.
    totp: Mutex<HashMap<String, (String, Option<i64>)>>,
    /// Unused recovery-code hashes by owner name.
    recovery: Mutex<HashMap<String, Vec<String>>>,
    replaced: Mutex<Vec<(i64, String)>>,
    /// Legacy app passwords, and the secrets recorded for them (standing in for keyed fingerprints).
    legacy: Mutex<Vec<AppPasswordLogin>>,
    legacy_fingerprints: Mutex<HashMap<i64, Vec<u8>>>,
    down: AtomicBool,
    /// Mailbox lookups made (database round trips, in the store).
    lookups: AtomicUsize,
}

impl Memory {
    fn check(&self) -> Result<(), Error> {
        if self.down.load(Ordering::Relaxed) { Err(Error::Unavailable("database down".into())) } else { Ok(()) }
    }
}

/// The directory handed to the engine; the test keeps another handle on the same memory.
struct Dir(std::sync::Arc<Memory>);

impl Directory for Dir {
    async fn mailbox(&self, address: &str) -> Result<Option<MailboxLogin>, Error> {
        self.0.lookups.fetch_add(1, Ordering::Relaxed);
        self.0.check()?;
        Ok(self.0.mailboxes.lock().unwrap().get(address).cloned())
    }
    async fn app_password(&self, id: i64) -> Result<Option<AppPasswordLogin>, Error> {
        self.0.check()?;
        Ok(self.0.app_passwords.lock().unwrap().get(&id).cloned())
    }
    async fn master_user(&self, username: &str) -> Result<Option<MasterLogin>, Error> {
        self.0.check()?;
        Ok(self.0.masters.lock().unwrap().get(username).cloned())
    }
    async fn admin_as_master(&self, username: &str) -> Result<Option<MasterLogin>, Error> {
        self.0.check()?;
        Ok((username == "ops").then(|| MasterLogin {
            username: "ops".into(),
            password_hash: hash("opspw"),
            scope: MasterScopeLogin::Owned(vec!["other.org".into()]),
            active: true,
            revision: 0,
        }))
    }
    async fn sso_token(&self, id: i64) -> Result<Option<SsoTokenLogin>, Error> {
        self.0.check()?;
        Ok(self.0.sso_tokens.lock().unwrap().get(&id).cloned())
    }
    async fn admin(&self, username: &str) -> Result<Option<AdminLogin>, Error> {
        self.0.check()?;
        let second_factor_enabled = self.0.totp.lock().unwrap().contains_key(username);
        let admin = |kind, active| AdminLogin {
            username: username.into(),
            kind,
            password_hash: hash("adminpw"),
            active,
            second_factor_enabled,
            force_totp: false,
            force_password_change: username == "helper",
        };
        Ok(match username {
            "root" => Some(admin(AdminRole::Admin, true)),
            "helper" => Some(admin(AdminRole::DomainAdmin, true)),
            "retired" => Some(admin(AdminRole::Admin, false)),
            _ => None,
        })
    }
    async fn totp_secret(&self, owner: &SecondFactorOwner) -> Result<Option<TotpSecretLogin>, Error> {
        self.0.check()?;
        Ok(self.0.totp.lock().unwrap().get(owner.name()).map(|(secret, _)| TotpSecretLogin { secret: secret.clone() }))
    }
    async fn claim_totp_step(&self, owner: &SecondFactorOwner, step: i64) -> Result<bool, Error> {
        self.0.check()?;
        let mut totp = self.0.totp.lock().unwrap();
        let Some((_, last)) = totp.get_mut(owner.name()) else { return Ok(false) };
        if last.is_some_and(|last| last >= step) {
            return Ok(false);
        }
        *last = Some(step);
        Ok(true)
    }
    async fn passkeys(&self, _owner: &SecondFactorOwner) -> Result<Vec<PasskeyLogin>, Error> {
        self.0.check()?;
        Ok(Vec::new())
    }
    async fn passkey_by_credential(&self, _credential_id: &str) -> Result<Option<PasskeyOwnerLogin>, Error> {
        self.0.check()?;
        Ok(None)
    }
    async fn record_passkey_use(&self, _id: i64, _counter: i64, _credential: String) -> Result<(), Error> {
        self.0.check()
    }
    async fn use_recovery_code(&self, owner: &SecondFactorOwner, code_hash: &str) -> Result<bool, Error> {
        self.0.check()?;
        let mut recovery = self.0.recovery.lock().unwrap();
        let Some(codes) = recovery.get_mut(owner.name()) else { return Ok(false) };
        let before = codes.len();
        codes.retain(|hash| hash != code_hash);
        Ok(codes.len() < before)
    }
    async fn legacy_app_passwords(&self, mailbox_id: i64, secret: &[u8]) -> Result<LegacyCandidates, Error> {
        self.0.check()?;
        let recorded = self.0.legacy_fingerprints.lock().unwrap();
        let mut candidates = LegacyCandidates::default();
        for app in self.0.legacy.lock().unwrap().iter().filter(|app| app.mailbox_id == mailbox_id) {
            match recorded.get(&app.id) {
                Some(known) if known.as_slice() == secret => candidates.by_fingerprint = Some(app.clone()),
                Some(_) => {}
                None => candidates.unrecorded.push(app.clone()),
            }
        }
        Ok(candidates)
    }
    async fn remember_legacy_app_password(&self, _mailbox_id: i64, id: i64, secret: &[u8]) -> Result<(), Error> {
        self.0.legacy_fingerprints.lock().unwrap().insert(id, secret.to_vec());
        Ok(())
    }
    async fn replace_password_hash(&self, mailbox_id: i64, old: &str, new: &str) -> Result<bool, Error> {
        self.0.check()?;
        let mut mailboxes = self.0.mailboxes.lock().unwrap();
        let Some(mailbox) = mailboxes.values_mut().find(|m| m.id == mailbox_id) else { return Ok(false) };
        if mailbox.password_hash.as_deref() != Some(old) {
            return Ok(false);
        }
        mailbox.password_hash = Some(new.to_string());
        self.0.replaced.lock().unwrap().push((mailbox_id, new.to_string()));
        Ok(true)
    }
}

const SCHEME: GenerateScheme = GenerateScheme::BlfCrypt { cost: 4 };

fn hash(password: &str) -> String {
    generate(password.as_bytes(), &SCHEME).unwrap()
}

struct Fixture {
    memory: std::sync::Arc<Memory>,
    pool: HashPool,
    engine: Engine<Dir>,
}

fn mailbox(id: i64, address: &str, password_hash: Option<String>, protocols: &str) -> MailboxLogin {
    MailboxLogin {
        id,
        address: address.into(),
        domain: address.split_once('@').unwrap().1.into(),
        active: true,
        domain_active: true,
        protocols: protocols.parse().unwrap(),
        auth_source: "local".into(),
        source_active: true,
        external_id: None,
        password_hash,
        second_factor_enabled: false,
        legacy_app_passwords: false,
        force_totp: false,
        force_password_change: false,
        revision: 0,
    }
}

fn fixture() -> Fixture {
    let memory = std::sync::Arc::new(Memory::default());
    {
        let mut mailboxes = memory.mailboxes.lock().unwrap();
        mailboxes
            .insert("alice@example.org".into(), mailbox(1, "alice@example.org", Some(hash("alicepw")), "imap,smtp"));
        mailboxes.insert("bob@example.org".into(), mailbox(2, "bob@example.org", Some(hash("bobpw")), "all"));
        mailboxes.insert("carol@other.org".into(), mailbox(3, "carol@other.org", Some(hash("carolpw")), "all"));
        let mut masters = memory.masters.lock().unwrap();
        masters.insert(
            "master@example.org".into(),
            MasterLogin {
                username: "master@example.org".into(),
                password_hash: hash("masterpw"),
                scope: MasterScopeLogin::Domain("example.org".into()),
                active: true,
                revision: 0,
            },
        );
    }
    let pool =
        HashPool::new(HashPoolConfig { workers: 1, default_scheme: SCHEME, ..HashPoolConfig::default() }).unwrap();
    let config = EngineConfig { password_scheme: SCHEME, ..EngineConfig::default() };
    Fixture { engine: Engine::new(Dir(memory.clone()), pool.clone(), config), memory, pool }
}

fn request(user: &str, password: &str, service: Service) -> LoginRequest {
    LoginRequest {
        username: user.into(),
        authzid: None,
        credentials: Credentials::password(password.as_bytes()),
        service: LoginService::Protocol(service),
        remote_ip: Some("192.0.2.10".parse().unwrap()),
        secured: true,
        entry: EntryPoint::Operator,
        master_second_pass: None,
    }
}

impl Fixture {
    async fn login(&self, request: &LoginRequest) -> (Decision, u64) {
        let before = self.pool.stats().submitted;
        let decision = self.engine.authenticate(request).await;
        (decision, self.pool.stats().submitted - before)
    }

    fn set_mailbox(&self, address: &str, change: impl FnOnce(&mut MailboxLogin)) {
        change(self.memory.mailboxes.lock().unwrap().get_mut(address).unwrap());
    }
}

fn reason(decision: &Decision) -> Option<DenyReason> {
    match decision {
        Decision::Denied { reason, .. } => Some(*reason),
        _ => None,
    }
}

#[tokio::test]
async fn local_passwords_unknown_users_and_the_cache() {
    let f = fixture();
    let (decision, hashes) = f.login(&request("Alice@Example.org", "alicepw", Service::Imap)).await;
    assert!(
        matches!(&decision, Decision::Allowed { user, via: Via::Password, cached: false, .. } if user == "alice@example.org")
    );
    assert_eq!(hashes, 1);
    let (decision, hashes) = f.login(&request("alice@example.org", "alicepw", Service::Imap)).await;
    assert!(matches!(decision, Decision::Allowed { cached: true, .. }), "{decision:?}");
    assert_eq!(hashes, 0, "a cached success costs no hash");
    // Any change to the mailbox (revision) ends the cached success at once.
    f.set_mailbox("alice@example.org", |m| m.revision += 1);
    let (decision, hashes) = f.login(&request("alice@example.org", "alicepw", Service::Imap)).await;
    assert!(matches!(decision, Decision::Allowed { cached: false, .. }));
    assert_eq!(hashes, 1);

    let (decision, hashes) = f.login(&request("alice@example.org", "wrong", Service::Imap)).await;
    assert_eq!(reason(&decision), Some(DenyReason::WrongPassword));
    assert_eq!(hashes, 1);
    let (decision, hashes) = f.login(&request("nobody@example.org", "x", Service::Imap)).await;
    assert_eq!(reason(&decision), Some(DenyReason::UnknownUser));
    assert_eq!(hashes, 1, "an unknown user costs one dummy hash, like a real one");
}

#[tokio::test]
async fn the_protocol_gate_and_inactive_accounts_refuse_after_one_dummy_hash_like_an_unknown_user() {
    let f = fixture();
    let (decision, hashes) = f.login(&request("alice@example.org", "alicepw", Service::Pop3)).await;
    assert_eq!(reason(&decision), Some(DenyReason::ServiceNotAllowed));
    assert_eq!(hashes, 1, "the correct password is never tried, but the refusal costs what a wrong one does");
    // Even once a success for IMAP is remembered, POP3 stays refused at the same cost.
    assert!(f.login(&request("alice@example.org", "alicepw", Service::Imap)).await.0.is_allowed());
    let (decision, hashes) = f.login(&request("alice@example.org", "alicepw", Service::Pop3)).await;
    assert_eq!((reason(&decision), hashes), (Some(DenyReason::ServiceNotAllowed), 1));
    f.set_mailbox("bob@example.org", |m| m.domain_active = false);
    let (decision, hashes) = f.login(&request("bob@example.org", "bobpw", Service::Imap)).await;
    assert_eq!(reason(&decision), Some(DenyReason::Disabled));
    assert_eq!(hashes, 1);
}

#[tokio::test]
async fn weak_hashes_are_upgraded_on_login() {
    let f = fixture();
    f.set_mailbox("bob@example.org", |m| m.password_hash = Some("{PLAIN-MD5}5f4dcc3b5aa765d61d8327deb882cf99".into()));
    let (decision, _) = f.login(&request("bob@example.org", "password", Service::Imap)).await;
    assert!(decision.is_allowed(), "{decision:?}");
    let replaced = f.memory.replaced.lock().unwrap().clone();
    assert_eq!(replaced.len(), 1);
    assert!(replaced[0].1.starts_with("{BLF-CRYPT}$2y$04$"), "{}", replaced[0].1);
    let options = VerifyOptions::default();
    assert_eq!(gatehouse_passwords::verify(&replaced[0].1, b"password", &options), Verification::Match);
    // A hash already in the configured scheme is left alone.
    f.login(&request("alice@example.org", "alicepw", Service::Imap)).await;
    assert_eq!(f.memory.replaced.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn app_passwords_cost_exactly_one_hash_and_respect_scope_expiry_and_owner() {
    let f = fixture();
    let secret = app_password::new_secret();
    let add = |id: i64, mailbox_id: i64, protocols: &str, expires_at: Option<i64>| {
        f.memory.app_passwords.lock().unwrap().insert(
            id,
            AppPasswordLogin {
                id,
                mailbox_id,
                secret_hash: generate(secret.as_bytes(), &GenerateScheme::Ssha256).unwrap(),
                protocols: protocols.parse::<ProtocolSet>().unwrap(),
                active: true,
                expires_at,
            },
        );
    };
    add(7, 1, "smtp", None);
    add(8, 1, "imap", Some(1));
    add(9, 2, "imap", None);
    let token = |id| app_password::token(id, &secret);

    let (decision, hashes) = f.login(&request("alice@example.org", &token(7), Service::Smtp)).await;
    assert!(matches!(decision, Decision::Allowed { via: Via::AppPassword(7), .. }), "{decision:?}");
    assert_eq!(hashes, 1, "one app password, one hash — never a loop over the mailbox's app passwords");
    let (decision, _) = f.login(&request("alice@example.org", &token(7), Service::Imap)).await;
    assert_eq!(reason(&decision), Some(DenyReason::ServiceNotAllowed));
    let (decision, _) = f.login(&request("alice@example.org", &token(8), Service::Imap)).await;
    assert_eq!(reason(&decision), Some(DenyReason::Disabled), "expired");
    let (decision, _) = f.login(&request("alice@example.org", &token(9), Service::Imap)).await;
    assert_eq!(reason(&decision), Some(DenyReason::WrongPassword), "bob's token does not open alice's mailbox");

    // Two-factor authentication: the primary password no longer opens protocols, app passwords still do.
    f.set_mailbox("alice@example.org", |m| {
        m.second_factor_enabled = true;
        m.revision += 1;
    });
    let (decision, hashes) = f.login(&request("alice@example.org", "alicepw", Service::Smtp)).await;
    assert_eq!(reason(&decision), Some(DenyReason::WrongPassword));
    assert_eq!(hashes, 0);
    assert!(f.login(&request("alice@example.org", &token(7), Service::Smtp)).await.0.is_allowed());
}

#[tokio::test]
async fn legacy_app_passwords_are_found_by_their_fingerprint_after_the_first_use() {
    let f = fixture();
    for (id, secret, protocols) in
        [(20, "phone-secret", "imap,smtp"), (21, "laptop-secret", "imap"), (22, "tablet-secret", "imap")]
    {
        f.memory.legacy.lock().unwrap().push(AppPasswordLogin {
            id,
            mailbox_id: 1,
            secret_hash: generate(secret.as_bytes(), &GenerateScheme::Ssha256).unwrap(),
            protocols: protocols.parse().unwrap(),
            active: true,
            expires_at: None,
        });
    }
    f.set_mailbox("alice@example.org", |m| {
        m.legacy_app_passwords = true;
        m.second_factor_enabled = true;
        m.revision += 1;
    });
    // The first use: those never used are tried in turn (here all three), then the one that matched is recorded.
    let (decision, hashes) = f.login(&request("alice@example.org", "tablet-secret", Service::Imap)).await;
    assert!(matches!(decision, Decision::Allowed { via: Via::AppPassword(22), .. }), "{decision:?}");
    assert_eq!(hashes, 3);
    f.engine.forget_all();
    let (decision, hashes) = f.login(&request("alice@example.org", "tablet-secret", Service::Imap)).await;
    assert!(decision.is_allowed(), "{decision:?}");
    assert_eq!(hashes, 1, "found by its fingerprint: exactly one hash");
    // Scopes as for any app password; never the web UI.
    let (decision, hashes) = f.login(&request("alice@example.org", "laptop-secret", Service::Smtp)).await;
    assert_eq!(reason(&decision), Some(DenyReason::ServiceNotAllowed));
    assert_eq!(hashes, 2, "the two not used yet");
    let web =
        LoginRequest { service: LoginService::Web, ..request("alice@example.org", "tablet-secret", Service::Imap) };
    let (decision, _) = f.login(&web).await;
    assert!(!decision.is_allowed(), "{decision:?}");
    // Once each was used, a wrong password costs no hash of theirs.
    f.login(&request("alice@example.org", "phone-secret", Service::Smtp)).await;
    let (decision, hashes) = f.login(&request("alice@example.org", "guess", Service::Imap)).await;
    assert_eq!(reason(&decision), Some(DenyReason::WrongPassword));
    assert_eq!(hashes, 0, "two-factor on: the account password is not even tried");
    // Another mailbox's legacy app password opens nothing here.
    let (decision, _) = f.login(&request("bob@example.org", "phone-secret", Service::Imap)).await;
    assert_eq!(reason(&decision), Some(DenyReason::WrongPassword));
}

#[tokio::test]
async fn without_identity_sources_provider_mailboxes_need_an_app_password() {
    let f = fixture();
    f.set_mailbox("bob@example.org", |m| m.auth_source = "corp-ldap".into());
    let (decision, hashes) = f.login(&request("bob@example.org", "bobpw", Service::Imap)).await;
    let Decision::Denied { detail, .. } = decision else { panic!("{decision:?}") };
    assert!(detail.contains("not available for auth source 'corp-ldap'"), "{detail}");
    assert!(detail.contains("use an app password"), "{detail}");
    assert_eq!(hashes, 0);
}

#[tokio::test]
async fn a_failing_directory_is_a_temporary_failure_never_a_wrong_password() {
    let f = fixture();
    f.memory.down.store(true, Ordering::Relaxed);
    let (decision, _) = f.login(&request("alice@example.org", "alicepw", Service::Imap)).await;
    assert!(matches!(decision, Decision::TempFail { .. }), "{decision:?}");
    let (decision, _) = f.login(&request("alice@example.org*master@example.org", "masterpw", Service::Imap)).await;
    assert!(matches!(decision, Decision::TempFail { .. }), "{decision:?}");
}

#[tokio::test]
async fn master_users_stay_inside_their_scope_even_after_a_cached_success() {
    let f = fixture();
    let (decision, _) = f.login(&request("alice@example.org*master@example.org", "masterpw", Service::Imap)).await;
    assert!(
        matches!(&decision, Decision::Allowed { user, master_user: Some(m), via: Via::MasterUser, .. }
            if user == "alice@example.org" && m == "master@example.org"),
        "{decision:?}"
    );
    let mut via_authzid = request("master@example.org", "masterpw", Service::Imap);
    via_authzid.authzid = Some("bob@example.org".into());
    assert!(f.login(&via_authzid).await.0.is_allowed());
    // The same master and password, another domain: refused, the cache notwithstanding.
    let (decision, _) = f.login(&request("carol@other.org*master@example.org", "masterpw", Service::Imap)).await;
    assert_eq!(reason(&decision), Some(DenyReason::ServiceNotAllowed));
    let (decision, _) = f.login(&request("alice@example.org*master@example.org", "wrong", Service::Imap)).await;
    assert_eq!(reason(&decision), Some(DenyReason::WrongPassword));
    let (decision, _) = f.login(&request("master@example.org*master@example.org", "masterpw", Service::Imap)).await;
    assert_eq!(reason(&decision), Some(DenyReason::BadRequest), "a master user cannot log in as itself");
    // Deactivating the master user ends its cached successes too.
    f.memory.masters.lock().unwrap().get_mut("master@example.org").unwrap().active = false;
    f.memory.masters.lock().unwrap().get_mut("master@example.org").unwrap().revision += 1;
    let (decision, _) = f.login(&request("alice@example.org*master@example.org", "masterpw", Service::Imap)).await;
    assert_eq!(reason(&decision), Some(DenyReason::Disabled));
}

#[tokio::test]
async fn a_banned_address_is_refused_before_any_hash() {
    let memory = fixture().memory;
    let pool =
        HashPool::new(HashPoolConfig { workers: 1, default_scheme: SCHEME, ..HashPoolConfig::default() }).unwrap();
    let guard = GuardConfig { ban_after: 3, max_delay: std::time::Duration::from_millis(1), ..GuardConfig::default() };
    let f = Fixture {
        engine: Engine::new(
            Dir(memory.clone()),
            pool.clone(),
            EngineConfig { password_scheme: SCHEME, guard, ..EngineConfig::default() },
        ),
        memory,
        pool,
    };
    for _ in 0..3 {
        f.login(&request("alice@example.org", "wrong", Service::Imap)).await;
    }
    let (decision, hashes) = f.login(&request("alice@example.org", "alicepw", Service::Imap)).await;
    assert_eq!(reason(&decision), Some(DenyReason::Banned));
    assert_eq!(hashes, 0);
    let mut elsewhere = request("alice@example.org", "alicepw", Service::Imap);
    elsewhere.remote_ip = Some("198.51.100.1".parse().unwrap());
    assert!(f.login(&elsewhere).await.0.is_allowed());
}

#[tokio::test]
async fn administrators_act_as_master_users_only_when_configured() {
    let f = fixture();
    let (decision, _) = f.login(&request("carol@other.org*ops", "opspw", Service::Imap)).await;
    assert_eq!(reason(&decision), Some(DenyReason::UnknownUser), "off by default");
    let config = EngineConfig { password_scheme: SCHEME, admins_as_masters: true, ..EngineConfig::default() };
    let engine = Engine::new(Dir(f.memory.clone()), f.pool.clone(), config);
    let decision = engine.authenticate(&request("carol@other.org*ops", "opspw", Service::Imap)).await;
    assert!(matches!(&decision, Decision::Allowed { master_user: Some(m), .. } if m == "ops"), "{decision:?}");
    let decision = engine.authenticate(&request("alice@example.org*ops", "opspw", Service::Imap)).await;
    assert_eq!(reason(&decision), Some(DenyReason::ServiceNotAllowed), "outside the admin's domains");
}

#[tokio::test]
async fn sso_tokens_open_one_mailbox_for_what_sogo_does_while_the_session_lives() {
    let f = fixture();
    let secret = sso::new_secret();
    let token = sso::token(9, &secret);
    let stored = SsoTokenLogin {
        mailbox: "bob@example.org".into(),
        secret_hash: sso::hash_secret(secret.as_bytes()),
        expires_at: i64::MAX,
        session_alive: true,
        impersonator: None,
    };
    f.memory.sso_tokens.lock().unwrap().insert(9, stored.clone());
    let before = f.pool.stats().submitted;
    for service in [Service::Imap, Service::Sieve, Service::Smtp] {
        let decision = f.engine.authenticate(&request("bob@example.org", &token, service)).await;
        assert!(matches!(decision, Decision::Allowed { via: Via::SsoToken(9), cached: false, .. }), "{decision:?}");
    }
    assert_eq!(f.pool.stats().submitted, before, "an SSO token costs no password hash");
    for service in [Service::Pop3, Service::Dav, Service::Eas] {
        let decision = f.engine.authenticate(&request("bob@example.org", &token, service)).await;
        assert!(matches!(decision, Decision::Denied { reason: DenyReason::ServiceNotAllowed, .. }), "{decision:?}");
    }
    let other = f.engine.authenticate(&request("carol@other.org", &token, Service::Imap)).await;
    assert!(matches!(other, Decision::Denied { reason: DenyReason::WrongPassword, .. }), "{other:?}");
    let wrong = sso::token(9, &sso::new_secret());
    let decision = f.engine.authenticate(&request("bob@example.org", &wrong, Service::Imap)).await;
    assert!(matches!(decision, Decision::Denied { reason: DenyReason::WrongPassword, .. }), "{decision:?}");
    // alice's protocols do not include webmail (sogo): her tokens are refused.
    f.memory
        .sso_tokens
        .lock()
        .unwrap()
        .insert(10, SsoTokenLogin { mailbox: "alice@example.org".into(), ..stored.clone() });
    let alice = f.engine.authenticate(&request("alice@example.org", &sso::token(10, &secret), Service::Imap)).await;
    assert!(matches!(alice, Decision::Denied { reason: DenyReason::ServiceNotAllowed, .. }), "{alice:?}");
    // The session ends: the very next login with the token fails (nothing was cached).
    f.memory.sso_tokens.lock().unwrap().get_mut(&9).unwrap().session_alive = false;
    let ended = f.engine.authenticate(&request("bob@example.org", &token, Service::Imap)).await;
    assert!(matches!(ended, Decision::Denied { reason: DenyReason::Disabled, .. }), "{ended:?}");
    f.memory.down.store(true, Ordering::Relaxed);
    f.memory.sso_tokens.lock().unwrap().get_mut(&9).unwrap().session_alive = true;
    let down = f.engine.authenticate(&request("bob@example.org", &token, Service::Imap)).await;
    assert!(matches!(down, Decision::TempFail { .. }), "{down:?}");
}

#[tokio::test]
async fn administrators_log_in_only_at_their_own_area() {
    let f = fixture();
    let admin = |name: &str, password: &str, kind| AdminLoginRequest {
        username: name.into(),
        password: Zeroizing::new(password.as_bytes().to_vec()),
        kind,
        remote_ip: Some("192.0.2.7".parse().unwrap()),
    };
    let ok = f.engine.authenticate_admin(&admin("root", "adminpw", AdminRole::Admin)).await;
    assert!(matches!(ok, Decision::Allowed { ref user, .. } if user == "root"), "{ok:?}");
    let ok = f.engine.authenticate_admin(&admin("helper", "adminpw", AdminRole::DomainAdmin)).await;
    assert!(ok.is_allowed(), "{ok:?}");
    let before = f.pool.stats().submitted;
    for (name, password, kind, reason) in [
        ("root", "wrong", AdminRole::Admin, DenyReason::WrongPassword),
        ("root", "adminpw", AdminRole::DomainAdmin, DenyReason::UnknownUser),
        ("helper", "adminpw", AdminRole::Admin, DenyReason::UnknownUser),
        ("nobody", "adminpw", AdminRole::Admin, DenyReason::UnknownUser),
        ("retired", "adminpw", AdminRole::Admin, DenyReason::Disabled),
    ] {
        let decision = f.engine.authenticate_admin(&admin(name, password, kind)).await;
        assert!(matches!(decision, Decision::Denied { reason: r, .. } if r == reason), "{name}: {decision:?}");
    }
    assert_eq!(f.pool.stats().submitted - before, 5, "one hash per attempt, real or dummy");
}

#[tokio::test]
async fn a_master_login_obeys_the_target_mailboxs_protocol_flags() {
    let f = fixture();
    // alice may use IMAP and SMTP only.
    let (decision, _) = f.login(&request("alice@example.org*master@example.org", "masterpw", Service::Imap)).await;
    assert!(decision.is_allowed(), "{decision:?}");
    for service in [Service::Pop3, Service::Sieve] {
        let (decision, _) = f.login(&request("alice@example.org*master@example.org", "masterpw", service)).await;
        assert_eq!(reason(&decision), Some(DenyReason::ServiceNotAllowed), "{service}: {decision:?}");
        let mut authzid = request("master@example.org", "masterpw", service);
        authzid.authzid = Some("alice@example.org".into());
        assert_eq!(reason(&f.login(&authzid).await.0), Some(DenyReason::ServiceNotAllowed), "{service} by authzid");
    }
}

#[tokio::test]
async fn each_entry_point_accepts_only_its_services_and_master_logins_where_they_belong() {
    let f = fixture();
    let from = |entry: EntryPoint, user: &str, password: &str, service: LoginService| {
        let mut request = request(user, password, Service::Imap);
        request.entry = entry;
        request.service = service;
        request
    };
    let imap = LoginService::Protocol(Service::Imap);
    // The mail server never asks for the web UI (where TOTP and the protocol flags work differently).
    let (decision, hashes) =
        f.login(&from(EntryPoint::MailServer, "bob@example.org", "bobpw", LoginService::Web)).await;
    assert_eq!((reason(&decision), hashes), (Some(DenyReason::ServiceNotAllowed), 0));
    let dav = LoginService::Protocol(Service::Dav);
    assert_eq!(
        reason(&f.login(&from(EntryPoint::MailServer, "bob@example.org", "bobpw", dav)).await.0),
        Some(DenyReason::ServiceNotAllowed)
    );
    assert!(f.login(&from(EntryPoint::MailServer, "bob@example.org", "bobpw", imap)).await.0.is_allowed());
    // The web UI is the web UI only, and takes no master logins; the refusal is a decision like any other.
    assert_eq!(
        reason(&f.login(&from(EntryPoint::WebUi, "bob@example.org", "bobpw", imap)).await.0),
        Some(DenyReason::ServiceNotAllowed)
    );
    let (decision, hashes) =
        f.login(&from(EntryPoint::WebUi, "bob@example.org*master@example.org", "masterpw", LoginService::Web)).await;
    assert_eq!((reason(&decision), hashes), (Some(DenyReason::ServiceNotAllowed), 0));
    assert!(f.login(&from(EntryPoint::WebUi, "bob@example.org", "bobpw", LoginService::Web)).await.0.is_allowed());
    // nginx in front of SOGo: webmail, DAV and ActiveSync, no master logins even with the right password.
    let (decision, hashes) =
        f.login(&from(EntryPoint::WebmailProxy, "bob@example.org*master@example.org", "masterpw", dav)).await;
    assert_eq!((reason(&decision), hashes), (Some(DenyReason::ServiceNotAllowed), 0));
    assert!(f.login(&from(EntryPoint::WebmailProxy, "bob@example.org", "bobpw", dav)).await.0.is_allowed());
    assert_eq!(
        reason(&f.login(&from(EntryPoint::WebmailProxy, "bob@example.org", "bobpw", imap)).await.0),
        Some(DenyReason::ServiceNotAllowed)
    );
}

#[tokio::test]
async fn dovecots_second_master_pass_is_decided_as_the_master_login_again() {
    let f = fixture();
    let second = |master: &str, password: &str| {
        let mut request = request("bob@example.org", password, Service::Imap);
        request.entry = EntryPoint::MailServer;
        request.master_second_pass = Some(master.into());
        request
    };
    // Not Dovecot's word: without a master user's password the second pass is a wrong password, and an
    // unknown master an unknown user.
    assert_eq!(reason(&f.login(&second("master@example.org", "bobpw")).await.0), Some(DenyReason::WrongPassword));
    assert_eq!(reason(&f.login(&second("nobody@example.org", "masterpw")).await.0), Some(DenyReason::UnknownUser));
    assert_eq!(reason(&f.login(&second("master@example.org", "masterpw")).await.0), None);
    // Right after the first pass, the second costs no hash.
    let (first, _) = f.login(&request("bob@example.org*master@example.org", "masterpw", Service::Imap)).await;
    assert!(first.is_allowed());
    let (decision, hashes) = f.login(&second("master@example.org", "masterpw")).await;
    assert!(
        matches!(&decision, Decision::Allowed { user, master_user: Some(m), .. } if user == "bob@example.org" && m == "master@example.org"),
        "{decision:?}"
    );
    assert_eq!(hashes, 0);
    // The scope still holds.
    let mut outside = second("master@example.org", "masterpw");
    outside.username = "carol@other.org".into();
    assert_eq!(reason(&f.login(&outside).await.0), Some(DenyReason::ServiceNotAllowed));
}

#[tokio::test]
async fn logins_with_a_unicode_domain_find_the_ascii_mailbox() {
    let f = fixture();
    f.memory
        .mailboxes
        .lock()
        .unwrap()
        .insert("user@xn--bcher-kva.test".into(), mailbox(9, "user@xn--bcher-kva.test", Some(hash("userpw")), "all"));
    let (decision, _) = f.login(&request("User@Bücher.test", "userpw", Service::Imap)).await;
    assert!(matches!(&decision, Decision::Allowed { user, .. } if user == "user@xn--bcher-kva.test"), "{decision:?}");
}

#[tokio::test]
async fn webmail_is_opened_by_the_owner_or_by_an_administrator_the_rule_allows() {
    let f = fixture();
    let allowed = |decision: &Decision| decision.is_allowed();
    // bob may use webmail (all protocols), alice may not (imap,smtp).
    assert!(allowed(&f.engine.authorize_webmail(WebmailOpener::Owner("bob@example.org"), "bob@example.org").await));
    let other = f.engine.authorize_webmail(WebmailOpener::Owner("bob@example.org"), "carol@other.org").await;
    assert_eq!(reason(&other), Some(DenyReason::ServiceNotAllowed));
    let no_sogo = f.engine.authorize_webmail(WebmailOpener::Owner("alice@example.org"), "alice@example.org").await;
    assert_eq!(reason(&no_sogo), Some(DenyReason::ServiceNotAllowed));
    // Administrators only with the setting; ops (login_as for other.org) only there.
    let off = f.engine.authorize_webmail(WebmailOpener::Administrator("ops"), "carol@other.org").await;
    assert_eq!(reason(&off), Some(DenyReason::ServiceNotAllowed), "the setting is off");
    let config = EngineConfig { password_scheme: SCHEME, admins_open_webmail: true, ..EngineConfig::default() };
    let engine = Engine::new(Dir(f.memory.clone()), f.pool.clone(), config);
    let opened = engine.authorize_webmail(WebmailOpener::Administrator("ops"), "carol@other.org").await;
    assert!(
        matches!(&opened, Decision::Allowed { master_user: Some(m), via: Via::WebSession, .. } if m == "ops"),
        "{opened:?}"
    );
    let outside = engine.authorize_webmail(WebmailOpener::Administrator("ops"), "bob@example.org").await;
    assert_eq!(reason(&outside), Some(DenyReason::ServiceNotAllowed));
    let nobody = engine.authorize_webmail(WebmailOpener::Administrator("viewer"), "carol@other.org").await;
    assert_eq!(reason(&nobody), Some(DenyReason::ServiceNotAllowed), "no login_as permission");
    // An inactive domain or mailbox ends it, for owners and administrators alike.
    f.set_mailbox("carol@other.org", |m| m.domain_active = false);
    let inactive = engine.authorize_webmail(WebmailOpener::Administrator("ops"), "carol@other.org").await;
    assert_eq!(reason(&inactive), Some(DenyReason::Disabled));
    let own = engine.authorize_webmail(WebmailOpener::Owner("carol@other.org"), "carol@other.org").await;
    assert_eq!(reason(&own), Some(DenyReason::Disabled));
    f.memory.down.store(true, Ordering::Relaxed);
    let down = engine.authorize_webmail(WebmailOpener::Owner("bob@example.org"), "bob@example.org").await;
    assert!(matches!(down, Decision::TempFail { .. }), "{down:?}");
}

#[tokio::test]
async fn during_a_database_outage_recently_confirmed_credentials_still_log_in() {
    let f = fixture();
    assert!(f.login(&request("alice@example.org", "alicepw", Service::Imap)).await.0.is_allowed());
    // bob logged in, then was deactivated, and a login saw it before the outage: that holds during it.
    assert!(f.login(&request("bob@example.org", "bobpw", Service::Imap)).await.0.is_allowed());
    f.set_mailbox("bob@example.org", |m| {
        m.active = false;
        m.revision += 1;
    });
    assert_eq!(
        reason(&f.login(&request("bob@example.org", "bobpw", Service::Imap)).await.0),
        Some(DenyReason::Disabled)
    );
    f.memory.down.store(true, Ordering::Relaxed);
    let bob = f.login(&request("bob@example.org", "bobpw", Service::Imap)).await.0;
    assert!(matches!(bob, Decision::TempFail { .. }), "a deactivation seen before the outage holds: {bob:?}");
    let (decision, hashes) = f.login(&request("alice@example.org", "alicepw", Service::Imap)).await;
    assert!(matches!(decision, Decision::Allowed { cached: true, .. }), "{decision:?}");
    assert_eq!(hashes, 0);
    let other_service = f.login(&request("alice@example.org", "alicepw", Service::Smtp)).await.0;
    assert!(matches!(other_service, Decision::TempFail { .. }), "only what was confirmed: {other_service:?}");
    let wrong = f.login(&request("alice@example.org", "wrong", Service::Imap)).await.0;
    assert!(matches!(wrong, Decision::TempFail { .. }), "never 'wrong password' while the database is away: {wrong:?}");
    // A change this process made (announced by the store) ends it at once.
    f.engine.forget("alice@example.org");
    let forgotten = f.login(&request("alice@example.org", "alicepw", Service::Imap)).await.0;
    assert!(matches!(forgotten, Decision::TempFail { .. }), "{forgotten:?}");

    // With the grace turned off, an outage is a temporary failure for everyone.
    f.memory.down.store(false, Ordering::Relaxed);
    let config =
        EngineConfig { password_scheme: SCHEME, outage_grace: std::time::Duration::ZERO, ..EngineConfig::default() };
    let strict = Engine::new(Dir(f.memory.clone()), f.pool.clone(), config);
    assert!(strict.authenticate(&request("alice@example.org", "alicepw", Service::Imap)).await.is_allowed());
    f.memory.down.store(true, Ordering::Relaxed);
    let refused = strict.authenticate(&request("alice@example.org", "alicepw", Service::Imap)).await;
    assert!(matches!(refused, Decision::TempFail { .. }), "{refused:?}");
}

#[tokio::test]
async fn while_the_change_feed_is_read_cached_logins_need_no_lookup() {
    let f = fixture();
    let lookups = || f.memory.lookups.load(Ordering::Relaxed);
    let alice = || request("alice@example.org", "alicepw", Service::Imap);
    // Without the feed every login looks the mailbox up.
    assert!(f.login(&alice()).await.0.is_allowed());
    assert!(f.login(&alice()).await.0.is_allowed());
    assert_eq!(lookups(), 2);

    f.engine.feed_read(memory::now_millis());
    let before = lookups();
    for _ in 0..5 {
        let (decision, hashes) = f.login(&alice()).await;
        assert!(matches!(decision, Decision::Allowed { cached: true, .. }), "{decision:?}");
        assert_eq!(hashes, 0);
    }
    assert_eq!(lookups(), before, "answered from memory");

    // A change is seen once it is forgotten (this process's changes at once, others' from the feed) ...
    f.set_mailbox("alice@example.org", |m| {
        m.active = false;
        m.revision += 1;
    });
    f.engine.forget("alice@example.org");
    assert_eq!(reason(&f.login(&alice()).await.0), Some(DenyReason::Disabled));
    assert_eq!(lookups(), before + 1);
    // ... and a refusal is remembered like a success would be: the mailbox's state, not the outcome.
    assert_eq!(reason(&f.login(&alice()).await.0), Some(DenyReason::Disabled));
    assert_eq!(lookups(), before + 1);
    f.set_mailbox("alice@example.org", |m| {
        m.active = true;
        m.revision += 1;
    });
    f.engine.forget_every_mailbox();
    assert!(f.login(&alice()).await.0.is_allowed());

    // A feed that cannot be read, or was read too long ago, sends every login to the directory again.
    f.engine.feed_lost();
    let before = lookups();
    assert!(f.login(&alice()).await.0.is_allowed());
    assert_eq!(lookups(), before + 1);
    f.engine.feed_read(memory::now_millis() - memory::FRESHNESS.as_millis() as i64 - 1);
    assert!(f.login(&alice()).await.0.is_allowed());
    assert_eq!(lookups(), before + 2);
    // Unknown users are never remembered: a mailbox created a moment ago logs in.
    f.engine.feed_read(memory::now_millis());
    assert_eq!(
        reason(&f.login(&request("new@example.org", "newpw", Service::Imap)).await.0),
        Some(DenyReason::UnknownUser)
    );
    f.memory
        .mailboxes
        .lock()
        .unwrap()
        .insert("new@example.org".into(), mailbox(77, "new@example.org", Some(hash("newpw")), "imap"));
    assert!(f.login(&request("new@example.org", "newpw", Service::Imap)).await.0.is_allowed());
}

fn now_seconds() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

#[tokio::test]
async fn a_web_login_says_which_step_comes_next() {
    let f = fixture();
    let web = |user: &str, password: &str| {
        let mut request = request(user, password, Service::Imap);
        request.service = LoginService::Web;
        request.entry = EntryPoint::WebUi;
        request
    };
    let next = |decision: Decision| match decision {
        Decision::Allowed { next, .. } => next,
        other => panic!("not allowed: {other:?}"),
    };
    assert_eq!(next(f.login(&web("bob@example.org", "bobpw")).await.0), None);
    f.set_mailbox("bob@example.org", |m| m.force_password_change = true);
    assert_eq!(next(f.login(&web("bob@example.org", "bobpw")).await.0), Some(RequiredStep::ChangePassword));
    f.set_mailbox("bob@example.org", |m| m.force_totp = true);
    assert_eq!(next(f.login(&web("bob@example.org", "bobpw")).await.0), Some(RequiredStep::EnrolSecondFactor));
    f.set_mailbox("bob@example.org", |m| m.second_factor_enabled = true);
    assert_eq!(next(f.login(&web("bob@example.org", "bobpw")).await.0), Some(RequiredStep::SecondFactor));
    // Mail protocols carry no steps.
    let (imap, _) = f.login(&request("bob@example.org", "bobpw", Service::Imap)).await;
    assert_eq!(reason(&imap), Some(DenyReason::WrongPassword), "TOTP on: mail clients need an app password");
    let admin = AdminLoginRequest {
        username: "helper".into(),
        password: Zeroizing::new(b"adminpw".to_vec()),
        kind: AdminRole::DomainAdmin,
        remote_ip: None,
    };
    assert_eq!(next(f.engine.authenticate_admin(&admin).await), Some(RequiredStep::ChangePassword));
}

#[tokio::test]
async fn the_second_factor_is_decided_by_the_engine_behind_the_guard() {
    let memory = fixture().memory;
    let pool =
        HashPool::new(HashPoolConfig { workers: 1, default_scheme: SCHEME, ..HashPoolConfig::default() }).unwrap();
    let guard = GuardConfig { ban_after: 4, max_delay: std::time::Duration::from_millis(1), ..GuardConfig::default() };
    let engine = Engine::new(
        Dir(memory.clone()),
        pool,
        EngineConfig { password_scheme: SCHEME, guard, ..EngineConfig::default() },
    );
    let secret = totp::new_secret();
    memory.totp.lock().unwrap().insert("bob@example.org".into(), (secret.clone(), None));
    let recovery = totp::new_recovery_codes();
    memory
        .recovery
        .lock()
        .unwrap()
        .insert("bob@example.org".into(), recovery.iter().map(|c| totp::hash_recovery_code(c)).collect());
    memory.mailboxes.lock().unwrap().get_mut("bob@example.org").unwrap().force_password_change = true;
    let factor = |code: &str, ip: &str| SecondFactorRequest {
        owner: SecondFactorOwner::Mailbox("bob@example.org".into()),
        code: Zeroizing::new(code.to_string()),
        remote_ip: Some(ip.parse().unwrap()),
    };
    let code = totp::current_code(&secret, now_seconds()).unwrap();
    let first = engine.second_factor(&factor(&code, "192.0.2.50")).await;
    assert!(
        matches!(first, Decision::Allowed { via: Via::SecondFactor, next: Some(RequiredStep::ChangePassword), .. }),
        "the forced password change comes next: {first:?}"
    );
    let replay = engine.second_factor(&factor(&code, "192.0.2.50")).await;
    assert_eq!(reason(&replay), Some(DenyReason::WrongPassword), "a code works once");
    let spaced = format!(" {} ", recovery[0].to_uppercase());
    assert!(engine.second_factor(&factor(&spaced, "192.0.2.50")).await.is_allowed(), "a recovery code, as typed");
    assert_eq!(
        reason(&engine.second_factor(&factor(&recovery[0], "192.0.2.50")).await),
        Some(DenyReason::WrongPassword)
    );
    // Wrong codes count toward the address's ban, like wrong passwords.
    for _ in 0..4 {
        assert_eq!(
            reason(&engine.second_factor(&factor("000000", "198.51.100.9")).await),
            Some(DenyReason::WrongPassword)
        );
    }
    let banned = engine.second_factor(&factor(&recovery[1], "198.51.100.9")).await;
    assert_eq!(reason(&banned), Some(DenyReason::Banned), "{banned:?}");
    // Deactivated after the password was checked: a right second factor opens nothing.
    memory.mailboxes.lock().unwrap().get_mut("bob@example.org").unwrap().active = false;
    let disabled = engine.second_factor(&factor(&recovery[2], "192.0.2.52")).await;
    assert_eq!(reason(&disabled), Some(DenyReason::Disabled), "{disabled:?}");
    memory.down.store(true, Ordering::Relaxed);
    let down = engine.second_factor(&factor(&recovery[1], "192.0.2.51")).await;
    assert!(matches!(down, Decision::TempFail { .. }), "{down:?}");
}

/// An identity source that counts how often it is asked, and creates `new@example.org` on first login.
struct CountingSource {
    memory: std::sync::Arc<Memory>,
    authenticated: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    provisioned: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl IdentitySources for CountingSource {
    async fn authenticate(
        &self,
        source: &str,
        _address: &str,
        credentials: &Credentials,
    ) -> Result<ExternalCheck, Error> {
        assert_eq!(source, "corp");
        self.authenticated.fetch_add(1, Ordering::Relaxed);
        Ok(match credentials {
            Credentials::Password(password) if password.as_slice() == b"newpw" => ExternalCheck::Valid,
            Credentials::Password(_) => ExternalCheck::Invalid,
            Credentials::Bearer(_) => ExternalCheck::Unsupported("passwords only".into()),
        })
    }

    async fn provision(&self, address: &str, credentials: &Credentials) -> Result<Provisioning, Error> {
        self.provisioned.fetch_add(1, Ordering::Relaxed);
        if address != "new@example.org" {
            return Ok(Provisioning::NotFound);
        }
        if credentials.as_password().map(|p| p.as_slice()) != Some(b"newpw") {
            return Ok(Provisioning::Refused("corp: wrong password for a new mailbox".into()));
        }
        let mut created = mailbox(9, address, None, "all");
        created.auth_source = "corp".into();
        self.memory.mailboxes.lock().unwrap().insert(address.into(), created);
        Ok(Provisioning::Created)
    }
}

#[tokio::test]
async fn a_first_login_at_an_identity_provider_asks_it_once() {
    let f = fixture();
    let authenticated = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let provisioned = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let source = CountingSource {
        memory: f.memory.clone(),
        authenticated: authenticated.clone(),
        provisioned: provisioned.clone(),
    };
    let config = EngineConfig { password_scheme: SCHEME, ..EngineConfig::default() };
    let engine = Engine::with_sources(Dir(f.memory.clone()), source, f.pool.clone(), config);
    let counts = || (provisioned.load(Ordering::Relaxed), authenticated.load(Ordering::Relaxed));

    let refused = engine.authenticate(&request("new@example.org", "guess", Service::Imap)).await;
    assert_eq!(reason(&refused), Some(DenyReason::UnknownUser), "{refused:?}");
    assert!(!f.memory.mailboxes.lock().unwrap().contains_key("new@example.org"), "a wrong password creates nothing");
    assert_eq!(counts(), (1, 0));

    let first = engine.authenticate(&request("new@example.org", "newpw", Service::Imap)).await;
    assert!(first.is_allowed(), "{first:?}");
    assert_eq!(counts(), (2, 0), "the source that created the mailbox checked the password: it is not asked again");

    // The mailbox exists now: another protocol asks the source (not provisioning), a wrong password is wrong.
    assert!(engine.authenticate(&request("new@example.org", "newpw", Service::Pop3)).await.is_allowed());
    assert_eq!(counts(), (2, 1));
    let wrong = engine.authenticate(&request("new@example.org", "oops", Service::Smtp)).await;
    assert_eq!(reason(&wrong), Some(DenyReason::WrongPassword), "{wrong:?}");
    assert_eq!(counts(), (2, 2));

    // A bearer token is the source's to judge; a local mailbox never takes one.
    let bearer = |user: &str| LoginRequest {
        credentials: Credentials::Bearer(Zeroizing::new("token".into())),
        ..request(user, "", Service::Imap)
    };
    let unsupported = engine.authenticate(&bearer("new@example.org")).await;
    assert!(!unsupported.is_allowed(), "{unsupported:?}");
    assert_eq!(counts(), (2, 3));
    let local = engine.authenticate(&bearer("alice@example.org")).await;
    assert_eq!(reason(&local), Some(DenyReason::WrongPassword), "{local:?}");
    assert_eq!(counts(), (2, 3));
}

#[tokio::test]
async fn provider_sign_ins_open_only_the_bound_active_mailbox() {
    let f = fixture();
    let mut bound = mailbox(20, "pat@example.org", None, "imap");
    bound.auth_source = "corp".into();
    bound.external_id = Some("sub-1".into());
    f.memory.mailboxes.lock().unwrap().insert("pat@example.org".into(), bound);
    let sign_in = |address: &str, subject: &str| ProviderSignInRequest {
        provider: "corp".into(),
        account: Ok(ExternalAccount {
            subject: subject.into(),
            address: address.into(),
            enabled: true,
            ..ExternalAccount::default()
        }),
        remote_ip: Some("192.0.2.40".parse().unwrap()),
    };
    let allowed = f.engine.sign_in_with_provider(&sign_in("Pat@Example.org", "sub-1")).await;
    assert!(
        matches!(&allowed, Decision::Allowed { user, via: Via::IdentityProvider(p), next: None, .. }
            if user == "pat@example.org" && p == "corp"),
        "{allowed:?}"
    );
    // Another account of the provider with the same address, a local mailbox, another provider's mailbox.
    let other = f.engine.sign_in_with_provider(&sign_in("pat@example.org", "sub-2")).await;
    assert_eq!(reason(&other), Some(DenyReason::WrongPassword), "{other:?}");
    let local = f.engine.sign_in_with_provider(&sign_in("alice@example.org", "sub-1")).await;
    assert_eq!(reason(&local), Some(DenyReason::ServiceNotAllowed), "{local:?}");
    let mut elsewhere = sign_in("pat@example.org", "sub-1");
    elsewhere.provider = "other".into();
    assert_eq!(reason(&f.engine.sign_in_with_provider(&elsewhere).await), Some(DenyReason::ServiceNotAllowed));
    // No mailbox and no provider that creates one; what the provider's answer was refused for.
    let unknown = f.engine.sign_in_with_provider(&sign_in("nobody@example.org", "sub-3")).await;
    assert_eq!(reason(&unknown), Some(DenyReason::UnknownUser), "{unknown:?}");
    let mut refused = sign_in("pat@example.org", "sub-1");
    refused.account = Err("the ID token is refused: nonce is not this sign-in's".into());
    let decision = f.engine.sign_in_with_provider(&refused).await;
    assert!(matches!(&decision, Decision::Denied { detail, .. } if detail.contains("nonce")), "{decision:?}");
    // An inactive mailbox or domain, and a required enrolment the session continues with.
    f.set_mailbox("pat@example.org", |m| m.active = false);
    assert_eq!(
        reason(&f.engine.sign_in_with_provider(&sign_in("pat@example.org", "sub-1")).await),
        Some(DenyReason::Disabled)
    );
    f.set_mailbox("pat@example.org", |m| {
        m.active = true;
        m.force_totp = true;
    });
    let enrol = f.engine.sign_in_with_provider(&sign_in("pat@example.org", "sub-1")).await;
    assert_eq!(enrol.next_step(), Some(RequiredStep::EnrolSecondFactor), "{enrol:?}");
}

#[tokio::test]
async fn access_tokens_open_only_the_bound_mailbox_with_the_protocol() {
    let f = fixture();
    let mut bound = mailbox(21, "tok@example.org", None, "imap");
    bound.auth_source = "corp".into();
    bound.external_id = Some("sub-9".into());
    f.memory.mailboxes.lock().unwrap().insert("tok@example.org".into(), bound);
    let token = |subject: &str, address: Option<&str>, service: Service| AccessTokenRequest {
        token: Ok(TokenAccount {
            provider: "corp".into(),
            subject: subject.into(),
            address: address.map(str::to_string),
        }),
        service,
        remote_ip: Some("192.0.2.50".parse().unwrap()),
    };
    let allowed = f.engine.authenticate_token(&token("sub-9", Some("tok@example.org"), Service::Imap)).await;
    assert!(matches!(&allowed, Decision::Allowed { via: Via::AccessToken(p), .. } if p == "corp"), "{allowed:?}");
    let smtp = f.engine.authenticate_token(&token("sub-9", Some("tok@example.org"), Service::Smtp)).await;
    assert_eq!(reason(&smtp), Some(DenyReason::ServiceNotAllowed), "the protocol flags apply");
    let other = f.engine.authenticate_token(&token("sub-8", Some("tok@example.org"), Service::Imap)).await;
    assert_eq!(reason(&other), Some(DenyReason::WrongPassword), "another account's token");
    let unbound = f.engine.authenticate_token(&token("sub-7", None, Service::Imap)).await;
    assert_eq!(reason(&unbound), Some(DenyReason::UnknownUser));
    let local = f.engine.authenticate_token(&token("sub-9", Some("alice@example.org"), Service::Imap)).await;
    assert_eq!(reason(&local), Some(DenyReason::WrongPassword), "a local mailbox opens with no token");
    let refused = AccessTokenRequest { token: Err("the token has expired".into()), ..token("x", None, Service::Imap) };
    assert_eq!(reason(&f.engine.authenticate_token(&refused).await), Some(DenyReason::WrongPassword));
    f.set_mailbox("tok@example.org", |m| m.domain_active = false);
    let inactive = f.engine.authenticate_token(&token("sub-9", Some("tok@example.org"), Service::Imap)).await;
    assert_eq!(reason(&inactive), Some(DenyReason::Disabled));
}
