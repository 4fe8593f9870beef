//! One SMTP session: reading replies, sending commands, upgrading to TLS. Every step runs under
//! the configured timeout. Command lines are never logged (AUTH carries the password).

use crate::NotifyError;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::TlsConnector;

/// A reply line longer than this is not SMTP (RFC 5321 allows 512); refusing it bounds memory.
const MAX_LINE: u64 = 4096;
/// A reply with more lines than this is not SMTP either.
const MAX_LINES: usize = 100;

pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

#[derive(Debug)]
pub(crate) struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    pub fn message(&self) -> String {
        self.lines.join(" / ")
    }
}

pub(crate) struct Conn {
    stream: BufReader<Box<dyn Io>>,
    timeout: Duration,
    pub tls: bool,
    pub local: Option<std::net::SocketAddr>,
}

pub(crate) async fn within<T>(
    timeout: Duration,
    step: &'static str,
    fut: impl Future<Output = Result<T, NotifyError>>,
) -> Result<T, NotifyError> {
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| NotifyError::Timeout { step, timeout })?
}

fn server_name(host: &str) -> Result<ServerName<'static>, NotifyError> {
    ServerName::try_from(host.to_string())
        .map_err(|_| NotifyError::Invalid(format!("not a TLS server name: {host:?}")))
}

impl Conn {
    pub async fn connect(host: &str, port: u16, timeout: Duration) -> Result<Conn, NotifyError> {
        let addr = format!("{host}:{port}");
        let tcp = within(timeout, "connect", async {
            TcpStream::connect((host, port))
                .await
                .map_err(|source| NotifyError::Connect {
                    addr: addr.clone(),
                    source,
                })
        })
        .await?;
        // Nagle would hold each short command back waiting for an ACK.
        let _ = tcp.set_nodelay(true);
        let local = tcp.local_addr().ok();
        Ok(Conn {
            stream: BufReader::new(Box::new(tcp)),
            timeout,
            tls: false,
            local,
        })
    }

    /// The local address as an EHLO address literal: always valid, unlike a guessed hostname.
    pub fn ehlo_name(local: std::net::SocketAddr) -> String {
        match local.ip() {
            std::net::IpAddr::V4(ip) => format!("[{ip}]"),
            std::net::IpAddr::V6(ip) => format!("[IPv6:{ip}]"),
        }
    }

    /// Wraps the stream in TLS (implicit TLS at connect, or after STARTTLS's 220).
    pub async fn upgrade(self, host: &str, config: Arc<ClientConfig>) -> Result<Conn, NotifyError> {
        // Bytes the server sent after its STARTTLS reply would be read as if they came over
        // TLS; a man in the middle uses exactly that to inject commands (CVE-2011-0411 class).
        if !self.stream.buffer().is_empty() {
            return Err(NotifyError::Protocol(
                "server sent data after the STARTTLS reply".into(),
            ));
        }
        let (timeout, local) = (self.timeout, self.local);
        let inner = self.stream.into_inner();
        let name = server_name(host)?;
        let tls = within(timeout, "TLS handshake", async {
            TlsConnector::from(config)
                .connect(name, inner)
                .await
                .map_err(|e| NotifyError::Tls(e.to_string()))
        })
        .await?;
        Ok(Conn {
            stream: BufReader::new(Box::new(tls)),
            timeout,
            tls: true,
            local,
        })
    }

    pub async fn read_reply(&mut self, step: &'static str) -> Result<Reply, NotifyError> {
        let timeout = self.timeout;
        within(timeout, step, async {
            let mut lines = Vec::new();
            loop {
                let mut raw = Vec::new();
                let n = (&mut self.stream)
                    .take(MAX_LINE)
                    .read_until(b'\n', &mut raw)
                    .await
                    .map_err(|source| NotifyError::Io { step, source })?;
                if n == 0 {
                    return Err(NotifyError::Io {
                        step,
                        source: std::io::ErrorKind::UnexpectedEof.into(),
                    });
                }
                if !raw.ends_with(b"\n") {
                    return Err(NotifyError::Protocol("SMTP reply line too long".into()));
                }
                let line = String::from_utf8_lossy(&raw);
                let line = line.trim_end_matches(['\r', '\n']);
                let code = line
                    .get(..3)
                    .and_then(|c| c.parse::<u16>().ok())
                    .filter(|c| (200..600).contains(c))
                    .ok_or_else(|| NotifyError::Protocol(format!("bad SMTP reply: {line:?}")))?;
                let sep = line.as_bytes().get(3).copied();
                lines.push(line.get(4..).unwrap_or("").to_string());
                match sep {
                    Some(b'-') if lines.len() < MAX_LINES => continue,
                    Some(b'-') => return Err(NotifyError::Protocol("SMTP reply too long".into())),
                    None | Some(b' ') => return Ok(Reply { code, lines }),
                    Some(_) => {
                        return Err(NotifyError::Protocol(format!("bad SMTP reply: {line:?}")))
                    }
                }
            }
        })
        .await
    }

    pub async fn write_all(&mut self, step: &'static str, bytes: &[u8]) -> Result<(), NotifyError> {
        let timeout = self.timeout;
        within(timeout, step, async {
            let s = self.stream.get_mut();
            let written = match s.write_all(bytes).await {
                Ok(()) => s.flush().await,
                Err(e) => Err(e),
            };
            written.map_err(|source| NotifyError::Io { step, source })
        })
        .await
    }

    /// Sends one command line and reads the reply; the reply must have one of `expect`'s codes.
    pub async fn command(
        &mut self,
        step: &'static str,
        line: &str,
        expect: &[u16],
    ) -> Result<Reply, NotifyError> {
        let mut bytes = Vec::with_capacity(line.len() + 2);
        bytes.extend_from_slice(line.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        self.write_all(step, &bytes).await?;
        let reply = self.read_reply(step).await?;
        expect_code(step, reply, expect)
    }
}

pub(crate) fn expect_code(
    step: &'static str,
    reply: Reply,
    expect: &[u16],
) -> Result<Reply, NotifyError> {
    if expect.contains(&reply.code) {
        Ok(reply)
    } else {
        Err(NotifyError::Smtp {
            step,
            code: reply.code,
            message: reply.message(),
        })
    }
}
