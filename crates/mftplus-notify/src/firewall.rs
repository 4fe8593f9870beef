//! Per-customer geo rules at the edge. The Cloudflare client speaks the v4 Rulesets API: the
//! zone's `http_request_firewall_custom` phase entry point holds the rules, and this crate owns
//! exactly the rules whose description carries its tag, so rules an operator wrote by hand are
//! never touched.

use crate::NotifyError;
use async_trait::async_trait;
use mftplus_base::Secret;
use mftplus_types::fleet::{GeoMode, GeoPolicy};
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::time::Duration;

/// Rules managed here are described `mftplus:<customer_id> …`.
pub const RULE_TAG_PREFIX: &str = "mftplus:";
const PHASE: &str = "http_request_firewall_custom";

/// Reconciles a customer's geo policy into an edge firewall.
#[async_trait]
pub trait EdgeFirewall: Send + Sync {
    /// Makes the zone hold exactly the rule `policy` needs for the customer (none for `off`).
    /// Idempotent: applying the same policy twice changes nothing the second time.
    async fn apply_geo(
        &self,
        zone_id: &str,
        customer_id: &str,
        policy: &GeoPolicy,
    ) -> Result<(), NotifyError>;
    /// Deletes every rule managed for the customer (the self-lockout override); returns how
    /// many there were.
    async fn remove_all(&self, zone_id: &str, customer_id: &str) -> Result<u32, NotifyError>;
}

/// [`EdgeFirewall`] over the Cloudflare API with a Bearer API token.
#[derive(Debug, Clone)]
pub struct CloudflareFirewall {
    base_url: String,
    api_token: Secret,
    client: reqwest::Client,
}

#[derive(Debug, Clone, Deserialize)]
struct Ruleset {
    id: String,
    #[serde(default)]
    rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Rule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    expression: String,
    #[serde(default)]
    action: String,
    #[serde(default = "enabled_default")]
    enabled: bool,
}

fn enabled_default() -> bool {
    true
}

#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(default)]
    success: bool,
    #[serde(default)]
    errors: Vec<ApiMessage>,
    #[serde(default)]
    result: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct ApiMessage {
    #[serde(default)]
    code: i64,
    #[serde(default)]
    message: String,
}

fn tag(customer_id: &str) -> Result<String, NotifyError> {
    // The id ends the tag at a space; an id with spaces or quotes could match another's rules.
    let ok = !customer_id.is_empty()
        && customer_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !ok {
        return Err(NotifyError::Invalid(format!(
            "customer id {customer_id:?} cannot tag a firewall rule"
        )));
    }
    Ok(format!("{RULE_TAG_PREFIX}{customer_id}"))
}

fn is_ours(rule: &Rule, tag: &str) -> bool {
    rule.description == tag
        || rule
            .description
            .strip_prefix(tag)
            .is_some_and(|rest| rest.starts_with(' '))
}

/// The rule `policy` needs, or `None` when it needs none. Country codes are validated before
/// they go into an expression: they are the only outside input in it.
fn desired_rule(tag: &str, policy: &GeoPolicy) -> Result<Option<Rule>, NotifyError> {
    let mut countries = Vec::with_capacity(policy.countries.len());
    for c in &policy.countries {
        let c = c.trim().to_ascii_uppercase();
        if c.len() != 2 || !c.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(NotifyError::Invalid(format!("not a country code: {c:?}")));
        }
        countries.push(c);
    }
    // Sorted and de-duplicated so the same policy always yields the same expression.
    countries.sort();
    countries.dedup();
    let set = countries
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(" ");
    let (expression, word) = match policy.mode {
        GeoMode::Off => return Ok(None),
        GeoMode::Block if countries.is_empty() => return Ok(None),
        // An allow list of nothing would block every visitor, the customer included.
        GeoMode::Allow if countries.is_empty() => {
            return Err(NotifyError::Invalid(
                "an allow-mode geo policy needs at least one country".into(),
            ))
        }
        GeoMode::Block => (format!("(ip.src.country in {{{set}}})"), "block"),
        GeoMode::Allow => (format!("not (ip.src.country in {{{set}}})"), "allow"),
    };
    Ok(Some(Rule {
        id: None,
        description: format!("{tag} geo {word} {}", countries.join(" ")),
        expression,
        action: "block".into(),
        enabled: true,
    }))
}

