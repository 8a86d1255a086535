//! Spill files on disk: bytes in, bytes out, under a disk budget.
//!
//! This layer knows nothing of value types; the spill codec turns values into bytes and back.
//! A [`SpillDir`] is the directory of one runtime's spill files. [`SpillDir::write`] stores one
//! byte buffer as one file and returns a [`SpillFile`] handle; [`SpillFile::read`] gives the
//! bytes back as [`SpillBytes`] (the memory-mapped file itself when it is stored uncompressed).
//!
//! ```text
//!   SpillDir (one per runtime, Send + Sync)          <base>/brisk-<pid>-<random>/
//!     │ write(hint, &[u8]) ──► SpillFile ──────────►   00000000-<hint>.spill
//!     │                          │ read() ──► SpillBytes (mmap, or decompressed Vec)
//!     │                          └ drop   ──► file deleted, bytes returned to the budget
//!     └ drop ──► directory and every file in it deleted
//! ```
//!
//! # File format
//!
//! A fixed 64-byte header, then the stored payload. All integers are little-endian. The header
//! is 64 bytes so that the payload of an uncompressed file starts 64-byte aligned in the mapping
//! (mappings are page aligned): raw numeric chunks can be viewed in place without a copy.
//!
//! | offset | size | field                                                        |
//! |-------:|-----:|--------------------------------------------------------------|
//! |      0 |    8 | magic `b"BRISKSPL"`                                          |
//! |      8 |    2 | format version (`1`)                                         |
//! |     10 |    1 | codec: `0` = stored as is, `1` = LZ4 block (lz4_flex)        |
//! |     11 |    1 | reserved, `0`                                                |
//! |     12 |    4 | crc32 (crc32fast) of the stored payload bytes                |
//! |     16 |    8 | raw length: bytes handed to `write`, returned by `read`      |
//! |     24 |    8 | stored length: payload bytes after the header                |
//! |     32 |   32 | reserved, zero                                               |
//! |     64 |    … | payload (`stored length` bytes; the file ends there)         |
//!
//! Reading checks, in this order: the file is at least a header long, the magic, the version,
//! the codec, that the file is exactly `64 + stored length` bytes (a shorter one is reported as
//! truncated), the crc32 of the payload, and that the payload expands to exactly `raw length`.
//! Any failure is an error naming the file and what is wrong; nothing is trusted before that.
//!
//! # Compression: only when it pays
//!
//! LZ4 costs CPU (lz4_flex compresses at roughly 250–1600 MiB/s per core, about the speed of the
//! disk itself), so it is used only when it clearly wins. Payloads under 4 KiB are stored as is.
//! Otherwise up to four 16 KiB samples spread over the payload (the whole payload when it is at
//! most 64 KiB) are compressed; only when they shrink to at most 0.7 of their size is the whole
//! payload compressed, and the result is kept only when it is actually smaller. Random or
//! already-compressed data thus costs one small sample and is stored as is (and read back with
//! no copy), while zeros, repeated or low-entropy numeric data shrink several-fold.
//!
//! # Budget
//!
//! Every file counts its full size on disk (header plus stored payload) against the optional
//! `max_bytes` budget. The bytes are reserved atomically before the file is created, so that
//! concurrent writers can never overshoot together; a write that would exceed the budget fails
//! with [`ErrorKind::Memory`] naming the budget, and nothing is left on disk. A failed write
//! (disk full, permissions) is an [`ErrorKind::Io`] naming the file; the partial file is removed
//! and its reservation returned.
//!
//! # Deletion
//!
//! Dropping a [`SpillFile`] deletes its file (without reading it) and returns its bytes to the
//! budget. Dropping the [`SpillDir`] deletes the directory with every file still in it; a
//! `SpillFile` that outlives its directory then reads as an I/O error and its drop does nothing
//! on disk. [`SpillBytes`] already handed out stay valid after either drop: on Unix an unlinked
//! file stays readable through an existing mapping.
//!
//! Files are never `fsync`ed: they are scratch data that dies with the process.
//!
//! # Stale directories
//!
//! A process that is killed leaves its directory behind. When a `SpillDir` is created it looks at
//! its base directory for directories named `brisk-<pid>-*` (`brisk-spill-<pid>-*` in the system
//! temp dir) and removes those whose process no longer exists, checked through `/proc/<pid>` on
//! Linux. Directories of live processes (and of this one) are kept. Where `/proc` is missing no
//! cleanup is done. A base directory shared by processes in different PID namespaces
//! (containers) may see another namespace's live directory as stale; give each its own base.
//!
//! # Threads
//!
//! `SpillDir` and `SpillFile` are `Send + Sync`. Any number of threads may write and read at
//! once: file names come from an atomic sequence number, and the byte and file counters are
//! atomics (the budget reservation is one `fetch_update`).

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use memmap2::Mmap;

