//! Encodings of values for spill files (and, later, the network).
//!
//! A value that can leave memory implements [`Spill`]: a stable [`tag`](Spill::tag) naming the
//! encoding, [`encode`](Spill::encode) appending bytes to a buffer, and
//! [`decode`](Spill::decode) reading them back from a byte slice (often a memory-mapped region
//! of a spill file). The store works on type-erased [`Value`]s, so it keeps a [`Codec`] (a pair of
//! monomorphized function pointers made by [`Codec::of`]) next to each spillable result.
//!
//! Compression, checksums and file headers are the disk layer's business; this module produces
//! the plain encoding only.
//!
//! # Formats
//!
//! **N-dimensional arrays** (`ndarray::Array<T, D>` for `T` in `f64 f32 i64 i32 u8 bool`, any
//! dimension, tag `ndarray-<elem>`): a fixed header followed by raw little-endian elements in
//! logical (row-major, C) order, whatever the in-memory layout was.
//!
//! ```text
//! offset  size     field
//! 0       4        magic  b"BRKA"
//! 4       1        format version (1)
//! 5       1        element code: 1 f64, 2 f32, 3 i64, 4 i32, 5 u8, 6 bool
//! 6       2        reserved, zero
//! 8       8        ndim (u64 LE)
//! 16      8*ndim   shape, one u64 LE per axis
//! 16+8*ndim        data: product(shape) elements, little-endian; bool is one byte, 0 or 1
//! ```
//!
//! The header is a multiple of 8 bytes, so when the encoding starts at an 8-aligned offset of a
//! memory map the element data is aligned for every element type: raw numeric chunks can be
//! decoded with a single copy (as here) or viewed in place. Decoding checks the magic, version,
//! element code, dimensionality, shape-product overflow and the exact data length, and reports
//! any mismatch as [`ErrorKind::Codec`]; it never panics on bad bytes.
//!
//! **Data frames** (`polars::prelude::DataFrame`, tag `polars-ipc`): an Arrow IPC file written by
//! polars' `IpcWriter` without IPC-level compression (the spill layer compresses the whole
//! encoding when that pays). IPC keeps dtypes, nulls and column names exactly.
//!
//! **Everything else** that is `serde`-serializable: postcard, either through the
//! [`Postcard`] wrapper (tag: the wrapper's type name) or by invoking
//! [`spill_via_postcard!`](crate::spill_via_postcard) for a concrete type (tag
//! `postcard:<type as written>`). Implemented here for `Vec<f64>`, `Vec<i64>`, `Vec<u8>`,
//! `String`, `u64`, `i64`, `f64` and `()`. Postcard decoding rejects trailing bytes.

use std::any::TypeId;
use std::fmt;
use std::io::Cursor;

use ndarray::{Array, ArrayD, Dimension, IxDyn};
use polars::prelude::{DataFrame, IpcReader, IpcWriter, SerReader, SerWriter};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};
use crate::graph::Value;
use crate::spill::SizeOf;

/// A value that can be written to a spill file and read back.
pub trait Spill: Sized + Send + Sync + 'static {
    /// Stable tag naming the encoding, e.g. `ndarray-f64`, `polars-ipc`, `postcard:String`.
    /// The disk layer stores it and checks it on read (see [`Codec::decode_tagged`]).
    fn tag() -> &'static str;

    /// Appends the encoding of `self` to `out`.
    fn encode(&self, out: &mut Vec<u8>) -> Result<()>;

    /// The encoding as a small header (appended to `header`) followed by bytes borrowed from
    /// `self`, for types whose memory already is their encoding: spilling then writes the value
    /// where it lies instead of copying it into a buffer as large as itself. `None` (the
    /// default, and `header` left untouched) means "use [`encode`](Spill::encode)".
    /// `header ++ body` must equal what `encode` appends.
    fn encode_split<'a>(&'a self, header: &mut Vec<u8>) -> Result<Option<&'a [u8]>> {
        let _ = header;
        Ok(None)
    }

    /// Decodes from `bytes` (which may be a memory-mapped file region).
    fn decode(bytes: &[u8]) -> Result<Self>;
}

/// A codec error about `what`.
fn codec_err(what: impl Into<String>, message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Codec {
        what: what.into(),
        message: message.into(),
    })
}

// ---------------------------------------------------------------------------------------------
// ndarray

/// Magic bytes opening an encoded array.
const ARRAY_MAGIC: [u8; 4] = *b"BRKA";
/// Version of the array format.
const ARRAY_VERSION: u8 = 1;
/// Bytes before the shape.
const ARRAY_FIXED_HEADER: usize = 16;

/// Appends the header of an encoded array of `T` with `shape`.
fn array_header<T: Element>(shape: &[usize], out: &mut Vec<u8>) {
    out.extend_from_slice(&ARRAY_MAGIC);
    out.push(ARRAY_VERSION);
    out.push(T::CODE);
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&(shape.len() as u64).to_le_bytes());
    for &d in shape {
        out.extend_from_slice(&(d as u64).to_le_bytes());
    }
}

