//! Cryptographic building blocks of MFTPlus: secret generation, hashing of credentials,
//! password hashing, constant-time comparison, canonical JSON and the audit hash chain.
//!
//! No HTTP and no database here; everything is a pure function over bytes, so it is easy to
//! test, fuzz and benchmark. Later: the transfer stream format, key wrapping and SSHSIG.

pub mod audit;
pub mod canonical;
pub mod password;
pub mod secrets;

pub use canonical::canonical_json;
pub use secrets::{
    api_key_digest, constant_time_eq, generate_api_key, hash_api_key, random_token, sha256_hex,
};
