//! The places in a desired state that a `state.change` can touch, and their paths.
//!
//! Paths are JSON pointers (RFC 6901: `~` is written `~0`, `/` is `~1`) so a guest id or an
//! unknown key containing `/` still has exactly one path. Only the places the diff reports as
//! `state.change` are representable: an op that claims to set `/guests/web/spec/disk_gb`
//! through `state.change` is refused, because the table gives that field its own op.

use crate::FleetError;
use mftplus_types::fleet::{DesiredState, GuestDesired, StoragePolicy};
use serde_json::Value;
use std::collections::BTreeMap;

const TOP_KNOWN: [&str; 3] = ["guests", "storage", "versions"];
const VERSIONS_KNOWN: [&str; 3] = ["agent", "controller", "golden_image"];
const GUEST_KNOWN: [&str; 2] = ["spec", "run_state"];
const SPEC_KNOWN: [&str; 6] = [
    "kind",
    "cpu_cores",
    "memory_mb",
    "disk_gb",
    "image",
    "restore_from",
];
const STORAGE_KNOWN: [&str; 4] = ["role", "class", "backup", "wipe"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Location {
    TopExtra(String),
    VersionsExtra(String),
    GuestExtra {
        guest: String,
        key: String,
    },
    SpecExtra {
        guest: String,
        key: String,
    },
    /// Clearing `restore_from` is not in the table, so it is a `state.change`.
    RestoreFrom {
        guest: String,
    },
    /// A guest moving to another kind (and so another driver) is not in the table either.
    Kind {
        guest: String,
    },
    StorageExtra {
        durable_id: String,
        key: String,
    },
    /// Clearing `wipe` is not in the table, so it is a `state.change`.
    Wipe {
        durable_id: String,
    },
}

/// One JSON-pointer segment.
pub(crate) fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

fn unescape(segment: &str) -> Option<String> {
    // `~` must be followed by 0 or 1; anything else is not a pointer this crate wrote.
    let mut out = String::with_capacity(segment.len());
    let mut chars = segment.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// `/a/b/c` from unescaped segments.
pub(crate) fn pointer(segments: &[&str]) -> String {
    segments.iter().map(|s| format!("/{}", escape(s))).collect()
}

impl Location {
    pub(crate) fn path(&self) -> String {
        match self {
            Location::TopExtra(key) => pointer(&[key]),
            Location::VersionsExtra(key) => pointer(&["versions", key]),
            Location::GuestExtra { guest, key } => pointer(&["guests", guest, key]),
            Location::SpecExtra { guest, key } => pointer(&["guests", guest, "spec", key]),
            Location::RestoreFrom { guest } => pointer(&["guests", guest, "spec", "restore_from"]),
            Location::Kind { guest } => pointer(&["guests", guest, "spec", "kind"]),
            Location::StorageExtra { durable_id, key } => pointer(&["storage", durable_id, key]),
            Location::Wipe { durable_id } => pointer(&["storage", durable_id, "wipe"]),
        }
    }

    /// The guest this location belongs to, which becomes the op's `target.guest_id`.
    pub(crate) fn guest(&self) -> Option<&str> {
        match self {
            Location::GuestExtra { guest, .. }
            | Location::SpecExtra { guest, .. }
            | Location::RestoreFrom { guest }
            | Location::Kind { guest } => Some(guest),
            _ => None,
        }
    }

    pub(crate) fn parse(path: &str) -> Result<Self, FleetError> {
        let bad = || FleetError::BadPath(path.to_owned());
        let rest = path.strip_prefix('/').ok_or_else(bad)?;
        let segments = rest
            .split('/')
            .map(unescape)
            .collect::<Option<Vec<_>>>()
            .ok_or_else(bad)?;
        let s: Vec<&str> = segments.iter().map(String::as_str).collect();
        let owned = |x: &str| x.to_owned();
        match s.as_slice() {
            [key] if !TOP_KNOWN.contains(key) => Ok(Location::TopExtra(owned(key))),
            ["versions", key] if !VERSIONS_KNOWN.contains(key) => {
                Ok(Location::VersionsExtra(owned(key)))
            }
            ["guests", guest, key] if !GUEST_KNOWN.contains(key) => Ok(Location::GuestExtra {
                guest: owned(guest),
                key: owned(key),
            }),
            ["guests", guest, "spec", "restore_from"] => Ok(Location::RestoreFrom {
                guest: owned(guest),
            }),
            ["guests", guest, "spec", "kind"] => Ok(Location::Kind {
                guest: owned(guest),
            }),
            ["guests", guest, "spec", key] if !SPEC_KNOWN.contains(key) => {
                Ok(Location::SpecExtra {
                    guest: owned(guest),
                    key: owned(key),
                })
            }
            ["storage", durable_id, "wipe"] => Ok(Location::Wipe {
                durable_id: owned(durable_id),
            }),
            ["storage", durable_id, key] if !STORAGE_KNOWN.contains(key) => {
                Ok(Location::StorageExtra {
                    durable_id: owned(durable_id),
                    key: owned(key),
                })
            }
            _ => Err(bad()),
        }
    }

    /// Sets the value; `null` removes an unknown key (absent and `null` are the same to the diff).
    pub(crate) fn set(&self, state: &mut DesiredState, value: Value) -> Result<(), FleetError> {
        let missing = || FleetError::PathNotFound(self.path());
        let wrong = || FleetError::BadValue(self.path());
        match self {
            Location::TopExtra(key) => set_extra(&mut state.extra, key, value),
            Location::VersionsExtra(key) => set_extra(&mut state.versions.extra, key, value),
            Location::GuestExtra { guest, key } => set_extra(
                &mut guest_mut(state, guest).ok_or_else(missing)?.extra,
                key,
                value,
            ),
            Location::SpecExtra { guest, key } => set_extra(
                &mut guest_mut(state, guest).ok_or_else(missing)?.spec.extra,
                key,
                value,
            ),
            Location::RestoreFrom { guest } => {
                let spec = &mut guest_mut(state, guest).ok_or_else(missing)?.spec;
                spec.restore_from = match value {
                    Value::Null => None,
                    Value::String(s) => Some(s),
                    _ => return Err(wrong()),
                };
            }
            Location::Kind { guest } => {
                let spec = &mut guest_mut(state, guest).ok_or_else(missing)?.spec;
                spec.kind = serde_json::from_value(value).map_err(|_| wrong())?;
            }
            Location::StorageExtra { durable_id, key } => set_extra(
                &mut policy_mut(state, durable_id).ok_or_else(missing)?.extra,
                key,
                value,
            ),
            Location::Wipe { durable_id } => {
                let policy = policy_mut(state, durable_id).ok_or_else(missing)?;
                policy.wipe = match value {
                    Value::Null => false,
                    Value::Bool(b) => b,
                    _ => return Err(wrong()),
                };
            }
        }
        Ok(())
    }
}

fn set_extra(map: &mut BTreeMap<String, Value>, key: &str, value: Value) {
    if value.is_null() {
        map.remove(key);
    } else {
        map.insert(key.to_owned(), value);
    }
}

pub(crate) fn guest_mut<'a>(state: &'a mut DesiredState, id: &str) -> Option<&'a mut GuestDesired> {
    state.guests.get_mut(id)
}

