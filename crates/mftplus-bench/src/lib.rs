//! `mftplus-bench`: a benchmark tool for the fleet control plane, driven by
//! `bench/fleet_load.sh`. It is not part of the product and is never shipped.
//!
//! Three jobs: `seed` writes a fleet (one customer, N hosts with their guests and hashed keys)
//! straight through the `Store`, the way enrollment writes it; `load` is a closed-loop HTTP load
//! generator posting realistic ~4 KiB host reports to a running `mftplus cloud` and measuring
//! throughput and latency; `liveness` times the checker's liveness pass over a large fleet.
//! For the edge hub (`bench/hub_proxy.sh`), `ws-echo` and `ws-hold` hold many upgraded
//! connections through a proxy; for its offline queue (`bench/hub_queue.sh`), `load` posts to
//! a hub whose cloud is down and `hub-enqueue` drives the queue's writer without HTTP.
//! For the serve loop's limits (`bench/slowloris.sh`), `slowloris` holds thousands of
//! connections that trickle a request head while it measures legitimate requests beside them.
//!
//! It is not a general-purpose load tool (it speaks only `POST /api/v1/host-report`, raw bytes
//! after an upgrade, and the hand-written `GET`s and unfinished heads of `slowloris`), and it
//! contains no SQL: everything goes through `mftplus_cloud::db::open` and the `Store` trait (and
//! the hub's own `queue::Enqueuer`).

pub mod agent_fixture;
pub mod histogram;
pub mod hub_enqueue;
pub mod liveness;
pub mod load;
pub mod pages;
pub mod report;
pub mod seed;
pub mod seed_transfers;
pub mod slowloris;
pub mod ws;

use mftplus_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("http client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Invalid(String),
}
