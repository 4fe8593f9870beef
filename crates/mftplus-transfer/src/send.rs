//! Sending a reader in one go: the header for the recipients' public keys, the transfer made on
//! the server, every chunk uploaded (pipeline in `upload.rs`), the sealed manifest completing
//! it. `mftctl send` adds resume state, passphrases, links and grants around the same steps;
//! the agent's outbox calls [`create`], records the transfer id, then [`upload_and_complete`],
//! or for a small file chooses an id, records it and calls [`send_whole`] (decision 0037).

use std::collections::HashMap;
use std::io::Read;

use base64::Engine;
use mftplus_client::Client;
use mftplus_crypto::stream::{
    Encryptor, ManifestInfo, Recipient, StreamOptions, Trailer, X25519PublicKey,
};
use mftplus_types::transfers::{
    CompleteTransferRequest, CreateTransferRequest, Transfer, WholeStream, MAX_WHOLE_CHUNK,
};

use crate::upload::{self, Upload};
use crate::{OnProgress, TransferError};

/// What to send, to whom.
pub struct Outgoing {
    /// Who the server records as recipients (emails, `host:<id>`).
    pub recipients: Vec<String>,
    /// Every key the file key is wrapped to: the recipients' and the sender's own (so it can
    /// read its transfer back).
    pub keys: Vec<X25519PublicKey>,
    pub options: StreamOptions,
    /// `7d`, `12h`…; the server's retention when `None`.
    pub expires: Option<String>,
    /// The file name and mode recipients get (inside the encrypted manifest).
    pub info: ManifestInfo,
}

fn encryptor(outgoing: &Outgoing) -> Result<Encryptor, TransferError> {
    let stanzas: Vec<Recipient<'_>> = outgoing
        .keys
        .iter()
        .map(|k| Recipient::X25519(*k))
        .collect();
    Encryptor::new(&outgoing.options, &stanzas)
        .map_err(|e| TransferError::new("crypto", e.to_string()))
}

fn creation(outgoing: &Outgoing, encryptor: &Encryptor) -> CreateTransferRequest {
    CreateTransferRequest {
        recipients: outgoing.recipients.clone(),
        header: base64::engine::general_purpose::STANDARD.encode(encryptor.header_bytes()),
        chunk_size: u64::from(outgoing.options.chunk_size),
        expires: outgoing.expires.clone(),
        awaiting_grant: Vec::new(),
        id: None,
        whole: None,
    }
}

/// Makes the transfer on the server; the encryptor that goes with its header.
pub async fn create(
    client: &Client,
    outgoing: &Outgoing,
) -> Result<(Transfer, Encryptor), TransferError> {
    let encryptor = encryptor(outgoing)?;
    let transfer = client
        .create_transfer(creation(outgoing, &encryptor))
        .await?;
    Ok((transfer, encryptor))
}

/// A fresh transfer id for [`send_whole`], of the form the server makes its own: a
/// time-ordered UUID (version 7) without its dashes.
pub fn new_transfer_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// The largest plaintext [`send_whole`] is sure to take: its sealed chunk (the plaintext, or
/// less once compressed, plus the tag) stays within what one request may carry.
pub const MAX_WHOLE_PLAINTEXT: usize = MAX_WHOLE_CHUNK - 16;

/// Sends `plaintext` (at most [`MAX_WHOLE_PLAINTEXT`] bytes, else `too_large`) as a transfer
/// made complete by one request under `id` (32 lowercase hex digits the caller chose and
/// recorded, so that after a crash it can ask whether the transfer exists).
pub async fn send_whole(
    client: &Client,
    outgoing: &Outgoing,
    id: &str,
    plaintext: &[u8],
) -> Result<Transfer, TransferError> {
    let too_large = || {
        TransferError::new(
            "too_large",
            format!("a transfer sent whole holds at most {MAX_WHOLE_PLAINTEXT} bytes"),
        )
    };
    if plaintext.len() > MAX_WHOLE_PLAINTEXT {
        return Err(too_large());
    }
    let crypto =
        |e: mftplus_crypto::stream::StreamError| TransferError::new("crypto", e.to_string());
    let mut encryptor = encryptor(outgoing)?;
    let mut request = creation(outgoing, &encryptor);
    if !encryptor.push(plaintext).map_err(crypto)?.is_empty() {
        return Err(too_large()); // a chunk size below the plaintext's length
    }
    let trailer = encryptor.finish(outgoing.info.clone()).map_err(crypto)?;
    if trailer.last_chunk.bytes.len() > MAX_WHOLE_CHUNK {
        return Err(too_large());
    }
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    request.id = Some(id.to_string());
    request.whole = Some(WholeStream {
        chunk: b64(&trailer.last_chunk.bytes),
        chunk_sha256: trailer.last_chunk.sha256_hex(),
        manifest: b64(&trailer.sealed_manifest),
    });
    Ok(client.create_transfer(request).await?)
}

/// Uploads everything `reader` yields into the transfer `create` made, and completes it.
pub async fn upload_and_complete(
    client: &Client,
    transfer_id: &str,
    encryptor: Encryptor,
    reader: Box<dyn Read + Send>,
    info: ManifestInfo,
    progress: OnProgress<'_>,
) -> Result<Transfer, TransferError> {
    let plan = Upload {
        client: client.clone(),
        transfer_id: transfer_id.to_string(),
        recorded: HashMap::new(),
        interrupt_after: None,
    };
    let trailer = upload::run(plan, encryptor, reader, info, progress).await?;
    complete(client, transfer_id, &trailer).await
}

/// Sends the sealed manifest; the server then checks the chunks form a whole stream.
pub async fn complete(
    client: &Client,
    transfer_id: &str,
    trailer: &Trailer,
) -> Result<Transfer, TransferError> {
    let request = CompleteTransferRequest {
        manifest: base64::engine::general_purpose::STANDARD.encode(&trailer.sealed_manifest),
    };
    Ok(client.complete_transfer(transfer_id, request).await?)
}