pub(crate) fn policy_mut<'a>(
    state: &'a mut DesiredState,
    id: &str,
) -> Option<&'a mut StoragePolicy> {
    state.storage.get_mut(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_round_trip_with_escapes() {
        let locations = [
            Location::TopExtra("a/b~c".into()),
            Location::VersionsExtra("kernel".into()),
            Location::GuestExtra {
                guest: "web/1".into(),
                key: "gpu".into(),
            },
            Location::SpecExtra {
                guest: "db".into(),
                key: "numa".into(),
            },
            Location::RestoreFrom { guest: "db".into() },
            Location::Kind { guest: "db".into() },
            Location::StorageExtra {
                durable_id: "u-1".into(),
                key: "mount".into(),
            },
            Location::Wipe {
                durable_id: "u-1".into(),
            },
        ];
        for loc in locations {
            assert_eq!(Location::parse(&loc.path()), Ok(loc.clone()), "{loc:?}");
        }
        assert_eq!(
            Location::TopExtra("a/b~c".into()).path(),
            "/a~1b~0c".to_owned()
        );
    }

    #[test]
    fn known_fields_and_malformed_paths_are_refused() {
        for path in [
            "",
            "guests",
            "/guests",
            "/versions/controller",
            "/guests/web/spec/disk_gb",
            "/guests/web/run_state",
            "/storage/u/role",
            "/guests/web/spec/a/b",
            "/bad~2escape",
        ] {
            assert_eq!(
                Location::parse(path),
                Err(FleetError::BadPath(path.into())),
                "{path}"
            );
        }
    }
}
