//! One HTTP request over plain TCP, so the binary tests need no HTTP client of their own.

use std::io::{Read, Write};

/// `GET path` on `address` (`host:port`, or a `http://host:port` URL); the whole raw reply.
pub fn get(address: &str, path: &str) -> String {
    let address = address.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    reply
}
