//! Dashboard timings (issue 15): how long the server takes to answer a page, beside a peer
//! that serves bytes of the same size without rendering anything, and how long a host report
//! takes to reach an open page.
//!
//! One keep-alive client in this process times every request, so process start-up and TLS
//! never enter the figures; rounds alternate which URL goes first, so a slow moment of the
//! machine falls on both sides.

use crate::BenchError;
use reqwest::header::{CONTENT_TYPE, COOKIE, ORIGIN, SET_COOKIE};
use std::time::{Duration, Instant};

/// Timeouts on every request: a stuck server ends the run instead of hanging it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest a report may take to reach the page before the run calls it lost.
const LIVE_TIMEOUT: Duration = Duration::from_secs(10);

fn client() -> Result<reqwest::Client, BenchError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|err| BenchError::Invalid(err.to_string()))
}

fn http(err: reqwest::Error) -> BenchError {
    BenchError::Invalid(format!("request failed: {err}"))
}

/// Signs in on the dashboard's form and answers the session cookie (`name=value`).
pub async fn sign_in(url: &str, email: &str, password: &str) -> Result<String, BenchError> {
    let response = client()?
        .post(format!("{url}/login"))
        .header(ORIGIN, url)
        .header("sec-fetch-site", "same-origin")
        .form(&[("email", email), ("password", password), ("next", "/")])
        .send()
        .await
        .map_err(http)?;
    response
        .headers()
        .get(SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_string)
        .ok_or_else(|| BenchError::Invalid(format!("sign-in refused ({})", response.status())))
}

/// Medians and 90th percentiles of one URL's answer times, in milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct PageTiming {
    pub label: String,
    pub median_ms: f64,
    pub p90_ms: f64,
    pub bytes: usize,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

/// One timed GET: the whole body read, a 200 required, `marker` required in the body (an
/// error page or a sign-in redirect must not pass for a fast page).
async fn timed_get(
    client: &reqwest::Client,
    url: &str,
    cookie: Option<&str>,
    marker: &str,
) -> Result<(f64, usize), BenchError> {
    let started = Instant::now();
    let mut request = client.get(url);
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, cookie);
    }
    let response = request.send().await.map_err(http)?;
    let status = response.status();
    let body = response.text().await.map_err(http)?;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if !status.is_success() || !body.contains(marker) {
        return Err(BenchError::Invalid(format!(
            "{url} answered {status} without {marker:?}"
        )));
    }
    Ok((ms, body.len()))
}

/// A page to time: a label, its URL, whether it needs the session and what proves it rendered.
#[derive(Debug, Clone)]
pub struct Target {
    pub label: String,
    pub url: String,
    pub signed_in: bool,
    pub marker: String,
}

/// `rounds` rounds over every target (after `warmup` untimed ones), the order rotated each
/// round.
pub async fn time_pages(
    targets: &[Target],
    cookie: &str,
    warmup: usize,
    rounds: usize,
) -> Result<Vec<PageTiming>, BenchError> {
    let client = client()?;
    let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); targets.len()];
    let mut sizes = vec![0; targets.len()];
    for round in 0..warmup + rounds {
        for step in 0..targets.len() {
            let at = (round + step) % targets.len();
            let target = &targets[at];
            let cookie = target.signed_in.then_some(cookie);
            let (ms, bytes) = timed_get(&client, &target.url, cookie, &target.marker).await?;
            sizes[at] = bytes;
            if round >= warmup {
                samples[at].push(ms);
            }
        }
    }
    Ok(targets
        .iter()
        .zip(samples)
        .zip(sizes)
        .map(|((target, mut times), bytes)| {
            times.sort_by(f64::total_cmp);
            PageTiming {
                label: target.label.clone(),
                median_ms: percentile(&times, 0.5),
                p90_ms: percentile(&times, 0.9),
                bytes,
            }
        })
        .collect())
}

/// A page's body, required to mention `marker`.
async fn page_text(
    client: &reqwest::Client,
    url: &str,
    cookie: &str,
    marker: &str,
) -> Result<String, BenchError> {
    let response = client
        .get(url)
        .header(COOKIE, cookie)
        .send()
        .await
        .map_err(http)?;
    let status = response.status();
    let body = response.text().await.map_err(http)?;
    if !status.is_success() || !body.contains(marker) {
        return Err(BenchError::Invalid(format!(
            "{url} answered {status} without {marker:?}"
        )));
    }
    Ok(body)
}

/// What the live stream sends when a page's data changed.
const CHANGED: &str = "event: changed";

/// Reads the event stream until `count` `changed` events arrived.
async fn changed_events(
    stream: &mut reqwest::Response,
    count: usize,
    seen: &mut usize,
) -> Result<(), BenchError> {
    let mut text = String::new();
    while *seen < count {
        let chunk = tokio::time::timeout(LIVE_TIMEOUT, stream.chunk())
            .await
            .map_err(|_| BenchError::Invalid("no change reached the live stream".into()))?
            .map_err(http)?
            .ok_or_else(|| BenchError::Invalid("the live stream ended".into()))?;
        text.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(at) = text.find(CHANGED) {
            *seen += 1;
            text.drain(..at + CHANGED.len());
        }
    }
    Ok(())
}

/// A host whose reports are posted and the page its row is on.
#[derive(Debug, Clone)]
pub struct LiveProbe {
    pub url: String,
    pub host_id: String,
    pub host_key: String,
    pub report_json: String,
}

