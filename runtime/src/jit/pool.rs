//! 2-D max and average pooling over NCHW planes, as two separable passes per output row.
//!
//! ```text
//! extern "C" fn(ptrs: *const *mut f32, begin: i64, end: i64)   // ptrs: x, out; planes
//! ```
//!
//! A window is a rectangle (rows times columns, both strided and dilated), so each output
//! row first combines the input rows its window covers into one row on the stack (4-lane
//! loads over the full width), then each output column combines that row's window columns.
//! The counts an average divides by factor the same way: valid rows times valid columns, or
//! rows and columns inside the padded input with `count_include_pad`. The window's rows and
//! columns are unrolled (kernels are small; the executor checks).

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, InstBuilder, StackSlotData, StackSlotKind, Type, Value};
use cranelift_frontend::FunctionBuilder;

use super::loops::{address, columns, counted, mem, range, LANES};
use super::math::{self, Combine};
use crate::conv::Window;

/// A pooling program: the window over one plane and what it computes.
#[derive(Clone, Debug)]
pub struct PoolProgram {
    pub window: Window,
    /// Bottom and right padding (what `count_include_pad` counts besides the top and left).
    pub pads_end: [usize; 2],
    pub max: bool,
    pub count_include_pad: bool,
}

impl PoolProgram {
    /// The most window positions the generated code unrolls.
    pub const MAX_WINDOW: usize = 256;
}

