//! Certificates of the built-in CA (SPEC §7): who a box certificate speaks for, and the wire
//! types of `/api/v1/certificates` and `/api/v1/ca/*`.
//!
//! A box certificate names its box in one URI subject alternative name,
//! `urn:mftplus:host:<host_id>` or `urn:mftplus:hub:<hub_id>`; the common name repeats the id
//! for people reading `openssl x509 -text`. The CA writes the name from the authenticated
//! requester, never from the request.

use serde::{Deserialize, Serialize};
use std::fmt;

pub const IDENTITY_URI_PREFIX: &str = "urn:mftplus:";

/// The client certificate an edge hub verified at its own listener and forwards to the cloud
/// (base64 of the DER). The cloud believes it only on a connection from a certified hub, and
/// the hub drops whatever a client sent under this name.
pub const FORWARDED_CLIENT_CERT_HEADER: &str = "x-mftplus-client-cert";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum BoxKind {
    Host,
    Hub,
}

impl BoxKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BoxKind::Host => "host",
            BoxKind::Hub => "hub",
        }
    }
}

/// The box a certificate speaks for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BoxIdentity {
    pub kind: BoxKind,
    pub id: String,
}

impl BoxIdentity {
    pub fn host(id: impl Into<String>) -> BoxIdentity {
        BoxIdentity {
            kind: BoxKind::Host,
            id: id.into(),
        }
    }

    pub fn hub(id: impl Into<String>) -> BoxIdentity {
        BoxIdentity {
            kind: BoxKind::Hub,
            id: id.into(),
        }
    }

    pub fn uri(&self) -> String {
        format!("{IDENTITY_URI_PREFIX}{self}")
    }

    pub fn from_uri(uri: &str) -> Option<BoxIdentity> {
        BoxIdentity::parse(uri.strip_prefix(IDENTITY_URI_PREFIX)?)
    }

    /// `host:<id>` or `hub:<id>`; ids are the cloud's (letters, digits, `-`, `_`, `.`).
    pub fn parse(text: &str) -> Option<BoxIdentity> {
        let (kind, id) = text.split_once(':')?;
        let kind = match kind {
            "host" => BoxKind::Host,
            "hub" => BoxKind::Hub,
            _ => return None,
        };
        let valid = !id.is_empty()
            && id.len() <= 128
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        valid.then(|| BoxIdentity {
            kind,
            id: id.to_string(),
        })
    }
}

impl fmt::Display for BoxIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.as_str(), self.id)
    }
}

/// `POST /api/v1/certificates` and `POST /api/v1/certificates/renew`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct IssueCertificateRequest {
    /// PEM `CERTIFICATE REQUEST`; only its public key is used.
    pub csr: String,
    /// `host:<id>` (or a bare host id, as `--agent-id` gives it). Operators name it; a box's
    /// own credential implies it.
    #[serde(default)]
    pub subject: Option<String>,
    /// Requested lifetime (`24h`, `8760h`); capped by the CA's `max_validity`.
    #[serde(default)]
    pub validity: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct IssuedCertificate {
    pub serial: String,
    pub subject: String,
    /// PEM: the leaf, then the issuing intermediate.
    pub certificate: String,
    /// PEM: the roots to trust for this CA (during a rotation, old and new), then the issuing
    /// intermediate: a box's `ca.crt`.
    pub ca: String,
    pub not_before: i64,
    pub not_after: i64,
    /// The cloud's `certificates.renew_before` (seconds): renew no later than this long before
    /// `not_after` (boxes renew earlier, at 70-85 % of the life, when that comes first).
    #[serde(default)]
    pub renew_before: Option<u64>,
    /// The cloud's `certificates.watch_interval` (seconds): look at the certificate at least
    /// this often.
    #[serde(default)]
    pub watch_interval: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CertificateInfo {
    pub serial: String,
    pub subject: String,
    pub fingerprint: String,
    pub not_before: i64,
    pub not_after: i64,
    pub issued_at: i64,
    pub issued_by: String,
    /// `valid`, `expired` or `revoked`.
    pub status: String,
    #[serde(default)]
    pub revoked_at: Option<i64>,
    #[serde(default)]
    pub revoked_reason: Option<String>,
}

/// `GET /api/v1/ca`: what the CA trusts and whether a rotation is under way.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CaStatus {
    pub roots: Vec<CaRoot>,
    /// Set while old and new roots are both trusted (unix seconds).
    #[serde(default)]
    pub rotation_started_at: Option<i64>,
    /// Live certificates issued before the rotation started: what still has to renew before
    /// the old root can be retired.
    pub on_old_chain: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CaRoot {
    pub subject: String,
    /// SHA-256 hex of the DER.
    pub fingerprint: String,
    pub not_after: i64,
}

/// `POST /api/v1/ca/retire`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RetireCaRequest {
    /// Retire even though live certificates still chain to the old root (they stop working).
    #[serde(default)]
    pub force: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RevokeCertificateRequest {
    #[serde(default)]
    pub reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_round_trip_and_refuse_junk() {
        let host = BoxIdentity::host("h-1");
        assert_eq!(host.uri(), "urn:mftplus:host:h-1");
        assert_eq!(BoxIdentity::from_uri(&host.uri()), Some(host));
        for junk in [
            "host:",
            "user:x",
            "host:a/b",
            "host:a b",
            "urn:mftplus:host:x",
        ] {
            assert_eq!(BoxIdentity::parse(junk), None, "{junk}");
        }
        assert_eq!(BoxIdentity::from_uri("https://x"), None);
    }
}
