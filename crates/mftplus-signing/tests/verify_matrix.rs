//! The verification matrix of SPEC §3 / issue 3: every way an op can be wrong is refused at
//! its own stage, with its own code, and a failed attempt never burns the genuine op's nonce.

mod common;

use common::*;
use mftplus_signing::{
    sign_op, verify_op, AllowedSigners, ExpectedAction, FileNonceStore, HashAlg, KeyAlgorithm,
    MemoryNonceStore, NonceStore, Op, PrivateKey, Signer, SshSig, Target, VerifiedOp,
    VerifyContext, VerifyError, OP_NAMESPACE,
};

struct Fixture {
    operator: PrivateKey,
    signers: AllowedSigners,
}

impl Fixture {
    fn new() -> Self {
        let operator = PrivateKey::generate(KeyAlgorithm::Ed25519).unwrap();
        let line = format!(
            "ops@example.com namespaces=\"{OP_NAMESPACE}\" {}",
            operator.public_key().to_openssh()
        );
        let signers = AllowedSigners::parse(&line).unwrap();
        Self { operator, signers }
    }

    fn sign(&self, op: &Op) -> (String, Vec<u8>) {
        let blob = op.to_canonical_bytes();
        (sign_op(&self.operator, &blob).unwrap(), blob)
    }

    fn verify_with(
        &self,
        sig: &str,
        blob: &[u8],
        action: &ExpectedAction,
        now: i64,
        store: &mut dyn NonceStore,
    ) -> Result<VerifiedOp, VerifyError> {
        let ctx = VerifyContext {
            allowed_signers: &self.signers,
            host_id: HOST,
            action,
            now,
        };
        verify_op(sig, blob, &ctx, store)
    }

    fn verify(
        &self,
        sig: &str,
        blob: &[u8],
        store: &mut dyn NonceStore,
    ) -> Result<VerifiedOp, VerifyError> {
        self.verify_with(sig, blob, &action(), NOW, store)
    }
}

fn code(result: Result<VerifiedOp, VerifyError>) -> &'static str {
    result.map(|_| "ok").unwrap_or_else(|e| e.code())
}

#[test]
fn genuine_op_verifies_once() {
    let f = Fixture::new();
    let op = op("genuine-nonce-0000001");
    let (sig, blob) = f.sign(&op);
    let mut store = MemoryNonceStore::default();
    let verified = f.verify(&sig, &blob, &mut store).unwrap();
    assert_eq!(verified.op, op);
    assert_eq!(&verified.signer, f.operator.public_key());
    assert!(store.is_seen(&op.nonce).unwrap());
}

#[test]
fn wrong_key_is_not_pinned() {
    let f = Fixture::new();
    let intruder = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let blob = op("wrong-key-nonce-000001").to_canonical_bytes();
    let sig = sign_op(&intruder, &blob).unwrap();
    let err = f
        .verify(&sig, &blob, &mut MemoryNonceStore::default())
        .unwrap_err();
    assert!(
        matches!(&err, VerifyError::UnknownSigner { fingerprint } if *fingerprint == intruder.public_key().fingerprint())
    );
    assert_eq!(err.code(), "sig_unknown_key");
}

#[test]
fn tampered_blob_fails_signature() {
    let f = Fixture::new();
    let (sig, blob) = f.sign(&op("tampered-nonce-0000001"));
    // Still canonical and well-formed: only the signature can tell.
    let tampered = String::from_utf8(blob)
        .unwrap()
        .replace(GUEST, "guest-0043")
        .into_bytes();
    let mut store = MemoryNonceStore::default();
    assert_eq!(code(f.verify(&sig, &tampered, &mut store)), "sig_invalid");
}

#[test]
fn tampered_signature_fails_signature() {
    let f = Fixture::new();
    let (sig, blob) = f.sign(&op("tampered-sig-nonce-001"));
    let mut bytes = SshSig::from_armored(&sig).unwrap().to_bytes();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    let forged = mftplus_signing::armor::encode("SSH SIGNATURE", &bytes);
    let mut store = MemoryNonceStore::default();
    assert_eq!(code(f.verify(&forged, &blob, &mut store)), "sig_invalid");
}

#[test]
fn wrong_namespace_is_refused() {
    let f = Fixture::new();
    let blob = op("namespace-nonce-000001").to_canonical_bytes();
    let sig = SshSig::sign(&f.operator, "git", HashAlg::Sha512, &blob)
        .unwrap()
        .to_armored();
    let mut store = MemoryNonceStore::default();
    assert_eq!(code(f.verify(&sig, &blob, &mut store)), "sig_namespace");
}

