//! Anchors: a convolution, matmul or gemm with its epilogue, run on the GEMM micro-kernel
//! (packed, Winograd or depthwise for convolutions) with the epilogue's head in registers and
//! the rest as a JIT program applied to each finished block.

use super::elementwise::{is_channel_param, round_trips_to_grid, take_trailing_activations, ProgramBuilder};
use super::*;
use crate::vmath::Activation;

impl Lower {
    /// How the convolution `anchor` (output shape `os`) runs: Winograd, depthwise planes or a
    /// packed GEMM, with its weights transformed or packed now.
    pub(super) fn conv_plan(
        &mut self,
        m: &Module,
        anchor: OpId,
        os: &[u64],
        in_tile: (Option<Vec<f32>>, Option<crate::conv::int8::Grid>),
    ) -> Result<Conv, String> {
        let o = m.op(anchor);
        let xs = shape(&tensor_of(m, o.operands()[0])?);
        let ws = shape(&tensor_of(m, o.operands()[1])?);
        let g = o.int_attr("group").max(1) as usize;
        let ints = |n: &str| o.ints_attr(n, 4);
        let conv = Conv {
            xs: xs.iter().map(|&d| d as usize).collect(),
            ws: ws.iter().map(|&d| d as usize).collect(),
            os: os.iter().map(|&d| d as usize).collect(),
            group: g,
            strides: bounded_strides(&ints("strides"), &xs[2..], &os[2..], &ws[2..], &ints("dilations"), &ints("pads")),
            pads: ints("pads"),
            dilations: ints("dilations"),
            depthwise: None,
            packed: Vec::new(),
            winograd: None,
            pack_b: false,
            int8: None,
        };
        if o.name() == names::QUANTIZED_CONV2D {
            let plan = self.int8_plan(m, anchor, &conv, in_tile)?;
            *self.info.native_steps.entry(format!("int8 conv {}", plan.isa)).or_default() += 1;
            self.info.gemm_steps += 1;
            return Ok(Conv { int8: Some(plan), ..conv });
        }
        let depthwise = g > 1 && g == conv.xs[1] && conv.os[1] == g;
        let window = conv.window();
        let winograd = match self.constant_f32(o.operands()[1]) {
            Some(wdata)
                if crate::conv::winograd::Winograd::applies(
                    window.kernel,
                    window.strides,
                    window.dilations,
                    g,
                    [window.ho, window.wo],
                ) =>
            {
                let (cout, cin) = (conv.os[1], conv.xs[1]);
                Some(crate::conv::winograd::Winograd::new(
                    wdata,
                    (cout, cin),
                    (window.h, window.w),
                    (window.ho, window.wo),
                    (window.pads[0], window.pads[1]),
                ))
            }
            _ => None,
        };
        // Winograd or im2col, by measurement on this machine (`crate::variants`).
        let winograd = match (winograd, self.constant_f32(o.operands()[1])) {
            (Some(plan), Some(wdata)) => {
                let key = format!(
                    "{}x{}x{}x{}->{} threads={}",
                    conv.xs[0],
                    conv.xs[1],
                    conv.xs[2],
                    conv.xs[3],
                    conv.os[1],
                    crate::workers::threads()
                );
                let choice = crate::variants::choose("conv3x3", &key, &["winograd", "im2col"], |variant| {
                    let mut scratch = vec![0.0f32; plan.scratch_len()];
                    let candidate = if variant == "winograd" {
                        Conv {
                            winograd: Some((plan.clone(), Loc::Raw(scratch.as_mut_ptr() as *mut u8))),
                            ..conv.clone_geometry()
                        }
                    } else {
                        let k = conv.ws[1] * conv.ws[2] * conv.ws[3];
                        let packed = vec![crate::gemm::Packed::a(&View::row_major(wdata, conv.os[1], k))];
                        Conv { packed, ..conv.clone_geometry() }
                    };
                    probe(&candidate, wdata)
                });
                *self.info.variants.entry(format!("conv3x3: {choice}")).or_default() += 1;
                (choice == "winograd").then(|| {
                    let scratch = self.scratch_bytes(plan.scratch_len() * 4);
                    (plan, scratch)
                })
            }
            _ => None,
        };
        let packed = match (self.constant_f32(o.operands()[1]), depthwise || winograd.is_some()) {
            (Some(wdata), false) => {
                let og = conv.os[1] / g;
                let k = conv.ws[1] * conv.ws[2] * conv.ws[3];
                (0..g)
                    .map(|gi| crate::gemm::Packed::a(&View::row_major(&wdata[gi * og * k..][..og * k], og, k)))
                    .collect()
            }
            _ => Vec::new(),
        };
        if winograd.is_some() {
            self.info.winograd_steps += 1;
        }
        let depthwise = depthwise.then(|| self.depthwise_plan(&conv, &window, o.operands()[1]));
        let mut conv = Conv { depthwise, packed, winograd, ..conv };
        // An image product with few rows may read the image in place or pack it: measured.
        if conv.depthwise.is_none()
            && conv.winograd.is_none()
            && conv.packed.len() == 1
            && conv.os[1] <= crate::gemm::DIRECT_B_MAX_ROWS
        {
            if let Some(wdata) = self.constant_f32(o.operands()[1]) {
                let key = format!(
                    "{}x{}x{}x{}->{} k{}x{} s{}x{} threads={}",
                    conv.xs[0],
                    conv.xs[1],
                    conv.xs[2],
                    conv.xs[3],
                    conv.os[1],
                    conv.ws[2],
                    conv.ws[3],
                    conv.strides[0],
                    conv.strides[1],
                    crate::workers::threads()
                );
                let choice = crate::variants::choose("gemm-b", &key, &["in-place", "packed"], |variant| {
                    conv.pack_b = variant == "packed";
                    probe(&conv, wdata)
                });
                conv.pack_b = choice == "packed";
                *self.info.variants.entry(format!("gemm-b: {choice}")).or_default() += 1;
            }
        }
        if conv.depthwise.is_some() {
            self.info.depthwise_steps += 1;
        } else {
            self.info.gemm_steps += 1;
        }
        Ok(conv)
    }

