//! Failed-login throttling that an attacker cannot turn against the account's owner (issue 13,
//! decision 0007): wrong passwords from one address delay that address, never the right
//! password from another; refusals are 429 with `Retry-After` and audited with their kind.
//! Client addresses vary through `X-Forwarded-For` from 127.0.0.1, a trusted proxy here.

mod common;
mod fleet_support;

use common::*;
use fleet_support::*;
use mftplus_cloud::testing::{TestCloud, TestOptions};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const ATTACKER: &str = "203.0.113.66";
const OWNER: &str = "198.51.100.7";
const WRONG: &str = "not the password at all";

async fn spawn(login_yaml: &str) -> TestCloud {
    TestCloud::spawn_with(TestOptions {
        config_yaml: format!(
            "server:\n  trusted_proxies: [\"127.0.0.1\"]\nrate_limit:\n  \
             per_credential_per_minute: 100000\n  per_address_per_minute: 100000\n\
             auth:\n  login:\n{login_yaml}"
        ),
        ..TestOptions::default()
    })
    .await
}

/// Requests as if from chosen client addresses, through the trusted proxy, on one connection
/// pool. The futures own what they need, so they can run as tasks.
#[derive(Clone)]
struct Peers {
    http: reqwest::Client,
    url: String,
}

impl Peers {
    fn new(cloud: &TestCloud) -> Peers {
        Peers {
            http: reqwest::Client::new(),
            url: cloud.url.clone(),
        }
    }

    fn send(
        &self,
        from: &str,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> impl std::future::Future<Output = Reply> + Send + 'static {
        let mut request = self
            .http
            .request(method.parse().unwrap(), format!("{}{}", self.url, path))
            .header("x-forwarded-for", from);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            let response = request.send().await.expect("request sent");
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let text = response.text().await.unwrap_or_default();
            let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
            Reply {
                status,
                body,
                headers,
            }
        }
    }

    fn login(
        &self,
        from: &str,
        email: &str,
        password: &str,
    ) -> impl std::future::Future<Output = Reply> + Send + 'static {
        let body = json!({"email": email, "password": password});
        self.send(from, "POST", "/api/v1/auth/login", &[], Some(body))
    }
}

fn retry_after(reply: &Reply) -> u64 {
    reply
        .headers
        .get("retry-after")
        .expect("a 429 carries Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// `n` attempts made by `attempt`, eight at a time; returns how many were password checks (401)
/// and asserts that every other one was refused with 429 `rate_limited` and a Retry-After.
async fn hammer<F, Fut>(n: usize, attempt: F) -> usize
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Reply> + Send + 'static,
{
    let mut checked = 0;
    let mut done = 0;
    while done < n {
        let batch = (n - done).min(8);
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..batch {
            set.spawn(attempt());
        }
        while let Some(reply) = set.join_next().await {
            let reply = reply.unwrap();
            match reply.status {
                401 => {
                    assert_eq!(reply.code(), "invalid_credentials");
                    checked += 1;
                }
                429 => {
                    assert_eq!(reply.code(), "rate_limited");
                    assert!(retry_after(&reply) >= 1);
                }
                other => panic!("unexpected {other}: {:?}", reply.body),
            }
        }
        done += batch;
    }
    checked
}

/// Every audit entry, paging through the log.
async fn audit_entries(cloud: &TestCloud) -> Vec<Value> {
    let mut entries = Vec::new();
    let mut after = 0;
    loop {
        let page = call(
            cloud,
            &admin(cloud),
            "GET",
            &format!("/api/v1/audit?limit=1000&after_seq={after}"),
            None,
        )
        .await;
        assert_eq!(page.status, 200, "{:?}", page.body);
        entries.extend(page.body["entries"].as_array().unwrap().iter().cloned());
        match page.body["next_after_seq"].as_i64() {
            Some(next) => after = next,
            None => return entries,
        }
    }
}

fn events<'a>(entries: &'a [Value], event: &str, ip: &str) -> Vec<&'a Value> {
    entries
        .iter()
        .filter(|e| e["event"] == event && e["client_ip"] == ip)
        .collect()
}

