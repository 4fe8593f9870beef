//! Building the RFC 5322 + MIME text of a message and putting it on the wire for DATA.

use crate::NotifyError;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

/// An address as it appears in a header and in the envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mailbox {
    pub name: Option<String>,
    pub addr: String,
}

/// Parses `addr@example` or `Display Name <addr@example>`. Addresses are ASCII only (no
/// SMTPUTF8), and anything that could break out of a command line or header is refused.
pub(crate) fn parse_mailbox(input: &str) -> Result<Mailbox, NotifyError> {
    let input = input.trim();
    let (name, addr) = match (input.rfind('<'), input.ends_with('>')) {
        (Some(open), true) => {
            let name = input[..open].trim().trim_matches('"').trim();
            let name = (!name.is_empty()).then(|| name.to_string());
            (name, &input[open + 1..input.len() - 1])
        }
        _ => (None, input),
    };
    let ok = !addr.is_empty()
        && addr.is_ascii()
        && addr.matches('@').count() == 1
        && !addr.starts_with('@')
        && !addr.ends_with('@')
        && !addr.chars().any(|c| {
            c.is_ascii_control() || c.is_ascii_whitespace() || "<>()[],;:\\\"".contains(c)
        });
    if !ok {
        return Err(NotifyError::Invalid(format!(
            "not an email address: {addr:?}"
        )));
    }
    if let Some(n) = &name {
        if n.chars().any(|c| c.is_control()) {
            return Err(NotifyError::Invalid(
                "control character in a display name".into(),
            ));
        }
    }
    Ok(Mailbox {
        name,
        addr: addr.to_string(),
    })
}

fn format_mailbox(m: &Mailbox) -> String {
    match &m.name {
        None => m.addr.clone(),
        Some(n) if n.is_ascii() && !n.chars().any(|c| "\"\\()<>[]:;@,.".contains(c)) => {
            format!("{n} <{}>", m.addr)
        }
        Some(n) => format!("{} <{}>", encode_words(n), m.addr),
    }
}

/// RFC 2047 `B` encoded-words, folded so that each stays within 75 characters. Words split on
/// character boundaries: a UTF-8 sequence cut in two would decode as garbage.
pub(crate) fn encode_words(text: &str) -> String {
    // 75 - len("=?UTF-8?B?") - len("?=") = 63 base64 characters → at most 45 input bytes.
    const MAX_BYTES: usize = 45;
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in text.chars() {
        if chunk.len() + c.len_utf8() > MAX_BYTES {
            words.push(format!("=?UTF-8?B?{}?=", B64.encode(chunk.as_bytes())));
            chunk.clear();
        }
        chunk.push(c);
    }
    if !chunk.is_empty() || words.is_empty() {
        words.push(format!("=?UTF-8?B?{}?=", B64.encode(chunk.as_bytes())));
    }
    words.join("\r\n ")
}

/// The Subject header value: as is when it is short printable ASCII, encoded-words otherwise.
fn subject_value(subject: &str) -> String {
    // Line breaks in a subject would inject headers; they become spaces.
    let subject: String = subject
        .chars()
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .collect();
    let plain = subject.len() <= 68
        && subject.chars().all(|c| (' '..='~').contains(&c))
        // A literal "=?" would be decoded as an encoded-word by the reader.
        && !subject.contains("=?");
    if plain {
        subject
    } else {
        encode_words(&subject)
    }
}

/// Every line ending (CRLF, bare LF, bare CR) becomes CRLF, the canonical form of text/plain.
pub(crate) fn normalize_crlf(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 32);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push_str("\r\n");
            }
            '\n' => out.push_str("\r\n"),
            c => out.push(c),
        }
    }
    out
}

/// Base64 wrapped at 76 characters per line (RFC 2045).
fn base64_lines(bytes: &[u8]) -> String {
    let encoded = B64.encode(bytes);
    let mut out = String::with_capacity(encoded.len() + encoded.len() / 38);
    for (i, chunk) in encoded.as_bytes().chunks(76).enumerate() {
        if i > 0 {
            out.push_str("\r\n");
        }
        // Base64 output is ASCII, so any byte chunk is valid UTF-8.
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
    }
    out
}

pub(crate) struct Built {
    pub text: String,
    pub message_id: String,
}