    /// The integer plan of the quantized convolution `anchor`: its constant int8 weights
    /// packed, its grid and scales read, and the constant bias and output grid its tile
    /// applies.
    fn int8_plan(
        &self,
        m: &Module,
        anchor: OpId,
        conv: &Conv,
        (bias, grid): (Option<Vec<f32>>, Option<crate::conv::int8::Grid>),
    ) -> Result<crate::conv::int8::Int8Conv, String> {
        let value = |i: usize| self.constant_operand(m, anchor, i);
        let (w, x_scale, zero, w_scale) = (value(1)?, value(2)?, value(3)?, value(4)?);
        if conv.group != 1 {
            return Err("a quantized convolution with groups is not supported".into());
        }
        let reduction = conv.ws[1] * conv.ws[2] * conv.ws[3];
        if reduction > crate::conv::int8::Int8Conv::MAX_REDUCTION {
            return Err(format!("a quantized convolution sums {reduction} products per output, over i32's range"));
        }
        let weights: Vec<i8> = w.to_f64().iter().map(|&v| v as i8).collect();
        let w_scale: Vec<f32> = w_scale.to_f64().iter().map(|&v| v as f32).collect();
        let mut plan = crate::conv::int8::Int8Conv::new(
            conv.window(),
            (conv.xs[1], conv.os[1]),
            &weights,
            input_grid(&x_scale, &zero),
            &w_scale,
        );
        plan.finish_in_tile(bias.as_deref(), grid);
        Ok(plan)
    }

    /// Whether `op`, if it is a quantized product, is one the integer kernels run: weights and
    /// grids constant (packed ahead of time), one group. The reference semantics run the rest.
    pub(super) fn integer_kernel_runs(&self, m: &Module, op: OpId) -> bool {
        let o = m.op(op);
        !matches!(o.name(), names::QUANTIZED_CONV2D | names::QUANTIZED_MATMUL)
            || ((1..5).all(|i| self.constant_operand(m, op, i).is_ok())
                && (o.name() == names::QUANTIZED_MATMUL || o.int_attr("group") == 1))
    }

    /// Operand `i` of `op`, which must be a constant.
    fn constant_operand(&self, m: &Module, op: OpId, i: usize) -> Result<smelt_compiler::literal::Literal, String> {
        let v = m.op(op).operands()[i];
        constant_literal(m, *self.outer.get(&v).unwrap_or(&v))
            .ok_or_else(|| format!("operand {i} of '{}' is not a constant", m.op(op).name()))
    }

    /// The integer plan of the quantized matmul `anchor` (its constant int8 `b` transposed and
    /// packed), rounding its results to `grid` when given.
    fn int8_matrix_plan(
        &self,
        m: &Module,
        anchor: OpId,
        grid: Option<crate::conv::int8::Grid>,
    ) -> Result<crate::conv::int8::Int8Conv, String> {
        let value = |i: usize| self.constant_operand(m, anchor, i);
        let (b, a_scale, zero, b_scale) = (value(1)?, value(2)?, value(3)?, value(4)?);
        let (k, n) = (b.shape[0] as usize, b.shape[1] as usize);
        if k > crate::conv::int8::Int8Conv::MAX_REDUCTION {
            return Err(format!("a quantized matmul sums {k} products per output, over i32's range"));
        }
        let values = b.to_f64();
        let transposed: Vec<i8> = (0..n * k).map(|i| values[(i % k) * n + i / k] as i8).collect();
        let b_scale: Vec<f32> = b_scale.to_f64().iter().map(|&v| v as f32).collect();
        let mut plan = crate::conv::int8::Int8Conv::matrix(k, n, &transposed, input_grid(&a_scale, &zero), &b_scale);
        plan.finish_in_tile(None, grid);
        Ok(plan)
    }

    /// The depthwise plan for `conv`, by measurement where the weights are constants: plane
    /// by plane with 8 or (AVX-512) 16 output columns a step, or over blocks of 8 or 16
    /// channels (narrow planes fill vectors of columns badly).
    fn depthwise_plan(
        &mut self,
        conv: &Conv,
        window: &crate::conv::Window,
        weights: ValueId,
    ) -> crate::conv::DepthwisePlan {
        use crate::conv::{ChannelBlocked, Depthwise, DepthwisePlan};
        let build = |variant: &str| match variant {
            "columns-16" => DepthwisePlan::Columns(Depthwise::wide(window.clone())),
            v if v.starts_with("channels-") => match ChannelBlocked::new(window.clone()) {
                Some(plan) => DepthwisePlan::Channels(plan),
                None => DepthwisePlan::Columns(Depthwise::new(window.clone())),
            },
            _ => DepthwisePlan::Columns(Depthwise::new(window.clone())),
        };
        let Some(wdata) = self.constant_f32(weights) else { return build("columns-8") };
        let mut candidates = vec!["columns-8".to_string()];
        if cfg!(target_arch = "x86_64") && crate::vmath::isa() == "avx512f" {
            candidates.push("columns-16".into());
        }
        if let Some(blocked) = ChannelBlocked::new(window.clone()) {
            candidates.push(format!("channels-{}", blocked.lanes()));
        }
        if candidates.len() == 1 {
            return build("columns-8");
        }
        let g = window;
        let key = format!(
            "{}x{}x{}x{} k{}x{} s{}x{} p{}x{} threads={}",
            conv.xs[0],
            conv.xs[1],
            g.h,
            g.w,
            g.kernel[0],
            g.kernel[1],
            g.strides[0],
            g.strides[1],
            g.pads[0],
            g.pads[1],
            crate::workers::threads()
        );
        let names: Vec<&str> = candidates.iter().map(String::as_str).collect();
        let choice = crate::variants::choose("depthwise", &key, &names, |variant| {
            probe(&Conv { depthwise: Some(build(variant)), ..conv.clone_geometry() }, wdata)
        });
        *self.info.variants.entry(format!("depthwise: {choice}")).or_default() += 1;
        build(&choice)
    }

