//! Property tests: generate-then-verify round trips for arbitrary byte
//! passwords (low costs), and the parser/verifier never panics.

use gatehouse_passwords::{
    GenerateScheme, Scheme, Verification, VerifyLimits, VerifyOptions, generate, needs_rehash, stored_scheme, verify,
};
use proptest::prelude::*;

fn cheap_schemes() -> impl Strategy<Value = GenerateScheme> {
    prop_oneof![
        Just(GenerateScheme::BlfCrypt { cost: 4 }),
        Just(GenerateScheme::Argon2id { m_cost_kib: 64, t_cost: 1, p_cost: 1 }),
        Just(GenerateScheme::Sha512Crypt { rounds: 1000 }),
        Just(GenerateScheme::Ssha512),
        Just(GenerateScheme::Ssha256),
    ]
}

/// Passwords are arbitrary bytes except NUL (Dovecot's C strings).
fn password() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(1u8..=255, 0..100)
}

/// Options cheap enough that any random hash is fast to reject or compute.
fn cheap_opts() -> VerifyOptions {
    VerifyOptions {
        allow_unprefixed_plaintext: true,
        limits: VerifyLimits {
            max_bcrypt_cost: 5,
            max_sha_crypt_rounds: 5000,
            max_pbkdf2_rounds: 5000,
            max_memory_kib: 256,
            max_argon2_t_cost: 2,
            max_argon2_p_cost: 2,
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn round_trip(scheme in cheap_schemes(), pw in password(), other in password()) {
        let stored = generate(&pw, &scheme).unwrap();
        let opts = VerifyOptions::default();
        prop_assert_eq!(verify(&stored, &pw, &opts), Verification::Match);
        // bcrypt only sees the first 72 bytes, like Dovecot.
        let same = match scheme {
            GenerateScheme::BlfCrypt { .. } => pw.len() >= 72 && other.len() >= 72 && pw[..72] == other[..72],
            _ => false,
        };
        if other != pw && !same {
            prop_assert_eq!(verify(&stored, &other, &opts), Verification::Mismatch);
        }
        prop_assert!(!needs_rehash(&stored, &scheme));
        prop_assert!(stored_scheme(&stored).is_some());
    }

    #[test]
    fn nul_passwords_are_refused(mut pw in password(), at in 0usize..100) {
        let at = at.min(pw.len());
        pw.insert(at, 0);
        prop_assert!(generate(&pw, &GenerateScheme::Ssha256).is_err());
    }
}

fn scheme_prefix() -> impl Strategy<Value = String> {
    let mut names: Vec<String> = Scheme::ALL.iter().map(|s| format!("{{{}}}", s.name())).collect();
    names.extend(
        [
            "{SHA.HEX}",
            "{ssha512.b64}",
            "{PLAIN.BASE64}",
            "{X.Y}",
            "{",
            "",
            "$2y$05$",
            "$2x$04$",
            "$1$",
            "$5$rounds=1000$",
            "$6$",
            "$argon2id$v=19$m=64,t=1,p=1$",
            "$argon2i$m=8,t=1,p=1$",
            "{CRYPT}$y$",
            "{CRYPT}_",
            "{PBKDF2}$1$",
            "{SCRAM-SHA-256}1,",
            "{PLAIN-TRUNC}3-",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    prop::sample::select(names)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parser_never_panics(prefix in scheme_prefix(), tail in ".{0,80}", cand in prop::collection::vec(any::<u8>(), 0..90)) {
        let stored = format!("{prefix}{tail}");
        let opts = cheap_opts();
        let _ = verify(&stored, &cand, &opts);
        let _ = needs_rehash(&stored, &GenerateScheme::default());
        let _ = stored_scheme(&stored);
    }

    #[test]
    fn arbitrary_strings_never_panic(stored in "\\PC{0,120}", cand in prop::collection::vec(any::<u8>(), 0..40)) {
        let _ = verify(&stored, &cand, &cheap_opts());
        let _ = needs_rehash(&stored, &GenerateScheme::Sha512Crypt { rounds: 5000 });
    }

    #[test]
    fn scheme_names_parse(name in "[A-Za-z0-9.-]{0,20}", rounds in proptest::option::of(0u32..2000)) {
        let _ = GenerateScheme::from_name(&name, rounds);
    }
}
