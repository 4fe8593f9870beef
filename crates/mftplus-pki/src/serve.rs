//! Serving an axum router on a listener (plain TCP or [`crate::TlsListener`]) with the limits a
//! server facing the Internet needs, which `axum::serve` does not set:
//!
//! - a deadline for each request's head ([`Limits::header_read`]), which also closes a
//!   keep-alive connection that sends nothing: a client that connects and trickles or withholds
//!   its headers (slowloris) holds a connection for at most that long;
//! - a deadline between two pieces of a request body ([`Limits::body_idle`]): an upload may be
//!   slow, but not stalled;
//! - a graceful stop: no new connection after the stop request, in-flight requests finish, and
//!   after [`Limits::drain`] the remaining connections are closed.
//!
//! The peer address reaches handlers as `ConnectInfo<SocketAddr>`, as with `axum::serve`, and
//! over TLS the verified client certificate as [`PeerCertificate`].

use crate::identity::PeerCertificate;
use axum::extract::ConnectInfo;
use axum::serve::Listener;
use axum::Router;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tower::ServiceExt;

/// A connection that may carry a verified client certificate.
pub trait PeerCertificates {
    fn peer_certificate(&self) -> Option<PeerCertificate>;
}

impl PeerCertificates for tokio::net::TcpStream {
    fn peer_certificate(&self) -> Option<PeerCertificate> {
        None
    }
}

impl PeerCertificates for tokio_rustls::server::TlsStream<tokio::net::TcpStream> {
    fn peer_certificate(&self) -> Option<PeerCertificate> {
        let leaf = self.get_ref().1.peer_certificates()?.first()?;
        Some(PeerCertificate(std::sync::Arc::new(
            leaf.clone().into_owned(),
        )))
    }
}

/// Per-connection and per-request limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_read: Duration,
    pub body_idle: Duration,
    pub drain: Duration,
    /// Open connections overall; beyond it a new one gets 503 `too_many_connections`.
    pub max_connections: usize,
    /// Open connections from one client address (the TCP peer): a slowloris from one
    /// address cannot take every slot.
    pub max_connections_per_address: usize,
    /// Longest request target (414 `uri_too_long` beyond).
    pub max_uri_bytes: usize,
    /// Most header fields, and their total size (431 `headers_too_large` beyond).
    pub max_header_count: usize,
    pub max_header_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read: Duration::from_secs(30),
            body_idle: Duration::from_secs(60),
            drain: Duration::from_secs(30),
            max_connections: 20_000,
            max_connections_per_address: 1_024,
            max_uri_bytes: 8 * 1024,
            max_header_count: 100,
            max_header_bytes: 32 * 1024,
        }
    }
}

impl Limits {
    fn head(&self) -> crate::gate::HeadLimits {
        crate::gate::HeadLimits {
            max_uri_bytes: self.max_uri_bytes,
            max_header_count: self.max_header_count,
            max_header_bytes: self.max_header_bytes,
        }
    }
}

/// [`serve`] on a bound TCP listener, through TLS when `tls` is given (its files watched for
/// changes while it serves).
pub async fn serve_tcp(
    tcp: tokio::net::TcpListener,
    tls: Option<std::sync::Arc<crate::TlsServer>>,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    match tls {
        Some(tls) => {
            let watcher = tls.watch(crate::WATCH_EVERY);
            let listener = crate::TlsListener::new(tcp, tls)?;
            serve(listener, router, limits, shutdown).await;
            watcher.abort();
        }
        None => {
            // As the TLS listener does: small responses (headers, then a short body) must not
            // wait for the client's delayed ACK (~40 ms each on Linux) behind Nagle.
            use axum::serve::ListenerExt;
            let plain = tcp.tap_io(|stream| {
                let _ = stream.set_nodelay(true);
            });
            serve(plain, router, limits, shutdown).await
        }
    }
    Ok(())
}

/// Serves `router` on `listener` until `shutdown` resolves, then drains (see the module docs).
pub async fn serve<L>(
    mut listener: L,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) where
    L: Listener<Addr = SocketAddr>,
    L::Io: PeerCertificates,
{
    // Told to every connection at the stop request: finish the request in flight, then close.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    let http = http1_builder(&limits);
    let gate = crate::gate::ConnectionGate::new(
        limits.max_connections,
        limits.max_connections_per_address,
    );
    let head_limits = limits.head();
    tokio::pin!(shutdown);
    loop {
        let (io, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        // Reap finished connections so the set holds only live ones.
        while connections.try_join_next().is_some() {}
        let Some(slot) = gate.admit(peer.ip()) else {
            tracing::debug!(%peer, "connection refused: too many open");
            connections.spawn(crate::gate::refuse_connection(io));
            continue;
        };
        let router = router.clone();
        let peer_certificate = io.peer_certificate();
        let service = hyper::service::service_fn(move |request: http::Request<Incoming>| {
            let (mut parts, body) = request.into_parts();
            parts.extensions.insert(ConnectInfo(peer));
            if let Some(certificate) = &peer_certificate {
                parts.extensions.insert(certificate.clone());
            }
            let refused = crate::gate::refuse_head(&parts, head_limits);
            let body = axum::body::Body::new(IdleTimeoutBody::new(body, limits.body_idle));
            let router = router.clone();
            async move {
                match refused {
                    Some(refused) => Ok(refused),
                    None => router.oneshot(http::Request::from_parts(parts, body)).await,
                }
            }
        });
        // Upgrades (the hub's tunnels) need the connection kept after the 101.
        let connection = http
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        let mut stop = stop_rx.clone();
        connections.spawn(async move {
            let _slot = slot;
            tokio::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                () = async {
                    let _ = stop.wait_for(|stopping| *stopping).await;
                } => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(err) = ended {
                tracing::debug!(%peer, "connection ended: {err}");
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drain(connections, limits.drain).await;
}

fn http1_builder(limits: &Limits) -> hyper::server::conn::http1::Builder {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read)
        // hyper's own parse limits sit above ours, so a client meets the coded 431 first.
        .max_headers(limits.max_header_count.saturating_mul(2).max(100))
        .keep_alive(true);
    http
}

/// Waits up to `period` for the connections told to stop, then closes what is still open.
async fn drain(mut connections: tokio::task::JoinSet<()>, period: Duration) {
    let drained = tokio::time::timeout(period, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            "connections still open after the drain period; closing them"
        );
        connections.abort_all();
    }
}

/// A request body that fails when no piece of it arrives for `idle`.
struct IdleTimeoutBody {
    inner: Incoming,
    idle: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl IdleTimeoutBody {
    fn new(inner: Incoming, idle: Duration) -> Self {
        IdleTimeoutBody {
            inner,
            idle,
            deadline: Box::pin(tokio::time::sleep(idle)),
        }
    }
}

/// Why a request body was cut off.
#[derive(Debug, thiserror::Error)]
#[error("no part of the request body arrived for {0:?}")]
pub struct BodyStalled(Duration);

impl Body for IdleTimeoutBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                let next = tokio::time::Instant::now() + this.idle;
                this.deadline.as_mut().reset(next);
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyStalled(this.idle))))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
