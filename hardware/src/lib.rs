//! Hardware as data: what a machine can do and what was measured on it. Nothing here knows the
//! IR; the cost models in `smelt-passes` read these descriptions, the runtime and the `smelt`
//! package write profiles.
//!
//! - [`target`]: target descriptions (`targets/*.toml`: peaks, memory hierarchy, launch
//!   overheads, energy, and a section per kind of machine).
//! - [`profile`]: the calibration profile, the versioned JSON that carries measurements back
//!   into compilation.
//! - [`error`]: what can go wrong, naming the file.
//! - [`gpu_patterns`]: fusion-pattern timings measured on a GPU (`scripts/gpu_fusion_patterns.py`).
//! - [`stats`]: medians with confidence intervals, and the one rule every choice made by
//!   measurement follows.

pub mod error;
pub mod gpu_patterns;
pub mod profile;
pub mod stats;
pub mod target;

pub use error::HardwareError;
