//! The ssh-agent client against the real OpenSSH `ssh-agent`: signatures it makes pass both our
//! pipeline and `ssh-keygen -Y verify`, key selection behaves, and a dead agent is an error,
//! not a hang.

mod common;

use std::fs;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use mftplus_signing::agent::read_public_key;
use mftplus_signing::{
    sign_op, verify_op, AgentClient, AgentError, AgentSigner, MemoryNonceStore, PrivateKey,
    PublicKey, SignError, Signer, SshSigError, VerifyContext, OP_NAMESPACE,
};

/// A private `ssh-agent -D` on a socket in `dir`, killed when dropped.
struct TestAgent {
    child: Child,
    sock: PathBuf,
}

impl TestAgent {
    fn start(dir: &Path) -> Self {
        let sock = dir.join("agent.sock");
        let mut child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&sock)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run ssh-agent (is openssh-client installed?)");
        // Ready when the socket accepts a connection; polled, bounded, no fixed sleep.
        let deadline = Instant::now() + Duration::from_secs(10);
        while UnixStream::connect(&sock).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("ssh-agent exited early: {status}");
            }
            assert!(Instant::now() < deadline, "ssh-agent did not come up");
            std::thread::sleep(Duration::from_millis(10));
        }
        Self { child, sock }
    }

    fn add(&self, key: &Path) {
        run_ok(
            Command::new("ssh-add")
                .env("SSH_AUTH_SOCK", &self.sock)
                .arg("-q")
                .arg(key),
        );
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for TestAgent {
    fn drop(&mut self) {
        self.kill();
    }
}

fn public(key_path: &Path) -> PublicKey {
    PublicKey::from_openssh(&fs::read_to_string(key_path.with_extension("pub")).unwrap()).unwrap()
}

#[test]
fn agent_signatures_pass_our_pipeline_and_ssh_keygen_verify() {
    let dir = tempfile::tempdir().unwrap();
    let agent = TestAgent::start(dir.path());
    let rsa = keygen(dir.path(), "rsa", &["-t", "rsa", "-b", "2048"]);
    agent.add(&rsa);
    let keys: Vec<_> = KINDS
        .iter()
        .map(|(name, kind)| (*name, keygen(dir.path(), name, kind)))
        .collect();
    for (_, path) in &keys {
        agent.add(path);
    }

    let client = AgentClient::connect(&agent.sock).unwrap();
    let answer = client.identities().unwrap();
    assert_eq!(
        answer.skipped,
        ["ssh-rsa"],
        "the RSA key is skipped, not fatal"
    );
    let listed: Vec<_> = answer.supported.iter().map(|id| &id.key).collect();
    let expected: Vec<_> = keys.iter().map(|(_, path)| public(path)).collect();
    assert_eq!(listed, expected.iter().collect::<Vec<_>>());
    assert_eq!(answer.supported[0].comment, "ed25519@test");

    for (name, path) in &keys {
        let key = public(path);
        let signer = AgentSigner::connect(&agent.sock, Some(&key)).unwrap();
        assert_eq!(signer.public_key(), &key);
        let op = op(&format!("agent-signed-nonce-{name}"));
        let blob = op.to_canonical_bytes();
        let armored = sign_op(&signer, &blob).unwrap_or_else(|e| panic!("{name}: {e}"));

        let signers = pinned(&path.with_extension("pub"));
        let ctx = VerifyContext {
            allowed_signers: &signers,
            host_id: HOST,
            action: &action(),
            now: NOW,
        };
        let verified = verify_op(&armored, &blob, &ctx, &mut MemoryNonceStore::default())
            .unwrap_or_else(|e| panic!("{name}: our pipeline refused: {e}"));
        assert_eq!(verified.op, op);
        assert_eq!(verified.signer, key);

        let allowed = dir.path().join(format!("allowed-{name}"));
        let pub_line = fs::read_to_string(path.with_extension("pub")).unwrap();
        fs::write(
            &allowed,
            format!("ops@example.com namespaces=\"{OP_NAMESPACE}\" {pub_line}"),
        )
        .unwrap();
        let (ok, out) = keygen_verify(&allowed, "ops@example.com", OP_NAMESPACE, &armored, &blob);
        assert!(ok, "{name}: ssh-keygen refused the agent signature: {out}");
        assert!(out.contains("Good \"mftplus-op-v1\" signature"), "{out}");
    }
}

#[test]
fn ed25519_through_the_agent_is_byte_identical_to_the_file_key() {
    let dir = tempfile::tempdir().unwrap();
    let agent = TestAgent::start(dir.path());
    let path = keygen(dir.path(), "ed25519", &["-t", "ed25519"]);
    agent.add(&path);
    let file_key = PrivateKey::from_openssh(&fs::read_to_string(&path).unwrap()).unwrap();
    // The only key, so no selection is needed; the key is named by its private key path.
    let signer = AgentSigner::connect(&agent.sock, None).unwrap();
    assert_eq!(signer.public_key(), &read_public_key(&path).unwrap());
    let blob = op("byte-identical-nonce-1").to_canonical_bytes();
    // Ed25519 is deterministic: same key, same data, same armored SSHSIG.
    assert_eq!(
        sign_op(&signer, &blob).unwrap(),
        sign_op(&file_key, &blob).unwrap()
    );
}

#[test]
fn key_selection() {
    let dir = tempfile::tempdir().unwrap();
    let agent = TestAgent::start(dir.path());
    let rsa = keygen(dir.path(), "rsa", &["-t", "rsa", "-b", "2048"]);
    let ed = keygen(dir.path(), "ed25519", &["-t", "ed25519"]);
    let p256 = keygen(dir.path(), "p256", &["-t", "ecdsa", "-b", "256"]);
    let absent = keygen(dir.path(), "absent", &["-t", "ed25519"]);

    // Only RSA: nothing usable, and the error says what was skipped.
    agent.add(&rsa);
    assert_eq!(
        AgentSigner::connect(&agent.sock, None).unwrap_err(),
        AgentError::NoIdentities {
            skipped: vec!["ssh-rsa".into()]
        }
    );

    // RSA plus one usable key: that key, without asking.
    agent.add(&ed);
    let signer = AgentSigner::connect(&agent.sock, None).unwrap();
    assert_eq!(signer.public_key(), &public(&ed));
    assert_eq!(signer.comment(), "ed25519@test");

    // Two usable keys and none named: refused, listing both fingerprints.
    agent.add(&p256);
    match AgentSigner::connect(&agent.sock, None).unwrap_err() {
        AgentError::Ambiguous(listed) => {
            assert_eq!(listed.len(), 2);
            assert!(
                listed[0].starts_with(&public(&ed).fingerprint()),
                "{listed:?}"
            );
            assert!(
                listed[1].starts_with(&public(&p256).fingerprint()),
                "{listed:?}"
            );
        }
        other => panic!("expected Ambiguous, got {other}"),
    }
    let chosen = AgentSigner::connect(&agent.sock, Some(&public(&p256))).unwrap();
    assert_eq!(chosen.public_key(), &public(&p256));

    // A key the agent does not hold.
    let err =
        AgentSigner::connect(&agent.sock, Some(&read_public_key(&absent).unwrap())).unwrap_err();
    assert!(
        matches!(&err, AgentError::KeyNotInAgent { fingerprint, available }
            if *fingerprint == public(&absent).fingerprint() && available.len() == 2),
        "{err}"
    );
}

#[test]
fn a_killed_agent_is_a_typed_error_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let mut agent = TestAgent::start(dir.path());
    let path = keygen(dir.path(), "p384", &["-t", "ecdsa", "-b", "384"]);
    agent.add(&path);
    let signer = AgentSigner::connect(&agent.sock, None).unwrap();
    let blob = op("killed-agent-nonce-01").to_canonical_bytes();
    sign_op(&signer, &blob).unwrap();

    agent.kill();
    let start = Instant::now();
    // The open connection is gone...
    assert_eq!(
        sign_op(&signer, &blob).unwrap_err(),
        SshSigError::Sign(SignError::Agent(AgentError::Closed))
    );
    // ...and dialling again finds nobody listening.
    let err = sign_op(&signer, &blob).unwrap_err();
    assert!(
        matches!(
            &err,
            SshSigError::Sign(SignError::Agent(AgentError::Connect { .. }))
        ),
        "{err}"
    );
    assert!(start.elapsed() < Duration::from_secs(5));
}
