//! `SmtpMailer` against a real SMTP server: aiosmtpd (from PyPI, `scripts/smtp-test-setup.sh`)
//! started on 127.0.0.1 with its Mailbox handler writing a maildir, extended by a small handler
//! that refuses one domain and checks AUTH PLAIN. Messages are parsed back with Python's
//! `email` package, a decoder independent of the one under test.

use mftplus_notify::{EmailMessage, Mailer, NotifyError, Secret, SmtpConfig, SmtpMailer, SmtpTls};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const HANDLER: &str = r#"
import base64, os
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult

class TestMailbox(Mailbox):
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.endswith("@refused.test"):
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if os.environ.get("TEST_SMTP_AUTH") and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def auth_PLAIN(self, server, args):
        expected = os.environ.get("TEST_SMTP_AUTH", "")
        try:
            _, user, password = base64.b64decode(args[1]).decode().split("\0")
        except Exception:
            return AuthResult(success=False, handled=False)
        # handled=False: aiosmtpd then answers 535 itself (its default, True, answers nothing).
        return AuthResult(success=expected == f"{user}:{password}", handled=False)
"#;

const PARSE: &str = r#"
import email, email.policy, json, sys
raw = open(sys.argv[1], "rb").read()
m = email.message_from_bytes(raw, policy=email.policy.default)
print(json.dumps({
    "subject": str(m["subject"]),
    "from": str(m["from"]),
    "to": str(m["to"]),
    "date": str(m["date"]),
    "message_id": str(m["message-id"]),
    "mime_version": str(m["mime-version"]),
    "content_type": m.get_content_type(),
    "charset": m.get_content_charset(),
    "rcpt_to": str(m["x-rcptto"]),
    "mail_from": str(m["x-mailfrom"]),
    "body": m.get_content(),
    "raw": raw.decode("ascii"),
}))
"#;

enum ServerTls {
    None,
    Starttls,
    Implicit,
}

struct SmtpServer {
    child: Child,
    port: u16,
    maildir: PathBuf,
    dir: tempfile::TempDir,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A CA and a leaf for 127.0.0.1/localhost signed by it (webpki refuses a CA certificate as a
/// server's own, so a single self-signed certificate would not do).
fn make_certs(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=mftplus test CA",
        ],
    ]
    .concat());
    run(&[
        &["req"][..],
        &ec,
        &[
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=localhost",
        ],
    ]
    .concat());
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "leaf.pem",
        "-days",
        "2",
        "-extfile",
        "leaf.ext",
    ]);
}

