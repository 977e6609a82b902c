//! What an op or a kernel computes and moves, independent of any machine: FLOPs by the op
//! table's rules, bytes read and written, weights, and for a fused kernel its intermediates and
//! the parts it replaces. Characterization reports it; cost models price it.
//!
//! Bytes: each distinct operand is read once and each result written once, at its element
//! size, except that a `gather` reads of its table only the rows it gathers (its result's
//! bytes, at most the table's). View ops move no data and count 0 bytes. A `smelt.kernel`
//! counts its body's FLOPs and only its own operands and results as bytes: intermediates
//! inside a kernel never leave the chip.

use serde::Serialize;
use smelt_compiler::attributes::Attribute;
use smelt_compiler::dialect::{OpClass, OpView};
use smelt_compiler::ir::{Module, OpId, ValueId};
use smelt_compiler::names;
use smelt_compiler::{ElementType, Type};
use std::collections::HashSet;

/// What one operation costs.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct OpCost {
    pub flops: u64,
    /// The part of `flops` in conv2d, matmul and gemm.
    pub flops_conv_matmul: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
    /// The part of `bytes_read` that reads constants (weights).
    pub weight_bytes: u64,
}

pub(crate) fn elements(ty: &Type) -> u64 {
    ty.as_tensor().and_then(|t| t.num_elements()).unwrap_or(0)
}

pub(crate) fn bytes(ty: &Type) -> u64 {
    ty.as_tensor().and_then(|t| t.byte_size()).unwrap_or(0)
}

pub(crate) fn dims(ty: &Type) -> Vec<u64> {
    ty.as_tensor().and_then(|t| t.static_shape()).unwrap_or_default()
}

/// Whether `v` is known at compile time: a constant, or a pure op over such values (folded
/// BatchNorm weights, concatenated weights of merged products) that the fold after fusion
/// evaluates once.
pub fn computed_at_compile_time(m: &Module, v: ValueId) -> bool {
    fn within(m: &Module, v: ValueId, depth: usize) -> bool {
        let Some(d) = m.defining_op(v) else { return false };
        let o = m.op(d);
        o.name() == names::CONSTANT
            || depth > 0
                && o.def.traits.pure
                && !o.operands().is_empty()
                && o.operands().iter().all(|&x| within(m, x, depth - 1))
    }
    within(m, v, 8)
}

/// FLOPs of one op (not a kernel) by its table rule, and the conv/matmul part.
fn op_flops(m: &Module, op: OpId) -> (u64, u64) {
    let f = m.op(op).def.count_flops(&OpView::new(m, op));
    (f.total, f.conv_matmul)
}

/// The cost of `op` (a kernel counts its body's FLOPs and only its boundary bytes).
pub fn op_cost(m: &Module, op: OpId) -> OpCost {
    let o = m.op(op);
    let (flops, flops_conv_matmul) = if o.name() == names::KERNEL {
        m.walk_pre_order(op)
            .into_iter()
            .skip(1)
            .map(|inner| op_flops(m, inner))
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
    } else {
        op_flops(m, op)
    };
    if o.def.is_view() || o.is(names::CONSTANT) {
        return OpCost { flops, flops_conv_matmul, ..OpCost::default() };
    }
    let mut seen = HashSet::new();
    let (mut read, mut weights) = (0, 0);
    for (slot, &v) in o.operands().iter().enumerate() {
        if seen.insert(v) {
            let whole = bytes(m.value_type(v));
            let b = gathered_bytes(m, op, slot).map_or(whole, |g| g.min(whole));
            read += b;
            if computed_at_compile_time(m, v) {
                weights += b;
            }
        }
    }
    let written = o.results().iter().map(|r| bytes(m.value_type(*r))).sum();
    OpCost { flops, flops_conv_matmul, bytes_read: read, bytes_written: written, weight_bytes: weights }
}

