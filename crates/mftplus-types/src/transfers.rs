//! Wire types of the transfer API (`docs/decisions/0008-transfer-protocol.md`). The cloud sees
//! only ciphertext: the stream header, sealed chunks and the sealed manifest, all opaque here.

use serde::{Deserialize, Serialize};

/// `PUT /api/v1/users/me/key`: the caller's X25519 public key (`mftx25519_…`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct PublicKeyBody {
    pub public_key: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct UserPublicKey {
    pub user_id: String,
    pub email: String,
    pub public_key: String,
    pub fingerprint: String,
    pub updated_at: String,
}

/// The prefix of a host recipient in [`CreateTransferRequest::recipients`] (decision 0029).
pub const HOST_RECIPIENT_PREFIX: &str = "host:";

/// `GET`/`PUT /api/v1/hosts/{host_id}/transfer-key`: a host's X25519 public key, which senders
/// wrap file keys to (decision 0029). The agent registers it with a [`PublicKeyBody`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct HostTransferKey {
    pub host_id: String,
    pub hostname: String,
    pub public_key: String,
    pub fingerprint: String,
    pub registered_at: String,
}

fn user_kind() -> String {
    "user".into()
}

/// The largest sealed chunk a transfer of `chunk_size` can produce: the chunk plus zstd's
/// worst-case growth and the AEAD tag. The cloud and a site hub refuse anything longer.
pub fn max_sealed_len(chunk_size: u64) -> u64 {
    chunk_size + chunk_size / 128 + 1024 + 16
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateTransferRequest {
    /// Recipient users by email, and hosts as `host:<host_id>` (decision 0029).
    pub recipients: Vec<String>,
    /// The stream header, base64 (standard alphabet).
    pub header: String,
    pub chunk_size: u64,
    /// A duration such as `7d`; defaults to `transfers.retention_days`.
    pub expires: Option<String>,
    /// Recipients (emails, among `recipients`) the header holds no stanza for yet because they
    /// have no public key: they may download only after the sender grants them access
    /// (decision 0022).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub awaiting_grant: Vec<String>,
    /// The transfer's id, chosen by the client: 32 lowercase hex digits (a UUID without its
    /// dashes). A client that records it before sending can tell after a crash whether the
    /// transfer was made; `conflict` when the id is taken. The server chooses when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The whole stream of a one-chunk transfer, which is then created complete by this one
    /// request instead of a create, a chunk upload and a completion (decision 0037).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub whole: Option<WholeStream>,
}

/// The chunk and manifest of a transfer whose stream is one chunk of at most
/// [`MAX_WHOLE_CHUNK`] bytes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct WholeStream {
    /// The only (and last) sealed chunk, base64 (standard alphabet).
    pub chunk: String,
    /// The SHA-256 of the decoded chunk, lowercase hex, checked before anything is stored.
    pub chunk_sha256: String,
    /// The sealed manifest, base64 (standard alphabet).
    pub manifest: String,
}

/// The largest sealed chunk a [`WholeStream`] may carry: what the cloud keeps in a chunk's
/// database row (decision 0037). Larger streams are uploaded chunk by chunk.
pub const MAX_WHOLE_CHUNK: usize = 64 * 1024;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TransferRecipient {
    /// `user` or `agent`.
    pub kind: String,
    pub id: String,
    pub display: String,
    pub downloaded_at: Option<String>,
    /// The header holds no stanza for this recipient yet: it waits for the sender to grant
    /// access (decision 0022) and cannot download until then.
    #[serde(default)]
    pub awaiting_grant: bool,
    /// When the sender granted this recipient access; absent for recipients the header held
    /// from the start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granted_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Transfer {
    pub id: String,
    /// `user`, or `agent` for a transfer a host sent (decision 0029).
    #[serde(default = "user_kind")]
    pub sender_kind: String,
    /// The user id, or the host id of an `agent` sender.
    pub sender_id: String,
    /// The user's email; `host:<host_id>` for an `agent` sender.
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
    /// The hub whose site keeps this transfer's ciphertext (decision 0012); absent when the
    /// cloud's blob store does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ChunkInfo {
    pub index: u64,
    pub size: u64,
    /// SHA-256 of the sealed chunk, hex.
    pub sha256: String,
    pub last: bool,
}