/// An array element type with a fixed little-endian encoding.
pub trait Element: Copy + Send + Sync + 'static {
    /// Code stored in the array header.
    const CODE: u8;
    /// Bytes per element.
    const WIDTH: usize;
    /// The [`Spill::tag`] of arrays of this element.
    const TAG: &'static str;
    /// Appends the little-endian bytes of `self`.
    fn put(self, out: &mut Vec<u8>);
    /// Decodes `data` (a multiple of [`WIDTH`](Element::WIDTH) bytes) into `out`, which has
    /// room reserved.
    fn get_all(data: &[u8], out: &mut Vec<Self>) -> Result<()>;
    /// `values` viewed as their encoding, where memory and encoding coincide (numbers on
    /// little-endian machines, `u8`, `bool`); `None` otherwise (the default).
    fn as_encoded(values: &[Self]) -> Option<&[u8]> {
        let _ = values;
        None
    }
}

/// The bytes of `values` as they lie in memory.
///
/// # Safety
/// `T` must have no padding and no invalid byte patterns when read as bytes (true of the
/// primitive integers, floats and `bool`).
unsafe fn bytes_of<T: Copy>(values: &[T]) -> &[u8] {
    // SAFETY: the pointer and length cover exactly the memory of `values`, which is
    // initialised and lives as long as the returned slice; `u8` has alignment 1; the caller
    // guarantees every byte of `T` is initialised (no padding).
    unsafe {
        std::slice::from_raw_parts(values.as_ptr().cast::<u8>(), std::mem::size_of_val(values))
    }
}

macro_rules! numeric_element {
    ($($t:ty => $code:expr, $tag:expr;)*) => {$(
        impl Element for $t {
            const CODE: u8 = $code;
            const WIDTH: usize = std::mem::size_of::<$t>();
            const TAG: &'static str = $tag;
            #[inline]
            fn put(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn get_all(data: &[u8], out: &mut Vec<Self>) -> Result<()> {
                out.extend(data.chunks_exact(Self::WIDTH).map(|c| {
                    let mut b = [0u8; std::mem::size_of::<$t>()];
                    // `chunks_exact` yields exactly `WIDTH` bytes.
                    b.copy_from_slice(c);
                    <$t>::from_le_bytes(b)
                }));
                Ok(())
            }
            fn as_encoded(values: &[Self]) -> Option<&[u8]> {
                // SAFETY: primitive numbers have no padding; on a little-endian machine their
                // memory is their little-endian encoding.
                cfg!(target_endian = "little").then(|| unsafe { bytes_of(values) })
            }
        }
    )*};
}

numeric_element! {
    f64 => 1, "ndarray-f64";
    f32 => 2, "ndarray-f32";
    i64 => 3, "ndarray-i64";
    i32 => 4, "ndarray-i32";
}

impl Element for u8 {
    const CODE: u8 = 5;
    const WIDTH: usize = 1;
    const TAG: &'static str = "ndarray-u8";
    #[inline]
    fn put(self, out: &mut Vec<u8>) {
        out.push(self);
    }
    fn get_all(data: &[u8], out: &mut Vec<Self>) -> Result<()> {
        out.extend_from_slice(data);
        Ok(())
    }
    fn as_encoded(values: &[Self]) -> Option<&[u8]> {
        Some(values)
    }
}

impl Element for bool {
    const CODE: u8 = 6;
    const WIDTH: usize = 1;
    const TAG: &'static str = "ndarray-bool";
    #[inline]
    fn put(self, out: &mut Vec<u8>) {
        out.push(u8::from(self));
    }
    fn get_all(data: &[u8], out: &mut Vec<Self>) -> Result<()> {
        for (i, &b) in data.iter().enumerate() {
            match b {
                0 => out.push(false),
                1 => out.push(true),
                other => {
                    return Err(codec_err(
                        "ndarray-bool",
                        format!("element {i} is byte {other:#04x}, not 0 or 1"),
                    ))
                }
            }
        }
        Ok(())
    }
    fn as_encoded(values: &[Self]) -> Option<&[u8]> {
        // SAFETY: a `bool` is one byte holding 0 or 1, its encoding.
        Some(unsafe { bytes_of(values) })
    }
}

fn element_name(code: u8) -> &'static str {
    match code {
        1 => "f64",
        2 => "f32",
        3 => "i64",
        4 => "i32",
        5 => "u8",
        6 => "bool",
        _ => "unknown",
    }
}

