//! Shared by the hub's integration tests: start a hub in-process on port 0 against a
//! `StandInCloud`, capture its `[Hub]`/`[PhoneHome]` lines, talk to it over plain HTTP.
#![allow(dead_code)]

use axum::body::Body;
use http_body_util::BodyExt;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use mftplus_hub::{Announcer, Hub, HubConfig, Timings};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const KEY: &str = "mft_dep_0123456789abcdefghijABCDEFGHIJ0123456789";

pub struct TestHub {
    pub addr: SocketAddr,
    pub lines: Arc<Mutex<Vec<String>>>,
    pub state: Arc<mftplus_hub::state::HubState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), mftplus_hub::HubError>>,
}

/// Short everything: tests never wait for production intervals.
pub fn fast_timings() -> Timings {
    Timings {
        backoff_initial: Duration::from_millis(50),
        backoff_max: Duration::from_millis(400),
        heartbeat_every: Some(Duration::from_millis(100)),
        revalidate_every: Duration::from_millis(300),
        connect_timeout: Duration::from_secs(2),
        upstream_timeout: Duration::from_secs(5),
        cloud_call_timeout: Duration::from_secs(2),
        pool_idle_timeout: Duration::from_secs(30),
        site_collect_every: Duration::from_secs(3600),
        // The production default: a cloud on a busy test machine may take a second or two.
        queue_answer_budget: Duration::from_secs(5),
    }
}

pub fn config(vars: &[(&str, &str)]) -> HubConfig {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    HubConfig::from_lookup(|name| map.get(name).cloned()).expect("config")
}

pub fn cloud_config(cloud_url: &str) -> HubConfig {
    config(&[
        ("CLOUD_API_URL", cloud_url),
        ("HUB_REGISTRATION_KEY", KEY),
        ("NODE_ENV", "production"),
    ])
}

impl TestHub {
    pub async fn start(config: HubConfig, timings: Timings) -> TestHub {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let announcer = Announcer::new(move |line| sink.lock().unwrap().push(line.to_string()));
        let hub = Hub::with_options(config, timings, announcer).expect("hub");
        let state = hub.state().clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(hub.serve(listener, async {
            let _ = stopped.await;
        }));
        TestHub {
            addr,
            lines,
            state,
            stop: Some(stop),
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    pub async fn wait_registered(&self) {
        let state = self.state.clone();
        wait_until("registration", Duration::from_secs(10), || {
            state.phone_home().registered
        })
        .await;
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let result = tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("hub stops")
            .expect("hub task");
        result.expect("hub serve ends cleanly");
    }
}

pub async fn wait_until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub type TestClient = Client<HttpConnector, Body>;

pub fn client() -> TestClient {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

pub struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

pub async fn send(request: http::Request<Body>) -> Answer {
    let response = client().request(request).await.expect("request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Answer {
        status,
        headers,
        body,
    }
}

pub async fn get(url: &str) -> Answer {
    send(http::Request::get(url).body(Body::empty()).unwrap()).await
}
