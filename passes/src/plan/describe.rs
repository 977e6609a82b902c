//! What each launch computes, in the terms hardware mappers think in: a contraction's GEMM
//! dimensions, an attention's heads and lengths, rows of a row-wise reduction, or a flat count
//! of elements. One `Launch` per executed op or `smelt.kernel`; view ops launch nothing.

use crate::characterize::{executed_ops, op_label};
use crate::work::{inlined_constant, work_of};
use serde::Serialize;
use smelt_compiler::dialect::OpClass;
use smelt_compiler::ir::{Module, OpId, ValueId};
use smelt_compiler::names;
use smelt_compiler::{Attribute, ElementType};

/// The iteration space a mapper tiles.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "class", rename_all = "snake_case")]
pub enum Shape {
    /// `batch` independent `m x n x k` products (a convolution as implicit GEMM: `m` output
    /// pixels, `n` output channels per group, `k` = input channels per group x window).
    Contraction { op: &'static str, batch: u64, m: u64, n: u64, k: u64 },
    /// Scaled-dot-product attention over `heads` (batch x heads) of `q` queries and `kv` keys.
    Attention { heads: u64, q: u64, kv: u64, d: u64, dv: u64 },
    /// A depthwise convolution: `planes` (batch x channels) each of `pixels` outputs over
    /// `taps` window positions; no reduction across channels, so no matrix unit helps.
    Depthwise { planes: u64, pixels: u64, taps: u64 },
    /// `rows` independent reductions of `cols` elements (softmax, layer norm, global pools).
    Rows { rows: u64, cols: u64 },
    /// A flat map over `elements` outputs (elementwise chains, pools, data movement).
    Elementwise { elements: u64 },
}

/// One launch: an executed op or a fused kernel.
#[derive(Clone, Debug)]
pub struct Launch {
    pub op: OpId,
    pub label: String,
    /// The kernel's pattern, or the op name without `smelt.`.
    pub pattern: String,
    /// The ops it runs (one for an unfused op).
    pub ops: Vec<&'static str>,
    pub shape: Shape,
    pub flops: u64,
    /// FLOPs of the contraction (matrix-unit work); the rest runs on vector units.
    pub matrix_flops: u64,
    /// Bytes read and written at the launch's boundary.
    pub bytes: u64,
    /// Of `bytes`, the constants (weights) read.
    pub weight_bytes: u64,
    /// Values produced and consumed inside a fused kernel.
    pub intermediate_bytes: u64,
    pub inputs: Vec<ValueId>,
    pub outputs: Vec<ValueId>,
    pub element: ElementType,
}

fn dims(m: &Module, v: ValueId) -> Vec<u64> {
    crate::work::dims(m.value_type(v))
}

fn elements(m: &Module, v: ValueId) -> u64 {
    crate::work::elements(m.value_type(v))
}

fn bytes(m: &Module, v: ValueId) -> u64 {
    crate::work::bytes(m.value_type(v))
}

/// The shape of one op, and its matrix-unit FLOPs.
fn op_shape(m: &Module, op: OpId, flops: u64) -> (Shape, u64) {
    let o = m.op(op);
    let out = o.results().first().map(|r| dims(m, *r)).unwrap_or_default();
    let out_elements: u64 = out.iter().product();
    let flat = Shape::Elementwise { elements: out_elements };
    // `rows` independent reductions of what the first operand holds.
    let input = o.operands().first().map(|v| elements(m, *v)).unwrap_or(0);
    let rows = |rows: u64| (Shape::Rows { rows: rows.max(1), cols: input / rows.max(1) }, 0);
    let gemm = |batch: u64, mm: u64, n: u64| {
        let k = flops.checked_div(2 * batch * mm * n).unwrap_or(0).max(1);
        Shape::Contraction { op: o.name(), batch, m: mm, n, k }
    };
    match o.name() {
        names::CONV2D | names::QUANTIZED_CONV2D => {
            let w = dims(m, o.operands()[1]);
            let group = o.int_attr("group").max(1) as u64;
            let (Some(&cout), [n, _, spatial @ ..]) = (w.first(), out.as_slice()) else { return (flat, 0) };
            let pixels: u64 = spatial.iter().product();
            let cin_per_group = w.get(1).copied().unwrap_or(1);
            if group > 1 && cin_per_group == 1 && cout == group {
                let taps = w.get(2..).map_or(1, |d| d.iter().product());
                return (Shape::Depthwise { planes: n * cout, pixels, taps }, 0);
            }
            (gemm(group, n * pixels, cout / group), flops)
        }
        names::CONV_TRANSPOSE => {
            // One product per group: (Cout/g x kh x kw) x (N x H x W) over Cin/g.
            let (x, w) = (dims(m, o.operands()[0]), dims(m, o.operands()[1]));
            let group = o.int_attr("group").max(1) as u64;
            let ([n, _, spatial @ ..], [_, cog, window @ ..]) = (x.as_slice(), w.as_slice()) else { return (flat, 0) };
            let (pixels, taps): (u64, u64) = (spatial.iter().product(), window.iter().product());
            (gemm(group, cog * taps, n * pixels), flops)
        }
        names::MATMUL => {
            let b = dims(m, o.operands()[1]);
            let Some(&n) = out.last() else { return (flat, 0) };
            let rows = out_elements / n.max(1);
            if b.len() <= 2 {
                // A shared right-hand side: the batch is more rows of one GEMM.
                (gemm(1, rows, n), flops)
            } else {
                let mm = out.get(out.len().wrapping_sub(2)).copied().unwrap_or(1);
                (gemm(rows / mm.max(1), mm, n), flops)
            }
        }
        names::GEMM => match out.as_slice() {
            [mm, n] => (gemm(1, *mm, *n), flops),
            _ => (flat, 0),
        },
        names::ATTENTION => {
            let (q, k, v) = (dims(m, o.operands()[0]), dims(m, o.operands()[1]), dims(m, o.operands()[2]));
            let (Some(&d), Some(&kv), Some(&dv)) = (q.last(), k.get(k.len().wrapping_sub(2)), v.last()) else {
                return (flat, 0);
            };
            let sq = q.get(q.len().wrapping_sub(2)).copied().unwrap_or(1);
            let heads = q.iter().product::<u64>() / (sq * d).max(1);
            let matrix = 2 * heads * sq * kv * (d + dv);
            (Shape::Attention { heads, q: sq, kv, d, dv }, matrix.min(flops))
        }
        names::GLOBAL_AVG_POOL | names::GLOBAL_MAX_POOL => rows(out_elements),
        _ if o.def.class == OpClass::Reduction => rows(out_elements),
        names::GROUP_NORM => {
            let batch = out.first().copied().unwrap_or(1);
            rows(batch * o.int_attr("num_groups").max(1) as u64)
        }
        _ if o.def.class == OpClass::RowReduction => {
            let last = o.operands().first().map(|v| dims(m, *v)).and_then(|d| d.last().copied()).unwrap_or(1);
            rows(input / last.max(1))
        }
        _ => (flat, 0),
    }
}

/// The launches of `@main`, in program order. Views, contiguous slices and the movement ops
/// attention reads in place ([`smelt_compiler::views`]) launch nothing.
pub fn launches(m: &Module) -> Vec<Launch> {
    let mut out = Vec::new();
    let ops = executed_ops(m);
    let in_place = smelt_compiler::views::strided_views(m, &ops);
    for op in ops {
        let o = m.op(op);
        if smelt_compiler::views::runs_nothing(m, op, &in_place) {
            continue;
        }
        let work = work_of(m, op);
        let body: Vec<OpId> = if o.name() == names::KERNEL {
            let block = m.body_of(op);
            m.block_ops(block).filter(|&b| m.op(b).name() != names::YIELD).collect()
        } else {
            vec![op]
        };
        // The kernel's shape is its largest matrix-unit op's, else its largest row op's, else
        // a flat map over what it writes.
        let mut best: Option<(Shape, u64)> = None;
        let fused = o.name() == names::KERNEL;
        for (i, &b) in body.iter().enumerate() {
            let flops = if fused { work.parts.get(i).map_or(0, |p| p.1.flops) } else { work.flops };
            let (shape, matrix) = op_shape(m, b, flops);
            let rank = |s: &Shape, f: u64| match s {
                Shape::Contraction { .. } | Shape::Attention { .. } => (3, f),
                Shape::Depthwise { .. } => (2, 0),
                Shape::Rows { .. } => (1, 0),
                Shape::Elementwise { .. } => (0, 0),
            };
            if best.as_ref().is_none_or(|(s, f)| rank(&shape, matrix) > rank(s, *f)) {
                best = Some((shape, matrix));
            }
        }
        let written: u64 = o.results().iter().map(|r| elements(m, *r)).max().unwrap_or(0);
        let (shape, matrix_flops) = match best {
            Some((Shape::Elementwise { .. }, _)) | None => (Shape::Elementwise { elements: written }, 0),
            Some(b) => b,
        };
        let inputs: Vec<ValueId> = o.operands().iter().copied().filter(|&v| inlined_constant(m, v).is_none()).collect();
        let mut seen = std::collections::HashSet::new();
        let weight_bytes = inputs
            .iter()
            .filter(|&&v| seen.insert(v) && m.defining_op(v).is_some_and(|d| m.op(d).name() == names::CONSTANT))
            .map(|&v| bytes(m, v))
            .sum();
        out.push(Launch {
            op,
            label: op_label(m, op),
            pattern: o
                .attr("pattern")
                .and_then(Attribute::as_str)
                .unwrap_or(o.name().trim_start_matches("smelt."))
                .to_string(),
            ops: body.iter().map(|&b| m.op(b).name()).collect(),
            shape,
            flops: work.flops,
            matrix_flops,
            bytes: work.bytes,
            weight_bytes,
            intermediate_bytes: work.intermediate_bytes,
            inputs,
            outputs: o.results().to_vec(),
            element: work.element,
        });
    }
    out
}
