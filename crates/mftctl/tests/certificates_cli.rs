//! `mftctl certificates …` as the real binary against a real cloud serving TLS 1.3 with
//! `client_auth.mode: requireAndVerifyClientCert` and its built-in CA: an operator issues a
//! host's certificate (files and modes as seed 001 lists them), the seed's `openssl` and `curl`
//! lines accept the files, `renew` waits until due and then replaces the files with its own
//! certificate as the credential, `list` and `revoke` show and end certificates, and the
//! refusals (existing files, expired or revoked certificate, unknown host) say what to do and
//! write nothing.

mod cli_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use cli_support::{mode_of, Run, Shell};
use mftplus_client::{AgentClient, ClientOptions};
use mftplus_cloud::testing::{TestCloud, TestOptions};
use mftplus_pki::testing::{ca, leaf};
use mftplus_types::fleet::EnrollRequest;

struct Tls {
    cloud: TestCloud,
    /// `https://127.0.0.1:<port>`.
    url: String,
    /// The test CA that signed the server's TLS certificate (not the built-in CA).
    server_ca: PathBuf,
    _dir: tempfile::TempDir,
}

async fn tls_cloud() -> Tls {
    let dir = tempfile::tempdir().unwrap();
    ca(dir.path(), "server-ca");
    leaf(dir.path(), "server-ca", "server", true);
    let d = dir.path().display();
    let mut options = TestOptions::default();
    options.config_yaml.push_str(&format!(
        "tls:\n  enabled: true\n  certificate:\n    cert: {d}/server.crt\n    key: {d}/server.key\n  client_auth:\n    mode: requireAndVerifyClientCert\n"
    ));
    let cloud = TestCloud::spawn_with(options).await;
    Tls {
        url: cloud.url.replace("http://", "https://"),
        server_ca: dir.path().join("server-ca.crt"),
        cloud,
        _dir: dir,
    }
}

/// An operator's shell on the TLS cloud: MFTPLUS_SERVER is the https URL and MFTPLUS_CA_FILE
/// the server's CA, so commands without --ca-url/--root use those.
fn operator(tls: &Tls) -> Shell {
    let mut shell = Shell::admin(&tls.cloud);
    shell.server = tls.url.clone();
    shell.env.push((
        "MFTPLUS_CA_FILE".into(),
        tls.server_ca.display().to_string(),
    ));
    shell
}

/// A customer and a box enrolled with its retrieval password: the host id and key.
async fn enroll(op: &Shell, url: &str, roots: Option<&Path>) -> (String, String) {
    let created = op
        .line("mftctl customers create --id kovacs --name Kovacs --email info@kovacs.example.com --json")
        .await
        .ok()
        .json();
    let password = created["retrieval_password"].as_str().unwrap().to_string();
    let options = ClientOptions {
        extra_roots_pem: roots.map(|path| std::fs::read(path).unwrap()),
        ..ClientOptions::default()
    };
    let enrolled = AgentClient::with_options(url, None, options)
        .unwrap()
        .enroll(
            &EnrollRequest {
                customer_id: "kovacs".into(),
                hostname: "box-1".into(),
                agent_version: "0.1.0".into(),
                platform: None,
            },
            &password,
        )
        .await
        .unwrap();
    (enrolled.host_id, enrolled.host_key)
}

/// Runs a program (openssl, curl) in `cwd` off the runtime's threads, so the in-process cloud
/// keeps answering.
async fn sh(cwd: &Path, program: &str, args: &[&str]) -> Run {
    let mut command = Command::new(program);
    command.args(args).current_dir(cwd);
    tokio::task::spawn_blocking(move || {
        let output = command.output().expect("the program runs");
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    })
    .await
    .unwrap()
}

/// The three files, read whole.
fn contents(dir: &Path) -> [Vec<u8>; 3] {
    ["client.key", "client.crt", "ca.crt"].map(|name| std::fs::read(dir.join(name)).unwrap())
}