impl CloudflareFirewall {
    /// `base_url` is the API root including `/client/v4`; `timeout` bounds each request.
    pub fn new(
        base_url: impl Into<String>,
        api_token: Secret,
        timeout: Duration,
    ) -> Result<CloudflareFirewall, NotifyError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(CloudflareFirewall {
            base_url: base_url.into().trim_end_matches('/').to_string(),
            api_token,
            client,
        })
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<Option<serde_json::Value>, NotifyError> {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base_url))
            .bearer_auth(self.api_token.expose());
        if let Some(body) = body {
            req = req.json(&body);
        }
        let response = req.send().await?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(NotifyError::FirewallAuth {
                status: status.as_u16(),
            });
        }
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let text = response.text().await?;
        let envelope: Envelope = serde_json::from_str(&text).map_err(|e| {
            NotifyError::Protocol(format!("edge firewall answered {status} without JSON: {e}"))
        })?;
        if !status.is_success() || !envelope.success {
            let message = envelope
                .errors
                .iter()
                .map(|e| format!("{} {}", e.code, e.message))
                .collect::<Vec<_>>()
                .join("; ");
            return Err(NotifyError::FirewallApi {
                status: status.as_u16(),
                message,
            });
        }
        Ok(Some(envelope.result.unwrap_or(serde_json::Value::Null)))
    }

    fn entrypoint_path(zone_id: &str) -> Result<String, NotifyError> {
        Ok(format!(
            "/zones/{}/rulesets/phases/{PHASE}/entrypoint",
            path_segment(zone_id)?
        ))
    }

    /// The zone's entry point ruleset, `None` when the zone has none yet.
    async fn entrypoint(&self, zone_id: &str) -> Result<Option<Ruleset>, NotifyError> {
        let path = Self::entrypoint_path(zone_id)?;
        match self.call(Method::GET, &path, None).await? {
            None => Ok(None),
            Some(v) => serde_json::from_value(v)
                .map(Some)
                .map_err(|e| NotifyError::Protocol(format!("ruleset: {e}"))),
        }
    }

    async fn delete_rule(
        &self,
        zone_id: &str,
        ruleset: &str,
        rule: &str,
    ) -> Result<(), NotifyError> {
        let path = format!(
            "/zones/{}/rulesets/{}/rules/{}",
            path_segment(zone_id)?,
            path_segment(ruleset)?,
            path_segment(rule)?
        );
        // Already gone (deleted concurrently) is what we wanted.
        self.call(Method::DELETE, &path, None).await.map(|_| ())
    }

    async fn delete_ours(
        &self,
        zone_id: &str,
        ruleset: &Ruleset,
        ours: &[&Rule],
    ) -> Result<u32, NotifyError> {
        let mut n = 0;
        for rule in ours {
            if let Some(id) = &rule.id {
                self.delete_rule(zone_id, &ruleset.id, id).await?;
                n += 1;
            }
        }
        Ok(n)
    }
}

/// IDs go into URL paths; anything but a plain token is refused rather than escaped.
fn path_segment(id: &str) -> Result<&str, NotifyError> {
    if !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        Ok(id)
    } else {
        Err(NotifyError::Invalid(format!("not an API id: {id:?}")))
    }
}

