//! `shape-inference`: rewrites every result type to the most precise type its op's inference
//! function can derive (`?` extents and unranked tensors become known where the operands allow),
//! in program order so refinements flow forward, then updates function signatures.

use crate::rewrite::sync_function_signatures;
use crate::{Diagnostic, Pass};
use smelt_compiler::dialect::{infer, OpView};
use smelt_compiler::Module;

#[derive(Default)]
pub struct ShapeInference;

impl Pass for ShapeInference {
    fn name(&self) -> &'static str {
        "shape-inference"
    }

    fn run(&mut self, m: &mut Module) -> Result<(), Diagnostic> {
        for op in m.walk_pre_order(m.root()) {
            let Some(infer_fn) = m.op(op).def.infer else { continue };
            let inferred = infer_fn(&OpView::new(m, op))
                .map_err(|e| Diagnostic::error(m.op(op).loc.clone(), format!("'{}' op {e}", m.op(op).name())))?;
            let results = m.op(op).results().to_vec();
            if inferred.len() != results.len() {
                continue;
            }
            for (r, t) in results.into_iter().zip(inferred) {
                let declared = m.value_type(r).clone();
                if !infer::compatible(&declared, &t) {
                    return Err(Diagnostic::error(
                        m.op(op).loc.clone(),
                        format!("'{}' op result is declared {declared} but the operands imply {t}", m.op(op).name()),
                    ));
                }
                m.set_value_type(r, infer::refine(&declared, &t));
            }
        }
        sync_function_signatures(m);
        Ok(())
    }
}
