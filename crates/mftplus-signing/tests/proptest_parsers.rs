//! Property tests for everything that parses untrusted bytes: arbitrary input never panics,
//! and what we write we read back unchanged.

use std::sync::OnceLock;

use mftplus_signing::agent::{parse_identities_answer, parse_sign_answer};
use mftplus_signing::armor::{self, SIGNATURE_LABEL};
use mftplus_signing::{
    AllowedSigners, HashAlg, KeyAlgorithm, Op, PrivateKey, PublicKey, Signer, SshSig, Target,
};
use proptest::prelude::*;
use serde_json::Value;

/// Key generation is the slow part; one key per algorithm serves every case.
fn keys() -> &'static [PrivateKey; 3] {
    static KEYS: OnceLock<[PrivateKey; 3]> = OnceLock::new();
    KEYS.get_or_init(|| {
        [
            KeyAlgorithm::Ed25519,
            KeyAlgorithm::EcdsaP256,
            KeyAlgorithm::EcdsaP384,
        ]
        .map(|alg| PrivateKey::generate(alg).unwrap())
    })
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Params with floats are refused (see `OpError::FloatInParams`); check that no float-bearing
/// op ever reaches the wire.
#[test]
fn floats_are_refused_not_mangled() {
    let mut op: Op = Op {
        op: "x".into(),
        target: Target {
            host_id: "h".into(),
            guest_id: None,
        },
        params: serde_json::json!([-3.3855143000780816e305]),
        nonce: "0123456789abcdef".into(),
        issued_at: 0,
        expires_at: 0,
        key_id: String::new(),
    };
    assert_eq!(op.validate(), Err(mftplus_signing::OpError::FloatInParams));
    assert!(Op::parse(&op.to_canonical_bytes()).is_err());
    op.params = serde_json::json!([1, -2, u64::MAX]);
    assert_eq!(Op::parse(&op.to_canonical_bytes()), Ok(op));
}

