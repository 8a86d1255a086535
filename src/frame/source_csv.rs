//! `read_csv`: CSV files split into partitions by byte range at line boundaries.
//!
//! At graph-build time each file is cut into ranges of about `partition_size` bytes: every
//! nominal cut is moved forward to just after the next newline. Newlines inside quotes must
//! not be cut: every file is first searched for the quote character (memory-mapped, `memchr`,
//! files in parallel), and a file holding one is scanned once more (64-byte blocks, quote
//! masks: `plain_csv`'s `QuoteState`) and cut only at newlines outside quotes, so a quoted
//! field of any length is never cut. Each file's rows start after a UTF-8 byte-order mark,
//! `skip_rows` rows, comment lines and the header, as in polars' reader. The schema comes
//! from parsing a sample of the first file with polars' reader (dates only with
//! `try_parse_dates`), then the user's overrides; every file's header must match the first's.
//!
//! At run time a partition task memory-maps its byte range and parses it with brisk's
//! plain-CSV parser or, when that declines, polars' CSV chunk parser on one thread, with the
//! schema fixed and **only the projected columns** (those the query reads) converted. When
//! polars rejects the chunk, the task finds the first bad line by bisecting the chunk's lines
//! and reports `file:line`.

use std::fs::File;
use std::io::{Cursor, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use polars::io::csv::read::_csv_read_internal::{
    cast_columns, is_comment_line, prepare_csv_schema, read_chunk, validate_utf8, CountLines,
};
use polars::prelude::*;

use super::iso_time::{nanos_per, StampParser};
use super::{plain_csv, Frame, Part, Source};
use crate::error::{Error, Result};

/// Options of [`read_csv`]: polars' CSV reader options, plus how files are split.
///
/// Set them with the builder methods; each reader option means what the polars option of the
/// same name means, and a partitioned read gives the frame polars' reader gives on the whole
/// file with the same options.
#[derive(Clone, Debug)]
pub struct CsvOptions {
    partition_size: u64,
    has_header: bool,
    separator: u8,
    quote_char: Option<u8>,
    try_parse_dates: bool,
    sample_bytes: usize,
    infer_schema_length: Option<usize>,
    dtypes: Vec<(String, DataType)>,
    schema: Option<Schema>,
    fast_datetimes: bool,
    null_values: Option<NullValues>,
    missing_is_null: bool,
    truncate_ragged_lines: bool,
    comment_prefix: Option<CommentPrefix>,
    skip_rows: usize,
    skip_rows_after_header: usize,
    encoding: CsvEncoding,
    decimal_comma: bool,
    ignore_errors: bool,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            // On 2 cores, 16–32 MiB ranges ran the frame benchmark ~8% faster than 64 MiB
            // ones: less fresh memory per task in flight.
            partition_size: 32 << 20,
            has_header: true,
            separator: b',',
            quote_char: Some(b'"'),
            try_parse_dates: false,
            sample_bytes: 1 << 20,
            infer_schema_length: None,
            dtypes: Vec::new(),
            schema: None,
            fast_datetimes: true,
            null_values: None,
            missing_is_null: true,
            truncate_ragged_lines: false,
            comment_prefix: None,
            skip_rows: 0,
            skip_rows_after_header: 0,
            encoding: CsvEncoding::Utf8,
            decimal_comma: false,
            ignore_errors: false,
        }
    }
}

