//! The `smelt` package: the command-line drivers (`smelt-opt`, `smelt`) and what they share.

pub mod driver;