/// Answer to a chunk upload: `stored`, or `already_stored` for an identical retry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ChunkReceipt {
    pub index: u64,
    pub status: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct CompleteTransferRequest {
    /// The sealed manifest, base64 (standard alphabet).
    pub manifest: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct VerifyReport {
    pub transfer_id: String,
    pub chunks_checked: u64,
    pub ok: bool,
    /// Chunks whose stored bytes no longer match their recorded SHA-256.
    pub corrupt: Vec<u64>,
    /// Chunks recorded but missing from the payload store.
    pub missing: Vec<u64>,
}

/// `POST /api/v1/transfers/{id}/grants`: the sender's new stream header, which is the current
/// one with X25519 stanzas appended for `recipients` (decision 0022).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct GrantRequest {
    /// User ids of the recipients granted, each waiting for a grant; one new stanza each.
    pub recipients: Vec<String>,
    /// The new stream header, base64 (standard alphabet).
    pub header: String,
    /// SHA-256 (hex) of the header the new one was built from; a header changed since is
    /// `grant_stale`.
    pub base_header_sha256: String,
}

/// A recipient waiting for the sender to grant access.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AwaitingRecipient {
    pub id: String,
    pub display: String,
    /// The recipient's registered public key (`mftx25519_…`): present once they have one, and
    /// then the sender can grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
}

/// `GET /api/v1/transfers/grants`: one of the caller's open transfers with recipients waiting
/// for a grant, with what the sender's client needs to build the grant.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PendingGrant {
    pub transfer_id: String,
    /// `uploading` or `complete`.
    pub status: String,
    pub expires_at: String,
    /// The current stream header, base64.
    pub header: String,
    pub recipients: Vec<AwaitingRecipient>,
}

/// Header names of a chunk upload.
pub const CHUNK_SHA256_HEADER: &str = "x-chunk-sha256";
pub const CHUNK_LAST_HEADER: &str = "x-chunk-last";

/// Site-local transfers (decision 0012): what an edge hub and the cloud say to each other on
/// transfer routes. Agents never send these; a hub strips them from what agents send.
pub mod site {
    use super::ChunkInfo;
    use serde::{Deserialize, Serialize};

    /// The registered hub's id, asserting "this request came through me".
    pub const HUB_ID_HEADER: &str = "x-mftplus-hub-id";
    /// The hub's deploy key, proving the assertion.
    pub const HUB_KEY_HEADER: &str = "x-mftplus-hub-key";
    /// On a hub's empty-bodied chunk `PUT`: the length of the sealed chunk the hub stored.
    pub const STORED_SIZE_HEADER: &str = "x-mftplus-site-chunk-size";
    /// On the cloud's answer to a hub's chunk `GET`: serve the chunk with this SHA-256 from
    /// the site store (the body is empty).
    pub const SERVE_SHA256_HEADER: &str = "x-mftplus-site-chunk-sha256";
    /// On the cloud's answer to a hub's verify `GET`: the body is a [`SiteVerifyPlan`] for the
    /// hub to check against its files.
    pub const VERIFY_PLAN_HEADER: &str = "x-mftplus-site-verify";

    /// Every header of this protocol; a hub removes them from agents' requests.
    pub const ALL_HEADERS: [&str; 5] = [
        HUB_ID_HEADER,
        HUB_KEY_HEADER,
        STORED_SIZE_HEADER,
        SERVE_SHA256_HEADER,
        VERIFY_PLAN_HEADER,
    ];

    /// The cloud's recorded chunks of a site transfer, for the hub's verify.
    #[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
    #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
    pub struct SiteVerifyPlan {
        pub transfer_id: String,
        pub chunk_count: Option<u64>,
        pub chunks: Vec<ChunkInfo>,
    }

    /// `POST /api/v1/hubs/{hub_id}/site-transfers/live`: the transfers a hub holds files for.
    #[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
    #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
    #[serde(deny_unknown_fields)]
    pub struct SiteTransfersQuery {
        pub transfer_ids: Vec<String>,
    }

    /// Which of them still need their files (uploading, or complete and not expired); the hub
    /// deletes the rest.
    #[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
    #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
    pub struct SiteTransfersLive {
        pub live: Vec<String>,
    }
}
