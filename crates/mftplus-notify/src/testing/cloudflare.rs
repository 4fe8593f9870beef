//! A local fake of the Cloudflare v4 Rulesets API (feature `testing`).
//!
//! The one fake among the tests, and deliberate: Cloudflare cannot run on this machine and the
//! tests never leave 127.0.0.1. It keeps rules in memory, answers in Cloudflare's envelope
//! (`success`, `errors`, `result`), checks the Bearer token like the real API (403, code 10000)
//! and refuses rules without an expression, action or description, so the client is held to
//! the request shapes it would send for real.

use crate::CloudflareFirewall;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::routing::{get, patch};
use axum::{Json, Router};
use mftplus_base::Secret;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const TOKEN: &str = "cf-test-token";
pub const ZONE: &str = "zone0123";

#[derive(Default)]
struct Zone {
    ruleset_id: String,
    rules: Vec<Value>,
}

#[derive(Default)]
struct Fake {
    zones: HashMap<String, Zone>,
    next_id: u32,
    /// Every authorised call, as "METHOD path".
    calls: Vec<String>,
}

type Shared = Arc<Mutex<Fake>>;
type Reply = (StatusCode, Json<Value>);

fn ok(result: Value) -> Reply {
    (
        StatusCode::OK,
        Json(json!({"success": true, "errors": [], "messages": [], "result": result})),
    )
}

fn fail(status: StatusCode, code: u32, message: &str) -> Reply {
    (
        status,
        Json(
            json!({"success": false, "errors": [{"code": code, "message": message}],
                    "messages": [], "result": null}),
        ),
    )
}

fn ruleset_json(zone: &Zone) -> Value {
    json!({"id": zone.ruleset_id, "name": "default", "kind": "zone",
           "phase": "http_request_firewall_custom", "rules": zone.rules})
}

/// Checks the token and records the call; `Err` is the reply to send instead.
fn authorise(fake: &Shared, headers: &HeaderMap, method: Method, path: &str) -> Result<(), Reply> {
    let expected = format!("Bearer {TOKEN}");
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return Err(fail(StatusCode::FORBIDDEN, 10000, "Authentication error"));
    }
    fake.lock().unwrap().calls.push(format!("{method} {path}"));
    Ok(())
}

/// A rule as the API stores it: the client's fields plus an id, or 400 if it is incomplete.
fn new_rule(fake: &mut Fake, body: &Value) -> Result<Value, Reply> {
    for field in ["expression", "action", "description"] {
        if !body.get(field).is_some_and(Value::is_string) {
            return Err(fail(StatusCode::BAD_REQUEST, 20021, "invalid rule"));
        }
    }
    fake.next_id += 1;
    let mut rule = body.clone();
    rule["id"] = json!(format!("rule{:04}", fake.next_id));
    rule["enabled"] = json!(body.get("enabled").and_then(Value::as_bool).unwrap_or(true));
    rule["version"] = json!("1");
    Ok(rule)
}

async fn get_entry(State(f): State<Shared>, Path(zone): Path<String>, h: HeaderMap) -> Reply {
    if let Err(r) = authorise(&f, &h, Method::GET, &format!("{zone}/entrypoint")) {
        return r;
    }
    match f.lock().unwrap().zones.get(&zone) {
        Some(z) => ok(ruleset_json(z)),
        None => fail(
            StatusCode::NOT_FOUND,
            10003,
            "Could not find entrypoint ruleset",
        ),
    }
}

async fn put_entry(
    State(f): State<Shared>,
    Path(zone): Path<String>,
    h: HeaderMap,
    Json(body): Json<Value>,
) -> Reply {
    if let Err(r) = authorise(&f, &h, Method::PUT, &format!("{zone}/entrypoint")) {
        return r;
    }
    let mut fake = f.lock().unwrap();
    let mut rules = Vec::new();
    for rule in body["rules"].as_array().cloned().unwrap_or_default() {
        match new_rule(&mut fake, &rule) {
            Ok(r) => rules.push(r),
            Err(e) => return e,
        }
    }
    let zone = fake.zones.entry(zone).or_default();
    zone.ruleset_id = "rs-entry".into();
    zone.rules = rules;
    ok(ruleset_json(zone))
}

async fn post_rule(
    State(f): State<Shared>,
    Path((zone, rs)): Path<(String, String)>,
    h: HeaderMap,
    Json(body): Json<Value>,
) -> Reply {
    if let Err(r) = authorise(&f, &h, Method::POST, &format!("{zone}/{rs}/rules")) {
        return r;
    }
    let mut fake = f.lock().unwrap();
    let rule = match new_rule(&mut fake, &body) {
        Ok(r) => r,
        Err(e) => return e,
    };
    match fake.zones.get_mut(&zone).filter(|z| z.ruleset_id == rs) {
        Some(z) => {
            z.rules.push(rule);
            ok(ruleset_json(z))
        }
        None => fail(StatusCode::NOT_FOUND, 10003, "ruleset not found"),
    }
}

