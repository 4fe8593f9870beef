//! Wire types of share links (decision 0023): a transfer opened in a browser by whoever holds
//! the link. The cloud knows a link's token (stored as its SHA-256) and never the secret in the
//! link's fragment, which unwraps the file key in the browser.

use serde::{Deserialize, Serialize};

/// The header a chunk fetch of a link carries its download ticket in.
pub const LINK_TICKET_HEADER: &str = "x-link-ticket";
/// Where a link's page is: `/s/<token>`, followed by `#<secret>` when the link has one.
pub const LINK_PAGE_PREFIX: &str = "/s/";

/// `POST /api/v1/transfers/{id}/links`: a new link to a transfer whose stream has a link
/// stanza (made by `mftctl send --link`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateLinkRequest {
    /// A duration such as `24h`; at most, and by default, the transfer's own expiry.
    #[serde(default)]
    pub expires: Option<String>,
    /// How many downloads the link allows (1 to 1,000,000); unlimited when absent.
    #[serde(default)]
    pub max_downloads: Option<u32>,
}

/// A link as its sender and operators see it; never its token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Link {
    pub id: String,
    pub transfer_id: String,
    /// Email of whoever made the link.
    pub created_by: String,
    pub created_at: String,
    pub expires_at: String,
    pub max_downloads: Option<u32>,
    /// Downloads started through the link (each open counts).
    pub downloads: u32,
    pub last_opened_at: Option<String>,
    pub revoked_at: Option<String>,
    /// `active`, `expired`, `revoked` or `exhausted`.
    pub status: String,
}

/// The answer to making a link: the token, shown this once.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CreatedLink {
    pub link: Link,
    /// The link's token: the last part of `/s/<token>`. The server keeps only its SHA-256.
    pub token: String,
    /// `/s/<token>`: the client appends `#<secret>` and the server's address.
    pub path: String,
}

/// `GET /api/v1/shared/{token}`: what a link's page needs to show the file and unwrap its key,
/// all of it ciphertext.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SharedFile {
    /// The stream header, base64 (standard alphabet).
    pub header: String,
    /// The sealed manifest, base64 (standard alphabet).
    pub manifest: String,
    pub chunk_size: u64,
    pub chunk_count: u64,
    pub ciphertext_bytes: u64,
    pub expires_at: String,
    /// Downloads the link still allows; absent when unlimited.
    pub downloads_left: Option<u32>,
}

/// `POST /api/v1/shared/{token}/open`: one counted download; the ticket every chunk fetch of
/// this download carries in `x-link-ticket`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct LinkTicket {
    pub ticket: String,
    /// The ticket lapses this long after its last use (and never outlives the link).
    pub expires_at: String,
}
