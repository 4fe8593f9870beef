//! Signed operations for MFTPlus: the pieces that let an agent refuse a destructive change
//! unless an operator signed it offline, even if the control plane is compromised.
//!
//! What is here:
//! - [`Op`]: the op blob, its canonical JSON bytes and a strict parser ([`op`]).
//! - [`SshSig`]: OpenSSH SSHSIG signatures, armored or binary, interoperable with
//!   `ssh-keygen -Y sign` / `-Y verify` ([`sshsig`], [`armor`]).
//! - [`PublicKey`], [`PrivateKey`] and the [`Signer`] trait: OpenSSH keys, Ed25519 and ECDSA
//!   P-256/P-384 ([`keys`], [`private_key`]).
//! - [`AgentSigner`]: a [`Signer`] whose key stays in the operator's ssh-agent, spoken to over
//!   `SSH_AUTH_SOCK` ([`agent`]).
//! - [`AllowedSigners`]: the pinned operator keys in ssh-keygen's allowed_signers format.
//! - [`verify_op`]: the agent's verification pipeline, in the order SPEC §3 fixes, and
//!   [`sign_op`] for the operator side.
//! - [`NonceStore`] and the durable, crash-safe [`FileNonceStore`].
//!
//! What is not: no HTTP, no database, no async runtime, no clock (callers pass `now`, so tests
//! and the agent decide what time it is). The ssh-agent client is blocking and Unix-only, and
//! speaks only list-identities and sign. No RSA, P-521, FIDO (`sk-*`) keys, certificates or
//! encrypted private key files; each is refused with an error that says so (the agent client
//! skips such keys instead, since agents commonly hold one). `docs/signed-ops.md` explains the design.

pub mod agent;
pub mod allowed_signers;
pub mod armor;
pub mod keys;
pub mod nonce;
pub mod op;
pub mod private_key;
pub mod sshsig;
pub mod verify;
mod wire;

pub use agent::{AgentClient, AgentError, AgentIdentity, AgentSigner};
pub use allowed_signers::{AllowedSigner, AllowedSigners, AllowedSignersError, SignerRejection};
pub use keys::{KeyAlgorithm, KeyError, PublicKey, SignError, SignatureError, Signer};
pub use nonce::{FileNonceStore, MemoryNonceStore, NonceStore, NonceStoreError};
pub use op::{Op, OpError, Target};
pub use private_key::PrivateKey;
pub use sshsig::{HashAlg, SshSig, SshSigError};
pub use verify::{
    sign_op, verify_op, ExpectedAction, VerifiedOp, VerifyContext, VerifyError,
    MAX_FUTURE_SKEW_SECS, OP_NAMESPACE,
};
pub use wire::WireError;
