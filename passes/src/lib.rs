//! Smelt's pass infrastructure and passes.
//!
//! A pass transforms a [`Module`] in place. Passes are registered in [`registry`] by name with
//! their options, so the same names work in `--pass-pipeline=builtin.module(canonicalize,cse)`,
//! as per-pass flags (`--canonicalize`), and from Rust. One pass per file.

pub mod canonicalize;
pub mod characterize;
pub mod cost;
pub mod cse;
pub mod dce;
pub mod fold;
pub mod fuse;
pub mod fusion;
pub mod graph;
pub mod integer_products;
pub mod manager;
pub mod options;
pub mod pipeline;
pub mod plan;
pub mod registry;
pub mod rewrite;
pub mod shape_inference;
pub mod specialize;
pub mod widen_half;
pub mod work;

pub use manager::{run_one, run_pipeline, PassManager, PassManagerOptions};

/// The cleanup that turns exporter output into the ops that matter.
pub const CLEANUP_PIPELINE: &str = "builtin.module(widen-half,integer-products,canonicalize,cse)";

/// What `smelt-opt MODEL.onnx` runs when no passes are named: cleanup, then fusion.
pub const DEFAULT_PIPELINE: &str = "builtin.module(widen-half,integer-products,canonicalize,cse,fuse)";
pub use smelt_compiler::diagnostics::Diagnostic;
use smelt_compiler::Module;

/// A transformation of a whole module.
pub trait Pass {
    /// The registered name (`canonicalize`).
    fn name(&self) -> &'static str;
    fn run(&mut self, module: &mut Module) -> Result<(), Diagnostic>;
    /// Notes from the last run worth showing a user (printed by the pass manager).
    fn remarks(&mut self) -> Vec<String> {
        Vec::new()
    }
}
