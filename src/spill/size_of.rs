//! Byte sizes of stored values.
//!
//! The store keeps results under a memory limit, so every value must say how many bytes it
//! holds. [`SizeOf::size_of`] reports the bytes a value owns: its inline size plus whatever it
//! owns on the heap. Types that own no heap memory can use the default
//! (`std::mem::size_of_val`), so a user type needs only `impl brisk::SizeOf for MyType {}`.
//!
//! ```
//! use brisk::SizeOf;
//! struct Point { x: f64, y: f64 }
//! impl SizeOf for Point {}
//! assert_eq!(Point { x: 0.0, y: 0.0 }.size_of(), 16);
//! assert_eq!(vec![1u64, 2, 3].size_of(), 24 + 24);
//! ```

use std::any::TypeId;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use crate::spill::codec::{Codec, Spill};

/// How many bytes a value holds in memory, heap included.
pub trait SizeOf {
    /// Total bytes owned by this value: inline size plus owned heap memory.
    fn size_of(&self) -> usize {
        std::mem::size_of_val(self)
    }

    /// The codec the store may use to move results of this type to disk, or `None` (the
    /// default) to keep them in memory. Results of `delayed` functions and futures are stored
    /// with it, so their numeric arrays, frames, numeric vectors and strings spill under
    /// memory pressure like the collections' blocks.
    fn spill_codec() -> Option<Codec>
    where
        Self: Sized,
    {
        None
    }
}

/// `Codec::of::<Want>()` when `T` is `Want`.
fn codec_if<T: 'static, Want: Spill + SizeOf>() -> Option<Codec> {
    (TypeId::of::<T>() == TypeId::of::<Want>()).then(Codec::of::<Want>)
}

macro_rules! inline_only {
    ($($t:ty),* $(,)?) => { $(impl SizeOf for $t {})* };
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
    std::time::Duration,
    std::time::Instant,
    std::time::SystemTime,
);

impl SizeOf for String {
    fn size_of(&self) -> usize {
        std::mem::size_of::<String>() + self.capacity()
    }
    fn spill_codec() -> Option<Codec> {
        Some(Codec::of::<String>())
    }
}

impl SizeOf for &'static str {}

impl<T: SizeOf + 'static> SizeOf for Vec<T> {
    fn size_of(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.iter().map(SizeOf::size_of).sum::<usize>()
            + (self.capacity() - self.len()) * std::mem::size_of::<T>()
    }
    fn spill_codec() -> Option<Codec> {
        codec_if::<Self, Vec<f64>>()
            .or_else(codec_if::<Self, Vec<i64>>)
            .or_else(codec_if::<Self, Vec<u8>>)
    }
}

impl<T: SizeOf> SizeOf for Box<T> {
    fn size_of(&self) -> usize {
        std::mem::size_of::<Self>() + (**self).size_of()
    }
}

impl<T: SizeOf> SizeOf for Arc<T> {
    fn size_of(&self) -> usize {
        // Shared: counted in full by each holder; the store sees each stored Arc once.
        std::mem::size_of::<Self>() + (**self).size_of()
    }
}

impl<T: SizeOf> SizeOf for Option<T> {
    fn size_of(&self) -> usize {
        match self {
            Some(v) => std::mem::size_of::<Self>() - std::mem::size_of::<T>() + v.size_of(),
            None => std::mem::size_of::<Self>(),
        }
    }
}

impl<T: SizeOf, const N: usize> SizeOf for [T; N] {
    fn size_of(&self) -> usize {
        self.iter().map(SizeOf::size_of).sum()
    }
}

impl<K: SizeOf, V: SizeOf, S> SizeOf for HashMap<K, V, S> {
    fn size_of(&self) -> usize {
        std::mem::size_of::<Self>()
            + self
                .iter()
                .map(|(k, v)| k.size_of() + v.size_of() + 8)
                .sum::<usize>()
    }
}

impl<K: SizeOf, S> SizeOf for HashSet<K, S> {
    fn size_of(&self) -> usize {
        std::mem::size_of::<Self>() + self.iter().map(|k| k.size_of() + 8).sum::<usize>()
    }
}

impl<K: SizeOf, V: SizeOf> SizeOf for BTreeMap<K, V> {
    fn size_of(&self) -> usize {
        std::mem::size_of::<Self>()
            + self
                .iter()
                .map(|(k, v)| k.size_of() + v.size_of() + 16)
                .sum::<usize>()
    }
}

macro_rules! tuple_size {
    ($($n:ident),+) => {
        impl<$($n: SizeOf),+> SizeOf for ($($n,)+) {
            #[allow(non_snake_case)]
            fn size_of(&self) -> usize {
                let ($($n,)+) = self;
                0 $(+ $n.size_of())+
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

    #[test]
    fn nested_collections() {
        let v = vec![String::from("ab"), String::with_capacity(10)];
        assert_eq!(v.size_of(), 24 + (24 + 2) + (24 + 10));
        let a = ndarray::Array2::<f64>::zeros((10, 10));
        assert!(a.size_of() >= 800);
        assert_eq!((1u8, 2u64).size_of(), 9);
    }
}
