//! What can go wrong driving the browser, each with what the test was doing.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum BrowserError {
    /// chromedriver answered with a W3C error (`no such element`, `javascript error`,
    /// `element not interactable`, `stale element reference`…).
    #[error("{command}: WebDriver error `{code}` (HTTP {status}): {message}")]
    WebDriver {
        command: String,
        status: u16,
        code: String,
        message: String,
    },
    /// chromedriver did not answer (it died, or the request timed out).
    #[error("{command}: no answer from chromedriver: {source}")]
    Transport {
        command: String,
        #[source]
        source: reqwest::Error,
    },
    /// chromedriver answered something that is not a W3C reply.
    #[error("{command}: unexpected reply: {detail}")]
    Protocol { command: String, detail: String },
    /// A `wait_for…` ran out of time; `last` is what the page showed on the last try.
    #[error("timed out after {waited:?} waiting for {what}; last seen: {last}")]
    Timeout {
        what: String,
        waited: Duration,
        last: String,
    },
    /// chromedriver or Chromium did not start.
    #[error("browser did not start: {0}")]
    Start(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl BrowserError {
    /// The W3C error code (`no such element`…) of a WebDriver error.
    pub fn code(&self) -> Option<&str> {
        match self {
            BrowserError::WebDriver { code, .. } => Some(code),
            _ => None,
        }
    }

    pub fn is_timeout(&self) -> bool {
        matches!(self, BrowserError::Timeout { .. })
    }
}

/// A browser step's result, or a panic saying which step failed and how.
pub trait OrFail<T> {
    fn or_fail(self, doing: &str) -> T;
}

impl<T> OrFail<T> for Result<T, BrowserError> {
    fn or_fail(self, doing: &str) -> T {
        self.unwrap_or_else(|err| panic!("{doing}: {err}"))
    }
}
