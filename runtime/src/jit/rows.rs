//! Reductions along rows: softmax, log-softmax, layer_norm and `reduce_*` (global pools are
//! row reductions over a plane).
//!
//! A row is `len x inner` contiguous elements; the function handles rows `begin..end`:
//!
//! ```text
//! extern "C" fn(ptrs: *const *mut f32, begin: i64, end: i64)
//! ```
//!
//! Softmax and layer_norm need `inner == 1` (their axis is the last); their output row has
//! `len` elements. A reduction writes `inner` values per row: `inner == 1` reduces each row
//! along its vector lanes, `inner > 1` combines whole `inner`-vectors, the layout of a reduced
//! leading axis (`[N, C, L]` over C).

use cranelift_codegen::ir::{types, InstBuilder, Type, Value};
use cranelift_frontend::{FunctionBuilder, Variable};

use super::loops::{address, columns, columns_unrolled, mem, pin, range};
use super::math::{self, Combine};

/// What `reduce_*` computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduction {
    Sum,
    Mean,
    Max,
    Min,
    Prod,
}

impl Reduction {
    fn combine(self) -> Combine {
        match self {
            Reduction::Sum | Reduction::Mean => Combine::Add,
            Reduction::Max => Combine::Max,
            Reduction::Min => Combine::Min,
            Reduction::Prod => Combine::Mul,
        }
    }
}

/// The computation on each row, and the buffers `ptrs` holds (in this order).
#[derive(Clone, Debug, PartialEq)]
pub enum RowOp {
    /// `softmax(x * scale + mask)`, or its logarithm. Buffers: x, mask (when given, read at
    /// `row * mask.0 + col * mask.1`), out. `out` may be `x`.
    Softmax { log: bool, scale: f32, mask: Option<(i64, i64)> },
    /// `(x - mean) / sqrt(var + eps) * scale + bias` with the population variance. Buffers: x,
    /// scale (`len`), bias (`len`, when `bias`), out.
    LayerNorm { eps: f32, bias: bool },
    /// Buffers: x, out.
    Reduce(Reduction),
}

/// A row program: the op and the row geometry.
#[derive(Clone, Debug, PartialEq)]
pub struct RowProgram {
    pub op: RowOp,
    /// Elements along the reduced axis.
    pub len: usize,
    /// Elements after the reduced axis in a row; 1 except for reductions.
    pub inner: usize,
}

impl RowProgram {
    /// How many buffer pointers the function reads.
    pub fn buffers(&self) -> usize {
        match &self.op {
            RowOp::Softmax { mask, .. } => 2 + usize::from(mask.is_some()),
            RowOp::LayerNorm { bias, .. } => 3 + usize::from(*bias),
            RowOp::Reduce(_) => 2,
        }
    }
}

pub(super) fn build(b: &mut FunctionBuilder, p: &RowProgram, params: &[Value], ptr: Type) {
    assert!(p.inner == 1 || matches!(p.op, RowOp::Reduce(_)), "only reductions run over an inner axis");
    let (ptrs, begin, end) = (params[0], params[1], params[2]);
    let width = ptr.bytes() as i32;
    let bufs: Vec<Value> = (0..p.buffers()).map(|i| b.ins().load(ptr, mem(), ptrs, i as i32 * width)).collect();
    let row_bytes = (p.len * p.inner * 4) as i64;
    range(b, begin, end, |b, r| {
        let x = address(b, bufs[0], r, row_bytes);
        match &p.op {
            RowOp::Softmax { log, scale, mask } => {
                let out = address(b, bufs[bufs.len() - 1], r, row_bytes);
                let mask = mask.map(|(rs, cs)| (address(b, bufs[1], r, rs * 4), cs));
                softmax(b, p.len, x, out, *log, *scale, mask);
            }
            RowOp::LayerNorm { eps, bias } => {
                let out = address(b, bufs[bufs.len() - 1], r, row_bytes);
                let bias = bias.then(|| bufs[2]);
                layer_norm(b, p.len, x, bufs[1], bias, out, *eps);
            }
            RowOp::Reduce(kind) if p.inner == 1 => {
                let out = address(b, bufs[1], r, 4);
                let v = fold_row(b, p.len, kind.combine(), |b, ty, c| load(b, ty, x, c));
                let v = if *kind == Reduction::Mean { scale_by(b, v, 1.0 / p.len as f32) } else { v };
                b.ins().store(mem(), v, out, 0);
            }
            RowOp::Reduce(kind) => {
                let out = address(b, bufs[1], r, (p.inner * 4) as i64);
                reduce_leading(b, p.len, p.inner, *kind, x, out);
            }
        }
    });
    b.ins().return_(&[]);
}

