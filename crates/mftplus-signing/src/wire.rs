//! The SSH wire encoding (RFC 4251 §5) that SSHSIG, public-key blobs and private-key files are
//! built from: `uint32` big-endian, `string` as a length-prefixed byte run, `mpint` as a
//! length-prefixed two's-complement big-endian integer.
//!
//! The reader never trusts a length: every read is bounded by what is left, so a hostile
//! length prefix costs nothing but an error.

use thiserror::Error;

/// Why a byte run is not well-formed SSH wire data.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WireError {
    #[error("truncated: {0} needs more bytes than are left")]
    Truncated(&'static str),
    #[error("{0} is not valid UTF-8")]
    NotUtf8(&'static str),
    #[error("{0} has {1} unexpected trailing bytes")]
    TrailingBytes(&'static str, usize),
    #[error("{0} is a negative mpint")]
    NegativeMpint(&'static str),
}

/// A cursor over untrusted SSH wire bytes.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        if self.buf.len() < n {
            return Err(WireError::Truncated(what));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, WireError> {
        let b = self.bytes(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn string(&mut self, what: &'static str) -> Result<&'a [u8], WireError> {
        let len = self.u32(what)? as usize;
        self.bytes(len, what)
    }

    pub(crate) fn utf8(&mut self, what: &'static str) -> Result<&'a str, WireError> {
        std::str::from_utf8(self.string(what)?).map_err(|_| WireError::NotUtf8(what))
    }

    /// Reads an `mpint` that must be non-negative and returns its magnitude without leading
    /// zero bytes (OpenSSH tolerates redundant leading zeros on input, so we do too).
    pub(crate) fn positive_mpint(&mut self, what: &'static str) -> Result<&'a [u8], WireError> {
        let raw = self.string(what)?;
        if raw.first().is_some_and(|b| b & 0x80 != 0) {
            return Err(WireError::NegativeMpint(what));
        }
        let start = raw.iter().position(|&b| b != 0).unwrap_or(raw.len());
        Ok(&raw[start..])
    }

    /// Fails unless every byte was consumed: trailing garbage inside a signed structure is a
    /// sign of confusion between formats, and accepting it would make encodings non-unique.
    pub(crate) fn finish(&self, what: &'static str) -> Result<(), WireError> {
        match self.buf.len() {
            0 => Ok(()),
            n => Err(WireError::TrailingBytes(what, n)),
        }
    }
}

/// Appends SSH wire values to a buffer.
#[derive(Default)]
pub(crate) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(bytes);
        self
    }

    pub(crate) fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub(crate) fn string(&mut self, bytes: &[u8]) -> &mut Self {
        // Everything we encode is bounded far below 4 GiB (blobs are capped at 64 KiB), so the
        // cast cannot truncate; assert it rather than emit a corrupt length.
        let len = u32::try_from(bytes.len()).expect("SSH string longer than 4 GiB");
        self.u32(len).raw(bytes)
    }

    /// Encodes a non-negative big-endian magnitude as an `mpint`: no leading zeros, plus one
    /// zero byte when the top bit is set so it does not read as negative; zero is empty.
    pub(crate) fn positive_mpint(&mut self, magnitude: &[u8]) -> &mut Self {
        let start = magnitude
            .iter()
            .position(|&b| b != 0)
            .unwrap_or(magnitude.len());
        let m = &magnitude[start..];
        if m.first().is_some_and(|b| b & 0x80 != 0) {
            let mut padded = Vec::with_capacity(m.len() + 1);
            padded.push(0);
            padded.extend_from_slice(m);
            self.string(&padded)
        } else {
            self.string(m)
        }
    }

    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

/// Left-pads a big-endian magnitude to exactly `width` bytes, or `None` if it does not fit.
pub(crate) fn left_pad(magnitude: &[u8], width: usize) -> Option<Vec<u8>> {
    if magnitude.len() > width {
        return None;
    }
    let mut out = vec![0u8; width - magnitude.len()];
    out.extend_from_slice(magnitude);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mpint_round_trips_and_pads_high_bit() {
        for magnitude in [
            &[][..],
            &[0x01],
            &[0x7f, 0xff],
            &[0x80],
            &[0x00, 0x00, 0xff, 0x01],
        ] {
            let mut w = Writer::new();
            w.positive_mpint(magnitude);
            let bytes = w.into_bytes();
            let mut r = Reader::new(&bytes);
            let back = r.positive_mpint("x").unwrap();
            r.finish("x").unwrap();
            let trimmed: Vec<u8> = magnitude.iter().copied().skip_while(|&b| b == 0).collect();
            assert_eq!(back, &trimmed[..]);
        }
        let mut w = Writer::new();
        w.positive_mpint(&[0x80]);
        assert_eq!(w.into_bytes(), vec![0, 0, 0, 2, 0x00, 0x80]);
    }

    #[test]
    fn negative_mpint_and_hostile_lengths_are_errors() {
        let mut r = Reader::new(&[0, 0, 0, 1, 0x80]);
        assert_eq!(r.positive_mpint("m"), Err(WireError::NegativeMpint("m")));
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff, 1, 2]);
        assert_eq!(r.string("s"), Err(WireError::Truncated("s")));
    }
}
