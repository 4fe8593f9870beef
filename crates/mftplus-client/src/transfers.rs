//! The transfer routes (`docs/decisions/0008-transfer-protocol.md`): public keys, uploads and
//! downloads of ciphertext. Bodies that are ciphertext travel as raw bytes, never JSON.

use mftplus_types::routes::{self, fill};
use mftplus_types::transfers::{
    ChunkInfo, ChunkReceipt, CompleteTransferRequest, CreateTransferRequest, GrantRequest,
    HostTransferKey, PendingGrant, PublicKeyBody, Transfer, UserPublicKey, VerifyReport,
    CHUNK_LAST_HEADER, CHUNK_SHA256_HEADER,
};

use crate::{Accepted, AgentClient, Client, ClientError, Method};

fn with_index(template: &str, id: &str, index: u64) -> String {
    fill(&fill(template, "id", id), "index", &index.to_string())
}

impl Client {
    /// `PUT /api/v1/users/me/key`: registers (or replaces) the caller's X25519 public key.
    pub async fn put_my_key(&self, public_key: &str) -> Result<UserPublicKey, ClientError> {
        let body = PublicKeyBody {
            public_key: public_key.to_string(),
        };
        self.fetch(self.builder(Method::PUT, routes::MY_KEY).json(&body))
            .await
    }

    /// `GET /api/v1/users/{user}/key`: a user's (email or id) public key.
    pub async fn get_user_key(&self, user: &str) -> Result<UserPublicKey, ClientError> {
        let path = fill(routes::USER_KEY, "user", user);
        self.fetch(self.builder(Method::GET, &path)).await
    }

    /// `GET /api/v1/hosts/{host_id}/transfer-key`: the encoded X25519 key (`mftx25519_…`) to
    /// send to a host with (recipient `host:<host_id>`, decision 0029). 404 when the host does
    /// not exist or its agent has registered none; a host key reads only its own customer's
    /// hosts (403 `recipient_not_allowed`).
    pub async fn host_transfer_key(&self, host_id: &str) -> Result<String, ClientError> {
        let path = fill(routes::HOST_TRANSFER_KEY, "host_id", host_id);
        let found: HostTransferKey = self.fetch(self.builder(Method::GET, &path)).await?;
        Ok(found.public_key)
    }

    pub async fn create_transfer(
        &self,
        request: CreateTransferRequest,
    ) -> Result<Transfer, ClientError> {
        self.fetch(self.builder(Method::POST, routes::TRANSFERS).json(&request))
            .await
    }

    /// Uploads one sealed chunk; `sha256_hex` is the SHA-256 of `bytes`, which the server
    /// checks before storing. Sending the same chunk again is answered `already_stored`, so a
    /// caller may retry with a clone of `bytes` (a `Bytes` clone shares the buffer).
    pub async fn upload_chunk(
        &self,
        id: &str,
        index: u64,
        bytes: impl Into<bytes::Bytes>,
        sha256_hex: &str,
        last: bool,
    ) -> Result<ChunkReceipt, ClientError> {
        let bytes: bytes::Bytes = bytes.into();
        let path = with_index(routes::TRANSFER_CHUNK, id, index);
        let builder = self
            .builder(Method::PUT, &path)
            .header(CHUNK_SHA256_HEADER, sha256_hex)
            .header(CHUNK_LAST_HEADER, if last { "true" } else { "false" })
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(bytes);
        self.fetch(builder).await
    }

    /// The chunks stored so far (sender only).
    pub async fn list_chunks(&self, id: &str) -> Result<Vec<ChunkInfo>, ClientError> {
        let path = fill(routes::TRANSFER_CHUNKS, "id", id);
        self.fetch(self.builder(Method::GET, &path)).await
    }

    pub async fn complete_transfer(
        &self,
        id: &str,
        request: CompleteTransferRequest,
    ) -> Result<Transfer, ClientError> {
        let path = fill(routes::TRANSFER_COMPLETE, "id", id);
        self.fetch(self.builder(Method::POST, &path).json(&request))
            .await
    }

    /// Transfers the credential may see, optionally only those with `status`.
    pub async fn list_transfers(&self, status: Option<&str>) -> Result<Vec<Transfer>, ClientError> {
        let mut builder = self.builder(Method::GET, routes::TRANSFERS);
        if let Some(status) = status {
            builder = builder.query(&[("status", status)]);
        }
        self.fetch(builder).await
    }

    /// Complete transfers the credential receives and has not downloaded yet, up to `limit`
    /// (1–1000), oldest of the newest first page last: an inbox's question, answered by an
    /// index over what is waiting rather than the whole history.
    pub async fn pending_transfers(&self, limit: u32) -> Result<Vec<Transfer>, ClientError> {
        self.pending_transfers_in("complete", limit).await
    }

