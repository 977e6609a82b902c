//! A module specialized to concrete inputs where its shapes depend on their values: what an
//! executor with static memory plans runs.

use smelt_compiler::literal::Literal;
use smelt_compiler::names;
use smelt_compiler::{Attribute, Dim, Module, OpSpec, TensorType, Type};

/// The module specialized to concrete inputs where its shapes depend on them (as any executor
/// with static memory plans must): argument types take the inputs' shapes, then integer
/// inputs (shapes, pads, indices) and, if shapes are still open, small float inputs (scales,
/// range bounds) become constants, and cleanup propagates and folds. Returns the module
/// unchanged (and `false`) when every shape is already static. Inputs that contradict the
/// declared types are an error naming the input and the dimension.
pub fn specialize_to_inputs(m: &Module, inputs: &[Literal]) -> Result<(Module, bool), String> {
    smelt_compiler::signature::check_inputs(m, smelt_compiler::signature::main_function(m)?, inputs)?;
    if all_static(m) {
        return Ok((m.clone(), false));
    }
    let mut last = Err("no specialization tried".to_string());
    for bake_small_floats in [false, true] {
        let mut s = m.clone();
        let func = smelt_compiler::signature::main_function(&s)?;
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

/// The module with every dynamic dimension of `@main`'s inputs bound to `extent` (what
/// analyses and random-input runs of a symbolic model use, as `onnxruntime_perf_test` binds
/// free dimensions to 1), specialized like [`specialize_to_inputs`]. Returns the bound
/// dimensions as `(input name, axis)`; the module unchanged when there are none.
pub fn bind_dynamic_inputs(m: &Module, extent: u64) -> Result<(Module, Vec<(String, usize)>), String> {
    let func = smelt_compiler::signature::main_function(m)?;
    let names = smelt_compiler::signature::input_names(m, func);
    let mut bound = Vec::new();
    let mut s = m.clone();
    let args = s.block(s.body_of(func)).args().to_vec();
    for (&a, name) in args.iter().zip(&names) {
        let Some(t) = s.value_type(a).as_tensor().cloned() else { continue };
        let Some(shape) = &t.shape else {
            return Err(format!("input '{name}' has unknown rank ({t}); give its shape with --shape"));
        };
        if t.static_shape().is_some() {
            continue;
        }
        let dims: Vec<Dim> = shape
            .iter()
            .enumerate()
            .map(|(axis, d)| match d {
                Dim::Known(k) => Dim::Known(*k),
                Dim::Dynamic => {
                    bound.push((name.clone(), axis));
                    Dim::Known(extent)
                }
            })
            .collect();
        s.set_value_type(a, Type::Tensor(TensorType { shape: Some(dims), element: t.element }));
    }
    if bound.is_empty() {
        return Ok((m.clone(), bound));
    }
    crate::rewrite::sync_function_signatures(&mut s);
    crate::run_pipeline(&mut s, "builtin.module(canonicalize)")
        .map_err(|ds| ds.iter().map(|d| format!("{} at {}", d.message, d.loc)).collect::<Vec<_>>().join("; "))?;
    Ok((s, bound))
}
