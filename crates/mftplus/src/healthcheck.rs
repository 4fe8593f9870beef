//! `mftplus healthcheck`: the container's health probe. The runtime image has no shell, curl or
//! node, so the binary probes itself: one HTTP/1.0 GET over a std `TcpStream`, healthy iff the
//! status is 200 within the deadline. Plain http only: the hub serves plain HTTP, and a probe
//! needs no TLS stack of its own.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// The whole probe (resolve, connect, send, read the status line) must finish within this.
pub const DEADLINE: Duration = Duration::from_secs(3);

/// `http://127.0.0.1:${HUB_PORT:-3002}/health`: the probe runs inside the hub's container, so
/// the hub's own port variable says where it listens.
pub fn default_url(hub_port: Option<&str>) -> String {
    let port = hub_port
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .unwrap_or("3002");
    format!("http://127.0.0.1:{port}/health")
}

/// `Ok(())` iff `GET url` answers 200 within `deadline`; otherwise why not.
pub fn probe(url: &str, deadline: Duration) -> Result<(), String> {
    let started = Instant::now();
    let remaining = || {
        deadline
            .checked_sub(started.elapsed())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| format!("no answer from {url} within {deadline:?}"))
    };
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url}: only http:// URLs can be probed"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(format!("{url}: no host"));
    }
    // Without a port the authority is a bare host (or a bracketed IPv6 literal): http's 80.
    let has_port = authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let target = if has_port {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let addrs: Vec<_> = target
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {authority}: {e}"))?
        .collect();
    let mut last_error = format!("{authority} resolved to no address");
    let mut stream = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, remaining()?) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last_error = format!("cannot connect to {addr}: {e}"),
        }
    }
    let mut stream = stream.ok_or(last_error)?;
    stream
        .set_write_timeout(Some(remaining()?))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {authority}\r\nUser-Agent: mftplus-healthcheck\r\n\r\n"
    )
    .map_err(|e| format!("cannot send the request to {url}: {e}"))?;
    stream
        .set_read_timeout(Some(remaining()?))
        .map_err(|e| e.to_string())?;
    let mut status_line = String::new();
    // Bounded: a peer that streams bytes without a newline cannot keep the probe reading.
    BufReader::new(std::io::Read::take(&stream, 1024))
        .read_line(&mut status_line)
        .map_err(|e| format!("no answer from {url}: {e}"))?;
    remaining()?;
    let status = status_line.split_whitespace().nth(1).unwrap_or("");
    if status_line.starts_with("HTTP/1.") && status == "200" {
        Ok(())
    } else {
        Err(format!("{url} answered {:?}", status_line.trim_end()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;

    /// Serves one connection: reads the request head, then writes `answer` (if any) and waits
    /// `hold` before closing.
    fn one_shot(
        answer: Option<&'static str>,
        hold: Duration,
    ) -> (String, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/health", listener.local_addr().unwrap());
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).unwrap() == 1 {
                head.push(byte[0]);
            }
            if let Some(answer) = answer {
                conn.write_all(answer.as_bytes()).unwrap();
            }
            std::thread::sleep(hold);
            String::from_utf8(head).unwrap()
        });
        (url, server)
    }

    #[test]
    fn a_200_is_healthy_and_the_request_is_a_plain_get_of_the_path() {
        let (url, server) = one_shot(
            Some("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"),
            Duration::ZERO,
        );
        probe(&url, DEADLINE).unwrap();
        let head = server.join().unwrap();
        assert!(head.starts_with("GET /health HTTP/1.0\r\n"), "{head}");
        assert!(head.contains("\r\nHost: 127.0.0.1:"), "{head}");
    }

    #[test]
    fn a_503_is_unhealthy() {
        let (url, server) = one_shot(
            Some("HTTP/1.1 503 Service Unavailable\r\n\r\n"),
            Duration::ZERO,
        );
        let err = probe(&url, DEADLINE).unwrap_err();
        assert!(err.contains("503"), "{err}");
        server.join().unwrap();
    }

    #[test]
    fn nothing_listening_is_unhealthy() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = probe(&format!("http://127.0.0.1:{port}/health"), DEADLINE).unwrap_err();
        assert!(err.contains("cannot connect"), "{err}");
    }

    #[test]
    fn a_silent_server_is_unhealthy_within_the_deadline() {
        let (url, server) = one_shot(None, Duration::from_millis(1500));
        let started = Instant::now();
        let err = probe(&url, Duration::from_millis(500)).unwrap_err();
        assert!(started.elapsed() < Duration::from_millis(1200), "{err}");
        server.join().unwrap();
    }

    #[test]
    fn the_default_url_follows_hub_port() {
        assert_eq!(default_url(None), "http://127.0.0.1:3002/health");
        assert_eq!(default_url(Some("")), "http://127.0.0.1:3002/health");
        assert_eq!(default_url(Some("4100")), "http://127.0.0.1:4100/health");
    }

    #[test]
    fn only_http_urls_are_probed() {
        assert!(probe("https://127.0.0.1:1/health", DEADLINE)
            .unwrap_err()
            .contains("only http://"));
    }
}