    /// A conv2d / matmul / gemm with its epilogue `ops[1..]`.
    pub(super) fn anchor(&mut self, ops: &[OpId]) -> Result<Step, String> {
        let m = self.module.clone();
        let anchor = ops[0];
        let o = m.op(anchor);
        let out = m.op(*ops.last().unwrap()).result();
        let acc = o.result();
        let out_t = tensor_of(&m, out)?;
        let os = shape(&out_t);
        // The epilogue: gemm's alpha/beta/c first, then the ops; input 0 is the accumulator.
        let mut b = ProgramBuilder::default();
        let mut prefix_result = b.input(acc);
        if o.name() == names::GEMM {
            let alpha = o.float_attr("alpha") as f32;
            let beta = o.float_attr("beta") as f32;
            if alpha != 1.0 {
                let k = b.push(Ew::Const(alpha));
                prefix_result = b.push(Ew::Mul(prefix_result, k));
            }
            if let Some(&c) = o.operands().get(2) {
                let mut ci = b.input(c);
                if beta != 1.0 {
                    let k = b.push(Ew::Const(beta));
                    ci = b.push(Ew::Mul(ci, k));
                }
                prefix_result = b.push(Ew::Add(prefix_result, ci));
            }
        }
        // A quantized convolution adds a constant bias in its kernel.
        let tile_bias = (o.name() == names::QUANTIZED_CONV2D)
            .then(|| conv_bias(&m, anchor))
            .flatten()
            .and_then(|v| constant_literal(&m, *self.outer.get(&v).unwrap_or(&v)))
            .map(|l| l.to_f64().iter().map(|&b| b as f32).collect::<Vec<f32>>());
        if is_conv(o.name()) && tile_bias.is_none() {
            if let Some(bias) = conv_bias(&m, anchor) {
                let bi = b.input(bias);
                prefix_result = b.push(Ew::Add(prefix_result, bi));
            }
        }
        // The epilogue ops read the (scaled, biased) accumulator for the anchor's result.
        b.index.insert(acc, prefix_result);
        for &op in &ops[1..] {
            b.op(&m, op)?;
        }
        let (mut prog, inputs, index) = (b.prog, b.inputs, b.index);
        let result = *index.get(&out).unwrap_or(&prefix_result);
        round_trips_to_grid(&mut prog, result);
        // ... and rounds its result to the next quantize's grid when that comes first.
        let mut tile_grid = None;
        let integer_anchor = o.name() == names::QUANTIZED_MATMUL
            || (o.name() == names::QUANTIZED_CONV2D && (tile_bias.is_some() || conv_bias(&m, anchor).is_none()));
        if integer_anchor {
            let readers: Vec<usize> =
                (0..prog.len()).filter(|&j| prog[j].operands().contains(&prefix_result)).collect();
            if let ([j], true) = (readers.as_slice(), prog[prefix_result as usize] == Ew::Input(0)) {
                if let Ew::Act(Activation::RoundToGrid { scale, lo, hi }, _) = prog[*j] {
                    tile_grid = Some(crate::conv::int8::Grid { scale, lo, hi });
                    prog[*j] = Ew::Input(0);
                }
            }
        }
        // 2-D view of the output: conv [N, O, H, W] -> per (n, group) [O/g, H*W]; matmul
        // [..., M, N] -> per batch [M, N].
        let conv = is_conv(o.name());
        let full: Vec<Vec<i64>> = inputs
            .iter()
            .map(|&v| {
                let s = shape(&tensor_of(&m, v)?);
                let aligned = if conv && v != acc && (is_conv_bias(&m, anchor, v) || is_channel_param(&m, ops, v)) {
                    let mut a = vec![1u64; os.len()];
                    a[1] = s.iter().product();
                    a
                } else {
                    s
                };
                Ok(broadcast_strides(&aligned, &os))
            })
            .collect::<Result<_, String>>()?;
        let r = os.len();
        let two_d: Vec<(i64, i64)> = full
            .iter()
            .map(|s| if conv { (s[1], hw_col_stride(s, &os).unwrap_or(s[3])) } else { (s[r - 2], s[r - 1]) })
            .collect();
        let ldc = if conv { (os[2] * os[3]) as i64 } else { os[r - 1] as i64 };
        let mut strides = two_d.clone();
        strides[0] = (ldc, 1);
        let conv_plan = if conv { Some(self.conv_plan(&m, anchor, &os, (tile_bias, tile_grid))?) } else { None };
        // The micro-kernel (or the depthwise or Winograd output loop) applies the epilogue's
        // head in registers; the latter two take a bias by channel only, and no scale.
        let by_channel = conv_plan.as_ref().is_some_and(|c| c.depthwise.is_some() || c.winograd.is_some());
        let integer = conv_plan.as_ref().is_some_and(|c| c.int8.is_some()) || o.name() == names::QUANTIZED_MATMUL;
        let split = post::split(&prog, result, &strides).filter(|_| !integer).filter(|(head, _)| {
            !by_channel || (head.scale == 1.0 && head.bias.is_none_or(|b| b.per_row) && head.residual.is_none())
        });
        let (head, mut prog, mut result) = match split {
            Some((head, Some(rest))) => (Some(head), rest, result),
            Some((head, None)) => (Some(head), vec![Ew::Input(0)], 0),
            None => (None, prog, result),
        };
        // Activations that end the epilogue run at full width on each finished block.
        let acts = take_trailing_activations(&mut prog, &mut result);
        if !acts.is_empty() {
            *self.info.native_steps.entry(format!("vmath {}", crate::vmath::isa())).or_default() += 1;
        }
        let program = Elementwise { ops: prog, result, strides, out_row_stride: ldc };
        let epilogue =
            if program.ops[result as usize] != Ew::Input(0) { Some(self.jit.compile(&program)?) } else { None };
        if epilogue.is_some() {
            self.info.jit_functions += 1;
        }
        let extra: Vec<(Loc, Vec<i64>)> =
            inputs.iter().zip(&full).skip(1).map(|(v, s)| (self.locs[v], s.clone())).collect();
        let extra_2d: Vec<(i64, i64)> = two_d[1..].to_vec();
        let out_loc = self.locs[&out];
        let operand = |i: usize| -> Result<(Loc, Vec<u64>), String> {
            let v = o.operands()[i];
            Ok((self.locs[&v], shape(&tensor_of(&m, v)?)))
        };
        let apply = Epilogue { head, f: epilogue, acts, extra, extra_2d };
        match o.name() {
            names::CONV2D | names::QUANTIZED_CONV2D => {
                let conv = conv_plan.expect("planned above");
                let (x, w) = (self.locs[&o.operands()[0]], self.locs[&o.operands()[1]]);
                Ok(Box::new(move |base| {
                    let (x, w, y) = (
                        resolve(x, base) as *const f32,
                        resolve(w, base) as *const f32,
                        resolve(out_loc, base) as *mut f32,
                    );
                    // SAFETY: the locations hold tensors of the shapes the plan checked.
                    unsafe { conv.run(x, w, y, &apply, base) };
                    Ok(())
                }))
            }
            names::QUANTIZED_MATMUL => {
                self.info.gemm_steps += 1;
                let (a, as_) = operand(0)?;
                let plan = self.int8_matrix_plan(&m, anchor, tile_grid)?;
                *self.info.native_steps.entry(format!("int8 matmul {}", plan.isa)).or_default() += 1;
                let (k, n) = (as_[as_.len() - 1] as usize, os[r - 1] as usize);
                let batch: Vec<u64> = os[..r - 2].to_vec();
                // One product over every row when the epilogue's inputs chain like the rows.
                let rows_chain = |s: &Vec<i64>| (0..r.saturating_sub(2)).all(|d| s[d] == s[d + 1] * os[d + 1] as i64);
                let fold = full.iter().skip(1).all(rows_chain);
                let (batch, rows) = if fold {
                    (Vec::new(), os[..r - 1].iter().product::<u64>() as usize)
                } else {
                    (batch, os[r - 2] as usize)
                };
                Ok(Box::new(move |base| {
                    let (a, y) = (resolve(a, base) as *const f32, resolve(out_loc, base) as *mut f32);
                    let mut i = 0usize;
                    for_each_index(&batch, |idx| {
                        let dims: Vec<(usize, usize)> = idx.iter().enumerate().map(|(d, &x)| (x as usize, d)).collect();
                        let offsets = apply.offsets(&dims);
                        let (yb, shared) = (Shared(unsafe { y.add(i * rows * n) }), Shared(base));
                        // SAFETY: a and y hold the batch's rows at the planned widths.
                        unsafe {
                            let ab = std::slice::from_raw_parts(a.add(i * rows * k), rows * k);
                            plan.run_matrix(ab, rows, yb.get(), &|r0, rows, c0, cols| {
                                apply.apply(yb.get(), n, &offsets, (r0, rows, c0, cols), shared.get())
                            });
                        }
                        i += 1;
                    });
                    Ok(())
                }))
            }
            _ => {
                self.info.gemm_steps += 1;
                let (a, as_) = operand(0)?;
                let (b, bs) = operand(1)?;
                let gemm = o.name() == names::GEMM;
                let ta = gemm && o.bool_attr("trans_a");
                let tb = gemm && o.bool_attr("trans_b");
                let mut mm = MatMul::new(&as_, &bs, &os, ta, tb)?;
                // A weight shared by every batch entry and a dense activation: one GEMM over
                // all rows (ViT's [197, 1, 768] x [768, 2304] is one 197-row product, not 197
                // one-row products), when the epilogue's inputs are laid out the same way.
                let rank = os.len();
                let rows_chain =
                    |s: &Vec<i64>| (0..rank.saturating_sub(2)).all(|d| s[d] == s[d + 1] * os[d + 1] as i64);
                if !gemm && !ta && as_.len() == rank && bs.len() == 2 && rank > 2 && full.iter().skip(1).all(rows_chain)
                {
                    mm = mm.fold_batch();
                }
                if let (Some(bdata), 2) = (self.constant_f32(o.operands()[1]), bs.len()) {
                    let view = View::strided(bdata, (mm.k, mm.n), mm.b_strides);
                    mm.packed_b = Some(crate::gemm::Packed::b(&view));
                }
                Ok(Box::new(move |base| {
                    let (a, b, c) = (
                        resolve(a, base) as *const f32,
                        resolve(b, base) as *const f32,
                        resolve(out_loc, base) as *mut f32,
                    );
                    // SAFETY: as above.
                    unsafe { mm.run(a, b, c, &apply, base) };
                    Ok(())
                }))
            }
        }
    }
}

