//! `integer-products`: a QDQ convolution becomes `smelt.quantized_conv2d` and a QDQ matmul or
//! gemm `smelt.quantized_matmul`, which the executor runs with 8-bit integer products.
//!
//! The QDQ form (ONNX Runtime's quantizer, PyTorch's exporter) marks an integer convolution as
//! `conv2d(dequantize(quantize(x, s, z), s, z), dequantize(w_int8, w_scale, 0), bias)` (a
//! matmul alike). Left to `canonicalize`, the weights fold to f32 and the activation's round
//! trip to float ops, and the product runs in f32. This pass keeps what an integer engine
//! needs: the activation grid (one scale and zero point, 8 bits), the int8 weights and their
//! scales (one, or one per output channel). It runs before `canonicalize`, which would
//! otherwise fold the weights' dequantize. The rewrite is exact: the new ops compute the same
//! values (their reference semantics say so).

use crate::{Diagnostic, Pass};
use smelt_compiler::dialect::OpView;
use smelt_compiler::literal::Literal;
use smelt_compiler::{names, ElementType, Module, OpId, OpSpec, ValueId};

#[derive(Default)]
pub struct IntegerProducts;

impl Pass for IntegerProducts {
    fn name(&self) -> &'static str {
        "integer-products"
    }

    fn run(&mut self, m: &mut Module) -> Result<(), Diagnostic> {
        for op in m.walk_pre_order(m.root()) {
            if !m.is_live(op) {
                continue;
            }
            match m.op(op).name() {
                names::CONV2D => rewrite_conv(m, op),
                names::MATMUL | names::GEMM => rewrite_matmul(m, op),
                _ => false,
            };
        }
        Ok(())
    }
}

/// An 8-bit activation grid: the value the product reads (the float input, or the rounded
/// value when something else reads that too), its scale and its zero point.
fn activation_grid(m: &Module, anchor: OpId, operand: ValueId) -> Option<[ValueId; 3]> {
    let producer = |v: ValueId, name: &str| m.defining_op(v).filter(|&d| m.op(d).name() == name);
    let scalar = |v: ValueId| constant(m, anchor, v).filter(|l| l.len() == 1).map(|l| l.to_f64()[0]);
    let dq = producer(operand, names::DEQUANTIZE_LINEAR)?;
    let q = producer(m.op(dq).operands()[0], names::QUANTIZE_LINEAR)?;
    let (qs, ds) = (m.op(q).operands(), m.op(dq).operands());
    let grid = m.value_type(ds[0]).element()?;
    if !matches!(grid, ElementType::U8 | ElementType::I8) || !is_f32(m, qs[0]) || !is_f32(m, qs[1]) {
        return None;
    }
    let (s1, s2, z1, z2) = (scalar(qs[1])?, scalar(ds[1])?, scalar(qs[2])?, scalar(ds[2])?);
    if s1 != s2 || z1 != z2 || !(s1 > 0.0 && s1.is_finite()) {
        return None;
    }
    // The product reads the float value when nothing else reads the rounded one (the round
    // trip then dies); otherwise the rounded value, which stays on the grid (quantizing it
    // again is exact) and whose round trip then fuses into the kernel producing it.
    let only_user = |v: ValueId| m.value(v).uses().len() == 1;
    let x = if only_user(operand) && only_user(ds[0]) { qs[0] } else { operand };
    Some([x, qs[1], qs[2]])
}

/// Int8 weights `(weights, scale)` behind `operand`: a dequantize of constants with zero
/// points 0 and scales positive, one or one per index of `axis` (of `rank`).
fn int8_weights(m: &Module, anchor: OpId, operand: ValueId, rank: usize, axis: usize) -> Option<(Literal, ValueId)> {
    let dw = m.defining_op(operand).filter(|&d| m.op(d).name() == names::DEQUANTIZE_LINEAR)?;
    let ws = m.op(dw).operands();
    let w = constant(m, anchor, ws[0]).filter(|l| l.element == ElementType::I8 && l.shape.len() == rank)?;
    let zero = constant(m, anchor, ws[2])?;
    let scale = constant(m, anchor, ws[1]).filter(|_| is_f32(m, ws[1]))?;
    let per_index = scale.len() == w.shape[axis] as usize && scale.shape.len() == 1;
    let dq_axis = m.op(dw).int_attr("axis");
    if zero.to_f64().iter().any(|&z| z != 0.0)
        || !(scale.len() == 1 || per_index && (dq_axis == axis as i64 || dq_axis == axis as i64 - rank as i64))
        || scale.to_f64().iter().any(|&s| !(s > 0.0 && s.is_finite()))
    {
        return None;
    }
    Some((w, ws[1]))
}