/// Bytes `op` reads of its operand `slot` when that operand is only a table rows are gathered
/// from (an embedding): the gathered rows, not the table. `None` for any other operand.
fn gathered_bytes(m: &Module, op: OpId, slot: usize) -> Option<u64> {
    let o = m.op(op);
    let is_table_of = |user: OpId, index: u32| m.op(user).name() == names::GATHER && index == 0;
    if o.name() != names::KERNEL {
        return is_table_of(op, slot as u32).then(|| bytes(m.value_type(o.result())));
    }
    let body = m.region(*o.regions().first()?).blocks().first().copied()?;
    let arg = *m.block(body).args().get(slot)?;
    let uses = m.value(arg).uses();
    (!uses.is_empty() && uses.iter().all(|u| is_table_of(u.user, u.operand)))
        .then(|| uses.iter().map(|u| bytes(m.value_type(m.op(u.user).result()))).sum())
}

#[derive(Clone, Debug, PartialEq)]
pub struct Work {
    pub flops: u64,
    /// Bytes read and written at the kernel's boundary.
    pub bytes: u64,
    /// Bytes of values produced and consumed inside a fused kernel.
    pub intermediate_bytes: u64,
    pub element: ElementType,
    /// The stable key measurements of this kernel are stored under: pattern, input and output
    /// shapes, element type (`conv_relu(1x64x56x56,64x64x3x3,64)->1x64x56x56:f32`).
    pub signature: String,
    /// For a fused kernel, each body op as it would run alone (op name, work): what the
    /// unfused alternative costs, which calibrated speedups scale.
    pub parts: Vec<(String, Work)>,
}

/// The work of one executed op; a `smelt.kernel` is the work of its body.
pub fn work_of(m: &Module, op: OpId) -> Work {
    if m.op(op).name() == names::KERNEL {
        let body = m.body_of(op);
        let ops: Vec<OpId> = m.block_ops(body).filter(|&o| m.op(o).name() != names::YIELD).collect();
        let pattern = m.op(op).attr("pattern").and_then(|a| a.as_str()).unwrap_or("kernel").to_string();
        return kernel_work(m, &pattern, &ops, m.block(body).args(), m.op(op).results());
    }
    let c = op_cost(m, op);
    let o = m.op(op);
    let pattern = o.name().trim_start_matches("smelt.");
    let mut work = Work {
        flops: c.flops,
        bytes: c.bytes_read + c.bytes_written,
        intermediate_bytes: 0,
        element: computed_in(m, &[op], o.results()),
        signature: signature(m, pattern, o.operands(), o.results()),
        parts: Vec::new(),
    };
    if o.name() == names::ATTENTION {
        attention_parts(m, op, &mut work);
    }
    work
}

/// `attention` is a fused kernel in one op: its parts are the ops it stands for, and its
/// scores (and probabilities) are intermediates.
fn attention_parts(m: &Module, op: OpId, work: &mut Work) {
    let o = m.op(op);
    let dims = |v: ValueId| m.value_type(v).as_tensor().and_then(|t| t.static_shape()).unwrap_or_default();
    let (q, k, v, out) = (dims(o.operands()[0]), dims(o.operands()[1]), dims(o.operands()[2]), dims(o.result()));
    let (Some(&lk), Some(&d), Some(&dv)) = (k.last(), q.last(), v.last()) else { return };
    let size = |s: &[u64]| s.iter().product::<u64>();
    let width = work.element.byte_size() as u64;
    let scores = size(&out).checked_div(dv).map_or(0, |s| s * lk);
    let part = |pattern: &str, flops: u64, bytes: u64| {
        let w =
            Work { flops, bytes, intermediate_bytes: 0, signature: String::new(), parts: Vec::new(), ..work.clone() };
        (format!("smelt.{pattern}"), w)
    };
    let (sb, qkb) = (scores * width, (size(&q) + size(&k)) * width);
    let mut parts = vec![part("matmul", 2 * scores * d, qkb + sb), part("mul", scores, 2 * sb)];
    if o.operands().len() > 3 {
        let mask = size(&dims(o.operands()[3])) * width;
        parts.push(part("add", scores, 2 * sb + mask));
    }
    parts.push(part("softmax", 5 * scores, 2 * sb));
    parts.push(part("matmul", 2 * size(&out) * lk, sb + (size(&v) + size(&out)) * width));
    work.intermediate_bytes = (parts.len() as u64 - 1) * sb;
    work.parts = parts;
}

