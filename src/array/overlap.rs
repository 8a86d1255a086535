//! `map_overlap`: apply a function to blocks extended by halos of their neighbours.

/// How to pad the outer edges of the array.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Boundary {
    /// No padding: edge blocks grow on their inner side only.
    None,
    /// Pad with a constant.
    Constant(f64),
    /// Mirror the edge (`[a b c] -> b a | a b c | c b`, NumPy's "symmetric"-free reflect as Dask).
    Reflect,
    /// Wrap around.
    Periodic,
    /// Repeat the edge value.
    Nearest,
}