use crate::error::{Error, ErrorKind, Result};

/// Magic bytes at the start of every spill file.
const MAGIC: [u8; 8] = *b"BRISKSPL";
/// Format version written and accepted.
const VERSION: u16 = 1;
/// Size of the fixed header; the payload starts here.
pub const HEADER_LEN: usize = 64;
/// Codec flag: payload stored as is.
const CODEC_NONE: u8 = 0;
/// Codec flag: payload is one lz4_flex block.
const CODEC_LZ4: u8 = 1;

/// Payloads smaller than this are never compressed.
const MIN_COMPRESS_LEN: usize = 4 * 1024;
/// Size of one compression sample.
const SAMPLE_LEN: usize = 16 * 1024;
/// Number of samples taken from payloads larger than `SAMPLES * SAMPLE_LEN`.
const SAMPLES: usize = 4;
/// Compress when the samples shrink to at most `COMPRESS_NUM / COMPRESS_DEN` of their size.
const COMPRESS_NUM: usize = 7;
const COMPRESS_DEN: usize = 10;
/// Capacity of the buffered writer (capped at the file size, so small files allocate little).
const WRITE_BUF: usize = 1 << 20;

/// Counters shared by a [`SpillDir`] and its files.
#[derive(Debug, Default)]
struct Shared {
    max_bytes: Option<u64>,
    current: AtomicU64,
    peak: AtomicU64,
    files_written: AtomicU64,
    files_read: AtomicU64,
    bytes_written: AtomicU64,
    raw_bytes_written: AtomicU64,
    seq: AtomicU64,
}

impl Shared {
    /// Reserves `n` bytes of the budget; on failure returns the bytes in use.
    fn reserve(&self, n: u64) -> std::result::Result<(), u64> {
        let max = self.max_bytes;
        let prev = self
            .current
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |cur| {
                let new = cur.checked_add(n)?;
                match max {
                    Some(m) if new > m => None,
                    _ => Some(new),
                }
            })?;
        self.peak.fetch_max(prev + n, Ordering::Relaxed);
        Ok(())
    }

    fn release(&self, n: u64) {
        self.current.fetch_sub(n, Ordering::Relaxed);
    }
}

/// A snapshot of a [`SpillDir`]'s disk use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiskStats {
    /// Bytes of spill files on disk now (headers included).
    pub current_bytes: u64,
    /// The most bytes on disk at once.
    pub peak_bytes: u64,
    /// Files written in total.
    pub files_written: u64,
    /// Files read back in total (each `read` counts).
    pub files_read: u64,
    /// Bytes written to disk in total (headers included, after compression).
    pub bytes_written: u64,
    /// Bytes handed to `write` in total (before compression).
    pub raw_bytes_written: u64,
}

/// The directory of one runtime's spill files, with a disk budget.
///
/// Dropping it removes the directory and every file in it. See the [module docs](self).
pub struct SpillDir {
    path: PathBuf,
    dir: Option<tempfile::TempDir>,
    shared: Arc<Shared>,
}

impl fmt::Debug for SpillDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpillDir")
            .field("path", &self.path)
            .field("max_bytes", &self.shared.max_bytes)
            .field("stats", &self.stats())
            .finish()
    }
}

impl SpillDir {
    /// Makes a fresh spill directory.
    ///
    /// With `dir = None` it is made under the system temp dir, named `brisk-spill-<pid>-<random>`.
    /// With `Some(base)` it is `base/brisk-<pid>-<random>/`; `base` is created if missing.
    /// `max_bytes` caps the bytes of all files on disk at once (`None`: no cap).
    ///
    /// Stale directories left in the base by processes that no longer exist are removed first.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Io`] naming the path when the directory cannot be created.
    pub fn new(dir: Option<&Path>, max_bytes: Option<u64>) -> Result<SpillDir> {
        let pid = std::process::id();
        let (base, kind) = match dir {
            Some(base) => (base.to_path_buf(), "brisk-"),
            None => (std::env::temp_dir(), "brisk-spill-"),
        };
        if dir.is_some() {
            fs::create_dir_all(&base).map_err(|source| {
                io_error(
                    format!("creating spill base directory {}", base.display()),
                    source,
                )
            })?;
        }
        remove_stale_dirs(&base, kind);
        let prefix = format!("{kind}{pid}-");
        let tmp = tempfile::Builder::new()
            .prefix(&prefix)
            .tempdir_in(&base)
            .map_err(|source| {
                io_error(
                    format!("creating spill directory in {}", base.display()),
                    source,
                )
            })?;
        Ok(SpillDir {
            path: tmp.path().to_path_buf(),
            dir: Some(tmp),
            shared: Arc::new(Shared {
                max_bytes,
                ..Shared::default()
            }),
        })
    }

