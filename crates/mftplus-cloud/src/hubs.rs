//! The rules of the edge-hub registry (decision 0010) that the handlers apply: how far behind a
//! hub's version is, which status an operator sees, and which license mode a hub gets. Pure
//! functions, so they are tested here without a server.

use mftplus_types::hubs::{
    hub_status, LICENSE_ENTERPRISE, LICENSE_EVALUATION, WARNING_VERSIONS_BEHIND,
};

/// `major.minor.patch`, optionally with a leading `v` and a `-pre` or `+build` suffix (ignored:
/// only releases are counted).
pub fn parse_version(text: &str) -> Option<(u64, u64, u64)> {
    let text = text.trim();
    let text = text.strip_prefix('v').unwrap_or(text);
    let core = text.split(['-', '+']).next()?;
    let mut parts = core.split('.');
    let mut number = || -> Option<u64> {
        let part = parts.next()?;
        (!part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
            .then(|| part.parse().ok())
            .flatten()
    };
    let version = (number()?, number()?, number()?);
    parts.next().is_none().then_some(version)
}

/// How many minor releases `hub` is behind `latest`; an older major counts as 3 (always "more
/// than two behind"), a newer hub as 0. Unparseable versions count as 0: the handlers refuse
/// them before they get here.
pub fn versions_behind(hub: &str, latest: &str) -> u32 {
    let (Some(hub), Some(latest)) = (parse_version(hub), parse_version(latest)) else {
        return 0;
    };
    if hub.0 < latest.0 {
        return 3;
    }
    if hub.0 > latest.0 {
        return 0;
    }
    u32::try_from(latest.1.saturating_sub(hub.1)).unwrap_or(u32::MAX)
}

/// The operator-facing warning for a hub `behind` minor releases behind.
pub fn version_warning(behind: u32) -> Option<&'static str> {
    (behind > 2).then_some(WARNING_VERSIONS_BEHIND)
}

/// Online: heard from within three heartbeat intervals and healthy. Degraded: heard from
/// recently, but it reported itself unhealthy or its deploy key is revoked (it will stop at its
/// next contact). Offline: silent for longer.
pub fn status(
    last_seen_ms: i64,
    now_ms: i64,
    interval_secs: u64,
    healthy: bool,
    key_revoked: bool,
) -> &'static str {
    let window_ms = (interval_secs as i64).saturating_mul(3_000);
    if now_ms - last_seen_ms > window_ms {
        hub_status::OFFLINE
    } else if healthy && !key_revoked {
        hub_status::ONLINE
    } else {
        hub_status::DEGRADED
    }
}

/// The license mode for a presented key, and a warning when a key was presented but is not
/// one of `license_hashes` (SHA-256 hex).
pub fn license_mode(
    license_key: Option<&str>,
    license_hashes: &[String],
) -> (&'static str, Option<&'static str>) {
    let Some(key) = license_key.map(str::trim).filter(|k| !k.is_empty()) else {
        return (LICENSE_EVALUATION, None);
    };
    let digest = mftplus_crypto::sha256_hex(key.as_bytes());
    if license_hashes.contains(&digest) {
        (LICENSE_ENTERPRISE, None)
    } else {
        (
            LICENSE_EVALUATION,
            Some("license key not recognised: running in evaluation mode"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_like_releases() {
        assert_eq!(parse_version("0.1.0"), Some((0, 1, 0)));
        assert_eq!(parse_version("v1.12.3-rc.1"), Some((1, 12, 3)));
        assert_eq!(parse_version("2.0.1+build.7"), Some((2, 0, 1)));
        for bad in [
            "", "1", "1.2", "1.2.3.4", "a.b.c", "1..3", "1.2.x", "-1.2.3",
        ] {
            assert_eq!(parse_version(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn counts_minor_releases_behind() {
        assert_eq!(versions_behind("0.1.0", "0.1.0"), 0);
        assert_eq!(versions_behind("0.1.9", "0.3.0"), 2);
        assert_eq!(versions_behind("0.1.0", "0.4.0"), 3);
        assert_eq!(versions_behind("1.9.0", "2.0.0"), 3, "an older major");
        assert_eq!(versions_behind("3.0.0", "2.5.0"), 0, "a newer hub");
        assert_eq!(versions_behind("0.5.0", "0.4.0"), 0);
        assert_eq!(version_warning(2), None);
        assert_eq!(version_warning(3), Some(WARNING_VERSIONS_BEHIND));
    }

    #[test]
    fn status_follows_silence_health_and_revocation() {
        let now = 1_000_000;
        assert_eq!(status(now - 180_000, now, 60, true, false), "online");
        assert_eq!(status(now - 180_001, now, 60, true, false), "offline");
        assert_eq!(status(now, now, 60, false, false), "degraded");
        assert_eq!(status(now, now, 60, true, true), "degraded");
        assert_eq!(status(now - 999_999, now, 60, false, true), "offline");
    }

    #[test]
    fn license_keys_match_by_hash() {
        let hashes = vec![mftplus_crypto::sha256_hex(b"ENT-1234")];
        assert_eq!(license_mode(None, &hashes), ("evaluation", None));
        assert_eq!(license_mode(Some(" "), &hashes), ("evaluation", None));
        assert_eq!(
            license_mode(Some("ENT-1234"), &hashes),
            ("enterprise", None)
        );
        let (mode, warning) = license_mode(Some("ENT-9999"), &hashes);
        assert_eq!(mode, "evaluation");
        assert!(warning.is_some());
        assert_eq!(license_mode(Some("ENT-1234"), &[]).0, "evaluation");
    }
}