/// Rows and columns of an output block: (first row, rows, first column, columns).
pub(super) type Block = (usize, usize, usize, usize);

/// A compiled epilogue and where its extra inputs are.
pub(super) struct Epilogue {
    /// What the micro-kernel applies before `f` (the head of the fused ops).
    head: Option<post::Head>,
    f: Option<EwFn>,
    /// Activations applied after `f` at full width, row by row of the block.
    acts: Vec<Activation>,
    /// Extra inputs: location and per-dim strides over the anchor's output.
    extra: Vec<(Loc, Vec<i64>)>,
    extra_2d: Vec<(i64, i64)>,
}

// SAFETY: an epilogue only reads its extra inputs (weights, activations finished earlier) and
// writes the block it is given; workers get disjoint blocks.
unsafe impl Sync for Epilogue {}

impl Epilogue {
    /// Applies to `block` = (r0, rows, c0, cols) of the 2-D output at `c` (row stride `ldc`,
    /// also fixed at compile time), whose extra inputs start at element `offsets`.
    pub(super) unsafe fn apply(&self, c: *mut f32, ldc: usize, offsets: &[i64], block: Block, base: *mut u8) {
        let (r0, rows, c0, cols) = block;
        let start = c.add(r0 * ldc + c0);
        if let Some(f) = self.f {
            self.run_program(f, start, offsets, block, base);
        }
        if self.acts.is_empty() {
            return;
        }
        if cols == ldc {
            // Whole rows: one run (a product with one column has as many rows as elements).
            return crate::vmath::apply_raw(&self.acts, start, start, rows * cols);
        }
        for r in 0..rows {
            let row = start.add(r * ldc);
            crate::vmath::apply_raw(&self.acts, row, row, cols);
        }
    }

