//! The op blob: the exact bytes an operator signs to authorise one destructive change.
//!
//! ```text
//! {"expires_at":1767225600,"issued_at":1767222000,"key_id":"SHA256:…","nonce":"…",
//!  "op":"guest.remove","params":{…},"target":{"guest_id":"g-1","host_id":"h-1"}}
//! ```
//! (one line, shown wrapped). The blob is canonical JSON (`mftplus_crypto::canonical_json`:
//! keys sorted by bytes at every level, no insignificant whitespace, UTF-8, no trailing
//! newline) so the bytes the cloud stores, the bytes the operator signs and the bytes the agent
//! verifies are one and the same, and so that one op has exactly one encoding.
//!
//! [`Op::parse`] is deliberately strict: the signature covers bytes, not meaning, and any
//! leniency (a duplicate key, a `"guest_id"` left out, a float where an integer belongs) would
//! give two parties different readings of the same signed bytes.

use serde_json::{Map, Value};
use thiserror::Error;

/// Blobs larger than this are refused before JSON parsing. Real ops are a few hundred bytes.
pub const MAX_BLOB_LEN: usize = 64 * 1024;
/// Nonces must carry enough entropy to be unique per op, and stay small enough to store.
pub const NONCE_MIN_LEN: usize = 16;
pub const NONCE_MAX_LEN: usize = 128;
const MAX_ID_LEN: usize = 256;

/// What an op acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host_id: String,
    /// The guest the op acts on, or `None` (encoded as `null`) for host-level ops.
    pub guest_id: Option<String>,
}

