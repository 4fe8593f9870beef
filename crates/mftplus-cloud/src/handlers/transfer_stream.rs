//! `GET /transfers/{id}/stream`: a complete transfer as one stream in the format's own layout
//! (docs/stream-format.md: the header, a frame per stored chunk, the manifest frame), so any
//! stream reader opens it as is. A recipient of a one-chunk transfer fetches it in one request
//! instead of three (header, chunk, manifest); anyone may `curl` a whole transfer's ciphertext.
//! Chunks are streamed from the payload store one after another, never held whole.

use super::transfers::{chunk_missing, readable, transfer_key};
use crate::app::transfers::open_chunk;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiPath;
use crate::principal::Party;
use crate::state::AppState;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use mftplus_blob::BlobError;
use mftplus_crypto::stream::{
    frame_head, FRAME_CHUNK, FRAME_HEAD_LEN, FRAME_LAST_CHUNK, FRAME_MANIFEST,
};
use mftplus_types::ErrorCode;

type Piece = Result<Bytes, BlobError>;

fn frame(kind: u8, len: usize) -> Bytes {
    Bytes::copy_from_slice(&frame_head(kind, len as u32))
}

pub async fn stream(
    State(state): State<AppState>,
    party: Party,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let row = readable(&state, &party, &id).await?;
    if row.site.is_some() {
        return Err(ApiError::new(
            ErrorCode::SiteLocal,
            "this transfer's ciphertext is on its site's hub: fetch its chunks through the hub",
        ));
    }
    let manifest = row.manifest.clone().unwrap_or_default();
    // A one-chunk transfer kept in its row (decision 0037) is answered from that one read.
    if row.chunk_count == Some(1) {
        if let Some(chunk) = state.store.chunk_data(&row.id, 0).await? {
            let mut whole = row.header;
            whole.extend_from_slice(&frame(FRAME_LAST_CHUNK, chunk.len()));
            whole.extend_from_slice(&chunk);
            whole.extend_from_slice(&frame(FRAME_MANIFEST, manifest.len()));
            whole.extend_from_slice(&manifest);
            return Ok((
                [(http::header::CONTENT_TYPE, "application/octet-stream")],
                whole,
            )
                .into_response());
        }
    }
    let chunks = state.store.list_chunks(&row.id).await?;
    let length = row.header.len() as u64
        + chunks
            .iter()
            .map(|c| (FRAME_HEAD_LEN as u64) + c.size as u64)
            .sum::<u64>()
        + (FRAME_HEAD_LEN + manifest.len()) as u64;
    let key = transfer_key(&row.id)?;
    // The first chunk is opened before the answer starts, so a missing one is a coded error
    // rather than a cut-off body (later ones can only cut the body: its head is sent).
    let mut first = None;
    if let Some(chunk) = chunks.first() {
        let opened = open_chunk(&state, &key, chunk.idx as u64, Some(chunk.inline))
            .await
            .map_err(ApiError::internal)?;
        match opened {
            Some(reader) => first = Some(reader.stream),
            None => return Err(chunk_missing(&state, &row.id, chunk.idx as u64).await),
        }
    }
    let mut tail = frame(FRAME_MANIFEST, manifest.len()).to_vec();
    tail.extend_from_slice(&manifest);
    let body = stream::once(async move { Ok::<_, BlobError>(Bytes::from(row.header)) })
        .chain(chunk_frames(state.clone(), key, chunks, first))
        .chain(stream::once(async move { Ok(Bytes::from(tail)) }));
    let mut response = (
        [(http::header::CONTENT_TYPE, "application/octet-stream")],
        axum::body::Body::from_stream(body),
    )
        .into_response();
    response
        .headers_mut()
        .insert(http::header::CONTENT_LENGTH, length.into());
    Ok(response)
}

/// Each stored chunk as a frame: its head, then its bytes streamed from the payload store,
/// opened one after another (the first already opened by the caller). A chunk gone since the
/// listing ends the body with an error, which cuts the connection: the reader sees a
/// truncated stream, never a short one that passes.
fn chunk_frames(
    state: AppState,
    key: mftplus_blob::TransferId,
    chunks: Vec<mftplus_store::ChunkRow>,
    mut first: Option<mftplus_blob::ByteStream>,
) -> impl futures_util::Stream<Item = Piece> {
    stream::iter(chunks)
        .then(move |chunk| {
            let (state, key, opened) = (state.clone(), key.clone(), first.take());
            async move {
                let kind = if chunk.last {
                    FRAME_LAST_CHUNK
                } else {
                    FRAME_CHUNK
                };
                let head = stream::once(async move { Ok(frame(kind, chunk.size as usize)) });
                let body = match opened {
                    Some(body) => body,
                    None => open_or_fail(&state, &key, &chunk).await,
                };
                head.chain(body)
            }
        })
        .flatten()
}

async fn open_or_fail(
    state: &AppState,
    key: &mftplus_blob::TransferId,
    chunk: &mftplus_store::ChunkRow,
) -> mftplus_blob::ByteStream {
    let index = chunk.idx as u64;
    let failed = |err: BlobError| stream::once(async move { Err::<Bytes, _>(err) }).boxed();
    match open_chunk(state, key, index, Some(chunk.inline)).await {
        Ok(Some(reader)) => reader.stream,
        Ok(None) => failed(BlobError::Source(format!("chunk {index} is missing"))),
        Err(err) => failed(err),
    }
}