fn load(b: &mut FunctionBuilder, ty: Type, base: Value, c: Value) -> Value {
    let at = address(b, base, c, 4);
    b.ins().load(ty, mem(), at, 0)
}

fn store(b: &mut FunctionBuilder, v: Value, base: Value, c: Value) {
    let at = address(b, base, c, 4);
    b.ins().store(mem(), v, at, 0);
}

fn scale_by(b: &mut FunctionBuilder, v: Value, k: f32) -> Value {
    let k = b.ins().f32const(k);
    b.ins().fmul(v, k)
}

fn splat(b: &mut FunctionBuilder, ty: Type, s: Value) -> Value {
    if ty == types::F32 {
        s
    } else {
        b.ins().splat(ty, s)
    }
}

/// Accumulators for a fold over columns: two 4-lane (two dependency chains), one scalar (the
/// tail).
struct Accumulator {
    vector: [Variable; 2],
    scalar: Variable,
}

impl Accumulator {
    fn new(b: &mut FunctionBuilder, init: f32) -> Accumulator {
        let vector = [b.declare_var(types::F32X4), b.declare_var(types::F32X4)];
        let scalar = b.declare_var(types::F32);
        let s = b.ins().f32const(init);
        let v = b.ins().splat(types::F32X4, s);
        vector.iter().for_each(|&var| b.def_var(var, v));
        b.def_var(scalar, s);
        Accumulator { vector, scalar }
    }

    /// Replaces the accumulator of this lane type and slot by `f(accumulator)`.
    fn update(
        &self,
        b: &mut FunctionBuilder,
        ty: Type,
        slot: usize,
        f: impl FnOnce(&mut FunctionBuilder, Value) -> Value,
    ) {
        let var = if ty == types::F32 { self.scalar } else { self.vector[slot] };
        let acc = b.use_var(var);
        let next = f(b, acc);
        b.def_var(var, next);
    }

    fn total(&self, b: &mut FunctionBuilder, how: Combine) -> Value {
        let (v0, v1, s) = (b.use_var(self.vector[0]), b.use_var(self.vector[1]), b.use_var(self.scalar));
        let v = how.apply(b, v0, v1);
        let total = how.across(b, v, s);
        pin(b, total)
    }
}

/// `how` over `value(c)` for the row's `len` columns.
fn fold_row(
    b: &mut FunctionBuilder,
    len: usize,
    how: Combine,
    mut value: impl FnMut(&mut FunctionBuilder, Type, Value) -> Value,
) -> Value {
    let acc = Accumulator::new(b, how.identity());
    columns_unrolled(b, len as i64, |b, ty, c, slot| {
        let v = value(b, ty, c);
        acc.update(b, ty, slot, |b, a| how.apply(b, a, v));
    });
    acc.total(b, how)
}

/// Three passes: the maximum (writing the scaled, masked scores to `out` first when there is
/// a prologue), the exponentials and their sum, then the normalization.
fn softmax(
    b: &mut FunctionBuilder,
    len: usize,
    x: Value,
    out: Value,
    log: bool,
    scale: f32,
    mask: Option<(Value, i64)>,
) {
    let prologue = scale != 1.0 || mask.is_some();
    let vectorize = mask.is_none_or(|(_, cs)| cs == 0 || cs == 1);
    let acc = Accumulator::new(b, f32::NEG_INFINITY);
    let mut pass = |b: &mut FunctionBuilder, ty: Type, c: Value, slot: usize| {
        let mut v = load(b, ty, x, c);
        if prologue {
            if scale != 1.0 {
                let k = math::constant(b, ty, scale);
                v = b.ins().fmul(v, k);
            }
            if let Some((m, cs)) = mask {
                let mv = match cs {
                    0 => {
                        let s = b.ins().load(types::F32, mem(), m, 0);
                        splat(b, ty, s)
                    }
                    1 => load(b, ty, m, c),
                    _ => {
                        let at = address(b, m, c, cs * 4);
                        b.ins().load(ty, mem(), at, 0)
                    }
                };
                v = b.ins().fadd(v, mv);
            }
            store(b, v, out, c);
        }
        // A NaN score is skipped here; its exponential makes the row NaN below.
        acc.update(b, ty, slot, |b, a| math::max_skipping_nan(b, ty, a, v));
    };
    if vectorize {
        columns_unrolled(b, len as i64, &mut pass);
    } else {
        columns(b, len as i64, false, |b, ty, c| pass(b, ty, c, 0));
    }
    let max = acc.total(b, Combine::Max);
    let src = if prologue { out } else { x };
    let sum = Accumulator::new(b, 0.0);
    columns_unrolled(b, len as i64, |b, ty, c, slot| {
        let v = load(b, ty, src, c);
        let m = splat(b, ty, max);
        let shifted = b.ins().fsub(v, m);
        let e = math::exp_of_nonpositive(b, ty, shifted);
        if !log {
            store(b, e, out, c);
        }
        sum.update(b, ty, slot, |b, a| b.ins().fadd(a, e));
    });
    let total = sum.total(b, Combine::Add);
    if log {
        // (x - max) - ln(sum): x - max is exact for nearby values; subtracting max + ln(sum)
        // at once would round at the scale of the inputs.
        let ln = math::log(b, types::F32, total);
        let ln = pin(b, ln);
        columns(b, len as i64, true, |b, ty, c| {
            let v = load(b, ty, src, c);
            let (m, l) = (splat(b, ty, max), splat(b, ty, ln));
            let shifted = b.ins().fsub(v, m);
            let y = b.ins().fsub(shifted, l);
            store(b, y, out, c);
        });
    } else {
        let one = b.ins().f32const(1.0);
        let inv = b.ins().fdiv(one, total);
        let inv = pin(b, inv);
        columns(b, len as i64, true, |b, ty, c| {
            let v = load(b, ty, out, c);
            let k = splat(b, ty, inv);
            let y = b.ins().fmul(v, k);
            store(b, y, out, c);
        });
    }
}

