//! TLS for every MFTPlus listener: TLS 1.3 only, the cipher suites and key-exchange groups the
//! security guide names, certificates and client-CA files reloaded without a restart, and
//! mutual TLS for boxes.
//!
//! What is here: [`TlsSettings`] (the `tls.*` keys, validated with the offending key named),
//! [`TlsServer`] (the current `rustls::ServerConfig`, rebuilt from the files when they change or
//! on SIGHUP), [`TlsListener`] (an `axum::serve` listener that handshakes each connection in
//! its own task, with a deadline, so a slow or silent client holds up nobody), and
//! [`TrustStore`] (PEM CA bundles as one root store type).
//!
//! [`client_config`] is the TLS client side of the connections servers open themselves (the
//! hub to the cloud).
//!
//! [`ca::Authority`] is the built-in certificate authority (root, issuing intermediate, leaves
//! from CSRs, CRLs); [`identity`] reads what a certificate says about the box holding it.
//! No HTTP routing, no database.

pub mod ca;
mod client;
#[cfg(feature = "server")]
mod gate;
pub mod identity;
#[cfg(feature = "server")]
mod listener;
#[cfg(feature = "server")]
pub mod serve;
#[cfg(feature = "server")]
mod server;
mod settings;
#[cfg(feature = "testing")]
pub mod testing;
mod trust;

pub use client::{client_config, client_config_with_identity, ClientIdentity};
#[cfg(feature = "server")]
pub use listener::{TlsListener, HANDSHAKE_TIMEOUT};
#[cfg(feature = "server")]
pub use server::{TlsServer, WATCH_EVERY};
pub use settings::{ClientAuthMode, TlsError, TlsKeys, TlsSettings, CIPHER_SUITES, CURVES};
pub use trust::TrustStore;
