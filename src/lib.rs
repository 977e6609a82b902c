//! The `smelt` package: the command-line drivers (`smelt-opt`, `smelt`), the commands they
//! run ([`commands`]), and what those share: loading models and rendering errors
//! ([`driver`]), measuring compiled modules ([`measure`]), and the text and pictures they
//! print ([`tables`], [`roofline_svg`]).

pub mod commands;
pub mod driver;
pub mod measure;
pub mod roofline_svg;
pub mod tables;
