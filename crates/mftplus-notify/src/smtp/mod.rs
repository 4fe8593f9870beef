//! Email over SMTP: a small client on tokio (RFC 5321 with STARTTLS, RFC 4616 AUTH PLAIN) and
//! the message format (RFC 5322, MIME, RFC 2047), in `message.rs`.

mod conn;
mod message;

use crate::NotifyError;
use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use conn::{expect_code, Conn};
use mftplus_base::Secret;
use std::sync::Arc;
use std::time::Duration;
use tokio_rustls::rustls::{self, ClientConfig};
use zeroize::Zeroizing;

/// Sends one email. The cloud holds a `dyn Mailer`; tests of the cloud may record instead.
#[async_trait]
pub trait Mailer: Send + Sync {
    async fn send(&self, message: &EmailMessage) -> Result<(), NotifyError>;
}

/// One plain-text message. The sender comes from [`SmtpConfig::from`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailMessage {
    /// Recipient addresses (`a@example` or `Name <a@example>`); at least one.
    pub to: Vec<String>,
    /// Any UTF-8; encoded as RFC 2047 words when it is not short plain ASCII.
    pub subject: String,
    /// Any UTF-8 text; line endings are normalised to CRLF and the body is sent as base64.
    pub body: String,
}

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text throughout. Credentials are refused in this mode.
    None,
    /// Plain connect, then STARTTLS, which the server must offer (usually port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (usually port 465).
    Tls,
}

#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    /// The sender: `noreply@example` or `Display Name <noreply@example>`; its domain also
    /// names the Message-ID.
    pub from: String,
    /// AUTH PLAIN user; no AUTH when absent.
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub tls: SmtpTls,
    /// Limit for each step (connect, handshake, every command and reply).
    pub timeout: Duration,
    /// PEM certificates trusted in addition to the built-in web roots (a relay with a private
    /// CA, or a test server).
    pub extra_roots_pem: Option<String>,
}

impl SmtpConfig {
    /// STARTTLS, no credentials, 30 s per step.
    pub fn new(host: impl Into<String>, port: u16, from: impl Into<String>) -> SmtpConfig {
        SmtpConfig {
            host: host.into(),
            port,
            from: from.into(),
            username: None,
            password: None,
            tls: SmtpTls::Starttls,
            timeout: Duration::from_secs(30),
            extra_roots_pem: None,
        }
    }
}

/// [`Mailer`] over SMTP. One connection per message: notifications are rare, and a pooled
/// session would only add failure modes (idle timeouts on the relay).
#[derive(Debug, Clone)]
pub struct SmtpMailer {
    config: SmtpConfig,
    from: message::Mailbox,
    tls: Arc<ClientConfig>,
}

impl SmtpMailer {
    /// Checks the configuration (sender address, credentials, extra roots) once, up front.
    pub fn new(config: SmtpConfig) -> Result<SmtpMailer, NotifyError> {
        let from = message::parse_mailbox(&config.from)?;
        if config.username.is_some() != config.password.is_some() {
            return Err(NotifyError::Invalid(
                "SMTP username and password must be set together".into(),
            ));
        }
        if config.username.is_some() && config.tls == SmtpTls::None {
            return Err(NotifyError::Invalid(
                "refusing to send SMTP credentials over an unencrypted connection".into(),
            ));
        }
        if config.timeout.is_zero() {
            return Err(NotifyError::Invalid("SMTP timeout must be positive".into()));
        }
        let tls = Arc::new(tls_config(config.extra_roots_pem.as_deref())?);
        Ok(SmtpMailer { config, from, tls })
    }

    async fn session(&self, to: &[message::Mailbox], data: &[u8]) -> Result<(), NotifyError> {
        let cfg = &self.config;
        let mut conn = Conn::connect(&cfg.host, cfg.port, cfg.timeout).await?;
        if cfg.tls == SmtpTls::Tls {
            conn = conn.upgrade(&cfg.host, self.tls.clone()).await?;
        }
        let greeting = conn.read_reply("greeting").await?;
        expect_code("greeting", greeting, &[220])?;
        let ehlo = format!(
            "EHLO {}",
            conn.local
                .map_or_else(|| "[127.0.0.1]".to_string(), Conn::ehlo_name)
        );
        let mut extensions = extensions(&conn.command("EHLO", &ehlo, &[250]).await?);

        if cfg.tls == SmtpTls::Starttls {
            if !extensions.iter().any(|e| e == "STARTTLS") {
                return Err(NotifyError::Tls(
                    "the server does not offer STARTTLS".to_string(),
                ));
            }
            conn.command("STARTTLS", "STARTTLS", &[220]).await?;
            conn = conn.upgrade(&cfg.host, self.tls.clone()).await?;
            // RFC 3207: everything learnt before TLS is forgotten, EHLO again.
            extensions = extensions_of(&mut conn, &ehlo).await?;
        }

        if let (Some(user), Some(password)) = (&cfg.username, &cfg.password) {
            authenticate(&mut conn, &extensions, user, password).await?;
        }

        envelope(&mut conn, &self.from, to).await?;
        conn.command("DATA", "DATA", &[354]).await?;
        conn.write_all("message body", data).await?;
        let accepted = conn.read_reply("end of data").await?;
        expect_code("end of data", accepted, &[250])?;
        // The message is accepted; a failing QUIT does not undo that.
        let _ = conn.command("QUIT", "QUIT", &[221]).await;
        Ok(())
    }
}