    /// The JIT part of the epilogue on `block`, whose first element is at `start`.
    unsafe fn run_program(&self, f: EwFn, start: *mut f32, offsets: &[i64], block: Block, base: *mut u8) {
        let (r0, rows, c0, cols) = block;
        let mut ptrs: Vec<*mut f32> = Vec::with_capacity(self.extra.len() + 2);
        ptrs.push(start);
        for (((loc, _), (rs, cs)), off) in self.extra.iter().zip(&self.extra_2d).zip(offsets) {
            let p = resolve(*loc, base) as *mut f32;
            ptrs.push(p.offset((off + r0 as i64 * rs + c0 as i64 * cs) as isize));
        }
        ptrs.push(start);
        f(ptrs.as_ptr(), rows as i64, cols as i64);
    }

    /// The head for a `rows x cols` block of C whose extra inputs start at `offsets`.
    pub(super) unsafe fn post(&self, offsets: &[i64], base: *mut u8, rows: usize, cols: usize) -> Post<'_> {
        let Some(head) = self.head else { return Post::NONE };
        let bias = match head.bias {
            None => Bias::None,
            Some(b) => {
                let p = (resolve(self.extra[b.input - 1].0, base) as *const f32).offset(offsets[b.input - 1] as isize);
                if b.per_row {
                    Bias::Rows(std::slice::from_raw_parts(p, rows))
                } else {
                    Bias::Columns(std::slice::from_raw_parts(p, cols))
                }
            }
        };
        let residual = head.residual.map(|i| {
            let p = (resolve(self.extra[i - 1].0, base) as *const f32).offset(offsets[i - 1] as isize);
            let ld = self.extra_2d[i - 1].0 as usize;
            crate::gemm::Residual { data: std::slice::from_raw_parts(p, (rows.max(1) - 1) * ld + cols), ld }
        });
        Post { scale: head.scale, bias, residual, lo: head.lo, hi: head.hi }
    }

    /// Where each extra input starts for the block at `dims`: (index, dimension) pairs.
    pub(super) fn offsets(&self, dims: &[(usize, usize)]) -> Vec<i64> {
        let mut out = Vec::new();
        self.offsets_into(dims, &mut out);
        out
    }

    /// [`Epilogue::offsets`] into a reused buffer (per depthwise plane).
    pub(super) fn offsets_into(&self, dims: &[(usize, usize)], out: &mut Vec<i64>) {
        out.clear();
        out.extend(self.extra.iter().map(|(_, s)| dims.iter().map(|&(i, d)| i as i64 * s[d]).sum::<i64>()));
    }
}

pub(super) struct Conv {
    xs: Vec<usize>,
    ws: Vec<usize>,
    os: Vec<usize>,
    group: usize,
    strides: Vec<i64>,
    pads: Vec<i64>,
    dilations: Vec<i64>,
    /// One input channel per group and one output channel per group: a direct loop.
    depthwise: Option<crate::conv::DepthwisePlan>,
    /// Per group, the weights packed at compile time (when they are constants).
    packed: Vec<crate::gemm::Packed>,
    /// A 3x3 stride-1 convolution with constant weights: Winograd F(2x2, 3x3) and its scratch.
    winograd: Option<(crate::conv::winograd::Winograd, Loc)>,
    /// Pack the image block by block even where the product could read it in place.
    pack_b: bool,
    /// A quantized convolution: integer products.
    int8: Option<crate::conv::int8::Int8Conv>,
}

impl Conv {
    /// The same convolution with no plan (no packed weights, no Winograd, no depthwise loop).
    fn clone_geometry(&self) -> Conv {
        Conv {
            xs: self.xs.clone(),
            ws: self.ws.clone(),
            os: self.os.clone(),
            group: self.group,
            strides: self.strides.clone(),
            pads: self.pads.clone(),
            dilations: self.dilations.clone(),
            depthwise: None,
            packed: Vec::new(),
            winograd: None,
            pack_b: false,
            int8: None,
        }
    }

