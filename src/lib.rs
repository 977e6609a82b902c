//! Smelt, a deep-learning graph compiler: ONNX in, fused kernels and launch plans out.
//!
//! # The library API
//! A [`Session`] loads a model (`.onnx` or `.mlir`, from a path or bytes), compiles it once per
//! input shape (fused under a target's cost model, unfused, or the reference interpreter) and
//! runs it on named, typed [`Tensor`]s; [`report`], [`plan`] and [`tune`] return what the
//! commands of the same names print with `--json`. Errors are [`Error`]s that keep the file,
//! op and reason.
//!
//! ```no_run
//! use smelt::{Session, Tensor};
//! let mut session = Session::new("resnet18.onnx")?;
//! let x = Tensor::read("input.npy")?;
//! for (name, y) in session.run(&[("input", &x)])? {
//!     println!("{name}: {:?}", y.shape());
//! }
//! # Ok::<(), smelt::Error>(())
//! ```
//!
//! # The command lines
//! `smelt-opt` and `smelt` run the [`commands`]; what they share: loading models and
//! rendering errors ([`driver`]), measuring compiled modules ([`measure`]), and the text and
//! pictures they print ([`tables`], [`roofline_svg`]).

pub mod analysis;
pub mod commands;
pub mod driver;
pub mod error;
pub mod measure;
pub mod progress;
pub mod roofline_svg;
pub mod session;
pub mod tables;
pub mod tensor;
pub mod trace;
pub mod verify_diagnostics;

pub use analysis::{plan, report, tune};
pub use error::{Error, Result};
pub use session::{Mode, Session, SessionOptions, ValueInfo, WeightSource};
pub use smelt_compiler::ElementType;
pub use tensor::{Element, Tensor, TensorData};