#[test]
fn garbage_signature_fails_armor() {
    let f = Fixture::new();
    let blob = op("armor-nonce-0000000001").to_canonical_bytes();
    let mut store = MemoryNonceStore::default();
    for sig in [
        "",
        "not a signature",
        "-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----\n",
        "-----BEGIN SSH SIGNATURE-----\n!!!!\n-----END SSH SIGNATURE-----\n",
    ] {
        assert_eq!(
            code(f.verify(sig, &blob, &mut store)),
            "sig_armor",
            "{sig:?}"
        );
    }
}

#[test]
fn replay_is_refused_also_after_reopening_the_store() {
    let f = Fixture::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nonces.log");
    let (sig, blob) = f.sign(&op("replay-nonce-000000001"));
    {
        let mut store = FileNonceStore::open(&path, NOW).unwrap();
        f.verify(&sig, &blob, &mut store).unwrap();
        assert_eq!(code(f.verify(&sig, &blob, &mut store)), "op_replayed");
    }
    // A restart: a fresh store read from disk still knows the nonce.
    let mut reopened = FileNonceStore::open(&path, NOW + 60).unwrap();
    assert_eq!(
        code(f.verify_with(&sig, &blob, &action(), NOW + 60, &mut reopened)),
        "op_replayed"
    );
    // A different op (new nonce) is unaffected.
    let (sig2, blob2) = f.sign(&op("replay-nonce-000000002"));
    assert_eq!(
        code(f.verify_with(&sig2, &blob2, &action(), NOW + 60, &mut reopened)),
        "ok"
    );
}

#[test]
fn expired_op_is_refused() {
    let f = Fixture::new();
    let op = op("expired-nonce-00000001");
    let (sig, blob) = f.sign(&op);
    let mut store = MemoryNonceStore::default();
    assert_eq!(
        code(f.verify_with(&sig, &blob, &action(), op.expires_at + 1, &mut store)),
        "op_expired"
    );
    // The last valid second is `now == expires_at`.
    assert_eq!(
        code(f.verify_with(&sig, &blob, &action(), op.expires_at, &mut store)),
        "ok"
    );
}

#[test]
fn op_from_the_future_is_not_yet_valid() {
    let f = Fixture::new();
    let mut store = MemoryNonceStore::default();
    let mut early = op("future-nonce-000000001");
    early.issued_at = NOW + 121;
    early.expires_at = NOW + 3600;
    let (sig, blob) = f.sign(&early);
    assert_eq!(code(f.verify(&sig, &blob, &mut store)), "op_not_yet_valid");
    // Two minutes of skew are tolerated.
    let mut skewed = op("future-nonce-000000002");
    skewed.issued_at = NOW + 120;
    let (sig, blob) = f.sign(&skewed);
    assert_eq!(code(f.verify(&sig, &blob, &mut store)), "ok");
}

#[test]
fn retargeted_host_is_refused() {
    let f = Fixture::new();
    let mut other = op("host-nonce-00000000001");
    other.target.host_id = "host-0002".into();
    let (sig, blob) = f.sign(&other);
    let err = f
        .verify(&sig, &blob, &mut MemoryNonceStore::default())
        .unwrap_err();
    assert!(
        matches!(&err, VerifyError::WrongHost { expected, found } if expected == HOST && found == "host-0002")
    );
}

#[test]
fn retargeted_guest_is_refused() {
    let f = Fixture::new();
    let mut store = MemoryNonceStore::default();
    // Op for another guest.
    let mut other = op("guest-nonce-0000000001");
    other.target.guest_id = Some("guest-0099".into());
    let (sig, blob) = f.sign(&other);
    assert_eq!(code(f.verify(&sig, &blob, &mut store)), "op_wrong_guest");
    // A host-level op does not authorise an action on a guest…
    let mut host_level = op("guest-nonce-0000000002");
    host_level.target = Target {
        host_id: HOST.into(),
        guest_id: None,
    };
    let (sig, blob) = f.sign(&host_level);
    assert_eq!(code(f.verify(&sig, &blob, &mut store)), "op_wrong_guest");
    // …nor a guest op a host-level action.
    let (sig, blob) = f.sign(&op("guest-nonce-0000000003"));
    let host_action = ExpectedAction {
        guest_id: None,
        ..action()
    };
    assert_eq!(
        code(f.verify_with(&sig, &blob, &host_action, NOW, &mut store)),
        "op_wrong_guest"
    );
}