    pub(super) fn is_pointwise(&self) -> bool {
        self.ws[2] == 1 && self.ws[3] == 1 && self.strides[..2] == [1, 1] && self.pads.iter().all(|&p| p == 0)
    }

    /// The window over one input plane.
    pub(super) fn window(&self) -> crate::conv::Window {
        crate::conv::Window {
            h: self.xs[2],
            w: self.xs[3],
            ho: self.os[2],
            wo: self.os[3],
            kernel: [self.ws[2], self.ws[3]],
            strides: [self.strides[0] as usize, self.strides[1] as usize],
            pads: [self.pads[0] as usize, self.pads[1] as usize],
            dilations: [self.dilations[0] as usize, self.dilations[1] as usize],
        }
    }

    pub(super) unsafe fn run(&self, x: *const f32, w: *const f32, y: *mut f32, ep: &Epilogue, base: *mut u8) {
        let (n, c, h, wd) = (self.xs[0], self.xs[1], self.xs[2], self.xs[3]);
        let (o, ho, wo) = (self.os[1], self.os[2], self.os[3]);
        let (kh, kw) = (self.ws[2], self.ws[3]);
        let (cg, og) = (c / self.group, o / self.group);
        let hw = ho * wo;
        let y_len = n * o * hw;
        let ys = std::slice::from_raw_parts_mut(y, y_len);
        if let Some(plan) = &self.int8 {
            let shared = Shared(base);
            for b in 0..n {
                let offsets = ep.offsets(&[(b, 0)]);
                let image = std::slice::from_raw_parts(x.add(b * c * h * wd), c * h * wd);
                let out = Shared(y.add(b * o * hw));
                plan.run(image, out.get(), &|c0, rows, col, cols| {
                    ep.apply(out.get(), hw, &offsets, (c0, rows, col, cols), shared.get())
                });
            }
            return;
        }
        match &self.depthwise {
            Some(crate::conv::DepthwisePlan::Columns(plan)) => {
                let (xs, ws, ys, shared) = (Shared(x as *mut f32), Shared(w as *mut f32), Shared(y), Shared(base));
                // Channels split over the workers; each plane's epilogue runs on it while it is hot.
                crate::workers::parallel_ranges(n * c, 8, |planes| {
                    let (mut scratch, mut offsets) = (Vec::new(), Vec::new());
                    for plane in planes {
                        let (b, g) = (plane / c, plane % c);
                        // SAFETY: plane `plane` of x and y and channel g's taps lie inside the
                        // tensors the plan checked; workers write disjoint planes.
                        unsafe {
                            let wk = std::slice::from_raw_parts(ws.get().add(g * kh * kw), kh * kw);
                            let xin = std::slice::from_raw_parts(xs.get().add(plane * h * wd), h * wd);
                            let out = std::slice::from_raw_parts_mut(ys.get().add(plane * hw), hw);
                            ep.offsets_into(&[(b, 0), (g, 1)], &mut offsets);
                            let post = ep.post(&offsets, shared.get(), 1, hw);
                            plan.plane(xin, wk, out, &post, &mut scratch);
                            ep.apply(ys.get().add(plane * hw), hw, &offsets, (0, 1, 0, hw), shared.get());
                        }
                    }
                });
                return;
            }
            Some(crate::conv::DepthwisePlan::Channels(plan)) => {
                let (xs, ws, ys, shared) = (Shared(x as *mut f32), Shared(w as *mut f32), Shared(y), Shared(base));
                let lanes = plan.lanes();
                let blocks = c.div_ceil(lanes);
                // Blocks of channels split over the workers; the rest of the epilogue runs on
                // each block after it.
                crate::workers::parallel_ranges(n * blocks, 1, |range| {
                    let mut bias = vec![0.0f32; lanes];
                    for block in range {
                        let (b, c0) = (block / blocks, block % blocks * lanes);
                        let channels = lanes.min(c - c0);
                        let offsets = ep.offsets(&[(b, 0)]);
                        // SAFETY: the block's planes of x and y and its channels' taps lie inside
                        // the tensors the plan checked; workers write disjoint planes.
                        unsafe {
                            let post = ep.post(&offsets, shared.get(), c, hw);
                            for (i, b_i) in bias.iter_mut().enumerate().take(channels) {
                                *b_i = post.bias_at(c0 + i, 0);
                            }
                            let first = b * c + c0;
                            let xin = std::slice::from_raw_parts(xs.get().add(first * h * wd), channels * h * wd);
                            let wk = std::slice::from_raw_parts(ws.get().add(c0 * kh * kw), channels * kh * kw);
                            let out = std::slice::from_raw_parts_mut(ys.get().add(first * hw), channels * hw);
                            plan.block(xin, wk, out, channels, &bias, (post.lo, post.hi));
                            ep.apply(ys.get().add(b * c * hw), hw, &offsets, (c0, channels, 0, hw), shared.get());
                        }
                    }
                });
                return;
            }
            None => {}
        }
        if let Some((plan, scratch)) = &self.winograd {
            let scratch = resolve(*scratch, base) as *mut f32;
            let shared = Shared(base);
            for b in 0..n {
                let (xb, yb) = (x.add(b * c * h * wd), y.add(b * o * hw));
                let offsets = ep.offsets(&[(b, 0)]);
                let out = Shared(yb);
                // SAFETY: one image of x and y, and the scratch the plan was sized for.
                let post = ep.post(&offsets, base, o, hw);
                plan.run(xb, yb, scratch, &post, &|o0, o1| {
                    ep.apply(out.get(), hw, &offsets, (o0, o1 - o0, 0, hw), shared.get())
                });
            }
            return;
        }
        for b in 0..n {
            for g in 0..self.group {
                let xg = x.add((b * c + g * cg) * h * wd);
                let y_off = (b * o + g * og) * hw;
                let offsets = ep.offsets(&[(b, 0), (g * og, 1)]);
                let k = cg * kh * kw;
                let wv = View::row_major(std::slice::from_raw_parts(w.add(g * og * k), og * k), og, k);
                let pre = crate::gemm::Prepacked { a: self.packed.get(g), b: None, pack_b: self.pack_b };
                let image = std::slice::from_raw_parts(xg, cg * h * wd);
                let cblock = &mut ys[y_off..y_off + og * hw];
                let (cptr, shared) = (Shared(cblock.as_mut_ptr()), Shared(base));
                let epilogue =
                    |r0, rows, c0, cols| ep.apply(cptr.get(), hw, &offsets, (r0, rows, c0, cols), shared.get());
                let post = ep.post(&offsets, base, og, hw);
                if self.is_pointwise() {
                    let bv = View { data: image, rows: cg, cols: hw, row_stride: hw, col_stride: 1 };
                    sgemm_prepacked(&wv, &bv, pre, cblock, hw, false, post, &epilogue);
                } else {
                    let im = crate::conv::Im2col { x: image, channels: cg, window: self.window() };
                    sgemm_prepacked(&wv, &im, pre, cblock, hw, false, post, &epilogue);
                }
            }
        }
    }
}