#[async_trait]
impl EdgeFirewall for CloudflareFirewall {
    async fn apply_geo(
        &self,
        zone_id: &str,
        customer_id: &str,
        policy: &GeoPolicy,
    ) -> Result<(), NotifyError> {
        let tag = tag(customer_id)?;
        let desired = desired_rule(&tag, policy)?;
        let Some(ruleset) = self.entrypoint(zone_id).await? else {
            let Some(rule) = desired else {
                return Ok(());
            };
            // No entry point yet: creating it with our rule is the only way in.
            let path = Self::entrypoint_path(zone_id)?;
            return match self
                .call(Method::PUT, &path, Some(json!({ "rules": [rule] })))
                .await?
            {
                Some(_) => Ok(()),
                None => Err(NotifyError::FirewallApi {
                    status: 404,
                    message: format!("zone {zone_id} not found"),
                }),
            };
        };
        let ours: Vec<&Rule> = ruleset.rules.iter().filter(|r| is_ours(r, &tag)).collect();
        let Some(desired) = desired else {
            return self.delete_ours(zone_id, &ruleset, &ours).await.map(|_| ());
        };
        let body = serde_json::to_value(&desired)
            .map_err(|e| NotifyError::Invalid(format!("rule: {e}")))?;
        let base = format!(
            "/zones/{}/rulesets/{}/rules",
            path_segment(zone_id)?,
            path_segment(&ruleset.id)?
        );
        match ours.split_first() {
            None => {
                self.call(Method::POST, &base, Some(body)).await?;
            }
            Some((first, extra)) => {
                let same = first.expression == desired.expression
                    && first.action == desired.action
                    && first.description == desired.description
                    && first.enabled;
                if !same {
                    let id = path_segment(first.id.as_deref().unwrap_or_default())?;
                    self.call(Method::PATCH, &format!("{base}/{id}"), Some(body))
                        .await?;
                }
                // Duplicates (a crash between create and record, a concurrent apply) go.
                self.delete_ours(zone_id, &ruleset, extra).await?;
            }
        }
        Ok(())
    }

    async fn remove_all(&self, zone_id: &str, customer_id: &str) -> Result<u32, NotifyError> {
        let tag = tag(customer_id)?;
        let Some(ruleset) = self.entrypoint(zone_id).await? else {
            return Ok(0);
        };
        let ours: Vec<&Rule> = ruleset.rules.iter().filter(|r| is_ours(r, &tag)).collect();
        self.delete_ours(zone_id, &ruleset, &ours).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(mode: GeoMode, c: &[&str]) -> GeoPolicy {
        GeoPolicy {
            mode,
            countries: c.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn expressions() {
        let r = desired_rule("mftplus:c1", &policy(GeoMode::Block, &["at", "HU", "AT"]))
            .unwrap()
            .unwrap();
        assert_eq!(r.expression, r#"(ip.src.country in {"AT" "HU"})"#);
        assert_eq!(r.action, "block");
        assert_eq!(r.description, "mftplus:c1 geo block AT HU");
        let r = desired_rule("mftplus:c1", &policy(GeoMode::Allow, &["HU"]))
            .unwrap()
            .unwrap();
        assert_eq!(r.expression, r#"not (ip.src.country in {"HU"})"#);
        assert_eq!(r.action, "block");
        assert!(desired_rule("t", &policy(GeoMode::Off, &["HU"]))
            .unwrap()
            .is_none());
        assert!(desired_rule("t", &policy(GeoMode::Block, &[]))
            .unwrap()
            .is_none());
        assert!(desired_rule("t", &policy(GeoMode::Allow, &[])).is_err());
        for bad in ["H", "HUN", "H\"", "1A", "é"] {
            assert!(
                desired_rule("t", &policy(GeoMode::Block, &[bad])).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn tags_do_not_overlap() {
        let rule = |d: &str| Rule {
            id: None,
            description: d.into(),
            expression: String::new(),
            action: String::new(),
            enabled: true,
        };
        assert!(is_ours(&rule("mftplus:c1 geo block HU"), "mftplus:c1"));
        assert!(is_ours(&rule("mftplus:c1"), "mftplus:c1"));
        assert!(!is_ours(&rule("mftplus:c10 geo block HU"), "mftplus:c1"));
        assert!(!is_ours(&rule("hand-written"), "mftplus:c1"));
        assert!(tag("c 1").is_err() && tag("").is_err() && tag("c\"").is_err());
    }
}
