//! Lowering `@main` into steps: the memory plan (liveness over alias roots), constants, and
//! the choice of each op's or kernel segment's step: an anchor with its epilogue, an
//! elementwise program, a native routine, or the reference semantics.

use super::anchor::{epilogue_mergeable, is_anchor};
use super::arena::Arena;
use super::elementwise::{broadcast_chain, ew_lowerable};
use super::*;

impl Executable {
    /// Compiles `@main` (or the only function) of `module`.
    pub fn compile(module: Module) -> Result<Executable, ExecError> {
        let module = Arc::new(module);
        let m = &*module;
        let func = smelt_compiler::signature::main_function(m).map_err(ExecError::Module)?;
        let entry = m.body_of(func);
        let ops: Vec<OpId> = m.block_ops(entry).collect();
        let ret = *ops.last().ok_or_else(|| ExecError::Module("@main is empty".into()))?;
        let micro = crate::gemm::micro_kernel().name;
        let mut lower = Lower {
            module: module.clone(),
            jit: Jit::new().map_err(ExecError::Jit)?,
            locs: HashMap::new(),
            owned: Vec::new(),
            info: ExecInfo {
                micro_kernel: micro.to_string(),
                kernel_isa: crate::vmath::isa().to_string(),
                ..ExecInfo::default()
            },
            arena: Arena::default(),
            temps: Vec::new(),
            outer: HashMap::new(),
            views: views::strided_views(m, &ops),
        };
        lower.info.strided_views = lower.views.len();

        // Liveness over alias roots: the index of the op that reads a value last.
        let mut root: HashMap<ValueId, ValueId> = HashMap::new();
        let root_of = |root: &HashMap<ValueId, ValueId>, v: ValueId| *root.get(&v).unwrap_or(&v);
        let mut last_use: HashMap<ValueId, usize> = HashMap::new();
        for (i, &op) in ops.iter().enumerate() {
            let o = m.op(op);
            for &v in o.operands() {
                last_use.insert(root_of(&root, v), if op == ret { usize::MAX } else { i });
            }
            if views::runs_nothing(m, op, &lower.views) {
                root.insert(o.result(), root_of(&root, o.operands()[0]));
            }
        }

        // Errors name the op they are about, and where it came from.
        let lowering =
            |op: OpId, reason: String| ExecError::Lower { op: m.op(op).name(), loc: m.op(op).loc.clone(), reason };
        let mut inputs = Vec::new();
        let input_names = smelt_compiler::signature::input_names(m, func);
        for (&a, name) in m.block(entry).args().iter().zip(&input_names) {
            let t = tensor_of(m, a).map_err(|reason| ExecError::Input(format!("input '{name}': {reason}")))?;
            let at = lower.arena.alloc(byte_size(&t));
            lower.locs.insert(a, Loc::Arena(at));
            inputs.push((at, t));
        }
        let mut steps = Vec::new();
        for (i, &op) in ops.iter().enumerate() {
            let o = m.op(op);
            let aliased_slice = views::contiguous_slice(m, op);
            match o.name() {
                names::RETURN => {}
                _ if o.results().first().is_some_and(|r| lower.views.contains_key(r)) => {}
                names::CONSTANT => {
                    let loc = lower.constant(op).map_err(|reason| lowering(op, reason))?;
                    lower.locs.insert(o.result(), loc);
                }
                _ if is_view(o) => {
                    let loc = lower.locs[&o.operands()[0]];
                    lower.locs.insert(o.result(), loc);
                }
                _ if aliased_slice.is_some() => {
                    let bytes = aliased_slice.unwrap_or_default() as usize;
                    let loc = match lower.locs[&o.operands()[0]] {
                        Loc::Arena(at) => Loc::Arena(at + bytes),
                        Loc::Raw(p) => Loc::Raw(p.wrapping_add(bytes)),
                    };
                    lower.locs.insert(o.result(), loc);
                }
                _ => {
                    for &r in o.results() {
                        let t = tensor_of(m, r).map_err(|reason| lowering(op, reason))?;
                        let at = lower.arena.alloc(byte_size(&t));
                        lower.locs.insert(r, Loc::Arena(at));
                    }
                    let step = lower.lower_op(op).map_err(|reason| lowering(op, reason))?;
                    let info = StepInfo {
                        name: o.attr("pattern").and_then(|p| p.as_str()).unwrap_or(o.name()).to_string(),
                        label: label_of(&o.loc),
                        predicted_us: o.attr("predicted_latency_us").and_then(Attribute::as_float),
                        op_index: i,
                    };
                    steps.extend(step.into_iter().map(|s| (info.clone(), s)));
                    for at in std::mem::take(&mut lower.temps) {
                        lower.arena.free(at);
                    }
                }
            }
            // Free what this op read last (after its results were placed: no overlap).
            for &v in o.operands() {
                let r = root_of(&root, v);
                if last_use.get(&r) == Some(&i) {
                    if let Some(Loc::Arena(at)) = lower.locs.get(&r) {
                        if m.defining_op(r).is_none_or(|d| m.op(d).name() != names::CONSTANT) {
                            lower.arena.free(*at);
                        }
                    }
                }
            }
        }
        let outputs = m
            .op(ret)
            .operands()
            .iter()
            .map(|v| Ok((lower.locs[v], tensor_of(m, *v).map_err(|reason| lowering(ret, reason))?)))
            .collect::<Result<Vec<_>, ExecError>>()?;
        lower.info.peak_bytes = lower.arena.peak;
        // Results leave as f64 literals beside the arena.
        let returned: u64 = outputs.iter().map(|(_, t)| t.num_elements().unwrap_or(0).saturating_mul(8)).sum();
        let needed = (lower.arena.peak as u64).saturating_add(returned);
        smelt_compiler::memory::check_bytes("the model's live values and results", needed)
            .map_err(ExecError::Module)?;
        lower.info.steps = steps.len();
        let arena = smelt_compiler::memory::Pages::zeroed("the arena of the model's live values", lower.arena.peak)
            .map_err(ExecError::Module)?;
        Ok(Executable { module, steps, arena, inputs, outputs, _owned: lower.owned, _jit: lower.jit, info: lower.info })
    }
}

