//! A projected-column parser for *well-formed* CSV byte ranges: brisk's fast path in front of
//! polars' CSV reader.
//!
//! Most data files are regular: `\n` or `\r\n` line ends, every line with the header's
//! number of fields, each field either bare or quoted whole (`"…"`, inner quotes doubled). For those,
//! splitting lines into fields is the bulk of a parse-bound query's work (polars'
//! `read_chunk` tokenizer was ~40% of the CPU of a string group-by over CSV), and it can be
//! done with a data-parallel scan instead of a byte loop:
//!
//! 1. **Structural scan.** Each 64-byte block becomes four `u64` masks (16-byte SSE2 compares
//!    on x86-64, a byte loop elsewhere; the tail is padded with NULs): separators and
//!    newlines, quote characters, CRs, non-ASCII bytes. The field ends are visited in order
//!    with `trailing_zeros`, so the cost is per *field*, not per byte; the non-ASCII mask
//!    replaces a UTF-8 pass over all-ASCII text.
//! 2. **Quotes.** The prefix XOR of the quote mask (six shift-XORs) is set over quoted text;
//!    separators and newlines under it are not field ends, and a carry takes the state into
//!    the next block (simdjson's technique). A quoted field loses its quotes and has doubled
//!    quotes made single, as in polars; a range without quotes never pays for this.
//! 3. **Projection.** Field `k` of a line goes to a column builder only when column `k` is
//!    projected; other fields cost one bit visit.
//! 4. **Values.** Numbers are parsed with the crates polars' reader uses (`fast-float2`,
//!    `atoi_simd`, with the same options) or an exact shortcut for plain decimals, so a value
//!    parses here exactly when it parses there and to the same number; ISO dates and
//!    timestamps with brisk's fixed-layout parser; text is pushed as it is (an empty field is
//!    null, a quoted empty one `""` an empty string, as in polars).
//!
//! **Invariant: the result equals polars' or there is none.** Anything this parser does not
//! reproduce exactly — a CR other than in a CRLF line end, a quote inside a bare field or
//! text after a closing quote, a quote never closed, an empty line, a line with another
//! number of fields, a value that does not parse, leading whitespace before a number, invalid
//! UTF-8 when text is projected, a column type it has no builder for — makes [`parse`] return
//! `None`, and the caller parses the range with polars, which then also produces the error
//! message for malformed input.

use polars::prelude::*;

use super::iso_time::{nanos_per, parse_iso_date, StampParser};

/// How the range is delimited.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dialect {
    pub separator: u8,
    pub quote_char: Option<u8>,
    /// Parse `Datetime` columns here (else the range goes to polars when one is projected).
    pub datetimes: bool,
}

