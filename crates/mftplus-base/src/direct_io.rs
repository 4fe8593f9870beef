//! Large sequential file I/O past the page cache (`O_DIRECT`) where the filesystem allows it:
//! received files (`mftctl receive`) and the cloud's stored chunks.
//!
//! Why: on the machines we measure on, a buffered write of 1 GiB costs 2–4 s of kernel CPU
//! (allocating and filling page-cache pages) against 0.3 s for the same data written with
//! `O_DIRECT`, and reading an uncached GiB through the cache costs 2 s against 0.1 s direct
//! (`docs/benchmarks.md`, "transfer path"); in a profile of `mftctl receive` that copy was the
//! largest single cost, ahead of decryption and hashing together. Both kinds of file are
//! synced to disk before they count anyway, so the page cache buys them nothing.
//!
//! How: data is staged in a block-aligned buffer and written in aligned blocks at aligned
//! offsets through an `O_DIRECT` handle; whatever is left that is not a whole block (the end of
//! the file) goes through an ordinary handle to the same file. Where `O_DIRECT` is refused
//! (tmpfs, some network filesystems, an alignment the device does not accept) everything falls
//! back to ordinary writes, so the result is the same bytes either way.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Alignment of buffers, offsets and lengths for direct writes: a multiple of every logical
/// block size Linux devices use (512 or 4096).
const BLOCK: usize = 4096;
/// Bytes staged before a direct write: big enough that syscalls stay few, small enough to add
/// little to the receiver's memory.
const STAGE: usize = 2 * 1024 * 1024;

/// A `Write` for a file opened by path, from its start; see the module documentation. Call
/// `flush` at the end: staged bytes are written then.
pub struct DirectWriter {
    direct: Option<File>,
    buffered: File,
    /// `STAGE + BLOCK` bytes, of which `stage_at..stage_at + STAGE` is block-aligned.
    staging: Vec<u8>,
    stage_at: usize,
    /// Bytes per direct write.
    stage: usize,
    staged: usize,
    /// File offset of the first staged byte.
    offset: u64,
}

impl DirectWriter {
    /// Opens `path` (which must exist) for writing from its start.
    pub fn open(path: &Path) -> io::Result<Self> {
        Self::with_stage(path, STAGE)
    }

    /// [`DirectWriter::open`] staging `stage` bytes (rounded up to whole blocks) per write:
    /// the memory each open writer holds.
    pub fn with_stage(path: &Path, stage: usize) -> io::Result<Self> {
        let stage = stage.max(1).div_ceil(BLOCK) * BLOCK;
        let buffered = OpenOptions::new().write(true).open(path)?;
        let direct = open_direct(path);
        let (staging, stage_at) = match direct {
            Some(_) => {
                let staging = pool::take(stage + BLOCK);
                let stage_at = staging.as_ptr().align_offset(BLOCK);
                (staging, stage_at)
            }
            None => (Vec::new(), 0),
        };
        Ok(DirectWriter {
            direct,
            buffered,
            staging,
            stage_at,
            stage,
            staged: 0,
            offset: 0,
        })
    }

    /// Whether writes still go past the page cache.
    #[cfg(test)]
    fn is_direct(&self) -> bool {
        self.direct.is_some()
    }

    /// Writes the staged bytes: whole blocks directly, a partial block's worth (only ever at
    /// the end of the data) through the ordinary handle, after which writing stays ordinary.
    fn write_staged(&mut self) -> io::Result<()> {
        let whole = self.staged / BLOCK * BLOCK;
        let range = self.stage_at..self.stage_at + self.staged;
        if whole > 0 {
            let blocks = &self.staging[self.stage_at..self.stage_at + whole];
            let direct = self
                .direct
                .as_ref()
                .expect("staging only with a direct handle");
            if let Err(e) = direct.write_all_at(blocks, self.offset) {
                if e.raw_os_error() != Some(libc::EINVAL) {
                    return Err(e);
                }
                // The filesystem takes O_DIRECT at open but not these writes: go ordinary.
                self.buffered
                    .write_all_at(&self.staging[range], self.offset)?;
                self.offset += self.staged as u64;
                self.staged = 0;
                self.direct = None;
                return Ok(());
            }
        }
        let tail = &self.staging[self.stage_at + whole..self.stage_at + self.staged];
        if !tail.is_empty() {
            self.buffered
                .write_all_at(tail, self.offset + whole as u64)?;
            // Later offsets would no longer be aligned.
            self.direct = None;
        }
        self.offset += self.staged as u64;
        self.staged = 0;
        Ok(())
    }
}

