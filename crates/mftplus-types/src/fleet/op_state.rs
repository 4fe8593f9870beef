//! The lifecycle of a signed operation as a type, so a status from the wire, a query or the
//! command line is checked once at the boundary instead of compared as a string everywhere.
//! On the wire and in the stores' TEXT columns it stays the snake_case string.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// `pending_signature → signed → delivered → executed | failed | expired | rejected`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum OpStatus {
    PendingSignature,
    Signed,
    Delivered,
    Executed,
    Failed,
    Expired,
    Rejected,
}

impl OpStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [OpStatus; 7] = [
        OpStatus::PendingSignature,
        OpStatus::Signed,
        OpStatus::Delivered,
        OpStatus::Executed,
        OpStatus::Failed,
        OpStatus::Expired,
        OpStatus::Rejected,
    ];

    /// The verdicts an agent reports for an op it was delivered.
    pub const AGENT_VERDICTS: [OpStatus; 3] =
        [OpStatus::Executed, OpStatus::Failed, OpStatus::Rejected];

    /// A comma-separated list (a `?status=` filter or `--status`); blanks are skipped, so
    /// `""` is the empty list.
    pub fn parse_list(text: &str) -> Result<Vec<OpStatus>, UnknownOpStatus> {
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::parse)
            .collect()
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            OpStatus::PendingSignature => "pending_signature",
            OpStatus::Signed => "signed",
            OpStatus::Delivered => "delivered",
            OpStatus::Executed => "executed",
            OpStatus::Failed => "failed",
            OpStatus::Expired => "expired",
            OpStatus::Rejected => "rejected",
        }
    }
}

impl fmt::Display for OpStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status string that is none of [`OpStatus::ALL`]; its message names the allowed values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownOpStatus(pub String);

impl fmt::Display for UnknownOpStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let allowed: Vec<&str> = OpStatus::ALL.iter().map(|s| s.as_str()).collect();
        write!(
            f,
            "unknown op status {:?}; statuses are {}",
            self.0,
            allowed.join(", ")
        )
    }
}

impl std::error::Error for UnknownOpStatus {}

impl FromStr for OpStatus {
    type Err = UnknownOpStatus;

    fn from_str(s: &str) -> Result<OpStatus, UnknownOpStatus> {
        OpStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownOpStatus(s.to_string()))
    }
}

impl PartialEq<OpStatus> for str {
    fn eq(&self, other: &OpStatus) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<OpStatus> for String {
    fn eq(&self, other: &OpStatus) -> bool {
        self == other.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_form_parse_and_display_agree() {
        for status in OpStatus::ALL {
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
            assert_eq!(serde_json::from_str::<OpStatus>(&json).unwrap(), status);
            assert_eq!(status.as_str().parse::<OpStatus>().unwrap(), status);
            assert_eq!(status.to_string(), status.as_str());
        }
        assert_eq!(OpStatus::PendingSignature.as_str(), "pending_signature");
    }

    #[test]
    fn an_unknown_status_names_the_allowed_ones() {
        let err = "done".parse::<OpStatus>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown op status \"done\"; statuses are pending_signature, signed, delivered, \
             executed, failed, expired, rejected"
        );
        assert!("Executed".parse::<OpStatus>().is_err(), "case matters");
    }

    #[test]
    fn lists_skip_blanks_and_stop_at_the_first_unknown() {
        assert_eq!(OpStatus::parse_list("").unwrap(), vec![]);
        assert_eq!(
            OpStatus::parse_list(" signed, ,failed").unwrap(),
            vec![OpStatus::Signed, OpStatus::Failed]
        );
        assert_eq!(
            OpStatus::parse_list("signed,nope,other").unwrap_err(),
            UnknownOpStatus("nope".into())
        );
    }
}