/// A batched matmul (numpy broadcasting over batch dimensions) or a gemm.
pub(super) struct MatMul {
    m: usize,
    k: usize,
    n: usize,
    a_strides: (usize, usize),
    b_strides: (usize, usize),
    batch: Vec<u64>,
    a_batch: Vec<i64>,
    b_batch: Vec<i64>,
    a_len: usize,
    b_len: usize,
    /// B packed at compile time (a constant without batch dimensions).
    packed_b: Option<crate::gemm::Packed>,
}

impl MatMul {
    pub(super) fn new(a: &[u64], b: &[u64], out: &[u64], ta: bool, tb: bool) -> Result<MatMul, String> {
        let a2: Vec<u64> = if a.len() == 1 { vec![1, a[0]] } else { a.to_vec() };
        let b2: Vec<u64> = if b.len() == 1 { vec![b[0], 1] } else { b.to_vec() };
        let (ar, br) = (a2.len(), b2.len());
        let (m, k) = if ta { (a2[ar - 1], a2[ar - 2]) } else { (a2[ar - 2], a2[ar - 1]) };
        let n = if tb { b2[br - 2] } else { b2[br - 1] };
        let a_strides = if ta { (1, m as usize) } else { (k as usize, 1) };
        let b_strides = if tb { (1, k as usize) } else { (n as usize, 1) };
        let batch_rank = out.len().saturating_sub(if a.len() > 1 && b.len() > 1 { 2 } else { 1 });
        let batch: Vec<u64> = out[..batch_rank].to_vec();
        let batch_strides = |s: &[u64]| {
            let mut full = broadcast_strides(&s[..s.len() - 2], &batch);
            let mat = (s[s.len() - 1] * s[s.len() - 2]) as i64;
            full.iter_mut().for_each(|x| *x *= mat);
            full
        };
        Ok(MatMul {
            m: m as usize,
            k: k as usize,
            n: n as usize,
            a_strides,
            b_strides,
            a_batch: batch_strides(&a2),
            b_batch: batch_strides(&b2),
            batch,
            a_len: (m * k) as usize,
            b_len: (k * n) as usize,
            packed_b: None,
        })
    }

    /// Batch dimensions folded into M (valid when A is dense and B has no batch dimensions).
    pub(super) fn fold_batch(self) -> MatMul {
        let rows = self.m * self.batch.iter().product::<u64>() as usize;
        MatMul { m: rows, a_len: rows * self.k, batch: Vec::new(), a_batch: Vec::new(), b_batch: Vec::new(), ..self }
    }

    pub(super) unsafe fn run(&self, a: *const f32, b: *const f32, c: *mut f32, ep: &Epilogue, base: *mut u8) {
        let (m, k, n) = (self.m, self.k, self.n);
        let mut i = 0usize;
        for_each_index(&self.batch, |idx| {
            let ao = element_offset(idx, &self.a_batch);
            let bo = element_offset(idx, &self.b_batch);
            let av =
                View::strided(std::slice::from_raw_parts(a.offset(ao as isize), self.a_len), (m, k), self.a_strides);
            let bv =
                View::strided(std::slice::from_raw_parts(b.offset(bo as isize), self.b_len), (k, n), self.b_strides);
            let cs = std::slice::from_raw_parts_mut(c.add(i * m * n), m * n);
            let (cptr, shared) = (Shared(cs.as_mut_ptr()), Shared(base));
            let dims: Vec<(usize, usize)> = idx.iter().enumerate().map(|(d, &x)| (x as usize, d)).collect();
            let offsets = ep.offsets(&dims);
            let pre = crate::gemm::Prepacked { a: None, b: self.packed_b.as_ref(), pack_b: false };
            let post = ep.post(&offsets, base, m, n);
            sgemm_prepacked(&av, &bv, pre, cs, n, false, post, &|r0, rows, c0, cols| {
                ep.apply(cptr.get(), n, &offsets, (r0, rows, c0, cols), shared.get())
            });
            i += 1;
        });
    }
}

