//! PEM-style armor as OpenSSH writes it: `-----BEGIN <LABEL>-----`, the base64 body wrapped
//! at 70 columns, `-----END <LABEL>-----`. Used for `SSH SIGNATURE` and
//! `OPENSSH PRIVATE KEY`.
//!
//! Decoding is strict about the frame (one BEGIN, one matching END, nothing but whitespace
//! around them) and lenient about line breaks inside the body, because signatures travel
//! through JSON, terminals and e-mail, which re-wrap or turn `\n` into `\r\n`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use thiserror::Error;
use zeroize::Zeroizing;

/// ssh-keygen wraps armored bodies at 70 columns; matching it keeps our output byte-identical
/// in shape to what operators already see.
pub const LINE_WIDTH: usize = 70;

/// Armored input larger than this is refused before any decoding work. An SSHSIG of the
/// largest key we support is well under 1 KiB; private keys are a few hundred bytes.
pub const MAX_ARMORED_LEN: usize = 64 * 1024;

/// Label of an armored SSHSIG signature.
pub const SIGNATURE_LABEL: &str = "SSH SIGNATURE";
/// Label of an OpenSSH (openssh-key-v1) private key file.
pub const PRIVATE_KEY_LABEL: &str = "OPENSSH PRIVATE KEY";

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ArmorError {
    #[error("armored text is {0} bytes, more than the {MAX_ARMORED_LEN} allowed")]
    TooLarge(usize),
    #[error("missing `-----BEGIN {0}-----` line")]
    MissingBegin(&'static str),
    #[error("missing `-----END {0}-----` line")]
    MissingEnd(&'static str),
    #[error("unexpected text outside the armor")]
    OutsideText,
    #[error("armored body is not valid base64")]
    Base64,
    #[error("armored body is empty")]
    Empty,
}

/// Wraps `data` in armor with `label`, exactly as ssh-keygen does (trailing newline included).
pub fn encode(label: &str, data: &[u8]) -> String {
    let body = STANDARD.encode(data);
    let mut out =
        String::with_capacity(body.len() + body.len() / LINE_WIDTH + 2 * label.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for line in body.as_bytes().chunks(LINE_WIDTH) {
        // base64 output is ASCII, so any byte split is a char split.
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

/// Removes the armor with `label` and returns the decoded body.
///
/// The returned bytes and the intermediate base64 text are wiped on drop, since private keys
/// go through here too.
pub fn decode(label: &'static str, text: &str) -> Result<Zeroizing<Vec<u8>>, ArmorError> {
    if text.len() > MAX_ARMORED_LEN {
        return Err(ArmorError::TooLarge(text.len()));
    }
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");

    let text = text.trim();
    let rest = text
        .strip_prefix(begin.as_str())
        .ok_or(ArmorError::MissingBegin(label))?;
    let body = rest
        .strip_suffix(end.as_str())
        .ok_or(ArmorError::MissingEnd(label))?;
    // A second frame inside the body (two signatures pasted together) is not "a signature".
    if body.contains("-----") {
        return Err(ArmorError::OutsideText);
    }
    // The BEGIN line must end where the body starts: `-----BEGIN X-----junk` is not armor.
    if !body.is_empty() && !body.starts_with(['\n', '\r']) {
        return Err(ArmorError::MissingBegin(label));
    }
    let compact: Zeroizing<String> =
        Zeroizing::new(body.chars().filter(|c| !c.is_ascii_whitespace()).collect());
    if compact.is_empty() {
        return Err(ArmorError::Empty);
    }
    let decoded = STANDARD
        .decode(compact.as_bytes())
        .map_err(|_| ArmorError::Base64)?;
    Ok(Zeroizing::new(decoded))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_at_seventy_columns_and_round_trips() {
        let data: Vec<u8> = (0..=255u8).collect();
        let armored = encode(SIGNATURE_LABEL, &data);
        assert!(armored.starts_with("-----BEGIN SSH SIGNATURE-----\n"));
        assert!(armored.ends_with("-----END SSH SIGNATURE-----\n"));
        for line in armored.lines() {
            assert!(line.len() <= LINE_WIDTH || line.starts_with("-----"));
        }
        assert_eq!(&*decode(SIGNATURE_LABEL, &armored).unwrap(), &data);
        // CRLF line endings and surrounding whitespace survive transport.
        let crlf = format!("\n  {}  \n", armored.replace('\n', "\r\n"));
        assert_eq!(&*decode(SIGNATURE_LABEL, &crlf).unwrap(), &data);
    }

    #[test]
    fn rejects_bad_frames() {
        let good = encode(SIGNATURE_LABEL, b"hello");
        assert_eq!(
            decode(PRIVATE_KEY_LABEL, &good),
            Err(ArmorError::MissingBegin(PRIVATE_KEY_LABEL))
        );
        let no_end = good.replace("-----END SSH SIGNATURE-----", "");
        assert_eq!(
            decode(SIGNATURE_LABEL, &no_end),
            Err(ArmorError::MissingEnd(SIGNATURE_LABEL))
        );
        let doubled = format!("{good}{good}");
        assert_eq!(
            decode(SIGNATURE_LABEL, &doubled),
            Err(ArmorError::OutsideText)
        );
        let junk = format!("junk\n{good}");
        assert_eq!(
            decode(SIGNATURE_LABEL, &junk),
            Err(ArmorError::MissingBegin(SIGNATURE_LABEL))
        );
        let bad = good.replace("aGVsbG8=", "aGV*bG8=");
        assert_eq!(decode(SIGNATURE_LABEL, &bad), Err(ArmorError::Base64));
        let empty = "-----BEGIN SSH SIGNATURE-----\n-----END SSH SIGNATURE-----";
        assert_eq!(decode(SIGNATURE_LABEL, empty), Err(ArmorError::Empty));
    }
}