fn valid_op() -> impl Strategy<Value = Op> {
    (
        "[A-Za-z0-9_.:-]{1,40}",
        ".{1,40}",
        proptest::option::of(".{1,40}"),
        json_value(),
        "[!-~]{16,128}",
        any::<i64>(),
        any::<u32>(),
        ".{0,60}",
    )
        .prop_map(
            |(op, host_id, guest_id, params, nonce, issued_at, lifetime, key_id)| Op {
                op,
                target: Target { host_id, guest_id },
                params,
                nonce,
                issued_at,
                expires_at: issued_at.saturating_add(i64::from(lifetime)),
                key_id,
            },
        )
        // `.{n,m}` counts chars; the limits are in bytes.
        .prop_filter("within byte limits", |op| op.validate().is_ok())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn op_parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Op::parse(&bytes);
    }

    #[test]
    fn op_round_trips(op in valid_op()) {
        let bytes = op.to_canonical_bytes();
        prop_assert_eq!(Op::parse(&bytes), Ok(op));
    }

    /// One op, one encoding: whatever bytes parse, they are exactly the canonical bytes of
    /// what they parse to. Mutations of a valid blob exercise the interesting near-misses.
    #[test]
    fn accepted_blobs_are_canonical(
        op in valid_op(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut bytes = op.to_canonical_bytes();
        for (index, byte) in edits {
            let i = index.index(bytes.len());
            bytes[i] = byte;
        }
        if let Ok(parsed) = Op::parse(&bytes) {
            prop_assert_eq!(parsed.to_canonical_bytes(), bytes);
        }
    }

    #[test]
    fn armor_and_sshsig_parsers_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        text in "\\PC{0,300}",
    ) {
        let _ = SshSig::from_bytes(&bytes);
        let _ = SshSig::from_armored(&armor::encode(SIGNATURE_LABEL, &bytes));
        let _ = SshSig::from_armored(&text);
        let _ = SshSig::from_armored(&format!("-----BEGIN SSH SIGNATURE-----\n{text}\n-----END SSH SIGNATURE-----"));
        let _ = PublicKey::from_blob(&bytes);
        let _ = PrivateKey::from_openssh(&armor::encode("OPENSSH PRIVATE KEY", &bytes));
        let _ = AllowedSigners::parse(&text);
    }

    #[test]
    fn armor_round_trips(bytes in prop::collection::vec(any::<u8>(), 1..2000)) {
        let armored = armor::encode(SIGNATURE_LABEL, &bytes);
        prop_assert!(armored.lines().all(|l| l.len() <= armor::LINE_WIDTH || l.starts_with("-----")));
        prop_assert_eq!(&*armor::decode(SIGNATURE_LABEL, &armored).unwrap(), &bytes);
    }

    #[test]
    fn sshsig_round_trips_and_verifies(
        which in 0usize..3,
        sha256 in any::<bool>(),
        namespace in "[a-z0-9@.-]{1,24}",
        message in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let key = &keys()[which];
        let hash = if sha256 { HashAlg::Sha256 } else { HashAlg::Sha512 };
        let sig = SshSig::sign(key, &namespace, hash, &message).unwrap();
        let armored = sig.to_armored();
        let back = SshSig::from_armored(&armored).unwrap();
        prop_assert_eq!(&back, &sig);
        prop_assert_eq!(SshSig::from_bytes(&sig.to_bytes()).unwrap(), sig);
        prop_assert!(back.verify(key.public_key(), &namespace, &message).is_ok());
    }

    /// Flipping any bit of a signature either breaks parsing, or changes the claimed signer
    /// (so pinning refuses it), or fails verification. Nothing slips through.
    #[test]
    fn any_bit_flip_is_caught(
        which in 0usize..3,
        message in prop::collection::vec(any::<u8>(), 0..100),
        index in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let key = &keys()[which];
        let mut bytes = SshSig::sign(key, "ns", HashAlg::Sha512, &message).unwrap().to_bytes();
        let i = index.index(bytes.len());
        bytes[i] ^= 1 << bit;
        if let Ok(parsed) = SshSig::from_bytes(&bytes) {
            let still_trusted = parsed.public_key() == key.public_key()
                && parsed.verify(key.public_key(), "ns", &message).is_ok();
            prop_assert!(!still_trusted, "bit {} of byte {} flipped unnoticed", bit, i);
        }
    }

    #[test]
    fn agent_answer_parsers_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = parse_identities_answer(&bytes);
        let _ = parse_sign_answer(&bytes);
        // Also with the right type byte in front, so the parsers get past the first check.
        for kind in [12u8, 14] {
            let mut msg = vec![kind];
            msg.extend_from_slice(&bytes);
            let _ = parse_identities_answer(&msg);
            let _ = parse_sign_answer(&msg);
        }
    }

    /// A well-formed identities answer mixing our keys with unsupported ones parses to exactly
    /// our keys, in order, with the others counted as skipped; cutting it short is an error.
    #[test]
    fn agent_identities_answer_round_trips(
        entries in prop::collection::vec((0usize..5, "\\PC{0,20}"), 0..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut msg = vec![12u8];
        msg.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        let mut expected = Vec::new();
        let mut skipped = 0;
        for (which, comment) in &entries {
            let blob = match keys().get(*which) {
                Some(key) => {
                    expected.push((key.public_key().clone(), comment.clone()));
                    key.public_key().to_blob()
                }
                None => {
                    skipped += 1;
                    wire_strings(&[b"ssh-rsa", &[1, 0, 1], &[0x42; 40]])
                }
            };
            msg.extend(wire_strings(&[&blob, comment.as_bytes()]));
        }
        let answer = parse_identities_answer(&msg).unwrap();
        let got: Vec<_> = answer.supported.iter().map(|id| (id.key.clone(), id.comment.clone())).collect();
        prop_assert_eq!(got, expected);
        prop_assert_eq!(answer.skipped.len(), skipped);
        let cut = cut.index(msg.len());
        prop_assert!(parse_identities_answer(&msg[..cut]).is_err());
    }
}

fn wire_strings(items: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for item in items {
        out.extend_from_slice(&(item.len() as u32).to_be_bytes());
        out.extend_from_slice(item);
    }
    out
}
