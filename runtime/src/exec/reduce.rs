//! Reductions and windows lowered to JIT row and pool programs: softmax, log_softmax,
//! layer_norm, reduce_* over a contiguous block of axes, global pools and 2-D pools. Rows
//! (or planes) are split over the workers.

use smelt_compiler::attributes::Attribute;
use smelt_compiler::dialect::infer::normalize_axis;
use smelt_compiler::dialect::OpView;
use smelt_compiler::ir::OpId;
use smelt_compiler::names;

use super::strided::ELEMENTS_PER_WORKER;
use super::{f32_value, resolve, shape, tensor_of, Loc, Lower, Step};
use crate::jit::{PoolProgram, RangeFn, Reduction, RowOp, RowProgram};
use crate::workers::Shared;

/// A step calling `f` over `0..count` rows or planes of `work` elements each, split over the
/// workers.
fn split_step(f: RangeFn, buffers: Vec<Loc>, count: usize, work: usize) -> Step {
    let min = (ELEMENTS_PER_WORKER / work.max(1)).max(1);
    Box::new(move |base| {
        let ptrs: Vec<Shared<f32>> = buffers.iter().map(|&l| Shared(resolve(l, base) as *mut f32)).collect();
        crate::workers::parallel_ranges(count, min, |range| {
            let raw: Vec<*mut f32> = ptrs.iter().map(|p| p.get()).collect();
            // SAFETY: the program was compiled for these buffers' shapes; workers write
            // disjoint rows.
            unsafe { f(raw.as_ptr(), range.start as i64, range.end as i64) };
        });
        Ok(())
    })
}

