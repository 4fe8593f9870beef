//! Sending a reader in one go: the header for the recipients' public keys, the transfer made on
//! the server, every chunk uploaded (pipeline in `upload.rs`), the sealed manifest completing
//! it. `mftctl send` adds resume state, passphrases, links and grants around the same steps;
//! the agent's outbox calls [`create`], records the transfer id, then [`upload_and_complete`].

use std::collections::HashMap;
use std::io::Read;

use base64::Engine;
use mftplus_client::Client;
use mftplus_crypto::stream::{
    Encryptor, ManifestInfo, Recipient, StreamOptions, Trailer, X25519PublicKey,
};
use mftplus_types::transfers::{CompleteTransferRequest, CreateTransferRequest, Transfer};

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

/// Makes the transfer on the server; the encryptor that goes with its header.
pub async fn create(
    client: &Client,
    outgoing: &Outgoing,
) -> Result<(Transfer, Encryptor), TransferError> {
    let stanzas: Vec<Recipient<'_>> = outgoing
        .keys
        .iter()
        .map(|k| Recipient::X25519(*k))
        .collect();
    let encryptor = Encryptor::new(&outgoing.options, &stanzas)
        .map_err(|e| TransferError::new("crypto", e.to_string()))?;
    let request = CreateTransferRequest {
        recipients: outgoing.recipients.clone(),
        header: base64::engine::general_purpose::STANDARD.encode(encryptor.header_bytes()),
        chunk_size: u64::from(outgoing.options.chunk_size),
        expires: outgoing.expires.clone(),
        awaiting_grant: Vec::new(),
    };
    let transfer = client.create_transfer(request).await?;
    Ok((transfer, encryptor))
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