/// The work of `ops` run as one kernel reading `inputs` and producing `outputs`: the body's
/// FLOPs, its boundary bytes, and the bytes of every other value it computes as intermediates.
pub fn kernel_work(m: &Module, pattern: &str, ops: &[OpId], inputs: &[ValueId], outputs: &[ValueId]) -> Work {
    let bytes = |v: &ValueId| m.value_type(*v).as_tensor().and_then(|t| t.byte_size()).unwrap_or(0);
    let mut seen = HashSet::new();
    let boundary: u64 =
        inputs.iter().filter(|v| seen.insert(**v)).map(bytes).sum::<u64>() + outputs.iter().map(bytes).sum::<u64>();
    let inner = ops.iter().flat_map(|&o| m.op(o).results()).filter(|r| !outputs.contains(r)).map(bytes).sum();
    let parts: Vec<(String, Work)> = ops.iter().map(|&o| (m.op(o).name().to_string(), work_of(m, o))).collect();
    // A pure elementwise kernel evaluates its whole body once per output element, so a part
    // computed on a smaller shape and broadcast is recomputed that many more times.
    let elements = |v: ValueId| m.value_type(v).as_tensor().and_then(|t| t.num_elements()).unwrap_or(1).max(1);
    let pure_elementwise = ops.iter().all(|&o| m.op(o).def.class == OpClass::Elementwise);
    let out_elements = outputs.first().map_or(1, |&v| elements(v));
    let recomputed = |op: OpId, flops: u64| match (pure_elementwise, m.op(op).results().first()) {
        (true, Some(&r)) => flops * (out_elements / elements(r)).max(1),
        _ => flops,
    };
    Work {
        flops: ops.iter().zip(&parts).map(|(&o, (_, w))| recomputed(o, w.flops)).sum(),
        bytes: boundary,
        intermediate_bytes: inner,
        element: computed_in(m, ops, outputs),
        signature: signature(m, pattern, inputs, outputs),
        parts,
    }
}

/// What `ops` compute in, the element their peak is looked up by: i8 for integer products
/// (a quantized convolution), else their results' type.
fn computed_in(m: &Module, ops: &[OpId], results: &[ValueId]) -> ElementType {
    if ops.iter().any(|&o| m.op(o).name() == names::QUANTIZED_CONV2D) {
        return ElementType::I8;
    }
    element_of(m, results)
}

fn element_of(m: &Module, results: &[ValueId]) -> ElementType {
    results.first().and_then(|r| m.value_type(*r).element()).unwrap_or(ElementType::F32)
}

/// The constant defining `v` when a kernel copies it into its body instead of taking it as an
/// operand (splats and scalars: cheaper to rematerialize than to pass).
pub fn inlined_constant(m: &Module, v: ValueId) -> Option<OpId> {
    m.defining_op(v).filter(|&d| {
        m.op(d).name() == names::CONSTANT
            && matches!(m.op(d).attr("value"), Some(Attribute::Dense(d)) if d.is_splat() || d.ty.num_elements() == Some(1))
    })
}

/// Inputs a kernel inlines are left out, so the signature the extractor prices a candidate
/// under is the one the built kernel is measured under.
fn signature(m: &Module, pattern: &str, inputs: &[ValueId], outputs: &[ValueId]) -> String {
    let inputs: Vec<ValueId> = inputs.iter().copied().filter(|&v| inlined_constant(m, v).is_none()).collect();
    let shape = |v: &ValueId| match m.value_type(*v).as_tensor().and_then(|t| t.static_shape()) {
        Some(s) => s.iter().map(u64::to_string).collect::<Vec<_>>().join("x"),
        None => "?".into(),
    };
    let ins: Vec<String> = inputs.iter().map(shape).collect();
    let outs: Vec<String> = outputs.iter().map(shape).collect();
    format!("{pattern}({})->{}:{}", ins.join(","), outs.join(","), element_of(m, outputs))
}
