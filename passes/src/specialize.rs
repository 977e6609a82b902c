//! A module specialized to concrete inputs where its shapes depend on their values: what an
//! executor with static memory plans runs.

use smelt_compiler::literal::Literal;
use smelt_compiler::names;
use smelt_compiler::{Attribute, Module, OpSpec, Type};

/// The module specialized to concrete inputs where its shapes depend on them (as any executor
/// with static memory plans must): argument types take the inputs' shapes, then integer
/// inputs (shapes, pads, indices) and, if shapes are still open, small float inputs (scales,
/// range bounds) become constants, and cleanup propagates and folds. Returns the module
/// unchanged (and `false`) when every shape is already static.
pub fn specialize_to_inputs(m: &Module, inputs: &[Literal]) -> Result<(Module, bool), String> {
    if all_static(m) {
        return Ok((m.clone(), false));
    }
    let mut last = Err("no specialization tried".to_string());
    for bake_small_floats in [false, true] {
        let mut s = m.clone();
        let func = *s.functions().first().ok_or("the module has no function")?;
        let entry = s.body_of(func);
        let args = s.block(entry).args().to_vec();
        let first = s.block_ops(entry).next().ok_or("empty function")?;
        for (&a, l) in args.iter().zip(inputs) {
            s.set_value_type(a, Type::Tensor(l.ty()));
            if l.element.is_integer() || (bake_small_floats && l.len() <= 16) {
                let c = s.create_op(
                    OpSpec::new(names::CONSTANT)
                        .attr("value", Attribute::Dense(l.to_dense()))
                        .results([Type::Tensor(l.ty())]),
                );
                s.insert_op_before(first, c);
                let v = s.op(c).result();
                s.replace_all_uses(a, v);
            }
        }
        crate::rewrite::sync_function_signatures(&mut s);
        last = crate::run_pipeline(&mut s, "builtin.module(canonicalize)")
            .map_err(|ds| ds.iter().map(|d| format!("{} at {}", d.message, d.loc)).collect::<Vec<_>>().join("; "))
            .map(|()| (s, true));
        if last.as_ref().is_ok_and(|(s, _)| all_static(s)) {
            break;
        }
    }
    last
}

/// Whether every value of every function has a static shape.
pub fn all_static(m: &Module) -> bool {
    m.functions().iter().all(|&f| {
        let entry = m.body_of(f);
        m.walk_pre_order(f)
            .iter()
            .flat_map(|&op| m.op(op).results().to_vec())
            .chain(m.block(entry).args().iter().copied())
            .all(|v| m.value_type(v).as_tensor().is_none_or(|t| t.static_shape().is_some()))
    })
}
