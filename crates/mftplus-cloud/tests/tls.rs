//! The cloud over TLS: with `tls.enabled` the API answers HTTPS only, with the certificate
//! files named in the config; the security guide's `tls:` block is accepted as written; and
//! each invalid setting is refused naming its key.

use mftplus_cloud::config::load_from;
use mftplus_cloud::testing::{TestCloud, TestOptions};
use mftplus_pki::testing::{ca, leaf};
use std::collections::BTreeMap;
use std::path::Path;

/// The `tls:` block of seed 001 ("Server Certificate Configuration"), read from the seed, with
/// its `/etc/mftplus/certs` moved to `dir` and `client_auth.mode` as `mode`.
fn seed_tls_block(dir: &Path, mode: &str) -> String {
    let seed = std::fs::read_dir(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/seeds"
    ))
    .ok()
    .and_then(|entries| {
        entries
            .filter_map(Result::ok)
            .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
            .find(|text| text.contains("requireAndVerifyClientCert"))
    });
    // The seed flattens its YAML's indentation; this is the block as the seed means it.
    let block = "tls:\n  enabled: true\n  min_version: TLSv1.3\n  max_version: TLSv1.3\n  certificate:\n    cert: /etc/mftplus/certs/server.crt\n    key: /etc/mftplus/certs/server.key\n    ca: /etc/mftplus/certs/ca.crt\n  client_auth:\n    mode: requireAndVerifyClientCert\n    ca_files:\n      - /etc/mftplus/certs/ca.crt\n  cipher_suites:\n    - TLS_AES_128_GCM_SHA256\n    - TLS_AES_256_GCM_SHA384\n    - TLS_CHACHA20_POLY1305_SHA256\n  curve_preferences:\n    - X25519\n    - secp256r1\n    - secp384r1\n";
    if let Some(seed) = seed {
        // Every key and value of the block is in the seed, in this order.
        let mut rest = seed.as_str();
        for token in block.split_whitespace().filter(|t| *t != "-") {
            let at = rest
                .find(token)
                .unwrap_or_else(|| panic!("{token:?} is not in the seed's tls block"));
            rest = &rest[at + token.len()..];
        }
    }
    block
        .replace("/etc/mftplus/certs", &dir.display().to_string())
        .replace("requireAndVerifyClientCert", mode)
}

fn certificates(dir: &Path) {
    ca(dir, "ca");
    leaf(dir, "ca", "server", true);
}

fn load(yaml: &str, dir: &Path) -> Result<(), String> {
    let path = dir.join("server.yaml");
    std::fs::write(&path, yaml).unwrap();
    let env = BTreeMap::from([
        (
            "DATABASE_URL".to_string(),
            format!("sqlite://{}/c.db", dir.display()),
        ),
        (
            "JWT_SECRET".to_string(),
            mftplus_cloud::testing::TEST_JWT_SECRET.to_string(),
        ),
    ]);
    load_from(Some(&path), &env)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[test]
fn the_seed_block_is_accepted_and_each_mistake_names_its_key() {
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
    let block = seed_tls_block(dir.path(), "requireAndVerifyClientCert");
    load(&block, dir.path()).unwrap();
    for (from, to, key) in [
        (
            "min_version: TLSv1.3",
            "min_version: TLSv1.2",
            "tls.min_version",
        ),
        (
            "max_version: TLSv1.3",
            "max_version: TLSv1.2",
            "tls.max_version",
        ),
        (
            "- TLS_AES_128_GCM_SHA256",
            "- TLS_RSA_WITH_AES_128_CBC_SHA",
            "tls.cipher_suites",
        ),
        ("- secp384r1", "- secp521r1", "tls.curve_preferences"),
        (
            "mode: requireAndVerifyClientCert",
            "mode: requireAnyClientCert",
            "tls.client_auth.mode",
        ),
    ] {
        let bad = block.replace(from, to);
        assert_ne!(bad, block, "{from}");
        let err = load(&bad, dir.path()).unwrap_err();
        assert!(err.contains(key), "{key}: {err}");
    }
    let no_cas = seed_tls_block(dir.path(), "requireAndVerifyClientCert").replace(
        &format!("    ca_files:\n      - {}/ca.crt\n", dir.path().display()),
        "",
    );
    // With the built-in CA on (the default) its roots verify client certificates; with it off
    // a listener that verifies clients needs CA files.
    load(&no_cas, dir.path()).unwrap();
    let no_cas_no_ca = format!("{no_cas}certificates:\n  authority:\n    enabled: false\n");
    let err = load(&no_cas_no_ca, dir.path()).unwrap_err();
    assert!(err.contains("tls.client_auth.ca_files"), "{err}");
}

#[tokio::test]
async fn with_tls_enabled_the_api_answers_https_only() {
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
    let mut options = TestOptions::default();
    options
        .config_yaml
        .push_str(&seed_tls_block(dir.path(), "noClientCert"));
    let cloud = TestCloud::spawn_with(options).await;
    let https = cloud.url.replace("http://", "https://");
    let root =
        reqwest::Certificate::from_pem(&std::fs::read(dir.path().join("ca.crt")).unwrap()).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(root)
        .build()
        .unwrap();
    let health = client
        .get(format!("{https}/api/v1/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let plain = reqwest::Client::new()
        .get(format!("{}/api/v1/health", cloud.url))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP is not served: {plain:?}");
    // A key file others can read is refused at start.
    use std::os::unix::fs::PermissionsExt;
    let key = dir.path().join("server.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = load(&seed_tls_block(dir.path(), "noClientCert"), dir.path()).unwrap_err();
    assert!(err.contains("server.key"), "{err}");
}
