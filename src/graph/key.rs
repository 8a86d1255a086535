//! Task keys: names people can read.
//!
//! A key is a name plus up to a few integer indices, like Dask's `"load-3"` or
//! `("sum", 2, 0)`. The name is an `Arc<str>` so that the million keys of a big array share one
//! allocation per name; up to two indices live inline (more go to the heap): a key is five
//! words, and a million-task graph touches every byte of its keys at least twice. Keys are
//! interned to dense [`TaskId`](super::TaskId)s when added to a graph; everything after that
//! works on ids.

use std::fmt;
use std::sync::Arc;

use smallvec::SmallVec;

/// A task's key: a name and optional integer indices.
///
/// ```
/// use brisk::Key;
/// assert_eq!(Key::from("load-3").to_string(), "load-3");
/// assert_eq!(Key::from(("sum", 2, 0)).to_string(), "(\"sum\", 2, 0)");
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    name: Arc<str>,
    index: SmallVec<[i64; 2]>,
}

const _: () = assert!(std::mem::size_of::<Key>() <= 40);

impl Key {
    /// A key with a name and indices. Share `name` between many keys to avoid allocations.
    pub fn new(name: impl Into<Arc<str>>, index: &[i64]) -> Self {
        Key {
            name: name.into(),
            index: SmallVec::from_slice(index),
        }
    }

    /// A key `(name, i)` reusing an existing name allocation.
    pub fn indexed(name: &Arc<str>, index: &[i64]) -> Self {
        Key {
            name: Arc::clone(name),
            index: SmallVec::from_slice(index),
        }
    }

    /// The name part.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The shared name allocation, to build sibling keys cheaply.
    pub fn name_arc(&self) -> &Arc<str> {
        &self.name
    }

    /// The integer indices (empty for a plain string key).
    pub fn index(&self) -> &[i64] {
        &self.index
    }

    /// The same name with other indices.
    pub fn with_index(&self, index: &[i64]) -> Self {
        Key::indexed(&self.name, index)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.index.is_empty() {
            return f.write_str(&self.name);
        }
        write!(f, "({:?}", &*self.name)?;
        for i in &self.index {
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
        assert!(Arc::ptr_eq(k.name_arc(), &name));
        assert_eq!(k.with_index(&[8]).index(), &[8]);
    }
}
