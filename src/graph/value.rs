//! Type-erased task results.
//!
//! A [`Value`] is what a task produces and its consumers read: a reference-counted
//! `Arc<dyn Any + Send + Sync>` plus the byte size it was created with (so the store can count
//! memory without knowing the type) and the type's name (for clear type-mismatch errors).
//! Cloning is a reference-count increment. A consumer that holds the only reference can move the
//! data out without copying ([`Value::take`]); the scheduler hands the last consumer of a result
//! the only reference, so a chain of `Vec` or `ndarray` transformations can work in place.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use crate::spill::SizeOf;

/// A task result of any type, with its size in bytes.
#[derive(Clone)]
pub struct Value {
    /// `None` is the unit value `()`: no allocation, and no shared reference count for
    /// every no-op task to contend on.
    data: Option<Arc<dyn Any + Send + Sync>>,
    bytes: usize,
    type_name: &'static str,
}

static UNIT: () = ();

impl Value {
    /// Wraps `value`, measuring its size once.
    pub fn new<T: SizeOf + Send + Sync + 'static>(value: T) -> Self {
        let bytes = value.size_of();
        Value {
            data: Some(Arc::new(value)),
            bytes,
            type_name: std::any::type_name::<T>(),
        }
    }

    /// Wraps `value` with a size the caller measured (for types without a [`SizeOf`] impl).
    pub fn with_size<T: Send + Sync + 'static>(value: T, bytes: usize) -> Self {
        Value {
            data: Some(Arc::new(value)),
            bytes,
            type_name: std::any::type_name::<T>(),
        }
    }

    /// The unit value `()`, shared: producing it allocates nothing.
    pub fn unit() -> Self {
        Value {
            data: None,
            bytes: 0,
            type_name: "()",
        }
    }

    /// Bytes the value holds (as measured when it was created).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Name of the stored type.
    pub fn type_name(&self) -> &'static str {
        self.type_name
    }

    /// True when the stored type is `T`.
    pub fn is<T: 'static>(&self) -> bool {
        match &self.data {
            Some(d) => d.is::<T>(),
            None => std::any::TypeId::of::<T>() == std::any::TypeId::of::<()>(),
        }
    }

    /// A reference to the data if it is a `T`.
    pub fn downcast_ref<T: 'static>(&self) -> Option<&T> {
        match &self.data {
            Some(d) => d.downcast_ref::<T>(),
            None => (&UNIT as &dyn Any).downcast_ref::<T>(),
        }
    }

    /// The data as a shared `Arc<T>`, or the value back if it is not a `T`.
    pub fn downcast_arc<T: Send + Sync + 'static>(self) -> Result<Arc<T>, Value> {
        let Value {
            data,
            bytes,
            type_name,
        } = self;
        let data = match data {
            Some(d) => d,
            None if std::any::TypeId::of::<T>() == std::any::TypeId::of::<()>() => {
                Arc::new(()) as Arc<dyn Any + Send + Sync>
            }
            None => {
                return Err(Value {
                    data: None,
                    bytes,
                    type_name,
                })
            }
        };
        data.downcast::<T>().map_err(|data| Value {
            data: Some(data),
            bytes,
            type_name,
        })
    }

    /// Moves the data out when this is the only reference, otherwise clones it.
    /// Returns the value back if it is not a `T`.
    pub fn take<T: Clone + Send + Sync + 'static>(self) -> Result<T, Value> {
        let arc = self.downcast_arc::<T>()?;
        Ok(Arc::try_unwrap(arc).unwrap_or_else(|shared| (*shared).clone()))
    }

    /// Number of references to the data (for tests of in-place reuse).
    pub fn ref_count(&self) -> usize {
        self.data.as_ref().map_or(1, Arc::strong_count)
    }
}

impl Default for Value {
    fn default() -> Self {
        Value::unit()
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Value<{}>({} bytes)", self.type_name, self.bytes)
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
    fn unit_is_free() {
        assert_eq!(Value::unit().bytes(), 0);
        assert!(Value::unit().is::<()>());
    }
}