impl Drop for DirectWriter {
    fn drop(&mut self) {
        pool::give(std::mem::take(&mut self.staging));
    }
}

impl Write for DirectWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.direct.is_none() {
            let n = data.len();
            self.buffered.write_all_at(data, self.offset)?;
            self.offset += n as u64;
            return Ok(n);
        }
        let take = (self.stage - self.staged).min(data.len());
        let at = self.stage_at + self.staged;
        self.staging[at..at + take].copy_from_slice(&data[..take]);
        self.staged += take;
        if self.staged == self.stage {
            self.write_staged()?;
        }
        Ok(take)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.staged > 0 {
            self.write_staged()?;
        }
        Ok(())
    }
}

/// Reads a file in pieces past the page cache where the filesystem allows it (else through
/// it), each piece a fresh `Vec` (so it can be handed on without a copy).
pub struct DirectReader {
    path: std::path::PathBuf,
    file: File,
    direct: bool,
    offset: u64,
    len: u64,
}

impl DirectReader {
    pub fn open(path: &Path) -> io::Result<Self> {
        let (file, direct) = match open_direct_read(path) {
            Some(file) => (file, true),
            None => (File::open(path)?, false),
        };
        let len = file.metadata()?.len();
        Ok(DirectReader {
            path: path.to_path_buf(),
            file,
            direct,
            offset: 0,
            len,
        })
    }

    /// The file's length when it was opened.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every byte has been read: [`DirectReader::next_piece`] would answer `None`.
    pub fn at_end(&self) -> bool {
        self.offset >= self.len
    }

    /// The next piece: at most `max` bytes, or `max` rounded up to whole blocks when reading
    /// direct (offsets must stay aligned); `None` at the end.
    pub fn next_piece(&mut self, max: usize) -> io::Result<Option<bytes_piece::Piece>> {
        if self.at_end() {
            return Ok(None);
        }
        if self.direct {
            // No more than what is left (in whole blocks): a 4 KiB object is read with a 4 KiB
            // buffer, not a `max`-sized one the kernel partly zero-fills.
            let left = (self.len - self.offset).min(max.max(1) as u64) as usize;
            let aligned = left.div_ceil(BLOCK) * BLOCK;
            let mut buf = pool::take(aligned + BLOCK);
            let at = buf.as_ptr().align_offset(BLOCK);
            // One read: a short one is the end of the file, and a second read would start at
            // an unaligned offset.
            match read_once_at(&self.file, &mut buf[at..at + aligned], self.offset) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    self.offset += n as u64;
                    return Ok(Some(bytes_piece::Piece { buf, at, len: n }));
                }
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    // Taken at open, refused on read: go on through the page cache.
                    self.file = File::open(&self.path)?;
                    self.direct = false;
                }
                Err(e) => return Err(e),
            }
        }
        let want = max.max(1).min((self.len - self.offset) as usize);
        let mut buf = vec![0u8; want];
        let mut done = 0;
        while done < want {
            match read_once_at(&self.file, &mut buf[done..], self.offset + done as u64)? {
                0 => break,
                n => done += n,
            }
        }
        if done == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.offset += done as u64;
        Ok(Some(bytes_piece::Piece {
            buf,
            at: 0,
            len: done,
        }))
    }
}