impl CsvOptions {
    /// Target bytes per partition (default 32 MiB).
    pub fn partition_size(mut self, bytes: u64) -> Self {
        self.partition_size = bytes.max(1);
        self
    }
    /// Whether the first line of each file (after `skip_rows` rows and comment lines) names
    /// the columns (default true).
    pub fn has_header(mut self, yes: bool) -> Self {
        self.has_header = yes;
        self
    }
    /// The field separator (default `,`).
    pub fn separator(mut self, separator: u8) -> Self {
        self.separator = separator;
        self
    }
    /// The quote character (default `"`; `None`: no quoting).
    pub fn quote_char(mut self, quote: Option<u8>) -> Self {
        self.quote_char = quote;
        self
    }
    /// Infers date and datetime columns from their text, as polars' `try_parse_dates`
    /// (default false: they stay strings).
    pub fn try_parse_dates(mut self, yes: bool) -> Self {
        self.try_parse_dates = yes;
        self
    }
    /// Bytes at the start of the first file read to infer the schema (default 1 MiB).
    pub fn sample_bytes(mut self, bytes: usize) -> Self {
        self.sample_bytes = bytes.max(1);
        self
    }
    /// Rows of the sample the schema is inferred from (`None`, the default: every row of the
    /// sample; polars' reader defaults to 100).
    pub fn infer_schema_length(mut self, rows: Option<usize>) -> Self {
        self.infer_schema_length = rows;
        self
    }
    /// Overrides one column's inferred type (polars' `schema_overwrite`).
    pub fn dtype(mut self, column: &str, dtype: DataType) -> Self {
        self.dtypes.push((column.to_string(), dtype));
        self
    }
    /// The full schema, skipping inference.
    pub fn schema(mut self, schema: Schema) -> Self {
        self.schema = Some(schema);
        self
    }
    /// Values read as null (polars' `null_values`).
    pub fn null_values(mut self, values: Option<NullValues>) -> Self {
        self.null_values = values;
        self
    }
    /// Whether an empty text field is null (default true) or an empty string.
    pub fn missing_is_null(mut self, yes: bool) -> Self {
        self.missing_is_null = yes;
        self
    }
    /// Drops the extra fields of lines longer than the header instead of failing.
    pub fn truncate_ragged_lines(mut self, yes: bool) -> Self {
        self.truncate_ragged_lines = yes;
        self
    }
    /// Lines starting with this prefix are skipped (polars' `comment_prefix`).
    pub fn comment_prefix(mut self, prefix: Option<&str>) -> Self {
        self.comment_prefix = prefix.map(CommentPrefix::new_from_str);
        self
    }
    /// Rows skipped at the start of every file, before the header.
    pub fn skip_rows(mut self, rows: usize) -> Self {
        self.skip_rows = rows;
        self
    }
    /// Rows skipped after the header of every file.
    pub fn skip_rows_after_header(mut self, rows: usize) -> Self {
        self.skip_rows_after_header = rows;
        self
    }
    /// Whether text must be UTF-8 (the default) or invalid bytes become `�`.
    pub fn encoding(mut self, encoding: CsvEncoding) -> Self {
        self.encoding = encoding;
        self
    }
    /// Reads `,` as the decimal point of floats (the separator must then be another byte).
    pub fn decimal_comma(mut self, yes: bool) -> Self {
        self.decimal_comma = yes;
        self
    }
    /// Reads a value that does not parse as its column's type as null instead of failing.
    pub fn ignore_errors(mut self, yes: bool) -> Self {
        self.ignore_errors = yes;
        self
    }
    /// Whether datetime columns of the layout `YYYY-MM-DD[ T]HH:MM:SS[.f…]` are parsed by
    /// brisk's fixed-layout parser (default true) or by polars' generic one; the values are
    /// the same either way.
    pub fn fast_datetimes(mut self, yes: bool) -> Self {
        self.fast_datetimes = yes;
        self
    }

    /// Whether brisk's plain-CSV parser may read ranges: it reproduces polars' default
    /// treatment of nulls, comments and decimals only.
    fn plain_parser_applies(&self) -> bool {
        self.null_values.is_none()
            && self.comment_prefix.is_none()
            && self.missing_is_null
            && !self.decimal_comma
    }

    /// polars' parse options for these options.
    fn parse_options(&self, try_parse_dates: bool) -> CsvParseOptions {
        CsvParseOptions::default()
            .with_separator(self.separator)
            .with_quote_char(self.quote_char)
            .with_try_parse_dates(try_parse_dates)
            .with_null_values(self.null_values.clone())
            .with_missing_is_null(self.missing_is_null)
            .with_truncate_ragged_lines(self.truncate_ragged_lines)
            .with_comment_prefix(self.comment_prefix.clone())
            .with_decimal_comma(self.decimal_comma)
            .with_encoding(self.encoding)
    }
}