/// The projected columns (`projection`: indices into `schema`, ascending) of the lines in
/// `bytes`, or `None` when the range is not plain (see the module docs). `rows_hint` sizes the
/// column buffers.
pub(crate) fn parse(
    bytes: &[u8],
    schema: &Schema,
    projection: &[usize],
    dialect: Dialect,
    rows_hint: usize,
) -> Option<DataFrame> {
    let sep = dialect.separator;
    // A non-ASCII separator byte could cut a multi-byte character (see `Builder::finish`);
    // NUL pads the last block.
    if sep >= 0x80 || matches!(sep, 0 | b'\n' | b'\r') {
        return None;
    }
    if let Some(q) = dialect.quote_char {
        if q >= 0x80 || q == sep || matches!(q, 0 | b'\n' | b'\r') {
            return None;
        }
    }
    let mut slot = vec![usize::MAX; schema.len()];
    let mut builders = Vec::with_capacity(projection.len());
    let mut has_text = false;
    for &index in projection {
        let (name, dtype) = schema.get_at_index(index)?;
        has_text |= matches!(dtype, DataType::String);
        slot[index] = builders.len();
        builders.push(Builder::new(name.clone(), dtype, dialect, rows_hint)?);
    }
    let mut lines = Lines {
        slot,
        builders,
        field: 0,
        field_start: 0,
        line_start: 0,
        rows: 0,
        quote: dialect.quote_char.unwrap_or(0),
        quotes_seen: false,
        last_quote: None,
        crlf: false,
        unescaped: Vec::new(),
    };
    // One pass classifies each byte: field ends, quotes, CRs, non-ASCII.
    let mut non_ascii = 0u64;
    let mut quotes = QuoteState::default();
    for (pos, block) in blocks(bytes, sep, dialect.quote_char) {
        if block.crs != 0 {
            // CRs only as CRLF line ends (polars drops the CR; a lone one it keeps or strips
            // depending on where it is).
            lines.crlf = true;
            let mut crs = block.crs;
            while crs != 0 {
                let at = pos + crs.trailing_zeros() as usize;
                crs &= crs - 1;
                if bytes.get(at + 1) != Some(&b'\n') {
                    return None;
                }
            }
        }
        non_ascii |= block.high;
        let mut ends = block.ends;
        if block.quotes != 0 || quotes.is_inside() {
            lines.quotes_seen = true;
            let quoted = quotes.quoted(block.quotes);
            ends &= !quoted;
            if block.crs & quoted != 0 {
                return None; // a CR in quoted text
            }
        }
        while ends != 0 {
            let bit = ends.trailing_zeros();
            ends &= ends - 1;
            if lines.quotes_seen {
                let before = block.quotes & ((1u64 << bit) - 1);
                if before != 0 {
                    lines.last_quote = Some(pos + 63 - before.leading_zeros() as usize);
                }
            }
            if !lines.end_field(bytes, pos + bit as usize) {
                return None;
            }
        }
        if block.quotes != 0 {
            lines.last_quote = Some(pos + 63 - block.quotes.leading_zeros() as usize);
        }
    }
    if quotes.is_inside() {
        return None; // a quote never closed
    }
    // A last line without a newline.
    let end = bytes.len();
    if (lines.field_start < end || lines.field > 0)
        && !(lines.take_field(bytes, end) && lines.end_line(end, end))
    {
        return None;
    }
    // polars validates the whole range when any text column is read; so do we (all-ASCII
    // text is valid), before `Builder::finish` declares the text columns UTF-8.
    if has_text && non_ascii != 0 && simdutf8::basic::from_utf8(bytes).is_err() {
        return None;
    }
    let height = lines.rows;
    let columns = lines.builders.into_iter().map(Builder::finish).collect();
    DataFrame::new(height, columns).ok()
}

/// The state of the field walk.
struct Lines {
    /// Builder of each column (`usize::MAX`: not projected).
    slot: Vec<usize>,
    builders: Vec<Builder>,
    /// Index of the current field in its line.
    field: usize,
    field_start: usize,
    line_start: usize,
    rows: usize,
    /// The quote character (0 when there is none; then `quotes_seen` stays false).
    quote: u8,
    /// Whether a quote character has been seen so far: from then on every field is checked.
    quotes_seen: bool,
    /// Offset of the last quote character before the field end being handled.
    last_quote: Option<usize>,
    /// Whether a CR (always part of a CRLF) has been seen: from then on lines may end in one.
    crlf: bool,
    /// A quoted field's text with doubled quotes made single.
    unescaped: Vec<u8>,
}

impl Lines {
    /// The field ending at `at` (a separator or newline); `false` when the range is not plain.
    #[inline(always)]
    fn end_field(&mut self, bytes: &[u8], at: usize) -> bool {
        let newline = bytes[at] == b'\n';
        // A CRLF line's last field ends before the CR.
        let end = if newline && self.crlf && at > self.field_start && bytes[at - 1] == b'\r' {
            at - 1
        } else {
            at
        };
        if !self.take_field(bytes, end) {
            return false;
        }
        if newline {
            if !self.end_line(end, at) {
                return false;
            }
        } else {
            self.field += 1;
        }
        self.field_start = at + 1;
        true
    }

    /// Gives the current field, ending at `end`, to its column's builder if it has one.
    #[inline(always)]
    fn take_field(&mut self, bytes: &[u8], end: usize) -> bool {
        let Some(&builder) = self.slot.get(self.field) else {
            return false; // more fields than columns
        };
        let field = &bytes[self.field_start..end];
        if self.quotes_seen {
            return self.take_maybe_quoted(builder, field);
        }
        give(&mut self.builders, builder, field, false)
    }

