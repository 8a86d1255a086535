//! Type-erased task results.
//!
//! A [`Value`] is what a task produces and its consumers read: a reference-counted
//! `Arc<dyn Any + Send + Sync>` plus the byte size it was created with (so the store can count
//! memory without knowing the type) and the type's name (for clear type-mismatch errors).
//! Cloning is a reference-count increment. A consumer that holds the only reference can move the
//! data out without copying ([`Value::take`]); the scheduler hands the last consumer of a result
//! the only reference, so a chain of `Vec` or `ndarray` transformations can work in place.

use std::any::{Any, TypeId};
use std::fmt;
use std::sync::Arc;

use crate::spill::codec::{Codec, Spill};
use crate::spill::SizeOf;

/// A task result of any type, with its size in bytes.
///
/// Sixteen bytes: the size and type name live in the shared allocation next to the data, so
/// the store's slots stay small for million-task graphs.
#[derive(Clone)]
pub struct Value {
    /// `None` is the unit value `()`: no allocation, and no shared reference count for every
    /// no-op task to contend on.
    inner: Option<Arc<Inner<dyn Any + Send + Sync>>>,
}

struct Inner<T: ?Sized> {
    bytes: usize,
    type_name: &'static str,
    /// How to write the value to disk and read it back; `None` for values that must stay in
    /// memory (they are still counted).
    codec: Option<Codec>,
    data: T,
}

static UNIT: () = ();

impl Value {
    /// Wraps `value`, measuring its size once.
    pub fn new<T: SizeOf + Send + Sync + 'static>(value: T) -> Self {
        let bytes = value.size_of();
        Self::with_size(value, bytes)
    }

    /// Wraps `value` with a size the caller measured (for types without a [`SizeOf`] impl).
    pub fn with_size<T: Send + Sync + 'static>(value: T, bytes: usize) -> Self {
        Self::build(value, bytes, None)
    }

    /// Wraps a value the store may move to disk when memory runs short (see
    /// [`Spill`](crate::spill::codec::Spill)).
    ///
    /// ```
    /// use brisk::Value;
    /// let v = Value::spillable(vec![1.0f64, 2.0, 3.0]);
    /// let codec = v.codec().unwrap();
    /// let mut bytes = Vec::new();
    /// codec.encode(&v, &mut bytes).unwrap();
    /// let back = codec.decode(&bytes).unwrap();
    /// assert_eq!(back.downcast_ref::<Vec<f64>>(), Some(&vec![1.0, 2.0, 3.0]));
    /// ```
    pub fn spillable<T: Spill + SizeOf>(value: T) -> Self {
        let bytes = value.size_of();
        Self::build(value, bytes, Some(Codec::of::<T>()))
    }

    /// Wraps `value`, spillable when its type names a codec ([`SizeOf::spill_codec`]): how
    /// `delayed` functions and futures store their results.
    pub fn auto<T: SizeOf + Send + Sync + 'static>(value: T) -> Self {
        let bytes = value.size_of();
        Self::build(value, bytes, T::spill_codec())
    }

    fn build<T: Send + Sync + 'static>(value: T, bytes: usize, codec: Option<Codec>) -> Self {
        let inner: Arc<Inner<dyn Any + Send + Sync>> = Arc::new(Inner {
            bytes,
            type_name: std::any::type_name::<T>(),
            codec,
            data: value,
        });
        Value { inner: Some(inner) }
    }

    /// The codec that can write this value to disk, if it is spillable.
    pub fn codec(&self) -> Option<&Codec> {
        self.inner.as_ref().and_then(|i| i.codec.as_ref())
    }

    /// The unit value `()`: producing it allocates nothing.
    pub fn unit() -> Self {
        Value { inner: None }
    }

    /// Bytes the value holds (as measured when it was created).
    pub fn bytes(&self) -> usize {
        self.inner.as_ref().map_or(0, |i| i.bytes)
    }

    /// Name of the stored type.
    pub fn type_name(&self) -> &'static str {
        self.inner.as_ref().map_or("()", |i| i.type_name)
    }

    /// True when the stored type is `T`.
    pub fn is<T: 'static>(&self) -> bool {
        match &self.inner {
            Some(i) => i.data.is::<T>(),
            None => TypeId::of::<T>() == TypeId::of::<()>(),
        }
    }

    /// A reference to the data if it is a `T`.
    pub fn downcast_ref<T: 'static>(&self) -> Option<&T> {
        match &self.inner {
            Some(i) => i.data.downcast_ref::<T>(),
            None => (&UNIT as &dyn Any).downcast_ref::<T>(),
        }
    }

    /// Moves the data out when this is the only reference, otherwise clones it.
    /// Returns the value back if it is not a `T`.
    pub fn take<T: Clone + Send + Sync + 'static>(self) -> Result<T, Value> {
        let Some(inner) = self.inner else {
            // The unit value: only `()` matches.
            let unit: Box<dyn Any> = Box::new(());
            return unit.downcast::<T>().map(|b| *b).map_err(|_| Value::unit());
        };
        if !inner.data.is::<T>() {
            return Err(Value { inner: Some(inner) });
        }
        let raw = Arc::into_raw(inner) as *const Inner<T>;
        // SAFETY: `raw` came from `Arc::into_raw` of an `Arc<Inner<dyn Any>>` that was created
        // by unsizing an `Arc<Inner<U>>`, and the check above proved `U == T`; dropping the
        // vtable metadata gives back a pointer to that same `Inner<T>` allocation, which is
        // what `Arc::from_raw` requires (this is how `Arc::downcast` works in std).
        let typed: Arc<Inner<T>> = unsafe { Arc::from_raw(raw) };
        Ok(match Arc::try_unwrap(typed) {
            Ok(inner) => inner.data,
            Err(shared) => shared.data.clone(),
        })
    }

    /// True when both share the same data (one allocation), or both are the unit value.
    pub fn same(&self, other: &Value) -> bool {
        match (&self.inner, &other.inner) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }

    /// Number of references to the data (for tests of in-place reuse).
    pub fn ref_count(&self) -> usize {
        self.inner.as_ref().map_or(1, Arc::strong_count)
    }
}

