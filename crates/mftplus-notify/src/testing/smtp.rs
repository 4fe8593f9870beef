//! A real SMTP server for tests (feature `testing`): aiosmtpd from PyPI
//! (`scripts/smtp-test-setup.sh`) on 127.0.0.1, its Mailbox handler writing a maildir, extended
//! by a small handler that refuses one domain and checks AUTH PLAIN. Messages are parsed back
//! with Python's `email` package, a decoder independent of the one under test. Used by this
//! crate's tests and by the cloud's notification tests.

use crate::{SmtpConfig, SmtpTls};
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

pub enum ServerTls {
    None,
    Starttls,
    Implicit,
}

pub struct SmtpServer {
    child: Child,
    pub port: u16,
    pub maildir: PathBuf,
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
    pub fn start(tls: ServerTls, auth: Option<&str>) -> SmtpServer {
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

    pub fn ca_pem(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("ca.pem")).unwrap()
    }

    pub fn config(&self, tls: SmtpTls) -> SmtpConfig {
        let mut cfg = SmtpConfig::new(
            "127.0.0.1",
            self.port,
            "MFTPlus Flotta <noreply@fleet.test>",
        );
        cfg.tls = tls;
        cfg.timeout = Duration::from_secs(10);
        cfg
    }

    pub fn messages(&self) -> Vec<serde_json::Value> {
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