impl Lower {
    pub(super) fn own(&mut self, bytes: usize) -> Result<*mut u8, String> {
        let b = smelt_compiler::memory::Pages::zeroed("a constant", bytes)?;
        let p = b.as_ptr();
        self.owned.push(b);
        Ok(p)
    }

    pub(super) fn constant(&mut self, op: OpId) -> Result<Loc, String> {
        let m = self.module.clone();
        let Some(Attribute::Dense(d)) = m.op(op).attr("value") else { return Err("constant without value".into()) };
        let size = byte_size(&d.ty);
        let bytes: &[u8] = match &d.storage {
            DenseStorage::Inline(b) => b,
            DenseStorage::Resource(h) => m.resources.get(h).ok_or("missing resource")?.bytes(),
        };
        let aligned = (bytes.as_ptr() as usize).is_multiple_of(d.ty.element.byte_size().max(1));
        if bytes.len() == size && aligned {
            // In place: the module's own copy of the weights, read-only.
            return Ok(Loc::Raw(bytes.as_ptr() as *mut u8));
        }
        if bytes.len() == size {
            // Weights inline in a protobuf sit at arbitrary offsets; typed slices need alignment.
            let p = self.own(size)?;
            // SAFETY: `p` has `size` bytes.
            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, size) };
            return Ok(Loc::Raw(p));
        }
        let l = Literal::decode(d, &m.resources).ok_or("constant does not decode")?;
        let p = self.own(size)?;
        write_literal(p, &l);
        Ok(Loc::Raw(p))
    }

    /// The f32 contents of a constant operand, readable at compile time (for packing).
    pub(super) fn constant_f32(&self, v: ValueId) -> Option<&[f32]> {
        let m = &self.module;
        let v = *self.outer.get(&v).unwrap_or(&v);
        let d = m.defining_op(v)?;
        if m.op(d).name() != names::CONSTANT || !f32_value(m, v) {
            return None;
        }
        match self.locs.get(&v)? {
            // SAFETY: constants live as long as the module and the owned buffers, which `self`
            // keeps.
            Loc::Raw(p) => {
                let n = tensor_of(m, v).ok()?.num_elements()? as usize;
                Some(unsafe { std::slice::from_raw_parts(*p as *const f32, n) })
            }
            Loc::Arena(_) => None,
        }
    }

    /// Arena space for the op being lowered only.
    pub(super) fn scratch_bytes(&mut self, bytes: usize) -> Loc {
        let at = self.arena.alloc(bytes);
        self.temps.push(at);
        Loc::Arena(at)
    }

    pub(super) fn scratch(&mut self, t: &TensorType) -> Loc {
        self.scratch_bytes(byte_size(t))
    }

    pub(super) fn lower_op(&mut self, op: OpId) -> Result<Vec<Step>, String> {
        let m = self.module.clone();
        let o = m.op(op);
        if o.name() == names::KERNEL {
            let body = m.body_of(op);
            for (arg, v) in m.block(body).args().iter().zip(o.operands()) {
                let loc = self.locs[v];
                self.locs.insert(*arg, loc);
                self.outer.insert(*arg, *v);
            }
            let ops: Vec<OpId> = m.block_ops(body).filter(|&b| m.op(b).name() != names::YIELD).collect();
            let y = m.block_terminator(body).ok_or("kernel without yield")?;
            let out = m.op(y).operands()[0];
            let loc = self.locs[&o.result()];
            self.locs.insert(out, loc);
            for &b in &ops {
                if m.op(b).name() == names::CONSTANT {
                    let c = self.constant(b)?;
                    self.locs.insert(m.op(b).result(), c);
                }
            }
            let ops: Vec<OpId> = ops.into_iter().filter(|&b| m.op(b).name() != names::CONSTANT).collect();
            return self.lower_sequence(&ops, out);
        }
        self.lower_sequence(&[op], o.results()[0])
    }

    /// Lowers ops (a kernel body, or one op) whose last result is `out` (already placed).
    pub(super) fn lower_sequence(&mut self, ops: &[OpId], out: ValueId) -> Result<Vec<Step>, String> {
        let m = self.module.clone();
        let mut steps = Vec::new();
        let mut i = 0;
        while i < ops.len() {
            let op = ops[i];
            let mut end = i + 1;
            let anchor = is_anchor(&m, op) && self.integer_kernel_runs(&m, op);
            if anchor || ew_lowerable(&m, op) {
                // Extend with elementwise ops that read the previous result and keep its shape.
                // An elementwise chain may also grow into a consumer that broadcasts it: the
                // fused body is then evaluated per element of the larger shape (the kernel
                // recomputes the chain; the extractor chose that).
                while end < ops.len()
                    && ew_lowerable(&m, ops[end])
                    && m.op(ops[end]).operands().contains(&m.op(ops[end - 1]).result())
                    && (m.value_type(m.op(ops[end]).result()) == m.value_type(m.op(op).result())
                        || (!anchor && broadcast_chain(&m, &ops[i..=end])))
                    && (!anchor || epilogue_mergeable(&m, op, ops[end]))
                {
                    end += 1;
                }
            }
            let last = m.op(ops[end - 1]).result();
            for &r in &ops[i..end].iter().flat_map(|&o| m.op(o).results().to_vec()).collect::<Vec<_>>() {
                if !self.locs.contains_key(&r) {
                    let loc = if r == out { self.locs[&out] } else { self.scratch(&tensor_of(&m, r)?) };
                    self.locs.insert(r, loc);
                }
            }
            let _ = last;
            let segment = &ops[i..end];
            let step = if anchor {
                self.anchor(segment)?
            } else if ew_lowerable(&m, op) {
                self.elementwise(segment)?
            } else if let Some(step) = self.native(op)? {
                step
            } else {
                self.reference(op)?
            };
            steps.push(step);
            i = end;
        }
        Ok(steps)
    }

    /// A native routine for `op` (JIT row, pool and copy programs; [`crate::ops`]), when its
    /// types and attributes allow one.
    pub(super) fn native(&mut self, op: OpId) -> Result<Option<Step>, String> {
        if views::native_attention(&self.module, op) {
            // First: its operands may be strided views, which have no location of their own.
            return self.attention(op).map(Some);
        }
        if let Some(step) = self.reduction(op)? {
            return Ok(Some(step));
        }
        if let Some(step) = self.movement(op)? {
            return Ok(Some(step));
        }
        let m = self.module.clone();
        let o = m.op(op);
        if o.results().len() != 1 {
            return Ok(None);
        }
        let out_t = tensor_of(&m, o.result())?;
        let os: Vec<usize> = shape(&out_t).iter().map(|&d| d as usize).collect();
        let out_len: usize = os.iter().product();
        let input = |i: usize| -> Result<(Loc, Vec<usize>, ElementType), String> {
            let v = o.operands()[i];
            let t = tensor_of(&m, v)?;
            Ok((self.locs[&v], shape(&t).iter().map(|&d| d as usize).collect(), t.element))
        };
        let out = self.locs[&o.result()];
        let slice = |p: *mut u8, n: usize| unsafe { std::slice::from_raw_parts(p as *const f32, n) };
        let slice_mut = |p: *mut u8, n: usize| unsafe { std::slice::from_raw_parts_mut(p as *mut f32, n) };
        let step: Step = match o.name() {
            names::GATHER
                if out_t.element.byte_size() == 4
                    && smelt_compiler::dialect::infer::normalize_axis(o.int_attr("axis"), input(0)?.1.len())? == 0 =>
            {
                let (x, xs, _) = input(0)?;
                let (idx, is, ie) = input(1)?;
                if ie != ElementType::I64 || xs.is_empty() {
                    return Ok(None);
                }
                let (rows, row_len) = (xs[0], xs[1..].iter().product::<usize>());
                let n_idx: usize = is.iter().product();
                Box::new(move |base| {
                    let indices = unsafe { std::slice::from_raw_parts(resolve(idx, base) as *const i64, n_idx) };
                    crate::ops::gather_rows(
                        slice(resolve(x, base), rows * row_len),
                        rows,
                        row_len,
                        indices,
                        slice_mut(resolve(out, base), out_len),
                    )
                })
            }
            // Per tensor, with the scale and zero point read at run time (DynamicQuantizeLinear
            // computes them from the data).
            names::QUANTIZE_LINEAR
                if f32_value(&m, o.operands()[0])
                    && f32_value(&m, o.operands()[1])
                    && matches!(out_t.element, ElementType::U8 | ElementType::I8)
                    && input(2)?.2 == out_t.element
                    && input(1)?.1.iter().product::<usize>() == 1
                    && input(2)?.1.iter().product::<usize>() == 1 =>
            {
                let (x, _, _) = input(0)?;
                let ((scale, _, _), (zero, _, _)) = (input(1)?, input(2)?);
                let signed = out_t.element == ElementType::I8;
                *self.info.native_steps.entry(o.name().to_string()).or_default() += 1;
                Box::new(move |base| {
                    // SAFETY: the locations hold the tensors of the op's types: f32 scale, one
                    // byte zero point, out_len f32 in and bytes out.
                    unsafe {
                        let s = *(resolve(scale, base) as *const f32);
                        let z = *resolve(zero, base);
                        let z = if signed { z as i8 as i64 } else { z as i64 };
                        let out = std::slice::from_raw_parts_mut(resolve(out, base), out_len);
                        crate::conv::int8::quantize(slice(resolve(x, base), out_len), s, z, signed, out);
                    }
                    Ok(())
                })
            }
            names::MOD if o.operands().iter().all(|&v| f32_value(&m, v)) => {
                let (x, xs, _) = input(0)?;
                let (y, ys, _) = input(1)?;
                let dims: Vec<u64> = os.iter().map(|&d| d as u64).collect();
                let (sx, sy) = (broadcast_strides(&xs_u64(&xs), &dims), broadcast_strides(&xs_u64(&ys), &dims));
                let (nx, ny) = (xs.iter().product::<usize>(), ys.iter().product::<usize>());
                Box::new(move |base| {
                    let (x, y) = (slice(resolve(x, base), nx), slice(resolve(y, base), ny));
                    crate::ops::fmod_broadcast(x, &sx, y, &sy, &dims, slice_mut(resolve(out, base), out_len));
                    Ok(())
                })
            }
            names::LRN if f32_value(&m, o.operands()[0]) => {
                let (x, xs, _) = input(0)?;
                let lrn = crate::ops::Lrn {
                    batch: xs[0],
                    channels: xs[1],
                    plane: xs[2..].iter().product(),
                    size: o.int_attr("size") as usize,
                    alpha: o.float_attr("alpha") as f32,
                    beta: o.float_attr("beta") as f32,
                    bias: o.float_attr("bias") as f32,
                };
                Box::new(move |base| {
                    lrn.run(slice(resolve(x, base), out_len), slice_mut(resolve(out, base), out_len));
                    Ok(())
                })
            }
            names::CONV_TRANSPOSE if o.operands().iter().all(|&v| f32_value(&m, v)) => {
                let (x, xs, _) = input(0)?;
                let (w, ws, _) = input(1)?;
                let bias = o.operands().get(2).map(|&b| self.locs[&b]);
                let pair = |name: &str, at: usize| {
                    let v = o.ints_attr(name, 4);
                    (v[at], v[at + 1])
                };
                let mut ct = crate::ops::ConvTranspose {
                    batch: xs[0],
                    in_channels: xs[1],
                    out_channels: os[1],
                    group: o.int_attr("group") as usize,
                    input: (xs[2], xs[3]),
                    output: (os[2], os[3]),
                    kernel: (ws[2], ws[3]),
                    strides: pair("strides", 0),
                    dilations: pair("dilations", 0),
                    pads: pair("pads", 0),
                    packed: Vec::new(),
                };
                if let Some(weights) = self.constant_f32(o.operands()[1]) {
                    ct.pack(weights);
                }
                let (nx, nw, cout) = (xs.iter().product::<usize>(), ws.iter().product::<usize>(), os[1]);
                Box::new(move |base| {
                    let b = bias.map(|b| slice(resolve(b, base), cout));
                    ct.run(
                        slice(resolve(x, base), nx),
                        slice(resolve(w, base), nw),
                        b,
                        slice_mut(resolve(out, base), out_len),
                    );
                    Ok(())
                })
            }
            names::RESIZE if f32_value(&m, o.operands()[0]) => {
                let (x, xs, _) = input(0)?;
                let Some(resample) = self.resample(op, &xs)? else { return Ok(None) };
                let n = xs.iter().product::<usize>();
                Box::new(move |base| {
                    resample.run(slice(resolve(x, base), n), slice_mut(resolve(out, base), out_len));
                    Ok(())
                })
            }
            names::GROUP_NORM if o.operands().iter().all(|&v| f32_value(&m, v)) => {
                let (x, xs, _) = input(0)?;
                let ((scale, _, _), (bias, _, _)) = (input(1)?, input(2)?);
                let gn = crate::ops::GroupNorm {
                    batch: xs[0],
                    channels: xs[1],
                    groups: o.int_attr("num_groups") as usize,
                    plane: xs[2..].iter().product(),
                    epsilon: o.float_attr("epsilon") as f32,
                };
                let channels = xs[1];
                Box::new(move |base| {
                    let (scale, bias) = (slice(resolve(scale, base), channels), slice(resolve(bias, base), channels));
                    gn.run(slice(resolve(x, base), out_len), scale, bias, slice_mut(resolve(out, base), out_len));
                    Ok(())
                })
            }
            names::CAST => {
                let (x, _, from) = input(0)?;
                let to = out_t.element;
                let n = out_len;
                // SAFETY (both): the executor placed tensors of these types and sizes there.
                fn typed<'a, H>(p: *mut u8, n: usize) -> &'a mut [H] {
                    unsafe { std::slice::from_raw_parts_mut(p as *mut H, n) }
                }
                fn widen<T: Copy + Into<f32>>(src: &mut [T], dst: &mut [f32]) {
                    dst.iter_mut().zip(src).for_each(|(d, v)| *d = (*v).into());
                }
                use half::slice::HalfFloatSliceExt;
                match (from, to) {
                    (ElementType::F16, ElementType::F32) => Box::new(move |base| {
                        typed::<half::f16>(resolve(x, base), n).convert_to_f32_slice(slice_mut(resolve(out, base), n));
                        Ok(())
                    }),
                    (ElementType::BF16, ElementType::F32) => Box::new(move |base| {
                        typed::<half::bf16>(resolve(x, base), n).convert_to_f32_slice(slice_mut(resolve(out, base), n));
                        Ok(())
                    }),
                    (ElementType::F32, ElementType::F16) => Box::new(move |base| {
                        typed::<half::f16>(resolve(out, base), n).convert_from_f32_slice(slice(resolve(x, base), n));
                        Ok(())
                    }),
                    (ElementType::F32, ElementType::BF16) => Box::new(move |base| {
                        typed::<half::bf16>(resolve(out, base), n).convert_from_f32_slice(slice(resolve(x, base), n));
                        Ok(())
                    }),
                    // Integers to f32 exactly (to the nearest f32 past 2^24), and f32 to
                    // integers as the reference casts: truncated, then wrapped to the width.
                    (ElementType::U8 | ElementType::I8 | ElementType::I32 | ElementType::I64, ElementType::F32) => {
                        Box::new(move |base| {
                            let (src, dst) = (resolve(x, base), slice_mut(resolve(out, base), n));
                            match from {
                                ElementType::U8 => widen(typed::<u8>(src, n), dst),
                                ElementType::I8 => widen(typed::<i8>(src, n), dst),
                                ElementType::I32 => {
                                    dst.iter_mut().zip(typed::<i32>(src, n)).for_each(|(d, v)| *d = *v as f32)
                                }
                                _ => dst.iter_mut().zip(typed::<i64>(src, n)).for_each(|(d, v)| *d = *v as f32),
                            }
                            Ok(())
                        })
                    }
                    (ElementType::F32, ElementType::U8 | ElementType::I8 | ElementType::I32 | ElementType::I64) => {
                        Box::new(move |base| {
                            let (src, dst) = (slice(resolve(x, base), n), resolve(out, base));
                            let whole = src.iter().map(|&v| v as i64);
                            match to {
                                ElementType::U8 => {
                                    typed::<u8>(dst, n).iter_mut().zip(whole).for_each(|(d, v)| *d = v as u8)
                                }
                                ElementType::I8 => {
                                    typed::<i8>(dst, n).iter_mut().zip(whole).for_each(|(d, v)| *d = v as i8)
                                }
                                ElementType::I32 => {
                                    typed::<i32>(dst, n).iter_mut().zip(whole).for_each(|(d, v)| *d = v as i32)
                                }
                                _ => typed::<i64>(dst, n).iter_mut().zip(whole).for_each(|(d, v)| *d = v),
                            }
                            Ok(())
                        })
                    }
                    _ => return Ok(None),
                }
            }
            _ => return Ok(None),
        };
        *self.info.native_steps.entry(o.name().to_string()).or_default() += 1;
        Ok(Some(step))
    }

    /// A resize's passes, where its roi, scales and sizes are constants (else `None`: the
    /// reference step computes them per run).
    fn resample(&self, op: OpId, xs: &[usize]) -> Result<Option<crate::ops::Resample>, String> {
        let m = &self.module;
        let o = m.op(op);
        let mut literals = vec![Literal {
            shape: xs.iter().map(|&d| d as u64).collect(),
            element: ElementType::F32,
            data: smelt_compiler::literal::Data::F(Vec::new()),
        }];
        for &v in &o.operands()[1..] {
            let Some(d) = m.defining_op(v).filter(|&d| m.op(d).name() == names::CONSTANT) else { return Ok(None) };
            let Some(Attribute::Dense(dense)) = m.op(d).attr("value") else { return Ok(None) };
            literals.push(Literal::decode(dense, &m.resources).ok_or("a resize operand does not decode")?);
        }
        let refs: Vec<&Literal> = literals.iter().collect();
        let (_, axes) =
            smelt_compiler::dialect::eval::resize_axes(&smelt_compiler::dialect::OpView::new(m, op), &refs)?;
        let passes = axes
            .into_iter()
            .filter(|a| !a.is_identity())
            .map(|a| {
                let taps = a.taps.into_iter().map(|t| t.map(|t| t.into_iter().map(|(k, w)| (k, w as f32)).collect()));
                crate::ops::ResamplePass::new(a.axis, taps.collect(), a.fill as f32)
            })
            .collect();
        Ok(Some(crate::ops::Resample { shape: xs.to_vec(), passes }))
    }

    pub(super) fn reference(&mut self, op: OpId) -> Result<Step, String> {
        let m = self.module.clone();
        *self.info.reference_steps.entry(m.op(op).name().to_string()).or_default() += 1;
        let inputs: Vec<(Loc, TensorType)> = m
            .op(op)
            .operands()
            .iter()
            .map(|v| Ok((self.locs[v], tensor_of(&m, *v)?)))
            .collect::<Result<_, String>>()?;
        let outputs: Vec<Loc> = m.op(op).results().iter().map(|r| self.locs[r]).collect();
        let module = self.module.clone();
        Ok(Box::new(move |base| {
            let literals: Vec<Literal> = inputs.iter().map(|(l, t)| read_literal(resolve(*l, base), t)).collect();
            let refs: Vec<&Literal> = literals.iter().collect();
            let outs = evaluate(&module, op, &refs)?;
            for (l, v) in outputs.iter().zip(&outs) {
                write_literal(resolve(*l, base), v);
            }
            Ok(())
        }))
    }
}

fn xs_u64(dims: &[usize]) -> Vec<u64> {
    dims.iter().map(|&d| d as u64).collect()
}
