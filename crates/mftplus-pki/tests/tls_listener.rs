//! The TLS listener against real clients: `openssl s_client` (TLS 1.2 refused, TLS 1.3 with a
//! seed cipher suite), `curl` with and without client certificates, and certificate files
//! replaced while requests are in flight. Certificates are made by the real `openssl`.

use axum::routing::get;
use axum::Router;
use mftplus_pki::testing::{ca, leaf};
use mftplus_pki::{TlsKeys, TlsListener, TlsServer, TlsSettings};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Served {
    port: u16,
    tls: Arc<TlsServer>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn serve(dir: &Path, mode: &str, client_cas: &[PathBuf]) -> Served {
    let suites: Vec<String> = Vec::new();
    let curves: Vec<String> = Vec::new();
    let cert = dir.join("server.crt");
    let key = dir.join("server.key");
    let settings = TlsSettings::from_keys(&TlsKeys {
        min_version: "TLSv1.3",
        max_version: "TLSv1.3",
        cert: Some(&cert),
        key: Some(&key),
        client_auth_mode: mode,
        client_ca_files: client_cas,
        crl_files: &[],
        cipher_suites: &suites,
        curve_preferences: &curves,
    })
    .unwrap();
    let tls = TlsServer::load(settings).unwrap();
    tls.watch(Duration::from_millis(100));
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = tcp.local_addr().unwrap().port();
    let listener = TlsListener::new(tcp, tls.clone()).unwrap();
    let app = Router::new().route("/health", get(|| async { "ok" }));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    Served {
        port,
        tls,
        _stop: stop,
    }
}

fn s_client(dir: &Path, port: u16, args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-CAfile",
            "ca.crt",
        ])
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.success() && text.contains("Verify return code: 0"),
        text,
    )
}

fn curl(dir: &Path, port: u16, args: &[&str]) -> (bool, String) {
    let out = Command::new("curl")
        .current_dir(dir)
        .args(["-sS", "--max-time", "10", "--cacert", "ca.crt"])
        .args(args)
        .arg(format!("https://127.0.0.1:{port}/health"))
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_1_2_is_refused_and_1_3_speaks_a_seed_suite() {
    let dir = tempfile::tempdir().unwrap();
    ca(dir.path(), "ca");
    leaf(dir.path(), "ca", "server", true);
    let served = serve(dir.path(), "noClientCert", &[]).await;
    let d = dir.path().to_path_buf();
    let port = served.port;
    let (ok12, text12) = tokio::task::spawn_blocking({
        let d = d.clone();
        move || s_client(&d, port, &["-tls1_2"])
    })
    .await
    .unwrap();
    assert!(!ok12, "TLS 1.2 must fail: {text12}");
    for suite in [
        "TLS_AES_128_GCM_SHA256",
        "TLS_AES_256_GCM_SHA384",
        "TLS_CHACHA20_POLY1305_SHA256",
    ] {
        let d = d.clone();
        let (ok13, text13) = tokio::task::spawn_blocking(move || {
            s_client(&d, port, &["-tls1_3", "-ciphersuites", suite])
        })
        .await
        .unwrap();
        assert!(ok13, "{text13}");
        assert!(text13.contains(&format!("Cipher is {suite}")), "{text13}");
        assert!(text13.contains("TLSv1.3"), "{text13}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_wants_a_certificate_from_the_client_ca() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ca(d, "ca");
    ca(d, "other");
    leaf(d, "ca", "server", true);
    leaf(d, "ca", "agent-1", false);
    leaf(d, "other", "stranger", false);
    let served = serve(d, "requireAndVerifyClientCert", &[d.join("ca.crt")]).await;
    let port = served.port;
    let dd = d.to_path_buf();
    let results = tokio::task::spawn_blocking(move || {
        (
            curl(&dd, port, &[]),
            curl(
                &dd,
                port,
                &["--cert", "agent-1.crt", "--key", "agent-1.key"],
            ),
            curl(
                &dd,
                port,
                &["--cert", "stranger.crt", "--key", "stranger.key"],
            ),
        )
    })
    .await
    .unwrap();
    assert!(
        !results.0 .0,
        "no client certificate: refused ({})",
        results.0 .1
    );
    assert!(
        results.1 .0 && results.1 .1 == "ok",
        "the CA's client: accepted ({})",
        results.1 .1
    );
    assert!(
        !results.2 .0,
        "another CA's client: refused ({})",
        results.2 .1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_replaced_under_load_drop_no_request() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ca(d, "ca");
    leaf(d, "ca", "server", true);
    leaf(d, "ca", "server2", true);
    let served = serve(d, "noClientCert", &[]).await;
    let root = reqwest::Certificate::from_pem(&std::fs::read(d.join("ca.crt")).unwrap()).unwrap();
    // A fresh connection (and so a handshake) for every request.
    let client = reqwest::Client::builder()
        .add_root_certificate(root)
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let url = format!("https://127.0.0.1:{}/health", served.port);
    let done = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let until = Instant::now() + Duration::from_secs(3);
    let mut workers = Vec::new();
    for _ in 0..16 {
        let (client, url, done, failed) =
            (client.clone(), url.clone(), done.clone(), failed.clone());
        workers.push(tokio::spawn(async move {
            while Instant::now() < until {
                match client.get(&url).send().await {
                    Ok(r) if r.status() == 200 => done.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // The rotation an operator (or the renewer) does: new files renamed over the old ones.
    for (from, to) in [("server2.crt", "server.crt"), ("server2.key", "server.key")] {
        std::fs::copy(d.join(from), d.join(format!("{to}.new"))).unwrap();
        std::fs::rename(d.join(format!("{to}.new")), d.join(to)).unwrap();
    }
    for worker in workers {
        worker.await.unwrap();
    }
    let (done, failed) = (done.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    eprintln!("{done} requests during the rotation, {failed} failed");
    assert_eq!(failed, 0);
    assert!(done > 50, "the load was real: {done}");
    served.tls.reload(false).unwrap();
    let port = served.port;
    let dd = d.to_path_buf();
    let (ok, text) = tokio::task::spawn_blocking(move || s_client(&dd, port, &["-tls1_3"]))
        .await
        .unwrap();
    assert!(ok, "{text}");
    assert!(
        text.contains("CN = server2"),
        "a new connection sees the new certificate: {text}"
    );
}
