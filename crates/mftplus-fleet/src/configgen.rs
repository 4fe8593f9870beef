//! The guest controller's config: a template deep-merged with the customer's overrides, with
//! the keys that must stay in the cloud removed before anything is emitted.

use serde_json::{json, Map, Value};

/// Keys removed at any depth before a config leaves the cloud. `cloud_only` removes the whole
/// subtree under it, which is where cloud-side settings of a customer belong.
pub const CLOUD_ONLY_KEYS: [&str; 4] = [
    "cf_api_token",
    "cloudflare_api_token",
    "cloudflare_zone_id",
    "cloud_only",
];

/// How often a controller reports when the template does not say (seconds).
pub const DEFAULT_REPORT_INTERVAL_SECONDS: u64 = 300;

/// Deep merge: where both sides are objects they merge key by key (recursively); anywhere else
/// the override replaces the template's value (arrays are replaced, not concatenated). A
/// `null` override replaces too, so a customer can switch a template value off.
pub fn generate_config(template: &Value, overrides: &Value) -> Value {
    match (template, overrides) {
        (Value::Object(base), Value::Object(over)) => {
            let mut merged: Map<String, Value> = base.clone();
            for (key, value) in over {
                let next = match base.get(key) {
                    Some(existing) => generate_config(existing, value),
                    None => value.clone(),
                };
                merged.insert(key.clone(), next);
            }
            Value::Object(merged)
        }
        (_, over) => over.clone(),
    }
}

/// Removes every key in [`CLOUD_ONLY_KEYS`] at any depth, inside objects and arrays alike.
pub fn strip_cloud_only(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|key, _| !CLOUD_ONLY_KEYS.contains(&key.as_str()));
            map.values_mut().for_each(strip_cloud_only);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_cloud_only),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
    }
}

/// What the cloud serves at `GET /config/{customer_id}`: [`generate_config`] then
/// [`strip_cloud_only`], so a caller cannot forget the second step.
pub fn controller_config(template: &Value, overrides: &Value) -> Value {
    let mut config = generate_config(template, overrides);
    strip_cloud_only(&mut config);
    config
}

/// The config as a YAML document.
pub fn render_yaml(value: &Value) -> String {
    // Serialising a JSON value to YAML has no failure mode in practice; should it ever fail,
    // JSON text is itself a valid YAML document, so the output stays parseable.
    serde_yaml::to_string(value).unwrap_or_else(|_| value.to_string())
}

/// The built-in controller template, used when `fleet.controller_template_file` is not set.
pub fn default_template(customer_id: &str, domain: Option<&str>, cloud_url: &str) -> Value {
    let hub_url = cloud_url.trim_end_matches('/');
    json!({
        "customer_id": customer_id,
        "domain": domain,
        "locale": "hu",
        "timezone": "Europe/Budapest",
        "hub": {
            "url": hub_url,
            "report_path": "/api/v1/report",
            "report_interval_seconds": DEFAULT_REPORT_INTERVAL_SECONDS,
            "request_timeout_seconds": 30,
        },
        "controller": {
            "listen": "127.0.0.1:8088",
            "data_dir": "/var/lib/mftplus-controller",
            "log_level": "info",
        },
        "geo": {
            "mode": "off",
            "countries": [],
        },
        "updates": {
            "channel": "stable",
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_merge_recursively_and_everything_else_replaces() {
        let template = json!({
            "hub": {"url": "https://a", "report_interval_seconds": 300},
            "list": [1, 2],
            "scalar": "t",
            "obj_to_scalar": {"x": 1},
            "keep": true,
        });
        let overrides = json!({
            "hub": {"report_interval_seconds": 60, "extra": {"deep": 1}},
            "list": [3],
            "scalar": {"now": "object"},
            "obj_to_scalar": 5,
            "new": null,
        });
        assert_eq!(
            generate_config(&template, &overrides),
            json!({
                "hub": {"url": "https://a", "report_interval_seconds": 60, "extra": {"deep": 1}},
                "list": [3],
                "scalar": {"now": "object"},
                "obj_to_scalar": 5,
                "keep": true,
                "new": null,
            })
        );
        // A non-object override replaces the whole template.
        assert_eq!(generate_config(&template, &json!(7)), json!(7));
        // Merging nothing changes nothing.
        assert_eq!(generate_config(&template, &json!({})), template);
    }

    #[test]
    fn cloud_only_keys_vanish_at_any_depth() {
        let mut value = json!({
            "cf_api_token": "top-secret-1",
            "a": {"cloudflare_api_token": "top-secret-2", "b": [{"cloudflare_zone_id": "z"}]},
            "cloud_only": {"anything": "top-secret-3"},
            "kept": {"cf_api_token_hint": "fine"},
        });
        strip_cloud_only(&mut value);
        assert_eq!(
            value,
            json!({"a": {"b": [{}]}, "kept": {"cf_api_token_hint": "fine"}})
        );
    }

    #[test]
    fn a_token_nested_anywhere_never_reaches_the_yaml() {
        let secret = "cfut_SUPERSECRET_0123456789";
        let template = default_template("acme", Some("acme.hu"), "https://cloud.example/");
        let overrides = json!({
            "cf_api_token": secret,
            "hub": {"auth": {"cloudflare_api_token": secret}},
            "sites": [{"name": "www", "dns": {"cf_api_token": secret}}],
            "cloud_only": {"note": secret},
            "cloudflare_zone_id": secret,
        });
        let yaml = render_yaml(&controller_config(&template, &overrides));
        assert!(!yaml.contains(secret), "{yaml}");
        for key in CLOUD_ONLY_KEYS {
            assert!(!yaml.contains(key), "{key} in {yaml}");
        }
        // The rest survives and is valid YAML that reads back.
        let back: Value = serde_yaml::from_str(&yaml).unwrap();
        assert_eq!(back["hub"]["url"], "https://cloud.example");
        assert_eq!(back["sites"][0]["name"], "www");
        assert_eq!(back["customer_id"], "acme");
    }

    #[test]
    fn default_template_carries_the_customer() {
        let t = default_template("acme", None, "https://cloud.example");
        assert_eq!(t["customer_id"], "acme");
        assert_eq!(t["domain"], Value::Null);
        assert_eq!(t["hub"]["report_interval_seconds"], 300);
        assert_eq!(t["locale"], "hu");
        let t = default_template("acme", Some("acme.hu"), "https://cloud.example");
        assert_eq!(t["domain"], "acme.hu");
    }
}
