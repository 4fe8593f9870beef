//! The MFTPlus control plane ("the cloud") as a library: configuration, the HTTP API with its
//! route table and authorization guard, authentication (JWT and API keys), RBAC, the audit log,
//! rate limits, metrics and background jobs.
//!
//! The `mftplus` binary only parses arguments and calls [`server::Cloud`]; tests start the same
//! server on port 0. This crate never talks to an agent or hub on its own initiative: every
//! connection starts from the box. It reaches storage only through `mftplus_store::Store`.

pub mod app;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod blobs;
pub mod ca;
pub mod chunk_commit;
pub mod clock;
pub mod config;
pub mod db;
pub mod dev;
pub mod error;
pub mod extract;
pub mod fleet;
pub mod handlers;
pub mod hubs;
pub mod jobs;
pub mod jwt_rotation;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod principal;
pub mod ratelimit;
pub mod rbac;
pub mod routes;
pub mod seed_paths;
pub mod server;
pub mod state;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod tls;
pub mod transfer_news;
pub mod web;

pub use server::Cloud;