async fn patch_rule(
    State(f): State<Shared>,
    Path((zone, rs, id)): Path<(String, String, String)>,
    h: HeaderMap,
    Json(body): Json<Value>,
) -> Reply {
    if let Err(r) = authorise(&f, &h, Method::PATCH, &format!("{zone}/{rs}/rules/{id}")) {
        return r;
    }
    let mut fake = f.lock().unwrap();
    let Some(z) = fake.zones.get_mut(&zone).filter(|z| z.ruleset_id == rs) else {
        return fail(StatusCode::NOT_FOUND, 10003, "ruleset not found");
    };
    let Some(rule) = z.rules.iter_mut().find(|r| r["id"] == id.as_str()) else {
        return fail(StatusCode::NOT_FOUND, 10003, "rule not found");
    };
    for (k, v) in body.as_object().cloned().unwrap_or_default() {
        if k != "id" {
            rule[k] = v;
        }
    }
    rule["version"] = json!("2");
    ok(ruleset_json(z))
}

async fn delete_rule(
    State(f): State<Shared>,
    Path((zone, rs, id)): Path<(String, String, String)>,
    h: HeaderMap,
) -> Reply {
    if let Err(r) = authorise(&f, &h, Method::DELETE, &format!("{zone}/{rs}/rules/{id}")) {
        return r;
    }
    let mut fake = f.lock().unwrap();
    let Some(z) = fake.zones.get_mut(&zone).filter(|z| z.ruleset_id == rs) else {
        return fail(StatusCode::NOT_FOUND, 10003, "ruleset not found");
    };
    let before = z.rules.len();
    z.rules.retain(|r| r["id"] != id.as_str());
    if z.rules.len() == before {
        return fail(StatusCode::NOT_FOUND, 10003, "rule not found");
    }
    ok(ruleset_json(z))
}

pub struct FakeCloudflare {
    state: Shared,
    pub base_url: String,
}

impl FakeCloudflare {
    pub async fn start() -> FakeCloudflare {
        let state = Shared::default();
        let entry =
            "/client/v4/zones/{zone}/rulesets/phases/http_request_firewall_custom/entrypoint";
        let app = Router::new()
            .route(entry, get(get_entry).put(put_entry))
            .route(
                "/client/v4/zones/{zone}/rulesets/{rs}/rules",
                axum::routing::post(post_rule),
            )
            .route(
                "/client/v4/zones/{zone}/rulesets/{rs}/rules/{id}",
                patch(patch_rule).delete(delete_rule),
            )
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeCloudflare {
            state,
            base_url: format!("http://{addr}/client/v4"),
        }
    }

    pub fn client(&self, token: &str) -> CloudflareFirewall {
        CloudflareFirewall::new(&self.base_url, Secret::new(token), Duration::from_secs(5)).unwrap()
    }

    pub fn rules(&self) -> Vec<Value> {
        let fake = self.state.lock().unwrap();
        fake.zones
            .get(ZONE)
            .map(|z| z.rules.clone())
            .unwrap_or_default()
    }

    pub fn rules_of(&self, tag: &str) -> Vec<Value> {
        self.rules()
            .into_iter()
            .filter(|r| {
                let d = r["description"].as_str().unwrap();
                d == tag || d.starts_with(&format!("{tag} "))
            })
            .collect()
    }

    /// How many authorised calls reached the fake.
    pub fn calls(&self) -> usize {
        self.state.lock().unwrap().calls.len()
    }

    pub fn mutations(&self) -> usize {
        let fake = self.state.lock().unwrap();
        fake.calls.iter().filter(|c| !c.starts_with("GET ")).count()
    }

    /// Rules the operator (or another customer) put in the zone.
    pub fn seed(&self, descriptions: &[&str]) {
        let mut fake = self.state.lock().unwrap();
        let rules: Vec<Value> = descriptions
            .iter()
            .enumerate()
            .map(|(i, d)| {
                json!({"id": format!("seed{i}"), "description": d, "enabled": true,
                       "expression": "(http.request.uri.path eq \"/admin\")", "action": "block"})
            })
            .collect();
        fake.zones.insert(
            ZONE.into(),
            Zone {
                ruleset_id: "rs-entry".into(),
                rules,
            },
        );
    }
}