    /// [`Lines::take_field`] once the range has quotes. A field is either unquoted and free of
    /// quote characters, or quoted whole (`"…"`, inner quotes doubled) as polars reads it;
    /// anything else declines, projected or not (polars would split it differently).
    fn take_maybe_quoted(&mut self, builder: usize, field: &[u8]) -> bool {
        let q = self.quote;
        if field.first() != Some(&q) {
            let has_quote = self.last_quote.is_some_and(|at| at >= self.field_start);
            return !has_quote && give(&mut self.builders, builder, field, false);
        }
        if field.len() < 2 || field[field.len() - 1] != q {
            return false;
        }
        let inner = &field[1..field.len() - 1];
        if memchr::memchr(q, inner).is_none() {
            return give(&mut self.builders, builder, inner, true);
        }
        // Doubled quotes stand for one.
        self.unescaped.clear();
        let mut from = 0;
        while let Some(k) = memchr::memchr(q, &inner[from..]) {
            let at = from + k;
            if inner.get(at + 1) != Some(&q) {
                return false;
            }
            self.unescaped.extend_from_slice(&inner[from..=at]);
            from = at + 2;
        }
        self.unescaped.extend_from_slice(&inner[from..]);
        give(&mut self.builders, builder, &self.unescaped, true)
    }

    /// Ends the current line, its text ending at `end` and its newline at `newline`; `false`
    /// when it has too few fields or is empty (polars skips empty lines, so they would shift
    /// row numbers).
    #[inline(always)]
    fn end_line(&mut self, end: usize, newline: usize) -> bool {
        if self.field + 1 != self.slot.len() || end == self.line_start {
            return false;
        }
        self.rows += 1;
        self.field = 0;
        self.line_start = newline + 1;
        true
    }
}

/// Gives `field` to `builders[builder]`, or drops it for `usize::MAX` (a column not
/// projected); `false` when the value does not parse.
#[inline(always)]
fn give(builders: &mut [Builder], builder: usize, field: &[u8], quoted: bool) -> bool {
    builder == usize::MAX || builders[builder].push(field, quoted)
}

/// What one 64-byte block holds; bit `i` of each mask is byte `i`.
struct Block {
    /// Separators and newlines: where fields end, unless inside quotes.
    ends: u64,
    /// Quote characters.
    quotes: u64,
    /// CRs: allowed only right before a newline.
    crs: u64,
    /// Bytes ≥ 0x80: text in the range needs a UTF-8 check.
    high: u64,
}

/// Whether the scan is inside a quoted field, carried from block to block.
#[derive(Default)]
pub(crate) struct QuoteState {
    /// All ones while inside a quoted field at the end of the bytes seen so far.
    inside: u64,
}

impl QuoteState {
    /// Whether the bytes seen so far end inside a quoted field.
    fn is_inside(&self) -> bool {
        self.inside != 0
    }

    /// Bits of the next block that are quoted text (from an opening quote up to, not
    /// including, its closing quote), given the block's quote characters.
    #[inline(always)]
    fn quoted(&mut self, quotes: u64) -> u64 {
        let quoted = prefix_xor(quotes) ^ self.inside;
        self.inside = ((quoted as i64) >> 63) as u64;
        quoted
    }

    /// Calls `on_newline(i)` for each newline `buf[i]` outside quotes (to cut files with
    /// quoted newlines into partitions); `buf` continues the bytes given before.
    pub(crate) fn newlines_outside(
        &mut self,
        buf: &[u8],
        quote: u8,
        mut on_newline: impl FnMut(usize),
    ) {
        for (pos, block) in blocks(buf, b'\n', Some(quote)) {
            let mut newlines = block.ends & !self.quoted(block.quotes);
            while newlines != 0 {
                on_newline(pos + newlines.trailing_zeros() as usize);
                newlines &= newlines - 1;
            }
        }
    }
}

/// Each 64-byte block of `bytes` with its offset, classified; the last one padded with NULs
/// (neither separator, quote, CR nor newline: `parse` refuses NUL as either).
fn blocks(bytes: &[u8], sep: u8, quote: Option<u8>) -> Blocks<'_> {
    Blocks {
        bytes,
        pos: 0,
        sep,
        quote,
    }
}

/// The iterator of [`blocks`] (a named type so that `next` inlines into the scan loops).
struct Blocks<'a> {
    bytes: &'a [u8],
    pos: usize,
    sep: u8,
    quote: Option<u8>,
}

impl Iterator for Blocks<'_> {
    type Item = (usize, Block);

    #[inline(always)]
    fn next(&mut self) -> Option<(usize, Block)> {
        let pos = self.pos;
        let rest = self.bytes.get(pos..).filter(|r| !r.is_empty())?;
        self.pos += 64;
        let block = match rest.get(..64) {
            Some(full) => classify(full, self.sep, self.quote),
            None => {
                let mut last = [0u8; 64];
                last[..rest.len()].copy_from_slice(rest);
                classify(&last, self.sep, self.quote)
            }
        };
        Some((pos, block))
    }
}