/// Ready once it accepts a connection; false if the process died first.
fn wait_ready(child: &mut Child, port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

impl SmtpServer {
    fn start(tls: ServerTls, auth: Option<&str>) -> SmtpServer {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("testhandler.py"), HANDLER).unwrap();
        if !matches!(tls, ServerTls::None) {
            make_certs(dir.path());
        }
        let maildir = dir.path().join("maildir");
        // The port is free when picked but may be taken before aiosmtpd binds it; retry then.
        for _ in 0..5 {
            let port = free_port();
            let mut cmd = Command::new("python3");
            cmd.args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
                .args(["-c", "testhandler.TestMailbox"])
                .current_dir(dir.path())
                .env("PYTHONPATH", dir.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            match tls {
                ServerTls::None => {}
                ServerTls::Starttls => {
                    cmd.args(["--tlscert", "leaf.pem", "--tlskey", "leaf.key"]);
                }
                ServerTls::Implicit => {
                    cmd.args(["--smtpscert", "leaf.pem", "--smtpskey", "leaf.key"]);
                }
            }
            match auth {
                Some(a) => cmd.env("TEST_SMTP_AUTH", a),
                None => cmd.env_remove("TEST_SMTP_AUTH"),
            };
            cmd.arg(&maildir);
            let mut child = cmd
                .spawn()
                .expect("python3 -m aiosmtpd (run scripts/smtp-test-setup.sh)");
            if wait_ready(&mut child, port) {
                return SmtpServer {
                    child,
                    port,
                    maildir,
                    dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("aiosmtpd did not start (is it installed? scripts/smtp-test-setup.sh)");
    }

    fn ca_pem(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("ca.pem")).unwrap()
    }

    fn config(&self, tls: SmtpTls) -> SmtpConfig {
        let mut cfg = SmtpConfig::new(
            "127.0.0.1",
            self.port,
            "MFTPlus Flotta <noreply@fleet.test>",
        );
        cfg.tls = tls;
        cfg.timeout = Duration::from_secs(10);
        cfg
    }

    fn messages(&self) -> Vec<serde_json::Value> {
        let new = self.maildir.join("new");
        let Ok(entries) = std::fs::read_dir(&new) else {
            return Vec::new();
        };
        entries
            .map(|e| {
                let out = Command::new("python3")
                    .args(["-c", PARSE])
                    .arg(e.unwrap().path())
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                serde_json::from_slice(&out.stdout).unwrap()
            })
            .collect()
    }
}

fn hungarian_message() -> EmailMessage {
    EmailMessage {
        to: vec![
            "ops@customer.test".into(),
            "Kovács Éva <eva@customer.test>".into(),
        ],
        subject: "Nem elérhető a szerver: host-7 — árvíztűrő tükörfúrógép".into(),
        body: "Tisztelt Kovács Kft.!\n\n.pont a sor elején\nÜdvözlettel:\nMFTPlus".into(),
    }
}

fn assert_delivered(server: &SmtpServer) {
    let msgs = server.messages();
    assert_eq!(msgs.len(), 1, "one message for both recipients: {msgs:?}");
    let m = &msgs[0];
    let expected = hungarian_message();
    assert_eq!(m["subject"], expected.subject.as_str());
    assert!(m["raw"].as_str().unwrap().contains("Subject: =?UTF-8?B?"));
    assert_eq!(m["from"], "MFTPlus Flotta <noreply@fleet.test>");
    assert_eq!(m["to"], "ops@customer.test, Kovács Éva <eva@customer.test>");
    assert_eq!(m["rcpt_to"], "ops@customer.test, eva@customer.test");
    assert_eq!(m["mail_from"], "noreply@fleet.test");
    assert_eq!(m["mime_version"], "1.0");
    assert_eq!(m["content_type"], "text/plain");
    assert_eq!(m["charset"], "utf-8");
    assert!(m["message_id"].as_str().unwrap().ends_with("@fleet.test>"));
    let date = m["date"].as_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc2822(date).is_ok(), "{date}");
    let body = m["body"].as_str().unwrap().replace("\r\n", "\n");
    assert_eq!(body.trim_end(), expected.body);
}

#[tokio::test]
async fn sends_a_hungarian_message_to_two_recipients() {
    let server = SmtpServer::start(ServerTls::None, None);
    let mut cfg = server.config(SmtpTls::None);
    cfg.from = "MFTPlus Flotta <noreply@fleet.test>".into();
    let mailer = SmtpMailer::new(cfg).unwrap();
    mailer.send(&hungarian_message()).await.unwrap();
    assert_delivered(&server);
}

#[tokio::test]
async fn a_refused_recipient_is_a_typed_error_and_nothing_is_sent() {
    let server = SmtpServer::start(ServerTls::None, None);
    let mailer = SmtpMailer::new(server.config(SmtpTls::None)).unwrap();
    let mut msg = hungarian_message();
    msg.to = vec!["ok@customer.test".into(), "nobody@refused.test".into()];
    match mailer.send(&msg).await {
        Err(NotifyError::RecipientRefused {
            recipient, code, ..
        }) => {
            assert_eq!(recipient, "nobody@refused.test");
            assert_eq!(code, 550);
        }
        other => panic!("expected RecipientRefused, got {other:?}"),
    }
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn a_down_server_is_a_connect_error() {
    // Bound but not listening: the port is ours (no other test can take it) and refuses.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = socket.local_addr().unwrap().port();
    let mut cfg = SmtpConfig::new("127.0.0.1", port, "noreply@fleet.test");
    cfg.tls = SmtpTls::None;
    cfg.timeout = Duration::from_secs(2);
    let started = Instant::now();
    let err = SmtpMailer::new(cfg)
        .unwrap()
        .send(&hungarian_message())
        .await
        .unwrap_err();
    assert!(matches!(err, NotifyError::Connect { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn a_silent_server_times_out_within_the_timeout() {
    // Accepts and never greets: the shape of a hung relay.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(socket);
    });
    let mut cfg = SmtpConfig::new("127.0.0.1", port, "noreply@fleet.test");
    cfg.tls = SmtpTls::None;
    cfg.timeout = Duration::from_millis(400);
    let started = Instant::now();
    let err = SmtpMailer::new(cfg)
        .unwrap()
        .send(&hungarian_message())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            NotifyError::Timeout {
                step: "greeting",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    held.abort();
}

#[tokio::test]
async fn starttls_with_auth_plain() {
    let server = SmtpServer::start(ServerTls::Starttls, Some("mailer:correct horse"));
    let mut cfg = server.config(SmtpTls::Starttls);
    cfg.extra_roots_pem = Some(server.ca_pem());
    cfg.username = Some("mailer".into());
    cfg.password = Some(Secret::new("correct horse"));
    assert!(!format!("{cfg:?}").contains("correct horse"));
    SmtpMailer::new(cfg.clone())
        .unwrap()
        .send(&hungarian_message())
        .await
        .unwrap();
    assert_delivered(&server);

    cfg.password = Some(Secret::new("wrong"));
    let err = SmtpMailer::new(cfg)
        .unwrap()
        .send(&hungarian_message())
        .await
        .unwrap_err();
    assert!(
        matches!(err, NotifyError::AuthFailed { code: 535, .. }),
        "{err:?}"
    );
    assert!(!err.to_string().contains("wrong"));
}

#[tokio::test]
async fn starttls_refuses_an_untrusted_certificate() {
    let server = SmtpServer::start(ServerTls::Starttls, None);
    // Only the built-in roots: the test CA is unknown.
    let err = SmtpMailer::new(server.config(SmtpTls::Starttls))
        .unwrap()
        .send(&hungarian_message())
        .await
        .unwrap_err();
    assert!(matches!(err, NotifyError::Tls(_)), "{err:?}");
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn starttls_is_required_when_configured() {
    let server = SmtpServer::start(ServerTls::None, None);
    let err = SmtpMailer::new(server.config(SmtpTls::Starttls))
        .unwrap()
        .send(&hungarian_message())
        .await
        .unwrap_err();
    assert!(matches!(err, NotifyError::Tls(_)), "{err:?}");
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn implicit_tls() {
    // aiosmtpd 1.4 does not count SMTPS as TLS for AUTH (it offers AUTH only after STARTTLS),
    // so AUTH is covered by the STARTTLS test; this one proves the TLS-first handshake: the
    // server speaks nothing but TLS on this port.
    let server = SmtpServer::start(ServerTls::Implicit, None);
    let mut cfg = server.config(SmtpTls::Tls);
    cfg.extra_roots_pem = Some(server.ca_pem());
    SmtpMailer::new(cfg)
        .unwrap()
        .send(&hungarian_message())
        .await
        .unwrap();
    assert_delivered(&server);

    let mut plain = server.config(SmtpTls::None);
    plain.timeout = Duration::from_millis(500);
    let err = SmtpMailer::new(plain)
        .unwrap()
        .send(&hungarian_message())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            NotifyError::Timeout {
                step: "greeting",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn credentials_over_plain_text_are_refused() {
    let mut cfg = SmtpConfig::new("127.0.0.1", 25, "noreply@fleet.test");
    cfg.tls = SmtpTls::None;
    cfg.username = Some("u".into());
    cfg.password = Some(Secret::new("p"));
    assert!(matches!(SmtpMailer::new(cfg), Err(NotifyError::Invalid(_))));
}
