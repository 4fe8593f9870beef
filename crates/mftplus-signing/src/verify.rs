//! The agent's verification pipeline for signed ops (SPEC §3), and the operator-side helper
//! that produces the signature it checks.
//!
//! The stages run in a fixed order and each has its own error, so a rejection says exactly
//! which check failed. The order is chosen so that nothing is interpreted before it is
//! authenticated, and nothing is remembered before everything else has passed:
//!
//! 1. armor / SSHSIG structure: cheap, no key needed;
//! 2. namespace: a signature made for another purpose is never even considered;
//! 3. signer pinned (key material, namespace and validity window from `allowed_signers`):
//!    before any expensive or risky crypto on an attacker's key;
//! 4. signature over the raw blob bytes: from here on the bytes are the operator's;
//! 5. parse the blob: only authenticated bytes reach the JSON parser's semantics;
//! 6. target host / guest; 7. time window: facts about the signed content;
//! 8. nonce not seen; 9. the op is the exact action being gated;
//!
//! and only then is the nonce recorded, durably. A forged, tampered, mis-targeted or
//! mismatched attempt therefore never burns the nonce of the genuine op.

use serde_json::Value;
use thiserror::Error;

use crate::allowed_signers::{AllowedSigners, SignerRejection};
use crate::keys::{PublicKey, Signer};
use crate::nonce::{NonceStore, NonceStoreError};
use crate::op::{Op, OpError};
use crate::sshsig::{HashAlg, SshSig, SshSigError};

/// The SSHSIG namespace of op signatures (`ssh-keygen -Y sign -n mftplus-op-v1`).
pub const OP_NAMESPACE: &str = "mftplus-op-v1";
/// How far in the future `issued_at` may be, for clock skew between cloud and agent.
pub const MAX_FUTURE_SKEW_SECS: i64 = 120;

/// The action the agent is about to perform and wants an op to authorise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedAction {
    /// The op name, e.g. `guest.remove`.
    pub op: String,
    /// The guest the action touches, or `None` for a host-level action. Must equal the op's
    /// `target.guest_id` exactly: a host-level op does not authorise a guest action, nor the
    /// other way round.
    pub guest_id: Option<String>,
    /// Must equal the op's `params` exactly (JSON value equality).
    pub params: Value,
}

/// Everything the pipeline checks an op against besides the signature and blob.
#[derive(Debug, Clone, Copy)]
pub struct VerifyContext<'a> {
    /// The pinned operator keys.
    pub allowed_signers: &'a AllowedSigners,
    /// This host's id.
    pub host_id: &'a str,
    pub action: &'a ExpectedAction,
    /// Unix seconds.
    pub now: i64,
}

/// A verified op and the pinned key that signed it (for the audit trail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedOp {
    pub op: Op,
    pub signer: PublicKey,
}

/// Why an op was refused; one or more variants per stage, in pipeline order.
#[derive(Debug, Error)]
pub enum VerifyError {
    #[error("signature is not a well-formed armored SSHSIG: {0}")]
    Armor(SshSigError),
    #[error("signature namespace is `{found}`, not `{OP_NAMESPACE}`")]
    Namespace { found: String },
    #[error("signer key {fingerprint} is not pinned")]
    UnknownSigner { fingerprint: String },
    #[error("signer key {fingerprint} is pinned but not for namespace `{OP_NAMESPACE}`")]
    SignerNamespaceNotAllowed { fingerprint: String },
    #[error("signer key {fingerprint} is pinned but outside its validity window")]
    SignerNotValidNow { fingerprint: String },
    #[error("signature does not verify over the op blob: {0}")]
    BadSignature(SshSigError),
    #[error("op blob: {0}")]
    Blob(OpError),
    #[error("op targets host `{found}`, this is `{expected}`")]
    WrongHost { expected: String, found: String },
    #[error("op targets guest {found:?}, the action touches {expected:?}")]
    WrongGuest {
        expected: Option<String>,
        found: Option<String>,
    },
    #[error("op issued at {issued_at}, more than {MAX_FUTURE_SKEW_SECS}s after now ({now})")]
    NotYetValid { issued_at: i64, now: i64 },
    #[error("op expired at {expires_at} (now {now})")]
    Expired { expires_at: i64, now: i64 },
    #[error("op nonce was already used")]
    Replay,
    #[error("op does not match the action: {0}")]
    ActionMismatch(&'static str),
    #[error("nonce store: {0}")]
    NonceStore(NonceStoreError),
}

impl VerifyError {
    /// A stable machine-readable code, for status reports and logs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Armor(_) => "sig_armor",
            Self::Namespace { .. } => "sig_namespace",
            Self::UnknownSigner { .. } => "sig_unknown_key",
            Self::SignerNamespaceNotAllowed { .. } => "sig_key_namespace",
            Self::SignerNotValidNow { .. } => "sig_key_not_valid",
            Self::BadSignature(_) => "sig_invalid",
            Self::Blob(_) => "op_malformed",
            Self::WrongHost { .. } => "op_wrong_host",
            Self::WrongGuest { .. } => "op_wrong_guest",
            Self::NotYetValid { .. } => "op_not_yet_valid",
            Self::Expired { .. } => "op_expired",
            Self::Replay => "op_replayed",
            Self::ActionMismatch(_) => "op_action_mismatch",
            Self::NonceStore(_) => "nonce_store",
        }
    }
}

