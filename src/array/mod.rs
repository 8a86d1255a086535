//! Chunked N-dimensional arrays of `ndarray` blocks (design §5). Built by the array work; this
//! module holds nothing yet.
