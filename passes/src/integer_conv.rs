//! `integer-conv`: a QDQ convolution becomes `smelt.quantized_conv2d`, which the executor runs
//! with 8-bit integer products.
//!
//! The QDQ form (ONNX Runtime's quantizer, PyTorch's exporter) marks an integer convolution as
//! `conv2d(dequantize(quantize(x, s, z), s, z), dequantize(w_int8, w_scale, 0), bias)`. Left to
//! `canonicalize`, the weights fold to f32 and the activation's round trip to float ops, and
//! the product runs in f32. This pass keeps what an integer engine needs: the activation grid
//! (one scale and zero point, 8 bits), the int8 weights and their scales (one, or one per output
//! channel). It runs before `canonicalize`, which would otherwise fold the weights' dequantize.
//! The rewrite is exact: the new op computes the same values (its reference semantics say so).

use crate::{Diagnostic, Pass};
use smelt_compiler::dialect::OpView;
use smelt_compiler::literal::Literal;
use smelt_compiler::{names, ElementType, Module, OpId, OpSpec, ValueId};

#[derive(Default)]
pub struct IntegerConv;

impl Pass for IntegerConv {
    fn name(&self) -> &'static str {
        "integer-conv"
    }

    fn run(&mut self, m: &mut Module) -> Result<(), Diagnostic> {
        for op in m.walk_pre_order(m.root()) {
            if m.is_live(op) && m.op(op).name() == names::CONV2D {
                rewrite(m, op);
            }
        }
        Ok(())
    }
}

/// The operands of `quantized_conv2d` for `conv`, when it is a QDQ convolution.
fn match_qdq(m: &Module, conv: OpId) -> Option<Vec<ValueId>> {
    let operands = m.op(conv).operands();
    let producer = |v: ValueId, name: &str| m.defining_op(v).filter(|&d| m.op(d).name() == name);
    let constant = |v: ValueId| {
        let view = OpView::new(m, conv);
        Literal::decode(view.constant_of(v)?, &m.resources)
    };
    let scalar = |v: ValueId| constant(v).filter(|l| l.len() == 1).map(|l| l.to_f64()[0]);
    // The activation: one scale and zero point, 8 bits, the same on both sides.
    let dq = producer(operands[0], names::DEQUANTIZE_LINEAR)?;
    let q = producer(m.op(dq).operands()[0], names::QUANTIZE_LINEAR)?;
    let (qs, ds) = (m.op(q).operands(), m.op(dq).operands());
    let x = qs[0];
    let grid = m.value_type(ds[0]).element()?;
    let f32s = |v: ValueId| m.value_type(v).element() == Some(ElementType::F32);
    if !matches!(grid, ElementType::U8 | ElementType::I8) || !f32s(x) || !f32s(qs[1]) {
        return None;
    }
    let (s1, s2, z1, z2) = (scalar(qs[1])?, scalar(ds[1])?, scalar(qs[2])?, scalar(ds[2])?);
    if s1 != s2 || z1 != z2 || !(s1 > 0.0 && s1.is_finite()) {
        return None;
    }
    // The weights: int8 constants, zero points 0, scales per tensor or along output channels.
    let dw = producer(operands[1], names::DEQUANTIZE_LINEAR)?;
    let ws = m.op(dw).operands();
    let w = constant(ws[0]).filter(|l| l.element == ElementType::I8 && l.shape.len() == 4)?;
    let zero = constant(ws[2])?;
    let scale = constant(ws[1]).filter(|_| f32s(ws[1]))?;
    let per_channel = scale.len() == w.shape[0] as usize && scale.shape.len() == 1;
    let axis = m.op(dw).int_attr("axis");
    if zero.to_f64().iter().any(|&z| z != 0.0)
        || !(scale.len() == 1 || per_channel && (axis == 0 || axis == -4))
        || scale.to_f64().iter().any(|&s| !(s > 0.0 && s.is_finite()))
    {
        return None;
    }
    // The conv reads the float value when nothing else reads the rounded one (the round trip
    // then dies); otherwise the rounded value, which stays on the grid (quantizing it again is
    // exact) and whose round trip then fuses into the kernel producing it.
    let only_user = |v: ValueId| m.value(v).uses().len() == 1;
    let x = if only_user(operands[0]) && only_user(m.op(dq).operands()[0]) { x } else { operands[0] };
    let mut out = vec![x, ws[0], qs[1], qs[2], ws[1]];
    out.extend(operands.get(2).copied().filter(|&b| f32s(b)));
    (out.len() == operands.len() + 3).then_some(out)
}

fn rewrite(m: &mut Module, conv: OpId) -> bool {
    let Some(operands) = match_qdq(m, conv) else { return false };
    let o = m.op(conv);
    let mut spec = OpSpec::new(names::QUANTIZED_CONV2D)
        .operands(operands)
        .results([m.value_type(o.result()).clone()])
        .loc(o.loc.clone());
    spec.attributes = o.attributes.clone();
    let new = m.create_op(spec);
    m.insert_op_before(conv, new);
    let y = m.op(new).result();
    m.replace_op(conv, &[y]);
    true
}
