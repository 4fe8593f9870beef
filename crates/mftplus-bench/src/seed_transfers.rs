//! Transfers for the dashboard's benchmark (`bench/dashboard.sh`), written through the `Store`
//! the way the API writes them: a real stream header, chunk rows, completion with a manifest.
//! Nine in ten are complete; the rest are still uploading with some chunks, so the page's
//! progress column has work to do.

use crate::BenchError;
use mftplus_store::{NewChunk, NewRecipient, NewTransfer, NewUser, Store};
use std::time::Instant;

/// People sending to each other; few enough that every one has thousands of transfers.
const PEOPLE: usize = 20;
const DAY_MS: i64 = 86_400_000;

fn uid() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

async fn people(store: &dyn Store, now_ms: i64) -> Result<Vec<NewRecipient>, BenchError> {
    let mut made = Vec::with_capacity(PEOPLE);
    for n in 0..PEOPLE {
        let user = store
            .create_user(&NewUser {
                id: uid(),
                email: format!("person-{n}-{}@example.com", &uid()[..6]),
                name: format!("Person {n}"),
                role: "user".into(),
                user_type: "user".into(),
                password_hash: None,
                created_at_ms: now_ms,
            })
            .await?;
        made.push(NewRecipient {
            kind: "user".into(),
            id: user.id,
            display: user.email,
            awaiting_grant: false,
        });
    }
    Ok(made)
}

/// A stream header as `mftctl send` makes one (to a throw-away key): the page may read it.
fn header() -> Result<(Vec<u8>, i64), BenchError> {
    use mftplus_crypto::stream::{
        Encryptor, Recipient, StreamOptions, X25519SecretKey, MIN_CHUNK_SIZE,
    };
    let invalid = |err: mftplus_crypto::stream::StreamError| BenchError::Invalid(err.to_string());
    let key = X25519SecretKey::generate().map_err(invalid)?;
    let options = StreamOptions {
        chunk_size: MIN_CHUNK_SIZE,
        ..StreamOptions::default()
    };
    let encryptor =
        Encryptor::new(&options, &[Recipient::X25519(key.public_key())]).map_err(invalid)?;
    Ok((encryptor.header_bytes().to_vec(), MIN_CHUNK_SIZE as i64))
}

/// `mftplus-bench seed-transfers`: `count` transfers among [`PEOPLE`] people over the last
/// week; answers the seconds taken.
pub async fn run(database_url: &str, count: usize) -> Result<f64, BenchError> {
    let store = mftplus_cloud::db::open(database_url).await?;
    let now_ms = chrono::Utc::now().timestamp_millis();
    let people = people(&*store, now_ms).await?;
    let (header, chunk_size) = header()?;
    let started = Instant::now();
    for n in 0..count {
        let sender = &people[n % PEOPLE];
        let recipient = people[(n * 7 + 1) % PEOPLE].clone();
        let created_at_ms = now_ms - (n as i64 * 7 * DAY_MS / count.max(1) as i64);
        let row = store
            .create_transfer(&NewTransfer {
                id: uid(),
                sender_kind: mftplus_store::recipient_kind::USER.into(),
                sender_id: sender.id.clone(),
                header: header.clone(),
                chunk_size,
                created_at_ms,
                expires_at_ms: created_at_ms + 14 * DAY_MS,
                site: None,
                recipients: vec![recipient],
            })
            .await?;
        let complete = n % 10 != 0;
        let chunks = 1 + n % 3;
        let batch: Vec<NewChunk> = (0..chunks)
            .map(|idx| NewChunk {
                idx: idx as i64,
                size: chunk_size + 17,
                sha256: mftplus_crypto::sha256_hex(format!("{}-{idx}", row.id).as_bytes()),
                last: complete && idx + 1 == chunks,
                stored_at_ms: created_at_ms,
                data: None,
            })
            .collect();
        store.record_chunks(&row.id, &batch).await?;
        if complete {
            store
                .complete_transfer(&row.id, b"bench manifest", created_at_ms + 1_000)
                .await?;
        }
    }
    Ok(started.elapsed().as_secs_f64())
}
