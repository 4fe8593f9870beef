//! `GET /health` and `GET /hub/diagnose`, in the seed's JSON shapes and issue wording.
//!
//! One deliberate deviation from the seed: the seed's diagnose also resolves `google.com`.
//! This hub resolves only the cloud API's host, so a diagnose never makes the hub contact a
//! host the operator did not configure.

use crate::state::{platform, HubState};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

pub const ISSUE_NO_CLOUD_URL: &str = "Cloud API URL is not configured";
pub const ISSUE_NO_REGISTRATION_KEY: &str = "Registration key is not configured";
pub const ISSUE_CLOUD_UNREACHABLE: &str = "Cloud API unreachable";
pub const ISSUE_KEY_REVOKED: &str = "Registration key was revoked";
pub const ISSUE_KEY_REFUSED: &str = "Registration key was refused by the cloud";
pub const ISSUE_NOT_REGISTERED: &str = "Hub is not registered with the cloud yet";

/// The seed's minimum free disk.
const MIN_FREE_GB: f64 = 1.0;
const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

pub fn dns_issue(host: &str) -> String {
    format!("DNS resolution failed for {host}")
}

#[derive(Debug, Serialize)]
pub struct Health {
    pub status: &'static str,
    pub version: String,
    pub uptime: f64,
}

