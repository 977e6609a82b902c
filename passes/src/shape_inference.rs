//! `shape-inference`: rewrites every result type to the most precise type its op's inference
//! function can derive (`?` extents and unranked tensors become known where the operands allow),
//! in program order so refinements flow forward, then updates function signatures.

use crate::rewrite::{refine_result_types, sync_function_signatures};
use crate::{Diagnostic, Pass};
use smelt_compiler::Module;

#[derive(Default)]
pub struct ShapeInference;

impl Pass for ShapeInference {
    fn name(&self) -> &'static str {
        "shape-inference"
    }

    fn run(&mut self, m: &mut Module) -> Result<(), Diagnostic> {
        for op in m.walk_pre_order(m.root()) {
            refine_result_types(m, op)?;
        }
        sync_function_signatures(m);
        Ok(())
    }
}
