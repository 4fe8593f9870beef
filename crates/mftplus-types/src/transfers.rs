//! Wire types of the transfer API (`docs/decisions/0008-transfer-protocol.md`). The cloud sees
//! only ciphertext: the stream header, sealed chunks and the sealed manifest, all opaque here.

use serde::{Deserialize, Serialize};

/// `PUT /api/v1/users/me/key`: the caller's X25519 public key (`mftx25519_…`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicKeyBody {
    pub public_key: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct UserPublicKey {
    pub user_id: String,
    pub email: String,
    pub public_key: String,
    pub fingerprint: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTransferRequest {
    /// Recipient users by email.
    pub recipients: Vec<String>,
    /// The stream header, base64 (standard alphabet).
    pub header: String,
    pub chunk_size: u64,
    /// A duration such as `7d`; defaults to `transfers.retention_days`.
    pub expires: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TransferRecipient {
    /// `user` or `agent`.
    pub kind: String,
    pub id: String,
    pub display: String,
    pub downloaded_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Transfer {
    pub id: String,
    pub sender_id: String,
    pub sender_email: String,
    /// `uploading`, `complete`, `cancelled` or `expired`.
    pub status: String,
    pub chunk_size: u64,
    pub chunk_count: Option<u64>,
    pub ciphertext_bytes: u64,
    pub created_at: String,
    pub completed_at: Option<String>,
    pub cancelled_at: Option<String>,
    pub expires_at: String,
    pub recipients: Vec<TransferRecipient>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChunkInfo {
    pub index: u64,
    pub size: u64,
    /// SHA-256 of the sealed chunk, hex.
    pub sha256: String,
    pub last: bool,
}

/// Answer to a chunk upload: `stored`, or `already_stored` for an identical retry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChunkReceipt {
    pub index: u64,
    pub status: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompleteTransferRequest {
    /// The sealed manifest, base64 (standard alphabet).
    pub manifest: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct VerifyReport {
    pub transfer_id: String,
    pub chunks_checked: u64,
    pub ok: bool,
    /// Chunks whose stored bytes no longer match their recorded SHA-256.
    pub corrupt: Vec<u64>,
    /// Chunks recorded but missing from the payload store.
    pub missing: Vec<u64>,
}

/// Header names of a chunk upload.
pub const CHUNK_SHA256_HEADER: &str = "x-chunk-sha256";
pub const CHUNK_LAST_HEADER: &str = "x-chunk-last";
