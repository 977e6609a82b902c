//! What can go wrong reading or writing a hardware description: every error names the file
//! (or shipped target) it is about.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum HardwareError {
    /// The file could not be read, written or locked.
    #[error("{}: cannot {action}: {source}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The file is not a document of its kind (a syntax error, a wrong field type, truncation).
    #[error("{origin}: {what}: {reason}")]
    Syntax { origin: String, what: &'static str, reason: String },
    /// The document parsed but a value in it is not usable.
    #[error("{origin}: {reason}")]
    Invalid { origin: String, reason: String },
    /// A target name that is neither shipped nor a .toml path.
    #[error("unknown target '{name}' (shipped: {shipped}; or give a .toml file)")]
    UnknownTarget { name: String, shipped: String },
}

impl HardwareError {
    pub(crate) fn invalid(origin: impl Into<String>, reason: impl Into<String>) -> HardwareError {
        HardwareError::Invalid { origin: origin.into(), reason: reason.into() }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, action: &'static str, source: std::io::Error) -> HardwareError {
        HardwareError::Io { path: path.into(), action, source }
    }
}

/// Callers that report errors as text keep using `?`.
impl From<HardwareError> for String {
    fn from(e: HardwareError) -> String {
        e.to_string()
    }
}