impl<T: Element, D: Dimension + 'static> Spill for Array<T, D> {
    fn tag() -> &'static str {
        T::TAG
    }

    fn encode(&self, out: &mut Vec<u8>) -> Result<()> {
        out.reserve(ARRAY_FIXED_HEADER + 8 * self.ndim() + self.len() * T::WIDTH);
        array_header::<T>(self.shape(), out);
        match self.as_slice() {
            // Standard layout: memory order is logical order.
            Some(s) => match T::as_encoded(s) {
                Some(bytes) => out.extend_from_slice(bytes),
                None => s.iter().for_each(|&x| x.put(out)),
            },
            // Transposed, sliced, strided: walk in logical order.
            None => self.iter().for_each(|&x| x.put(out)),
        }
        Ok(())
    }

    fn encode_split<'a>(&'a self, header: &mut Vec<u8>) -> Result<Option<&'a [u8]>> {
        let Some(body) = self.as_slice().and_then(T::as_encoded) else {
            return Ok(None);
        };
        array_header::<T>(self.shape(), header);
        Ok(Some(body))
    }

    fn decode(bytes: &[u8]) -> Result<Self> {
        let what = T::TAG;
        if bytes.len() < ARRAY_FIXED_HEADER {
            return Err(codec_err(
                what,
                format!(
                    "truncated header: {} bytes, need at least {ARRAY_FIXED_HEADER}",
                    bytes.len()
                ),
            ));
        }
        if bytes[0..4] != ARRAY_MAGIC {
            return Err(codec_err(
                what,
                format!(
                    "bad magic {:02x?}, expected {:02x?} (not an encoded array)",
                    &bytes[0..4],
                    ARRAY_MAGIC
                ),
            ));
        }
        if bytes[4] != ARRAY_VERSION {
            return Err(codec_err(
                what,
                format!(
                    "unsupported array format version {}, expected {ARRAY_VERSION}",
                    bytes[4]
                ),
            ));
        }
        if bytes[5] != T::CODE {
            return Err(codec_err(
                what,
                format!(
                    "element type mismatch: data holds {} (code {}), expected {}",
                    element_name(bytes[5]),
                    bytes[5],
                    element_name(T::CODE)
                ),
            ));
        }
        let ndim = read_u64(bytes, 8);
        let rest = &bytes[ARRAY_FIXED_HEADER..];
        let max_ndim = (rest.len() / 8) as u64;
        if ndim > max_ndim {
            return Err(codec_err(
                what,
                format!(
                    "truncated shape: header says {ndim} dimensions but only {} bytes follow",
                    rest.len()
                ),
            ));
        }
        // `ndim <= rest.len() / 8`, so it fits in usize.
        let ndim = ndim as usize;
        if let Some(expected) = D::NDIM {
            if expected != ndim {
                return Err(codec_err(
                    what,
                    format!("dimension mismatch: data has {ndim} axes, expected {expected}"),
                ));
            }
        }
        let mut shape = Vec::with_capacity(ndim);
        let mut count: usize = 1;
        for axis in 0..ndim {
            let d = read_u64(rest, axis * 8);
            let d = usize::try_from(d).map_err(|_| {
                codec_err(
                    what,
                    format!("axis {axis} has length {d}, too large for this platform"),
                )
            })?;
            count = count.checked_mul(d).ok_or_else(|| {
                codec_err(what, "shape product overflows (corrupt shape)".to_string())
            })?;
            shape.push(d);
        }
        let data = &rest[ndim * 8..];
        let need = count.checked_mul(T::WIDTH).ok_or_else(|| {
            codec_err(
                what,
                format!("{count} elements overflow the addressable size"),
            )
        })?;
        if data.len() != need {
            return Err(codec_err(
                what,
                format!(
                    "length mismatch: shape {shape:?} needs {need} data bytes, found {}",
                    data.len()
                ),
            ));
        }
        let mut elems = Vec::with_capacity(count);
        T::get_all(data, &mut elems)?;
        let arr = ArrayD::from_shape_vec(IxDyn(&shape), elems)
            .map_err(|e| codec_err(what, format!("invalid shape {shape:?}: {e}")))?;
        arr.into_dimensionality::<D>()
            .map_err(|e| codec_err(what, format!("dimension mismatch: {e}")))
    }
}

/// Reads a little-endian u64 at `at`; the caller checked `at + 8 <= bytes.len()`.
fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

// ---------------------------------------------------------------------------------------------
// polars

