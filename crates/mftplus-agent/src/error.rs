use crate::config::ConfigError;
use crate::driver::DriverError;
use crate::state::StateError;
use mftplus_client::ClientError;
use thiserror::Error;

/// Why the agent cannot start or had to stop. Network errors are not here: the loop rides
/// them out with backoff and never exits on one.
#[derive(Debug, Error)]
pub enum AgentError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Driver(#[from] DriverError),
    #[error(
        "this box is not enrolled (state in {state_dir}); run `mftplus agent enroll --server URL --customer ID` first"
    )]
    NotEnrolled { state_dir: String },
    #[error(
        "this box is enrolled already as host {host_id}; to take over a lost host's identity use `--restore HOST_ID`, or move {state_dir} away to enroll anew"
    )]
    AlreadyEnrolled { host_id: String, state_dir: String },
    #[error(
        "the server has refused this host's key for {seconds}s (HTTP 401): the host was re-enrolled elsewhere or deleted; re-enroll with `mftplus agent enroll --restore {host_id}` after the operator arms recovery mode"
    )]
    KeyRefused { host_id: String, seconds: u64 },
    #[error("enrollment failed: {0}")]
    Enroll(ClientError),
    #[error("the operator keys the server sent cannot be parsed: {0}")]
    OperatorKeys(String),
    #[error("{0}")]
    Input(String),
    /// A step with its own stable code: backups (`backup/`), the file inbox and outbox
    /// (`files/`).
    #[error("{why}")]
    Coded { code: &'static str, why: String },
}

impl AgentError {
    /// A failed step with its own stable code ([`AgentError::Coded`]).
    pub fn coded(code: &'static str, why: impl Into<String>) -> AgentError {
        AgentError::Coded {
            code,
            why: why.into(),
        }
    }

    /// A stable machine-readable code.
    pub fn code(&self) -> &str {
        match self {
            AgentError::Config(_) => "config",
            AgentError::State(e) => e.code(),
            AgentError::Driver(e) => e.code(),
            AgentError::NotEnrolled { .. } => "not_enrolled",
            AgentError::AlreadyEnrolled { .. } => "already_enrolled",
            AgentError::KeyRefused { .. } => "key_refused",
            AgentError::Enroll(e) => e.code(),
            AgentError::OperatorKeys(_) => "operator_keys",
            AgentError::Input(_) => "input",
            AgentError::Coded { code, .. } => code,
        }
    }
}