/// AUTH PLAIN, over TLS only.
async fn authenticate(
    conn: &mut Conn,
    extensions: &[String],
    user: &str,
    password: &Secret,
) -> Result<(), NotifyError> {
    if !conn.tls {
        return Err(NotifyError::Invalid(
            "refusing to send SMTP credentials over an unencrypted connection".into(),
        ));
    }
    let offers_plain = extensions.iter().any(|e| {
        e.strip_prefix("AUTH")
            .is_some_and(|m| m.split_whitespace().any(|m| m == "PLAIN"))
    });
    if !offers_plain {
        return Err(NotifyError::AuthFailed {
            code: 0,
            message: "the server does not offer AUTH PLAIN".into(),
        });
    }
    // Every copy of the password is wiped when it goes out of scope.
    let plain = Zeroizing::new(format!("\0{user}\0{}", password.expose()));
    let token = Zeroizing::new(B64.encode(plain.as_bytes()));
    let line = Zeroizing::new(format!("AUTH PLAIN {}", token.as_str()));
    match conn.command("AUTH", &line, &[235]).await {
        Ok(_) => Ok(()),
        Err(NotifyError::Smtp { code, message, .. }) => {
            Err(NotifyError::AuthFailed { code, message })
        }
        Err(e) => Err(e),
    }
}

/// MAIL FROM and every RCPT TO. All or nothing: a partial delivery would look like a success
/// to whoever is missing from it.
async fn envelope(
    conn: &mut Conn,
    from: &message::Mailbox,
    to: &[message::Mailbox],
) -> Result<(), NotifyError> {
    conn.command("MAIL FROM", &format!("MAIL FROM:<{}>", from.addr), &[250])
        .await?;
    for rcpt in to {
        match conn
            .command("RCPT TO", &format!("RCPT TO:<{}>", rcpt.addr), &[250, 251])
            .await
        {
            Ok(_) => {}
            Err(NotifyError::Smtp { code, message, .. }) => {
                let _ = conn.command("QUIT", "QUIT", &[221]).await;
                return Err(NotifyError::RecipientRefused {
                    recipient: rcpt.addr.clone(),
                    code,
                    message,
                });
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

async fn extensions_of(conn: &mut Conn, ehlo: &str) -> Result<Vec<String>, NotifyError> {
    Ok(extensions(&conn.command("EHLO", ehlo, &[250]).await?))
}

/// The EHLO keywords after the greeting line, upper-cased (keywords are case-insensitive).
fn extensions(reply: &conn::Reply) -> Vec<String> {
    reply
        .lines
        .iter()
        .skip(1)
        .map(|l| l.trim().to_ascii_uppercase())
        .collect()
}

fn tls_config(extra_roots_pem: Option<&str>) -> Result<ClientConfig, NotifyError> {
    // The workspace's one trust store: the public roots plus the operator's extra CAs.
    let extra = extra_roots_pem
        .map(|pem| mftplus_pki::TrustStore::from_pem(pem.as_bytes(), "extra SMTP roots"))
        .transpose()
        .map_err(|e| NotifyError::Invalid(e.to_string()))?;
    let roots = mftplus_pki::TrustStore::public_and(extra.as_ref());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| NotifyError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, message: &EmailMessage) -> Result<(), NotifyError> {
        if message.to.is_empty() {
            return Err(NotifyError::Invalid("an email needs a recipient".into()));
        }
        let to = message
            .to
            .iter()
            .map(|r| message::parse_mailbox(r))
            .collect::<Result<Vec<_>, _>>()?;
        let built = message::build(
            &self.from,
            &to,
            &message.subject,
            &message.body,
            chrono::Utc::now(),
        );
        let data = message::data_payload(&built.text);
        self.session(&to, &data).await?;
        tracing::debug!(
            message_id = %built.message_id,
            recipients = to.len(),
            relay = %self.config.host,
            "email accepted by the SMTP relay"
        );
        Ok(())
    }
}