impl Spill for DataFrame {
    fn tag() -> &'static str {
        "polars-ipc"
    }

    fn encode(&self, out: &mut Vec<u8>) -> Result<()> {
        // Cloning a frame clones column handles, not data; the writer needs `&mut` to align
        // chunks.
        let mut df = self.clone();
        IpcWriter::new(&mut *out)
            .with_compression(None)
            .with_parallel(false)
            .finish(&mut df)
            .map_err(|e| codec_err("polars-ipc data frame", format!("IPC write failed: {e}")))
    }

    fn decode(bytes: &[u8]) -> Result<Self> {
        // Arrow IPC parsing of corrupt input should return errors; guard against a panic in a
        // dependency all the same, so a bad spill file is an error and not a crashed worker.
        let read = std::panic::catch_unwind(|| IpcReader::new(Cursor::new(bytes)).finish());
        match read {
            Ok(Ok(df)) => Ok(df),
            Ok(Err(e)) => Err(codec_err(
                "polars-ipc data frame",
                format!("IPC read failed: {e}"),
            )),
            Err(_) => Err(codec_err(
                "polars-ipc data frame",
                "IPC reader panicked on malformed input",
            )),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// postcard

/// Appends the postcard encoding of `value` (used by [`spill_via_postcard!`] and [`Postcard`]).
#[doc(hidden)]
pub fn postcard_encode<T: Serialize + ?Sized>(
    value: &T,
    tag: &str,
    out: &mut Vec<u8>,
) -> Result<()> {
    postcard::to_io(value, &mut *out)
        .map(|_| ())
        .map_err(|e| codec_err(tag, format!("postcard encode failed: {e}")))
}

/// Decodes a postcard encoding that must fill `bytes` exactly.
#[doc(hidden)]
pub fn postcard_decode<T: DeserializeOwned>(bytes: &[u8], tag: &str) -> Result<T> {
    let (value, rest) = postcard::take_from_bytes::<T>(bytes)
        .map_err(|e| codec_err(tag, format!("postcard decode failed: {e}")))?;
    if !rest.is_empty() {
        return Err(codec_err(
            tag,
            format!(
                "{} trailing bytes after the value (of {})",
                rest.len(),
                bytes.len()
            ),
        ));
    }
    Ok(value)
}

/// Implements [`Spill`](crate::spill::codec::Spill) for concrete `serde` types through
/// postcard, with tag `postcard:<type as written>`.
///
/// ```
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Point { x: f64, y: f64 }
/// brisk::spill_via_postcard!(Point);
/// use brisk::spill::codec::Spill;
/// assert_eq!(<Point as Spill>::tag(), "postcard:Point");
/// ```
#[macro_export]
macro_rules! spill_via_postcard {
    ($($t:ty),+ $(,)?) => {$(
        impl $crate::spill::codec::Spill for $t {
            fn tag() -> &'static str {
                concat!("postcard:", stringify!($t))
            }
            fn encode(&self, out: &mut ::std::vec::Vec<u8>) -> $crate::Result<()> {
                $crate::spill::codec::postcard_encode(self, <Self as $crate::spill::codec::Spill>::tag(), out)
            }
            fn decode(bytes: &[u8]) -> $crate::Result<Self> {
                $crate::spill::codec::postcard_decode(bytes, <Self as $crate::spill::codec::Spill>::tag())
            }
        }
    )+};
}

spill_via_postcard!(Vec<f64>, Vec<i64>, Vec<u8>, String, u64, i64, f64, ());

/// Spills any `serde` type through postcard without a per-type impl: store a `Postcard<T>`.
/// Its tag is the wrapper's full type name (stable for a given build of the program).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Postcard<T>(pub T);

impl<T> std::ops::Deref for Postcard<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> std::ops::DerefMut for Postcard<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T: SizeOf> SizeOf for Postcard<T> {
    fn size_of(&self) -> usize {
        self.0.size_of()
    }
}

impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> Spill for Postcard<T> {
    fn tag() -> &'static str {
        std::any::type_name::<Postcard<T>>()
    }

    fn encode(&self, out: &mut Vec<u8>) -> Result<()> {
        postcard_encode(&self.0, Self::tag(), out)
    }

    fn decode(bytes: &[u8]) -> Result<Self> {
        postcard_decode(bytes, Self::tag()).map(Postcard)
    }
}

// ---------------------------------------------------------------------------------------------
// Type-erased codec

/// Encoder/decoder pair for one concrete type, usable on a type-erased [`Value`].
#[derive(Clone, Copy)]
pub struct Codec {
    /// The encoding's [`Spill::tag`].
    pub tag: &'static str,
    type_name: &'static str,
    encode: fn(&Value, &mut Vec<u8>) -> Result<()>,
    decode: fn(&[u8]) -> Result<Value>,
    encode_split: EncodeSplitFn,
}

/// See [`Spill::encode_split`]: the body borrows from the value.
type EncodeSplitFn = for<'a> fn(&'a Value, &mut Vec<u8>) -> Result<Option<&'a [u8]>>;

fn encode_value<T: Spill>(v: &Value, out: &mut Vec<u8>) -> Result<()> {
    match v.downcast_ref::<T>() {
        Some(t) => t.encode(out),
        None => Err(codec_err(
            format!("value of type {}", v.type_name()),
            format!(
                "codec `{}` encodes {}, not {}",
                T::tag(),
                std::any::type_name::<T>(),
                v.type_name()
            ),
        )),
    }
}

