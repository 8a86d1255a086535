//! `read_csv`: CSV files split into partitions by byte range at line boundaries.
//!
//! At graph-build time each file is cut into ranges of about `partition_size` bytes: every
//! nominal cut is moved forward to just after the next newline. Newlines inside quotes must
//! not be cut: when a file's first block contains the quote character, or a quote lies within
//! 64 KiB of a cut, the file is scanned once (64-byte blocks, quote masks: `plain_csv`'s
//! `QuoteState`) and cut only at newlines outside quotes. The schema comes from parsing a
//! sample of the first file (polars' inference, dates only with `parse_dates`), then the
//! user's overrides; every file's header must match the first's.
//!
//! At run time a partition task memory-maps its byte range and parses it with polars'
//! CSV reader on one thread, with the schema fixed and **only the projected columns** (those
//! the query reads) converted. When polars rejects the chunk, the task finds the first bad
//! line by bisecting the chunk's lines and reports `file:line`.

use std::fs::File;
use std::io::{Cursor, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use polars::io::csv::read::_csv_read_internal::{
    cast_columns, prepare_csv_schema, read_chunk, validate_utf8,
};
use polars::prelude::*;

use super::iso_time::{nanos_per, StampParser};
use super::{plain_csv, Frame, Part, Source};
use crate::error::{Error, ErrorKind, Result};

/// Options of [`read_csv`].
#[derive(Clone, Debug)]
pub struct CsvOptions {
    /// Target bytes per partition (default 32 MiB: on 2 cores, 16–32 MiB ranges ran the
    /// frame benchmark ~8% faster than 64 MiB ones — less fresh memory per task in flight).
    pub partition_size: u64,
    /// The first line of each file names the columns (default true).
    pub has_header: bool,
    /// Field separator (default `,`).
    pub separator: u8,
    /// Quote character (default `"`; `None`: no quoting, files always split).
    pub quote_char: Option<u8>,
    /// Infer date/datetime columns from their text (default false: they stay strings).
    pub parse_dates: bool,
    /// Bytes of the first file sampled to infer the schema (default 1 MiB).
    pub sample_bytes: usize,
    /// Column types that override the inferred ones.
    pub dtypes: Vec<(String, DataType)>,
    /// The full schema, skipping inference.
    pub schema: Option<Schema>,
    /// Parse `YYYY-MM-DD[ T]HH:MM:SS[.f…]` datetime columns with brisk's fixed-layout parser
    /// (default true; other layouts fall back to polars' parser).
    pub fast_datetimes: bool,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            partition_size: 32 << 20,
            has_header: true,
            separator: b',',
            quote_char: Some(b'"'),
            parse_dates: false,
            sample_bytes: 1 << 20,
            dtypes: Vec::new(),
            schema: None,
            fast_datetimes: true,
        }
    }
}

impl CsvOptions {
    /// Sets the partition size in bytes.
    pub fn partition_size(mut self, bytes: u64) -> Self {
        self.partition_size = bytes.max(1);
        self
    }
    /// Parses dates and datetimes found in the sample.
    pub fn parse_dates(mut self, yes: bool) -> Self {
        self.parse_dates = yes;
        self
    }
    /// Overrides one column's type.
    pub fn dtype(mut self, column: &str, dtype: DataType) -> Self {
        self.dtypes.push((column.to_string(), dtype));
        self
    }
    /// Sets whether files have a header line.
    pub fn has_header(mut self, yes: bool) -> Self {
        self.has_header = yes;
        self
    }
    /// Sets the full schema.
    pub fn schema(mut self, schema: Schema) -> Self {
        self.schema = Some(schema);
        self
    }
}

fn io_err(context: String) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::new(ErrorKind::Io { context, source })
}