impl Default for Value {
    fn default() -> Self {
        Value::unit()
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Value<{}>({} bytes)", self.type_name(), self.bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_moves_when_unique_and_clones_when_shared() {
        let v = Value::new(vec![1u32, 2, 3]);
        let shared = v.clone();
        assert_eq!(v.ref_count(), 2);
        let owned: Vec<u32> = v.take().unwrap();
        assert_eq!(owned, vec![1, 2, 3]);
        assert_eq!(shared.ref_count(), 1);
        let moved: Vec<u32> = shared.take().unwrap();
        assert_eq!(moved.len(), 3);
    }

    #[test]
    fn wrong_type_returns_value() {
        let v = Value::new(5u64);
        let back = v.take::<String>().unwrap_err();
        assert_eq!(back.type_name(), "u64");
        assert_eq!(back.bytes(), 8);
    }

    #[test]
    fn spillable_values_carry_their_codec_through_a_round_trip() {
        let a = ndarray::Array2::<f64>::from_shape_fn((3, 4), |(i, j)| (i * 4 + j) as f64);
        let v = Value::spillable(a.clone());
        assert_eq!(v.bytes(), a.size_of());
        let codec = *v.codec().expect("arrays are spillable");
        let mut bytes = Vec::new();
        codec.encode(&v, &mut bytes).unwrap();
        let back = codec.decode(&bytes).unwrap();
        assert!(back.codec().is_some(), "read back values stay spillable");
        assert_eq!(back.take::<ndarray::Array2<f64>>().unwrap(), a);
        assert!(Value::new(5u64).codec().is_none());
        assert!(Value::unit().codec().is_none());
    }

    #[test]
    fn value_is_small() {
        assert_eq!(std::mem::size_of::<Value>(), 16);
        assert!(std::mem::size_of::<Option<Value>>() <= 24);
    }

    #[test]
    fn unit_is_free() {
        assert_eq!(Value::unit().bytes(), 0);
        assert!(Value::unit().is::<()>());
    }
}
