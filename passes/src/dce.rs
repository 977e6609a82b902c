//! `dce`: erases pure operations whose results are unused, back to front so that whole dead
//! chains go in one sweep.

use crate::rewrite::is_trivially_dead;
use crate::{Diagnostic, Pass};
use smelt_compiler::Module;

#[derive(Default)]
pub struct DeadCodeElimination;

impl Pass for DeadCodeElimination {
    fn name(&self) -> &'static str {
        "dce"
    }

    fn run(&mut self, m: &mut Module) -> Result<(), Diagnostic> {
        // Post-order visits users before the producers they keep alive.
        let mut ops = m.walk_pre_order(m.root());
        ops.reverse();
        for op in ops {
            if m.is_live(op) && is_trivially_dead(m, op) {
                m.erase_op(op);
            }
        }
        Ok(())
    }
}