/// `serial=0A1B…` as `openssl x509 -noout -serial` prints it.
async fn openssl_serial(dir: &Path) -> String {
    let run = sh(
        dir,
        "openssl",
        &["x509", "-in", "client.crt", "-noout", "-serial"],
    )
    .await
    .ok();
    run.stdout.trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_verify_renew_list_revoke_against_a_mutual_tls_cloud() {
    let tls = tls_cloud().await;
    let op = operator(&tls);
    let (host, host_key) = enroll(&op, &tls.url, Some(&tls.server_ca)).await;
    let dir = op.path(".config/mftplus/certificates");

    // Seed 001: `mftctl certificates issue --agent-id agent-1 --ca-url … --root …`.
    let issued = op
        .line(&format!(
            "mftctl certificates issue --agent-id {host} --ca-url {} --root {}",
            tls.url,
            tls.server_ca.display()
        ))
        .await
        .ok();
    assert!(
        issued.stdout.contains(&format!("host:{host}")) && issued.stdout.contains("not after"),
        "{issued:#?}"
    );
    assert!(
        !issued.stdout.contains("PRIVATE KEY") && !issued.stderr.contains("PRIVATE KEY"),
        "the key is never printed: {issued:#?}"
    );
    assert_eq!(mode_of(&dir), 0o700);
    assert_eq!(mode_of(&dir.join("client.key")), 0o600);
    assert_eq!(mode_of(&dir.join("client.crt")), 0o644);
    assert_eq!(mode_of(&dir.join("ca.crt")), 0o644);
    let first_serial = openssl_serial(&dir).await;
    assert!(
        issued
            .stdout
            .contains(&first_serial["serial=".len()..].to_lowercase()),
        "{issued:#?}"
    );

    // Seed 001, "mTLS Verification" and "Certificate Issues", as typed there.
    let verified = sh(
        &dir,
        "openssl",
        &["verify", "-CAfile", "ca.crt", "client.crt"],
    )
    .await
    .ok();
    assert!(verified.stdout.contains("client.crt: OK"), "{verified:#?}");
    let text = sh(
        &dir,
        "openssl",
        &["x509", "-in", "client.crt", "-text", "-noout"],
    )
    .await
    .ok();
    assert!(
        text.stdout
            .contains(&format!("URI:urn:mftplus:host:{host}"))
            && text.stdout.contains("Not After"),
        "{text:#?}"
    );
    let dates = sh(
        &dir,
        "openssl",
        &["x509", "-in", "client.crt", "-noout", "-dates"],
    )
    .await
    .ok();
    assert!(dates.stdout.contains("notAfter="), "{dates:#?}");

    // `curl -v --cert client.crt --key client.key --cacert ca.crt https://…/health`. The seed's
    // ca.crt is the CA that signed the server's certificate too; here the server's certificate
    // comes from a test CA, so --cacert gets that CA and ca.crt together.
    let trust = op.path("trust.pem");
    let mut bundle = std::fs::read(&tls.server_ca).unwrap();
    bundle.extend(std::fs::read(dir.join("ca.crt")).unwrap());
    std::fs::write(&trust, bundle).unwrap();
    let trust = trust.display().to_string();
    let health = format!("{}/health", tls.url);
    let curl = |extra: Vec<String>| {
        let dir = dir.clone();
        let trust = trust.clone();
        async move {
            let mut args: Vec<String> = [
                "-v",
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--cacert",
            ]
            .map(String::from)
            .to_vec();
            args.push(trust);
            args.extend(extra);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            sh(&dir, "curl", &args).await
        }
    };
    let with_cert = |url: &str| {
        vec![
            "--cert".to_string(),
            "client.crt".into(),
            "--key".into(),
            "client.key".into(),
            url.to_string(),
        ]
    };
    let run = curl(with_cert(&health)).await.ok();
    assert_eq!(run.stdout, "200", "{run:#?}");
    // The certificate is also the host's credential on its routes, with its host key.
    let desired = format!("{}/api/v1/hosts/{host}/desired-state", tls.url);
    let mut args = with_cert(&desired);
    args.extend(["-H".into(), format!("Authorization: Bearer {host_key}")]);
    let run = curl(args).await.ok();
    assert_eq!(run.stdout, "200", "{run:#?}");
    let run = curl(vec![
        "-H".into(),
        format!("Authorization: Bearer {host_key}"),
        desired.clone(),
    ])
    .await
    .ok();
    assert_eq!(run.stdout, "401", "no certificate, no host route: {run:#?}");

    // Not due: nothing changes and the CA is not contacted (it is unreachable here).
    let before = contents(&dir);
    let run = op
        .line("mftctl certificates renew --ca-url https://127.0.0.1:1")
        .await
        .ok();
    assert!(run.stdout.starts_with("not due until "), "{run:#?}");
    assert_eq!(contents(&dir), before);

    // --force: renewed with the certificate itself as the credential (server URL and CA file
    // from the environment), every file replaced.
    let renewed = op
        .line("mftctl certificates renew --force --json")
        .await
        .ok()
        .json();
    assert_eq!(renewed["renewed"], true);
    assert_eq!(renewed["subject"], format!("host:{host}"));
    let second_serial = renewed["serial"].as_str().unwrap().to_string();
    assert_eq!(
        renewed["previous_serial"].as_str().unwrap(),
        first_serial["serial=".len()..].to_lowercase()
    );
    assert_ne!(renewed["serial"], renewed["previous_serial"]);
    let after = contents(&dir);
    assert_ne!(before[0], after[0], "new key");
    assert_ne!(before[1], after[1], "new certificate");
    assert_eq!(mode_of(&dir.join("client.key")), 0o600);
    assert_eq!(mode_of(&dir.join("client.crt")), 0o644);
    assert_eq!(
        openssl_serial(&dir).await["serial=".len()..].to_lowercase(),
        second_serial
    );
    sh(
        &dir,
        "openssl",
        &["verify", "-CAfile", "ca.crt", "client.crt"],
    )
    .await
    .ok();
    let run = curl(with_cert(&health)).await.ok();
    assert_eq!(run.stdout, "200", "{run:#?}");

    // The operator's view: both, valid.
    let listed = op
        .line(&format!(
            "mftctl certificates list --subject host:{host} --json"
        ))
        .await
        .ok()
        .json();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    let first = first_serial["serial=".len()..].to_lowercase();
    for serial in [&first, &second_serial] {
        assert!(
            listed.iter().any(|c| c["serial"] == serial.as_str()),
            "{serial} missing: {listed:?}"
        );
    }
    assert!(listed.iter().all(|c| c["status"] == "valid"), "{listed:?}");
    let table = op
        .line(&format!(
            "mftctl certificates list --ca-url {} --root {}",
            tls.url,
            tls.server_ca.display()
        ))
        .await
        .ok();
    assert!(
        table.stdout.contains(&second_serial) && table.stdout.contains("valid"),
        "{table:#?}"
    );

    // Revoke the current one by the serial openssl prints, upper case with colons.
    let upper = openssl_serial(&dir).await["serial=".len()..].to_string();
    let colons = upper
        .as_bytes()
        .chunks(2)
        .map(|pair| std::str::from_utf8(pair).unwrap())
        .collect::<Vec<_>>()
        .join(":");
    let run = op
        .line(&format!(
            "mftctl certificates revoke {colons} --reason drill"
        ))
        .await
        .ok();
    assert!(run.stdout.contains("revoked"), "{run:#?}");
    let listed = op
        .line(&format!(
            "mftctl certificates list --subject host:{host} --json"
        ))
        .await
        .ok()
        .json();
    let statuses: Vec<(&str, &str)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["serial"].as_str().unwrap(), c["status"].as_str().unwrap()))
        .collect();
    assert!(
        statuses.contains(&(second_serial.as_str(), "revoked")) && statuses.len() == 2,
        "{statuses:?}"
    );
    let table = op.line("mftctl certificates list").await.ok();
    assert!(
        table.stdout.contains("revoked") && table.stdout.contains("drill"),
        "{table:#?}"
    );

    // A revoked certificate cannot renew itself; the error says how to recover.
    let run = op.line("mftctl certificates renew --force").await;
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(
        run.stderr.contains("mftplus agent certificate --recover")
            && run.stderr.contains("--force"),
        "{run:#?}"
    );
    // Issuing again over existing files needs --force (nothing is asked of the CA first).
    let before = contents(&dir);
    op.line(&format!("mftctl certificates issue --agent-id {host}"))
        .await
        .fails_with("certificate_files_exist");
    assert_eq!(contents(&dir), before);
    // The operator's way back.
    op.line(&format!(
        "mftctl certificates issue --agent-id host:{host} --force"
    ))
    .await
    .ok();
    assert_ne!(contents(&dir)[1], before[1]);
    let run = curl(with_cert(&health)).await.ok();
    assert_eq!(run.stdout, "200", "{run:#?}");

    // Expired: detected here, before any connection, with the way back.
    let short = op.path("short");
    op.line(&format!(
        "mftctl certificates issue --agent-id {host} --validity 1s --dir {}",
        short.display()
    ))
    .await
    .ok();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let run = op
        .line(&format!(
            "mftctl certificates renew --force --dir {} --ca-url https://127.0.0.1:1",
            short.display()
        ))
        .await
        .fails_with("certificate_expired");
    assert!(
        run.stderr.contains("mftplus agent certificate --recover")
            && run
                .stderr
                .contains(&format!("issue --agent-id {host} --force")),
        "{run:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_write_nothing_and_the_config_block_counts() {
    let cloud = TestCloud::spawn().await;
    let op = Shell::admin(&cloud);
    let (host, _) = enroll(&op, &cloud.url, None).await;
    let dir = op.path(".config/mftplus/certificates");

    // An unknown host: the cloud's not_found, and no directory or file.
    op.line("mftctl certificates issue --agent-id h-does-not-exist")
        .await
        .fails_with("not_found");
    assert!(!dir.exists(), "nothing written");
    op.line("mftctl certificates issue --agent-id a/b")
        .await
        .fails_with("usage");
    assert!(!dir.exists(), "nothing written");
    // Renewing with nothing to renew.
    op.line("mftctl certificates renew")
        .await
        .fails_with("certificate_missing");

    // `certificates:` in the config file: the lifetime asked for and when renewal is due.
    let config = op.path(".config/mftplus/config.yaml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(
        &config,
        "certificates:\n  auto_renew: true\n  renew_before: 1h\n  validity: 2h\n  watch_interval: 24h\n",
    )
    .unwrap();
    let issued = op
        .line(&format!(
            "mftctl certificates issue --agent-id {host} --json"
        ))
        .await
        .ok()
        .json();
    let lifetime = issued["not_after"].as_i64().unwrap() - issued["not_before"].as_i64().unwrap();
    assert!((7200..=7800).contains(&lifetime), "{issued}");
    let run = op
        .line("mftctl certificates renew --json")
        .await
        .ok()
        .json();
    assert_eq!(run["renewed"], false, "{run}");
    // Due once renew_before covers the whole lifetime; this cloud speaks plain HTTP, where a
    // certificate cannot be presented, which renew says instead of trying.
    std::fs::write(&config, "certificates:\n  renew_before: 3h\n").unwrap();
    op.line("mftctl certificates renew")
        .await
        .fails_with("usage");
    // A typo in the block fails every command, naming the key.
    std::fs::write(&config, "certificates:\n  renew_befor: 3h\n").unwrap();
    let run = op
        .line("mftctl certificates list")
        .await
        .fails_with("config");
    assert!(run.stderr.contains("renew_befor"), "{run:#?}");
}

