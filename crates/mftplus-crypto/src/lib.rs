//! Cryptographic building blocks of MFTPlus: secret generation, hashing of credentials,
//! password hashing, constant-time comparison, canonical JSON, the audit hash chain, and the
//! encrypted transfer stream format with its key wrapping ([`stream`]).
//!
//! No HTTP and no database here; everything is a pure function over bytes (or `std::io`), so it
//! is easy to test, fuzz and benchmark. Later: SSHSIG.

pub mod audit;
pub mod canonical;
pub mod escrow;
pub mod password;
pub mod secrets;
pub mod stream;

pub use canonical::canonical_json;
pub use secrets::{
    api_key_digest, constant_time_eq, generate_api_key, hash_api_key, random_token, sha256_hex,
};
