//! `cse`: common subexpression elimination. Two pure, region-free ops with the same name,
//! operands, attributes and result types compute the same values; the later one is replaced by
//! the earlier one when the earlier one is visible (same block or an enclosing one).

use crate::{Diagnostic, Pass};
use smelt_compiler::ir::{BlockId, Module, OpId};
use std::collections::HashMap;

#[derive(Default)]
pub struct CommonSubexpressionElimination;

impl Pass for CommonSubexpressionElimination {
    fn name(&self) -> &'static str {
        "cse"
    }

    fn run(&mut self, m: &mut Module) -> Result<(), Diagnostic> {
        let body = m.body();
        let mut scopes = vec![HashMap::new()];
        cse_block(m, body, &mut scopes);
        Ok(())
    }
}

fn key(m: &Module, op: OpId) -> String {
    let o = m.op(op);
    let types: Vec<_> = o.results().iter().map(|r| m.value_type(*r)).collect();
    format!("{}|{:?}|{:?}|{:?}", o.name(), o.operands(), o.attributes, types)
}

fn cse_block(m: &mut Module, block: BlockId, scopes: &mut Vec<HashMap<String, OpId>>) {
    let ops: Vec<OpId> = m.block_ops(block).collect();
    for op in ops {
        let def = m.op(op).def;
        if def.traits.pure && !def.traits.terminator && m.op(op).regions().is_empty() {
            let k = key(m, op);
            if let Some(&existing) = scopes.iter().rev().find_map(|s| s.get(&k)) {
                let replacement = m.op(existing).results().to_vec();
                m.replace_op(op, &replacement);
                continue;
            }
            scopes.last_mut().unwrap().insert(k, op);
        }
        for region in m.op(op).regions().to_vec() {
            // Isolated regions cannot reuse outer values.
            let mut inner = if def.traits.isolated_from_above { vec![HashMap::new()] } else { std::mem::take(scopes) };
            for b in m.region(region).blocks().to_vec() {
                inner.push(HashMap::new());
                cse_block(m, b, &mut inner);
                inner.pop();
            }
            if !def.traits.isolated_from_above {
                *scopes = inner;
            }
        }
    }
}