/// `mftctl certificates ca status|rotate|retire`: a rotation trusts both roots until it is
/// retired; retiring is refused while a live certificate still chains to the old root, and
/// `--force` overrides that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ca_rotates_through_the_command_line() {
    let tls = tls_cloud().await;
    let op = operator(&tls);
    let (host_id, _) = enroll(&op, &tls.url, Some(&tls.server_ca)).await;
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    op.line(&format!(
        "mftctl certificates issue --agent-id {host_id} --dir {}",
        certs.display()
    ))
    .await
    .ok();
    let status = op
        .line("mftctl certificates ca status --json")
        .await
        .ok()
        .json();
    assert_eq!(status["roots"].as_array().unwrap().len(), 1, "{status}");
    assert!(status["rotation_started_at"].is_null());

    let rotated = op
        .line("mftctl certificates ca rotate --json")
        .await
        .ok()
        .json();
    assert_eq!(rotated["roots"].as_array().unwrap().len(), 2, "{rotated}");
    assert_eq!(rotated["on_old_chain"], 1, "{rotated}");
    let again = op.line("mftctl certificates ca rotate").await;
    assert!(again.stderr.contains("ca_rotation"), "{}", again.stderr);
    let early = op.line("mftctl certificates ca retire").await;
    assert!(early.stderr.contains("ca_rotation"), "{}", early.stderr);
    let human = op.line("mftctl certificates ca status").await.ok();
    assert!(
        human.stdout.contains("still on the old root"),
        "{}",
        human.stdout
    );

    let retired = op
        .line("mftctl certificates ca retire --force --json")
        .await
        .ok()
        .json();
    assert_eq!(retired["roots"].as_array().unwrap().len(), 1, "{retired}");
    assert_eq!(
        retired["roots"][0]["fingerprint"],
        rotated["roots"][0]["fingerprint"]
    );
    assert!(retired["rotation_started_at"].is_null());
}