/// Two passes for the statistics (the mean, then the mean squared deviation: no cancellation
/// for rows with a large mean), one for the output.
fn layer_norm(b: &mut FunctionBuilder, len: usize, x: Value, scale: Value, bias: Option<Value>, out: Value, eps: f32) {
    let inv_len = 1.0 / len as f32;
    let sum = fold_row(b, len, Combine::Add, |b, ty, c| load(b, ty, x, c));
    let mean = scale_by(b, sum, inv_len);
    let mean = pin(b, mean);
    let squares = fold_row(b, len, Combine::Add, |b, ty, c| {
        let v = load(b, ty, x, c);
        let m = splat(b, ty, mean);
        let d = b.ins().fsub(v, m);
        b.ins().fmul(d, d)
    });
    let var = scale_by(b, squares, inv_len);
    let eps = b.ins().f32const(eps);
    let ve = b.ins().fadd(var, eps);
    let sd = b.ins().sqrt(ve);
    let one = b.ins().f32const(1.0);
    let inv = b.ins().fdiv(one, sd);
    let inv = pin(b, inv);
    columns(b, len as i64, true, |b, ty, c| {
        let v = load(b, ty, x, c);
        let (m, k) = (splat(b, ty, mean), splat(b, ty, inv));
        let d = b.ins().fsub(v, m);
        let n = b.ins().fmul(d, k);
        let s = load(b, ty, scale, c);
        let y = match bias {
            Some(bias) => {
                let bv = load(b, ty, bias, c);
                math::mul_add(b, n, s, bv)
            }
            None => b.ins().fmul(n, s),
        };
        store(b, y, out, c);
    });
}

