//! The built-in CA against the real tools: `openssl verify` accepts its chain, `openssl x509`
//! reads its dates and names, and a TLS listener trusting its roots (with its CRL) accepts the
//! certificate it issued — through `curl --cert` — and refuses one it revoked, one from
//! another CA, and one that expired; the handler sees the box the certificate names.

use axum::routing::get;
use axum::{Extension, Router};
use mftplus_pki::ca::{new_key_and_csr, Authority, Revoked};
use mftplus_pki::identity::{read_certificate, read_certificate_pem, PeerCertificate};
use mftplus_pki::serve::{serve_tcp, Limits};
use mftplus_pki::testing::{ca, leaf};
use mftplus_pki::{TlsKeys, TlsServer, TlsSettings};
use mftplus_types::certificates::BoxIdentity;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn run(dir: &Path, program: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(program)
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A box's key and certificate as files, the way `mftctl certificates` writes them.
fn box_files(
    dir: &Path,
    authority: &Authority,
    name: &str,
    valid_for: Duration,
    at: i64,
) -> String {
    let (key, csr) = new_key_and_csr(name).unwrap();
    let issued = authority
        .issue(&csr, &BoxIdentity::host(name), valid_for, at)
        .unwrap();
    std::fs::write(dir.join(format!("{name}.crt")), &issued.chain_pem).unwrap();
    let key_file = dir.join(format!("{name}.key"));
    std::fs::write(&key_file, key).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    issued.serial
}

async fn listener(dir: &Path, authority: &Authority) -> u16 {
    ca(dir, "web-ca");
    leaf(dir, "web-ca", "server", true);
    let cert = dir.join("server.crt");
    let key = dir.join("server.key");
    let client_cas = vec![authority.roots_file()];
    let crls = vec![authority.crl_file()];
    let none: Vec<String> = Vec::new();
    let settings = TlsSettings::from_keys(&TlsKeys {
        min_version: "TLSv1.3",
        max_version: "TLSv1.3",
        cert: Some(&cert),
        key: Some(&key),
        client_auth_mode: "requireAndVerifyClientCert",
        client_ca_files: &client_cas,
        crl_files: &crls,
        cipher_suites: &none,
        curve_preferences: &none,
    })
    .unwrap();
    let tls = TlsServer::load(settings).unwrap();
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = tcp.local_addr().unwrap().port();
    let app = Router::new().route(
        "/whoami",
        get(|Extension(peer): Extension<PeerCertificate>| async move {
            read_certificate(&peer.0)
                .unwrap()
                .identity
                .map(|id| id.to_string())
                .unwrap_or_default()
        }),
    );
    tokio::spawn(serve_tcp(
        tcp,
        Some(tls),
        app,
        Limits::default(),
        std::future::pending(),
    ));
    port
}

fn curl(dir: &Path, port: u16, name: &str) -> (bool, String) {
    let url = format!("https://localhost:{port}/whoami");
    let resolve = format!("localhost:{port}:127.0.0.1");
    run(
        dir,
        "curl",
        &[
            "-sS",
            "--fail",
            "--resolve",
            &resolve,
            "--cert",
            &format!("{name}.crt"),
            "--key",
            &format!("{name}.key"),
            "--cacert",
            "web-ca.crt",
            &url,
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issued_certificates_verify_and_revoked_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    let authority = Authority::open_or_create(&ca_dir, "Test", now()).unwrap();
    let mode = |p: PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(ca_dir.join("root.key")), 0o600);
    assert_eq!(mode(ca_dir.join("intermediate.key")), 0o600);
    assert_eq!(mode(ca_dir.join("roots.pem")), 0o644);
    // Opening again keeps the same root.
    let root_before = std::fs::read(ca_dir.join("root.crt")).unwrap();
    let authority = {
        drop(authority);
        Authority::open_or_create(&ca_dir, "Test", now()).unwrap()
    };
    assert_eq!(std::fs::read(ca_dir.join("root.crt")).unwrap(), root_before);

    let d = dir.path();
    let good = box_files(d, &authority, "h-good", Duration::from_secs(3600), now());
    let revoked = box_files(d, &authority, "h-revoked", Duration::from_secs(3600), now());
    box_files(
        d,
        &authority,
        "h-expired",
        Duration::from_secs(60),
        now() - 7200,
    );
    authority
        .write_crl(
            &[Revoked {
                serial: revoked.clone(),
                revoked_at: now(),
            }],
            now(),
            now() + 3600,
        )
        .unwrap();

    // The seed's checks, verbatim in spirit: the chain verifies against the roots, dates read.
    let roots = ca_dir.join("roots.pem");
    let (ok, text) = run(
        d,
        "openssl",
        &[
            "verify",
            "-CAfile",
            roots.to_str().unwrap(),
            "-untrusted",
            "h-good.crt",
            "h-good.crt",
        ],
    );
    assert!(ok, "{text}");
    let (ok, text) = run(
        d,
        "openssl",
        &[
            "x509",
            "-in",
            "h-good.crt",
            "-noout",
            "-dates",
            "-serial",
            "-ext",
            "subjectAltName",
        ],
    );
    assert!(
        ok && text.contains("notAfter=") && text.contains("urn:mftplus:host:h-good"),
        "{text}"
    );
    assert!(
        text.to_lowercase().contains(&good),
        "serial as recorded: {text}"
    );
    let facts =
        read_certificate_pem(&std::fs::read_to_string(d.join("h-good.crt")).unwrap()).unwrap();
    assert_eq!(facts.serial, good);
    assert_eq!(facts.identity, Some(BoxIdentity::host("h-good")));

    let port = listener(d, &authority).await;
    let (ok, body) = curl(d, port, "h-good");
    assert!(ok, "{body}");
    assert_eq!(body.trim(), "host:h-good");
    let (ok, text) = curl(d, port, "h-revoked");
    assert!(!ok, "a revoked certificate is refused: {text}");
    let (ok, text) = curl(d, port, "h-expired");
    assert!(!ok, "an expired certificate is refused: {text}");
    // Another CA's client certificate, with the same name.
    ca(d, "other-ca");
    leaf(d, "other-ca", "h-other", false);
    let (ok, text) = curl(d, port, "h-other");
    assert!(!ok, "another CA's certificate is refused: {text}");
}

#[test]
fn a_csr_that_is_not_one_is_refused_with_its_code() {
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::open_or_create(&dir.path().join("ca"), "Test", now()).unwrap();
    let (_, csr) = new_key_and_csr("x").unwrap();
    // One base64 character of the public key changed: the signature no longer matches.
    let body_start = csr.find('\n').unwrap() + 40;
    let mut tampered = csr.clone().into_bytes();
    tampered[body_start] = if tampered[body_start] == b'A' {
        b'B'
    } else {
        b'A'
    };
    let tampered = String::from_utf8(tampered).unwrap();
    for bad in ["", "hello", tampered.as_str()] {
        let err = authority
            .issue(bad, &BoxIdentity::host("x"), Duration::from_secs(60), now())
            .unwrap_err();
        assert_eq!(err.code(), "invalid_csr", "{bad:?}: {err}");
    }
}

/// `openssl verify` of a chain file (leaf + intermediate) against a CA bundle.
fn verifies(dir: &Path, roots: &Path, chain: &str) -> bool {
    run(
        dir,
        "openssl",
        &[
            "verify",
            "-CAfile",
            roots.to_str().unwrap(),
            "-untrusted",
            chain,
            chain,
        ],
    )
    .0
}

#[test]
fn a_rotation_trusts_both_roots_until_the_old_one_is_retired() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca_dir = d.join("ca");
    let old = Authority::open_or_create(&ca_dir, "Test", now()).unwrap();
    box_files(d, &old, "h-old", Duration::from_secs(3600), now());
    let old_root = std::fs::read_to_string(ca_dir.join("root.crt")).unwrap();

    Authority::rotate(&ca_dir, "Test", now()).unwrap();
    assert!(Authority::rotation_started(&ca_dir).is_some());
    let err = Authority::rotate(&ca_dir, "Test", now()).unwrap_err();
    assert_eq!(err.code(), "ca_rotation", "{err}");
    let new = Authority::open(&ca_dir).unwrap();
    assert_ne!(
        std::fs::read_to_string(ca_dir.join("root.crt")).unwrap(),
        old_root
    );
    box_files(d, &new, "h-new", Duration::from_secs(3600), now());
    let roots = ca_dir.join("roots.pem");
    assert!(
        verifies(d, &roots, "h-old.crt"),
        "the old chain verifies during the rotation"
    );
    assert!(verifies(d, &roots, "h-new.crt"));
    // One CRL per intermediate while both have certificates out.
    let crl = new.crl_pem(&[], now(), now() + 60).unwrap();
    assert_eq!(crl.matches("BEGIN X509 CRL").count(), 2, "{crl}");

    Authority::retire(&ca_dir, now()).unwrap();
    assert!(Authority::rotation_started(&ca_dir).is_none());
    assert!(
        !verifies(d, &roots, "h-old.crt"),
        "the retired root is no longer trusted"
    );
    assert!(verifies(d, &roots, "h-new.crt"));
    let crl = Authority::open(&ca_dir)
        .unwrap()
        .crl_pem(&[], now(), now() + 60)
        .unwrap();
    assert_eq!(crl.matches("BEGIN X509 CRL").count(), 1);
    assert_eq!(
        Authority::retire(&ca_dir, now()).unwrap_err().code(),
        "ca_rotation"
    );
}
