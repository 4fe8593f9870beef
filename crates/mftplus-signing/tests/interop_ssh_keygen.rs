//! Interoperability with the real OpenSSH `ssh-keygen`, in both directions, for every key type
//! we support. These are the tests that prove an operator can sign by hand and that an agent
//! accepts what `mftctl` produces.

mod common;

use std::fs;

use common::*;
use mftplus_signing::{
    sign_op, verify_op, AllowedSigners, HashAlg, KeyError, MemoryNonceStore, PrivateKey, PublicKey,
    Signer, SshSig, VerifyContext, VerifyError, OP_NAMESPACE,
};

#[test]
fn ssh_keygen_signature_passes_our_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    for (name, kind) in KINDS {
        let key = keygen(dir.path(), name, kind);
        let signers = pinned(&key.with_extension("pub"));
        for hash in [&[][..], &["-O", "hashalg=sha256"][..]] {
            let op = op(&format!("interop-nonce-{name}-{}", hash.len()));
            let blob = op.to_canonical_bytes();
            let armored = keygen_sign(&key, OP_NAMESPACE, &blob, hash);
            let ctx = VerifyContext {
                allowed_signers: &signers,
                host_id: HOST,
                action: &action(),
                now: NOW,
            };
            let verified = verify_op(&armored, &blob, &ctx, &mut MemoryNonceStore::default())
                .unwrap_or_else(|e| panic!("{name} {hash:?}: {e}"));
            assert_eq!(verified.op, op);
            assert_eq!(verified.signer, signers.entries()[0].key);
            let expected_hash = if hash.is_empty() {
                HashAlg::Sha512
            } else {
                HashAlg::Sha256
            };
            assert_eq!(
                SshSig::from_armored(&armored).unwrap().hash_alg(),
                expected_hash
            );
        }
    }
}

#[test]
fn our_signature_passes_ssh_keygen_verify() {
    let dir = tempfile::tempdir().unwrap();
    for (name, kind) in KINDS {
        let key_path = keygen(dir.path(), name, kind);
        let key = PrivateKey::from_openssh(&fs::read_to_string(&key_path).unwrap()).unwrap();
        assert_eq!(key.comment(), format!("{name}@test"));
        let pub_line = fs::read_to_string(key_path.with_extension("pub")).unwrap();
        assert_eq!(
            key.public_key(),
            &PublicKey::from_openssh(&pub_line).unwrap()
        );

        let allowed = dir.path().join(format!("allowed-{name}"));
        fs::write(
            &allowed,
            format!("ops@example.com namespaces=\"{OP_NAMESPACE}\",valid-after=\"20200101Z\" {pub_line}"),
        )
        .unwrap();
        let blob = op(&format!("our-signature-nonce-{name}")).to_canonical_bytes();
        let armored = sign_op(&key, &blob).unwrap();
        let (ok, out) = keygen_verify(&allowed, "ops@example.com", OP_NAMESPACE, &armored, &blob);
        assert!(ok, "{name}: ssh-keygen refused our signature: {out}");
        assert!(out.contains("Good \"mftplus-op-v1\" signature"), "{out}");

        // And ssh-keygen is checking for real: a changed byte or namespace is refused.
        let mut tampered = blob.clone();
        tampered[5] ^= 1;
        assert!(
            !keygen_verify(
                &allowed,
                "ops@example.com",
                OP_NAMESPACE,
                &armored,
                &tampered
            )
            .0
        );
        assert!(!keygen_verify(&allowed, "ops@example.com", "other", &armored, &blob).0);

        // SHA-256 flavour too.
        let sha256 = SshSig::sign(&key, OP_NAMESPACE, HashAlg::Sha256, &blob)
            .unwrap()
            .to_armored();
        assert!(keygen_verify(&allowed, "ops@example.com", OP_NAMESPACE, &sha256, &blob).0);
    }
}