/// Runs the full pipeline; on success the op's nonce has been durably recorded and the caller
/// may perform the action exactly once.
pub fn verify_op(
    signature_armored: &str,
    blob: &[u8],
    ctx: &VerifyContext<'_>,
    nonces: &mut dyn NonceStore,
) -> Result<VerifiedOp, VerifyError> {
    // 1. Armor and SSHSIG structure.
    let sig = SshSig::from_armored(signature_armored).map_err(VerifyError::Armor)?;

    // 2. Namespace.
    if sig.namespace() != OP_NAMESPACE {
        return Err(VerifyError::Namespace {
            found: sig.namespace().to_owned(),
        });
    }

    // 3. The claimed signer must be pinned, for this namespace, now.
    let fingerprint = || sig.public_key().fingerprint();
    let signer = ctx
        .allowed_signers
        .check(sig.public_key(), OP_NAMESPACE, ctx.now)
        .map_err(|rejection| match rejection {
            SignerRejection::NotPinned => VerifyError::UnknownSigner {
                fingerprint: fingerprint(),
            },
            SignerRejection::NamespaceNotAllowed => VerifyError::SignerNamespaceNotAllowed {
                fingerprint: fingerprint(),
            },
            SignerRejection::OutsideValidity => VerifyError::SignerNotValidNow {
                fingerprint: fingerprint(),
            },
        })?;

    // 4. The signature, with the pinned key, over the exact bytes received.
    sig.verify_signature(&signer.key, blob)
        .map_err(VerifyError::BadSignature)?;

    // 5. Only now interpret the bytes.
    let op = Op::parse(blob).map_err(VerifyError::Blob)?;

    // 6. Target.
    if op.target.host_id != ctx.host_id {
        return Err(VerifyError::WrongHost {
            expected: ctx.host_id.to_owned(),
            found: op.target.host_id,
        });
    }
    if op.target.guest_id != ctx.action.guest_id {
        return Err(VerifyError::WrongGuest {
            expected: ctx.action.guest_id.clone(),
            found: op.target.guest_id,
        });
    }

    // 7. Time window.
    if op.issued_at > ctx.now.saturating_add(MAX_FUTURE_SKEW_SECS) {
        return Err(VerifyError::NotYetValid {
            issued_at: op.issued_at,
            now: ctx.now,
        });
    }
    if ctx.now > op.expires_at {
        return Err(VerifyError::Expired {
            expires_at: op.expires_at,
            now: ctx.now,
        });
    }

    // 8. Nonce not seen (checked here, recorded last).
    if nonces.is_seen(&op.nonce).map_err(VerifyError::NonceStore)? {
        return Err(VerifyError::Replay);
    }

    // 9. The exact action.
    if op.op != ctx.action.op {
        return Err(VerifyError::ActionMismatch("op name differs"));
    }
    if op.params != ctx.action.params {
        return Err(VerifyError::ActionMismatch("params differ"));
    }

    // Everything passed: remember the nonce before the caller acts on the op.
    nonces
        .record(&op.nonce, op.expires_at, ctx.now)
        .map_err(|e| match e {
            NonceStoreError::AlreadySeen => VerifyError::Replay,
            other => VerifyError::NonceStore(other),
        })?;
    Ok(VerifiedOp {
        op,
        signer: signer.key.clone(),
    })
}

/// The operator side: signs op blob bytes as `ssh-keygen -Y sign -n mftplus-op-v1` would
/// (SHA-512) and returns the armored signature.
pub fn sign_op(signer: &dyn Signer, blob: &[u8]) -> Result<String, SshSigError> {
    Ok(SshSig::sign(signer, OP_NAMESPACE, HashAlg::Sha512, blob)?.to_armored())
}