    /// Removes spill directories left in `dir` (or the system temp dir for `None`) by
    /// processes that no longer exist. [`SpillDir::new`] does this too; a runtime calls it when
    /// it starts, before it has anything to spill.
    pub fn remove_stale(dir: Option<&Path>) {
        match dir {
            Some(base) => remove_stale_dirs(base, "brisk-"),
            None => remove_stale_dirs(&std::env::temp_dir(), "brisk-spill-"),
        }
    }

    /// The directory holding the files.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The disk budget, if any.
    pub fn max_bytes(&self) -> Option<u64> {
        self.shared.max_bytes
    }

    /// Writes `bytes` as one spill file and returns its handle.
    ///
    /// `name_hint` goes into the file name (sanitized, shortened) to make the directory readable;
    /// names are unique whatever the hint. The payload is LZ4-compressed only when a sample says
    /// it pays (see the [module docs](self)).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Memory`] when the file would exceed the disk budget; [`ErrorKind::Io`] naming
    /// the file when creating or writing it fails. In both cases nothing is left on disk.
    pub fn write(&self, name_hint: &str, bytes: &[u8]) -> Result<SpillFile> {
        self.write_parts(name_hint, &[], bytes)
    }

    /// Writes `head ++ body` as one spill file, like [`write`](SpillDir::write), without
    /// first copying the two into one buffer (unless the payload is compressed). This is how a
    /// value whose memory is its encoding is spilled where it lies.
    ///
    /// # Errors
    /// As [`write`](SpillDir::write).
    pub fn write_parts(&self, name_hint: &str, head: &[u8], body: &[u8]) -> Result<SpillFile> {
        let raw_len = head.len() + body.len();
        // The body is nearly all of the data; its sample decides.
        let compressed = if worth_compressing(body) {
            let joined;
            let whole = if head.is_empty() {
                body
            } else {
                joined = [head, body].concat();
                &joined
            };
            let packed = lz4_flex::block::compress(whole);
            (packed.len() < raw_len).then_some(packed)
        } else {
            None
        };
        let (codec, parts): (u8, [&[u8]; 2]) = match &compressed {
            Some(packed) => (CODEC_LZ4, [packed.as_slice(), &[]]),
            None => (CODEC_NONE, [head, body]),
        };
        let payload_len = parts[0].len() + parts[1].len();
        let disk_len = (HEADER_LEN + payload_len) as u64;
        let seq = self.shared.seq.fetch_add(1, Ordering::Relaxed);
        let path = self
            .path
            .join(format!("{seq:08}-{}.spill", sanitize(name_hint)));

        if let Err(in_use) = self.shared.reserve(disk_len) {
            return Err(Error::new(ErrorKind::Memory(format!(
                "spill disk budget of {} bytes exceeded: spill file {} needs {disk_len} bytes, \
                 {in_use} bytes already on disk in {}",
                self.shared.max_bytes.unwrap_or(u64::MAX),
                path.display(),
                self.path.display(),
            ))));
        }

        let header = encode_header(codec, raw_len as u64, &parts);
        if let Err(err) = write_file(&path, &header, &parts, disk_len) {
            let _ = fs::remove_file(&path);
            self.shared.release(disk_len);
            return Err(err);
        }

        let s = &self.shared;
        s.files_written.fetch_add(1, Ordering::Relaxed);
        s.bytes_written.fetch_add(disk_len, Ordering::Relaxed);
        s.raw_bytes_written
            .fetch_add(raw_len as u64, Ordering::Relaxed);
        Ok(SpillFile {
            path,
            raw_len,
            disk_len,
            compressed: codec == CODEC_LZ4,
            shared: Arc::clone(&self.shared),
        })
    }

    /// Bytes on disk now and at the peak, files and bytes written and read.
    pub fn stats(&self) -> DiskStats {
        let s = &self.shared;
        DiskStats {
            current_bytes: s.current.load(Ordering::Relaxed),
            peak_bytes: s.peak.load(Ordering::Relaxed),
            files_written: s.files_written.load(Ordering::Relaxed),
            files_read: s.files_read.load(Ordering::Relaxed),
            bytes_written: s.bytes_written.load(Ordering::Relaxed),
            raw_bytes_written: s.raw_bytes_written.load(Ordering::Relaxed),
        }
    }
}