pub(super) fn build(b: &mut FunctionBuilder, p: &PoolProgram, params: &[Value], ptr: Type) {
    let g = &p.window;
    let how = if p.max { Combine::Max } else { Combine::Add };
    // A max skips NaN inputs as the reference's does, by compare-and-select: two instructions
    // where `fmax`'s NaN-propagating sequence takes eight, twice per window position.
    let combine = |b: &mut FunctionBuilder, ty: Type, acc: Value, v: Value| {
        if p.max {
            math::max_skipping_nan(b, ty, acc, v)
        } else {
            how.apply(b, acc, v)
        }
    };
    let (ptrs, begin, end) = (params[0], params[1], params[2]);
    let x = b.ins().load(ptr, mem(), ptrs, 0);
    let out = b.ins().load(ptr, mem(), ptrs, ptr.bytes() as i32);
    // The combined row sits inside the identity its padding and vector reads past the right
    // edge see: a max pool's columns then combine in 4-lane steps with no bounds checks.
    let vector_columns = p.max && matches!(g.strides[1], 1 | 2);
    let left = g.pads[1];
    let span = (g.kernel[1] - 1) * g.dilations[1];
    let padded = (left + g.w).max(g.wo.next_multiple_of(LANES as usize) * g.strides[1] + span + 2 * LANES as usize);
    let slot = b.create_sized_stack_slot(StackSlotData::new(StackSlotKind::ExplicitSlot, (padded * 4) as u32, 4));
    let padded_row = b.ins().stack_addr(ptr, slot, 0);
    let row = b.ins().iadd_imm_s(padded_row, (left * 4) as i64);
    let (h, w) = (g.h as i64, g.w as i64);
    columns(b, padded as i64, true, |b, ty, c| {
        let id = math::constant(b, ty, how.identity());
        let at = address(b, padded_row, c, 4);
        b.ins().store(mem(), id, at, 0);
    });
    range(b, begin, end, |b, plane| {
        let xp = address(b, x, plane, h * w * 4);
        let op = address(b, out, plane, (g.ho * g.wo * 4) as i64);
        let zero = b.ins().iconst(types::I64, 0);
        let ho = b.ins().iconst(types::I64, g.ho as i64);
        range(b, zero, ho, |b, oy| {
            // The window's input rows combined into `row` (its padding keeps the identity).
            columns(b, w, true, |b, ty, c| {
                let id = math::constant(b, ty, how.identity());
                let at = address(b, row, c, 4);
                b.ins().store(mem(), id, at, 0);
            });
            let mut rows_counted = b.ins().f32const(0.0);
            let top = b.ins().imul_imm_s(oy, g.strides[0] as i64);
            for ky in 0..g.kernel[0] {
                let iy = b.ins().iadd_imm_s(top, (ky * g.dilations[0]) as i64 - g.pads[0] as i64);
                let (inside, padded) = bounds(b, iy, h, g.pads[0] as i64, p.pads_end[0] as i64);
                let add = b.create_block();
                let next = b.create_block();
                b.ins().brif(inside, add, &[], next, &[]);
                b.seal_block(add);
                b.switch_to_block(add);
                let input = address(b, xp, iy, w * 4);
                columns(b, w, true, |b, ty, c| {
                    let at = address(b, row, c, 4);
                    let acc = b.ins().load(ty, mem(), at, 0);
                    let src = address(b, input, c, 4);
                    let v = b.ins().load(ty, mem(), src, 0);
                    let y = combine(b, ty, acc, v);
                    b.ins().store(mem(), y, at, 0);
                });
                b.ins().jump(next, &[]);
                b.seal_block(next);
                b.switch_to_block(next);
                let counted = if p.count_include_pad { padded } else { inside };
                rows_counted = add_one_if(b, rows_counted, counted);
            }
            // Each output column's window over `row`.
            let out_row = address(b, op, oy, (g.wo * 4) as i64);
            let wo = b.ins().iconst(types::I64, g.wo as i64);
            let zero = b.ins().iconst(types::I64, 0);
            let tail = if vector_columns {
                counted(b, zero, wo, LANES, |b, ox| {
                    // Padded column ox * stride + kx * dilation, four outputs at once.
                    let first = b.ins().imul_imm_s(ox, g.strides[1] as i64);
                    let mut acc = math::constant(b, types::F32X4, how.identity());
                    for kx in 0..g.kernel[1] {
                        let at = address(b, padded_row, first, 4);
                        let offset = (kx * g.dilations[1] * 4) as i32;
                        let v = if g.strides[1] == 1 {
                            b.ins().load(types::F32X4, mem(), at, offset)
                        } else {
                            let lo = b.ins().load(types::F32X4, mem(), at, offset);
                            let hi = b.ins().load(types::F32X4, mem(), at, offset + 16);
                            math::even_lanes(b, lo, hi)
                        };
                        acc = combine(b, types::F32X4, acc, v);
                    }
                    let at = address(b, out_row, ox, 4);
                    b.ins().store(mem(), acc, at, 0);
                })
            } else {
                zero
            };
            range(b, tail, wo, |b, ox| {
                let mut acc = b.ins().f32const(how.identity());
                let mut cols_counted = b.ins().f32const(0.0);
                let left = b.ins().imul_imm_s(ox, g.strides[1] as i64);
                for kx in 0..g.kernel[1] {
                    let ix = b.ins().iadd_imm_s(left, (kx * g.dilations[1]) as i64 - g.pads[1] as i64);
                    let (inside, padded) = bounds(b, ix, w, g.pads[1] as i64, p.pads_end[1] as i64);
                    let zero = b.ins().iconst(types::I64, 0);
                    let safe = b.ins().select(inside, ix, zero);
                    let at = address(b, row, safe, 4);
                    let v = b.ins().load(types::F32, mem(), at, 0);
                    let combined = combine(b, types::F32, acc, v);
                    acc = b.ins().select(inside, combined, acc);
                    let counted = if p.count_include_pad { padded } else { inside };
                    cols_counted = add_one_if(b, cols_counted, counted);
                }
                let y = if p.max {
                    acc
                } else {
                    let n = b.ins().fmul(rows_counted, cols_counted);
                    let one = b.ins().f32const(1.0);
                    let n = b.ins().fmax(n, one);
                    b.ins().fdiv(acc, n)
                };
                let at = address(b, out_row, ox, 4);
                b.ins().store(mem(), y, at, 0);
            });
        });
    });
    b.ins().return_(&[]);
}

