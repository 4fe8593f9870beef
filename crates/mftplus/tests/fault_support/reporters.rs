//! The agents: one task per enrolled host, each sending `POST /api/v1/host-report` through the
//! hub with its host key, one at a time, every 100–300 ms. Report `n` of a reporter carries
//! `n` in `system.uptime_seconds` (stored verbatim by the cloud in `report_json`), so what the
//! cloud stored can be matched against what each reporter was told.
//!
//! Half the reporters send an `Idempotency-Key` of their own (`fi-<n>`) and, like an agent
//! with a journal, retry a failed report up to three times under the same key before giving
//! it up; the other half send none (the hub assigns one) and never resend, like today's agent.
//! Now and then a request is abandoned after a few milliseconds, as if the agent was killed
//! mid-request. Every answer is written down: a 2xx is an acknowledgement (`x-hub-offline:
//! queued` when the hub took it into its queue), anything else is not.

use super::Rng;
use mftplus_types::fleet::{HostReport, HostSystem, IDEMPOTENCY_KEY_HEADER};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// An enrolled host whose key the reporter uses.
#[derive(Debug, Clone)]
pub struct Reporter {
    pub host_id: String,
    pub key: String,
    /// Sends its own `Idempotency-Key` and retries under it.
    pub keyed: bool,
}

/// The final answer to one report (after the retries of a keyed reporter).
#[derive(Debug, Clone)]
pub struct Outcome {
    pub seq: u64,
    pub acked: bool,
    /// Acknowledged from the hub's queue (`x-hub-offline: queued`).
    pub queued: bool,
    /// When the (last) answer came.
    pub at: Instant,
    /// HTTP status and error code of a refusal, or the transport failure.
    pub failure: Option<String>,
    pub attempts: u32,
}

/// Answers the suite does not expect from a hub (anything but 2xx, 502/503/504 with the hub's
/// codes, or a transport failure).
#[derive(Debug, Default)]
pub struct Ledger {
    pub outcomes: Vec<Vec<Outcome>>,
    pub unexpected: Vec<String>,
    /// Requests abandoned mid-flight (the agent "killed").
    pub abandoned: u64,
}

pub struct Fleet {
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    pub ledger: Arc<Mutex<Ledger>>,
}

impl Fleet {
    pub fn start(hub_url: &str, reporters: &[Reporter], rng: &mut Rng) -> Fleet {
        let (stop, stopped) = watch::channel(false);
        let ledger = Arc::new(Mutex::new(Ledger {
            outcomes: vec![Vec::new(); reporters.len()],
            ..Ledger::default()
        }));
        let tasks = reporters
            .iter()
            .enumerate()
            .map(|(index, reporter)| {
                let state = Loop {
                    url: format!("{hub_url}{}", mftplus_types::routes::HOST_REPORT),
                    reporter: reporter.clone(),
                    index,
                    ledger: ledger.clone(),
                    rng: rng.fork(),
                    client: reqwest::Client::builder()
                        .timeout(Duration::from_secs(10))
                        .connect_timeout(Duration::from_secs(3))
                        .build()
                        .expect("a reqwest client"),
                };
                tokio::spawn(state.run(stopped.clone()))
            })
            .collect();
        Fleet {
            stop,
            tasks,
            ledger,
        }
    }

    /// Lets each reporter finish the report in hand, then stops them.
    pub async fn stop(mut self) -> Ledger {
        let _ = self.stop.send(true);
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
        std::mem::take(&mut *mftplus_base::sync::lock(&self.ledger))
    }

    /// Acknowledgements per reporter so far.
    pub fn acked(&self) -> Vec<usize> {
        let ledger = mftplus_base::sync::lock(&self.ledger);
        ledger
            .outcomes
            .iter()
            .map(|o| o.iter().filter(|o| o.acked).count())
            .collect()
    }

