//! Byte sizes of stored values.
//!
//! The store keeps results under a memory limit, so every value must say how many bytes it
//! holds. [`SizeOf::size_of`] reports the bytes a value owns: its inline size plus whatever it
//! owns on the heap. It has no default: an empty `impl SizeOf for MyType {}` does not compile,
//! because a type that owns a `Vec` would silently count as its inline bytes only.
//!
//! # Your own types: `#[derive(SizeOf)]`
//!
//! ```
//! use std::collections::HashMap;
//! use brisk::SizeOf;
//!
//! #[derive(SizeOf)]
//! struct Index {
//!     names: Vec<String>,
//!     counts: HashMap<String, u64>,
//!     #[size_of(skip)] // inline bytes only: its heap is shared, or not worth counting
//!     source: std::sync::Arc<Vec<u8>>,
//! }
//!
//! let ix = Index {
//!     names: vec!["a".to_string()],
//!     counts: HashMap::new(),
//!     source: Default::default(),
//! };
//! assert_eq!(ix.size_of(), std::mem::size_of::<Index>() + 24 + 1);
//! ```
//!
//! The derived `size_of` is `size_of_val(self)` (the inline bytes, padding included) plus, for
//! every field, its [`heap_size`](SizeOf::heap_size) (the field's `size_of` minus its inline
//! size, which `size_of_val(self)` already holds). An enum counts the fields of the variant it
//! holds. Every type parameter gets a `T: SizeOf` bound.
//!
//! Attributes:
//!
//! - `#[size_of(skip)]` on a field: count its inline bytes only; the field's type needs no
//!   `SizeOf` impl.
//! - `#[size_of(with = "path")]` on a field: its heap bytes are `path(&field) -> usize`; for a
//!   foreign type with no `SizeOf` impl, which the orphan rule keeps you from adding.
//! - `#[size_of(spill = "postcard")]` on the type: the type is `serde` `Serialize` and
//!   `DeserializeOwned`; the derive also implements [`Spill`] for it through postcard (tag
//!   `postcard:<module path>::<name>`, or the full type name for a generic type) and returns
//!   that codec from [`spill_codec`](SizeOf::spill_codec), so the results of `delayed`
//!   functions and futures of this type move to disk under memory pressure.
//! - `#[size_of(bound = "T: SizeOf + Clone")]` on the type: these where-predicates instead of
//!   the `T: SizeOf` put on every type parameter.
//!
//! ```
//! use brisk::SizeOf;
//!
//! #[derive(SizeOf, serde::Serialize, serde::Deserialize)]
//! #[size_of(spill = "postcard")]
//! enum Shape {
//!     Point,
//!     Polygon(Vec<(f64, f64)>),
//! }
//! assert!(Shape::spill_codec().is_some());
//! assert_eq!(Shape::Point.size_of(), std::mem::size_of::<Shape>());
//! ```
//!
//! A hand-written impl states the total; [`heap_size`](SizeOf::heap_size) of the fields helps:
//!
//! ```
//! use brisk::SizeOf;
//! struct Labelled { label: String, weight: f64 }
//! impl SizeOf for Labelled {
//!     fn size_of(&self) -> usize {
//!         std::mem::size_of::<Self>() + self.label.heap_size()
//!     }
//! }
//! assert_eq!(Labelled { label: "ab".into(), weight: 1.0 }.size_of(), 32 + 2);
//! ```
//!
//! An impl without `size_of` is rejected:
//!
//! ```compile_fail,E0046
//! struct Forgot { data: Vec<u8> }
//! impl brisk::SizeOf for Forgot {}
//! ```
//!
//! # What the std impls count
//!
//! Counts follow what the value keeps allocated, from the sizes the standard library exposes:
//! capacities, not lengths (`String`, `Vec`, `VecDeque`, `PathBuf`, `OsString`); the bucket
//! array of a `HashMap`/`HashSet` (buckets from its capacity, `(K, V)` plus one control byte
//! each, plus 16 trailing control bytes; any hasher, its state counted inline); B-tree nodes of
//! a `BTreeMap`/`BTreeSet` estimated at two-thirds full, the fill random insertions leave (a
//! map collected from sorted data has full nodes and is overcounted by up to a half). Boxed, `Rc` and `Arc`
//! contents are counted with their allocation (`Rc`/`Arc` add their two counters). A shared
//! `Arc` or `Rc` is counted in full by every handle: several results holding one `Arc` are
//! counted several times, an overcount the memory limit errs on the safe side of. Borrowed
//! data (`&'static str`, a borrowed `Cow`) owns nothing beyond its inline bytes. `Result` has
//! no impl: a task returning `Result<T, E>` is a fallible task whose value is the `T`.
//!
//! ```
//! use brisk::SizeOf;
//! assert_eq!(vec![1u64, 2, 3].size_of(), 24 + 24);
//! assert_eq!((1u8, 2u64).size_of(), 16);
//! ```