/// For each round: a host report posted, then the time until the open hosts page was told
/// (server-sent event) and re-read its table with the new report in it. Milliseconds, sorted.
pub async fn report_to_page(
    probe: &LiveProbe,
    cookie: &str,
    rounds: usize,
) -> Result<Vec<f64>, BenchError> {
    let client = client()?;
    let streaming = reqwest::Client::builder()
        .build()
        .map_err(|err| BenchError::Invalid(err.to_string()))?;
    let mut stream = streaming
        .get(format!("{}/live/hosts", probe.url))
        .header(COOKIE, cookie)
        .send()
        .await
        .map_err(http)?;
    if !stream.status().is_success() {
        return Err(BenchError::Invalid(format!(
            "/live/hosts answered {}",
            stream.status()
        )));
    }
    // The first event comes at once: it covers whatever changed before the stream opened.
    let mut seen = 0;
    changed_events(&mut stream, 1, &mut seen).await?;
    let fragment = format!("{}/hosts?fragment=table", probe.url);
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let old = page_text(&client, &fragment, cookie, &probe.host_id).await?;
        // Report times are kept to the millisecond: two reports in one would look alike.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let started = Instant::now();
        let answer = client
            .post(format!(
                "{}{}",
                probe.url,
                mftplus_types::routes::HOST_REPORT
            ))
            .bearer_auth(&probe.host_key)
            .header(CONTENT_TYPE, "application/json")
            .body(probe.report_json.clone())
            .send()
            .await
            .map_err(http)?;
        if !answer.status().is_success() {
            return Err(BenchError::Invalid(format!(
                "the report was refused: {}",
                answer.status()
            )));
        }
        changed_events(&mut stream, seen + 1, &mut seen).await?;
        let new = page_text(&client, &fragment, cookie, &probe.host_id).await?;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        if new == old {
            return Err(BenchError::Invalid(
                "the page was told of a change but shows the same table".into(),
            ));
        }
        times.push(ms);
    }
    times.sort_by(f64::total_cmp);
    Ok(times)
}

/// `mftplus-bench pages`: signs in, times every `LABEL|URL|MARKER` and prints one JSON line per
/// page with its ratio to the last one given (the peer).
pub async fn run_pages(
    url: &str,
    email: &str,
    password: &str,
    pages: &[String],
    warmup: usize,
    rounds: usize,
) -> Result<(), BenchError> {
    let targets = pages
        .iter()
        .map(|spec| {
            let mut parts = spec.splitn(3, '|');
            match (parts.next(), parts.next(), parts.next()) {
                (Some(label), Some(path), Some(marker)) => Ok(Target {
                    label: label.to_string(),
                    signed_in: path.starts_with('/'),
                    url: match path.starts_with('/') {
                        true => format!("{url}{path}"),
                        false => path.to_string(),
                    },
                    marker: marker.to_string(),
                }),
                _ => Err(BenchError::Invalid(format!(
                    "--page {spec:?} is not LABEL|URL|MARKER"
                ))),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let cookie = sign_in(url, email, password).await?;
    let timings = time_pages(&targets, &cookie, warmup, rounds.max(1)).await?;
    let peer = timings.last().map_or(1.0, |t| t.median_ms);
    for timing in &timings {
        eprintln!(
            "{:<24} median {:>8.2} ms  p90 {:>8.2} ms  {:>8} B  {:.2}x the last",
            timing.label,
            timing.median_ms,
            timing.p90_ms,
            timing.bytes,
            timing.median_ms / peer
        );
        println!(
            "{}",
            serde_json::json!({
                "page": timing.label,
                "median_ms": timing.median_ms,
                "p90_ms": timing.p90_ms,
                "bytes": timing.bytes,
                "rounds": rounds,
                "ratio_to_last": timing.median_ms / peer,
            })
        );
    }
    Ok(())
}

/// `mftplus-bench report-to-page`: the seeded host whose id sorts first reports `rounds`
/// times; prints the median, 90th percentile and slowest time until the page showed it.
pub async fn run_report_to_page(
    url: &str,
    email: &str,
    password: &str,
    hosts: &[crate::seed::SeededHost],
    rounds: usize,
) -> Result<(), BenchError> {
    let host = hosts
        .iter()
        .min_by(|a, b| a.host_id.cmp(&b.host_id))
        .ok_or_else(|| BenchError::Invalid("no seeded hosts".into()))?;
    let report = crate::report::serialised(&host.host_id, 0, 4096);
    let probe = LiveProbe {
        url: url.to_string(),
        host_id: host.host_id.clone(),
        host_key: host.key.clone(),
        report_json: String::from_utf8_lossy(&report).into_owned(),
    };
    let cookie = sign_in(url, email, password).await?;
    let times = report_to_page(&probe, &cookie, rounds.max(1)).await?;
    let (median, p90, max) = (
        percentile(&times, 0.5),
        percentile(&times, 0.9),
        times[times.len() - 1],
    );
    eprintln!(
        "report to page: median {median:.1} ms, p90 {p90:.1} ms, max {max:.1} ms over {} rounds",
        times.len()
    );
    println!(
        "{}",
        serde_json::json!({"median_ms": median, "p90_ms": p90, "max_ms": max, "rounds": times.len()})
    );
    Ok(())
}
