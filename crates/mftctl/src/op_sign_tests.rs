//! Signing with a key made by the real `ssh-keygen`, verified by the agent's own pipeline and
//! by `ssh-keygen -Y verify`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use mftplus_signing::{
    verify_op, AllowedSigners, ExpectedAction, MemoryNonceStore, PublicKey, SshSig, Target,
    VerifyContext, OP_NAMESPACE,
};
use mftplus_types::fleet::op_status;
use serde_json::json;

use super::*;

const NOW: i64 = 1_767_225_600;

fn keygen(dir: &Path) -> (PathBuf, PublicKey) {
    let path = dir.join("id_ed25519");
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "op@test", "-f"])
        .arg(&path)
        .status()
        .expect("ssh-keygen runs");
    assert!(status.success());
    let public = fs::read_to_string(path.with_extension("pub")).unwrap();
    (path, PublicKey::from_openssh(public.trim()).unwrap())
}

fn sample_op() -> Op {
    Op {
        op: "guest.remove".into(),
        target: Target {
            host_id: "h-1".into(),
            guest_id: Some("web".into()),
        },
        params: json!({"guest_id": "web"}),
        nonce: "a1".repeat(32),
        issued_at: NOW - 60,
        expires_at: NOW + 7 * 86_400,
        key_id: String::new(),
    }
}

fn info_for(op: &Op, blob: String) -> OpInfo {
    OpInfo {
        op_id: "op-1".into(),
        customer_id: "acme".into(),
        host_id: op.target.host_id.clone(),
        guest_id: op.target.guest_id.clone(),
        op_type: op.op.clone(),
        blob,
        signature: None,
        status: op_status::PENDING_SIGNATURE.into(),
        nonce: op.nonce.clone(),
        issued_at: unix_to_rfc3339(op.issued_at),
        expires_at: unix_to_rfc3339(op.expires_at),
        signed_at: None,
        delivered_at: None,
        finished_at: None,
        result: None,
    }
}

fn canonical_info() -> OpInfo {
    let op = sample_op();
    let blob = String::from_utf8(op.to_canonical_bytes()).unwrap();
    info_for(&op, blob)
}