fn constant(m: &Module, anchor: OpId, v: ValueId) -> Option<Literal> {
    Literal::decode(OpView::new(m, anchor).constant_of(v)?, &m.resources)
}

fn is_f32(m: &Module, v: ValueId) -> bool {
    m.value_type(v).element() == Some(ElementType::F32)
}

/// The operands of `quantized_conv2d` for `conv`, when it is a QDQ convolution.
fn match_conv(m: &Module, conv: OpId) -> Option<Vec<ValueId>> {
    // Grouped and depthwise convolutions keep the f32 kernels (the integer tile reads four
    // input channels of one group a step).
    if m.op(conv).int_attr("group") != 1 {
        return None;
    }
    let operands = m.op(conv).operands();
    let [x, x_scale, x_zero] = activation_grid(m, conv, operands[0])?;
    let (w, w_scale) = int8_weights(m, conv, operands[1], 4, 0)?;
    let reduction: u64 = w.shape[1..].iter().product();
    if reduction > MAX_REDUCTION {
        return None;
    }
    let weights = m.defining_op(operands[1]).map(|d| m.op(d).operands()[0])?;
    let mut out = vec![x, weights, x_scale, x_zero, w_scale];
    out.extend(operands.get(2).copied().filter(|&b| is_f32(m, b)));
    (out.len() == operands.len() + 3).then_some(out)
}

/// Products per output at most (255 x 128 each) for sums that fit in i32.
const MAX_REDUCTION: u64 = 65_000;

fn rewrite_conv(m: &mut Module, conv: OpId) -> bool {
    let Some(operands) = match_conv(m, conv) else { return false };
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

/// A QDQ `matmul(a, b)` with a constant int8 `b` [K, N], or a `gemm` (alpha 1, beta 1, `a` not
/// transposed) whose `b` is that or its transpose [N, K], then plus its `c`.
fn rewrite_matmul(m: &mut Module, op: OpId) -> bool {
    let o = m.op(op);
    let gemm = o.name() == names::GEMM;
    if gemm && (o.float_attr("alpha") != 1.0 || o.float_attr("beta") != 1.0 || o.bool_attr("trans_a")) {
        return false;
    }
    let transposed = gemm && o.bool_attr("trans_b");
    let operands = o.operands().to_vec();
    let Some([a, a_scale, a_zero]) = activation_grid(m, op, operands[0]) else { return false };
    let Some((w, b_scale)) = int8_weights(m, op, operands[1], 2, if transposed { 0 } else { 1 }) else { return false };
    if w.shape[if transposed { 1 } else { 0 }] > MAX_REDUCTION || !operands.get(2).is_none_or(|&c| is_f32(m, c)) {
        return false;
    }
    let b = if transposed {
        let (n, k) = (w.shape[0] as usize, w.shape[1] as usize);
        let values = w.to_i64();
        let t: Vec<i64> = (0..k * n).map(|i| values[(i % n) * k + i / n]).collect();
        let ty = smelt_compiler::TensorType::of(&[k as u64, n as u64], ElementType::I8);
        crate::rewrite::materialize_constant(m, smelt_compiler::attributes::DenseElements::from_i64(ty, &t), op)
    } else {
        m.defining_op(operands[1]).map(|d| m.op(d).operands()[0]).expect("int8_weights found a dequantize")
    };
    let (ty, loc) = (m.value_type(m.op(op).result()).clone(), m.op(op).loc.clone());
    let product = m.create_op(
        OpSpec::new(names::QUANTIZED_MATMUL)
            .operands([a, b, a_scale, a_zero, b_scale])
            .results([ty.clone()])
            .loc(loc.clone()),
    );
    m.insert_op_before(op, product);
    let mut y = m.op(product).result();
    if let Some(&c) = operands.get(2) {
        let add = m.create_op(OpSpec::new(names::ADD).operands([y, c]).results([ty]).loc(loc));
        m.insert_op_before(op, add);
        y = m.op(add).result();
    }
    m.replace_op(op, &[y]);
    true
}
