//! `widen-half`: computes f16 and bf16 programs in f32, as the executor's kernels do. Every
//! half-precision value inside a function becomes f32 (constants are converted once, casts to
//! half become casts to f32 and fold away); the signature keeps its types, so a half input is
//! widened by one cast where it enters and a half output narrowed by one cast where it leaves.
//! Values are no longer rounded to half between ops: results are as accurate as the f32
//! program's, never less accurate than the half one's.

use crate::{Diagnostic, Pass};
use smelt_compiler::literal::Literal;
use smelt_compiler::{names, Attribute, ElementType, Module, OpId, OpSpec, TensorType, Type, ValueId};

#[derive(Default)]
pub struct WidenHalf;

fn is_half(e: ElementType) -> bool {
    matches!(e, ElementType::F16 | ElementType::BF16)
}

/// `ty` with half elements made f32 (other types as they are).
fn widened(ty: &Type) -> Option<Type> {
    let t = ty.as_tensor().filter(|t| is_half(t.element))?;
    Some(Type::Tensor(TensorType { shape: t.shape.clone(), element: ElementType::F32 }))
}

impl Pass for WidenHalf {
    fn name(&self) -> &'static str {
        "widen-half"
    }

    fn run(&mut self, m: &mut Module) -> Result<(), Diagnostic> {
        for func in m.functions() {
            let entry = m.body_of(func);
            let ops = m.walk_pre_order(func);
            for &op in &ops[1..] {
                widen_op(m, op)
                    .map_err(|e| Diagnostic::error(m.op(op).loc.clone(), format!("'{}' op: {e}", m.op(op).name())))?;
            }
            // The signature keeps its types: a cast where each half input enters...
            let first = m.block_ops(entry).next();
            for a in m.block(entry).args().to_vec() {
                let (Some(wide), Some(first)) = (widened(m.value_type(a)), first) else { continue };
                let cast = m.create_op(
                    OpSpec::new(names::CAST)
                        .operands([a])
                        .attr("to", Attribute::Type(Type::Scalar(ElementType::F32)))
                        .results([wide]),
                );
                m.insert_op_before(first, cast);
                let v = m.op(cast).result();
                m.replace_all_uses(a, v);
                m.set_operand(cast, 0, a);
            }
            // ... and one where each half output leaves.
            let Some(ret) = m.block_terminator(entry) else { continue };
            let declared =
                smelt_compiler::dialect::builtin::function_type(&smelt_compiler::dialect::OpView::new(m, func))
                    .map_err(|e| Diagnostic::error(m.op(func).loc.clone(), e))?;
            for (i, want) in declared.results.iter().enumerate() {
                let Some(element) = want.as_tensor().map(|t| t.element).filter(|&e| is_half(e)) else { continue };
                let v: ValueId = m.op(ret).operands()[i];
                let cast = m.create_op(
                    OpSpec::new(names::CAST)
                        .operands([v])
                        .attr("to", Attribute::Type(Type::Scalar(element)))
                        .results([want.clone()]),
                );
                m.insert_op_before(ret, cast);
                let narrowed = m.op(cast).result();
                m.set_operand(ret, i, narrowed);
            }
        }
        Ok(())
    }
}

/// Makes `op`'s half results, block arguments and element-typed attributes f32.
fn widen_op(m: &mut Module, op: OpId) -> Result<(), String> {
    for r in m.op(op).results().to_vec() {
        if let Some(wide) = widened(m.value_type(r)) {
            m.set_value_type(r, wide);
        }
    }
    for region in m.op(op).regions().to_vec() {
        for block in m.region(region).blocks().to_vec() {
            for a in m.block(block).args().to_vec() {
                if let Some(wide) = widened(m.value_type(a)) {
                    m.set_value_type(a, wide);
                }
            }
        }
    }
    if let Some(Attribute::Type(Type::Scalar(e))) = m.op(op).attr("to") {
        if is_half(*e) {
            m.op_mut(op).attributes.insert("to".into(), Attribute::Type(Type::Scalar(ElementType::F32)));
        }
    }
    if let Some(Attribute::Dense(d)) = m.op(op).attr("value") {
        if is_half(d.ty.element) {
            let mut l = Literal::decode(d, &m.resources).ok_or("a half-precision constant is unreadable")?;
            l.element = ElementType::F32;
            let dense = crate::rewrite::stored_dense(m, l.to_dense());
            m.op_mut(op).attributes.insert("value".into(), Attribute::Dense(dense));
        }
    }
    Ok(())
}
