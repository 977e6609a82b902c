//! A plan's view of the module at another batch size or element type.
//!
//! Model files fix their batch (the shared exports are batch 1) and reshapes inside them carry
//! it as constants, so re-importing at batch 32 is not generally possible. Every op Smelt plans
//! is independent across the batch, so the work at batch `N` is the work at the file's batch
//! with each activation `N / batch` times larger. This copy scales the leading dimension of
//! every value computed from the inputs (weights keep their shapes) and, for another element
//! type, retypes every floating-point value. Only types change: the copy is for analysis and
//! is never verified, printed or run.

use smelt_compiler::ir::{Module, OpId, ValueId};
use smelt_compiler::{Dim, ElementType, Type};
use std::collections::HashSet;

/// The model's batch: the leading dimension of `@main`'s first argument.
pub fn model_batch(m: &Module) -> u64 {
    let Some(func) = m.functions().first().copied() else { return 1 };
    let entry = m.body_of(func);
    m.block(entry)
        .args()
        .first()
        .and_then(|a| m.value_type(*a).as_tensor().and_then(|t| t.static_shape()))
        .and_then(|s| s.first().copied())
        .unwrap_or(1)
        .max(1)
}

/// `m` with activations scaled to `batch` and floats retyped to `element`.
pub fn rebatch(m: &Module, batch: u64, element: ElementType) -> Result<Module, String> {
    let from = model_batch(m);
    if batch == 0 || !batch.is_multiple_of(from) {
        return Err(format!("batch {batch} is not a multiple of the model's batch {from}"));
    }
    let factor = batch / from;
    let mut out = m.clone();
    let Some(func) = m.functions().first().copied() else { return Ok(out) };
    let entry = m.body_of(func);
    let mut activations: HashSet<ValueId> = m.block(entry).args().iter().copied().collect();
    let mut all_values: Vec<ValueId> = m.block(entry).args().to_vec();
    fn visit(m: &Module, op: OpId, activations: &mut HashSet<ValueId>, all: &mut Vec<ValueId>) {
        let o = m.op(op);
        let live = o.operands().iter().any(|v| activations.contains(v));
        for &region in o.regions() {
            for &block in m.region(region).blocks() {
                // A kernel's body arguments stand for its operands, in order.
                for (arg, operand) in m.block(block).args().iter().zip(o.operands()) {
                    all.push(*arg);
                    if activations.contains(operand) {
                        activations.insert(*arg);
                    }
                }
                for inner in m.block_ops(block).collect::<Vec<_>>() {
                    visit(m, inner, activations, all);
                }
            }
        }
        let body_live = o.regions().iter().any(|&r| {
            m.region(r).blocks().iter().any(|&b| {
                m.block_terminator(b).is_some_and(|t| m.op(t).operands().iter().any(|v| activations.contains(v)))
            })
        });
        for &r in o.results() {
            all.push(r);
            if live || body_live {
                activations.insert(r);
            }
        }
    }
    for op in m.block_ops(entry).collect::<Vec<_>>() {
        visit(m, op, &mut activations, &mut all_values);
    }
    for v in all_values {
        let Some(t) = m.value_type(v).as_tensor() else { continue };
        let mut t = t.clone();
        if factor > 1 && activations.contains(&v) {
            if let Some(Dim::Known(d)) = t.shape.as_mut().and_then(|s| s.first_mut()) {
                *d *= factor;
            }
        }
        if t.element.is_float() {
            t = t.with_element(element);
        }
        out.set_value_type(v, Type::Tensor(t));
    }
    Ok(out)
}
