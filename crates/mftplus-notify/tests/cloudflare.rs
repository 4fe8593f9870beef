//! `CloudflareFirewall` against the local fake of the Cloudflare API in
//! `mftplus_notify::testing::cloudflare` (Cloudflare cannot run here).

use mftplus_notify::testing::cloudflare::{FakeCloudflare, TOKEN, ZONE};
use mftplus_notify::{EdgeFirewall, NotifyError};
use mftplus_types::fleet::{GeoMode, GeoPolicy};
use serde_json::{json, Value};

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
    assert_eq!(cf.calls(), 0);
}