#[test]
fn wrong_action_is_refused() {
    let f = Fixture::new();
    let mut store = MemoryNonceStore::default();
    let (sig, blob) = f.sign(&op("action-nonce-000000001"));
    let other_op = ExpectedAction {
        op: "storage.wipe".into(),
        ..action()
    };
    assert_eq!(
        code(f.verify_with(&sig, &blob, &other_op, NOW, &mut store)),
        "op_action_mismatch"
    );
    let mut other_params = action();
    other_params.params["volumes"] = serde_json::json!(["vda", "vdb", "vdc"]);
    assert_eq!(
        code(f.verify_with(&sig, &blob, &other_params, NOW, &mut store)),
        "op_action_mismatch"
    );
    // Neither attempt burned the nonce: the matching action still goes through.
    assert_eq!(code(f.verify(&sig, &blob, &mut store)), "ok");
}

#[test]
fn key_outside_its_validity_window_is_refused() {
    let operator = PrivateKey::generate(KeyAlgorithm::EcdsaP384).unwrap();
    let key = operator.public_key().to_openssh();
    let blob = op("window-nonce-000000001").to_canonical_bytes();
    let sig = sign_op(&operator, &blob).unwrap();
    // NOW is 2025-10-09T08:53:20Z.
    for (options, want) in [
        ("valid-before=\"20251001Z\"", "sig_key_not_valid"),
        ("valid-after=\"20251010Z\"", "sig_key_not_valid"),
        ("valid-after=\"20251009085320Z\"", "ok"),
        ("valid-after=\"20250101\",valid-before=\"20251231\"", "ok"),
        ("namespaces=\"git,file\"", "sig_key_namespace"),
    ] {
        let signers = AllowedSigners::parse(&format!("ops@example.com {options} {key}")).unwrap();
        let ctx = VerifyContext {
            allowed_signers: &signers,
            host_id: HOST,
            action: &action(),
            now: NOW,
        };
        let result = verify_op(&sig, &blob, &ctx, &mut MemoryNonceStore::default());
        assert_eq!(code(result), want, "{options}");
    }
}

#[test]
fn bad_signature_does_not_burn_the_nonce() {
    let f = Fixture::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nonces.log");
    let mut store = FileNonceStore::open(&path, NOW).unwrap();
    let genuine = op("burn-nonce-00000000001");
    let (sig, blob) = f.sign(&genuine);

    // An attacker who saw the pending op sends tampered copies with the same nonce first.
    let tampered = String::from_utf8(blob.clone())
        .unwrap()
        .replace("vdb", "vdc")
        .into_bytes();
    assert_eq!(code(f.verify(&sig, &tampered, &mut store)), "sig_invalid");
    let intruder = PrivateKey::generate(KeyAlgorithm::Ed25519).unwrap();
    let forged = sign_op(&intruder, &tampered).unwrap();
    assert_eq!(
        code(f.verify(&forged, &tampered, &mut store)),
        "sig_unknown_key"
    );
    let wrong_ns = SshSig::sign(&intruder, "other", HashAlg::Sha512, &blob)
        .unwrap()
        .to_armored();
    assert_eq!(
        code(f.verify(&wrong_ns, &blob, &mut store)),
        "sig_namespace"
    );
    assert!(!store.is_seen(&genuine.nonce).unwrap());
    assert!(std::fs::read(&path).unwrap().is_empty());

    // The genuine op still verifies, even after a restart.
    drop(store);
    let mut store = FileNonceStore::open(&path, NOW).unwrap();
    assert_eq!(f.verify(&sig, &blob, &mut store).unwrap().op, genuine);
}

#[test]
fn signed_but_malformed_blob_is_refused_after_the_signature() {
    let f = Fixture::new();
    let mut store = MemoryNonceStore::default();
    let mut blob = op("malformed-nonce-000001").to_canonical_bytes();
    blob.push(b'\n');
    let sig = sign_op(&f.operator, &blob).unwrap();
    assert_eq!(code(f.verify(&sig, &blob, &mut store)), "op_malformed");
}

