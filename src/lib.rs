//! The `smelt` package: the command-line drivers (`smelt-opt`, `smelt`) and the commands they
//! run, as library modules.

pub mod calibrate;
pub mod conformance;
pub mod driver;
pub mod fit_target;
pub mod measure;
pub mod plan;
pub mod report;
pub mod roofline_svg;
pub mod run;
pub mod tables;
pub mod tune;
