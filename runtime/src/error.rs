//! What can go wrong compiling or running a module, naming the op, its location (the ONNX
//! node it came from) and the reason.

use smelt_compiler::Location;

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The module has no function to run, or it is empty.
    #[error("{0}")]
    Module(String),
    /// An op the executor cannot compile as it is typed (a dynamic shape, an unsupported
    /// element type).
    #[error("{op} at {loc}: {reason}")]
    Lower { op: &'static str, loc: Location, reason: String },
    /// Inputs that do not match `@main`'s signature.
    #[error("{0}")]
    Input(String),
    /// A step that found its data wrong while running (an index out of range).
    #[error("{op} ({label}) at run time: {reason}")]
    Step { op: String, label: String, reason: String },
    /// The JIT could not be set up on this machine.
    #[error("JIT: {0}")]
    Jit(String),
}

/// Callers that report errors as text keep using `?`.
impl From<ExecError> for String {
    fn from(e: ExecError) -> String {
        e.to_string()
    }
}
