//! What the library API reports: every error keeps the file, op and location it concerns, in
//! the words the command lines print.

#![deny(missing_docs)]

use crate::driver::Failure;
use smelt_runtime::ExecError;
use std::path::Path;

/// An error of the library API ([`crate::Session`] and the free functions).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The model did not load: a file that cannot be read, malformed ONNX or MLIR, an
    /// unsupported operator. The message is the rendered diagnostic (`file:line:col: error:
    /// ...`, naming the op).
    #[error("{0}")]
    Load(String),
    /// An input that does not fit the model: unknown or missing name, wrong element type or
    /// shape.
    #[error("input '{name}': {reason}")]
    Input {
        /// The input's name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Compiling or running failed; names the op and its location (the ONNX node).
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// A tensor file that cannot be read or written.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A tensor whose data does not fit its shape or type.
    #[error("{0}")]
    Tensor(String),
    /// A bad option (threads, target, profile) or a failed analysis.
    #[error("{0}")]
    Other(String),
}

impl Error {
    pub(crate) fn file(path: &Path, reason: impl Into<String>) -> Error {
        Error::File { path: path.display().to_string(), reason: reason.into() }
    }
}

impl From<Failure> for Error {
    fn from(f: Failure) -> Error {
        Error::Load(f.to_string())
    }
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