impl Lower {
    /// A row or pool program for `op`, when it is one this module handles on f32 data.
    pub(super) fn reduction(&mut self, op: OpId) -> Result<Option<Step>, String> {
        let m = self.module.clone();
        let o = m.op(op);
        // The data and the result (and layer_norm's parameters) are f32; axes are i64.
        let data = if o.name() == names::LAYER_NORM { o.operands() } else { &o.operands()[..1] };
        if o.results().len() != 1 || !data.iter().chain(o.results()).all(|&v| f32_value(&m, v)) {
            return Ok(None);
        }
        let view = OpView::new(&m, op);
        let xs = shape(&tensor_of(&m, o.operands()[0])?);
        let os = shape(&tensor_of(&m, o.result())?);
        let (x, out) = (self.locs[&o.operands()[0]], self.locs[&o.result()]);
        let rank = xs.len();
        let product = |d: &[u64]| d.iter().product::<u64>() as usize;
        // (program, buffers, rows) of a row program
        let (program, buffers, rows) = match o.name() {
            names::SOFTMAX | names::LOG_SOFTMAX => {
                if rank == 0 || normalize_axis(view.int("axis"), rank)? != rank - 1 {
                    return Ok(None);
                }
                let log = o.name() == names::LOG_SOFTMAX;
                let len = xs[rank - 1] as usize;
                (
                    RowProgram { op: RowOp::Softmax { log, scale: 1.0, mask: None }, len, inner: 1 },
                    vec![x, out],
                    product(&xs[..rank - 1]),
                )
            }
            names::LAYER_NORM => {
                let axis = normalize_axis(view.int("axis"), rank)?;
                let len = product(&xs[axis..]);
                let fits = |s: &Vec<u64>| product(s) == len && s.as_slice() == &xs[rank - s.len()..];
                let param = |i: usize| -> Result<Vec<u64>, String> { Ok(shape(&tensor_of(&m, o.operands()[i])?)) };
                let bias = o.operands().len() > 2;
                if !fits(&param(1)?) || (bias && !fits(&param(2)?)) {
                    return Ok(None);
                }
                let eps = o.float_attr("epsilon") as f32;
                let buffers = o.operands().iter().map(|v| self.locs[v]).chain([out]).collect();
                (RowProgram { op: RowOp::LayerNorm { eps, bias }, len, inner: 1 }, buffers, product(&xs[..axis]))
            }
            names::GLOBAL_AVG_POOL | names::GLOBAL_MAX_POOL if rank >= 2 => {
                let kind = if o.name() == names::GLOBAL_MAX_POOL { Reduction::Max } else { Reduction::Mean };
                (
                    RowProgram { op: RowOp::Reduce(kind), len: product(&xs[2..]), inner: 1 },
                    vec![x, out],
                    product(&xs[..2]),
                )
            }
            names::REDUCE_SUM | names::REDUCE_MEAN | names::REDUCE_MAX | names::REDUCE_MIN | names::REDUCE_PROD => {
                let kind = match o.name() {
                    names::REDUCE_SUM => Reduction::Sum,
                    names::REDUCE_MEAN => Reduction::Mean,
                    names::REDUCE_MAX => Reduction::Max,
                    names::REDUCE_MIN => Reduction::Min,
                    _ => Reduction::Prod,
                };
                let axes = match view.operand("axes") {
                    Some(a) => match view.const_ints(a) {
                        Some(a) => a,
                        None => return Ok(None),
                    },
                    None => Vec::new(),
                };
                let mut axes: Vec<usize> = if axes.is_empty() {
                    if view.bool("noop_with_empty_axes") {
                        return Ok(None);
                    }
                    (0..rank).collect()
                } else {
                    axes.iter().map(|&a| normalize_axis(a, rank)).collect::<Result<_, _>>()?
                };
                axes.sort_unstable();
                axes.dedup();
                // A contiguous block of axes: rows before it, `inner` elements after.
                let Some((&first, &last)) = axes.first().zip(axes.last()) else { return Ok(None) };
                if last - first + 1 != axes.len() {
                    return Ok(None);
                }
                let (len, inner) = (product(&xs[first..=last]), product(&xs[last + 1..]));
                (RowProgram { op: RowOp::Reduce(kind), len, inner }, vec![x, out], product(&xs[..first]))
            }
            names::MAX_POOL | names::AVG_POOL if rank == 4 && os.len() == 4 => {
                let ints = |n: &str, d: usize, k: usize| -> Vec<usize> {
                    o.attr(n)
                        .and_then(Attribute::as_i64_array)
                        .map(|v| v.iter().map(|&a| a as usize).collect())
                        .unwrap_or(vec![d; k])
                };
                let (k, p, dl) = (ints("kernel_shape", 1, 2), ints("pads", 0, 4), ints("dilations", 1, 2));
                let wide = |v: &[usize]| v.iter().map(|&x| x as i64).collect::<Vec<i64>>();
                let kernel: Vec<u64> = k.iter().map(|&x| x as u64).collect();
                let st = super::anchor::bounded_strides(
                    &wide(&ints("strides", 1, 2)),
                    &xs[2..],
                    &os[2..],
                    &kernel,
                    &wide(&dl),
                    &wide(&p),
                );
                let st: Vec<usize> = st.iter().map(|&x| x as usize).collect();
                if k[0] * k[1] > PoolProgram::MAX_WINDOW {
                    return Ok(None);
                }
                let (h, w) = (xs[2] as usize, xs[3] as usize);
                let program = PoolProgram {
                    window: crate::conv::Window {
                        h,
                        w,
                        ho: os[2] as usize,
                        wo: os[3] as usize,
                        kernel: [k[0], k[1]],
                        strides: [st[0], st[1]],
                        pads: [p[0], p[1]],
                        dilations: [dl[0], dl[1]],
                    },
                    pads_end: [p[2], p[3]],
                    max: o.name() == names::MAX_POOL,
                    count_include_pad: o.bool_attr("count_include_pad"),
                };
                if program.max && crate::conv::pool::has_full_width_max() {
                    *self.info.native_steps.entry(format!("{} {}", o.name(), crate::vmath::isa())).or_default() += 1;
                    let (window, planes) = (program.window, product(&xs[..2]));
                    let min = (ELEMENTS_PER_WORKER / (h * w).max(1)).max(1);
                    return Ok(Some(Box::new(move |base| {
                        let (x, y) = (Shared(resolve(x, base) as *mut f32), Shared(resolve(out, base) as *mut f32));
                        crate::workers::parallel_ranges(planes, min, |range| {
                            // SAFETY: x and y hold every plane at the window's sizes; workers
                            // write disjoint planes.
                            unsafe { crate::conv::pool::max_planes(&window, x.get(), y.get(), range) };
                        });
                        Ok(())
                    })));
                }
                let f = self.jit.compile_pool(&program)?;
                self.info.jit_functions += 1;
                *self.info.native_steps.entry(o.name().to_string()).or_default() += 1;
                return Ok(Some(split_step(f, vec![x, out], product(&xs[..2]), h * w)));
            }
            _ => return Ok(None),
        };
        let work = program.len * program.inner;
        let f = self.jit.compile_rows(&program)?;
        self.info.jit_functions += 1;
        *self.info.native_steps.entry(o.name().to_string()).or_default() += 1;
        Ok(Some(split_step(f, buffers, rows, work)))
    }
}
