//! The `smelt` package: the command-line drivers (`smelt-opt`, `smelt`) and what they share.

pub mod calibrate;
pub mod driver;
pub mod measure;
pub mod roofline_svg;
pub mod tune;
