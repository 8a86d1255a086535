//! Task keys: names people can read.
//!
//! A key is a name plus up to a few integer indices, like Dask's `"load-3"` or
//! `("sum", 2, 0)`. The name is an `Arc<str>` so that the million keys of a big array share one
//! allocation per name. A key is four words: the name's pointer, its length packed with the
//! number of indices, and two inline indices (more go to the heap) — a million-task graph
//! touches every byte of its keys more than once, so they are kept this small. Keys are
//! interned to dense [`TaskId`](super::TaskId)s when added to a graph; everything after that
//! works on ids.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::mem::ManuallyDrop;
use std::ptr::NonNull;
use std::sync::Arc;

/// A task's key: a name and optional integer indices.
///
/// ```
/// use brisk::Key;
/// assert_eq!(Key::from("load-3").to_string(), "load-3");
/// assert_eq!(Key::from(("sum", 2, 0)).to_string(), "(\"sum\", 2, 0)");
/// ```
pub struct Key {
    /// The bytes of an `Arc<str>` this key holds one strong reference to (from
    /// `Arc::into_raw`).
    name: NonNull<u8>,
    /// The name's length in bytes, shifted left by [`TAG_BITS`], or'ed with the number of
    /// inline indices (0 to [`INLINE`]) or [`HEAP`].
    packed: usize,
    index: Indices,
}

/// Up to [`INLINE`] indices in place, or a boxed slice of more.
union Indices {
    inline: [i64; INLINE],
    heap: ManuallyDrop<Box<[i64]>>,
}

const INLINE: usize = 2;
const TAG_BITS: u32 = 2;
const TAG_MASK: usize = (1 << TAG_BITS) - 1;
/// The tag of a key whose indices are in `Indices::heap`.
const HEAP: usize = 3;

const _: () = assert!(std::mem::size_of::<Key>() == 32);
const _: () = assert!(INLINE < HEAP);

// SAFETY: a key owns one strong count of an `Arc<str>` (Send + Sync) and, with more than
// `INLINE` indices, a `Box<[i64]>` (Send + Sync); it has no interior mutability.
unsafe impl Send for Key {}
// SAFETY: see `Send`: shared access only reads.
unsafe impl Sync for Key {}

impl Key {
    /// A key with a name and indices. Share `name` between many keys to avoid allocations.
    pub fn new(name: impl Into<Arc<str>>, index: &[i64]) -> Self {
        Key::from_parts(name.into(), index)
    }

    /// A key `(name, i)` reusing an existing name allocation.
    pub fn indexed(name: &Arc<str>, index: &[i64]) -> Self {
        Key::from_parts(Arc::clone(name), index)
    }

    fn from_parts(name: Arc<str>, index: &[i64]) -> Self {
        // A `str` is at most `isize::MAX` bytes, so the length fits with the tag bits to spare.
        let len = name.len();
        let raw = Arc::into_raw(name);
        // SAFETY: `Arc::into_raw` never returns null.
        let ptr = unsafe { NonNull::new_unchecked(raw as *const u8 as *mut u8) };
        let (tag, indices) = if index.len() <= INLINE {
            let mut inline = [0i64; INLINE];
            inline[..index.len()].copy_from_slice(index);
            (index.len(), Indices { inline })
        } else {
            let heap = ManuallyDrop::new(Box::<[i64]>::from(index));
            (HEAP, Indices { heap })
        };
        Key {
            name: ptr,
            packed: (len << TAG_BITS) | tag,
            index: indices,
        }
    }

    fn name_len(&self) -> usize {
        self.packed >> TAG_BITS
    }

    fn tag(&self) -> usize {
        self.packed & TAG_MASK
    }

    /// The pointer `Arc::into_raw` gave for the name.
    fn name_raw(&self) -> *const str {
        std::ptr::slice_from_raw_parts(self.name.as_ptr() as *const u8, self.name_len())
            as *const str
    }

    /// The name part.
    pub fn name(&self) -> &str {
        // SAFETY: `name_raw` is the pointer of a live `Arc<str>` (this key holds a count).
        unsafe { &*self.name_raw() }
    }

    /// The shared name allocation, to build sibling keys cheaply.
    pub fn name_arc(&self) -> Arc<str> {
        let raw = self.name_raw();
        // SAFETY: `raw` came from `Arc::into_raw` and this key's count keeps it alive; the new
        // count is handed to the returned `Arc`.
        unsafe {
            Arc::increment_strong_count(raw);
            Arc::from_raw(raw)
        }
    }

    /// The integer indices (empty for a plain string key).
    pub fn index(&self) -> &[i64] {
        match self.tag() {
            // SAFETY: the tag says which field of the union was written.
            HEAP => unsafe { &self.index.heap },
            n => unsafe { &self.index.inline[..n] },
        }
    }

    /// The same name with other indices.
    pub fn with_index(&self, index: &[i64]) -> Self {
        Key::from_parts(self.name_arc(), index)
    }
}

