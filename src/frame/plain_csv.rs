//! A projected-column parser for *plain* CSV byte ranges: brisk's fast path in front of
//! polars' CSV reader.
//!
//! Most data files are plain: no quote characters, `\n` line ends, one value per field, every
//! line with the header's number of fields. For those, splitting lines into fields is the
//! bulk of a parse-bound query's work (polars' `read_chunk` tokenizer was ~40% of the CPU of a
//! string group-by over CSV), and it can be done with a data-parallel scan instead of a byte
//! loop:
//!
//! 1. **Structural scan.** Each 64-byte block becomes one `u64` whose set bits mark the
//!    separators and newlines in it (four 16-byte SSE2 compares on x86-64, a byte loop
//!    elsewhere and for the tail). The bits are visited in order with `trailing_zeros`, so the
//!    cost is per *field*, not per byte.
//! 2. **Projection.** Field `k` of a line goes to a column builder only when column `k` is
//!    projected; other fields cost one bit visit.
//! 3. **Values.** Numbers are parsed with the crates polars' reader uses (`fast-float2`,
//!    `atoi_simd`, with the same options), so a value parses here exactly when it parses there
//!    and to the same number; ISO dates and timestamps with brisk's fixed-layout parser; text
//!    is pushed as it is (empty fields are nulls, as in polars).
//!
//! **Invariant: the result equals polars' or there is none.** Anything this parser does not
//! reproduce exactly — a quote character or `\r` anywhere in the range, an empty line, a line
//! with another number of fields, a value that does not parse, leading whitespace before a
//! number, invalid UTF-8 when text is projected, a column type it has no builder for — makes
//! [`parse`] return `None`, and the caller parses the range with polars, which then also
//! produces the error message for malformed input.

use polars::prelude::*;

