//! Shared helpers for the integration tests: building ops, and driving the real ssh-keygen.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use mftplus_signing::{AllowedSigners, ExpectedAction, Op, Target, OP_NAMESPACE};
use serde_json::{json, Value};

pub const HOST: &str = "host-0001";
pub const GUEST: &str = "guest-0042";
/// An arbitrary fixed "now" so the tests do not depend on the wall clock.
pub const NOW: i64 = 1_760_000_000;

pub fn params() -> Value {
    json!({"keep_backups": false, "reason": "customer request", "volumes": ["vda", "vdb"]})
}

/// A valid `guest.remove` op for [`HOST`]/[`GUEST`], issued now, valid for an hour.
pub fn op(nonce: &str) -> Op {
    Op {
        op: "guest.remove".into(),
        target: Target {
            host_id: HOST.into(),
            guest_id: Some(GUEST.into()),
        },
        params: params(),
        nonce: nonce.into(),
        issued_at: NOW,
        expires_at: NOW + 3600,
        key_id: "SHA256:operator".into(),
    }
}

/// The action the op from [`op`] gates.
pub fn action() -> ExpectedAction {
    ExpectedAction {
        op: "guest.remove".into(),
        guest_id: Some(GUEST.into()),
        params: params(),
    }
}

/// An allowed_signers pinning the key in `pub_path` for ops, as `ops@example.com`.
pub fn pinned(pub_path: &Path) -> AllowedSigners {
    let line = std::fs::read_to_string(pub_path).unwrap();
    AllowedSigners::parse(&format!(
        "ops@example.com namespaces=\"{OP_NAMESPACE}\" {line}"
    ))
    .unwrap()
}

pub fn ssh_keygen() -> Command {
    let mut cmd = Command::new("ssh-keygen");
    // allowed_signers timestamps without `Z` are local time to ssh-keygen; we read them as
    // UTC, so pin its zone to agree.
    cmd.env("TZ", "UTC");
    cmd
}

/// Runs a command, failing the test with its stderr if it does not succeed.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .expect("run ssh-keygen (is openssh-client installed?)");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Generates an unencrypted key with ssh-keygen; returns the private key path (`.pub` beside).
pub fn keygen(dir: &Path, name: &str, kind: &[&str]) -> PathBuf {
    let path = dir.join(name);
    run_ok(
        ssh_keygen()
            .args(["-q", "-N", "", "-C", &format!("{name}@test"), "-f"])
            .arg(&path)
            .args(kind),
    );
    path
}

pub const KINDS: [(&str, &[&str]); 3] = [
    ("ed25519", &["-t", "ed25519"]),
    ("p256", &["-t", "ecdsa", "-b", "256"]),
    ("p384", &["-t", "ecdsa", "-b", "384"]),
];

/// `ssh-keygen -Y sign` over `message`; returns the armored signature.
pub fn keygen_sign(key: &Path, namespace: &str, message: &[u8], extra: &[&str]) -> String {
    let dir = key.parent().unwrap();
    let file = dir.join(format!("msg-{}", std::process::id()));
    std::fs::write(&file, message).unwrap();
    let sig_path = PathBuf::from(format!("{}.sig", file.display()));
    let _ = std::fs::remove_file(&sig_path);
    run_ok(
        ssh_keygen()
            .args(["-Y", "sign", "-n", namespace, "-f"])
            .arg(key)
            .args(extra)
            .arg(&file),
    );
    std::fs::read_to_string(&sig_path).unwrap()
}

/// `ssh-keygen -Y verify`; returns whether it accepted, and its stdout+stderr.
pub fn keygen_verify(
    allowed_signers: &Path,
    principal: &str,
    namespace: &str,
    signature: &str,
    message: &[u8],
) -> (bool, String) {
    let dir = allowed_signers.parent().unwrap();
    let sig_path = dir.join("verify.sig");
    std::fs::write(&sig_path, signature).unwrap();
    let mut child = ssh_keygen()
        .args(["-Y", "verify", "-f"])
        .arg(allowed_signers)
        .args(["-I", principal, "-n", namespace, "-s"])
        .arg(&sig_path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ssh-keygen");
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(message).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}