pub(super) fn is_anchor(m: &Module, op: OpId) -> bool {
    let o = m.op(op);
    if o.name() == names::QUANTIZED_CONV2D {
        return m.value_type(o.operands()[0]).as_tensor().and_then(|t| t.static_shape()).is_some_and(|s| s.len() == 4);
    }
    if o.name() == names::QUANTIZED_MATMUL {
        return m.value_type(o.operands()[0]).as_tensor().and_then(|t| t.static_shape()).is_some_and(|s| s.len() >= 2);
    }
    let f32s = o.operands().iter().chain(o.results()).all(|&v| f32_value(m, v));
    f32s && match o.name() {
        names::CONV2D => {
            m.value_type(o.operands()[0]).as_tensor().and_then(|t| t.static_shape()).is_some_and(|s| s.len() == 4)
        }
        names::MATMUL => o
            .operands()
            .iter()
            .all(|&v| m.value_type(v).as_tensor().and_then(|t| t.shape.as_ref().map(Vec::len)).is_some_and(|r| r >= 2)),
        names::GEMM => true,
        _ => false,
    }
}

/// Whether `op`'s extra operands can be addressed in the anchor's 2-D output view.
pub(super) fn epilogue_mergeable(m: &Module, anchor: OpId, op: OpId) -> bool {
    if !is_conv(m.op(anchor).name()) {
        return true;
    }
    let os = shape(m.value_type(m.op(anchor).result()).as_tensor().unwrap());
    m.op(op).operands().iter().all(|&v| {
        let s = shape(m.value_type(v).as_tensor().unwrap());
        let aligned = if is_channel_param(m, &[op], v) {
            let mut a = vec![1u64; os.len()];
            a[1] = s.iter().product();
            a
        } else {
            s
        };
        let st = broadcast_strides(&aligned, &os);
        hw_col_stride(&st, &os).is_some()
    })
}

/// The stride of the merged H x W column index of a conv output view, for an input with
/// per-dimension strides `s` over the output `os` (NCHW); `None` when H and W do not merge.
pub(super) fn hw_col_stride(s: &[i64], os: &[u64]) -> Option<i64> {
    if os[3] == 1 {
        Some(s[2])
    } else if os[2] == 1 || s[2] == s[3] * os[3] as i64 {
        Some(s[3])
    } else {
        None
    }
}

pub(super) fn is_conv_bias(m: &Module, conv: OpId, v: ValueId) -> bool {
    conv_bias(m, conv) == Some(v)
}

/// Whether `name` is a convolution the anchor runs (NCHW output, per-channel epilogue).
fn is_conv(name: &str) -> bool {
    name == names::CONV2D || name == names::QUANTIZED_CONV2D
}

/// A convolution's bias operand.
fn conv_bias(m: &Module, conv: OpId) -> Option<ValueId> {
    smelt_compiler::dialect::OpView::new(m, conv).operand("bias")
}

/// An input's 8-bit grid as the integer kernels take it: (scale, zero point, whether int8).
fn input_grid(scale: &smelt_compiler::literal::Literal, zero: &smelt_compiler::literal::Literal) -> (f32, i64, bool) {
    (scale.to_f64()[0] as f32, zero.to_f64()[0] as i64, zero.element == smelt_compiler::ElementType::I8)
}

/// The value of `v` when it is a constant.
fn constant_literal(m: &Module, v: ValueId) -> Option<smelt_compiler::literal::Literal> {
    let d = m.defining_op(v).filter(|&d| m.op(d).name() == names::CONSTANT)?;
    match m.op(d).attr("value")? {
        smelt_compiler::Attribute::Dense(dense) => smelt_compiler::literal::Literal::decode(dense, &m.resources),
        _ => None,
    }
}

/// Seconds one run of `conv` takes, with no epilogue, on a dummy image: what
/// [`crate::variants::choose`] compares.
fn probe(conv: &Conv, wdata: &[f32]) -> f64 {
    let (n, c, h, w) = (conv.xs[0], conv.xs[1], conv.xs[2], conv.xs[3]);
    let x = vec![0.5f32; n * c * h * w];
    let mut y = vec![0.0f32; n * conv.os[1] * conv.os[2] * conv.os[3]];
    let none = Epilogue { head: None, f: None, acts: Vec::new(), extra: Vec::new(), extra_2d: Vec::new() };
    let start = std::time::Instant::now();
    // SAFETY: x, the weights and y have the convolution's shapes; a Winograd scratch is the
    // plan's.
    unsafe { conv.run(x.as_ptr(), wdata.as_ptr(), y.as_mut_ptr(), &none, std::ptr::null_mut()) };
    start.elapsed().as_secs_f64()
}

/// `strides` bounded on every axis whose output has one window: there the stride is never
/// taken, and one past the padded input keeps the output at one window while a hostile stride
/// (2^62) stays out of the kernels' index arithmetic. Spatial axes: `input`, `out`, `kernel`,
/// `dilations` per axis; `pads` begins then ends.
pub(super) fn bounded_strides(
    strides: &[i64],
    input: &[u64],
    out: &[u64],
    kernel: &[u64],
    dilations: &[i64],
    pads: &[i64],
) -> Vec<i64> {
    let axes = strides.len();
    (0..axes)
        .map(|i| {
            let stride = strides[i];
            if out.get(i) != Some(&1) {
                return stride;
            }
            let span = (kernel[i] as i64 - 1).saturating_mul(dilations.get(i).copied().unwrap_or(1)) + 1;
            let padded = (input[i] as i64).saturating_add(pads[i]).saturating_add(pads[i + axes]);
            stride.min(padded.saturating_sub(span).max(0) + 1).max(1)
        })
        .collect()
}
