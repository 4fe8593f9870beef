//! `SmtpMailer` against a real SMTP server (see `mftplus_notify::testing`).

use mftplus_base::Secret;
use mftplus_notify::testing::{ServerTls, SmtpServer};
use mftplus_notify::{EmailMessage, Mailer, NotifyError, SmtpConfig, SmtpMailer, SmtpTls};
use std::time::{Duration, Instant};

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