/// Bit `i` of the result is the XOR of bits `0..=i` of `x`: set from each odd-numbered quote
/// up to the next one, i.e. over the quoted text and its opening quote.
#[inline(always)]
fn prefix_xor(mut x: u64) -> u64 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    x
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn classify(block: &[u8], sep: u8, quote: Option<u8>) -> Block {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    assert!(block.len() >= 64);
    let mut out = Block {
        ends: 0,
        quotes: 0,
        crs: 0,
        high: 0,
    };
    // SAFETY: SSE2 is part of the x86-64 baseline, so these intrinsics exist on every CPU this
    // code compiles for. Each load reads 16 bytes starting at `16 * k` with `k < 4`, inside
    // `block` (asserted to hold at least 64), and `loadu` needs no alignment.
    unsafe {
        let seps = _mm_set1_epi8(sep as i8);
        let newlines = _mm_set1_epi8(b'\n' as i8);
        let quotes = _mm_set1_epi8(quote.unwrap_or(0) as i8);
        let crs = _mm_set1_epi8(b'\r' as i8);
        for k in 0..4 {
            let v = _mm_loadu_si128(block.as_ptr().add(16 * k).cast::<__m128i>());
            let ends = _mm_or_si128(_mm_cmpeq_epi8(v, seps), _mm_cmpeq_epi8(v, newlines));
            let shift = 16 * k;
            out.ends |= u64::from(_mm_movemask_epi8(ends) as u16) << shift;
            out.quotes |= u64::from(_mm_movemask_epi8(_mm_cmpeq_epi8(v, quotes)) as u16) << shift;
            out.crs |= u64::from(_mm_movemask_epi8(_mm_cmpeq_epi8(v, crs)) as u16) << shift;
            out.high |= u64::from(_mm_movemask_epi8(v) as u16) << shift;
        }
    }
    if quote.is_none() {
        out.quotes = 0;
    }
    out
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn classify(block: &[u8], sep: u8, quote: Option<u8>) -> Block {
    let mut out = Block {
        ends: 0,
        quotes: 0,
        crs: 0,
        high: 0,
    };
    for (i, &b) in block[..64].iter().enumerate() {
        out.ends |= u64::from(b == sep || b == b'\n') << i;
        out.quotes |= u64::from(Some(b) == quote) << i;
        out.crs |= u64::from(b == b'\r') << i;
        out.high |= u64::from(b >= 0x80) << i;
    }
    out
}

/// Exact powers of ten as `f64` (10²² is the largest one exactly representable).
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Whether the 8 bytes of `v` (little-endian) are all ASCII digits.
#[inline(always)]
fn eight_digits(v: u64) -> bool {
    let a = v.wrapping_add(0x4646_4646_4646_4646);
    let b = v.wrapping_sub(0x3030_3030_3030_3030);
    (a | b) & 0x8080_8080_8080_8080 == 0
}

/// The number written by 8 ASCII digits read as a little-endian `u64` (fast_float's SWAR
/// reduction: pairs, then quads, then the two halves).
#[inline(always)]
fn eight_digits_value(v: u64) -> u64 {
    const MASK: u64 = 0x0000_00FF_0000_00FF;
    const MUL1: u64 = 0x000F_4240_0000_0064;
    const MUL2: u64 = 0x0000_2710_0000_0001;
    let v = v.wrapping_sub(0x3030_3030_3030_3030);
    let v = v.wrapping_mul(10).wrapping_add(v >> 8);
    let v1 = (v & MASK).wrapping_mul(MUL1);
    let v2 = ((v >> 16) & MASK).wrapping_mul(MUL2);
    u64::from((v1.wrapping_add(v2) >> 32) as u32)
}

/// `[+-]digits[.digits]` (at most 19 digits in all) whose digits read as an integer `w` below
/// 2⁵³ with `k` ≤ 22 of them after the point: the value is `w / 10^k` with both operands exact
/// in `f64`, so the one IEEE division rounds the exact decimal correctly (Clinger's fast
/// path) and the result is bit for bit what any correct parser, `fast-float2` included, gives.
/// Anything else (exponents, `inf`, more digits) is `None`, for the general parser.
#[inline(always)]
fn parse_plain_decimal(s: &[u8]) -> Option<f64> {
    // Signs of real data are unpredictable: no branches on them (a mispredicted branch per
    // value cost more than the whole digit loop).
    let first = *s.first()?;
    let negative = first == b'-';
    let mut i = usize::from(negative | (first == b'+'));
    let mut w = 0u64;
    let int_start = i;
    while i < s.len() && s[i].is_ascii_digit() {
        w = w.wrapping_mul(10).wrapping_add(u64::from(s[i] - b'0'));
        i += 1;
    }
    let int_digits = i - int_start;
    let mut frac_digits = 0;
    if i < s.len() && s[i] == b'.' {
        i += 1;
        let frac_start = i;
        while let Some(chunk) = s.get(i..i + 8) {
            let v = u64::from_le_bytes(chunk.try_into().ok()?);
            if !eight_digits(v) {
                break;
            }
            w = w
                .wrapping_mul(100_000_000)
                .wrapping_add(eight_digits_value(v));
            i += 8;
        }
        while i < s.len() && s[i].is_ascii_digit() {
            w = w.wrapping_mul(10).wrapping_add(u64::from(s[i] - b'0'));
            i += 1;
        }
        frac_digits = i - frac_start;
    }
    let all_digits = int_digits + frac_digits;
    // 19 digits cannot wrap a u64, so `w` is exact whenever the count passes.
    if i != s.len() || all_digits == 0 || all_digits > 19 || frac_digits > 22 || w > 1 << 53 {
        return None;
    }
    let v = w as f64 / POW10[frac_digits];
    Some(f64::from_bits(v.to_bits() | u64::from(negative) << 63))
}

/// One projected column being built.
enum Builder {
    Int32(PrimitiveChunkedBuilder<Int32Type>),
    Int64(PrimitiveChunkedBuilder<Int64Type>),
    UInt32(PrimitiveChunkedBuilder<UInt32Type>),
    UInt64(PrimitiveChunkedBuilder<UInt64Type>),
    Float32(PrimitiveChunkedBuilder<Float32Type>),
    Float64(PrimitiveChunkedBuilder<Float64Type>),
    Boolean(BooleanChunkedBuilder),
    /// Text as bytes until the range is known to be UTF-8.
    String(BinaryChunkedBuilder),
    Date(PrimitiveChunkedBuilder<Int32Type>),
    /// Values in `unit`; `per_unit`: nanoseconds per unit.
    Datetime {
        values: PrimitiveChunkedBuilder<Int64Type>,
        unit: TimeUnit,
        per_unit: i64,
        stamps: StampParser,
    },
}

/// polars' reader skips leading spaces and tabs before a number; leave those fields to it.
#[inline(always)]
fn starts_with_blank(field: &[u8]) -> bool {
    matches!(field.first(), Some(b' ' | b'\t'))
}

macro_rules! push_number {
    ($builder:expr, $field:expr, $parse:expr) => {{
        if $field.is_empty() {
            $builder.append_null();
            true
        } else if starts_with_blank($field) {
            false
        } else {
            match $parse($field) {
                Ok(v) => {
                    $builder.append_value(v);
                    true
                }
                Err(_) => false,
            }
        }
    }};
}

impl Builder {
    fn new(name: PlSmallStr, dtype: &DataType, dialect: Dialect, rows: usize) -> Option<Self> {
        Some(match dtype {
            DataType::Int32 => Builder::Int32(PrimitiveChunkedBuilder::new(name, rows)),
            DataType::Int64 => Builder::Int64(PrimitiveChunkedBuilder::new(name, rows)),
            DataType::UInt32 => Builder::UInt32(PrimitiveChunkedBuilder::new(name, rows)),
            DataType::UInt64 => Builder::UInt64(PrimitiveChunkedBuilder::new(name, rows)),
            DataType::Float32 => Builder::Float32(PrimitiveChunkedBuilder::new(name, rows)),
            DataType::Float64 => Builder::Float64(PrimitiveChunkedBuilder::new(name, rows)),
            DataType::Boolean => Builder::Boolean(BooleanChunkedBuilder::new(name, rows)),
            DataType::String => Builder::String(BinaryChunkedBuilder::new(name, rows)),
            DataType::Date => Builder::Date(PrimitiveChunkedBuilder::new(name, rows)),
            DataType::Datetime(unit, None) if dialect.datetimes => Builder::Datetime {
                values: PrimitiveChunkedBuilder::new(name, rows),
                unit: *unit,
                per_unit: nanos_per(*unit),
                stamps: StampParser::default(),
            },
            _ => return None,
        })
    }

    /// Appends one field's value (`quoted`: the text between a field's quotes, unescaped);
    /// `false` when it does not parse as polars would parse it.
    #[inline(always)]
    fn push(&mut self, field: &[u8], quoted: bool) -> bool {
        match self {
            Builder::Int32(b) => push_number!(b, field, atoi_simd::parse::<i32, true, true>),
            Builder::Int64(b) => push_number!(b, field, atoi_simd::parse::<i64, true, true>),
            Builder::UInt32(b) => push_number!(b, field, atoi_simd::parse::<u32, true, true>),
            Builder::UInt64(b) => push_number!(b, field, atoi_simd::parse::<u64, true, true>),
            Builder::Float32(b) => push_number!(b, field, fast_float2::parse::<f32, _>),
            Builder::Float64(b) => match parse_plain_decimal(field) {
                Some(v) => {
                    b.append_value(v);
                    true
                }
                None => push_number!(b, field, fast_float2::parse::<f64, _>),
            },
            Builder::Boolean(b) => {
                if field.eq_ignore_ascii_case(b"true") {
                    b.append_value(true);
                } else if field.eq_ignore_ascii_case(b"false") {
                    b.append_value(false);
                } else if field.is_empty() {
                    b.append_null();
                } else {
                    return false;
                }
                true
            }
            Builder::String(b) => {
                // polars: an empty field is null, a quoted empty one (`""`) an empty string.
                if field.is_empty() && !quoted {
                    b.append_null();
                } else {
                    b.append_value(field);
                }
                true
            }
            // An empty date or timestamp is null, quoted (`""`) or not, as in polars.
            Builder::Date(b) => {
                if field.is_empty() {
                    b.append_null();
                    return true;
                }
                match parse_iso_date(field) {
                    Some(days) => {
                        b.append_value(days);
                        true
                    }
                    None => false,
                }
            }
            Builder::Datetime {
                values,
                per_unit,
                stamps,
                ..
            } => {
                if field.is_empty() {
                    values.append_null();
                    return true;
                }
                match stamps.parse_in(field, *per_unit) {
                    Some(v) => {
                        values.append_value(v);
                        true
                    }
                    None => false,
                }
            }
        }
    }

    fn finish(self) -> Column {
        match self {
            Builder::Int32(b) => b.finish().into_column(),
            Builder::Int64(b) => b.finish().into_column(),
            Builder::UInt32(b) => b.finish().into_column(),
            Builder::UInt64(b) => b.finish().into_column(),
            Builder::Float32(b) => b.finish().into_column(),
            Builder::Float64(b) => b.finish().into_column(),
            Builder::Boolean(b) => b.finish().into_column(),
            // SAFETY: `parse` finishes builders only after checking that the whole range is
            // UTF-8, and every field starts and ends next to an ASCII separator or newline (a
            // non-ASCII separator is refused), which never splits a character.
            Builder::String(b) => unsafe { b.finish().to_string_unchecked() }.into_column(),
            Builder::Date(b) => b.finish().into_date().into_column(),
            Builder::Datetime { values, unit, .. } => {
                values.finish().into_datetime(unit, None).into_column()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dialect() -> Dialect {
        Dialect {
            separator: b',',
            quote_char: Some(b'"'),
            datetimes: true,
        }
    }

    fn schema() -> Schema {
        Schema::from_iter([
            Field::new("i".into(), DataType::Int64),
            Field::new("s".into(), DataType::String),
            Field::new("f".into(), DataType::Float64),
        ])
    }

    #[test]
    fn blocks_are_classified_byte_by_byte() {
        let mut block = [b'a'; 64];
        block[0] = b',';
        block[17] = b'\n';
        block[63] = b',';
        block[30] = b'"';
        block[40] = b'\r';
        block[50] = 0xc3;
        let b = classify(&block, b',', Some(b'"'));
        assert_eq!(b.ends, 1 | 1 << 17 | 1 << 63);
        assert_eq!(b.quotes, 1 << 30);
        assert_eq!(b.crs, 1 << 40);
        assert_eq!(b.high, 1 << 50);
    }

    #[test]
    fn projected_columns_and_nulls() {
        let text = b"1,a,0.5\n,,\n-3,long string here,1e3\n";
        let df = parse(text, &schema(), &[0, 2], dialect(), 4).unwrap();
        assert_eq!(df.get_column_names(), ["i", "f"]);
        let i: Vec<Option<i64>> = df.column("i").unwrap().i64().unwrap().iter().collect();
        assert_eq!(i, [Some(1), None, Some(-3)]);
        let f: Vec<Option<f64>> = df.column("f").unwrap().f64().unwrap().iter().collect();
        assert_eq!(f, [Some(0.5), None, Some(1000.0)]);
        let df = parse(text, &schema(), &[1], dialect(), 4).unwrap();
        let s: Vec<Option<&str>> = df.column("s").unwrap().str().unwrap().iter().collect();
        assert_eq!(s, [Some("a"), None, Some("long string here")]);
    }

    #[test]
    fn quoted_fields_as_polars_reads_them() {
        let text =
            b"1,\"a,b\",2\n2,\"say \"\"hi\"\"\",3\n3,\"\",4\n4,\"two\nlines\",5\n\"5\",x,\"6.5\"\n";
        let df = parse(text, &schema(), &[0, 1, 2], dialect(), 4).unwrap();
        let i: Vec<Option<i64>> = df.column("i").unwrap().i64().unwrap().iter().collect();
        assert_eq!(i, [Some(1), Some(2), Some(3), Some(4), Some(5)]);
        let s: Vec<Option<&str>> = df.column("s").unwrap().str().unwrap().iter().collect();
        assert_eq!(
            s,
            [
                Some("a,b"),
                Some("say \"hi\""),
                Some(""),
                Some("two\nlines"),
                Some("x")
            ]
        );
        let f = df.column("f").unwrap().f64().unwrap();
        assert_eq!(f.get(4), Some(6.5));
        // Without a quote character, quotes are text.
        let plain = Dialect {
            quote_char: None,
            ..dialect()
        };
        let df = parse(b"1,\"a\",2\n", &schema(), &[1], plain, 1).unwrap();
        assert_eq!(df.column("s").unwrap().str().unwrap().get(0), Some("\"a\""));
    }

    #[test]
    fn newlines_outside_quotes_match_a_byte_by_byte_scan() {
        let mut text = Vec::new();
        for r in 0..300 {
            let field = match r % 4 {
                0 => "plain".to_string(),
                1 => format!("\"with\nnewline {r}\""),
                2 => "\"doubled \"\" and , comma\"".to_string(),
                _ => format!("\"{}\"", "x".repeat(r % 70)),
            };
            text.extend_from_slice(format!("{r},{field},1.5\n").as_bytes());
        }
        let mut expected = Vec::new();
        let mut inside = false;
        for (i, &b) in text.iter().enumerate() {
            if b == b'"' {
                inside = !inside;
            } else if b == b'\n' && !inside {
                expected.push(i);
            }
        }
        // Fed in uneven pieces, as reads of a file may return.
        let mut found = Vec::new();
        let mut state = QuoteState::default();
        let mut at = 0;
        for piece in [100, 64, 1000, 37, usize::MAX] {
            let end = at + piece.min(text.len() - at);
            state.newlines_outside(&text[at..end], b'"', |i| found.push(at + i));
            at = end;
        }
        assert_eq!(found, expected);
    }

    #[test]
    fn crlf_line_ends() {
        let text = b"1,a,0.5\r\n2,\"q\",\r\n3,c,2\r\n";
        let df = parse(text, &schema(), &[0, 1, 2], dialect(), 4).unwrap();
        let s: Vec<Option<&str>> = df.column("s").unwrap().str().unwrap().iter().collect();
        assert_eq!(s, [Some("a"), Some("q"), Some("c")]);
        let f: Vec<Option<f64>> = df.column("f").unwrap().f64().unwrap().iter().collect();
        assert_eq!(f, [Some(0.5), None, Some(2.0)]);
    }

    #[test]
    fn a_last_line_without_newline_counts() {
        let df = parse(b"1,a,2\n3,b,4", &schema(), &[0], dialect(), 1).unwrap();
        assert_eq!(df.height(), 2);
        let df = parse(b"1,a,", &schema(), &[2], dialect(), 1).unwrap();
        assert_eq!(df.column("f").unwrap().null_count(), 1);
    }

    #[test]
    fn anything_else_is_left_to_polars() {
        let s = schema();
        for text in [
            &b"1,\"a,2\n"[..],             // a quote never closed
            b"1,a\"b,2\n",                 // a quote inside an unquoted field
            b"1,\"a\"b,2\n",               // text after the closing quote
            b"1,\"a\"\"b\"c,2\n",          // text after a closing quote, escaped quote before
            b"1,a,2\r3,b,4\n",             // a CR not before a newline
            b"1,\"a\r\nb\",2\n",           // a CR in quoted text
            b"1,a,2\r\n\r\n",              // an empty CRLF line
            b"1,a,2\n\n3,b,4\n",           // empty line
            b"1,a\n",                      // too few fields
            b"1,a,2,3\n",                  // too many
            b"x,a,2\n",                    // not an integer
            b" 1,a,2\n",                   // leading blank
            b"99999999999999999999,a,2\n", // overflow
            b"1,\xff,2\n",                 // invalid UTF-8 with text projected
        ] {
            assert!(
                parse(text, &s, &[0, 1, 2], dialect(), 1).is_none(),
                "{text:?}"
            );
        }
        // Invalid UTF-8 outside any text column is fine (polars does not look either).
        assert!(parse(b"1,\xff,2\n", &s, &[0], dialect(), 1).is_some());
        // Columns without a builder.
        let odd = Schema::from_iter([Field::new("d".into(), DataType::Int8)]);
        assert!(parse(b"1\n", &odd, &[0], dialect(), 1).is_none());
    }

    #[test]
    fn plain_decimals_are_exactly_fast_float() {
        for text in [
            "0.5",
            "-0.0",
            "0",
            "-0",
            "+1.25",
            ".5",
            "5.",
            "0.544626659225",
            "-0.700082259420",
            "9007199254740992",
            "1234567.12345678",
            "0.1",
            "0.2",
            "0.3000000000000000",
            "00000000000000000.5",
        ] {
            let want: f64 = fast_float2::parse(text).unwrap();
            let got = parse_plain_decimal(text.as_bytes()).unwrap();
            assert_eq!(got.to_bits(), want.to_bits(), "{text}");
        }
        for text in [
            "",
            "-",
            ".",
            "1e5",
            "inf",
            "NaN",
            "1.2.3",
            "12345678901234567890",
            "1,5",
        ] {
            assert_eq!(parse_plain_decimal(text.as_bytes()), None, "{text}");
        }
        // Digits reading past 2^53 do not fit: left to the general parser.
        assert_eq!(parse_plain_decimal(b"9007199254740993"), None);
        assert_eq!(parse_plain_decimal(b"0.30000000000000004"), None);
    }

    proptest::proptest! {
        #[test]
        fn any_plain_decimal_is_exactly_fast_float(
            digits in "[0-9]{1,20}", point in 0usize..21, negative in proptest::bool::ANY,
        ) {
            let point = point.min(digits.len());
            let text = format!(
                "{}{}.{}",
                if negative { "-" } else { "" },
                &digits[..point],
                &digits[point..]
            );
            let want: f64 = fast_float2::parse(&text).unwrap();
            if let Some(got) = parse_plain_decimal(text.as_bytes()) {
                proptest::prop_assert_eq!(got.to_bits(), want.to_bits(), "{}", text);
            }
        }
    }

    #[test]
    fn long_ranges_cross_blocks() {
        let mut text = Vec::new();
        for r in 0..1000 {
            text.extend_from_slice(format!("{r},name{},{}.25\n", r % 7, r).as_bytes());
        }
        let df = parse(&text, &schema(), &[0, 1, 2], dialect(), 10).unwrap();
        assert_eq!(df.height(), 1000);
        let f = df.column("f").unwrap().f64().unwrap();
        assert_eq!(f.get(999), Some(999.25));
        let s = df.column("s").unwrap().str().unwrap();
        assert_eq!(s.get(998), Some("name4"));
        // Bytes deep inside the range (in full blocks, not the tail) are checked too.
        let mut unicode = text.clone();
        unicode.extend_from_slice("5,grüße,1\n".as_bytes());
        unicode.extend_from_slice(&text);
        let df = parse(&unicode, &schema(), &[1], dialect(), 10).unwrap();
        assert_eq!(
            df.column("s").unwrap().str().unwrap().get(1000),
            Some("grüße")
        );
        for bad in [&b"5,\xff\xfe,1\n"[..], b"5,q\",1\n", b"5,a,1\r,\n"] {
            let mut t = text.clone();
            t.extend_from_slice(bad);
            t.extend_from_slice(&text);
            assert!(
                parse(&t, &schema(), &[1], dialect(), 10).is_none(),
                "{bad:?}"
            );
        }
    }
}