use std::any::TypeId;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::ffi::OsString;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

use crate::spill::codec::{Codec, Spill};

/// How many bytes a value holds in memory, heap included.
///
/// Derive it with `#[derive(SizeOf)]` (see the [module docs](self) for the attributes) or write
/// `size_of` by hand; there is no default, so a forgotten body is a compile error rather than a
/// value that counts no heap.
pub trait SizeOf {
    /// Total bytes owned by this value: inline size plus owned heap memory.
    fn size_of(&self) -> usize;

    /// The heap part of [`size_of`](SizeOf::size_of): total minus the inline size. What a
    /// containing value adds for this field, its inline bytes being part of the container's.
    fn heap_size(&self) -> usize {
        self.size_of().saturating_sub(std::mem::size_of_val(self))
    }

    /// The codec the store may use to move results of this type to disk, or `None` (the
    /// default) to keep them in memory. Results of `delayed` functions and futures are stored
    /// with it, so their numeric arrays, frames, numeric vectors and strings spill under
    /// memory pressure like the collections' blocks. `#[size_of(spill = "postcard")]` makes
    /// the derive return a postcard codec.
    fn spill_codec() -> Option<Codec>
    where
        Self: Sized + 'static,
    {
        None
    }
}

/// `Codec::of::<Want>()` when `T` is `Want`.
fn codec_if<T: 'static, Want: Spill + SizeOf>() -> Option<Codec> {
    (TypeId::of::<T>() == TypeId::of::<Want>()).then(Codec::of::<Want>)
}

/// Types that own no heap memory: their size is their inline size.
macro_rules! inline_only {
    ($($t:ty),* $(,)?) => {$(
        impl SizeOf for $t {
            #[inline]
            fn size_of(&self) -> usize {
                std::mem::size_of::<Self>()
            }
        }
    )*};
}

inline_only!(
    (),
    bool,
    char,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64,
    std::num::NonZeroU8,
    std::num::NonZeroU16,
    std::num::NonZeroU32,
    std::num::NonZeroU64,
    std::num::NonZeroUsize,
    std::num::NonZeroI32,
    std::num::NonZeroI64,
    std::time::Duration,
    std::time::Instant,
    std::time::SystemTime,
    std::cmp::Ordering,
    std::net::IpAddr,
    std::net::Ipv4Addr,
    std::net::Ipv6Addr,
    std::net::SocketAddr,
    &'static str,
);

impl<T: ?Sized> SizeOf for std::marker::PhantomData<T> {
    fn size_of(&self) -> usize {
        0
    }
}

impl SizeOf for String {
    fn size_of(&self) -> usize {
        std::mem::size_of::<String>() + self.capacity()
    }
    fn spill_codec() -> Option<Codec> {
        Some(Codec::of::<String>())
    }
}

impl SizeOf for OsString {
    fn size_of(&self) -> usize {
        std::mem::size_of::<Self>() + self.capacity()
    }
}

impl SizeOf for PathBuf {
    fn size_of(&self) -> usize {
        std::mem::size_of::<Self>() + self.capacity()
    }
}

/// Heap bytes of the elements of a slice beyond their inline sizes.
fn elements_heap<T: SizeOf>(items: &[T]) -> usize {
    items.iter().map(SizeOf::heap_size).sum()
}