#[test]
fn earliest_failing_stage_wins() {
    let f = Fixture::new();
    let mut store = MemoryNonceStore::default();
    let intruder = PrivateKey::generate(KeyAlgorithm::Ed25519).unwrap();

    // Wrong namespace from an unpinned key: the namespace stage speaks first.
    let blob = op("order-nonce-0000000001").to_canonical_bytes();
    let sig = SshSig::sign(&intruder, "other", HashAlg::Sha512, &blob)
        .unwrap()
        .to_armored();
    assert_eq!(code(f.verify(&sig, &blob, &mut store)), "sig_namespace");

    // Expired, for another host and another action: the host check comes first.
    let mut bad = op("order-nonce-0000000002");
    bad.target.host_id = "elsewhere".into();
    bad.op = "storage.wipe".into();
    bad.expires_at = NOW - 10;
    bad.issued_at = NOW - 100;
    let (sig, blob) = f.sign(&bad);
    assert_eq!(code(f.verify(&sig, &blob, &mut store)), "op_wrong_host");

    // Replayed and the wrong action: replay is reported (stage 8 before 9).
    let (sig, blob) = f.sign(&op("order-nonce-0000000003"));
    f.verify(&sig, &blob, &mut store).unwrap();
    let other = ExpectedAction {
        op: "storage.wipe".into(),
        ..action()
    };
    assert_eq!(
        code(f.verify_with(&sig, &blob, &other, NOW, &mut store)),
        "op_replayed"
    );
}

#[test]
fn error_codes_are_stable_and_distinct() {
    use mftplus_signing::{NonceStoreError, OpError, SshSigError};
    let fp = || "SHA256:x".to_owned();
    let errors = [
        (VerifyError::Armor(SshSigError::BadMagic), "sig_armor"),
        (
            VerifyError::Namespace { found: "x".into() },
            "sig_namespace",
        ),
        (
            VerifyError::UnknownSigner { fingerprint: fp() },
            "sig_unknown_key",
        ),
        (
            VerifyError::SignerNamespaceNotAllowed { fingerprint: fp() },
            "sig_key_namespace",
        ),
        (
            VerifyError::SignerNotValidNow { fingerprint: fp() },
            "sig_key_not_valid",
        ),
        (
            VerifyError::BadSignature(SshSigError::BadMagic),
            "sig_invalid",
        ),
        (VerifyError::Blob(OpError::NotCanonical), "op_malformed"),
        (
            VerifyError::WrongHost {
                expected: "a".into(),
                found: "b".into(),
            },
            "op_wrong_host",
        ),
        (
            VerifyError::WrongGuest {
                expected: None,
                found: None,
            },
            "op_wrong_guest",
        ),
        (
            VerifyError::NotYetValid {
                issued_at: 0,
                now: 0,
            },
            "op_not_yet_valid",
        ),
        (
            VerifyError::Expired {
                expires_at: 0,
                now: 0,
            },
            "op_expired",
        ),
        (VerifyError::Replay, "op_replayed"),
        (VerifyError::ActionMismatch("x"), "op_action_mismatch"),
        (
            VerifyError::NonceStore(NonceStoreError::Poisoned),
            "nonce_store",
        ),
    ];
    let mut seen = std::collections::BTreeSet::new();
    for (error, want) in &errors {
        assert_eq!(error.code(), *want);
        assert!(seen.insert(error.code()), "duplicate code {want}");
        assert!(!error.to_string().is_empty());
    }
}

/// A store whose writes fail, or that loses a race to another writer.
struct BrokenStore(fn() -> mftplus_signing::NonceStoreError);

impl NonceStore for BrokenStore {
    fn is_seen(&self, _nonce: &str) -> Result<bool, mftplus_signing::NonceStoreError> {
        Ok(false)
    }
    fn record(
        &mut self,
        _nonce: &str,
        _expires_at: i64,
        _now: i64,
    ) -> Result<(), mftplus_signing::NonceStoreError> {
        Err((self.0)())
    }
}

#[test]
fn op_is_refused_unless_its_nonce_was_recorded() {
    use mftplus_signing::NonceStoreError;
    let f = Fixture::new();
    let (sig, blob) = f.sign(&op("record-nonce-000000001"));
    let mut disk_full = BrokenStore(|| NonceStoreError::Io(std::io::ErrorKind::StorageFull.into()));
    assert_eq!(code(f.verify(&sig, &blob, &mut disk_full)), "nonce_store");
    let mut raced = BrokenStore(|| NonceStoreError::AlreadySeen);
    assert_eq!(code(f.verify(&sig, &blob, &mut raced)), "op_replayed");
}