fn encode_split_value<'a, T: Spill>(
    v: &'a Value,
    header: &mut Vec<u8>,
) -> Result<Option<&'a [u8]>> {
    match v.downcast_ref::<T>() {
        Some(t) => t.encode_split(header),
        // `encode` reports the type mismatch.
        None => Ok(None),
    }
}

fn decode_value<T: Spill + SizeOf>(bytes: &[u8]) -> Result<Value> {
    let t = T::decode(bytes)?;
    if TypeId::of::<T>() == TypeId::of::<()>() {
        // The unit value allocates nothing.
        return Ok(Value::unit());
    }
    // Read back spillable, so it can be spilled again.
    Ok(Value::spillable(t))
}

impl Codec {
    /// The codec of `T`.
    pub fn of<T: Spill + SizeOf>() -> Codec {
        Codec {
            tag: T::tag(),
            type_name: std::any::type_name::<T>(),
            encode: encode_value::<T>,
            decode: decode_value::<T>,
            encode_split: encode_split_value::<T>,
        }
    }

    /// Name of the type this codec handles.
    pub fn type_name(&self) -> &'static str {
        self.type_name
    }

    /// Appends the encoding of `v` to `out`; fails if `v` does not hold this codec's type.
    pub fn encode(&self, v: &Value, out: &mut Vec<u8>) -> Result<()> {
        (self.encode)(v, out)
    }

    /// The encoding of `v` as a header (appended to `header`) and bytes borrowed from `v`, or
    /// `None` when it must be encoded with [`encode`](Codec::encode) (see
    /// [`Spill::encode_split`]).
    pub fn encode_split<'a>(&self, v: &'a Value, header: &mut Vec<u8>) -> Result<Option<&'a [u8]>> {
        (self.encode_split)(v, header)
    }

    /// Decodes a value of this codec's type (its size measured with [`SizeOf`]).
    pub fn decode(&self, bytes: &[u8]) -> Result<Value> {
        (self.decode)(bytes)
    }

    /// Decodes after checking that the bytes were written under `tag` (as stored by the disk
    /// layer).
    pub fn decode_tagged(&self, tag: &str, bytes: &[u8]) -> Result<Value> {
        if tag != self.tag {
            return Err(codec_err(
                self.type_name,
                format!(
                    "encoding tag mismatch: data was written as `{tag}`, this codec reads `{}`",
                    self.tag
                ),
            ));
        }
        self.decode(bytes)
    }
}

