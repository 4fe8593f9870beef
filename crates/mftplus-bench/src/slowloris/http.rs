//! HTTP/1.1 by hand: nothing in a client library retries, pools or reorders behind the measurement.

use super::*;

/// Why a legitimate request did not end in a 200.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Failure {
    Connect,
    /// End of stream before a full answer.
    Closed,
    /// Any other I/O error (reset, broken pipe).
    Reset,
    Timeout,
    Malformed,
    Status(u16),
}

impl Failure {
    pub(super) fn key(self) -> String {
        match self {
            Failure::Connect => "connect".into(),
            Failure::Closed => "closed".into(),
            Failure::Reset => "reset".into(),
            Failure::Timeout => "timeout".into(),
            Failure::Malformed => "malformed".into(),
            Failure::Status(code) => format!("status_{code}"),
        }
    }
}

/// How the body after a response head is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    Length(usize),
    Chunked,
    /// No length: the body runs to the end of the connection.
    UntilClose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ResponseHead {
    pub(super) status: u16,
    pub(super) framing: Framing,
    /// The server will close after this answer (`Connection: close`, or a body to the close).
    pub(super) closes: bool,
    /// Bytes of the head, including the blank line.
    pub(super) length: usize,
}

/// Parses a response head at the start of `buf`, if it is all there.
pub(super) fn parse_head(buf: &[u8]) -> Result<Option<ResponseHead>, Failure> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() > MAX_HEAD {
            Err(Failure::Malformed)
        } else {
            Ok(None)
        };
    };
    let text = std::str::from_utf8(&buf[..end]).map_err(|_| Failure::Malformed)?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut words = status_line.split(' ');
    if !words.next().unwrap_or("").starts_with("HTTP/1.") {
        return Err(Failure::Malformed);
    }
    let status: u16 = words
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or(Failure::Malformed)?;
    let mut framing = None;
    let mut closes = false;
    for line in lines {
        let (name, value) = line.split_once(':').ok_or(Failure::Malformed)?;
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("content-length") && framing != Some(Framing::Chunked) {
            framing = Some(Framing::Length(
                value.parse().map_err(|_| Failure::Malformed)?,
            ));
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            && value
                .rsplit(',')
                .next()
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("chunked"))
        {
            framing = Some(Framing::Chunked);
        } else if name.eq_ignore_ascii_case("connection")
            && value
                .split(',')
                .any(|v| v.trim().eq_ignore_ascii_case("close"))
        {
            closes = true;
        }
    }
    // 1xx, 204 and 304 have no body whatever the headers say.
    let bodiless = status < 200 || status == 204 || status == 304;
    let framing = if bodiless {
        Framing::Length(0)
    } else {
        framing.unwrap_or(Framing::UntilClose)
    };
    Ok(Some(ResponseHead {
        status,
        framing,
        closes: closes || framing == Framing::UntilClose,
        length: end + 4,
    }))
}

/// Reads more into `buf`; end of stream is [`Failure::Closed`].
pub(super) async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(), Failure> {
    buf.reserve(4096);
    match stream.read_buf(buf).await {
        Ok(0) => Err(Failure::Closed),
        Ok(_) => Ok(()),
        Err(_) => Err(Failure::Reset),
    }
}

/// Takes one CRLF-terminated line off the front of `buf`, reading as needed.
pub(super) async fn take_line(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> Result<Vec<u8>, Failure> {
    loop {
        if let Some(end) = buf.windows(2).position(|w| w == b"\r\n") {
            let line = buf[..end].to_vec();
            buf.drain(..end + 2);
            return Ok(line);
        }
        if buf.len() > MAX_HEAD {
            return Err(Failure::Malformed);
        }
        fill(stream, buf).await?;
    }
}

/// Drops `n` bytes off the front of `buf`, reading as needed.
pub(super) async fn skip(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    mut n: usize,
) -> Result<(), Failure> {
    loop {
        let here = n.min(buf.len());
        buf.drain(..here);
        n -= here;
        if n == 0 {
            return Ok(());
        }
        fill(stream, buf).await?;
    }
}

/// Reads one whole response; leaves any bytes after it in `buf`.
pub(super) async fn read_response(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> Result<ResponseHead, Failure> {
    let head = loop {
        if let Some(head) = parse_head(buf)? {
            break head;
        }
        fill(stream, buf).await?;
    };
    buf.drain(..head.length);
    match head.framing {
        Framing::Length(n) => skip(stream, buf, n).await?,
        Framing::Chunked => loop {
            let line = take_line(stream, buf).await?;
            let size = std::str::from_utf8(&line)
                .ok()
                .map(|l| l.split(';').next().unwrap_or("").trim())
                .and_then(|hex| usize::from_str_radix(hex, 16).ok())
                .ok_or(Failure::Malformed)?;
            if size == 0 {
                // Trailer fields, if any, then the blank line.
                while !take_line(stream, buf).await?.is_empty() {}
                break;
            }
            skip(stream, buf, size + 2).await?;
        },
        Framing::UntilClose => loop {
            buf.clear();
            match fill(stream, buf).await {
                Ok(()) => {}
                Err(Failure::Closed) => break,
                Err(other) => return Err(other),
            }
        },
    }
    Ok(head)
}

pub(super) async fn connect_from(source: IpAddr, target: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = if target.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.bind(SocketAddr::new(source, 0))?;
    let stream = socket.connect(target).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}