/// A piece read by [`DirectReader`]: `len` bytes at `at` in `buf` (aligned reads need slack).
/// Its buffer goes back to the pool when the piece is dropped, so a consumer that hands it on
/// (`bytes::Bytes::from_owner`) returns it once the bytes are sent.
pub mod bytes_piece {
    pub struct Piece {
        pub(crate) buf: Vec<u8>,
        pub(crate) at: usize,
        pub(crate) len: usize,
    }

    impl Piece {
        pub fn as_slice(&self) -> &[u8] {
            &self.buf[self.at..self.at + self.len]
        }
    }

    impl AsRef<[u8]> for Piece {
        fn as_ref(&self) -> &[u8] {
            self.as_slice()
        }
    }

    impl Drop for Piece {
        fn drop(&mut self) {
            super::pool::give(std::mem::take(&mut self.buf));
        }
    }
}

/// Buffers for direct reads and write staging, kept for the next piece. A fresh buffer of a
/// megabyte or two per piece cost page faults and zeroing on every use: about a seventh of the
/// cloud's CPU while it relayed a large transfer (`docs/benchmarks.md`, "The inbox follows a
/// large upload"). A taken buffer's contents are whatever a previous user left; every user
/// fills what it exposes (a read's bytes, staged data) before anyone sees it.
pub mod pool {
    use std::sync::Mutex;

    /// Buffers kept at most; beyond that a returned buffer is freed.
    const KEEP: usize = 16;
    /// Buffers below this size are not worth keeping: the allocator serves them without faults.
    const MIN_POOLED: usize = 64 * 1024;

    static FREE: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

    /// A buffer of exactly `len` bytes: a kept one that is large enough but not more than
    /// twice as large, else a new one.
    pub fn take(len: usize) -> Vec<u8> {
        if len >= MIN_POOLED {
            let mut free = FREE.lock().unwrap_or_else(|p| p.into_inner());
            let fits = |b: &Vec<u8>| b.capacity() >= len && b.capacity() <= len.saturating_mul(2);
            if let Some(at) = free.iter().position(fits) {
                let mut buf = free.swap_remove(at);
                drop(free);
                // Within the capacity: no allocation, and only bytes past the old length are
                // written (returned buffers keep their full length).
                buf.resize(len, 0);
                return buf;
            }
        }
        vec![0u8; len]
    }

    /// Keeps `buf` for a later [`take`], if there is room.
    pub fn give(mut buf: Vec<u8>) {
        if buf.capacity() < MIN_POOLED {
            return;
        }
        let mut free = FREE.lock().unwrap_or_else(|p| p.into_inner());
        if free.len() < KEEP {
            let capacity = buf.capacity();
            buf.resize(capacity, 0);
            free.push(buf);
        }
    }

    #[cfg(test)]
    pub(crate) fn kept() -> usize {
        FREE.lock().unwrap().len()
    }
}

/// One `pread`, retried only when interrupted.
fn read_once_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    loop {
        match file.read_at(buf, offset) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

#[cfg(target_os = "linux")]
fn open_direct(path: &Path) -> Option<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
        .ok()
}

#[cfg(target_os = "linux")]
fn open_direct_read(path: &Path) -> Option<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
        .ok()
}

#[cfg(not(target_os = "linux"))]
fn open_direct(_path: &Path) -> Option<File> {
    None
}

