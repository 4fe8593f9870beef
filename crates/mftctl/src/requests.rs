//! `mftctl requests create|list|revoke` (decision 0034): ask someone without an account for a
//! file. The printed link opens a page where their browser encrypts the file to your
//! registered key and uploads it; `mftctl receive` then gets it like any transfer sent to you.

use mftplus_types::requests::{CreateFileRequest, FileRequest};
use serde_json::json;

use crate::apikeys::check_duration;
use crate::cli::RequestsCommand;
use crate::context::Context;
use crate::error::CliError;
use crate::output::{emit, emit_json, note, or_dash, Table};

pub async fn run(ctx: &mut Context, command: &RequestsCommand) -> Result<u8, CliError> {
    match command {
        RequestsCommand::Create {
            note,
            expires,
            uploads,
            max_size,
        } => {
            check_duration("--expires", expires.as_deref())?;
            let max_bytes = max_size
                .as_deref()
                .map(|text| {
                    crate::send::parse_size(text).map_err(|_| {
                        CliError::usage(format!(
                            "--max-size {text:?}: expected a size such as 500MiB or 2GiB"
                        ))
                    })
                })
                .transpose()?;
            let request = CreateFileRequest {
                note: note.clone(),
                expires: expires.clone(),
                max_uploads: *uploads,
                max_bytes,
            };
            create(ctx, &request).await
        }
        RequestsCommand::List => list(ctx).await,
        RequestsCommand::Revoke { id } => revoke(ctx, id).await,
    }
}

async fn create(ctx: &mut Context, request: &CreateFileRequest) -> Result<u8, CliError> {
    let created = ctx
        .call(|c| async move { c.create_file_request(request).await })
        .await?;
    let base = ctx.client().base_url().trim_end_matches('/').to_string();
    let url = format!("{base}{}", created.path);
    if ctx.json() {
        emit_json(&json!({"url": url, "request": created.request}))?;
        return Ok(0);
    }
    emit(&url)?;
    let r = &created.request;
    note(&format!(
        "file request {}: up to {} upload(s) of at most {} bytes until {}; whoever has the link \
         can upload, encrypted to your key. Receive with `mftctl receive`; revoke with \
         `mftctl requests revoke {}`",
        r.id, r.max_uploads, r.max_bytes, r.expires_at, r.id
    ));
    Ok(0)
}

async fn list(ctx: &mut Context) -> Result<u8, CliError> {
    let requests: Vec<FileRequest> = ctx
        .call(|c| async move { c.list_file_requests().await })
        .await?;
    if ctx.json() {
        emit_json(&requests)?;
        return Ok(0);
    }
    if requests.is_empty() {
        note("no file requests (make one with `mftctl requests create`)");
        return Ok(0);
    }
    let mut table = Table::new(&[
        "ID",
        "STATUS",
        "OWNER",
        "UPLOADS",
        "MAX",
        "LAST UPLOAD",
        "EXPIRES",
        "NOTE",
    ]);
    for r in &requests {
        table.row(vec![
            r.id.clone(),
            r.status.clone(),
            r.owner.clone(),
            r.uploads.to_string(),
            r.max_uploads.to_string(),
            or_dash(r.last_upload_at.as_deref()),
            r.expires_at.clone(),
            r.note
                .lines()
                .next()
                .unwrap_or("")
                .chars()
                .take(40)
                .collect(),
        ]);
    }
    emit(&table.render())?;
    Ok(0)
}

async fn revoke(ctx: &mut Context, id: &str) -> Result<u8, CliError> {
    let request = ctx
        .call(|c| async move { c.revoke_file_request(id).await })
        .await?;
    if ctx.json() {
        emit_json(&request)?;
    } else {
        emit(&request.id)?;
        note("revoked: the link takes no more uploads, and uploads under way stop at their next chunk");
    }
    Ok(0)
}