#[tokio::test]
async fn a_thousand_wrong_passwords_do_not_lock_the_owner_out() {
    let cloud = spawn("    max_failures: 5\n").await;
    let peers = Peers::new(&cloud);
    let email = cloud.admin_email.clone();
    assert_eq!(email, "admin@example.com");

    // The first five wrong passwords are checked; then the attacker's address waits.
    for _ in 0..5 {
        let reply = peers.login(ATTACKER, &email, WRONG).await;
        assert_eq!((reply.status, reply.code()), (401, "invalid_credentials"));
    }
    let refused = peers.login(ATTACKER, &email, WRONG).await;
    assert_eq!((refused.status, refused.code()), (429, "rate_limited"));
    assert!((1..=2).contains(&retry_after(&refused)), "first delay 1 s");
    // Even the right password from the attacker's address is refused unchecked meanwhile.
    let right_but_throttled = peers.login(ATTACKER, &email, &cloud.admin_password).await;
    assert_eq!(right_but_throttled.status, 429);

    // 994 more: refused without an Argon2 check, except one each time the growing delay ends.
    let extra_checks = hammer(994, || peers.login(ATTACKER, &email, WRONG)).await;
    assert!(
        extra_checks <= 12,
        "{extra_checks} more password checks: the delay does not grow"
    );

    // The owner, from another address, signs in at once.
    let started = Instant::now();
    let owner = peers.login(OWNER, &email, &cloud.admin_password).await;
    let took = started.elapsed();
    assert_eq!(owner.status, 200, "{:?}", owner.body);
    assert!(owner.body["access_token"].is_string());
    assert!(took < Duration::from_secs(1), "sign-in took {took:?}");

    let entries = audit_entries(&cloud).await;
    let failed = events(&entries, "login_failed", ATTACKER);
    assert_eq!(failed.len(), 5 + extra_checks, "refusals are not failures");
    let throttled = events(&entries, "login_throttled", ATTACKER);
    assert_eq!(throttled.len(), 1000 + 1 - 5 - extra_checks);
    for entry in &throttled {
        assert_eq!(entry["details"]["throttle"], "account_address", "{entry}");
        assert!(entry["details"]["retry_after"].as_u64().unwrap() >= 1);
        assert_eq!(entry["outcome"], "denied");
    }
    assert_eq!(events(&entries, "login_succeeded", OWNER).len(), 1);
}

#[tokio::test]
async fn an_address_guessing_many_accounts_waits_and_a_busy_account_delays_only_strangers() {
    let cloud = spawn("    per_address_failures: 4\n    per_account_failures: 6\n").await;
    let peers = Peers::new(&cloud);
    let email = cloud.admin_email.clone();
    // The owner signs in from home once: home is now known for this account.
    let home = peers.login(OWNER, &email, &cloud.admin_password).await;
    assert_eq!(home.status, 200, "{:?}", home.body);

    // One address trying four different accounts is held back on the fifth, any account.
    let sprayer = "203.0.113.9";
    for i in 0..4 {
        let reply = peers
            .login(sprayer, &format!("u{i}@example.com"), WRONG)
            .await;
        assert_eq!(reply.status, 401);
    }
    let refused = peers.login(sprayer, "u9@example.com", WRONG).await;
    assert_eq!((refused.status, refused.code()), (429, "rate_limited"));

    // Six addresses, one wrong password each, for the admin: past the account threshold an
    // address new to the account waits a short while; the owner's known address does not.
    for i in 0..6 {
        let reply = peers.login(&format!("192.0.2.{i}"), &email, WRONG).await;
        assert_eq!(reply.status, 401);
    }
    let stranger = peers.login("192.0.2.200", &email, WRONG).await;
    assert_eq!((stranger.status, stranger.code()), (429, "rate_limited"));
    assert!(retry_after(&stranger) <= 31, "the account delay is short");
    let owner = peers.login(OWNER, &email, &cloud.admin_password).await;
    assert_eq!(owner.status, 200, "known address exempt: {:?}", owner.body);
    // A delay, not a lock: once it has passed, the new address signs in.
    cloud.clock.advance_secs(retry_after(&stranger) as i64);
    let later = peers
        .login("192.0.2.200", &email, &cloud.admin_password)
        .await;
    assert_eq!(later.status, 200, "{:?}", later.body);

    let entries = audit_entries(&cloud).await;
    let kind = |ip: &str| {
        events(&entries, "login_throttled", ip)
            .iter()
            .map(|e| e["details"]["throttle"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(kind(sprayer), ["address"]);
    assert_eq!(kind("192.0.2.200"), ["account"]);
}

#[tokio::test]
async fn wrong_retrieval_passwords_do_not_lock_the_customer_out() {
    let cloud = spawn("    max_failures: 5\n").await;
    let peers = Peers::new(&cloud);
    let customer_id = customer(&cloud, json!({})).await;
    let path = format!("/api/v1/config/{customer_id}");
    let fetch = |from: &str, password: &str| {
        peers.send(
            from,
            "GET",
            &path,
            &[("x-retrieval-password", password)],
            None,
        )
    };

    for _ in 0..5 {
        assert_eq!(fetch(ATTACKER, WRONG).await.status, 401);
    }
    let refused = fetch(ATTACKER, WRONG).await;
    assert_eq!((refused.status, refused.code()), (429, "rate_limited"));
    assert!(retry_after(&refused) >= 1);
    let extra_checks = hammer(200, || fetch(ATTACKER, WRONG)).await;
    assert!(extra_checks <= 10, "{extra_checks} more password checks");

    let started = Instant::now();
    let owner = fetch(OWNER, RETRIEVAL_PASSWORD).await;
    let took = started.elapsed();
    assert_eq!(owner.status, 200, "{:?}", owner.body);
    assert!(took < Duration::from_secs(1), "took {took:?}");

    let entries = audit_entries(&cloud).await;
    let throttled = events(&entries, "retrieval_password_throttled", ATTACKER);
    assert_eq!(throttled.len(), 201 - extra_checks);
    for entry in throttled {
        assert_eq!(entry["details"]["throttle"], "account_address", "{entry}");
        assert_eq!(entry["details"]["purpose"], "config");
    }
    assert_eq!(
        events(&entries, "retrieval_password_failed", ATTACKER).len(),
        5 + extra_checks
    );
}