    /// Outcomes answered within `from..to`.
    pub fn answered_between(&self, from: Instant, to: Instant) -> Vec<Outcome> {
        let ledger = mftplus_base::sync::lock(&self.ledger);
        ledger
            .outcomes
            .iter()
            .flatten()
            .filter(|o| o.at >= from && o.at <= to)
            .cloned()
            .collect()
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

struct Loop {
    url: String,
    reporter: Reporter,
    index: usize,
    ledger: Arc<Mutex<Ledger>>,
    rng: Rng,
    client: reqwest::Client,
}

/// One attempt's answer: acknowledged (queued?) or why not.
enum Answer {
    Acked { queued: bool },
    Refused(String),
}

impl Loop {
    async fn run(mut self, stopped: watch::Receiver<bool>) {
        let mut seq = 0;
        while !*stopped.borrow() {
            seq += 1;
            let outcome = self.report(seq).await;
            mftplus_base::sync::lock(&self.ledger).outcomes[self.index].push(outcome);
            let pause = Duration::from_millis(self.rng.between(100, 300));
            tokio::time::sleep(pause).await;
        }
    }

    /// Report `seq`, with the retries of a keyed reporter.
    async fn report(&mut self, seq: u64) -> Outcome {
        let body = report_body(&self.reporter.host_id, seq);
        let key = self.reporter.keyed.then(|| format!("fi-{seq}"));
        let attempts = if self.reporter.keyed { 3 } else { 1 };
        let mut outcome = Outcome {
            seq,
            acked: false,
            queued: false,
            at: Instant::now(),
            failure: None,
            attempts: 0,
        };
        for attempt in 1..=attempts {
            outcome.attempts = attempt;
            let answer = self.attempt(&body, key.as_deref()).await;
            outcome.at = Instant::now();
            match answer {
                Answer::Acked { queued } => {
                    (outcome.acked, outcome.queued, outcome.failure) = (true, queued, None);
                    break;
                }
                Answer::Refused(why) => outcome.failure = Some(why),
            }
            if attempt < attempts {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
        outcome
    }

    async fn attempt(&mut self, body: &serde_json::Value, key: Option<&str>) -> Answer {
        let mut request = self
            .client
            .post(&self.url)
            .bearer_auth(&self.reporter.key)
            .json(body);
        if let Some(key) = key {
            request = request.header(IDEMPOTENCY_KEY_HEADER, key);
        }
        // 1 in 50 requests abandoned after 0–40 ms: the agent dies with the request in flight.
        let abandon = self
            .rng
            .chance(20)
            .then(|| Duration::from_millis(self.rng.below(40)));
        let sent = match abandon {
            Some(after) => match tokio::time::timeout(after, request.send()).await {
                Ok(sent) => sent,
                Err(_) => {
                    mftplus_base::sync::lock(&self.ledger).abandoned += 1;
                    return Answer::Refused("abandoned by the agent".into());
                }
            },
            None => request.send().await,
        };
        let response = match sent {
            Ok(response) => response,
            Err(err) => return Answer::Refused(format!("transport: {}", transport_kind(&err))),
        };
        let status = response.status().as_u16();
        let queued = response
            .headers()
            .get("x-hub-offline")
            .is_some_and(|v| v == "queued");
        let text = response.text().await.unwrap_or_default();
        if (200..300).contains(&status) {
            return Answer::Acked { queued };
        }
        let error = serde_json::from_str::<serde_json::Value>(&text).unwrap_or_default();
        let code = error["error"]["code"].as_str().unwrap_or_default();
        let message = error["error"]["message"].as_str().unwrap_or_default();
        let why = format!("{status} {code} ({message})");
        if !expected_refusal(status) {
            let note = format!("host {} got {why}: {text}", self.reporter.host_id);
            mftplus_base::sync::lock(&self.ledger).unexpected.push(note);
        }
        Answer::Refused(why)
    }
}

/// What a hub may answer while the cloud is away or slow, the queue full or the disk full:
/// 502, 503, 504. Anything else (a 500, a 4xx to a valid report) is a finding.
fn expected_refusal(status: u16) -> bool {
    matches!(status, 502..=504)
}

impl Ledger {
    /// How many reports were finally refused, by reason ("503 cloud_unreachable",
    /// "transport: timeout", …).
    pub fn refusals(&self) -> std::collections::BTreeMap<String, u64> {
        let mut reasons = std::collections::BTreeMap::new();
        for failure in self
            .outcomes
            .iter()
            .flatten()
            .filter_map(|o| o.failure.as_ref())
        {
            *reasons.entry(failure.clone()).or_default() += 1;
        }
        reasons
    }
}

fn transport_kind(err: &reqwest::Error) -> &'static str {
    if err.is_timeout() {
        "timeout"
    } else if err.is_connect() {
        "connect"
    } else {
        "broken"
    }
}

/// Report `seq` of `host_id`: the sequence number in `system.uptime_seconds`.
pub fn report_body(host_id: &str, seq: u64) -> serde_json::Value {
    let report = HostReport {
        host_id: host_id.to_string(),
        agent_version: "fault-injection".into(),
        controller_version: None,
        applied_generation: 0,
        reported_at: Some(chrono::Utc::now().to_rfc3339()),
        system: HostSystem {
            uptime_seconds: seq,
            ..HostSystem::default()
        },
        guests: Vec::new(),
        storage_targets: Vec::new(),
        backup_snapshots: Vec::new(),
        tunnel: None,
        pending_signature: Vec::new(),
    };
    serde_json::to_value(report).expect("a report serialises")
}
