use mftplus_signing::OpError;
use thiserror::Error;

/// Why a fleet rule refused its input.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FleetError {
    /// Only destructive changes become signed ops; benign ones are published directly.
    #[error("change `{op}` at `{path}` is benign; only destructive changes become ops")]
    NotDestructive {
        /// The change's op name.
        op: String,
        /// The change's path.
        path: String,
    },
    /// Floats have no single canonical text form, so signed params carry integers only.
    #[error("op params contain a non-integer number; use integers or strings")]
    FloatInParams,
    /// The op failed `mftplus_signing::Op::validate` (bad nonce, ids, inverted window…).
    #[error("op is invalid: {0}")]
    InvalidOp(#[from] OpError),
    /// An executed op whose name this crate does not know how to fold.
    #[error("unknown op `{0}`")]
    UnknownOp(String),
    /// A parameter the op needs is missing or has the wrong type.
    #[error("op `{op}` has a missing or mistyped param `{param}`")]
    BadParam {
        /// The op name.
        op: String,
        /// The parameter.
        param: &'static str,
    },
    /// The op's `target.guest_id` disagrees with the guest its params or path name.
    #[error("op `{op}` targets guest {target:?} but acts on {acts_on:?}")]
    TargetMismatch {
        /// The op name.
        op: String,
        /// The op's `target.guest_id`.
        target: Option<String>,
        /// The guest its params or path act on.
        acts_on: Option<String>,
    },
    /// A `state.change` path that is not one the diff can produce.
    #[error("`{0}` is not a path a state change may set")]
    BadPath(String),
    /// The path names a guest or storage policy absent from the desired state.
    #[error("`{0}` names a guest or storage policy that does not exist")]
    PathNotFound(String),
    /// The value does not fit the field the path names (e.g. a number for `wipe`).
    #[error("value for `{0}` has the wrong type")]
    BadValue(String),
}