impl fmt::Debug for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Codec")
            .field("tag", &self.tag)
            .field("type", &self.type_name)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{s, Array1, Array2, Array3, ArrayD};
    use polars::prelude::*;

    fn round_trip<T: Spill>(v: &T) -> T {
        let mut buf = Vec::new();
        v.encode(&mut buf).expect("encode");
        T::decode(&buf).expect("decode")
    }

    fn encoded<T: Spill>(v: &T) -> Vec<u8> {
        let mut buf = Vec::new();
        v.encode(&mut buf).expect("encode");
        buf
    }

    fn err_text<T: std::fmt::Debug>(r: Result<T>) -> String {
        let e = r.expect_err("expected an error");
        assert!(
            matches!(e.kind(), ErrorKind::Codec { .. }),
            "not a codec error: {e}"
        );
        e.to_string()
    }

    #[test]
    fn arrays_of_every_element_type_round_trip() {
        let f = Array2::from_shape_fn((3, 4), |(i, j)| i as f64 * 1.5 - j as f64);
        assert_eq!(round_trip(&f), f);
        let f32a = Array2::from_shape_fn((2, 5), |(i, j)| (i * j) as f32 / 3.0);
        assert_eq!(round_trip(&f32a), f32a);
        let i = Array2::from_shape_fn((4, 2), |(i, j)| i as i64 - 10 * j as i64);
        assert_eq!(round_trip(&i), i);
        let i32a = Array2::from_shape_fn((1, 7), |(_, j)| -(j as i32));
        assert_eq!(round_trip(&i32a), i32a);
        let u = Array2::from_shape_fn((3, 3), |(i, j)| (i * 3 + j) as u8);
        assert_eq!(round_trip(&u), u);
        let b = Array2::from_shape_fn((2, 3), |(i, j)| (i + j) % 2 == 0);
        assert_eq!(round_trip(&b), b);
        let d = ArrayD::from_shape_fn(IxDyn(&[2, 3, 4]), |ix| {
            (ix[0] * 12 + ix[1] * 4 + ix[2]) as f64
        });
        assert_eq!(round_trip(&d), d);
        let a1 = Array1::from(vec![f64::NAN, f64::INFINITY, -0.0]);
        let back = round_trip(&a1);
        assert!(back[0].is_nan() && back[1] == f64::INFINITY && back[2].is_sign_negative());
        let a3 = Array3::<i32>::from_shape_fn((2, 2, 2), |(a, b, c)| (a * 4 + b * 2 + c) as i32);
        assert_eq!(round_trip(&a3), a3);
    }

    fn split<T: Spill>(v: &T) -> Option<Vec<u8>> {
        let mut head = Vec::new();
        let body = v.encode_split(&mut head).expect("encode_split")?;
        head.extend_from_slice(body);
        Some(head)
    }

    #[test]
    fn split_encoding_equals_encode_and_borrows_the_data() {
        let f = Array2::from_shape_fn((3, 4), |(i, j)| i as f64 * 1.5 - j as f64);
        assert_eq!(split(&f), Some(encoded(&f)));
        let mut head = Vec::new();
        let body = f.encode_split(&mut head).unwrap().unwrap();
        assert_eq!(
            body.as_ptr(),
            f.as_ptr().cast::<u8>(),
            "body is the array's memory"
        );
        let i32a = Array1::from(vec![-1i32, 7, i32::MIN]);
        assert_eq!(split(&i32a), Some(encoded(&i32a)));
        let u = Array1::from(vec![0u8, 255, 3]);
        assert_eq!(split(&u), Some(encoded(&u)));
        let b = Array2::from_shape_fn((2, 3), |(i, j)| (i + j) % 2 == 0);
        assert_eq!(split(&b), Some(encoded(&b)));
        let scalar = ArrayD::from_elem(IxDyn(&[]), 42.5f64);
        assert_eq!(split(&scalar), Some(encoded(&scalar)));
        // Non-standard layouts are encoded, not split; the header stays empty.
        let t = Array2::from_shape_fn((3, 4), |(i, j)| (i * 4 + j) as i64).reversed_axes();
        let mut head = Vec::new();
        assert!(t.encode_split(&mut head).unwrap().is_none());
        assert!(head.is_empty());
        // Other types use `encode`.
        assert!(split(&Postcard(vec![1u32, 2])).is_none());
    }

    #[test]
    fn array_header_layout() {
        let a = Array2::<f64>::zeros((2, 3));
        let buf = encoded(&a);
        assert_eq!(&buf[0..4], b"BRKA");
        assert_eq!(buf[4], 1);
        assert_eq!(buf[5], 1);
        assert_eq!(read_u64(&buf, 8), 2);
        assert_eq!(read_u64(&buf, 16), 2);
        assert_eq!(read_u64(&buf, 24), 3);
        assert_eq!(buf.len(), 32 + 6 * 8);
        assert_eq!(<Array2<f64> as Spill>::tag(), "ndarray-f64");
        assert_eq!(<ArrayD<bool> as Spill>::tag(), "ndarray-bool");
    }

    #[test]
    fn empty_and_zero_dimensional_arrays() {
        let empty = Array2::<f64>::zeros((0, 5));
        let back = round_trip(&empty);
        assert_eq!(back.shape(), &[0, 5]);
        let empty_d = ArrayD::<i64>::zeros(IxDyn(&[3, 0, 2]));
        assert_eq!(round_trip(&empty_d).shape(), &[3, 0, 2]);
        let scalar = ArrayD::from_elem(IxDyn(&[]), 42.5f64);
        let back = round_trip(&scalar);
        assert_eq!(back.ndim(), 0);
        assert_eq!(back[IxDyn(&[])], 42.5);
        let zero_d = ndarray::arr0(7u8);
        assert_eq!(round_trip(&zero_d), zero_d);
    }

    #[test]
    fn non_contiguous_arrays_encode_in_logical_order() {
        let a = Array2::from_shape_fn((3, 4), |(i, j)| (i * 4 + j) as i64);
        let t = a.clone().reversed_axes(); // owned, Fortran-order strides
        assert!(t.as_slice().is_none(), "test needs a non-standard layout");
        let back = round_trip(&t);
        assert_eq!(back, a.t());
        assert!(back.is_standard_layout());

        let mut sliced = Array2::from_shape_fn((6, 6), |(i, j)| (i * 10 + j) as f32);
        sliced.slice_collapse(s![1..5;2, ..;3]);
        assert!(sliced.as_slice().is_none());
        let back = round_trip(&sliced);
        assert_eq!(back, sliced);
        assert_eq!(back.shape(), &[2, 2]);
    }

    #[test]
    fn array_decode_rejects_bad_input() {
        let a = Array2::from_shape_fn((2, 3), |(i, j)| (i + j) as f64);
        let good = encoded(&a);

        let t = err_text(Array2::<f64>::decode(&good[..10]));
        assert!(t.contains("truncated header"), "{t}");
        let t = err_text(Array2::<f64>::decode(&good[..20]));
        assert!(t.contains("truncated shape"), "{t}");
        let t = err_text(Array2::<f64>::decode(&good[..good.len() - 1]));
        assert!(t.contains("length mismatch"), "{t}");
        let mut long = good.clone();
        long.push(0);
        let t = err_text(Array2::<f64>::decode(&long));
        assert!(t.contains("length mismatch"), "{t}");

        let mut bad = good.clone();
        bad[0] = b'X';
        let t = err_text(Array2::<f64>::decode(&bad));
        assert!(t.contains("bad magic"), "{t}");
        let mut bad = good.clone();
        bad[4] = 9;
        let t = err_text(Array2::<f64>::decode(&bad));
        assert!(t.contains("version"), "{t}");

        let t = err_text(Array2::<i64>::decode(&good));
        assert!(
            t.contains("element type mismatch") && t.contains("f64"),
            "{t}"
        );
        let t = err_text(ndarray::Array3::<f64>::decode(&good));
        assert!(t.contains("dimension mismatch"), "{t}");
        assert!(ArrayD::<f64>::decode(&good).is_ok());

        // Shape product overflow.
        let mut bad = good.clone();
        bad[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        bad[24..32].copy_from_slice(&u64::MAX.to_le_bytes());
        let t = err_text(Array2::<f64>::decode(&bad));
        assert!(t.contains("overflow") || t.contains("too large"), "{t}");
        // Huge ndim.
        let mut bad = good.clone();
        bad[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        let t = err_text(ArrayD::<f64>::decode(&bad));
        assert!(t.contains("truncated shape"), "{t}");
        // Element count times width overflows, though the product fits.
        let mut bad = good.clone();
        bad[16..24].copy_from_slice(&(usize::MAX as u64 / 4).to_le_bytes());
        bad[24..32].copy_from_slice(&1u64.to_le_bytes());
        let t = err_text(Array2::<f64>::decode(&bad));
        assert!(t.contains("overflow"), "{t}");

        // Invalid bool byte.
        let b = Array1::from(vec![true, false]);
        let mut bad = encoded(&b);
        let n = bad.len();
        bad[n - 1] = 7;
        let t = err_text(Array1::<bool>::decode(&bad));
        assert!(t.contains("not 0 or 1"), "{t}");

        // Garbage never panics.
        for len in 0..64 {
            let junk: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            assert!(ArrayD::<f64>::decode(&junk).is_err());
        }
    }

    fn sample_frame() -> DataFrame {
        let dates = Series::new("when".into(), &[Some(0i64), None, Some(86_400_000)])
            .cast(&DataType::Datetime(TimeUnit::Milliseconds, None))
            .expect("cast to datetime");
        DataFrame::new(
            3,
            vec![
                Column::new("id".into(), &[Some(1i64), None, Some(3)]),
                Column::new("x".into(), &[Some(0.5f64), Some(f64::NAN), None]),
                Column::new("name".into(), &[Some("a"), None, Some("ccc")]),
                Column::new("flag".into(), &[Some(true), Some(false), None]),
                Column::new("small".into(), &[1i32, 2, 3]),
                dates.into(),
            ],
        )
        .expect("frame")
    }

    #[test]
    fn data_frame_round_trip_keeps_dtypes_and_nulls() {
        let df = sample_frame();
        let back = round_trip(&df);
        assert_eq!(back.schema(), df.schema());
        assert!(back.equals_missing(&df), "{back} != {df}");
        assert_eq!(back.column("id").expect("id").null_count(), 1);
        assert_eq!(back.column("x").expect("x").null_count(), 1);
        assert_eq!(back.column("name").expect("name").null_count(), 1);
        assert_eq!(back.column("when").expect("when").null_count(), 1);

        let empty = df.head(Some(0));
        let back = round_trip(&empty);
        assert_eq!(back.height(), 0);
        assert_eq!(back.schema(), df.schema());
    }

    #[test]
    fn data_frame_decode_rejects_bad_input() {
        let good = encoded(&sample_frame());
        let t = err_text(DataFrame::decode(&good[..good.len() / 2]));
        assert!(t.contains("polars-ipc"), "{t}");
        let t = err_text(DataFrame::decode(b"not ipc at all"));
        assert!(t.contains("IPC"), "{t}");
        err_text(DataFrame::decode(&[]));
    }

    #[test]
    fn postcard_types_round_trip() {
        assert_eq!(round_trip(&vec![1.5f64, -2.0, 0.0]), vec![1.5, -2.0, 0.0]);
        assert_eq!(
            round_trip(&vec![i64::MIN, 0, i64::MAX]),
            vec![i64::MIN, 0, i64::MAX]
        );
        assert_eq!(round_trip(&vec![0u8, 255, 7]), vec![0, 255, 7]);
        assert_eq!(round_trip(&Vec::<f64>::new()), Vec::<f64>::new());
        assert_eq!(round_trip(&String::from("héllo")), "héllo");
        assert_eq!(round_trip(&String::new()), "");
        assert_eq!(round_trip(&u64::MAX), u64::MAX);
        assert_eq!(round_trip(&-5i64), -5);
        assert_eq!(round_trip(&3.25f64), 3.25);
        round_trip(&());
        assert_eq!(<String as Spill>::tag(), "postcard:String");
        assert_eq!(<Vec<f64> as Spill>::tag(), "postcard:Vec<f64>");
        assert_eq!(<() as Spill>::tag(), "postcard:()");

        let p = Postcard(vec![(1u32, String::from("a")), (2, String::from("b"))]);
        assert_eq!(round_trip(&p), p);
        assert!(<Postcard<Vec<u32>> as Spill>::tag().contains("Postcard"));
    }

    #[test]
    fn postcard_decode_rejects_bad_input() {
        let t = err_text(String::decode(&[5, b'a']));
        assert!(
            t.contains("postcard:String") && t.contains("decode failed"),
            "{t}"
        );
        let t = err_text(u64::decode(&[1, 2]));
        assert!(t.contains("trailing bytes"), "{t}");
        let t = err_text(f64::decode(&[1, 2, 3]));
        assert!(t.contains("postcard:f64"), "{t}");
        let t = err_text(String::decode(&[2, 0xff, 0xfe]));
        assert!(t.contains("decode failed"), "{t}");
        err_text(<()>::decode(&[0]));
    }

    #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Point {
        x: f64,
        label: String,
    }
    impl SizeOf for Point {
        fn size_of(&self) -> usize {
            std::mem::size_of::<Self>() + self.label.capacity()
        }
    }
    crate::spill_via_postcard!(Point);

    #[test]
    fn macro_for_user_types() {
        let p = Point {
            x: 1.0,
            label: "p".into(),
        };
        assert_eq!(round_trip(&p), p);
        assert_eq!(<Point as Spill>::tag(), "postcard:Point");
        let c = Codec::of::<Point>();
        let mut buf = Vec::new();
        c.encode(&Value::new(p.clone()), &mut buf).expect("encode");
        let v = c.decode(&buf).expect("decode");
        assert_eq!(v.downcast_ref::<Point>(), Some(&p));
    }

    #[test]
    fn codec_round_trips_values() {
        fn check<T: Spill + SizeOf + PartialEq + std::fmt::Debug + Clone>(x: T) {
            let c = Codec::of::<T>();
            assert_eq!(c.tag, T::tag());
            let v = Value::new(x.clone());
            let mut buf = vec![0xAA]; // encode appends
            c.encode(&v, &mut buf).expect("encode");
            assert_eq!(buf[0], 0xAA);
            let back = c.decode_tagged(T::tag(), &buf[1..]).expect("decode");
            assert_eq!(back.type_name(), v.type_name());
            assert_eq!(back.downcast_ref::<T>(), Some(&x));
            assert!(back.bytes() > 0 || std::mem::size_of::<T>() == 0);
        }
        check(Array2::from_shape_fn((2, 2), |(i, j)| (i + j) as f64));
        check(ArrayD::<u8>::zeros(IxDyn(&[4])));
        check(vec![1i64, 2, 3]);
        check(String::from("s"));
        check(9u64);
        check(Postcard(vec![1u16, 2]));

        let c = Codec::of::<()>();
        let mut buf = Vec::new();
        c.encode(&Value::unit(), &mut buf).expect("encode unit");
        c.encode(&Value::new(()), &mut buf)
            .expect("encode boxed unit");
        assert!(buf.is_empty());
        let v = c.decode(&buf).expect("decode unit");
        assert!(v.is::<()>());
        assert_eq!(v.bytes(), 0);

        let c = Codec::of::<DataFrame>();
        let df = sample_frame();
        let mut buf = Vec::new();
        c.encode(&Value::new(df.clone()), &mut buf)
            .expect("encode frame");
        let v = c.decode(&buf).expect("decode frame");
        assert!(v
            .downcast_ref::<DataFrame>()
            .expect("a frame")
            .equals_missing(&df));
        assert_eq!(
            format!("{c:?}"),
            format!(
                "Codec {{ tag: \"polars-ipc\", type: \"{}\" }}",
                c.type_name()
            )
        );
    }

    #[test]
    fn codec_rejects_other_types_and_tags() {
        let c = Codec::of::<Array2<f64>>();
        let mut buf = Vec::new();
        let t = err_text(c.encode(&Value::new(String::from("x")), &mut buf));
        assert!(t.contains("ndarray-f64") && t.contains("String"), "{t}");
        assert!(buf.is_empty());
        let t = err_text(c.encode(&Value::unit(), &mut buf));
        assert!(t.contains("()"), "{t}");
        // Same element, other dimensionality: a different type.
        let t = err_text(c.encode(&Value::new(ArrayD::<f64>::zeros(IxDyn(&[2]))), &mut buf));
        assert!(t.contains("codec `ndarray-f64`"), "{t}");

        let t = err_text(c.decode_tagged("postcard:String", &[]));
        assert!(t.contains("tag mismatch"), "{t}");
        let t = err_text(c.decode(&[1, 2, 3]));
        assert!(t.contains("truncated header"), "{t}");
    }
}