/// Expands a path with `*` / `?` in its last component (sorted); a plain path is itself.
/// `reader` names the caller in messages.
pub(crate) fn expand_glob(pattern: &str, reader: &str) -> Result<Vec<PathBuf>> {
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
    let listing = || format!("{reader}: listing {} for `{pattern}`", dir.display());
    let mut out = Vec::new();
    let entries = std::fs::read_dir(&dir).map_err(|e| Error::io(listing(), e))?;
    for e in entries {
        let e = e.map_err(|e| Error::io(listing(), e))?;
        let n = e.file_name().to_string_lossy().to_string();
        if wildcard(name.as_bytes(), n.as_bytes()) && e.path().is_file() {
            out.push(e.path());
        }
    }
    out.sort();
    if out.is_empty() {
        return Err(Error::input(format!(
            "{reader}: no file matches `{pattern}`"
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
/// A glob matching nothing, an unreadable file, a sample polars cannot parse (with its
/// `file:line`), a header different from the first file's, or an override naming a column
/// that does not exist. At compute time, a malformed row names its file and line.
///
/// Partitions are parsed from memory-mapped byte ranges: the files must not be truncated or
/// rewritten while a computation reads them (a file found shorter than when the frame was
/// built is an error; one truncated during a parse can kill the process with SIGBUS).
pub fn read_csv(pattern: &str, options: CsvOptions) -> Result<Frame> {
    read_csv_paths(expand_glob(pattern, "read_csv")?, options)
}

/// Reads the given CSV files, in order.
pub fn read_csv_paths<P: AsRef<Path>>(paths: Vec<P>, options: CsvOptions) -> Result<Frame> {
    if paths.is_empty() {
        return Err(Error::config("read_csv: no files given"));
    }
    let paths: Vec<PathBuf> = paths.iter().map(|p| p.as_ref().to_path_buf()).collect();
    let opts = Arc::new(options);
    let first_sample = sample(&paths[0], opts.sample_bytes)?;
    let first_layout = Layout::of(&first_sample, &opts);
    let schema: SchemaRef = Arc::new(infer_schema(
        &paths[0],
        &first_sample,
        &first_layout,
        &opts,
    )?);
    let quoted_files = files_with_quotes(&paths, opts.quote_char, opts.partition_size)?;
    let mut parts: Vec<Part> = Vec::new();
    for (path, quoted) in paths.iter().zip(quoted_files) {
        let head = if path == &paths[0] {
            first_sample.clone()
        } else {
            sample(path, 64 << 10)?
        };
        let layout = Layout::of(&head, &opts);
        if let Some((from, to)) = layout.header {
            check_header(path, &head[from..to], layout.header_line, &schema, &opts)?;
        }
        let data = &head[layout.data_start.min(head.len())..];
        let lines = data.iter().filter(|&&b| b == b'\n').count().max(1);
        let file = Arc::new(CsvFile {
            path: path.clone(),
            schema: schema.clone(),
            line_bytes: (data.len() / lines).max(1),
            options: opts.clone(),
        });
        let data_start = layout.data_start as u64;
        for (start, end) in split_file(path, data_start, opts.partition_size, quoted, &opts)? {
            parts.push(Part::Source(Arc::new(CsvPart {
                file: file.clone(),
                start,
                end,
            })));
        }
    }
    Ok(Frame::from_parts(parts, schema))
}

/// Whether each file holds the quote character anywhere (then it is cut at newlines outside
/// quotes only: a quoted field may hold newlines and be of any length). The files are
/// memory-mapped and searched with `memchr`, several at once; a file of at most one
/// partition (`size` bytes) is not cut, so not searched.
fn files_with_quotes(paths: &[PathBuf], quote: Option<u8>, size: u64) -> Result<Vec<bool>> {
    let Some(q) = quote else {
        return Ok(vec![false; paths.len()]);
    };
    let has_quote = |path: &PathBuf| -> Result<bool> {
        let what = || format!("read_csv: searching {} for quotes", path.display());
        let file = File::open(path).map_err(|e| Error::io(what(), e))?;
        let len = file.metadata().map_err(|e| Error::io(what(), e))?.len();
        if len <= size {
            return Ok(false);
        }
        // SAFETY: a read-only private mapping, dropped at the end of this call; the bytes are
        // only searched (see `CsvPart::map` on files changed underneath).
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(what(), e))?;
        let _ = map.advise(memmap2::Advice::Sequential);
        Ok(memchr::memchr(q, &map).is_some())
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(paths.len())
        .max(1);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut found: Vec<Option<Result<bool>>> = (0..paths.len()).map(|_| None).collect();
    let results = parking_lot::Mutex::new(&mut found);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(path) = paths.get(i) else { break };
                let r = has_quote(path);
                results.lock()[i] = Some(r);
            });
        }
    });
    found
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(Error::internal("read_csv: a quote search did not run"))))
        .collect()
}

fn sample(path: &Path, bytes: usize) -> Result<Vec<u8>> {
    let what = || format!("read_csv: reading {}", path.display());
    let f = File::open(path).map_err(|e| Error::io(what(), e))?;
    let mut buf = Vec::with_capacity(bytes);
    f.take(bytes as u64)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io(what(), e))?;
    Ok(buf)
}

/// Where a file's rows start: after a UTF-8 byte-order mark, `skip_rows` rows, comment lines
/// and the header line (polars' reader skips the same, in this order).
struct Layout {
    /// Offset of the first byte polars' reader sees (after the byte-order mark and the
    /// skipped rows).
    text_start: usize,
    /// The header line's bytes `[from, to)` without its line end, when there is a header.
    header: Option<(usize, usize)>,
    /// The header's 1-based line number.
    header_line: u64,
    /// Offset of the first data row.
    data_start: usize,
}