    /// As [`Client::pending_transfers`], for transfers still uploading, which a recipient may
    /// follow (decision 0035).
    pub async fn pending_uploads(&self, limit: u32) -> Result<Vec<Transfer>, ClientError> {
        self.pending_transfers_in("uploading", limit).await
    }

    /// Waits up to `wait` (the server allows 25 s at most) for news for the credential: a
    /// transfer created for it, the first chunk of a larger one stored, one completed or
    /// granted to it (decision 0036). Returns when the server answers, news or not; news on
    /// another replica of the server is heard only when the wait runs out.
    pub async fn wait_for_transfer_news(
        &self,
        wait: std::time::Duration,
    ) -> Result<(), ClientError> {
        let wait = wait.min(std::time::Duration::from_secs(25));
        let wait_ms = wait.as_millis().to_string();
        // Its own deadline, just past the wait: a connection that went dead while waiting is
        // given up then, not at the client's general request timeout.
        let builder = self
            .builder(Method::GET, routes::TRANSFERS)
            .query(&[
                ("status", "complete"),
                ("pending", "true"),
                ("limit", "1"),
                ("wait_ms", wait_ms.as_str()),
            ])
            .timeout(wait + std::time::Duration::from_secs(5));
        self.fetch::<Vec<Transfer>>(builder).await.map(|_| ())
    }

    async fn pending_transfers_in(
        &self,
        status: &str,
        limit: u32,
    ) -> Result<Vec<Transfer>, ClientError> {
        let limit = limit.to_string();
        let builder = self.builder(Method::GET, routes::TRANSFERS).query(&[
            ("status", status),
            ("pending", "true"),
            ("limit", limit.as_str()),
        ]);
        self.fetch(builder).await
    }

    pub async fn get_transfer(&self, id: &str) -> Result<Transfer, ClientError> {
        let path = fill(routes::TRANSFER, "id", id);
        self.fetch(self.builder(Method::GET, &path)).await
    }

    /// The stream header, as the sender uploaded it.
    pub async fn transfer_header(&self, id: &str) -> Result<Vec<u8>, ClientError> {
        let path = fill(routes::TRANSFER_HEADER, "id", id);
        self.exchange(self.builder(Method::GET, &path)).await
    }

    /// One sealed chunk.
    pub async fn transfer_chunk(&self, id: &str, index: u64) -> Result<Vec<u8>, ClientError> {
        let path = with_index(routes::TRANSFER_CHUNK, id, index);
        self.exchange(self.builder(Method::GET, &path)).await
    }

    /// One sealed chunk read into `buf` (cleared first), which the caller may reuse from chunk
    /// to chunk. The body is copied once, from the network into `buf`, and a body longer than
    /// `max_len` is refused while reading, so a hostile or broken server cannot make the caller
    /// buffer more than it expects.
    pub async fn transfer_chunk_into(
        &self,
        id: &str,
        index: u64,
        max_len: usize,
        buf: &mut Vec<u8>,
    ) -> Result<(), ClientError> {
        let path = with_index(routes::TRANSFER_CHUNK, id, index);
        self.bounded_get_into(&path, &format!("chunk {index}"), max_len, buf)
            .await
            .map(|_| ())
    }

    /// As [`Client::transfer_chunk_into`], for a transfer that may still be uploading: also
    /// whether the server says the stream ends with this chunk (`None` from a server that does
    /// not say). A chunk not stored yet is the error `chunk_pending`.
    pub async fn follow_chunk_into(
        &self,
        id: &str,
        index: u64,
        max_len: usize,
        buf: &mut Vec<u8>,
    ) -> Result<Option<bool>, ClientError> {
        let path = with_index(routes::TRANSFER_CHUNK, id, index);
        self.bounded_get_into(&path, &format!("chunk {index}"), max_len, buf)
            .await
    }

    /// The whole stream of a complete transfer (header, chunk frames, manifest frame) read
    /// into `buf`, refused past `max_len` bytes: one request for a one-chunk transfer.
    pub async fn transfer_stream_into(
        &self,
        id: &str,
        max_len: usize,
        buf: &mut Vec<u8>,
    ) -> Result<(), ClientError> {
        let path = fill(routes::TRANSFER_STREAM, "id", id);
        self.bounded_get_into(&path, "the stream", max_len, buf)
            .await
            .map(|_| ())
    }

