//! Server configuration: built-in defaults, then `/etc/mftplus/server.yaml` (path overridable),
//! then environment variables. Key names follow seed 001 (`auth.jwt.*`, `api_keys.*`,
//! `encryption.*`, `rbac.*`, `tls.*`, `certificates.*`).
//!
//! Environment: the seed's own names (`JWT_SECRET`, `MFTPLUS_ENCRYPTION_KEY`,
//! `MFTPLUS_PBKDF2_ITERATIONS`, `MFTPLUS_PBKDF2_SALT_LENGTH`, `DATABASE_URL`, `MFTPLUS_MODE`), and
//! for every key a name derived from its path: `auth.jwt.expiration` ↔
//! `MFTPLUS__AUTH__JWT__EXPIRATION`. Every secret can also come from `NAME_FILE`. The file may
//! write `${VAR}` / `${VAR:-default}` in its values, as seed 001 does (`expand.rs`).
//!
//! Loading is strict and reports everything at once ([`ConfigError::Many`], `problems.rs`):
//! unknown keys, wrong types, unset variables, and every broken rule (`validate.rs`: unknown
//! permissions, undefined roles, algorithms the product does not implement, no database URL…).

mod expand;
mod fleet;
mod limits;
mod load;
mod model;
mod problems;
mod validate;
mod web;

pub use fleet::*;
pub use limits::LimitsSection;
pub(crate) use load::private_error;
pub use load::{
    check_private_file, load, load_from, ConfigError, LoadedConfig, Source, DEFAULT_CONFIG_PATH,
};
pub use model::*;
pub use problems::ConfigProblem;
pub use web::WebSection;
