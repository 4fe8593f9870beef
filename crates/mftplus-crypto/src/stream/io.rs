//! Framing and the `std::io` conveniences: a whole stream from a reader to a writer.
//!
//! After the header, every record is a frame: a kind byte, a big-endian u32 length, and that
//! many bytes. The kind only tells the reader how to *try* to open the bytes; lying about it
//! makes authentication fail, so the framing itself needs no protection.

use std::io::{Read, Write};

use super::chunk::{Encryptor, SealedChunk};
use super::decrypt::Decryptor;
use super::header::Header;
use super::manifest::{Manifest, ManifestInfo, MAX_SEALED_MANIFEST_LEN};
use super::recipients::{Identity, Recipient};
use super::{StreamError, StreamOptions};

/// A chunk that is not the last one.
pub const FRAME_CHUNK: u8 = 0x00;
/// The last chunk; exactly one per stream, right before the manifest.
pub const FRAME_LAST_CHUNK: u8 = 0x01;
/// The sealed manifest; the final frame, followed by end of input.
pub const FRAME_MANIFEST: u8 = 0x02;
/// A frame's kind byte and big-endian u32 length.
pub const FRAME_HEAD_LEN: usize = 5;

/// The head of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    Chunk { last: bool, len: usize },
    Manifest { len: usize },
}

pub fn write_chunk_frame<W: Write>(writer: &mut W, chunk: &SealedChunk) -> std::io::Result<()> {
    let kind = if chunk.last {
        FRAME_LAST_CHUNK
    } else {
        FRAME_CHUNK
    };
    write_frame(writer, kind, &chunk.bytes)
}

pub fn write_manifest_frame<W: Write>(writer: &mut W, sealed: &[u8]) -> std::io::Result<()> {
    write_frame(writer, FRAME_MANIFEST, sealed)
}

fn write_frame<W: Write>(writer: &mut W, kind: u8, bytes: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(bytes.len())
        .map_err(|_| std::io::Error::other("frame longer than u32::MAX"))?;
    writer.write_all(&frame_head(kind, len))?;
    writer.write_all(bytes)
}

/// The head of a frame of `kind` whose payload is `len` bytes (for writers that send the
/// payload from elsewhere, as the cloud streams a stored chunk).
pub fn frame_head(kind: u8, len: u32) -> [u8; FRAME_HEAD_LEN] {
    let mut head = [0u8; FRAME_HEAD_LEN];
    head[0] = kind;
    head[1..].copy_from_slice(&len.to_be_bytes());
    head
}

/// Reads the next frame head. End of input here is [`StreamError::Truncated`]: a well-formed
/// stream always ends with a manifest frame, which the caller reads by its length.
pub fn read_frame<R: Read>(reader: &mut R) -> Result<Frame, StreamError> {
    let mut head = [0u8; FRAME_HEAD_LEN];
    reader
        .read_exact(&mut head)
        .map_err(StreamError::from_read)?;
    let len = u32::from_be_bytes(head[1..].try_into().expect("4 bytes")) as usize;
    match head[0] {
        FRAME_CHUNK => Ok(Frame::Chunk { last: false, len }),
        FRAME_LAST_CHUNK => Ok(Frame::Chunk { last: true, len }),
        FRAME_MANIFEST => Ok(Frame::Manifest { len }),
        _ => Err(StreamError::Malformed("unknown frame kind")),
    }
}

/// Encrypts everything `reader` yields into `writer` as one complete stream; returns the
/// manifest that was sealed (size and SHA-256 of what was read). Memory: about one chunk.
pub fn encrypt_reader_to_writer<R: Read, W: Write>(
    reader: &mut R,
    writer: &mut W,
    options: &StreamOptions,
    recipients: &[Recipient<'_>],
    info: ManifestInfo,
) -> Result<Manifest, StreamError> {
    let mut enc = Encryptor::new(options, recipients)?;
    writer.write_all(enc.header_bytes())?;
    while let Some(chunk) = enc.fill_from(reader)? {
        write_chunk_frame(writer, &chunk)?;
        enc.recycle(chunk);
    }
    let trailer = enc.finish(info)?;
    write_chunk_frame(writer, &trailer.last_chunk)?;
    write_manifest_frame(writer, &trailer.sealed_manifest)?;
    writer.flush()?;
    Ok(trailer.manifest)
}

/// Decrypts one complete stream from `reader` into `writer`.
///
/// Each chunk's plaintext is written only after that chunk authenticated, but the file as a
/// whole is only proven complete and correct when this returns `Ok`: on `Err`, `writer` may hold
/// an authenticated *prefix* of the file. Callers writing files must write to a temporary file
/// and rename it into place only on `Ok` (and delete it on `Err`). Reads the input to its end
/// and refuses anything after the manifest.
pub fn decrypt_reader_to_writer<R: Read, W: Write>(
    reader: &mut R,
    writer: &mut W,
    identities: &[Identity<'_>],
) -> Result<Manifest, StreamError> {
    let header = Header::read_from(reader)?;
    let mut dec = Decryptor::new(header, identities)?;
    loop {
        match read_frame(reader)? {
            Frame::Chunk { last, len } => {
                let plain = dec.open_from_reader(reader, len, last)?;
                writer.write_all(plain)?;
            }
            Frame::Manifest { len } => {
                if len > MAX_SEALED_MANIFEST_LEN {
                    return Err(StreamError::Malformed("manifest frame too long"));
                }
                let mut sealed = vec![0u8; len];
                reader
                    .read_exact(&mut sealed)
                    .map_err(StreamError::from_read)?;
                let manifest = dec.finish(&sealed)?;
                let mut probe = [0u8; 1];
                loop {
                    match reader.read(&mut probe) {
                        Ok(0) => break,
                        Ok(_) => return Err(StreamError::TrailingData),
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(StreamError::Io(e)),
                    }
                }
                writer.flush()?;
                return Ok(manifest);
            }
        }
    }
}