    /// Reads the body into `buf`; returns the `x-chunk-last` answer, if any.
    async fn bounded_get_into(
        &self,
        path: &str,
        what: &str,
        max_len: usize,
        buf: &mut Vec<u8>,
    ) -> Result<Option<bool>, ClientError> {
        let mut response = self.send(self.builder(Method::GET, path)).await?;
        let status = response.status();
        if !status.is_success() {
            let body = self.read_body(response).await?;
            return Err(ClientError::from_response(status.as_u16(), &body));
        }
        let last = match response
            .headers()
            .get(CHUNK_LAST_HEADER)
            .map(|v| v.as_bytes())
        {
            None => None,
            Some(b"true") => Some(true),
            Some(b"false") => Some(false),
            Some(_) => {
                return Err(ClientError::Decode(format!(
                    "{CHUNK_LAST_HEADER} is neither true nor false"
                )))
            }
        };
        buf.clear();
        if let Some(len) = response.content_length() {
            buf.reserve(usize::try_from(len).unwrap_or(usize::MAX).min(max_len));
        }
        loop {
            let piece = response.chunk().await.map_err(|e| {
                ClientError::Transport(crate::error::describe_transport(&e, self.timeout_secs))
            })?;
            let Some(piece) = piece else {
                return Ok(last);
            };
            if buf.len() + piece.len() > max_len {
                return Err(ClientError::Decode(format!(
                    "{what} is larger than the {max_len} bytes this transfer allows"
                )));
            }
            buf.extend_from_slice(&piece);
        }
    }

    /// The sealed manifest. Fetching it does not mark the transfer received; see [`Client::mark_received`].
    pub async fn transfer_manifest(&self, id: &str) -> Result<Vec<u8>, ClientError> {
        let path = fill(routes::TRANSFER_MANIFEST, "id", id);
        self.exchange(self.builder(Method::GET, &path)).await
    }

    /// Tells the server this recipient decrypted and verified the transfer; only this marks it
    /// downloaded. Through an edge hub that cannot reach the cloud the answer is `Queued`.
    pub async fn mark_received(&self, id: &str) -> Result<Accepted<Transfer>, ClientError> {
        let path = fill(routes::TRANSFER_RECEIVED, "id", id);
        self.fetch_queueable(self.builder(Method::POST, &path))
            .await
    }

    /// Asks the server to re-hash every stored chunk against its recorded SHA-256.
    pub async fn verify_transfer(&self, id: &str) -> Result<VerifyReport, ClientError> {
        let path = fill(routes::TRANSFER_VERIFY, "id", id);
        self.fetch(self.builder(Method::POST, &path)).await
    }

    /// `GET /api/v1/transfers/grants`: the caller's transfers with recipients waiting for a
    /// grant (decision 0022), oldest first.
    pub async fn pending_grants(&self) -> Result<Vec<PendingGrant>, ClientError> {
        self.fetch(self.builder(Method::GET, routes::PENDING_GRANTS))
            .await
    }

    /// `POST /api/v1/transfers/{id}/grants`: the sender's header with stanzas appended for
    /// waiting recipients.
    pub async fn grant_transfer(
        &self,
        id: &str,
        request: &GrantRequest,
    ) -> Result<Transfer, ClientError> {
        let path = fill(routes::TRANSFER_GRANTS, "id", id);
        self.fetch(self.builder(Method::POST, &path).json(request))
            .await
    }

    /// Through an edge hub that cannot reach the cloud the answer is `Queued`.
    pub async fn cancel_transfer(&self, id: &str) -> Result<Accepted<Transfer>, ClientError> {
        let path = fill(routes::TRANSFER_CANCEL, "id", id);
        self.fetch_queueable(self.builder(Method::POST, &path))
            .await
    }
}

/// A host's agent as a transfer party (decision 0029). Every transfer method of [`Client`]
/// also works with a host key as the bearer credential: [`AgentClient::transfers`] is that
/// client, and a host sees only the transfers it sent or receives.
impl AgentClient {
    /// `PUT /api/v1/hosts/{host_id}/transfer-key`: registers (or replaces) this host's X25519
    /// public key (`mftx25519_…`). Registering the same key again changes nothing, so an agent
    /// may do it at every start.
    pub async fn register_host_transfer_key(
        &self,
        host_id: &str,
        public_key: &str,
    ) -> Result<(), ClientError> {
        let c = &self.keyed;
        let path = fill(routes::HOST_TRANSFER_KEY, "host_id", host_id);
        let body = PublicKeyBody {
            public_key: public_key.to_string(),
        };
        let _: HostTransferKey = c.fetch(c.builder(Method::PUT, &path).json(&body)).await?;
        Ok(())
    }

    /// The transfer methods with this box's key as the credential (same connection pool).
    pub fn transfers(&self) -> &Client {
        &self.keyed
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn chunk_paths() {
        assert_eq!(
            super::with_index(mftplus_types::routes::TRANSFER_CHUNK, "abc", 7),
            "/api/v1/transfers/abc/chunks/7"
        );
    }
}