/// Whether `i` lies inside `0..n`, and inside the padded extent `-before..n + after`.
fn bounds(b: &mut FunctionBuilder, i: Value, n: i64, before: i64, after: i64) -> (Value, Value) {
    let lo = b.ins().icmp_imm_s(IntCC::SignedGreaterThanOrEqual, i, 0);
    let hi = b.ins().icmp_imm_s(IntCC::SignedLessThan, i, n);
    let inside = b.ins().band(lo, hi);
    let lo = b.ins().icmp_imm_s(IntCC::SignedGreaterThanOrEqual, i, -before);
    let hi = b.ins().icmp_imm_s(IntCC::SignedLessThan, i, n + after);
    (inside, b.ins().band(lo, hi))
}

fn add_one_if(b: &mut FunctionBuilder, count: Value, cond: Value) -> Value {
    let (one, zero) = (b.ins().f32const(1.0), b.ins().f32const(0.0));
    let inc = b.ins().select(cond, one, zero);
    b.ins().fadd(count, inc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jit::Jit;

    /// The window positions by definition, in f64.
    fn expected(p: &PoolProgram, x: &[f32]) -> Vec<f64> {
        let g = &p.window;
        let mut out = Vec::new();
        for oy in 0..g.ho {
            for ox in 0..g.wo {
                let (mut acc, mut n) = (if p.max { f64::MIN } else { 0.0 }, 0usize);
                for ky in 0..g.kernel[0] {
                    for kx in 0..g.kernel[1] {
                        let iy = (oy * g.strides[0] + ky * g.dilations[0]) as isize - g.pads[0] as isize;
                        let ix = (ox * g.strides[1] + kx * g.dilations[1]) as isize - g.pads[1] as isize;
                        let inside = iy >= 0 && ix >= 0 && iy < g.h as isize && ix < g.w as isize;
                        if inside {
                            let v = x[iy as usize * g.w + ix as usize] as f64;
                            acc = if p.max { acc.max(v) } else { acc + v };
                            n += 1;
                        } else if p.count_include_pad
                            && iy < (g.h + p.pads_end[0]) as isize
                            && ix < (g.w + p.pads_end[1]) as isize
                        {
                            n += 1;
                        }
                    }
                }
                out.push(if p.max { acc } else { acc / n.max(1) as f64 });
            }
        }
        out
    }

    #[test]
    fn windows_with_padding_strides_and_dilations_match_the_definition() {
        let mut seed = 1u64;
        let mut next = |n: usize| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) as usize % n
        };
        for _ in 0..40 {
            let kernel = [1 + next(3), 1 + next(4)];
            let strides = [1 + next(2), 1 + next(3)];
            let dilations = [1 + next(2), 1 + next(2)];
            let pads = [next(kernel[0]), next(kernel[1])];
            let pads_end = [next(kernel[0]), next(kernel[1])];
            let (h, w) = (kernel[0] * dilations[0] + next(9), kernel[1] * dilations[1] + next(11));
            let ho = (h + pads[0] + pads_end[0] - (dilations[0] * (kernel[0] - 1) + 1)) / strides[0] + 1;
            let wo = (w + pads[1] + pads_end[1] - (dilations[1] * (kernel[1] - 1) + 1)) / strides[1] + 1;
            let p = PoolProgram {
                window: Window { h, w, ho, wo, kernel, strides, pads, dilations },
                pads_end,
                max: next(2) == 0,
                count_include_pad: next(2) == 0,
            };
            let planes = 3;
            let x: Vec<f32> = (0..planes * h * w).map(|_| next(2001) as f32 / 1000.0 - 1.0).collect();
            let mut out = vec![f32::NAN; planes * ho * wo];
            let mut jit = Jit::new().unwrap();
            let f = jit.compile_pool(&p).unwrap();
            let ptrs = [x.as_ptr() as *mut f32, out.as_mut_ptr()];
            unsafe { f(ptrs.as_ptr(), 0, planes as i64) };
            for plane in 0..planes {
                let want = expected(&p, &x[plane * h * w..][..h * w]);
                for (i, wv) in want.iter().enumerate() {
                    let got = out[plane * ho * wo + i] as f64;
                    assert!((got - wv).abs() < 1e-6, "{p:?} plane {plane} [{i}]: {got} {wv}");
                }
            }
        }
    }
}