#[cfg(not(target_os = "linux"))]
fn open_direct_read(_path: &Path) -> Option<File> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 131 % 251) as u8).collect()
    }

    /// Writes `data` in pieces of `piece` bytes, then flushes; returns what the file holds.
    fn round_trip(dir: &Path, data: &[u8], piece: usize, ordinary: bool) -> (Vec<u8>, bool) {
        let path = dir.join(format!("out-{}-{piece}-{ordinary}", data.len()));
        File::create(&path).unwrap();
        let mut w = DirectWriter::open(&path).unwrap();
        if ordinary {
            w.direct = None;
        }
        let was_direct = w.is_direct();
        for p in data.chunks(piece.max(1)) {
            w.write_all(p).unwrap();
        }
        w.flush().unwrap();
        drop(w);
        (std::fs::read(&path).unwrap(), was_direct)
    }

    #[test]
    fn every_size_and_piece_pattern_writes_the_same_bytes() {
        // Where /tmp refuses O_DIRECT (tmpfs on some systems) this covers the ordinary path
        // only, and says so; the test below always covers it.
        let dir = tempfile::tempdir().unwrap();
        let mut saw_direct = false;
        for len in [
            0,
            1,
            BLOCK - 1,
            BLOCK,
            BLOCK + 1,
            STAGE,
            STAGE + 7,
            3 * STAGE + 4095,
        ] {
            for piece in [1000, BLOCK, STAGE, 10 * 1024 * 1024] {
                if len > 200_000 && piece == 1000 {
                    continue;
                }
                let data = pattern(len);
                for ordinary in [false, true] {
                    let (got, direct) = round_trip(dir.path(), &data, piece, ordinary);
                    saw_direct |= direct;
                    assert!(got == data, "len {len} piece {piece} ordinary {ordinary}");
                }
            }
        }
        if !saw_direct {
            eprintln!("note: O_DIRECT was refused here; only the ordinary path was tested");
        }
    }

    #[test]
    fn the_pool_hands_a_returned_buffer_out_again_and_keeps_a_bounded_number() {
        // Sizes no other test here uses, so parallel tests do not take these buffers.
        let len = 9 * 1024 * 1024 + 17;
        let mut first = pool::take(len);
        first[len - 1] = 7;
        let at = first.as_ptr();
        pool::give(first);
        let again = pool::take(len - 5);
        assert_eq!(again.as_ptr(), at, "the same allocation");
        assert_eq!(again.len(), len - 5);
        pool::give(again);
        let far_larger = pool::take(len * 3);
        assert_ne!(far_larger.as_ptr(), at, "not a buffer less than half used");
        pool::give(pool::take(1024));
        for _ in 0..40 {
            pool::give(vec![0u8; 1024 * 1024]);
        }
        assert!(pool::kept() <= 16);
    }

    #[test]
    fn pieces_read_back_every_byte() {
        let dir = tempfile::tempdir().unwrap();
        for len in [
            0,
            1,
            BLOCK - 1,
            BLOCK,
            BLOCK + 1,
            STAGE + 7,
            3 * STAGE + 4095,
        ] {
            let path = dir.path().join(format!("r{len}"));
            let data = pattern(len);
            std::fs::write(&path, &data).unwrap();
            for max in [1000, BLOCK, 1024 * 1024] {
                let mut r = DirectReader::open(&path).unwrap();
                assert_eq!(r.len(), len as u64);
                let mut got = Vec::new();
                while let Some(p) = r.next_piece(max).unwrap() {
                    assert!(p.len <= max.div_ceil(BLOCK) * BLOCK);
                    // The buffer fits what was left, not `max`: a small object's read must not
                    // take (and fault in) a buffer sized for a large one.
                    let left = len - got.len();
                    let fits = left.min(max).div_ceil(BLOCK) * BLOCK + BLOCK;
                    assert!(p.buf.len() <= fits, "len {len} max {max}: {}", p.buf.len());
                    got.extend_from_slice(p.as_slice());
                }
                assert!(got == data, "len {len} max {max}");
            }
        }
    }

    #[test]
    fn a_flush_midway_keeps_the_bytes_right() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        File::create(&path).unwrap();
        let data = pattern(STAGE + 3 * BLOCK + 10);
        let mut w = DirectWriter::open(&path).unwrap();
        w.write_all(&data[..BLOCK + 5]).unwrap();
        w.flush().unwrap();
        w.write_all(&data[BLOCK + 5..]).unwrap();
        w.flush().unwrap();
        drop(w);
        assert!(std::fs::read(&path).unwrap() == data);
    }
}
