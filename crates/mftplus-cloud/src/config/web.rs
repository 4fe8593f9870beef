//! `web`: the dashboard served at `/` (decision 0018).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebSection {
    /// Serve the dashboard at `/` (the API under `/api/v1` is served either way).
    pub enabled: bool,
    /// A session unused this long ends; the next page asks to sign in again.
    pub session_idle_minutes: u64,
    /// A session ends this long after sign-in, used or not.
    pub session_absolute_hours: u64,
}

impl Default for WebSection {
    fn default() -> Self {
        WebSection {
            enabled: true,
            session_idle_minutes: 30,
            session_absolute_hours: 12,
        }
    }
}