/// One signed operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    /// The action name, e.g. `guest.remove`; `[A-Za-z0-9_.:-]`, 1–128 bytes.
    pub op: String,
    pub target: Target,
    /// Action-specific parameters, compared exactly with what the agent is about to do.
    pub params: Value,
    /// Unique per op; printable ASCII without spaces, 16–128 bytes.
    pub nonce: String,
    /// Unix seconds.
    pub issued_at: i64,
    /// Unix seconds; the op is refused once `now > expires_at`.
    pub expires_at: i64,
    /// Which operator key the op was issued for (informational; trust comes from the pinned
    /// keys, not from this field).
    pub key_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OpError {
    #[error("op blob is {0} bytes, more than the {MAX_BLOB_LEN} allowed")]
    TooLarge(usize),
    #[error("op blob is not JSON: {0}")]
    Json(String),
    #[error("op blob is not in canonical form")]
    NotCanonical,
    #[error("op blob has unknown field `{0}`")]
    UnknownField(String),
    #[error("op blob is missing field `{0}`")]
    MissingField(&'static str),
    #[error("op field `{0}` has the wrong type")]
    WrongType(&'static str),
    #[error("op field `{0}` has an invalid value")]
    InvalidValue(&'static str),
    #[error("op expires before it is issued")]
    InvertedWindow,
    #[error("op params contain a non-integer number; use integers or strings")]
    FloatInParams,
}

const TOP_FIELDS: [&str; 7] = [
    "expires_at",
    "issued_at",
    "key_id",
    "nonce",
    "op",
    "params",
    "target",
];
const TARGET_FIELDS: [&str; 2] = ["guest_id", "host_id"];

impl Op {
    /// The canonical bytes to sign and to store. Call [`Op::validate`] first when building an
    /// op: bytes of an invalid op are produced but every verifier refuses them.
    pub fn to_canonical_bytes(&self) -> Vec<u8> {
        let mut target = Map::new();
        target.insert("host_id".into(), Value::String(self.target.host_id.clone()));
        target.insert(
            "guest_id".into(),
            self.target
                .guest_id
                .clone()
                .map_or(Value::Null, Value::String),
        );
        let mut top = Map::new();
        top.insert("op".into(), Value::String(self.op.clone()));
        top.insert("target".into(), Value::Object(target));
        top.insert("params".into(), self.params.clone());
        top.insert("nonce".into(), Value::String(self.nonce.clone()));
        top.insert("issued_at".into(), Value::from(self.issued_at));
        top.insert("expires_at".into(), Value::from(self.expires_at));
        top.insert("key_id".into(), Value::String(self.key_id.clone()));
        mftplus_crypto::canonical_json(&Value::Object(top)).into_bytes()
    }

    /// Parses a blob, refusing anything that is not exactly the canonical encoding of a valid
    /// op.
    pub fn parse(bytes: &[u8]) -> Result<Self, OpError> {
        if bytes.len() > MAX_BLOB_LEN {
            return Err(OpError::TooLarge(bytes.len()));
        }
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| OpError::Json(e.to_string()))?;
        // Re-encoding and comparing bytes catches every non-canonical form at once: whitespace,
        // key order, duplicate keys, escapes, number spellings, a trailing newline.
        if mftplus_crypto::canonical_json(&value).as_bytes() != bytes {
            return Err(OpError::NotCanonical);
        }
        let Value::Object(mut top) = value else {
            return Err(OpError::WrongType("(root)"));
        };
        check_fields(&top, &TOP_FIELDS)?;
        let Some(Value::Object(target)) = top.remove("target") else {
            return Err(OpError::WrongType("target"));
        };
        check_fields(&target, &TARGET_FIELDS)?;
        let guest_id = match &target["guest_id"] {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            _ => return Err(OpError::WrongType("target.guest_id")),
        };
        let op = Self {
            op: string(&top, "op")?,
            target: Target {
                host_id: string(&target, "host_id")?,
                guest_id,
            },
            params: top.remove("params").unwrap_or(Value::Null),
            nonce: string(&top, "nonce")?,
            issued_at: integer(&top, "issued_at")?,
            expires_at: integer(&top, "expires_at")?,
            key_id: string(&top, "key_id")?,
        };
        op.validate()?;
        Ok(op)
    }

    /// Checks field contents (lengths, character sets, the time window's direction).
    pub fn validate(&self) -> Result<(), OpError> {
        let op_ok = !self.op.is_empty()
            && self.op.len() <= 128
            && self
                .op
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b));
        if !op_ok {
            return Err(OpError::InvalidValue("op"));
        }
        if self.target.host_id.is_empty() || self.target.host_id.len() > MAX_ID_LEN {
            return Err(OpError::InvalidValue("target.host_id"));
        }
        if let Some(guest) = &self.target.guest_id {
            if guest.is_empty() || guest.len() > MAX_ID_LEN {
                return Err(OpError::InvalidValue("target.guest_id"));
            }
        }
        // The nonce goes into the nonce store verbatim; keep it printable and bounded.
        let nonce_ok = (NONCE_MIN_LEN..=NONCE_MAX_LEN).contains(&self.nonce.len())
            && self.nonce.bytes().all(|b| b.is_ascii_graphic());
        if !nonce_ok {
            return Err(OpError::InvalidValue("nonce"));
        }
        // Floats have no single text form that every JSON implementation (or even serde_json
        // without `float_roundtrip`) reads back to the same value, so they cannot be part of
        // bytes that must re-encode identically. Ops carry sizes and counts as integers.
        if contains_float(&self.params) {
            return Err(OpError::FloatInParams);
        }
        if self.key_id.len() > MAX_ID_LEN {
            return Err(OpError::InvalidValue("key_id"));
        }
        if self.expires_at < self.issued_at {
            return Err(OpError::InvertedWindow);
        }
        Ok(())
    }
}

fn contains_float(value: &Value) -> bool {
    match value {
        Value::Number(n) => n.is_f64(),
        Value::Array(items) => items.iter().any(contains_float),
        Value::Object(map) => map.values().any(contains_float),
        Value::Null | Value::Bool(_) | Value::String(_) => false,
    }
}