impl<T: SizeOf> SizeOf for Vec<T> {
    fn size_of(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.capacity() * std::mem::size_of::<T>()
            + elements_heap(self)
    }
    fn spill_codec() -> Option<Codec>
    where
        Self: 'static,
    {
        codec_if::<Self, Vec<f64>>()
            .or_else(codec_if::<Self, Vec<i64>>)
            .or_else(codec_if::<Self, Vec<u8>>)
    }
}

impl<T: SizeOf> SizeOf for VecDeque<T> {
    fn size_of(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.capacity() * std::mem::size_of::<T>()
            + self.iter().map(SizeOf::heap_size).sum::<usize>()
    }
}

impl<T: SizeOf, const N: usize> SizeOf for [T; N] {
    fn size_of(&self) -> usize {
        std::mem::size_of::<Self>() + elements_heap(self)
    }
}

impl<T: SizeOf> SizeOf for Box<T> {
    fn size_of(&self) -> usize {
        std::mem::size_of::<Self>() + (**self).size_of()
    }
}

impl SizeOf for Box<str> {
    fn size_of(&self) -> usize {
        std::mem::size_of::<Self>() + self.len()
    }
}

impl<T: SizeOf> SizeOf for Box<[T]> {
    fn size_of(&self) -> usize {
        std::mem::size_of::<Self>() + std::mem::size_of_val(&**self) + elements_heap(self)
    }
}

/// The strong and weak counters in front of an `Rc`'s or `Arc`'s value.
const COUNTERS: usize = 2 * std::mem::size_of::<usize>();

/// Bytes of an `Rc`/`Arc` allocation of `data` bytes aligned to `align`: the counters, then
/// the data, padded to the alignment of the whole.
fn shared_allocation(data: usize, align: usize) -> usize {
    (COUNTERS + data).next_multiple_of(align.max(std::mem::align_of::<usize>()))
}

macro_rules! shared_pointer {
    ($($p:ident),+) => {$(
        /// Counted in full by every handle (see the module docs).
        impl<T: SizeOf> SizeOf for $p<T> {
            fn size_of(&self) -> usize {
                std::mem::size_of::<Self>() + COUNTERS + (**self).size_of()
            }
        }

        /// Counted in full by every handle (see the module docs).
        impl SizeOf for $p<str> {
            fn size_of(&self) -> usize {
                std::mem::size_of::<Self>() + shared_allocation(self.len(), 1)
            }
        }

        /// Counted in full by every handle (see the module docs).
        impl<T: SizeOf> SizeOf for $p<[T]> {
            fn size_of(&self) -> usize {
                std::mem::size_of::<Self>()
                    + shared_allocation(std::mem::size_of_val(&**self), std::mem::align_of::<T>())
                    + elements_heap(self)
            }
        }
    )+};
}
shared_pointer!(Arc, Rc);

impl<T: SizeOf> SizeOf for Option<T> {
    fn size_of(&self) -> usize {
        std::mem::size_of::<Self>() + self.as_ref().map_or(0, SizeOf::heap_size)
    }
}

/// A borrowed `Cow` owns nothing beyond its inline bytes; an owned one counts its heap.
impl<B> SizeOf for Cow<'_, B>
where
    B: ToOwned + ?Sized,
    B::Owned: SizeOf,
{
    fn size_of(&self) -> usize {
        std::mem::size_of::<Self>()
            + match self {
                Cow::Borrowed(_) => 0,
                Cow::Owned(o) => o.heap_size(),
            }
    }
}

/// Bytes of the bucket array of a hashbrown table (std's `HashMap` and `HashSet`) that holds
/// `capacity` items with `slot` bytes per item: one control byte per bucket plus a trailing
/// group of 16. The inverse of hashbrown's bucket-count-to-capacity rule (7/8 of the buckets
/// from 8 buckets on, one less than the bucket count below).
fn hash_table_bytes(capacity: usize, slot: usize) -> usize {
    let buckets = match capacity {
        0 => return 0,
        c if c < 8 => (c + 1).next_power_of_two(),
        c => (c / 7 * 8).next_power_of_two(),
    };
    buckets * (slot + 1) + 16
}