impl Layout {
    fn of(head: &[u8], opts: &CsvOptions) -> Layout {
        let mut at = if head.starts_with(b"\xef\xbb\xbf") {
            3
        } else {
            0
        };
        let mut line = 1u64;
        // The end of the row starting at `from` (just after its newline, outside quotes), and
        // the newlines it holds.
        let row_end = |from: usize| -> (usize, u64) {
            let mut inside = false;
            let mut newlines = 0;
            for (i, &b) in head[from..].iter().enumerate() {
                if Some(b) == opts.quote_char {
                    inside = !inside;
                } else if b == b'\n' {
                    newlines += 1;
                    if !inside {
                        return (from + i + 1, newlines);
                    }
                }
            }
            (head.len(), newlines)
        };
        for _ in 0..opts.skip_rows {
            let (end, n) = row_end(at);
            at = end;
            line += n;
        }
        let text_start = at;
        let is_comment = |from: usize| match &opts.comment_prefix {
            Some(CommentPrefix::Single(c)) => head.get(from) == Some(c),
            Some(CommentPrefix::Multi(p)) => head[from..].starts_with(p.as_bytes()),
            None => false,
        };
        let skip_after = |mut at: usize| {
            for _ in 0..opts.skip_rows_after_header {
                at = row_end(at).0;
            }
            at
        };
        if !opts.has_header {
            return Layout {
                text_start,
                header: None,
                header_line: 0,
                data_start: skip_after(at),
            };
        }
        while at < head.len() && is_comment(at) {
            let (end, n) = row_end(at);
            at = end;
            line += n;
        }
        let (end, _) = row_end(at);
        let mut text_end = end;
        while text_end > at && matches!(head[text_end - 1], b'\n' | b'\r') {
            text_end -= 1;
        }
        Layout {
            text_start,
            header: Some((at, text_end)),
            header_line: line,
            data_start: skip_after(end),
        }
    }
}