impl Clone for Key {
    fn clone(&self) -> Self {
        // SAFETY: as in `name_arc`: one more strong count, now owned by the clone.
        unsafe { Arc::increment_strong_count(self.name_raw()) };
        let index = match self.tag() {
            // SAFETY: the tag says the heap field was written.
            HEAP => Indices {
                heap: unsafe { self.index.heap.clone() },
            },
            // SAFETY: the tag says the inline field was written.
            _ => Indices {
                inline: unsafe { self.index.inline },
            },
        };
        Key {
            name: self.name,
            packed: self.packed,
            index,
        }
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        // SAFETY: this key owns one strong count of the name and, with the heap tag, the box;
        // neither is used again.
        unsafe {
            Arc::decrement_strong_count(self.name_raw());
            if self.tag() == HEAP {
                ManuallyDrop::drop(&mut self.index.heap);
            }
        }
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.name() == other.name() && self.index() == other.index()
    }
}

impl Eq for Key {}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name().hash(state);
        self.index().hash(state);
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Key) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    /// By name, then by indices.
    fn cmp(&self, other: &Key) -> Ordering {
        self.name()
            .cmp(other.name())
            .then_with(|| self.index().cmp(other.index()))
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.index().is_empty() {
            return f.write_str(self.name());
        }
        write!(f, "({:?}", self.name())?;
        for i in self.index() {
            write!(f, ", {i}")?;
        }
        f.write_str(")")
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl From<&str> for Key {
    fn from(name: &str) -> Self {
        Key::new(name, &[])
    }
}

impl From<String> for Key {
    fn from(name: String) -> Self {
        Key::new(name, &[])
    }
}

impl From<&Key> for Key {
    fn from(key: &Key) -> Self {
        key.clone()
    }
}

macro_rules! key_from_tuple {
    ($($i:ident),+) => {
        impl From<(&str, $(key_from_tuple!(@ty $i)),+)> for Key {
            fn from((name, $($i),+): (&str, $(key_from_tuple!(@ty $i)),+)) -> Self {
                Key::new(name, &[$($i),+])
            }
        }
        impl From<(&Arc<str>, $(key_from_tuple!(@ty $i)),+)> for Key {
            fn from((name, $($i),+): (&Arc<str>, $(key_from_tuple!(@ty $i)),+)) -> Self {
                Key::indexed(name, &[$($i),+])
            }
        }
    };
    (@ty $i:ident) => { i64 };
}

// Indices are i64, so integer literals in `("sum", 2, 0)` need no suffix.
key_from_tuple!(a);
key_from_tuple!(a, b);
key_from_tuple!(a, b, c);
key_from_tuple!(a, b, c, d);
key_from_tuple!(a, b, c, d, e);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_equality() {
        let a = Key::from(("x", 1, 2));
        let b = Key::new("x", &[1, 2]);
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "(\"x\", 1, 2)");
        assert_eq!(Key::from("plain").to_string(), "plain");
        assert_ne!(Key::from(("x", 1)), Key::from(("x", 1, 0)));
    }

    #[test]
    fn shared_name() {
        let name: Arc<str> = Arc::from("blk");
        let k = Key::indexed(&name, &[7]);
        assert!(Arc::ptr_eq(&k.name_arc(), &name));
        assert_eq!(k.with_index(&[8]).index(), &[8]);
    }

    #[test]
    fn keys_hold_and_release_one_count_of_their_name() {
        let name: Arc<str> = Arc::from("blk");
        let keys: Vec<Key> = (0..5).map(|n| Key::indexed(&name, &vec![3; n])).collect();
        assert_eq!(Arc::strong_count(&name), 6);
        let copies = keys.clone();
        assert_eq!(Arc::strong_count(&name), 11);
        for (n, (a, b)) in keys.iter().zip(&copies).enumerate() {
            assert_eq!(a.index(), vec![3; n].as_slice());
            assert_eq!(a, b);
            assert_eq!(a.name(), "blk");
        }
        let arc = keys[4].name_arc();
        drop(keys);
        drop(copies);
        assert_eq!(Arc::strong_count(&name), 2, "the name and `arc`");
        drop(arc);
        assert_eq!(Arc::strong_count(&name), 1);
    }

    #[test]
    fn equal_keys_hash_and_order_alike_whatever_their_layout() {
        use std::hash::BuildHasher;
        let hash = |k: &Key| rustc_hash::FxBuildHasher.hash_one(k);
        let a = Key::new("x", &[1, 2, 3, 4, 5]);
        let b = Key::new(String::from("x"), &[1, 2, 3, 4, 5]);
        assert_eq!(a, b);
        assert_eq!(hash(&a), hash(&b));
        let mut keys = [
            Key::new("b", &[]),
            Key::new("a", &[2]),
            Key::new("a", &[1, 9, 9]),
            Key::new("a", &[1, 9]),
            Key::new("", &[]),
        ];
        keys.sort();
        let shown: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        assert_eq!(
            shown,
            ["", "(\"a\", 1, 9)", "(\"a\", 1, 9, 9)", "(\"a\", 2)", "b"]
        );
        assert_eq!(Key::new("a", &[i64::MIN, -1]).index(), &[i64::MIN, -1]);
    }
}
