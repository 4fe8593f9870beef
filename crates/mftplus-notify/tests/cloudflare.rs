//! `CloudflareFirewall` against a local fake of the Cloudflare v4 Rulesets API.
//!
//! This is the one fake in the crate's tests, and it is deliberate: Cloudflare cannot run on
//! this machine and the tests never leave 127.0.0.1. The fake keeps rules in memory, answers
//! in Cloudflare's envelope (`success`, `errors`, `result`), checks the Bearer token like the
//! real API (403, code 10000) and refuses rules without an expression, action or description,
//! so the client is held to the request shapes it would send for real.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::routing::{get, patch};
use axum::{Json, Router};
use mftplus_notify::{CloudflareFirewall, EdgeFirewall, NotifyError, Secret};
use mftplus_types::fleet::{GeoMode, GeoPolicy};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const TOKEN: &str = "cf-test-token";
const ZONE: &str = "zone0123";

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

struct FakeCloudflare {
    state: Shared,
    base_url: String,
}

impl FakeCloudflare {
    async fn start() -> FakeCloudflare {
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

    fn client(&self, token: &str) -> CloudflareFirewall {
        CloudflareFirewall::new(&self.base_url, Secret::new(token), Duration::from_secs(5)).unwrap()
    }

    fn rules(&self) -> Vec<Value> {
        let fake = self.state.lock().unwrap();
        fake.zones
            .get(ZONE)
            .map(|z| z.rules.clone())
            .unwrap_or_default()
    }

    fn rules_of(&self, tag: &str) -> Vec<Value> {
        self.rules()
            .into_iter()
            .filter(|r| {
                let d = r["description"].as_str().unwrap();
                d == tag || d.starts_with(&format!("{tag} "))
            })
            .collect()
    }

    fn mutations(&self) -> usize {
        let fake = self.state.lock().unwrap();
        fake.calls.iter().filter(|c| !c.starts_with("GET ")).count()
    }

    /// Rules the operator (or another customer) put in the zone.
    fn seed(&self, descriptions: &[&str]) {
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

fn geo(mode: GeoMode, countries: &[&str]) -> GeoPolicy {
    GeoPolicy {
        mode,
        countries: countries.iter().map(|c| c.to_string()).collect(),
    }
}

#[tokio::test]
async fn apply_creates_then_is_idempotent_then_updates_in_place() {
    let cf = FakeCloudflare::start().await;
    let fw = cf.client(TOKEN);

    // No entry point ruleset yet: the client creates it with the rule.
    fw.apply_geo(ZONE, "c1", &geo(GeoMode::Block, &["HU", "AT"]))
        .await
        .unwrap();
    let rules = cf.rules_of("mftplus:c1");
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0]["expression"], r#"(ip.src.country in {"AT" "HU"})"#);
    assert_eq!(rules[0]["action"], "block");
    let id = rules[0]["id"].clone();

    let before = cf.mutations();
    fw.apply_geo(ZONE, "c1", &geo(GeoMode::Block, &["AT", "hu"]))
        .await
        .unwrap();
    assert_eq!(cf.rules_of("mftplus:c1").len(), 1);
    assert_eq!(cf.mutations(), before, "an unchanged policy must not write");

    fw.apply_geo(ZONE, "c1", &geo(GeoMode::Allow, &["HU"]))
        .await
        .unwrap();
    let rules = cf.rules_of("mftplus:c1");
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0]["id"], id, "updated in place");
    assert_eq!(rules[0]["expression"], r#"not (ip.src.country in {"HU"})"#);
    assert_eq!(rules[0]["action"], "block");
}

#[tokio::test]
async fn apply_adds_to_an_existing_ruleset_and_mode_off_removes_only_ours() {
    let cf = FakeCloudflare::start().await;
    cf.seed(&["hand-written admin block", "mftplus:c10 geo block RU"]);
    let fw = cf.client(TOKEN);

    fw.apply_geo(ZONE, "c1", &geo(GeoMode::Block, &["CN"]))
        .await
        .unwrap();
    assert_eq!(cf.rules().len(), 3);
    assert_eq!(cf.rules_of("mftplus:c1").len(), 1);

    fw.apply_geo(ZONE, "c1", &geo(GeoMode::Off, &["CN"]))
        .await
        .unwrap();
    assert!(cf.rules_of("mftplus:c1").is_empty());
    let left: Vec<Value> = cf
        .rules()
        .iter()
        .map(|r| r["description"].clone())
        .collect();
    assert_eq!(
        left,
        vec![
            json!("hand-written admin block"),
            json!("mftplus:c10 geo block RU")
        ]
    );
}

#[tokio::test]
async fn remove_all_leaves_rules_we_did_not_tag() {
    let cf = FakeCloudflare::start().await;
    cf.seed(&[
        "hand-written admin block",
        "mftplus:c1 geo block CN",
        "mftplus:c10 geo block RU",
        "mftplus:c1 geo block KP",
    ]);
    let fw = cf.client(TOKEN);
    assert_eq!(fw.remove_all(ZONE, "c1").await.unwrap(), 2);
    assert!(cf.rules_of("mftplus:c1").is_empty());
    assert_eq!(cf.rules().len(), 2);
    assert_eq!(fw.remove_all(ZONE, "c1").await.unwrap(), 0);
    // A zone without an entry point has nothing to remove.
    assert_eq!(fw.remove_all("otherzone", "c1").await.unwrap(), 0);
}

#[tokio::test]
async fn duplicates_of_our_rule_are_collapsed() {
    let cf = FakeCloudflare::start().await;
    cf.seed(&["mftplus:c1 geo block CN", "mftplus:c1 geo block CN"]);
    let fw = cf.client(TOKEN);
    fw.apply_geo(ZONE, "c1", &geo(GeoMode::Block, &["CN"]))
        .await
        .unwrap();
    let rules = cf.rules_of("mftplus:c1");
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0]["expression"], r#"(ip.src.country in {"CN"})"#);
}

#[tokio::test]
async fn a_wrong_token_is_a_typed_auth_error() {
    let cf = FakeCloudflare::start().await;
    let fw = cf.client("not-the-token");
    let err = fw
        .apply_geo(ZONE, "c1", &geo(GeoMode::Block, &["HU"]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, NotifyError::FirewallAuth { status: 403 }),
        "{err:?}"
    );
    let err = fw.remove_all(ZONE, "c1").await.unwrap_err();
    assert!(matches!(err, NotifyError::FirewallAuth { .. }), "{err:?}");
    assert!(!format!("{fw:?}").contains("not-the-token"));
    assert!(cf.rules().is_empty());
}

#[tokio::test]
async fn bad_input_never_reaches_the_api() {
    let cf = FakeCloudflare::start().await;
    let fw = cf.client(TOKEN);
    for (customer, policy) in [
        ("c1", geo(GeoMode::Block, &["HU\" or true"])),
        ("c1", geo(GeoMode::Allow, &[])),
        ("c 1", geo(GeoMode::Block, &["HU"])),
    ] {
        let err = fw.apply_geo(ZONE, customer, &policy).await.unwrap_err();
        assert!(matches!(err, NotifyError::Invalid(_)), "{err:?}");
    }
    assert_eq!(cf.state.lock().unwrap().calls.len(), 0);
}