impl<K: SizeOf, V: SizeOf, S> SizeOf for HashMap<K, V, S> {
    fn size_of(&self) -> usize {
        std::mem::size_of::<Self>()
            + hash_table_bytes(self.capacity(), std::mem::size_of::<(K, V)>())
            + self
                .iter()
                .map(|(k, v)| k.heap_size() + v.heap_size())
                .sum::<usize>()
    }
}

impl<K: SizeOf, S> SizeOf for HashSet<K, S> {
    fn size_of(&self) -> usize {
        std::mem::size_of::<Self>()
            + hash_table_bytes(self.capacity(), std::mem::size_of::<K>())
            + self.iter().map(SizeOf::heap_size).sum::<usize>()
    }
}

/// Estimated bytes of the nodes of a B-tree (std's `BTreeMap`/`BTreeSet`) with `len` entries
/// of `entry` bytes: leaves of 11 slots plus a 16-byte header, taken as two-thirds full, and
/// above them internal nodes, each also holding 12 child pointers, about one per 8 nodes below.
fn btree_bytes(len: usize, key: usize, value: usize) -> usize {
    if len == 0 {
        return 0;
    }
    const SLOTS: usize = 11;
    let leaf = 16 + SLOTS * (key + value);
    let internal = leaf + (SLOTS + 1) * std::mem::size_of::<usize>();
    let leaves = len.div_ceil(SLOTS * 2 / 3 + 1);
    let mut internals = 0;
    let mut level = leaves;
    while level > 1 {
        level = level.div_ceil(8);
        internals += level;
    }
    leaves * leaf + internals * internal
}

impl<K: SizeOf, V: SizeOf> SizeOf for BTreeMap<K, V> {
    fn size_of(&self) -> usize {
        std::mem::size_of::<Self>()
            + btree_bytes(
                self.len(),
                std::mem::size_of::<K>(),
                std::mem::size_of::<V>(),
            )
            + self
                .iter()
                .map(|(k, v)| k.heap_size() + v.heap_size())
                .sum::<usize>()
    }
}

impl<K: SizeOf> SizeOf for BTreeSet<K> {
    fn size_of(&self) -> usize {
        std::mem::size_of::<Self>()
            + btree_bytes(self.len(), std::mem::size_of::<K>(), 0)
            + self.iter().map(SizeOf::heap_size).sum::<usize>()
    }
}

macro_rules! tuple_size {
    ($($n:ident),+) => {
        impl<$($n: SizeOf),+> SizeOf for ($($n,)+) {
            #[allow(non_snake_case)]
            fn size_of(&self) -> usize {
                let ($($n,)+) = self;
                std::mem::size_of::<Self>() $(+ $n.heap_size())+
            }
        }
    };
}
tuple_size!(A);
tuple_size!(A, B);
tuple_size!(A, B, C);
tuple_size!(A, B, C, D);
tuple_size!(A, B, C, D, E);
tuple_size!(A, B, C, D, E, F);
tuple_size!(A, B, C, D, E, F, G);
tuple_size!(A, B, C, D, E, F, G, H);
tuple_size!(A, B, C, D, E, F, G, H, I);
tuple_size!(A, B, C, D, E, F, G, H, I, J);
tuple_size!(A, B, C, D, E, F, G, H, I, J, K);
tuple_size!(A, B, C, D, E, F, G, H, I, J, K, L);

impl<A, D> SizeOf for ndarray::ArrayBase<ndarray::OwnedRepr<A>, D>
where
    A: 'static,
    D: ndarray::Dimension + 'static,
{
    fn size_of(&self) -> usize {
        std::mem::size_of::<Self>() + self.len() * std::mem::size_of::<A>()
    }
    fn spill_codec() -> Option<Codec> {
        use ndarray::Array;
        codec_if::<Self, Array<f64, D>>()
            .or_else(codec_if::<Self, Array<f32, D>>)
            .or_else(codec_if::<Self, Array<i64, D>>)
            .or_else(codec_if::<Self, Array<i32, D>>)
            .or_else(codec_if::<Self, Array<u8, D>>)
            .or_else(codec_if::<Self, Array<bool, D>>)
    }
}