/// 200 when the hub can serve agents, 503 (same body) when it cannot, so the seed's container
/// health check (`statusCode === 200`) agrees with `status`.
pub async fn health(State(state): State<Arc<HubState>>) -> Response {
    let healthy = state.proxy_block().is_none();
    let body = Health {
        status: if healthy { "healthy" } else { "unhealthy" },
        version: state.config.hub_version.clone(),
        uptime: round(state.uptime().as_secs_f64(), 2),
    };
    let status = if healthy {
        http::StatusCode::OK
    } else {
        http::StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Diagnosis {
    pub timestamp: String,
    pub hostname: String,
    pub platform: String,
    pub uptime_hours: f64,
    pub config: ConfigReport,
    pub connectivity: Connectivity,
    pub disk: Disk,
    pub dns: Vec<DnsCheck>,
    pub phone_home: PhoneHomeReport,
    pub healthy: bool,
    pub issues: Vec<String>,
    /// Not in the seed: the offline queue's and the dead letter's depths (`null` when `hub.db`
    /// is not open). Added last, leaving every seed field as it was.
    pub offline: Option<OfflineReport>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OfflineReport {
    pub queued: u64,
    /// Queued writes the cloud refused on replay, waiting for an operator.
    pub dead_letter: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigReport {
    pub hub_version: String,
    pub port: u16,
    pub node_env: String,
    pub cloud_api_configured: bool,
    pub registration_key_configured: bool,
    pub license_key_configured: bool,
    pub phone_home_interval_hours: u32,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Connectivity {
    pub cloud_api_reachable: bool,
    pub cloud_api_url: Option<String>,
    pub latency_ms: Option<u64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Disk {
    pub path: String,
    pub total_gb: f64,
    pub free_gb: f64,
    pub used_gb: f64,
    pub used_percent: f64,
    pub healthy: bool,
}

#[derive(Debug, Serialize)]
pub struct DnsCheck {
    pub hostname: String,
    pub resolved: Vec<String>,
    pub healthy: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhoneHomeReport {
    pub registered: bool,
    pub hub_id: Option<String>,
    pub last_registered: Option<String>,
    pub last_validated: Option<String>,
    pub validation_error: Option<String>,
}

pub async fn diagnose(State(state): State<Arc<HubState>>) -> Json<Diagnosis> {
    Json(run(&state).await)
}

/// Runs every check (the network ones concurrently) and collects the issues.
pub async fn run(state: &HubState) -> Diagnosis {
    let config = &state.config;
    let (connectivity, dns) = tokio::join!(probe_cloud(state), resolve_cloud_host(state));
    let disk = disk_report(&config.diagnose_disk_path);
    let phone_home = state.phone_home();

    let mut issues: Vec<String> = config.missing().iter().map(|s| s.to_string()).collect();
    if config.cloud_api_url.is_some() && !connectivity.cloud_api_reachable {
        issues.push(ISSUE_CLOUD_UNREACHABLE.into());
    }
    for check in dns.iter().filter(|d| !d.healthy) {
        issues.push(dns_issue(&check.hostname));
    }
    issues.extend(disk_issue(&disk));
    issues.extend(phone_home_issue(state));

    Diagnosis {
        timestamp: stamp(Utc::now()),
        hostname: state.hostname.clone(),
        platform: platform().into(),
        uptime_hours: round(state.uptime().as_secs_f64() / 3600.0, 2),
        config: ConfigReport {
            hub_version: config.hub_version.clone(),
            port: config.port,
            node_env: config.node_env.clone(),
            cloud_api_configured: config.cloud_api_url.is_some(),
            registration_key_configured: config.registration_key.is_some(),
            license_key_configured: config.license_key.is_some(),
            phone_home_interval_hours: config.phone_home_interval_hours,
        },
        connectivity,
        disk,
        dns,
        phone_home: PhoneHomeReport {
            registered: phone_home.registered,
            hub_id: phone_home.hub_id,
            last_registered: phone_home.last_registered.map(stamp),
            last_validated: phone_home.last_validated.map(stamp),
            validation_error: phone_home.validation_error,
        },
        healthy: issues.is_empty(),
        issues,
        offline: state.offline.as_ref().map(|o| OfflineReport {
            queued: o.queued(),
            dead_letter: o.dead_letter(),
        }),
    }
}

/// The issues the hub knows without touching the network: what heartbeats report.
pub fn local_issues(state: &HubState) -> Vec<String> {
    let mut issues: Vec<String> = state
        .config
        .missing()
        .iter()
        .map(|s| s.to_string())
        .collect();
    issues.extend(disk_issue(&disk_report(&state.config.diagnose_disk_path)));
    issues.extend(phone_home_issue(state));
    issues
}

fn phone_home_issue(state: &HubState) -> Option<String> {
    if !state.config.missing().is_empty() {
        return None;
    }
    let status = state.phone_home();
    match status.refused {
        Some(refusal) => Some(refusal.issue().into()),
        None if !status.registered => Some(ISSUE_NOT_REGISTERED.into()),
        None => None,
    }
}

fn disk_issue(disk: &Disk) -> Option<String> {
    if disk.healthy {
        None
    } else if disk.total_gb == 0.0 {
        Some(format!("Disk check failed for {}", disk.path))
    } else {
        Some(format!(
            "Low disk space on {}: {:.2} GB free",
            disk.path, disk.free_gb
        ))
    }
}

async fn probe_cloud(state: &HubState) -> Connectivity {
    let Some(url) = &state.config.cloud_api_url else {
        return Connectivity {
            cloud_api_reachable: false,
            cloud_api_url: None,
            latency_ms: None,
        };
    };
    let started = Instant::now();
    let reachable = match http::Request::get(url.api("v1/health")).body(axum::body::Body::empty()) {
        Ok(request) => {
            match tokio::time::timeout(
                state.timings.cloud_call_timeout,
                state.client.request(request),
            )
            .await
            {
                Ok(Ok(response)) => response.status().is_success(),
                _ => false,
            }
        }
        Err(_) => false,
    };
    Connectivity {
        cloud_api_reachable: reachable,
        cloud_api_url: Some(url.base.clone()),
        latency_ms: reachable.then(|| started.elapsed().as_millis() as u64),
    }
}

async fn resolve_cloud_host(state: &HubState) -> Vec<DnsCheck> {
    let Some(url) = &state.config.cloud_api_url else {
        return Vec::new();
    };
    let host = url.host.clone();
    let lookup = tokio::net::lookup_host((host.clone(), 0));
    let mut resolved: Vec<String> =
        match tokio::time::timeout(state.timings.cloud_call_timeout, lookup).await {
            Ok(Ok(addrs)) => addrs
                .map(|a| a.ip())
                .map(|ip: IpAddr| ip.to_string())
                .collect(),
            _ => Vec::new(),
        };
    resolved.dedup();
    vec![DnsCheck {
        hostname: host,
        healthy: !resolved.is_empty(),
        resolved,
    }]
}

/// statvfs through rustix (no `unsafe` here). "Free" is what an unprivileged process may still
/// write (`f_bavail`), as `df` reports it; used = total − free, so the three numbers add up.
pub fn disk_report(path: &Path) -> Disk {
    let shown = path.display().to_string();
    match rustix::fs::statvfs(path) {
        Ok(st) => {
            let total = st.f_blocks as f64 * st.f_frsize as f64 / GIB;
            let free = st.f_bavail as f64 * st.f_frsize as f64 / GIB;
            let used = (total - free).max(0.0);
            let used_percent = if total > 0.0 {
                used / total * 100.0
            } else {
                0.0
            };
            Disk {
                path: shown,
                total_gb: round(total, 2),
                free_gb: round(free, 2),
                used_gb: round(used, 2),
                used_percent: round(used_percent, 1),
                healthy: total > 0.0 && free >= MIN_FREE_GB,
            }
        }
        Err(err) => {
            tracing::warn!(path = %shown, error = %err, "disk check failed");
            Disk {
                path: shown,
                total_gb: 0.0,
                free_gb: 0.0,
                used_gb: 0.0,
                used_percent: 0.0,
                healthy: false,
            }
        }
    }
}

fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn round(value: f64, places: i32) -> f64 {
    let factor = 10f64.powi(places);
    (value * factor).round() / factor
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_numbers_add_up_and_a_missing_path_is_unhealthy() {
        let d = disk_report(Path::new("/"));
        assert!(d.total_gb > 0.0);
        assert!((d.free_gb + d.used_gb - d.total_gb).abs() < 0.05, "{d:?}");
        assert!((0.0..=100.0).contains(&d.used_percent));
        let gone = disk_report(Path::new("/definitely/not/here"));
        assert!(!gone.healthy);
        assert_eq!(
            disk_issue(&gone).as_deref(),
            Some("Disk check failed for /definitely/not/here")
        );
    }

    #[test]
    fn timestamps_use_the_seed_format() {
        let at = DateTime::parse_from_rfc3339("2026-05-31T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(stamp(at), "2026-05-31T12:00:00.000Z");
    }
}