impl Drop for SpillDir {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            // Nothing to report to from a drop; a directory that cannot be removed is left for
            // the stale cleanup of the next run.
            let _ = dir.close();
        }
    }
}

/// One spill file on disk. Dropping it deletes the file and returns its bytes to the budget.
pub struct SpillFile {
    path: PathBuf,
    raw_len: usize,
    disk_len: u64,
    compressed: bool,
    shared: Arc<Shared>,
}

impl fmt::Debug for SpillFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpillFile")
            .field("path", &self.path)
            .field("raw_len", &self.raw_len)
            .field("disk_len", &self.disk_len)
            .field("compressed", &self.compressed)
            .finish()
    }
}

impl SpillFile {
    /// Length of the bytes written (and returned by [`read`](Self::read)).
    pub fn raw_len(&self) -> usize {
        self.raw_len
    }

    /// Size of the file on disk, header included.
    pub fn disk_len(&self) -> u64 {
        self.disk_len
    }

    /// Whether the payload is stored LZ4-compressed.
    pub fn is_compressed(&self) -> bool {
        self.compressed
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the bytes back.
    ///
    /// Memory-maps the file, verifies the header and the crc32 of the payload, and decompresses
    /// it if it is compressed. For an uncompressed file the result is the mapping itself (no
    /// copy); for a compressed one, a freshly decompressed buffer.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Io`] naming the file when it cannot be opened or mapped;
    /// [`ErrorKind::Codec`] naming the file and the fault when it is truncated, has a bad magic,
    /// version or codec, fails its checksum, or does not decompress to its recorded length.
    pub fn read(&self) -> Result<SpillBytes> {
        let path = &self.path;
        let file = File::open(path)
            .map_err(|source| io_error(format!("opening spill file {}", path.display()), source))?;
        let file_len = file
            .metadata()
            .map_err(|source| io_error(format!("reading spill file {}", path.display()), source))?
            .len();
        if file_len < HEADER_LEN as u64 {
            return Err(corrupt(
                path,
                format!(
                    "truncated: file is {file_len} bytes, shorter than its {HEADER_LEN}-byte header"
                ),
            ));
        }
        // SAFETY: `Mmap::map` is unsafe because the mapping's contents change (or access
        // faults) if the file is modified or truncated while mapped. This file lives in the
        // private spill directory of this process, was written completely and closed by
        // `SpillDir::write` before this handle existed, and is never opened for writing again
        // by brisk; it is only unlinked, which leaves an existing mapping intact. Another process
        // truncating or rewriting it would be a bug outside our control; against a file damaged
        // before mapping we check the length and the crc32 below before trusting any contents.
        let map = unsafe { Mmap::map(&file) }
            .map_err(|source| io_error(format!("mapping spill file {}", path.display()), source))?;
        drop(file);
        let (codec, raw_len, stored_len, crc) = decode_header(path, &map)?;
        let expected = (HEADER_LEN as u64).checked_add(stored_len);
        if expected != Some(map.len() as u64) {
            let what = if expected.is_none_or(|e| e > map.len() as u64) {
                "truncated"
            } else {
                "has trailing bytes"
            };
            return Err(corrupt(
                path,
                format!(
                    "{what}: file is {} bytes, header says {HEADER_LEN} + {stored_len}",
                    map.len()
                ),
            ));
        }
        if raw_len != self.raw_len as u64 {
            return Err(corrupt(
                path,
                format!(
                    "header says {raw_len} raw bytes, {} were written",
                    self.raw_len
                ),
            ));
        }
        let payload = &map[HEADER_LEN..];
        let actual = crc32fast::hash(payload);
        if actual != crc {
            return Err(corrupt(
                path,
                format!("checksum mismatch: stored crc32 {crc:#010x}, payload has {actual:#010x}"),
            ));
        }
        let bytes = match codec {
            CODEC_NONE => {
                if stored_len != raw_len {
                    return Err(corrupt(
                        path,
                        format!("uncompressed payload of {stored_len} bytes, header says {raw_len} raw bytes"),
                    ));
                }
                SpillBytes(Repr::Mapped(map))
            }
            _ => {
                let out = lz4_flex::block::decompress(payload, self.raw_len)
                    .map_err(|e| corrupt(path, format!("LZ4 decompression failed: {e}")))?;
                if out.len() != self.raw_len {
                    return Err(corrupt(
                        path,
                        format!("decompressed to {} bytes, header says {raw_len}", out.len()),
                    ));
                }
                SpillBytes(Repr::Owned(out))
            }
        };
        self.shared.files_read.fetch_add(1, Ordering::Relaxed);
        Ok(bytes)
    }
}

impl Drop for SpillFile {
    fn drop(&mut self) {
        // NotFound is expected when the directory was dropped first; other errors cannot be
        // reported from a drop and the directory's removal gets the file later.
        let _ = fs::remove_file(&self.path);
        self.shared.release(self.disk_len);
    }
}

/// Bytes read back from a [`SpillFile`]: the mapped file, or a decompressed buffer.
pub struct SpillBytes(Repr);

enum Repr {
    /// The whole file mapped; the bytes are after the header.
    Mapped(Mmap),
    Owned(Vec<u8>),
}

impl SpillBytes {
    /// True when the bytes are the memory-mapped file itself (no copy was made).
    pub fn is_mapped(&self) -> bool {
        matches!(self.0, Repr::Mapped(_))
    }
}

impl Deref for SpillBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.0 {
            Repr::Mapped(map) => &map[HEADER_LEN..],
            Repr::Owned(v) => v,
        }
    }
}