/// The full message: headers, blank line, base64 text/plain body, CRLF line endings.
pub(crate) fn build(
    from: &Mailbox,
    to: &[Mailbox],
    subject: &str,
    body: &str,
    date: chrono::DateTime<chrono::Utc>,
) -> Built {
    let domain = from.addr.rsplit('@').next().unwrap_or("localhost");
    let message_id = format!("<{}@{}>", uuid::Uuid::new_v4().simple(), domain);
    let to_header = to
        .iter()
        .map(format_mailbox)
        .collect::<Vec<_>>()
        .join(",\r\n ");
    let mut text = String::new();
    for (name, value) in [
        ("Date", date.to_rfc2822()),
        ("From", format_mailbox(from)),
        ("To", to_header),
        ("Subject", subject_value(subject)),
        ("Message-ID", message_id.clone()),
        ("MIME-Version", "1.0".to_string()),
        ("Content-Type", "text/plain; charset=utf-8".to_string()),
        ("Content-Transfer-Encoding", "base64".to_string()),
    ] {
        text.push_str(name);
        text.push_str(": ");
        text.push_str(&value);
        text.push_str("\r\n");
    }
    text.push_str("\r\n");
    text.push_str(&base64_lines(normalize_crlf(body).as_bytes()));
    text.push_str("\r\n");
    Built { text, message_id }
}

/// The DATA payload: CRLF line endings, a leading "." doubled on every line (RFC 5321 §4.5.2),
/// and the terminating "." line.
pub(crate) fn data_payload(message: &str) -> Vec<u8> {
    let normalized = normalize_crlf(message);
    let mut out = Vec::with_capacity(normalized.len() + 8);
    for line in normalized.split_inclusive("\r\n") {
        if line.starts_with('.') {
            out.push(b'.');
        }
        out.extend_from_slice(line.as_bytes());
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bare_and_named_addresses() {
        assert_eq!(parse_mailbox("a@b.example").unwrap().addr, "a@b.example");
        let m = parse_mailbox("Flotta Értesítő <noreply@b.example>").unwrap();
        assert_eq!(m.addr, "noreply@b.example");
        assert_eq!(m.name.as_deref(), Some("Flotta Értesítő"));
        for bad in [
            "",
            "no-at",
            "a@b@c",
            "a b@c",
            "a@b\r\nRCPT TO:<x@y>",
            "<a@b>x",
            "@b",
        ] {
            assert!(parse_mailbox(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn encoded_words_round_trip_and_stay_short() {
        let subject = "Gép leállt: ügyfél szerver árvíztűrő tükörfúrógép — nagyon hosszú tárgy";
        let encoded = encode_words(subject);
        let mut decoded = Vec::new();
        for word in encoded.split("\r\n ") {
            assert!(word.len() <= 75, "{word} too long");
            let inner = word
                .strip_prefix("=?UTF-8?B?")
                .and_then(|w| w.strip_suffix("?="))
                .unwrap();
            let bytes = B64.decode(inner).unwrap();
            // Each word must be valid UTF-8 on its own.
            assert!(std::str::from_utf8(&bytes).is_ok());
            decoded.extend(bytes);
        }
        assert_eq!(String::from_utf8(decoded).unwrap(), subject);
        assert!(encoded.contains("\r\n "), "long subject was not folded");
    }

    #[test]
    fn ascii_subject_stays_plain_but_cannot_inject() {
        assert_eq!(subject_value("Host down"), "Host down");
        assert!(subject_value("x\r\nBcc: evil@x").starts_with("x  Bcc"));
        assert!(subject_value("=?UTF-8?B?x?=").starts_with("=?UTF-8?B?"));
        assert!(subject_value("Gép").starts_with("=?UTF-8?B?"));
    }

    #[test]
    fn crlf_normalisation() {
        assert_eq!(normalize_crlf("a\nb\r\nc\rd\r"), "a\r\nb\r\nc\r\nd\r\n");
    }

    #[test]
    fn dot_stuffing_and_terminator() {
        let out = data_payload(".leading\n..two\nmid.dle\n.");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "..leading\r\n...two\r\nmid.dle\r\n..\r\n.\r\n"
        );
        assert_eq!(data_payload("x\r\n"), b"x\r\n.\r\n");
    }

    #[test]
    fn built_message_has_the_headers_and_a_base64_body() {
        let from = parse_mailbox("MFTPlus <noreply@fleet.example>").unwrap();
        let to = vec![
            parse_mailbox("a@x.example").unwrap(),
            parse_mailbox("b@x.example").unwrap(),
        ];
        let built = build(
            &from,
            &to,
            "Gép leállt",
            "első sor\nmásodik",
            chrono::Utc::now(),
        );
        let (head, body) = built.text.split_once("\r\n\r\n").unwrap();
        for h in [
            "Date: ",
            "From: MFTPlus <noreply@fleet.example>",
            "To: a@x.example,\r\n b@x.example",
            "Subject: =?UTF-8?B?",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: base64",
        ] {
            assert!(head.contains(h), "missing {h:?} in {head}");
        }
        assert!(head.contains(&format!("Message-ID: {}", built.message_id)));
        assert!(built.message_id.ends_with("@fleet.example>"));
        let decoded = B64.decode(body.replace("\r\n", "")).unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), "első sor\r\nmásodik");
    }
}
