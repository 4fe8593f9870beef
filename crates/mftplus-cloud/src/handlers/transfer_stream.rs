//! `GET /transfers/{id}/stream`: a complete transfer as one stream in the format's own layout
//! (docs/stream-format.md: the header, a frame per stored chunk, the manifest frame), so any
//! stream reader opens it as is. A recipient of a one-chunk transfer fetches it in one request
//! instead of three (header, chunk, manifest); anyone may `curl` a whole transfer's ciphertext.
//! Chunks are streamed from the payload store one after another, never held whole.

use super::transfers::{chunk_missing, require_complete, transfer_key};
use crate::app::{grants, transfers as app};
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiPath;
use crate::principal::Party;
use crate::state::AppState;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use mftplus_blob::{BlobError, BlobKey};
use mftplus_crypto::stream::{
    frame_head, FRAME_CHUNK, FRAME_HEAD_LEN, FRAME_LAST_CHUNK, FRAME_MANIFEST,
};
use mftplus_types::ErrorCode;

type Piece = Result<Bytes, BlobError>;

pub async fn stream(
    State(state): State<AppState>,
    party: Party,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let row = app::visible_to(&state, &party, &id).await?;
    require_complete(&row)?;
    grants::refuse_if_waiting(&row, &party.store_party())?;
    if row.site.is_some() {
        return Err(ApiError::new(
            ErrorCode::SiteLocal,
            "this transfer's ciphertext is on its site's hub: fetch its chunks through the hub",
        ));
    }
    let chunks = state.store.list_chunks(&row.id).await?;
    let manifest = row.manifest.clone().unwrap_or_default();
    let frame = |kind: u8, len: i64| Bytes::copy_from_slice(&frame_head(kind, len as u32));
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
        let opened = state
            .blobs
            .get_stream(&BlobKey::chunk(&key, chunk.idx as u64))
            .await
            .map_err(ApiError::internal)?;
        match opened {
            Some(reader) => first = Some(reader.stream),
            None => return Err(chunk_missing(&state, &row.id, chunk.idx as u64).await),
        }
    }
    let blobs = state.blobs.clone();
    let frames = stream::iter(chunks.into_iter().enumerate()).then(move |(at, chunk)| {
        let blobs = blobs.clone();
        let key = key.clone();
        let opened = if at == 0 { first.take() } else { None };
        async move {
            let kind = if chunk.last {
                FRAME_LAST_CHUNK
            } else {
                FRAME_CHUNK
            };
            let head = stream::once(async move { Ok::<_, BlobError>(frame(kind, chunk.size)) });
            let body = match opened {
                Some(body) => body,
                None => match blobs
                    .get_stream(&BlobKey::chunk(&key, chunk.idx as u64))
                    .await
                {
                    Ok(Some(reader)) => reader.stream,
                    Ok(None) => stream::once(async move {
                        Err::<Bytes, _>(BlobError::Source(format!(
                            "chunk {} is missing",
                            chunk.idx
                        )))
                    })
                    .boxed(),
                    Err(err) => stream::once(async move { Err::<Bytes, _>(err) }).boxed(),
                },
            };
            head.chain(body)
        }
    });
    let tail = {
        let mut framed = frame(FRAME_MANIFEST, manifest.len() as i64).to_vec();
        framed.extend_from_slice(&manifest);
        Bytes::from(framed)
    };
    let body = stream::once(async move { Ok::<_, BlobError>(Bytes::from(row.header)) })
        .chain(frames.flatten())
        .chain(stream::once(async move { Ok::<Bytes, BlobError>(tail) }))
        .map(|piece: Piece| piece);
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