#[test]
fn other_namespace_fails_our_namespace_stage() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "ed25519", &["-t", "ed25519"]);
    // Pin the key for every namespace, so only the namespace stage can object.
    let line = fs::read_to_string(key.with_extension("pub")).unwrap();
    let signers = AllowedSigners::parse(&format!("* {line}")).unwrap();
    let blob = op("other-namespace-nonce-01").to_canonical_bytes();
    let armored = keygen_sign(&key, "other", &blob, &[]);
    let ctx = VerifyContext {
        allowed_signers: &signers,
        host_id: HOST,
        action: &action(),
        now: NOW,
    };
    let err = verify_op(&armored, &blob, &ctx, &mut MemoryNonceStore::default()).unwrap_err();
    assert!(
        matches!(&err, VerifyError::Namespace { found } if found == "other"),
        "{err}"
    );
    assert_eq!(err.code(), "sig_namespace");
}

#[test]
fn our_armor_has_ssh_keygen_shape() {
    let dir = tempfile::tempdir().unwrap();
    let key_path = keygen(dir.path(), "ed25519", &["-t", "ed25519"]);
    let key = PrivateKey::from_openssh(&fs::read_to_string(&key_path).unwrap()).unwrap();
    let blob = b"same message";
    let theirs = keygen_sign(&key_path, OP_NAMESPACE, blob, &[]);
    let ours = sign_op(&key, blob).unwrap();
    // Ed25519 is deterministic and both default to SHA-512: the armored text is identical.
    assert_eq!(ours, theirs);
}

#[test]
fn fingerprints_match_ssh_keygen_l() {
    let dir = tempfile::tempdir().unwrap();
    for (name, kind) in KINDS {
        let key_path = keygen(dir.path(), name, kind);
        let pub_path = key_path.with_extension("pub");
        let out = run_ok(
            ssh_keygen()
                .args(["-l", "-E", "sha256", "-f"])
                .arg(&pub_path),
        );
        let listed = String::from_utf8(out.stdout).unwrap();
        let theirs = listed.split_whitespace().nth(1).unwrap();
        let ours = PublicKey::from_openssh(&fs::read_to_string(&pub_path).unwrap())
            .unwrap()
            .fingerprint();
        assert_eq!(ours, theirs, "{name}");
    }
}

#[test]
fn encrypted_key_is_refused_with_a_pointer_to_ssh_agent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("locked");
    run_ok(
        ssh_keygen()
            .args(["-q", "-t", "ed25519", "-N", "correct horse", "-f"])
            .arg(&path),
    );
    let err = PrivateKey::from_openssh(&fs::read_to_string(&path).unwrap()).unwrap_err();
    assert_eq!(err, KeyError::Encrypted);
    assert_eq!(
        err.to_string(),
        "encrypted keys are not supported; use ssh-agent"
    );
}

#[test]
fn ssh_keygen_honours_the_same_allowed_signers_window() {
    // The same file, read by both: a key whose window has closed is refused by ssh-keygen
    // and by our parser's check, so operators can test their file with ssh-keygen.
    let dir = tempfile::tempdir().unwrap();
    let key_path = keygen(dir.path(), "ed25519", &["-t", "ed25519"]);
    let key = PrivateKey::from_openssh(&fs::read_to_string(&key_path).unwrap()).unwrap();
    let pub_line = fs::read_to_string(key_path.with_extension("pub")).unwrap();
    let allowed = dir.path().join("allowed");
    let text = format!("ops@example.com valid-before=\"20200101Z\" {pub_line}");
    fs::write(&allowed, &text).unwrap();
    let blob = b"anything";
    let armored = sign_op(&key, blob).unwrap();
    assert!(!keygen_verify(&allowed, "ops@example.com", OP_NAMESPACE, &armored, blob).0);
    let signers = AllowedSigners::parse(&text).unwrap();
    assert!(signers.check(key.public_key(), OP_NAMESPACE, NOW).is_err());
}
