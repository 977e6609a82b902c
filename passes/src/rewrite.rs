//! Shared rewriting helpers: materializing folded values, erasing dead ops, keeping function
//! signatures in step with refined result types.

use smelt_compiler::attributes::{Attribute, DenseElements, DenseStorage};
use smelt_compiler::diagnostics::Diagnostic;
use smelt_compiler::dialect::{infer, Folded, OpView};
use smelt_compiler::ir::{Module, OpId, OpSpec, ValueId};
use smelt_compiler::names;
use smelt_compiler::resources::Blob;
use smelt_compiler::types::Type;

/// Non-splat constants with more elements than this are stored as resources, keeping IR text
/// small.
pub const INLINE_ELEMENT_LIMIT: u64 = 16;

/// `value` as a module holds it: large non-splat constants move from inline bytes into a
/// resource blob (printed as `dense_resource`), splats and small ones stay inline.
pub fn stored_dense(m: &mut Module, mut value: DenseElements) -> DenseElements {
    if let DenseStorage::Inline(bytes) = &value.storage {
        let n = value.ty.num_elements().unwrap_or(0);
        if n > INLINE_ELEMENT_LIMIT && !value.is_splat() {
            let handle = m.resources.insert("folded", Blob::owned(bytes.to_vec()));
            value.storage = DenseStorage::Resource(handle);
        }
    }
    value
}

/// Creates `smelt.constant` before `anchor` and returns its value. Large constants move into
/// the resource store; a splat stays one inline value, whatever its size.
pub fn materialize_constant(m: &mut Module, value: DenseElements, anchor: OpId) -> ValueId {
    let value = stored_dense(m, value);
    let loc = m.op(anchor).loc.clone();
    let ty = Type::Tensor(value.ty.clone());
    let c = m.create_op(OpSpec::new(names::CONSTANT).attr("value", Attribute::Dense(value)).results([ty]).loc(loc));
    m.insert_op_before(anchor, c);
    m.op(c).result()
}

/// Runs `op`'s fold hook; on success replaces its results and erases it. Returns the values
/// that replaced the results.
pub fn try_fold(m: &mut Module, op: OpId) -> Option<Vec<ValueId>> {
    let fold = m.op(op).def.fold_hook()?;
    let folded = fold(&OpView::new(m, op))?;
    if folded.len() != m.op(op).results().len() {
        return None;
    }
    let results = m.op(op).results().to_vec();
    // A fold must not change a value's element type or contradict its known shape.
    for (f, r) in folded.iter().zip(&results) {
        let new_ty = match f {
            Folded::Value(v) => m.value_type(*v).clone(),
            Folded::Constant(d) => Type::Tensor(d.ty.clone()),
        };
        if !smelt_compiler::dialect::infer::compatible(m.value_type(*r), &new_ty) {
            return None;
        }
    }
    let values: Vec<ValueId> = folded
        .into_iter()
        .map(|f| match f {
            Folded::Value(v) => v,
            Folded::Constant(d) => materialize_constant(m, d, op),
        })
        .collect();
    m.replace_op(op, &values);
    Some(values)
}

/// Whether erasing `op` cannot change what the program computes.
pub fn is_trivially_dead(m: &Module, op: OpId) -> bool {
    let o = m.op(op);
    o.def.traits.pure && !o.def.traits.terminator && !m.has_uses(op)
}

/// Rewrites each function's `function_type` to the types its entry block takes and its
/// `func.return` returns (after specialization, inference or folding made them more precise).
pub fn sync_function_signatures(m: &mut Module) {
    for func in m.functions() {
        let region = m.op(func).regions()[0];
        let Some(&entry) = m.region(region).blocks().first() else { continue };
        let Some(ret) = m.block_terminator(entry) else { continue };
        if m.op(ret).name() != names::RETURN {
            continue;
        }
        let returned: Vec<Type> = m.op(ret).operands().iter().map(|v| m.value_type(*v).clone()).collect();
        let taken: Vec<Type> = m.block(entry).args().iter().map(|v| m.value_type(*v).clone()).collect();
        if let Some(Attribute::Type(Type::Function(ft))) = m.op(func).attr("function_type") {
            let results_agree = ft.results.len() == returned.len();
            let inputs_agree = ft.inputs.len() == taken.len();
            if (results_agree && ft.results != returned) || (inputs_agree && ft.inputs != taken) {
                let mut ft = (**ft).clone();
                if results_agree {
                    ft.results = returned;
                }
                if inputs_agree {
                    ft.inputs = taken;
                }
                m.op_mut(func).attributes.insert("function_type".into(), Attribute::Type(Type::Function(Box::new(ft))));
            }
        }
    }
}

/// Rewrites `op`'s result types to what its inference function derives, where that is more
/// precise. Kernel bodies that read a refined value get the refined type on their block argument
/// too. Returns whether any type changed; an inference error becomes a diagnostic at the op.
pub fn refine_result_types(m: &mut Module, op: OpId) -> Result<bool, Diagnostic> {
    let Some(infer_fn) = m.op(op).def.infer else { return Ok(false) };
    let inferred = infer_fn(&OpView::new(m, op))
        .map_err(|e| Diagnostic::error(m.op(op).loc.clone(), format!("'{}' op {e}", m.op(op).name())))?;
    let results = m.op(op).results().to_vec();
    if inferred.len() != results.len() {
        return Ok(false);
    }
    let mut changed = false;
    for (r, t) in results.into_iter().zip(inferred) {
        let declared = m.value_type(r).clone();
        if !infer::compatible(&declared, &t) {
            return Err(Diagnostic::error(
                m.op(op).loc.clone(),
                format!("'{}' op result is declared {declared} but the operands imply {t}", m.op(op).name()),
            ));
        }
        let refined = infer::refine(&declared, &t);
        if refined != declared {
            set_type_through_kernels(m, r, refined);
            changed = true;
        }
    }
    Ok(changed)
}

/// Sets a value's type and keeps the block arguments of kernels that read it in step.
fn set_type_through_kernels(m: &mut Module, value: ValueId, ty: Type) {
    m.set_value_type(value, ty.clone());
    for u in m.value(value).uses().to_vec() {
        if m.op(u.user).name() == names::KERNEL {
            let region = m.op(u.user).regions()[0];
            if let Some(&body) = m.region(region).blocks().first() {
                if let Some(&arg) = m.block(body).args().get(u.operand as usize) {
                    set_type_through_kernels(m, arg, ty.clone());
                }
            }
        }
    }
}