#[test]
fn signs_the_exact_blob_so_the_agent_and_ssh_keygen_accept_it() {
    let dir = tempfile::tempdir().unwrap();
    let (key_path, public) = keygen(dir.path());
    let signer = open_signer(&SignerSource::File(key_path)).unwrap();
    assert_eq!(signer.public_key(), &public);

    let info = canonical_info();
    let op = check_op(&info, NOW).unwrap();
    let signature = sign_blob(signer.as_ref(), &info.op_id, &info.blob).unwrap();
    assert!(signature.starts_with("-----BEGIN SSH SIGNATURE-----"));

    let sig = SshSig::from_armored(&signature).unwrap();
    sig.verify(&public, OP_NAMESPACE, info.blob.as_bytes())
        .unwrap();
    let pinned = AllowedSigners::from_keys([public.clone()]);
    let action = ExpectedAction {
        op: op.op.clone(),
        guest_id: op.target.guest_id.clone(),
        params: op.params.clone(),
    };
    let ctx = VerifyContext {
        allowed_signers: &pinned,
        host_id: "h-1",
        action: &action,
        now: NOW,
    };
    let verified = verify_op(
        &signature,
        info.blob.as_bytes(),
        &ctx,
        &mut MemoryNonceStore::default(),
    )
    .unwrap();
    assert_eq!(verified.op, op);
    // One changed byte of the blob and the same signature no longer verifies.
    let tampered = info.blob.replace("web", "wex");
    assert!(sig
        .verify(&public, OP_NAMESPACE, tampered.as_bytes())
        .is_err());

    let allowed = dir.path().join("allowed_signers");
    fs::write(
        &allowed,
        format!(
            "op@test namespaces=\"{OP_NAMESPACE}\" {}\n",
            public.to_openssh()
        ),
    )
    .unwrap();
    let sig_path = dir.path().join("op.sig");
    fs::write(&sig_path, &signature).unwrap();
    let blob_path = dir.path().join("op.json");
    fs::write(&blob_path, &info.blob).unwrap();
    let out = Command::new("ssh-keygen")
        .args(["-Y", "verify", "-I", "op@test", "-n", OP_NAMESPACE, "-f"])
        .arg(&allowed)
        .arg("-s")
        .arg(&sig_path)
        .stdin(fs::File::open(&blob_path).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn non_canonical_blobs_are_refused() {
    let info = canonical_info();
    let value: serde_json::Value = serde_json::from_str(&info.blob).unwrap();
    for blob in [
        serde_json::to_string_pretty(&value).unwrap(),
        format!("{}\n", info.blob),
        info.blob.replacen('{', "{ ", 1),
        "not json".to_string(),
    ] {
        let odd = OpInfo {
            blob,
            ..info.clone()
        };
        let err = check_op(&odd, NOW).unwrap_err();
        assert_eq!(err.code, "invalid_op", "{err}");
    }
}

#[test]
fn a_listing_that_disagrees_with_its_blob_is_refused() {
    let info = canonical_info();
    for odd in [
        OpInfo {
            host_id: "h-2".into(),
            ..info.clone()
        },
        OpInfo {
            guest_id: None,
            ..info.clone()
        },
        OpInfo {
            op_type: "guest.start".into(),
            ..info.clone()
        },
    ] {
        let err = check_op(&odd, NOW).unwrap_err();
        assert_eq!(err.code, "invalid_op", "{err}");
        assert!(err.message.contains("different"), "{err}");
    }
}

#[test]
fn expired_or_already_signed_ops_are_refused() {
    let info = canonical_info();
    let op = sample_op();
    assert_eq!(
        check_op(&info, op.expires_at + 1).unwrap_err().code,
        "op_expired"
    );
    assert!(check_op(&info, op.expires_at).is_ok());
    let signed = OpInfo {
        status: op_status::SIGNED.into(),
        ..info
    };
    assert_eq!(
        check_op(&signed, NOW).unwrap_err().code,
        "op_state_conflict"
    );
}

#[test]
fn key_files_readable_by_others_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (key_path, _) = keygen(dir.path());
    fs::set_permissions(&key_path, fs::Permissions::from_mode(0o644)).unwrap();
    let err = load_key_file(&key_path).unwrap_err();
    assert_eq!(err.code, "insecure_file");
    assert!(err.message.contains("chmod 600"), "{err}");
    fs::set_permissions(&key_path, fs::Permissions::from_mode(0o640)).unwrap();
    assert_eq!(load_key_file(&key_path).unwrap_err().code, "insecure_file");
    fs::set_permissions(&key_path, fs::Permissions::from_mode(0o600)).unwrap();
    assert!(load_key_file(&key_path).is_ok());
}

#[test]
fn key_errors_never_show_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let (key_path, _) = keygen(dir.path());
    let text = fs::read_to_string(&key_path).unwrap();
    // A damaged key: the error must name the file, not quote it.
    let damaged = text.replacen("b3BlbnNzaC1rZXktdjEA", "b3BlbnNzaC1rZXktdjIA", 1);
    fs::write(&key_path, &damaged).unwrap();
    let err = load_key_file(&key_path).unwrap_err();
    assert_eq!(err.code, "key");
    assert!(err.message.contains("id_ed25519"), "{err}");
    for line in damaged.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!err.message.contains(line), "{err}");
    }
    assert!(!format!("{:?}", open_signer(&SignerSource::File(key_path)).err()).contains("BEGIN"));
}

#[test]
fn encrypted_keys_get_a_clear_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("enc");
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "a passphrase", "-f"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    let err = load_key_file(&path).unwrap_err();
    assert!(err.message.contains("passphrase-protected"), "{err}");
}

#[test]
fn choosing_the_signer() {
    let home = Path::new("/home/op");
    assert_eq!(
        signer_source(None, false, Some(home)).unwrap(),
        SignerSource::File(PathBuf::from("/home/op/.ssh/id_ed25519"))
    );
    assert_eq!(
        signer_source(Some(Path::new("/k")), false, Some(home)).unwrap(),
        SignerSource::File(PathBuf::from("/k"))
    );
    assert_eq!(
        signer_source(None, true, None).unwrap(),
        SignerSource::Agent
    );
    assert_eq!(signer_source(None, false, None).unwrap_err().code, "usage");
    // The ssh-agent signer is exercised against a real agent in tests/fleet_e2e.rs.
}

#[test]
fn summary_shows_what_is_signed() {
    let op = sample_op();
    let text = summary("op-1", &op, NOW);
    assert!(text.contains("op              guest.remove\n"), "{text}");
    assert!(text.contains("host            h-1\n"), "{text}");
    assert!(text.contains("guest           web\n"), "{text}");
    assert!(
        text.contains("params          {\"guest_id\":\"web\"}\n"),
        "{text}"
    );
    assert!(
        text.contains("expires         2026-01-08T00:00:00Z (in 7d 0h)\n"),
        "{text}"
    );
    let host_level = Op {
        target: Target {
            host_id: "h-1".into(),
            guest_id: None,
        },
        ..op
    };
    assert!(summary("op-2", &host_level, NOW).contains("(whole host)"));
}