/// `out[i] = how over c of x[c * inner + i]`: whole vectors of `inner` combined in place.
fn reduce_leading(b: &mut FunctionBuilder, len: usize, inner: usize, kind: Reduction, x: Value, out: Value) {
    let how = kind.combine();
    let inner = inner as i64;
    columns(b, inner, true, |b, ty, i| {
        let id = math::constant(b, ty, how.identity());
        store(b, id, out, i);
    });
    let zero = b.ins().iconst(types::I64, 0);
    let n = b.ins().iconst(types::I64, len as i64);
    range(b, zero, n, |b, c| {
        let row = address(b, x, c, inner * 4);
        columns(b, inner, true, |b, ty, i| {
            let (acc, v) = (load(b, ty, out, i), load(b, ty, row, i));
            let next = how.apply(b, acc, v);
            store(b, next, out, i);
        });
    });
    if kind == Reduction::Mean {
        columns(b, inner, true, |b, ty, i| {
            let v = load(b, ty, out, i);
            let k = math::constant(b, ty, 1.0 / len as f32);
            let y = b.ins().fmul(v, k);
            store(b, y, out, i);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jit::Jit;

    fn run(p: &RowProgram, buffers: &mut [Vec<f32>], rows: usize) {
        let mut jit = Jit::new().unwrap();
        let f = jit.compile_rows(p).unwrap();
        let ptrs: Vec<*mut f32> = buffers.iter_mut().map(|v| v.as_mut_ptr()).collect();
        // Two calls over halves: `begin..end` must select rows.
        unsafe {
            f(ptrs.as_ptr(), 0, rows as i64 / 2);
            f(ptrs.as_ptr(), rows as i64 / 2, rows as i64);
        }
    }

    fn data(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 33) % 2001) as f32 / 250.0 - 4.0
            })
            .collect()
    }

    #[test]
    fn softmax_with_scale_and_mask_matches_f64() {
        for (len, log, mask) in
            [(1, false, None), (7, false, Some((0, 1))), (13, true, Some((13, 0))), (33, true, None)]
        {
            let rows = 5;
            // Large scores (one row offset by 1000) must not overflow.
            let x: Vec<f32> = data(rows * len, len as u64)
                .iter()
                .enumerate()
                .map(|(i, v)| if i < len { v + 1000.0 } else { *v })
                .collect();
            let m = data(rows * len, 99);
            let mut bufs = vec![x.clone()];
            if mask.is_some() {
                bufs.push(m.clone());
            }
            bufs.push(vec![f32::NAN; rows * len]);
            let p = RowProgram { op: RowOp::Softmax { log, scale: 0.7, mask }, len, inner: 1 };
            run(&p, &mut bufs, rows);
            let out = bufs.last().unwrap();
            for r in 0..rows {
                let s: Vec<f64> = (0..len)
                    .map(|c| {
                        // The scores as f32 computes them (at 700, f32 rounds by 3e-5).
                        let mv = mask.map_or(0.0, |(rs, cs)| m[r * rs as usize + c * cs as usize]);
                        (x[r * len + c] * 0.7 + mv) as f64
                    })
                    .collect();
                let max = s.iter().cloned().fold(f64::MIN, f64::max);
                let total: f64 = s.iter().map(|v| (v - max).exp()).sum();
                for c in 0..len {
                    let want = if log { s[c] - max - total.ln() } else { (s[c] - max).exp() / total };
                    let got = out[r * len + c] as f64;
                    assert!((got - want).abs() < 1e-6 * want.abs().max(1.0), "{len} {log} [{r}][{c}] {got} {want}");
                }
            }
        }
    }

    #[test]
    fn layer_norm_matches_f64() {
        for (len, bias) in [(3, true), (17, false), (64, true)] {
            let rows = 4;
            let x: Vec<f32> = data(rows * len, 3).iter().map(|v| v + 100.0).collect();
            let (scale, shift) = (data(len, 4), data(len, 5));
            let mut bufs = vec![x.clone(), scale.clone()];
            if bias {
                bufs.push(shift.clone());
            }
            bufs.push(vec![f32::NAN; rows * len]);
            run(&RowProgram { op: RowOp::LayerNorm { eps: 1e-5, bias }, len, inner: 1 }, &mut bufs, rows);
            let out = bufs.last().unwrap();
            for r in 0..rows {
                let row: Vec<f64> = x[r * len..][..len].iter().map(|&v| v as f64).collect();
                let mean = row.iter().sum::<f64>() / len as f64;
                let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / len as f64;
                for c in 0..len {
                    let b = if bias { shift[c] as f64 } else { 0.0 };
                    let want = (row[c] - mean) / (var + 1e-5).sqrt() * scale[c] as f64 + b;
                    assert!((out[r * len + c] as f64 - want).abs() < 1e-4, "{len} [{r}][{c}]");
                }
            }
        }
    }

    #[test]
    fn reductions_along_and_across_rows_match_f64() {
        for kind in [Reduction::Sum, Reduction::Mean, Reduction::Max, Reduction::Min, Reduction::Prod] {
            for (len, inner) in [(1, 1), (9, 1), (6, 5), (3, 8)] {
                let rows = 3;
                let x: Vec<f32> = data(rows * len * inner, 7).iter().map(|v| v * 0.3).collect();
                let mut bufs = vec![x.clone(), vec![f32::NAN; rows * inner]];
                run(&RowProgram { op: RowOp::Reduce(kind), len, inner }, &mut bufs, rows);
                for r in 0..rows {
                    for i in 0..inner {
                        let vals = (0..len).map(|c| x[(r * len + c) * inner + i] as f64);
                        let want = match kind {
                            Reduction::Sum => vals.sum(),
                            Reduction::Mean => vals.sum::<f64>() / len as f64,
                            Reduction::Max => vals.fold(f64::MIN, f64::max),
                            Reduction::Min => vals.fold(f64::MAX, f64::min),
                            Reduction::Prod => vals.product(),
                        };
                        let got = bufs[1][r * inner + i] as f64;
                        assert!(
                            (got - want).abs() < 1e-5 * want.abs().max(1.0),
                            "{kind:?} {len}x{inner}: {got} {want}"
                        );
                    }
                }
            }
        }
    }
}
