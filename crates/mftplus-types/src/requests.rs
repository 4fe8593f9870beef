//! Wire types of file requests (decision 0034): a signed-in user asks someone without an
//! account for a file. The outsider opens `/r/<token>`, their browser encrypts the file to the
//! requester's registered key and uploads it; the result is an ordinary transfer to the
//! requester, sent by `request:<id>`. The cloud keeps the token's SHA-256 only.

use serde::{Deserialize, Serialize};

/// Where a request's page is: `/r/<token>`.
pub const REQUEST_PAGE_PREFIX: &str = "/r/";
/// A transfer's `sender_kind` (and, as `request:<id>`, its sender) when it came through a file
/// request.
pub const REQUEST_SENDER_PREFIX: &str = "request:";

/// `POST /api/v1/file-requests`: ask for files, encrypted to the caller's registered key.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateFileRequest {
    /// Shown to whoever opens the request (at most 500 characters).
    #[serde(default)]
    pub note: Option<String>,
    /// A duration such as `7d` (the default); at most the server's transfer retention.
    #[serde(default)]
    pub expires: Option<String>,
    /// How many files may be uploaded through the request (1 to 1,000; default 1).
    #[serde(default)]
    pub max_uploads: Option<u32>,
    /// The largest upload in bytes of ciphertext (default and at most the server's
    /// `transfers.max_request_upload_bytes`).
    #[serde(default)]
    pub max_bytes: Option<u64>,
}

/// A request as its owner and operators see it; never its token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct FileRequest {
    pub id: String,
    /// Email of the requester (`""` once deleted).
    pub owner: String,
    pub note: String,
    pub created_at: String,
    pub expires_at: String,
    pub max_uploads: u32,
    pub max_bytes: u64,
    /// Transfers made through the request so far.
    pub uploads: u32,
    pub last_upload_at: Option<String>,
    pub revoked_at: Option<String>,
    /// `active`, `expired`, `revoked` or `exhausted`.
    pub status: String,
}

/// The answer to making a request: the token, shown this once.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CreatedFileRequest {
    pub request: FileRequest,
    /// The last part of `/r/<token>`. The server keeps only its SHA-256.
    pub token: String,
    /// `/r/<token>`: the client prepends the server's address.
    pub path: String,
}

/// `GET /api/v1/requested/{token}`: what the request's page needs to encrypt an upload.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RequestedUpload {
    /// The requester's email: the upload's one recipient.
    pub recipient: String,
    /// The requester's registered public key (`mftx25519_…`), to encrypt the file key to.
    pub public_key: String,
    pub note: String,
    pub expires_at: String,
    pub uploads_left: u32,
    /// The largest upload in bytes of ciphertext.
    pub max_bytes: u64,
    /// The largest chunk size the server takes.
    pub max_chunk_size: u64,
}