use super::source_csv::{parse_iso, parse_iso_date};

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
    // A non-ASCII separator byte could cut a multi-byte character (see `Builder::push`).
    if sep >= 0x80 || sep == b'\n' || sep == b'\r' {
        return None;
    }
    let unsafe_byte = match dialect.quote_char {
        Some(q) => memchr::memchr2(q, b'\r', bytes),
        None => memchr::memchr(b'\r', bytes),
    };
    if unsafe_byte.is_some() {
        return None;
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
    // polars validates the whole range when any text column is read; so do we, which also
    // makes every field valid UTF-8 (fields end at ASCII bytes).
    if has_text && simdutf8::basic::from_utf8(bytes).is_err() {
        return None;
    }
    let mut lines = Lines {
        slot,
        builders,
        field: 0,
        field_start: 0,
        line_start: 0,
        rows: 0,
    };
    let mut pos = 0;
    while pos + 64 <= bytes.len() {
        let mut mask = structural_mask(&bytes[pos..pos + 64], sep);
        while mask != 0 {
            let at = pos + mask.trailing_zeros() as usize;
            mask &= mask - 1;
            if !lines.end_field(bytes, at) {
                return None;
            }
        }
        pos += 64;
    }
    for at in pos..bytes.len() {
        if (bytes[at] == sep || bytes[at] == b'\n') && !lines.end_field(bytes, at) {
            return None;
        }
    }
    // A last line without a newline.
    let end = bytes.len();
    if (lines.field_start < end || lines.field > 0)
        && !(lines.take_field(bytes, end) && lines.end_line(end))
    {
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
}

impl Lines {
    /// The field ending at `at` (a separator or newline); `false` when the range is not plain.
    #[inline(always)]
    fn end_field(&mut self, bytes: &[u8], at: usize) -> bool {
        if !self.take_field(bytes, at) {
            return false;
        }
        if bytes[at] == b'\n' {
            if !self.end_line(at) {
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
        builder == usize::MAX || self.builders[builder].push(&bytes[self.field_start..end])
    }

    /// Ends the current line at `end`; `false` when it has too few fields or is empty
    /// (polars skips empty lines, so they would shift row numbers).
    #[inline(always)]
    fn end_line(&mut self, end: usize) -> bool {
        if self.field + 1 != self.slot.len() || end == self.line_start {
            return false;
        }
        self.rows += 1;
        self.field = 0;
        self.line_start = end + 1;
        true
    }
}

/// Bits set where `block` (64 bytes) holds `sep` or `\n`; bit `i` is byte `i`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn structural_mask(block: &[u8], sep: u8) -> u64 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    assert!(block.len() >= 64);
    let mut mask = 0u64;
    // SAFETY: SSE2 is part of the x86-64 baseline, so these intrinsics exist on every CPU this
    // code compiles for. Each load reads 16 bytes starting at `16 * k` with `k < 4`, inside
    // `block` (asserted to hold at least 64), and `loadu` needs no alignment.
    unsafe {
        let seps = _mm_set1_epi8(sep as i8);
        let newlines = _mm_set1_epi8(b'\n' as i8);
        for k in 0..4 {
            let v = _mm_loadu_si128(block.as_ptr().add(16 * k).cast::<__m128i>());
            let hits = _mm_or_si128(_mm_cmpeq_epi8(v, seps), _mm_cmpeq_epi8(v, newlines));
            mask |= u64::from(_mm_movemask_epi8(hits) as u16) << (16 * k);
        }
    }
    mask
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn structural_mask(block: &[u8], sep: u8) -> u64 {
    let mut mask = 0u64;
    for (i, &b) in block[..64].iter().enumerate() {
        mask |= u64::from(b == sep || b == b'\n') << i;
    }
    mask
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
    String(StringChunkedBuilder),
    Date(PrimitiveChunkedBuilder<Int32Type>),
    /// Values in `unit`; `per_unit`: nanoseconds per unit.
    Datetime {
        values: PrimitiveChunkedBuilder<Int64Type>,
        unit: TimeUnit,
        per_unit: i64,
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
            DataType::String => Builder::String(StringChunkedBuilder::new(name, rows)),
            DataType::Date => Builder::Date(PrimitiveChunkedBuilder::new(name, rows)),
            DataType::Datetime(unit, None) if dialect.datetimes => Builder::Datetime {
                values: PrimitiveChunkedBuilder::new(name, rows),
                unit: *unit,
                per_unit: match unit {
                    TimeUnit::Nanoseconds => 1,
                    TimeUnit::Microseconds => 1_000,
                    TimeUnit::Milliseconds => 1_000_000,
                },
            },
            _ => return None,
        })
    }

    /// Appends one field's value; `false` when it does not parse as polars would parse it.
    #[inline(always)]
    fn push(&mut self, field: &[u8]) -> bool {
        match self {
            Builder::Int32(b) => push_number!(b, field, atoi_simd::parse::<i32, true, true>),
            Builder::Int64(b) => push_number!(b, field, atoi_simd::parse::<i64, true, true>),
            Builder::UInt32(b) => push_number!(b, field, atoi_simd::parse::<u32, true, true>),
            Builder::UInt64(b) => push_number!(b, field, atoi_simd::parse::<u64, true, true>),
            Builder::Float32(b) => push_number!(b, field, fast_float2::parse::<f32, _>),
            Builder::Float64(b) => push_number!(b, field, fast_float2::parse::<f64, _>),
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
                if field.is_empty() {
                    b.append_null();
                } else {
                    // SAFETY: `parse` checked the whole range is UTF-8 before any text column
                    // is built, and fields start and end next to ASCII separators or newlines
                    // (a non-ASCII separator is refused), which never split a character.
                    b.append_value(unsafe { std::str::from_utf8_unchecked(field) });
                }
                true
            }
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
                values, per_unit, ..
            } => {
                if field.is_empty() {
                    values.append_null();
                    return true;
                }
                match parse_iso(field) {
                    Some(ns) => {
                        values.append_value(ns.div_euclid(*per_unit));
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
            Builder::String(b) => b.finish().into_column(),
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
    fn the_mask_marks_separators_and_newlines() {
        let mut block = [b'a'; 64];
        block[0] = b',';
        block[17] = b'\n';
        block[63] = b',';
        assert_eq!(structural_mask(&block, b','), 1 | 1 << 17 | 1 << 63);
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
    fn a_last_line_without_newline_counts() {
        let df = parse(b"1,a,2\n3,b,4", &schema(), &[0], dialect(), 1).unwrap();
        assert_eq!(df.height(), 2);
        let df = parse(b"1,a,", &schema(), &[2], dialect(), 1).unwrap();
        assert_eq!(df.column("f").unwrap().null_count(), 1);
    }

    #[test]
    fn anything_not_plain_is_left_to_polars() {
        let s = schema();
        for text in [
            &b"1,\"a\",2\n"[..],           // quotes
            b"1,a,2\r\n",                  // CR
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
    }
}