impl AsRef<[u8]> for SpillBytes {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl fmt::Debug for SpillBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpillBytes")
            .field("len", &self.len())
            .field("mapped", &self.is_mapped())
            .finish()
    }
}

fn io_error(context: String, source: io::Error) -> Error {
    Error::new(ErrorKind::Io { context, source })
}

fn corrupt(path: &Path, message: String) -> Error {
    Error::new(ErrorKind::Codec {
        what: format!("spill file {}", path.display()),
        message,
    })
}

/// The file header of a payload stored as the concatenation of `parts`.
fn encode_header(codec: u8, raw_len: u64, parts: &[&[u8]]) -> [u8; HEADER_LEN] {
    let mut crc = crc32fast::Hasher::new();
    parts.iter().for_each(|p| crc.update(p));
    let stored_len: usize = parts.iter().map(|p| p.len()).sum();
    let mut h = [0u8; HEADER_LEN];
    h[0..8].copy_from_slice(&MAGIC);
    h[8..10].copy_from_slice(&VERSION.to_le_bytes());
    h[10] = codec;
    h[12..16].copy_from_slice(&crc.finalize().to_le_bytes());
    h[16..24].copy_from_slice(&raw_len.to_le_bytes());
    h[24..32].copy_from_slice(&(stored_len as u64).to_le_bytes());
    h
}

/// Returns `(codec, raw_len, stored_len, crc)`; `map` is at least `HEADER_LEN` bytes.
fn decode_header(path: &Path, map: &[u8]) -> Result<(u8, u64, u64, u32)> {
    let u64_at = |at: usize| u64::from_le_bytes(map[at..at + 8].try_into().expect("8 bytes"));
    if map[0..8] != MAGIC {
        return Err(corrupt(
            path,
            format!(
                "bad magic {:02x?}, expected {:02x?} (not a brisk spill file)",
                &map[0..8],
                MAGIC
            ),
        ));
    }
    let version = u16::from_le_bytes([map[8], map[9]]);
    if version != VERSION {
        return Err(corrupt(
            path,
            format!("unsupported format version {version}, expected {VERSION}"),
        ));
    }
    let codec = map[10];
    if codec != CODEC_NONE && codec != CODEC_LZ4 {
        return Err(corrupt(path, format!("unknown codec flag {codec}")));
    }
    let crc = u32::from_le_bytes(map[12..16].try_into().expect("4 bytes"));
    Ok((codec, u64_at(16), u64_at(24), crc))
}

fn write_file(path: &Path, header: &[u8], payload: &[&[u8]], disk_len: u64) -> Result<()> {
    let ctx = || format!("writing spill file {}", path.display());
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|source| io_error(format!("creating spill file {}", path.display()), source))?;
    let cap = usize::try_from(disk_len).map_or(WRITE_BUF, |n| n.min(WRITE_BUF));
    let mut w = BufWriter::with_capacity(cap, file);
    w.write_all(header)
        .and_then(|()| payload.iter().try_for_each(|p| w.write_all(p)))
        .and_then(|()| w.flush())
        .map_err(|source| io_error(ctx(), source))?;
    // Errors on close are not reported by std; a short write has already failed above, and
    // reads verify length and checksum before trusting the file.
    Ok(())
}

