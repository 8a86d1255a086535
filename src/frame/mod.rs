//! Chunked data frames of polars `DataFrame` partitions (design §5). Built by the frame work;
//! this module holds nothing yet.