/// The 1-based position of the first line `k` in `0..n` for which `fails(k)` holds, assuming
/// that once a line fails every later one does too (`fails(k)`: the text up to and including
/// line `k` is rejected); `None` when even the last does not.
fn first_failing_line(n: usize, fails: impl Fn(usize) -> bool) -> Option<usize> {
    if n == 0 || !fails(n - 1) {
        return None;
    }
    let (mut lo, mut hi) = (0usize, n - 1);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if fails(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    Some(lo)
}

/// Offsets just after each newline of `bytes` (the ends of its lines).
fn line_ends(bytes: &[u8]) -> Vec<usize> {
    memchr::memchr_iter(b'\n', bytes).map(|nl| nl + 1).collect()
}

fn infer_schema(path: &Path, sample: &[u8], layout: &Layout, opts: &CsvOptions) -> Result<Schema> {
    let mut schema = if let Some(s) = &opts.schema {
        s.clone()
    } else {
        let text = &sample[layout.text_start.min(sample.len())..];
        // Whole lines only.
        let end = text
            .iter()
            .rposition(|&b| b == b'\n')
            .map(|p| p + 1)
            .unwrap_or(text.len());
        let read = |bytes: &[u8]| {
            CsvReadOptions::default()
                .with_has_header(opts.has_header)
                .with_infer_schema_length(opts.infer_schema_length)
                .with_skip_rows_after_header(opts.skip_rows_after_header)
                .with_ignore_errors(opts.ignore_errors)
                .with_n_threads(Some(1))
                .with_parse_options(opts.parse_options(opts.try_parse_dates))
                .into_reader_with_file_handle(Cursor::new(bytes))
                .finish()
        };
        match read(&text[..end]) {
            Ok(df) => df.schema().as_ref().clone(),
            Err(e) => {
                // The first line whose inclusion makes polars reject the sample.
                let ends = line_ends(&text[..end]);
                let bad = first_failing_line(ends.len(), |k| read(&text[..ends[k]]).is_err());
                let before = sample[..layout.text_start.min(sample.len())]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count() as u64;
                let line = bad.map_or(0, |k| before + k as u64 + 1);
                return Err(Error::parse(
                    path.display().to_string(),
                    line,
                    format!("read_csv: cannot infer the schema: {e}"),
                ));
            }
        }
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

fn check_header(
    path: &Path,
    line: &[u8],
    line_no: u64,
    schema: &Schema,
    opts: &CsvOptions,
) -> Result<()> {
    let text = String::from_utf8_lossy(line);
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
        return Err(Error::parse(
            path.display().to_string(),
            line_no,
            format!(
                "read_csv: header {:?} differs from the schema's columns {:?}",
                names, expected
            ),
        ));
    }
    Ok(())
}

/// Byte ranges `[start, end)` of one file's partitions; `quoted`: the file holds the quote
/// character somewhere, so it is cut only at newlines outside quotes.
fn split_file(
    path: &Path,
    data_start: u64,
    size: u64,
    quoted: bool,
    opts: &CsvOptions,
) -> Result<Vec<(u64, u64)>> {
    let what = || format!("read_csv: reading {}", path.display());
    let file = File::open(path).map_err(|e| Error::io(what(), e))?;
    let len = file.metadata().map_err(|e| Error::io(what(), e))?.len();
    if len <= data_start {
        return Ok(Vec::new());
    }
    if len - data_start <= size {
        return Ok(vec![(data_start, len)]);
    }
    let cuts = match opts.quote_char {
        Some(q) if quoted => quote_aware_cuts(&file, path, data_start, len, size, q)?,
        _ => newline_cuts(&file, path, data_start, len, size)?,
    };
    let mut ranges = Vec::new();
    let mut start = data_start;
    for c in cuts {
        ranges.push((start, c));
        start = c;
    }
    ranges.push((start, len));
    Ok(ranges)
}

/// Cuts just after the first newline at or after every `size` bytes (for a file without
/// quotes, where every newline ends a row).
fn newline_cuts(
    file: &File,
    path: &Path,
    data_start: u64,
    len: u64,
    size: u64,
) -> Result<Vec<u64>> {
    let read_err = |e| Error::io(format!("read_csv: reading {}", path.display()), e);
    let mut cuts = Vec::new();
    let mut nominal = data_start + size;
    let mut buf = vec![0u8; 64 << 10];
    while nominal < len {
        // The next newline at or after `nominal - 1` (so a cut exactly after a newline
        // stays there).
        let mut pos = nominal - 1;
        let cut = loop {
            let n = file.read_at(&mut buf, pos).map_err(read_err)?;
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
        if cuts.last().is_none_or(|&c| cut > c) {
            cuts.push(cut);
        }
        nominal = cut.max(nominal) + size;
    }
    Ok(cuts)
}

/// Cuts at newlines outside quotes, scanning the whole file once.
fn quote_aware_cuts(
    file: &File,
    path: &Path,
    data_start: u64,
    len: u64,
    size: u64,
    quote: u8,
) -> Result<Vec<u64>> {
    let mut cuts = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut pos = data_start;
    let mut quotes = plain_csv::QuoteState::default();
    let mut next = data_start + size;
    while pos < len {
        let n = file
            .read_at(&mut buf, pos)
            .map_err(|e| Error::io(format!("read_csv: reading {}", path.display()), e))?;
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
        if f.options.plain_parser_applies() {
            let dialect = plain_csv::Dialect {
                separator: f.options.separator,
                quote_char: f.options.quote_char,
                datetimes: f.options.fast_datetimes,
            };
            let projection = projection(&f.schema, columns);
            if let Some(df) = plain_csv::parse(
                bytes,
                &f.schema,
                &projection,
                dialect,
                self.rows_hint(bytes),
            ) {
                return Ok(df);
            }
        }
        self.parse_with_polars(bytes, columns)
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

    /// [`CsvPart::parse`] through polars' chunk parser. Datetime columns are read as text and
    /// converted by brisk's fixed-layout parser when every value has one ISO layout (polars
    /// infers a pattern and parses generically); otherwise the range is parsed again with
    /// polars parsing them, so the values are polars' either way.
    fn parse_with_polars(
        &self,
        bytes: &[u8],
        columns: Option<&[PlSmallStr]>,
    ) -> PolarsResult<DataFrame> {
        let f = &self.file;
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
        if datetimes.is_empty() {
            return self.read_chunk(bytes, f.schema.clone(), columns);
        }
        let mut text_schema = f.schema.as_ref().clone();
        for (n, _) in &datetimes {
            if let Some(d) = text_schema.get_mut(n) {
                *d = DataType::String;
            }
        }
        let mut df = self.read_chunk(bytes, Arc::new(text_schema), columns)?;
        for (n, tu) in datetimes {
            match iso_datetimes(df.column(&n)?.str()?, tu)? {
                Some(c) => df.with_column(c)?,
                None => return self.read_chunk(bytes, f.schema.clone(), columns),
            };
        }
        Ok(df)
    }

    /// polars' chunk parser on `bytes` with `schema`, called directly on this worker: the
    /// eager reader would first count lines in a separate pass and run the parsing in polars'
    /// thread pool.
    fn read_chunk(
        &self,
        bytes: &[u8],
        mut schema: SchemaRef,
        columns: Option<&[PlSmallStr]>,
    ) -> PolarsResult<DataFrame> {
        let opts = &self.file.options;
        let mut to_cast: Vec<Field> = Vec::new();
        prepare_csv_schema(&mut schema, &mut to_cast)?;
        let projection = projection(&schema, columns);
        let check_utf8 = projection
            .iter()
            .any(|&i| schema.get_at_index(i).is_some_and(|(_, d)| d.is_string()));
        if check_utf8 && opts.encoding == CsvEncoding::Utf8 && !validate_utf8(bytes) {
            polars_bail!(ComputeError: "invalid utf-8 sequence");
        }
        let null_values = opts
            .null_values
            .clone()
            .map(|n| n.compile(&schema))
            .transpose()?;
        // polars' reader counts a chunk's rows (newlines outside quotes, and a last line
        // without one) before parsing it and rejects the chunk when the parse finds more, or
        // fewer without comment lines: text with a quote inside an unquoted field.
        let (mut rows, counted) =
            CountLines::new(opts.quote_char, b'\n', None).count_rows(bytes, false);
        let tail = &bytes[counted.min(bytes.len())..];
        if !tail.is_empty() && !is_comment_line(tail, opts.comment_prefix.as_ref()) {
            rows += 1;
        }
        let popts = opts.parse_options(false);
        let mut df = read_chunk(
            bytes,
            &popts,
            &schema,
            opts.ignore_errors,
            &projection,
            0,
            self.rows_hint(bytes),
            null_values.as_ref(),
            usize::MAX,
            bytes.len(),
            Some(0),
        )?;
        let fewer_ok = opts.comment_prefix.is_some();
        if (df.height() > rows || (df.height() < rows && !fewer_ok)) && !opts.ignore_errors {
            polars_bail!(ComputeError:
                "CSV malformed: expected {} rows, actual {} rows", rows, df.height());
        }
        cast_columns(&mut df, &to_cast, false, opts.ignore_errors)?;
        Ok(df)
    }

    /// The 1-based line number (in the file) of the first line polars rejects (the fast path
    /// never fails, it declines; bisecting through it would only repeat work).
    fn locate_error(&self, bytes: &[u8], columns: Option<&[PlSmallStr]>) -> Option<u64> {
        let lines = self.line_starts(bytes);
        let line_end = |k: usize| lines.get(k + 1).copied().unwrap_or(bytes.len());
        let bad = first_failing_line(lines.len(), |k| {
            self.parse_with_polars(&bytes[..line_end(k)], columns)
                .is_err()
        })?;
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
        Some(before + bad as u64 + 1)
    }
}

impl Source for CsvPart {
    fn read_rows(&self, rows: &[IdxSize]) -> Result<Option<DataFrame>> {
        self.pick_rows(rows)
    }

    fn read(&self, columns: Option<&[PlSmallStr]>) -> Result<DataFrame> {
        let map = self.map()?;
        let skip = (self.start % PAGE) as usize;
        let bytes = &map[skip..];
        self.parse(bytes, columns).map_err(|e| {
            let path = self.file.path.display().to_string();
            match self.locate_error(bytes, columns) {
                Some(line) => Error::parse(path, line, format!("read_csv: malformed row: {e}")),
                None => Error::parse(
                    path,
                    0,
                    format!(
                        "read_csv: malformed rows in bytes {}..{}: {e}",
                        self.start, self.end
                    ),
                ),
            }
        })
    }
}

impl CsvPart {
    /// The rows `rows` of this partition: the byte offset of every line is found with one
    /// newline scan, the wanted lines are copied into a small buffer in the given order and
    /// parsed with every column. `None` (the caller parses the whole range) when line `i` might
    /// not be row `i` — a quote character anywhere in the range (a quoted newline), an empty
    /// line, a carriage return, a comment prefix — or when the picked rows do not parse (the
    /// whole parse then reports the line).
    fn pick_rows(&self, rows: &[IdxSize]) -> Result<Option<DataFrame>> {
        let map = self.map()?;
        let bytes = &map[(self.start % PAGE) as usize..];
        let opts = &self.file.options;
        if opts
            .quote_char
            .is_some_and(|q| memchr::memchr(q, bytes).is_some())
            || memchr::memchr(b'\r', bytes).is_some()
            || opts.comment_prefix.is_some()
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
        Ok(self.parse(&picked, None).ok())
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
        let what = || format!("read_csv: reading {path}");
        let file = File::open(&self.file.path).map_err(|e| Error::io(what(), e))?;
        let len = file.metadata().map_err(|e| Error::io(what(), e))?.len();
        if len < self.end {
            return Err(Error::input(format!(
                "read_csv: {path} is {len} bytes long, shorter than when the frame was built \
                 (partition bytes {}..{})",
                self.start, self.end
            )));
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
        .map_err(|e| {
            Error::io(
                format!(
                    "read_csv: memory-mapping {path} bytes {}..{}",
                    self.start, self.end
                ),
                e,
            )
        })?;
        // Sequential access: the kernel reads ahead and maps pages around each fault.
        let _ = map.advise(memmap2::Advice::Sequential);
        Ok(map)
    }
}

/// Converts a text column of ISO timestamps to `Datetime(tu)` as polars' reader would parse
/// them (an empty value is null); `None` when a value is of another layout, or of the other
/// of the two ISO layouts than the first value (polars fixes its pattern on the first value).
fn iso_datetimes(s: &StringChunked, tu: TimeUnit) -> PolarsResult<Option<Column>> {
    let per_unit = nanos_per(tu);
    let mut stamps = StampParser::default();
    // Straight into an i64 buffer (nulls as 0 under the column's validity): no per-row
    // `Option` and no builder, as this runs over every timestamp of a time query.
    let mut values: Vec<i64> = Vec::with_capacity(s.len());
    let mut empty = false;
    for v in s.iter() {
        match v {
            None => values.push(0),
            // A quoted empty value: text `""` here, null in polars' datetime parser.
            Some("") => {
                empty = true;
                values.push(0);
            }
            Some(text) => match stamps.parse_in(text.as_bytes(), per_unit) {
                Some(v) => values.push(v),
                None => return Ok(None),
            },
        }
    }
    let ca = Int64Chunked::from_vec(s.name().clone(), values);
    let ca = if s.null_count() > 0 || empty {
        let mask = s.iter().map(|v| v.is_some_and(|t| !t.is_empty()));
        let mask: BooleanChunked = mask.collect();
        ca.zip_with(&mask, &Int64Chunked::full_null(s.name().clone(), s.len()))?
    } else {
        ca
    };
    Ok(Some(ca.into_datetime(tu, None).into_column()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamps(values: &[Option<&str>]) -> StringChunked {
        StringChunked::from_iter_options("t".into(), values.iter().copied())
    }

    fn physical(c: &Column) -> Vec<Option<i64>> {
        c.as_materialized_series()
            .to_physical_repr()
            .i64()
            .unwrap()
            .iter()
            .collect()
    }

    #[test]
    fn iso_columns_keep_nulls_and_decline_other_layouts() {
        let s = stamps(&[
            Some("2000-01-01 00:00:00"),
            None,
            Some(""),
            Some("2000-01-01 00:00:01.25"),
        ]);
        let c = iso_datetimes(&s, TimeUnit::Milliseconds).unwrap().unwrap();
        assert_eq!(
            physical(&c),
            [Some(946_684_800_000), None, None, Some(946_684_801_250)]
        );
        // Another layout, a second layout after the first, a leap second: polars' parser.
        for odd in [
            stamps(&[Some("01/02/2000")]),
            stamps(&[Some("2000-01-01 00:00:00"), Some("2000-01-01T00:00:01")]),
            stamps(&[Some("2000-01-01 23:59:60")]),
        ] {
            assert!(iso_datetimes(&odd, TimeUnit::Milliseconds)
                .unwrap()
                .is_none());
        }
    }

    /// What polars' `write_csv` writes (17-digit floats, `T` timestamps with milliseconds)
    /// takes the plain-CSV fast path, and gives polars' frame, with and without dates.
    #[test]
    fn polars_written_csv_takes_the_fast_path() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let n = 3000;
        let stamps: Vec<i64> = (0..n as i64).map(|r| 946_684_800_000 + r * 1001).collect();
        let mut df = DataFrame::new(
            n,
            vec![
                Int64Chunked::from_vec("timestamp".into(), stamps)
                    .into_datetime(TimeUnit::Milliseconds, None)
                    .into_column(),
                Column::new(
                    "id".into(),
                    (0..n)
                        .map(|_| rng.random_range(900i64..1100))
                        .collect::<Vec<_>>(),
                ),
                Column::new(
                    "name".into(),
                    (0..n)
                        .map(|i| format!("{}{}ice", (b'A' + (i % 26) as u8) as char, 'q'))
                        .collect::<Vec<_>>(),
                ),
                Column::new(
                    "x".into(),
                    (0..n)
                        .map(|_| rng.random_range(-1.0f64..1.0))
                        .collect::<Vec<_>>(),
                ),
            ],
        )
        .unwrap();
        let mut text = Vec::new();
        CsvWriter::new(&mut text)
            .include_header(true)
            .finish(&mut df)
            .unwrap();
        let written = String::from_utf8_lossy(&text);
        assert!(written.contains("T00:00:01.001,"), "{}", &written[..200]);
        let digits = written
            .lines()
            .nth(1)
            .unwrap()
            .rsplit(',')
            .next()
            .unwrap()
            .len();
        assert!(digits >= 17, "{written:.200}");
        let body = &text[text.iter().position(|&b| b == b'\n').unwrap() + 1..];
        for dates in [false, true] {
            let want = CsvReadOptions::default()
                .with_infer_schema_length(None)
                .map_parse_options(|o| o.with_try_parse_dates(dates))
                .into_reader_with_file_handle(Cursor::new(text.clone()))
                .finish()
                .unwrap();
            let schema = want.schema().as_ref().clone();
            let dialect = plain_csv::Dialect {
                separator: b',',
                quote_char: Some(b'"'),
                datetimes: true,
            };
            let all: Vec<usize> = (0..schema.len()).collect();
            let got = plain_csv::parse(body, &schema, &all, dialect, 16)
                .expect("polars-written CSV takes the fast path");
            assert!(
                got.equals_missing(&want),
                "dates {dates}: {got:?}\n{want:?}"
            );
        }
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
        /// Timestamps in the space layout; a line's generator may turn every one of them to the
        /// `T` layout (a file writes one layout).
        const STAMPS: &[&str] = &[
            "2000-01-01 00:00:00",
            "2024-02-29 12:34:56.789",
            "",
            "1969-12-31 23:59:59.5",
            "2000-01-01 00:00:00.123456",
            "\"2000-01-01 00:00:01\"",
            "\"\"",
        ];
        /// `OTHER LAYOUT` becomes a timestamp in the layout the line's others do not use.
        const ODD_STAMPS: &[&str] = &[
            "2000-02-30 00:00:00",
            "01/02/2000 10:00:00",
            "2000-01-01 23:59:60",
            "2000-01-01 00:00",
            "OTHER LAYOUT",
        ];
        const DATES: &[&str] = &[
            "2000-02-29",
            "",
            "1999-12-31",
            "1970-01-01",
            "\"2000-01-02\"",
            "\"\"",
        ];
        const ODD_DATES: &[&str] = &["2000-1-5", "2001-02-29", "2000/01/05"];

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

        /// A line; `t_layout`: its timestamps use `T` between date and time.
        fn row(allow_odd: bool, t_layout: bool) -> impl Strategy<Value = String> {
            (
                field(INTS, ODD_INTS, allow_odd),
                field(TEXTS, ODD_TEXTS, allow_odd),
                field(FLOATS, ODD_FLOATS, allow_odd),
                field(BOOLS, ODD_BOOLS, allow_odd),
                field(STAMPS, ODD_STAMPS, allow_odd),
                field(DATES, ODD_DATES, allow_odd),
            )
                .prop_map(move |(i, s, f, b, t, d)| {
                    let t = match (t, t_layout) {
                        ("OTHER LAYOUT", true) => "2000-01-01 00:00:02".to_string(),
                        ("OTHER LAYOUT", false) => "2000-01-01T00:00:02".to_string(),
                        (t, true) => t.replacen(' ', "T", 1),
                        (t, false) => t.to_string(),
                    };
                    format!("{i},{s},{f},{b},{t},{d}")
                })
        }

        fn rows(allow_odd: bool, max: usize) -> impl Strategy<Value = Vec<String>> {
            any::<bool>().prop_flat_map(move |t_layout| {
                proptest::collection::vec(row(allow_odd, t_layout), 1..max)
            })
        }

        /// How many timestamp formats polars would see in the lines' `t` fields: day first,
        /// or year first with `T` or a space, with or without seconds.
        fn layouts(rows: &[String]) -> usize {
            let mut seen = [false; 5];
            for r in rows {
                let t = r.rsplit(',').nth(1).unwrap_or("").trim_matches('"');
                if t.starts_with("01/") {
                    seen[0] = true;
                } else if t.len() > 10 {
                    let t_sep = usize::from(t.as_bytes()[10] == b'T');
                    let seconds = usize::from(t.len() >= 19);
                    seen[1 + 2 * t_sep + seconds] = true;
                }
            }
            seen.iter().filter(|&&s| s).count()
        }

        /// The reference: polars' CSV reader alone, on the whole text, with the schema and the
        /// projection.
        fn polars_reference(text: &str, columns: Option<&[PlSmallStr]>) -> PolarsResult<DataFrame> {
            CsvReadOptions::default()
                .with_has_header(false)
                .with_schema(Some(Arc::new(schema())))
                .with_columns(columns.map(Arc::from))
                .with_n_threads(Some(1))
                .into_reader_with_file_handle(Cursor::new(text.as_bytes().to_vec()))
                .finish()
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
            fn on_plain_lines(rows in rows(false, 90),
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
                let slow = polars_reference(&text, columns).unwrap();
                prop_assert!(same(&fast, &slow), "fast {fast:?}\npolars {slow:?}");
            }

            /// With odd values mixed in, the fast path either agrees with polars or declines,
            /// and brisk's parse as a whole (fast path, else polars' chunk parser with brisk's
            /// timestamp parser, else polars' alone) gives polars' frame or fails where it fails.
            #[test]
            fn on_odd_lines(rows in rows(true, 40), mask in 0u8..64,
                            crlf in any::<bool>()) {
                let line_end = if crlf { "\r\n" } else { "\n" };
                let text = rows.join(line_end) + line_end;
                let part = part(schema());
                let columns = projection_of(mask);
                let columns = columns.as_deref();
                let fast = fast_parse(&part, &text, columns);
                let reference = polars_reference(&text, columns);
                if let Some(fast) = fast {
                    prop_assert!(reference.is_ok(), "polars rejects what the fast path took: {reference:?}");
                    let slow = reference.as_ref().unwrap();
                    prop_assert!(same(&fast, slow), "fast {fast:?}\npolars {slow:?}");
                }
                // polars infers a timestamp pattern per chunk of its own (64 bytes and up in
                // debug builds), so with values of several layouts in one column its reader's
                // answer depends on its chunking: compare those columns only when one layout is
                // used.
                let t_projected = mask == 0 || mask & (1 << 4) != 0;
                let several_layouts = layouts(&rows) > 1;
                // A quote inside a bare field or text after a closing quote: polars' reader
                // splits its input into chunks at newlines it finds outside quotes, and then
                // whether a chunk parses depends on where its chunks start.
                let stray_quotes = rows.iter().any(|r| ODD_TEXTS.iter().any(|t| r.contains(t)));
                match (part.parse(text.as_bytes(), columns), reference) {
                    _ if (t_projected && several_layouts) || stray_quotes => {}
                    (Ok(got), Ok(want)) => prop_assert!(same(&got, &want), "brisk {got:?}\npolars {want:?}"),
                    (Err(_), Err(_)) => {}
                    (got, want) => prop_assert!(false, "brisk {got:?}\npolars {want:?}"),
                }
            }
        }
    }
}
