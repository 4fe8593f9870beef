//! The operator's side of signed ops, apart from any network: choosing the signer, loading a
//! private key file safely, checking that an op's blob is canonical and says what the cloud
//! claims it says, summarising it for a human, and signing its exact bytes.
//!
//! The summary is built from the parsed blob, never from the cloud's description of it: what
//! the operator reads is what the signature covers. No function here returns or prints key
//! material; errors about a key file name the file, never its contents.

use std::path::{Path, PathBuf};

use mftplus_signing::{sign_op, KeyError, Op, PrivateKey, Signer};
use mftplus_types::fleet::{OpInfo, OpStatus};

use crate::error::CliError;
use crate::input::read_private;
use crate::output::details;

/// Where the signing key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignerSource {
    /// An unencrypted OpenSSH private key file.
    File(PathBuf),
    /// A key held by ssh-agent (`$SSH_AUTH_SOCK`).
    Agent,
}

/// `--key PATH`, `--agent`, or the default `~/.ssh/id_ed25519`.
pub fn signer_source(
    key: Option<&Path>,
    agent: bool,
    home: Option<&Path>,
) -> Result<SignerSource, CliError> {
    if agent {
        return Ok(SignerSource::Agent);
    }
    if let Some(path) = key {
        return Ok(SignerSource::File(path.to_path_buf()));
    }
    match home {
        Some(home) => Ok(SignerSource::File(home.join(".ssh/id_ed25519"))),
        None => Err(CliError::usage(
            "HOME is not set, so there is no default key; pass --key PATH",
        )),
    }
}

/// The one place a signer is chosen.
pub fn open_signer(source: &SignerSource) -> Result<Box<dyn Signer>, CliError> {
    match source {
        SignerSource::File(path) => Ok(Box::new(load_key_file(path)?)),
        // The agent's only usable key; several are refused with their fingerprints rather
        // than guessed, because signing with the wrong key is refused by every agent anyway.
        SignerSource::Agent => mftplus_signing::AgentSigner::from_env(None)
            .map(|signer| Box::new(signer) as Box<dyn Signer>)
            .map_err(|err| CliError::new("ssh_agent", format!("ssh-agent: {err}"))),
    }
}

/// Reads an OpenSSH private key file, refusing one that group or others may read (like ssh
/// itself does) before reading a byte of it.
pub fn load_key_file(path: &Path) -> Result<PrivateKey, CliError> {
    let shown = path.display();
    let text = read_private(path, &format!("cannot read the key file {shown}"), || {
        format!("key file {shown} is readable by other users; run chmod 600 on it")
    })?;
    PrivateKey::from_openssh(&text).map_err(|e| match e {
        KeyError::Encrypted => CliError::new(
            "key",
            format!(
                "key file {shown} is passphrase-protected, which this build cannot open; \
                 use an unencrypted key kept on this machine only"
            ),
        ),
        other => CliError::new(
            "key",
            format!("key file {shown} is not a usable OpenSSH private key: {other}"),
        ),
    })
}

/// Parses an op's blob strictly and checks it against the cloud's listing of it: the
/// operator is about to sign the blob, so the blob must be exactly what was described, not yet
/// expired, and still waiting for a signature.
pub fn check_op(info: &OpInfo, now: i64) -> Result<Op, CliError> {
    let id = &info.op_id;
    if info.status != OpStatus::PendingSignature {
        return Err(CliError::new(
            "op_state_conflict",
            format!("op {id} is {}, not waiting for a signature", info.status),
        ));
    }
    let op = Op::parse(info.blob.as_bytes()).map_err(|e| {
        CliError::new(
            "invalid_op",
            format!("refusing to sign op {id}: its blob is not a valid canonical op ({e})"),
        )
    })?;
    let mismatch = if op.op != info.op_type {
        Some("op type")
    } else if op.target.host_id != info.host_id {
        Some("host")
    } else if op.target.guest_id != info.guest_id {
        Some("guest")
    } else if op.nonce != info.nonce {
        Some("nonce")
    } else {
        None
    };
    if let Some(field) = mismatch {
        return Err(CliError::new(
            "invalid_op",
            format!(
                "refusing to sign op {id}: the cloud lists a different {field} than its blob says"
            ),
        ));
    }
    if now > op.expires_at {
        return Err(CliError::new(
            "op_expired",
            format!("op {id} expired at {}", unix_to_rfc3339(op.expires_at)),
        ));
    }
    Ok(op)
}

/// What the operator reads before saying yes, all from the signed bytes.
pub fn summary(op_id: &str, op: &Op, now: i64) -> String {
    let guest = match &op.target.guest_id {
        Some(g) => g.clone(),
        None => "- (whole host)".to_string(),
    };
    let params = match &op.params {
        serde_json::Value::Null => "-".to_string(),
        other => other.to_string(),
    };
    details(&[
        ("op", op.op.clone()),
        ("op id", op_id.to_string()),
        ("host", op.target.host_id.clone()),
        ("guest", guest),
        ("params", params),
        ("issued", unix_to_rfc3339(op.issued_at)),
        (
            "expires",
            format!(
                "{} (in {})",
                unix_to_rfc3339(op.expires_at),
                remaining(op.expires_at - now)
            ),
        ),
        ("issued for key", or_dash(&op.key_id)),
    ])
}

fn or_dash(text: &str) -> String {
    crate::output::or_dash(Some(text))
}

/// Signs the exact blob bytes (SSHSIG, namespace `mftplus-op-v1`); the armored signature.
pub fn sign_blob(signer: &dyn Signer, op_id: &str, blob: &str) -> Result<String, CliError> {
    sign_op(signer, blob.as_bytes())
        .map_err(|e| CliError::new("sign", format!("cannot sign op {op_id}: {e}")))
}

pub fn unix_to_rfc3339(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| format!("@{secs}"))
}

fn remaining(secs: i64) -> String {
    let secs = secs.max(0);
    let (days, hours, minutes) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    match (days, hours) {
        (0, 0) => format!("{minutes}m"),
        (0, _) => format!("{hours}h {minutes}m"),
        _ => format!("{days}d {hours}h"),
    }
}

pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
#[path = "op_sign_tests.rs"]
mod tests;