impl SizeOf for polars::prelude::DataFrame {
    fn size_of(&self) -> usize {
        std::mem::size_of::<Self>()
            + self
                .columns()
                .iter()
                .map(|c| match (c.as_series(), c.as_scalar_column()) {
                    (Some(s), _) => series_bytes(s),
                    // A constant column holds one value until something materializes it.
                    (None, Some(sc)) => match sc.lazy_as_materialized_series() {
                        Some(s) => series_bytes(s),
                        None => series_bytes(&sc.as_single_value_series()),
                    },
                    (None, None) => 0,
                })
                .sum::<usize>()
    }
    fn spill_codec() -> Option<Codec> {
        Some(Codec::of::<Self>())
    }
}

impl SizeOf for polars::prelude::Series {
    fn size_of(&self) -> usize {
        std::mem::size_of::<Self>() + series_bytes(self)
    }
}

/// Bytes a series holds in memory.
///
/// polars' `estimated_size` counts a string or binary column as the bytes of its visible
/// values: it leaves out the 16-byte view of every row and the rest of the data buffers a
/// filtered or gathered column still shares with its source, which stay allocated as long as
/// it lives. Both are counted here (each buffer once per series), so the memory limit sees what
/// the column really keeps: an overcount when buffers are shared between values, never an
/// undercount.
fn series_bytes(s: &polars::prelude::Series) -> usize {
    use polars::prelude::DataType;
    // A string column viewed as binary shares its views and buffers: one path for both.
    let binary = match s.dtype() {
        DataType::String => s.str().ok().map(|ca| ca.as_binary()),
        DataType::Binary => s.binary().ok().cloned(),
        _ => None,
    };
    let Some(ca) = binary else {
        return s.estimated_size();
    };
    let mut seen = rustc_hash::FxHashSet::default();
    let mut total = 0;
    for a in ca.downcast_iter() {
        total += a.len() * 16 + a.len().div_ceil(8);
        for b in a.data_buffers().iter() {
            if seen.insert(b.as_ptr() as usize) {
                total += b.len();
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The derive names `::brisk`, which `extern crate self as brisk` makes work in here too.
    #[derive(crate::SizeOf)]
    struct Local<'a, T: Clone> {
        items: Vec<T>,
        name: &'static str,
        #[size_of(skip)]
        borrowed: &'a [u8],
    }

    #[test]
    fn derive_inside_the_crate_with_lifetimes_and_bounds() {
        let l = Local {
            items: vec![String::from("abc")],
            name: "n",
            borrowed: &[1, 2, 3],
        };
        assert_eq!(l.size_of(), std::mem::size_of_val(&l) + 24 + 3);
        assert_eq!(l.heap_size(), 27);
        assert_eq!((l.name, l.borrowed.len()), ("n", 3));
    }

    #[test]
    fn hash_tables_count_their_bucket_arrays() {
        assert_eq!(hash_table_bytes(0, 8), 0);
        // 3 items fit 4 buckets, 7 fit 8, 14 fit 16 (7/8 full at most).
        assert_eq!(hash_table_bytes(3, 8), 4 * 9 + 16);
        assert_eq!(hash_table_bytes(7, 8), 8 * 9 + 16);
        assert_eq!(hash_table_bytes(14, 8), 16 * 9 + 16);
        assert_eq!(hash_table_bytes(1792, 4), 2048 * 5 + 16);
    }

    #[test]
    fn nested_collections() {
        let v = vec![String::from("ab"), String::with_capacity(10)];
        assert_eq!(v.size_of(), 24 + (24 + 2) + (24 + 10));
        let a = ndarray::Array2::<f64>::zeros((10, 10));
        assert!(a.size_of() >= 800);
        // Padding counts: the pair occupies 16 bytes.
        assert_eq!((1u8, 2u64).size_of(), 16);
    }
}