/// Whether a sample of `bytes` compresses to at most 0.7 of its size.
fn worth_compressing(bytes: &[u8]) -> bool {
    let len = bytes.len();
    if len < MIN_COMPRESS_LEN {
        return false;
    }
    let mut scratch = vec![0u8; lz4_flex::block::get_maximum_output_size(SAMPLE_LEN * SAMPLES)];
    let mut raw = 0usize;
    let mut packed = 0usize;
    let mut sample = |s: &[u8]| {
        raw += s.len();
        // The scratch buffer holds the worst case, so this cannot fail; count failure as "no".
        packed += lz4_flex::block::compress_into(s, &mut scratch).unwrap_or(s.len());
    };
    if len <= SAMPLE_LEN * SAMPLES {
        sample(bytes);
    } else {
        let span = len - SAMPLE_LEN;
        for i in 0..SAMPLES {
            let at = span / (SAMPLES - 1) * i;
            sample(&bytes[at..at + SAMPLE_LEN]);
        }
    }
    packed * COMPRESS_DEN <= raw * COMPRESS_NUM
}

/// A file-name-safe, short form of a hint.
fn sanitize(hint: &str) -> String {
    let s: String = hint
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if s.is_empty() || s.chars().all(|c| c == '.') {
        "spill".to_string()
    } else {
        s
    }
}

/// Removes `<kind><pid>-*` directories in `base` whose process no longer exists.
fn remove_stale_dirs(base: &Path, kind: &str) {
    if !proc_available() {
        return;
    }
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    let me = std::process::id();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name.strip_prefix(kind) else {
            continue;
        };
        let Some((pid, _)) = rest.split_once('-') else {
            continue;
        };
        if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if pid == me || pid_alive(pid) {
            continue;
        }
        // Only real directories, never a symlink planted in a shared base.
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            // Another process may be removing it at the same time; errors are harmless.
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(target_os = "linux")]
fn proc_available() -> bool {
    Path::new("/proc/self").exists()
}

#[cfg(not(target_os = "linux"))]
fn proc_available() -> bool {
    false
}