fn check_fields(map: &Map<String, Value>, expected: &[&'static str]) -> Result<(), OpError> {
    if let Some(unknown) = map.keys().find(|k| !expected.contains(&k.as_str())) {
        return Err(OpError::UnknownField(unknown.clone()));
    }
    if let Some(missing) = expected.iter().find(|k| !map.contains_key(**k)) {
        return Err(OpError::MissingField(missing));
    }
    Ok(())
}

fn string(map: &Map<String, Value>, field: &'static str) -> Result<String, OpError> {
    map[field]
        .as_str()
        .map(str::to_owned)
        .ok_or(OpError::WrongType(field))
}

fn integer(map: &Map<String, Value>, field: &'static str) -> Result<i64, OpError> {
    match &map[field] {
        // An integer beyond i64 is out of range rather than mistyped; a float is mistyped.
        Value::Number(n) if !n.is_f64() => n.as_i64().ok_or(OpError::InvalidValue(field)),
        _ => Err(OpError::WrongType(field)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn sample() -> Op {
        Op {
            op: "guest.remove".into(),
            target: Target {
                host_id: "host-1".into(),
                guest_id: Some("guest-7".into()),
            },
            params: json!({"wipe": true, "disks": ["d2", "d1"], "b": {"z": 1, "a": null}}),
            nonce: "0123456789abcdef0123".into(),
            issued_at: 1_700_000_000,
            expires_at: 1_700_003_600,
            key_id: "SHA256:abc".into(),
        }
    }

    #[test]
    fn canonical_bytes_are_sorted_compact_and_round_trip() {
        let op = sample();
        let bytes = op.to_canonical_bytes();
        let text = std::str::from_utf8(&bytes).unwrap();
        assert_eq!(
            text,
            r#"{"expires_at":1700003600,"issued_at":1700000000,"key_id":"SHA256:abc","nonce":"0123456789abcdef0123","op":"guest.remove","params":{"b":{"a":null,"z":1},"disks":["d2","d1"],"wipe":true},"target":{"guest_id":"guest-7","host_id":"host-1"}}"#
        );
        assert_eq!(Op::parse(&bytes).unwrap(), op);
        let host_level = Op {
            target: Target {
                host_id: "h".into(),
                guest_id: None,
            },
            ..op
        };
        let bytes = host_level.to_canonical_bytes();
        assert!(std::str::from_utf8(&bytes)
            .unwrap()
            .contains(r#""guest_id":null"#));
        assert_eq!(Op::parse(&bytes).unwrap(), host_level);
    }

    #[test]
    fn non_canonical_forms_are_rejected() {
        let canonical = String::from_utf8(sample().to_canonical_bytes()).unwrap();
        let variants = [
            format!("{canonical}\n"),
            format!(" {canonical}"),
            canonical.replacen(":", ": ", 1),
            canonical.replacen(",", ", ", 1),
            // unsorted: move "op" to the front
            canonical
                .replacen(
                    r#"{"expires_at""#,
                    r#"{"op":"guest.remove","expires_at""#,
                    1,
                )
                .replacen(r#","op":"guest.remove""#, "", 1),
            // duplicate key
            canonical.replacen(r#""nonce""#, r#""key_id":"x","nonce""#, 1),
            // escaped spelling of the same string
            canonical.replacen("guest.remove", "guest\\u002eremove", 1),
            canonical.replacen("1700000000", "1.7e9", 1),
        ];
        for variant in variants {
            assert_ne!(variant, canonical);
            assert_eq!(
                Op::parse(variant.as_bytes()),
                Err(OpError::NotCanonical),
                "{variant}"
            );
        }
    }

    #[test]
    fn unknown_missing_wrong_type_and_oversize_are_rejected() {
        let mut v: Value = serde_json::from_slice(&sample().to_canonical_bytes()).unwrap();
        let enc = |v: &Value| mftplus_crypto::canonical_json(v).into_bytes();

        let mut extra = v.clone();
        extra["zz"] = json!(1);
        assert_eq!(
            Op::parse(&enc(&extra)),
            Err(OpError::UnknownField("zz".into()))
        );

        let mut missing = v.clone();
        missing.as_object_mut().unwrap().remove("nonce");
        assert_eq!(
            Op::parse(&enc(&missing)),
            Err(OpError::MissingField("nonce"))
        );

        let mut no_guest = v.clone();
        no_guest["target"]
            .as_object_mut()
            .unwrap()
            .remove("guest_id");
        assert_eq!(
            Op::parse(&enc(&no_guest)),
            Err(OpError::MissingField("guest_id"))
        );

        let mut float = v.clone();
        float["issued_at"] = json!(1.5);
        assert_eq!(
            Op::parse(&enc(&float)),
            Err(OpError::WrongType("issued_at"))
        );

        let mut short_nonce = v.clone();
        short_nonce["nonce"] = json!("abc");
        assert_eq!(
            Op::parse(&enc(&short_nonce)),
            Err(OpError::InvalidValue("nonce"))
        );

        let mut float_param = v.clone();
        float_param["params"]["b"]["z"] = json!(0.5);
        assert_eq!(Op::parse(&enc(&float_param)), Err(OpError::FloatInParams));

        v["expires_at"] = json!(1);
        assert_eq!(Op::parse(&enc(&v)), Err(OpError::InvertedWindow));

        let huge = vec![b' '; MAX_BLOB_LEN + 1];
        assert_eq!(Op::parse(&huge), Err(OpError::TooLarge(MAX_BLOB_LEN + 1)));
        assert!(matches!(Op::parse(b"\xff"), Err(OpError::Json(_))));
        assert_eq!(Op::parse(b"[]"), Err(OpError::WrongType("(root)")));
    }
}
