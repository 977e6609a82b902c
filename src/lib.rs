//! The `smelt` package: the command-line drivers (`smelt-opt`, `smelt`) and what they share.

pub mod calibrate;
pub mod driver;
pub mod fit_target;
pub mod measure;
pub mod plan;
pub mod roofline_svg;
pub mod tune;