/// Expands a path with `*` / `?` in its last component (sorted); a plain path is itself.
pub(crate) fn expand_glob(pattern: &str) -> Result<Vec<PathBuf>> {
    let path = Path::new(pattern);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    if !name.contains(['*', '?']) {
        return Ok(vec![path.to_path_buf()]);
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut out = Vec::new();
    let entries = std::fs::read_dir(&dir).map_err(io_err(format!("listing {}", dir.display())))?;
    for e in entries {
        let e = e.map_err(io_err(format!("listing {}", dir.display())))?;
        let n = e.file_name().to_string_lossy().to_string();
        if wildcard(name.as_bytes(), n.as_bytes()) && e.path().is_file() {
            out.push(e.path());
        }
    }
    out.sort();
    if out.is_empty() {
        return Err(Error::config(format!(
            "read_csv: no file matches `{pattern}`"
        )));
    }
    Ok(out)
}

fn wildcard(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => wildcard(&p[1..], s) || (!s.is_empty() && wildcard(p, &s[1..])),
        (Some(b'?'), Some(_)) => wildcard(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => wildcard(&p[1..], &s[1..]),
        _ => false,
    }
}

/// Reads the CSV file(s) at `pattern` (a path, or a glob like `dir/*.csv`).
///
/// # Errors
/// A glob matching nothing, an unreadable file, a sample polars cannot parse, a header
/// different from the first file's, or an override naming a column that does not exist.
/// At compute time, a malformed row names its file and line.
///
/// Partitions are parsed from memory-mapped byte ranges: the files must not be truncated or
/// rewritten while a computation reads them (a file found shorter than when the frame was
/// built is an error; one truncated during a parse can kill the process with SIGBUS).
pub fn read_csv(pattern: &str, options: CsvOptions) -> Result<Frame> {
    read_csv_paths(expand_glob(pattern)?, options)
}

/// Reads the given CSV files, in order.
pub fn read_csv_paths<P: AsRef<Path>>(paths: Vec<P>, options: CsvOptions) -> Result<Frame> {
    if paths.is_empty() {
        return Err(Error::config("read_csv: no files given"));
    }
    let paths: Vec<PathBuf> = paths.iter().map(|p| p.as_ref().to_path_buf()).collect();
    let opts = Arc::new(options);
    let first_sample = sample(&paths[0], opts.sample_bytes)?;
    let schema: SchemaRef = Arc::new(infer_schema(&paths[0], &first_sample, &opts)?);
    let mut parts: Vec<Part> = Vec::new();
    for path in &paths {
        let head = if path == &paths[0] {
            first_sample.clone()
        } else {
            sample(path, 64 << 10)?
        };
        let header_end = if opts.has_header {
            let end = head.iter().position(|&b| b == b'\n').map(|p| p + 1);
            let end = end.unwrap_or(head.len());
            check_header(path, &head[..end], &schema, &opts)?;
            end as u64
        } else {
            0
        };
        let lines = head.iter().filter(|&&b| b == b'\n').count().max(1);
        let file = Arc::new(CsvFile {
            path: path.clone(),
            schema: schema.clone(),
            line_bytes: head.len() / lines,
            options: opts.clone(),
        });
        let quoted = opts.quote_char.is_some_and(|q| head.contains(&q));
        for (start, end) in split_file(path, header_end, opts.partition_size, quoted, &opts)? {
            parts.push(Part::Source(Arc::new(CsvPart {
                file: file.clone(),
                start,
                end,
            })));
        }
    }
    Ok(Frame::from_parts(parts, schema))
}

fn sample(path: &Path, bytes: usize) -> Result<Vec<u8>> {
    let f = File::open(path).map_err(io_err(format!("opening {}", path.display())))?;
    let mut buf = Vec::with_capacity(bytes);
    f.take(bytes as u64)
        .read_to_end(&mut buf)
        .map_err(io_err(format!("reading {}", path.display())))?;
    Ok(buf)
}

fn parse_options(opts: &CsvOptions, parse_dates: bool) -> CsvParseOptions {
    CsvParseOptions::default()
        .with_separator(opts.separator)
        .with_quote_char(opts.quote_char)
        .with_try_parse_dates(parse_dates)
}

fn infer_schema(path: &Path, sample: &[u8], opts: &CsvOptions) -> Result<Schema> {
    let mut schema = if let Some(s) = &opts.schema {
        s.clone()
    } else {
        // Whole lines only.
        let end = sample
            .iter()
            .rposition(|&b| b == b'\n')
            .map(|p| p + 1)
            .unwrap_or(sample.len());
        let df = CsvReadOptions::default()
            .with_has_header(opts.has_header)
            .with_infer_schema_length(None)
            .with_n_threads(Some(1))
            .with_parse_options(parse_options(opts, opts.parse_dates))
            .into_reader_with_file_handle(Cursor::new(&sample[..end]))
            .finish()
            .map_err(|e| {
                Error::new(ErrorKind::Input(format!(
                    "read_csv: cannot infer the schema from the start of {}: {e}",
                    path.display()
                )))
            })?;
        df.schema().as_ref().clone()
    };
    for (name, dtype) in &opts.dtypes {
        match schema.get_mut(name.as_str()) {
            Some(d) => *d = dtype.clone(),
            None => {
                return Err(Error::config(format!(
                    "read_csv: dtype override for `{name}`, but {} has no such column",
                    path.display()
                )))
            }
        }
    }
    Ok(schema)
}

fn check_header(path: &Path, line: &[u8], schema: &Schema, opts: &CsvOptions) -> Result<()> {
    let text = String::from_utf8_lossy(line);
    let text = text.trim_end_matches(['\n', '\r']);
    let q = opts.quote_char.map(|q| q as char);
    let names: Vec<String> = text
        .split(opts.separator as char)
        .map(|s| {
            let s = s.trim();
            match q {
                Some(q) => s.trim_matches(q).to_string(),
                None => s.to_string(),
            }
        })
        .collect();
    let expected: Vec<&str> = schema.iter_names().map(|s| s.as_str()).collect();
    if names != expected {
        return Err(Error::new(ErrorKind::Input(format!(
            "read_csv: {}: header {:?} differs from the schema's columns {:?}",
            path.display(),
            names,
            expected
        ))));
    }
    Ok(())
}

/// Byte ranges `[start, end)` of one file's partitions.
fn split_file(
    path: &Path,
    header_end: u64,
    size: u64,
    quoted: bool,
    opts: &CsvOptions,
) -> Result<Vec<(u64, u64)>> {
    let file = File::open(path).map_err(io_err(format!("opening {}", path.display())))?;
    let len = file
        .metadata()
        .map_err(io_err(format!("reading metadata of {}", path.display())))?
        .len();
    if len <= header_end {
        return Ok(Vec::new());
    }
    if len - header_end <= size {
        return Ok(vec![(header_end, len)]);
    }
    let quote_aware = |file: &File| {
        quote_aware_cuts(
            file,
            path,
            header_end,
            len,
            size,
            opts.quote_char.unwrap_or(b'"'),
        )
    };
    let cuts = if quoted {
        quote_aware(&file)?
    } else {
        match newline_cuts(&file, path, header_end, len, size, opts.quote_char)? {
            Some(cuts) => cuts,
            None => quote_aware(&file)?,
        }
    };
    let mut ranges = Vec::new();
    let mut start = header_end;
    for c in cuts {
        ranges.push((start, c));
        start = c;
    }
    ranges.push((start, len));
    Ok(ranges)
}

/// How far around each cut [`newline_cuts`] looks for a quote character.
const QUOTE_WINDOW: u64 = 64 << 10;

/// Cuts just after the first newline at or after every `size` bytes; `None` when a quote
/// character lies within [`QUOTE_WINDOW`] of a cut. A quoted field holding a cut would have
/// its opening quote before the cut and its closing one after, so a cut with no quote within
/// the window on either side is outside every quoted field shorter than the window — a file
/// with quotes only past its first block is thus still cut correctly (by the quote-aware scan).
fn newline_cuts(
    file: &File,
    path: &Path,
    header_end: u64,
    len: u64,
    size: u64,
    quote: Option<u8>,
) -> Result<Option<Vec<u64>>> {
    let read_err = || io_err(format!("reading {}", path.display()));
    let mut cuts = Vec::new();
    let mut nominal = header_end + size;
    let mut buf = vec![0u8; 64 << 10];
    let mut window = vec![0u8; 2 * QUOTE_WINDOW as usize];
    while nominal < len {
        // The next newline at or after `nominal - 1` (so a cut exactly after a newline
        // stays there).
        let mut pos = nominal - 1;
        let cut = loop {
            let n = file.read_at(&mut buf, pos).map_err(read_err())?;
            if n == 0 {
                break len;
            }
            if let Some(p) = memchr::memchr(b'\n', &buf[..n]) {
                break pos + p as u64 + 1;
            }
            pos += n as u64;
        };
        if cut >= len {
            break;
        }
        if let Some(q) = quote {
            let from = cut.saturating_sub(QUOTE_WINDOW).max(header_end);
            let window = &mut window[..((cut + QUOTE_WINDOW).min(len) - from) as usize];
            file.read_exact_at(window, from).map_err(read_err())?;
            if memchr::memchr(q, window).is_some() {
                return Ok(None);
            }
        }
        if cuts.last().is_none_or(|&c| cut > c) {
            cuts.push(cut);
        }
        nominal = cut.max(nominal) + size;
    }
    Ok(Some(cuts))
}

/// Cuts at newlines outside quotes, scanning the whole file once.
fn quote_aware_cuts(
    file: &File,
    path: &Path,
    header_end: u64,
    len: u64,
    size: u64,
    quote: u8,
) -> Result<Vec<u64>> {
    let mut cuts = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut pos = header_end;
    let mut quotes = plain_csv::QuoteState::default();
    let mut next = header_end + size;
    while pos < len {
        let n = file
            .read_at(&mut buf, pos)
            .map_err(io_err(format!("reading {}", path.display())))?;
        if n == 0 {
            break;
        }
        quotes.newlines_outside(&buf[..n], quote, |i| {
            let at = pos + i as u64 + 1;
            if at >= next && at < len {
                cuts.push(at);
                next = at + size;
            }
        });
        pos += n as u64;
    }
    Ok(cuts)
}

/// Indices of `columns` in `schema`, ascending (all columns when `None`).
fn projection(schema: &Schema, columns: Option<&[PlSmallStr]>) -> Vec<usize> {
    match columns {
        None => (0..schema.len()).collect(),
        Some(c) => {
            let mut p: Vec<usize> = c.iter().filter_map(|n| schema.index_of(n)).collect();
            p.sort_unstable();
            p
        }
    }
}

/// What all partitions of one file share.
struct CsvFile {
    path: PathBuf,
    schema: SchemaRef,
    /// Average bytes per line in the file's first block (to size column buffers).
    line_bytes: usize,
    options: Arc<CsvOptions>,
}

/// One byte range of a CSV file.
struct CsvPart {
    file: Arc<CsvFile>,
    start: u64,
    end: u64,
}

impl CsvPart {
    /// The rows of `bytes` (whole lines of this file), `columns` only (all when `None`):
    /// brisk's plain-CSV parser when the range is plain, else polars'.
    fn parse(&self, bytes: &[u8], columns: Option<&[PlSmallStr]>) -> PolarsResult<DataFrame> {
        let f = &self.file;
        let dialect = plain_csv::Dialect {
            separator: f.options.separator,
            quote_char: f.options.quote_char,
            datetimes: f.options.fast_datetimes,
        };
        let projection = projection(&f.schema, columns);
        match plain_csv::parse(
            bytes,
            &f.schema,
            &projection,
            dialect,
            self.rows_hint(bytes),
        ) {
            Some(df) => Ok(df),
            None => self.parse_with_polars(bytes, columns),
        }
    }

    /// The offset of every line of `bytes` (0 and each byte after a newline but the last).
    fn line_starts(&self, bytes: &[u8]) -> Vec<usize> {
        let mut starts = Vec::with_capacity(self.rows_hint(bytes));
        starts.push(0);
        starts.extend(
            memchr::memchr_iter(b'\n', bytes)
                .map(|nl| nl + 1)
                .filter(|&s| s < bytes.len()),
        );
        starts
    }

    /// About how many lines `bytes` holds (to size column buffers).
    fn rows_hint(&self, bytes: &[u8]) -> usize {
        bytes.len() / self.file.line_bytes.max(1) + 16
    }

    /// [`CsvPart::parse`] through polars' chunk parser.
    fn parse_with_polars(
        &self,
        bytes: &[u8],
        columns: Option<&[PlSmallStr]>,
    ) -> PolarsResult<DataFrame> {
        let f = &self.file;
        // Datetime columns are read as text and converted by `iso_datetimes` (polars infers a
        // pattern per chunk and parses generically; ISO timestamps have a fixed layout).
        let wanted = |n: &PlSmallStr| columns.is_none_or(|c| c.contains(n));
        let datetimes: Vec<(PlSmallStr, TimeUnit)> = if f.options.fast_datetimes {
            f.schema
                .iter()
                .filter_map(|(n, d)| match d {
                    DataType::Datetime(tu, None) if wanted(n) => Some((n.clone(), *tu)),
                    _ => None,
                })
                .collect()
        } else {
            Vec::new()
        };
        let schema = if datetimes.is_empty() {
            f.schema.clone()
        } else {
            let mut s = f.schema.as_ref().clone();
            for (n, _) in &datetimes {
                if let Some(d) = s.get_mut(n) {
                    *d = DataType::String;
                }
            }
            Arc::new(s)
        };
        // polars' chunk parser, called directly on this worker: the eager reader would first
        // count lines in a separate pass and run the parsing in polars' thread pool.
        let mut schema = schema;
        let mut to_cast: Vec<Field> = Vec::new();
        prepare_csv_schema(&mut schema, &mut to_cast)?;
        let projection = projection(&schema, columns);
        let check_utf8 = projection
            .iter()
            .any(|&i| schema.get_at_index(i).is_some_and(|(_, d)| d.is_string()));
        if check_utf8 && !validate_utf8(bytes) {
            polars_bail!(ComputeError: "invalid utf-8 sequence");
        }
        let popts = parse_options(&f.options, false);
        let mut df = read_chunk(
            bytes,
            &popts,
            &schema,
            false,
            &projection,
            0,
            self.rows_hint(bytes),
            None,
            usize::MAX,
            bytes.len(),
            Some(0),
        )?;
        cast_columns(&mut df, &to_cast, false, false)?;
        for (n, tu) in datetimes {
            let c = iso_datetimes(df.column(&n)?.str()?, tu)?;
            df.with_column(c)?;
        }
        Ok(df)
    }

    /// The 1-based line number (in the file) of the first line polars rejects (the fast path
    /// never fails, it declines; bisecting through it would only repeat work).
    fn locate_error(&self, bytes: &[u8], columns: Option<&[PlSmallStr]>) -> Option<u64> {
        let lines = self.line_starts(bytes);
        let line_end = |k: usize| lines.get(k).copied().unwrap_or(bytes.len());
        // Bisect for the first failing line over [lo, hi).
        let (mut lo, mut hi) = (0usize, lines.len());
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            if self
                .parse_with_polars(&bytes[lines[lo]..line_end(mid)], columns)
                .is_err()
            {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        // Lines before the chunk: header and everything up to `start`.
        let mut before = 0u64;
        let file = File::open(&self.file.path).ok()?;
        let mut buf = vec![0u8; 1 << 20];
        let mut pos = 0u64;
        while pos < self.start {
            let want = ((self.start - pos) as usize).min(buf.len());
            let n = file.read_at(&mut buf[..want], pos).ok()?;
            if n == 0 {
                break;
            }
            before += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
            pos += n as u64;
        }
        Some(before + lo as u64 + 1)
    }
}

impl Source for CsvPart {
    fn read_rows(&self, rows: &[IdxSize]) -> Result<Option<DataFrame>> {
        self.pick_rows(rows)
    }

    fn read(&self, columns: Option<&[PlSmallStr]>) -> Result<DataFrame> {
        let f = &self.file;
        let path = f.path.display();
        let map = self.map()?;
        let skip = (self.start % PAGE) as usize;
        let bytes = &map[skip..];
        match self.parse(bytes, columns) {
            Ok(df) => Ok(df),
            Err(e) => {
                let line = self.locate_error(bytes, columns);
                let at = match line {
                    Some(l) => format!("{path}:{l}"),
                    None => format!("{path} bytes {}..{}", self.start, self.end),
                };
                Err(Error::new(ErrorKind::Input(format!(
                    "read_csv: malformed row at {at}: {e}"
                ))))
            }
        }
    }
}

impl CsvPart {
    /// The rows `rows` of this partition: the byte offset of every line is found with one
    /// newline scan, the wanted lines are copied into a small buffer in the given order and
    /// parsed with every column. `None` (the caller parses the whole range) when line `i` might
    /// not be row `i`: a quote character anywhere in the range (a quoted newline), an empty
    /// line, or a carriage return.
    fn pick_rows(&self, rows: &[IdxSize]) -> Result<Option<DataFrame>> {
        let map = self.map()?;
        let bytes = &map[(self.start % PAGE) as usize..];
        let quote = self.file.options.quote_char;
        if quote.is_some_and(|q| memchr::memchr(q, bytes).is_some())
            || memchr::memchr(b'\r', bytes).is_some()
        {
            return Ok(None);
        }
        let starts = self.line_starts(bytes);
        // An empty line: polars skips it, so line numbers stop being row numbers.
        if starts.windows(2).any(|w| w[1] - w[0] <= 1) {
            return Ok(None);
        }
        let mut picked: Vec<u8> = Vec::new();
        for &r in rows {
            let Some(&from) = starts.get(r as usize) else {
                return Ok(None); // past the last line
            };
            let to = starts.get(r as usize + 1).copied().unwrap_or(bytes.len());
            picked.extend_from_slice(&bytes[from..to]);
            if !picked.ends_with(b"\n") {
                picked.push(b'\n');
            }
        }
        self.parse(&picked, None).map(Some).map_err(|e| {
            Error::new(ErrorKind::Input(format!(
                "read_csv: {} bytes {}..{}: {e}",
                self.file.path.display(),
                self.start,
                self.end
            )))
        })
    }
}

/// Mapping offsets must be page-aligned (4 KiB on every platform brisk runs on; a larger page
/// size would fail the map with an error, not misread).
const PAGE: u64 = 4096;

impl CsvPart {
    /// This partition's byte range, memory-mapped (from the page boundary before `start`).
    ///
    /// Parsing straight from the page cache saves copying every byte into a buffer (a `pread`
    /// of the range plus the buffer's page faults were ~15% of a parse-bound query's CPU). The
    /// mapping covers one partition and is dropped after the parse, so resident file pages
    /// stay at about one partition per worker.
    fn map(&self) -> Result<memmap2::Mmap> {
        let path = self.file.path.display();
        let file = File::open(&self.file.path).map_err(io_err(format!("opening {path}")))?;
        let len = file
            .metadata()
            .map_err(io_err(format!("reading metadata of {path}")))?
            .len();
        if len < self.end {
            return Err(Error::new(ErrorKind::Input(format!(
                "read_csv: {path} is {len} bytes long, shorter than when the frame was built \
                 (partition bytes {}..{})",
                self.start, self.end
            ))));
        }
        let offset = self.start - self.start % PAGE;
        // SAFETY: a read-only private mapping of a range checked to lie inside the file, owned
        // by this call and dropped after the parse. Its bytes may change if another process
        // rewrites the file meanwhile (as a racing `pread` would see), and truncating the file
        // under the mapping raises SIGBUS: `read_csv` documents that input files must not be
        // truncated while a frame reads them.
        let map = unsafe {
            memmap2::MmapOptions::new()
                .offset(offset)
                .len((self.end - offset) as usize)
                .map(&file)
        }
        .map_err(io_err(format!(
            "memory-mapping {path} bytes {}..{}",
            self.start, self.end
        )))?;
        // Sequential access: the kernel reads ahead and maps pages around each fault.
        let _ = map.advise(memmap2::Advice::Sequential);
        Ok(map)
    }
}

/// Converts a text column of ISO timestamps to `Datetime(tu)`; any value of another layout
/// sends the whole column through polars' own (strict) parser.
fn iso_datetimes(s: &StringChunked, tu: TimeUnit) -> PolarsResult<Column> {
    let per_unit = nanos_per(tu);
    let mut stamps = StampParser::default();
    let fallback = || {
        s.clone()
            .into_series()
            .strict_cast(&DataType::Datetime(tu, None))
            .map(Column::from)
    };
    // Straight into an i64 buffer (nulls as 0 under the column's validity): no per-row
    // `Option` and no builder, as this runs over every timestamp of a time query.
    let mut values: Vec<i64> = Vec::with_capacity(s.len());
    for v in s.iter() {
        match v {
            None => values.push(0),
            Some(text) => match stamps.parse_in(text.as_bytes(), per_unit) {
                Some(v) => values.push(v),
                None => return fallback(),
            },
        }
    }
    let ca = Int64Chunked::from_vec(s.name().clone(), values);
    let ca = if s.null_count() > 0 {
        let mask = s.is_not_null();
        ca.zip_with(&mask, &Int64Chunked::full_null(s.name().clone(), s.len()))?
    } else {
        ca
    };
    Ok(ca.into_datetime(tu, None).into_column())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_columns_keep_nulls_and_fall_back_for_other_layouts() {
        let s = StringChunked::from_iter_options(
            "t".into(),
            [
                Some("2000-01-01 00:00:00"),
                None,
                Some("2000-01-01T00:00:01.25"),
            ]
            .into_iter(),
        );
        let c = iso_datetimes(&s, TimeUnit::Milliseconds).unwrap();
        let v: Vec<Option<i64>> = c
            .as_materialized_series()
            .to_physical_repr()
            .i64()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(v, [Some(946_684_800_000), None, Some(946_684_801_250)]);
        // Another layout goes through polars' parser (which rejects this one).
        let odd = StringChunked::from_iter_options("t".into(), [Some("01/02/2000")].into_iter());
        assert!(iso_datetimes(&odd, TimeUnit::Milliseconds).is_err());
    }

    mod plain_equals_polars {
        use super::*;
        use proptest::prelude::*;

        const INTS: &[&str] = &["", "0", "-12", "+7", "007", "9223372036854775807", "\"42\""];
        const ODD_INTS: &[&str] = &["9223372036854775808", " 5", "1.5", "x"];
        const FLOATS: &[&str] = &[
            "", "0.5", "-0.0", "1e5", "NaN", "inf", "-inf", ".5", "5.", "-1.25E-3", "3",
            "\"0.25\"", "\"\"",
        ];
        const ODD_FLOATS: &[&str] = &["1_0", "abc", " 1", "1.5.2"];
        const TEXTS: &[&str] = &[
            "",
            "abc",
            "ünïcødé",
            "a b",
            "  ",
            "a longer text value",
            "\"q\"",
            "\"a,b\"",
            "\"say \"\"hi\"\"\"",
            "\"\"",
            "\"two\nlines\"",
            "\"\"\"\"",
        ];
        const ODD_TEXTS: &[&str] = &["x\"y", "\"open", "\"a\"b", "\"a\"\"\""];
        const BOOLS: &[&str] = &["true", "False", "TRUE", "", "\"true\""];
        const ODD_BOOLS: &[&str] = &["yes", "1"];
        const STAMPS: &[&str] = &[
            "2000-01-01 00:00:00",
            "2024-02-29T12:34:56.789",
            "",
            "1969-12-31 23:59:59.5",
            "\"2000-01-01 00:00:01\"",
        ];
        const ODD_STAMPS: &[&str] = &["2000-02-30 00:00:00", "01/02/2000 10:00:00", "\"\""];
        const DATES: &[&str] = &[
            "2000-02-29",
            "",
            "1999-12-31",
            "1970-01-01",
            "\"2000-01-02\"",
        ];
        const ODD_DATES: &[&str] = &["2000-1-5", "2001-02-29", "\"\""];

        fn schema() -> Schema {
            Schema::from_iter([
                Field::new("i".into(), DataType::Int64),
                Field::new("s".into(), DataType::String),
                Field::new("f".into(), DataType::Float64),
                Field::new("b".into(), DataType::Boolean),
                Field::new("t".into(), DataType::Datetime(TimeUnit::Milliseconds, None)),
                Field::new("d".into(), DataType::Date),
            ])
        }

        fn part(schema: Schema) -> CsvPart {
            CsvPart {
                file: Arc::new(CsvFile {
                    path: PathBuf::from("test.csv"),
                    schema: Arc::new(schema),
                    line_bytes: 40,
                    options: Arc::new(CsvOptions::default()),
                }),
                start: 0,
                end: 0,
            }
        }

        /// A field: mostly one of `good`, one in ten of `odd` when odd values are allowed.
        fn field(
            good: &'static [&'static str],
            odd: &'static [&'static str],
            allow_odd: bool,
        ) -> impl Strategy<Value = &'static str> {
            let odd_weight = if allow_odd { 1 } else { 0 };
            prop_oneof![
                10 => proptest::sample::select(good),
                odd_weight => proptest::sample::select(odd),
            ]
        }

        fn row(allow_odd: bool) -> impl Strategy<Value = String> {
            (
                field(INTS, ODD_INTS, allow_odd),
                field(TEXTS, ODD_TEXTS, allow_odd),
                field(FLOATS, ODD_FLOATS, allow_odd),
                field(BOOLS, ODD_BOOLS, allow_odd),
                field(STAMPS, ODD_STAMPS, allow_odd),
                field(DATES, ODD_DATES, allow_odd),
            )
                .prop_map(|(i, s, f, b, t, d)| format!("{i},{s},{f},{b},{t},{d}"))
        }

        /// Equal columns, floats compared bit for bit (NaN and -0.0 included).
        fn same(a: &DataFrame, b: &DataFrame) -> bool {
            a.get_column_names() == b.get_column_names()
                && a.height() == b.height()
                && a.columns().iter().zip(b.columns()).all(|(x, y)| {
                    if x.dtype() != y.dtype() {
                        return false;
                    }
                    match (x.f64(), y.f64()) {
                        (Ok(x), Ok(y)) => x
                            .iter()
                            .zip(y.iter())
                            .all(|(p, q)| p.map(f64::to_bits) == q.map(f64::to_bits)),
                        _ => x
                            .as_materialized_series()
                            .equals_missing(y.as_materialized_series()),
                    }
                })
        }

        /// `text` through the fast path with the default dialect.
        fn fast_parse(
            part: &CsvPart,
            text: &str,
            columns: Option<&[PlSmallStr]>,
        ) -> Option<DataFrame> {
            let dialect = plain_csv::Dialect {
                separator: b',',
                quote_char: Some(b'"'),
                datetimes: true,
            };
            let projection = projection(&part.file.schema, columns);
            plain_csv::parse(text.as_bytes(), &part.file.schema, &projection, dialect, 4)
        }

        fn projection_of(mask: u8) -> Option<Vec<PlSmallStr>> {
            if mask == 0 {
                return None;
            }
            let names = ["i", "s", "f", "b", "t", "d"];
            Some(
                names
                    .iter()
                    .enumerate()
                    .filter(|(k, _)| mask & (1 << k) != 0)
                    .map(|(_, n)| PlSmallStr::from(*n))
                    .collect(),
            )
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(200))]

            /// Plain input always takes the fast path, and it gives polars' frame.
            #[test]
            fn on_plain_lines(rows in proptest::collection::vec(row(false), 1..90),
                              mask in 0u8..64, newline_at_end in any::<bool>(),
                              crlf in any::<bool>()) {
                let line_end = if crlf { "\r\n" } else { "\n" };
                let mut text = rows.join(line_end);
                if newline_at_end {
                    text.push_str(line_end);
                }
                let part = part(schema());
                let columns = projection_of(mask);
                let columns = columns.as_deref();
                let fast = fast_parse(&part, &text, columns);
                let fast = fast.expect("plain lines take the fast path");
                let slow = part.parse_with_polars(text.as_bytes(), columns).unwrap();
                prop_assert!(same(&fast, &slow), "fast {fast:?}\npolars {slow:?}");
            }

            /// With odd values mixed in, the fast path either agrees with polars or declines.
            #[test]
            fn on_odd_lines(rows in proptest::collection::vec(row(true), 1..40), mask in 0u8..64,
                            crlf in any::<bool>()) {
                let line_end = if crlf { "\r\n" } else { "\n" };
                let text = rows.join(line_end) + line_end;
                let part = part(schema());
                let columns = projection_of(mask);
                let columns = columns.as_deref();
                let fast = fast_parse(&part, &text, columns);
                if let Some(fast) = fast {
                    let slow = part.parse_with_polars(text.as_bytes(), columns);
                    prop_assert!(slow.is_ok(), "polars rejects what the fast path took: {slow:?}");
                    let slow = slow.unwrap();
                    prop_assert!(same(&fast, &slow), "fast {fast:?}\npolars {slow:?}");
                }
            }
        }
    }
}
