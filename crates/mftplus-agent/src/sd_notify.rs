//! systemd's readiness and watchdog protocol (`Type=notify`, `WatchdogSec=`), spoken directly:
//! one datagram per message to the socket in `NOTIFY_SOCKET`. Outside systemd the variable is
//! unset and every call does nothing.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

pub struct Notifier {
    socket: Option<(UnixDatagram, String)>,
    watchdog: Option<Duration>,
}

impl Notifier {
    pub fn from_env() -> Notifier {
        let path = std::env::var("NOTIFY_SOCKET")
            .ok()
            .filter(|p| !p.is_empty());
        // Abstract sockets (`@name`) are addressed with a leading NUL, which std cannot bind
        // to portably; systemd uses a filesystem path for services.
        let socket = path
            .filter(|p| p.starts_with('/'))
            .and_then(|p| UnixDatagram::unbound().ok().map(|s| (s, p)));
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|usec| *usec > 0)
            .map(Duration::from_micros);
        Notifier { socket, watchdog }
    }

    fn send(&self, message: &str) {
        if let Some((socket, path)) = &self.socket {
            if let Err(err) = socket.send_to(message.as_bytes(), path) {
                tracing::debug!("systemd notify {message:?}: {err}");
            }
        }
    }

    pub fn ready(&self) {
        self.send("READY=1");
    }

    pub fn stopping(&self) {
        self.send("STOPPING=1");
    }

    /// Tells the watchdog this process is alive; call at least every [`Notifier::ping_every`].
    pub fn ping(&self) {
        if self.watchdog.is_some() {
            self.send("WATCHDOG=1");
        }
    }

    /// Half the watchdog period, as systemd recommends; `None` without a watchdog.
    pub fn ping_every(&self) -> Option<Duration> {
        self.watchdog.map(|period| period / 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_reach_the_socket_systemd_names() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        let notifier = Notifier {
            socket: Some((UnixDatagram::unbound().unwrap(), path.display().to_string())),
            watchdog: Some(Duration::from_secs(60)),
        };
        notifier.ready();
        notifier.ping();
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"WATCHDOG=1");
        assert_eq!(notifier.ping_every(), Some(Duration::from_secs(30)));
    }
}
