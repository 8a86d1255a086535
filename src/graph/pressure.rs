//! TEMPORARY stand-in.