fn pid_alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            out.extend_from_slice(&x.to_le_bytes());
        }
        out.truncate(len);
        out
    }

    fn repeating_bytes(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8 / 16).collect()
    }

    fn corrupt_at(path: &Path, at: u64) {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap();
        let mut b = [0u8];
        f.seek(SeekFrom::Start(at)).unwrap();
        f.read_exact(&mut b).unwrap();
        f.seek(SeekFrom::Start(at)).unwrap();
        f.write_all(&[b[0] ^ 0x5a]).unwrap();
    }

    #[test]
    fn is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<SpillDir>();
        check::<SpillFile>();
        check::<SpillBytes>();
    }

    #[test]
    fn round_trip_random_is_stored_uncompressed_and_mapped() {
        let base = tempfile::tempdir().unwrap();
        let dir = SpillDir::new(Some(base.path()), None).unwrap();
        let data = random_bytes(300_000, 1);
        let f = dir.write("random", &data).unwrap();
        assert!(!f.is_compressed());
        assert_eq!(f.raw_len(), data.len());
        assert_eq!(f.disk_len(), (HEADER_LEN + data.len()) as u64);
        assert_eq!(fs::metadata(f.path()).unwrap().len(), f.disk_len());
        let back = f.read().unwrap();
        assert!(back.is_mapped());
        assert_eq!(&*back, &data[..]);
        // The payload of a mapped file is 64-byte aligned.
        assert_eq!(back.as_ptr() as usize % 64, 0);
    }

    #[test]
    fn round_trip_compressible_is_stored_smaller() {
        let base = tempfile::tempdir().unwrap();
        let dir = SpillDir::new(Some(base.path()), None).unwrap();
        for data in [vec![0u8; 200_000], repeating_bytes(123_457)] {
            let f = dir.write("zeros", &data).unwrap();
            assert!(f.is_compressed());
            assert!(f.disk_len() < data.len() as u64 / 2, "{f:?}");
            let back = f.read().unwrap();
            assert!(!back.is_mapped());
            assert_eq!(&*back, &data[..]);
        }
        let s = dir.stats();
        assert_eq!(s.files_written, 2);
        assert_eq!(s.files_read, 2);
        assert!(s.bytes_written < s.raw_bytes_written);
    }

    #[test]
    fn parts_are_stored_as_their_concatenation() {
        let base = tempfile::tempdir().unwrap();
        let dir = SpillDir::new(Some(base.path()), None).unwrap();
        let head = b"header!".to_vec();
        for body in [
            random_bytes(300_000, 9),
            repeating_bytes(200_000),
            Vec::new(),
        ] {
            let whole = [head.as_slice(), &body].concat();
            let f = dir.write_parts("parts", &head, &body).unwrap();
            assert_eq!(f.raw_len(), whole.len());
            assert_eq!(&*f.read().unwrap(), &whole[..]);
            // Same file contents as writing the concatenation.
            let g = dir.write("whole", &whole).unwrap();
            assert_eq!(fs::read(f.path()).unwrap(), fs::read(g.path()).unwrap());
        }
    }

    #[test]
    fn round_trip_empty_and_tiny() {
        let dir = SpillDir::new(None, None).unwrap();
        assert!(dir
            .path()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("brisk-spill-"));
        let f = dir.write("", &[]).unwrap();
        assert_eq!(f.raw_len(), 0);
        assert_eq!(f.disk_len(), HEADER_LEN as u64);
        assert!(f.read().unwrap().is_empty());
        // Tiny payloads are never compressed, however compressible.
        let f = dir.write("tiny/../weird name", &[0u8; 1000]).unwrap();
        assert!(!f.is_compressed());
        assert_eq!(f.path().parent().unwrap(), dir.path());
        assert_eq!(&*f.read().unwrap(), &[0u8; 1000][..]);
    }

    #[test]
    fn drop_file_deletes_it_and_frees_budget() {
        let base = tempfile::tempdir().unwrap();
        let dir = SpillDir::new(Some(base.path()), Some(1 << 20)).unwrap();
        let a = dir.write("a", &random_bytes(10_000, 2)).unwrap();
        let b = dir.write("b", &random_bytes(20_000, 3)).unwrap();
        let total = a.disk_len() + b.disk_len();
        assert_eq!(dir.stats().current_bytes, total);
        let pa = a.path().to_path_buf();
        assert!(pa.exists());
        drop(a);
        assert!(!pa.exists());
        assert_eq!(dir.stats().current_bytes, b.disk_len());
        assert_eq!(dir.stats().peak_bytes, total);
        drop(b);
        assert_eq!(dir.stats().current_bytes, 0);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn drop_dir_removes_directory() {
        let base = tempfile::tempdir().unwrap();
        let dir = SpillDir::new(Some(base.path()), None).unwrap();
        let path = dir.path().to_path_buf();
        let data = random_bytes(5000, 4);
        let f = dir.write("x", &data).unwrap();
        let mapped = f.read().unwrap();
        drop(dir);
        assert!(!path.exists());
        // Bytes already read stay valid; the orphaned handle errors on read, drops quietly.
        assert_eq!(&*mapped, &data[..]);
        assert!(matches!(f.read().unwrap_err().kind(), ErrorKind::Io { .. }));
        drop(f);
    }

    #[test]
    fn budget_exceeded_errors_and_leaves_nothing() {
        let base = tempfile::tempdir().unwrap();
        let dir = SpillDir::new(Some(base.path()), Some(50_000)).unwrap();
        let _a = dir.write("a", &random_bytes(30_000, 5)).unwrap();
        let err = dir.write("b", &random_bytes(30_000, 6)).unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::Memory(_)), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("50000"), "{msg}");
        assert!(msg.contains("budget"), "{msg}");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        assert_eq!(dir.stats().current_bytes, 30_000 + HEADER_LEN as u64);
        // Compressible data fits because it is counted after compression.
        dir.write("zeros", &vec![0u8; 100_000]).unwrap();
    }

    #[test]
    fn corrupted_payload_fails_checksum() {
        let base = tempfile::tempdir().unwrap();
        let dir = SpillDir::new(Some(base.path()), None).unwrap();
        for data in [random_bytes(10_000, 7), vec![0u8; 10_000]] {
            let f = dir.write("c", &data).unwrap();
            corrupt_at(f.path(), HEADER_LEN as u64 + 5);
            let err = f.read().unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains("checksum"), "{msg}");
            assert!(msg.contains(&f.path().display().to_string()), "{msg}");
        }
    }

    #[test]
    fn truncated_file_is_reported() {
        let base = tempfile::tempdir().unwrap();
        let dir = SpillDir::new(Some(base.path()), None).unwrap();
        let f = dir.write("t", &random_bytes(10_000, 8)).unwrap();
        let file = OpenOptions::new().write(true).open(f.path()).unwrap();
        file.set_len(5000).unwrap();
        let msg = f.read().unwrap_err().to_string();
        assert!(msg.contains("truncated"), "{msg}");
        assert!(msg.contains(&f.path().display().to_string()), "{msg}");
        file.set_len(10).unwrap();
        let msg = f.read().unwrap_err().to_string();
        assert!(msg.contains("truncated"), "{msg}");
        file.set_len(0).unwrap();
        assert!(f.read().unwrap_err().to_string().contains("truncated"));
    }

    #[test]
    fn wrong_magic_is_reported() {
        let base = tempfile::tempdir().unwrap();
        let dir = SpillDir::new(Some(base.path()), None).unwrap();
        let f = dir.write("m", &random_bytes(10_000, 9)).unwrap();
        corrupt_at(f.path(), 0);
        let err = f.read().unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::Codec { .. }));
        assert!(err.to_string().contains("magic"), "{err}");
    }

    #[test]
    fn unwritable_base_names_the_path() {
        let base = tempfile::tempdir().unwrap();
        let file = base.path().join("a-file");
        fs::write(&file, b"x").unwrap();
        let bad = file.join("spill");
        let err = SpillDir::new(Some(&bad), None).unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::Io { .. }));
        assert!(
            err.to_string().contains(&bad.display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn stale_dirs_of_dead_processes_are_removed() {
        let base = tempfile::tempdir().unwrap();
        let stale = base.path().join("brisk-999999999-xyz");
        fs::create_dir(&stale).unwrap();
        fs::write(stale.join("00000000-old.spill"), b"old").unwrap();
        let unrelated = base.path().join("brisk-notapid-xyz");
        fs::create_dir(&unrelated).unwrap();
        let live = SpillDir::new(Some(base.path()), None).unwrap();
        assert!(!stale.exists());
        assert!(unrelated.exists());
        let other = SpillDir::new(Some(base.path()), None).unwrap();
        assert!(
            live.path().exists(),
            "a live process's directory was removed"
        );
        assert_ne!(live.path(), other.path());
    }

    #[test]
    fn concurrent_writes_read_back() {
        let base = tempfile::tempdir().unwrap();
        let dir = SpillDir::new(Some(base.path()), None).unwrap();
        let per_thread = 8;
        let files: Vec<(SpillFile, Vec<u8>)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4u64)
                .map(|t| {
                    let dir = &dir;
                    s.spawn(move || {
                        (0..per_thread)
                            .map(|i| {
                                let data = if i % 2 == 0 {
                                    random_bytes(20_000 + i * 100, t * 100 + i as u64)
                                } else {
                                    vec![t as u8; 20_000 + i * 100]
                                };
                                (dir.write(&format!("t{t}-{i}"), &data).unwrap(), data)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        for (f, data) in &files {
            assert_eq!(&*f.read().unwrap(), &data[..]);
        }
        let s = dir.stats();
        assert_eq!(s.files_written, 4 * per_thread as u64);
        assert_eq!(s.files_read, 4 * per_thread as u64);
        let on_disk: u64 = files.iter().map(|(f, _)| f.disk_len()).sum();
        assert_eq!(s.current_bytes, on_disk);
        assert_eq!(s.bytes_written, on_disk);
        let raw: u64 = files.iter().map(|(_, d)| d.len() as u64).sum();
        assert_eq!(s.raw_bytes_written, raw);
        drop(files);
        assert_eq!(dir.stats().current_bytes, 0);
    }

    /// Throughput probe: `cargo test --release --lib spill::disk -- --ignored --nocapture`.
    /// Writes go to the page cache, so this measures the layer (copy, crc32, LZ4), not the disk.
    #[test]
    #[ignore]
    fn throughput_probe() {
        const CHUNK: usize = 64 << 20;
        const TOTAL: usize = 512 << 20;
        let dir = SpillDir::new(None, None).unwrap();
        let gb = |bytes: usize, secs: f64| bytes as f64 / secs / 1e9;
        for (kind, data) in [
            ("random", random_bytes(CHUNK, 42)),
            (
                "compressible",
                (0..CHUNK / 8)
                    .flat_map(|i| ((i / 64) as f64).to_le_bytes())
                    .collect(),
            ),
        ] {
            let t = Instant::now();
            let files: Vec<SpillFile> = (0..TOTAL / CHUNK)
                .map(|i| dir.write(&format!("{kind}-{i}"), &data).unwrap())
                .collect();
            let write = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let mut sum = 0u64;
            for f in &files {
                let b = f.read().unwrap();
                // Touch every page so a mapped read is really read.
                sum = b.iter().step_by(4096).fold(sum, |a, &x| a + x as u64);
                sum += b[b.len() - 1] as u64;
            }
            let read = t.elapsed().as_secs_f64();
            let disk: u64 = files.iter().map(|f| f.disk_len()).sum();
            println!(
                "{kind:>12}: write {:.2} GB/s, read {:.2} GB/s (raw bytes), stored {:.1}% of raw, compressed: {} (checksum {sum})",
                gb(TOTAL, write),
                gb(TOTAL, read),
                disk as f64 * 100.0 / TOTAL as f64,
                files[0].is_compressed(),
            );
        }
    }
}
