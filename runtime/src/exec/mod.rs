//! The executor: compiles `@main` into a list of steps over one memory arena, and runs it.
//!
//! - **Memory plan.** Every value gets a byte range in one arena, assigned in execution order by
//!   first fit with liveness-based reuse (a value's range is free after its last use). Views
//!   (reshape, flatten, squeeze, unsqueeze, identity) alias their input; movement ops that
//!   only attention reads are strided views of their root ([`views`]), never run. Weights are
//!   read in place from the module's resources (memory-mapped files). Kernel intermediates and
//!   im2col buffers are arena ranges that die with their step. `peak_bytes` is the arena's
//!   size.
//! - **Steps.** Each executed op or `smelt.kernel` becomes steps. A body is cut into segments:
//!   an anchor (conv2d, matmul, gemm) with its elementwise epilogue runs as the packed GEMM
//!   ([`crate::gemm`]) or the direct depthwise loop, the epilogue JIT-compiled and applied to
//!   each finished block of the output; a run of elementwise ops is one JIT-compiled loop
//!   ([`crate::jit`]); reductions, pools and data movement are JIT row, pool and copy programs
//!   (`reduce`, `movement`, `strided`); attention and run-time gathers are native routines;
//!   anything else runs through the reference semantics (f64), counted in
//!   [`ExecInfo::reference_steps`] so it is never silent.

use crate::gemm::{sgemm_prepacked, Bias, Post, View};
use crate::jit::{Elementwise, Ew, EwFn, Jit};
use crate::ops::for_each_index;
use crate::workers::Shared;
use smelt_compiler::attributes::{Attribute, DenseElements, DenseStorage};
use smelt_compiler::dialect::eval::evaluate;
use smelt_compiler::ir::{Module, OpId, Operation, ValueId};
use smelt_compiler::literal::Literal;
use smelt_compiler::names;
use smelt_compiler::{ElementType, TensorType};
use std::collections::HashMap;
use std::sync::Arc;

mod movement;
mod post;
mod reduce;
mod strided;
mod views;

/// What compilation produced, for reports.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ExecInfo {
    /// Arena bytes (activations, inputs, outputs) plus kernel scratch.
    pub peak_bytes: usize,
    pub steps: usize,
    pub jit_functions: usize,
    pub gemm_steps: usize,
    pub depthwise_steps: usize,
    /// Of the `gemm_steps`, convolutions run as Winograd F(2x2, 3x3).
    pub winograd_steps: usize,
    /// Movement ops whose results attention reads in place rather than copied.
    pub strided_views: usize,
    /// Ops run by native lowerings (JIT row, pool and copy programs; [`crate::ops`]), by name.
    pub native_steps: std::collections::BTreeMap<String, usize>,
    /// Ops run through the reference semantics, by name.
    pub reference_steps: std::collections::BTreeMap<String, usize>,
    pub micro_kernel: String,
}

/// Where a value's bytes live.
#[derive(Clone, Copy, Debug)]
enum Loc {
    Arena(usize),
    /// Weights, expanded splats and kernel scratch: stable for the executable's lifetime.
    Raw(*mut u8),
}

type Step = Box<dyn Fn(*mut u8) -> Result<(), String>>;

/// What a step runs, for per-kernel profiles.
#[derive(Clone, Debug, serde::Serialize)]
pub struct StepInfo {
    /// The op (or the kernel's pattern).
    pub name: String,
    /// The op's location label (ONNX node name where known).
    pub label: String,
    /// What the cost model predicted for the op or kernel, where it says.
    pub predicted_us: Option<f64>,
    /// The op's position in `@main`'s body: an op lowered to several steps has one position.
    pub op_index: usize,
}

/// One step's measured time.
#[derive(Clone, Debug, serde::Serialize)]
pub struct StepTime {
    #[serde(flatten)]
    pub step: StepInfo,
    pub median_us: f64,
    /// Start offset within the last profiled run, for traces.
    pub start_us: f64,
}

pub struct Executable {
    module: Arc<Module>,
    steps: Vec<(StepInfo, Step)>,
    arena: Vec<CacheLine>,
    inputs: Vec<(usize, TensorType)>,
    outputs: Vec<(Loc, TensorType)>,
    _owned: Vec<Box<[u64]>>,
    _jit: Jit,
    pub info: ExecInfo,
}

/// The arena's unit: every tensor starts on a cache line (offsets are multiples of 64), so
/// vector loads of a row never straddle two lines because of where the arena begins.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct CacheLine([u8; 64]);

/// How compile errors caused by data-dependent shapes begin.
pub const DYNAMIC: &str = "dynamic shape";

/// Whether `o`'s result aliases its first operand's bytes (a view with one result).
fn is_view(o: &Operation) -> bool {
    o.def.is_view() && o.results().len() == 1
}

fn tensor_of(m: &Module, v: ValueId) -> Result<TensorType, String> {
    let t = m.value_type(v).as_tensor().ok_or("a non-tensor value")?.clone();
    if t.static_shape().is_none() {
        return Err(format!("{DYNAMIC}: a value of type {t} (pin input shapes with --shape)"));
    }
    Ok(t)
}

fn shape(t: &TensorType) -> Vec<u64> {
    t.static_shape().unwrap_or_default()
}

fn byte_size(t: &TensorType) -> usize {
    t.byte_size().unwrap_or(0) as usize
}

fn align(n: usize) -> usize {
    n.div_ceil(64) * 64
}

/// First-fit placement of live ranges in the arena.
#[derive(Default)]
struct Arena {
    live: Vec<(usize, usize)>,
    peak: usize,
}

impl Arena {
    fn alloc(&mut self, size: usize) -> usize {
        let size = align(size.max(1));
        self.live.sort();
        let mut at = 0;
        for &(o, s) in &self.live {
            if o >= at + size {
                break;
            }
            at = at.max(o + s);
        }
        self.live.push((at, size));
        self.peak = self.peak.max(at + size);
        at
    }

    fn free(&mut self, offset: usize) {
        self.live.retain(|&(o, _)| o != offset);
    }
}

struct Lower {
    module: Arc<Module>,
    jit: Jit,
    locs: HashMap<ValueId, Loc>,
    owned: Vec<Box<[u64]>>,
    info: ExecInfo,
    arena: Arena,
    /// Arena ranges of the op being lowered that die with it (kernel intermediates, im2col).
    temps: Vec<usize>,
    /// Kernel block arguments and the values they stand for.
    outer: HashMap<ValueId, ValueId>,
    /// Values never materialized: attention reads them in place ([`views`]).
    views: HashMap<ValueId, views::StridedView>,
}

impl Executable {
    /// Compiles `@main` (or the only function) of `module`.
    pub fn compile(module: Module) -> Result<Executable, String> {
        let module = Arc::new(module);
        let m = &*module;
        let func = crate::reference::main_function(m)?;
        let entry = m.region(m.op(func).regions()[0]).blocks()[0];
        let ops: Vec<OpId> = m.block_ops(entry).collect();
        let ret = *ops.last().ok_or("empty function")?;
        let micro = crate::gemm::micro_kernel().name;
        let mut lower = Lower {
            module: module.clone(),
            jit: Jit::new()?,
            locs: HashMap::new(),
            owned: Vec::new(),
            info: ExecInfo { micro_kernel: micro.to_string(), ..ExecInfo::default() },
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
            if is_view(o) || o.results().first().is_some_and(|r| lower.views.contains_key(r)) {
                root.insert(o.result(), root_of(&root, o.operands()[0]));
            }
        }

        let mut inputs = Vec::new();
        for &a in m.block(entry).args() {
            let t = tensor_of(m, a)?;
            let at = lower.arena.alloc(byte_size(&t));
            lower.locs.insert(a, Loc::Arena(at));
            inputs.push((at, t));
        }
        let mut steps = Vec::new();
        for (i, &op) in ops.iter().enumerate() {
            let o = m.op(op);
            match o.name() {
                names::RETURN => {}
                _ if o.results().first().is_some_and(|r| lower.views.contains_key(r)) => {}
                names::CONSTANT => {
                    let loc = lower.constant(op)?;
                    lower.locs.insert(o.result(), loc);
                }
                _ if is_view(o) => {
                    let loc = lower.locs[&o.operands()[0]];
                    lower.locs.insert(o.result(), loc);
                }
                _ => {
                    for &r in o.results() {
                        let at = lower.arena.alloc(byte_size(&tensor_of(m, r)?));
                        lower.locs.insert(r, Loc::Arena(at));
                    }
                    let step = lower.lower_op(op).map_err(|e| format!("{} at {}: {e}", o.name(), o.loc))?;
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
            .map(|v| Ok((lower.locs[v], tensor_of(m, *v)?)))
            .collect::<Result<Vec<_>, String>>()?;
        lower.info.peak_bytes = lower.arena.peak;
        lower.info.steps = steps.len();
        Ok(Executable {
            module,
            steps,
            arena: vec![CacheLine([0; 64]); lower.arena.peak.div_ceil(64)],
            inputs,
            outputs,
            _owned: lower.owned,
            _jit: lower.jit,
            info: lower.info,
        })
    }

    /// Runs on `inputs` (checked against `@main`'s types); returns the outputs.
    pub fn run(&mut self, inputs: &[Literal]) -> Result<Vec<Literal>, String> {
        let encoded = self.encode_inputs(inputs)?;
        self.run_encoded(&encoded)?;
        Ok(self.outputs())
    }

    /// `inputs` checked against `@main`'s types and encoded as the arena holds them, once, so
    /// that timed runs ([`Executable::run_encoded`]) measure the model, not the conversion.
    pub fn encode_inputs(&self, inputs: &[Literal]) -> Result<EncodedInputs, String> {
        if inputs.len() != self.inputs.len() {
            return Err(format!("@main takes {} inputs, {} given", self.inputs.len(), inputs.len()));
        }
        let mut bytes = Vec::with_capacity(inputs.len());
        for (i, (l, (_, t))) in inputs.iter().zip(&self.inputs).enumerate() {
            if l.shape != shape(t) || l.element != t.element {
                return Err(format!("input #{i} is {} but @main expects {t}", l.ty()));
            }
            bytes.push(literal_bytes(l));
        }
        Ok(EncodedInputs(bytes))
    }

    /// Copies the inputs into their arena ranges (every run needs this: the arena reuses an
    /// input's range once the input is dead) and runs every step; [`Executable::outputs`] then
    /// reads the results.
    pub fn run_encoded(&mut self, inputs: &EncodedInputs) -> Result<(), String> {
        self.place_inputs(inputs);
        self.run_steps(|_, step| step())
    }

    /// The outputs of the last run.
    pub fn outputs(&self) -> Vec<Literal> {
        let base = self.arena.as_ptr() as *mut u8;
        self.outputs.iter().map(|(loc, t)| read_literal(resolve(*loc, base), t)).collect()
    }

    fn place_inputs(&mut self, inputs: &EncodedInputs) {
        let base = self.arena.as_mut_ptr() as *mut u8;
        for (bytes, (at, _)) in inputs.0.iter().zip(&self.inputs) {
            // SAFETY: the input's range was allocated with exactly this size, which
            // `encode_inputs` checked `bytes` against.
            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), base.add(*at), bytes.len()) };
        }
    }

    /// Runs every step, through `wrap` (which may time it), on the arena as it is: callers
    /// place the inputs first.
    fn run_steps(
        &self,
        mut wrap: impl FnMut(&StepInfo, &dyn Fn() -> Result<(), String>) -> Result<(), String>,
    ) -> Result<(), String> {
        let base = self.arena.as_ptr() as *mut u8;
        for (info, step) in &self.steps {
            wrap(info, &|| step(base))?;
        }
        Ok(())
    }

    /// Runs on `inputs` `iters` times timing every step; returns each step's median.
    pub fn profile(&mut self, inputs: &EncodedInputs, iters: usize) -> Result<Vec<StepTime>, String> {
        let mut samples: Vec<Vec<f64>> = vec![Vec::new(); self.steps.len()];
        let mut starts = vec![0.0; self.steps.len()];
        for _ in 0..iters.max(1) {
            self.place_inputs(inputs);
            let run_start = std::time::Instant::now();
            let mut i = 0;
            self.run_steps(|_, step| {
                let t = std::time::Instant::now();
                starts[i] = (t - run_start).as_secs_f64() * 1e6;
                step()?;
                samples[i].push(t.elapsed().as_secs_f64() * 1e6);
                i += 1;
                Ok(())
            })?;
        }
        Ok(self
            .steps
            .iter()
            .zip(samples.iter_mut().zip(starts))
            .map(|((info, _), (s, start_us))| {
                s.sort_by(f64::total_cmp);
                StepTime { step: info.clone(), median_us: s[s.len() / 2], start_us }
            })
            .collect())
    }

    pub fn module(&self) -> &Module {
        &self.module
    }

    /// Fills the arena with NaNs: a run after this must still produce exact outputs, which
    /// shows every value is written before it is read.
    pub fn poison(&mut self) {
        self.arena.fill(CacheLine([0xff; 64]));
    }
}

/// The innermost name of a location (the ONNX node), or the whole location; a fused location
/// joins its parts with `+`.
pub fn label_of(loc: &smelt_compiler::Location) -> String {
    use smelt_compiler::Location;
    match loc {
        Location::Name { name, .. } => name.to_string(),
        Location::Fused(parts) => parts.iter().map(label_of).collect::<Vec<_>>().join("+"),
        Location::Unknown => String::new(),
        other => other.to_string(),
    }
}

fn resolve(loc: Loc, base: *mut u8) -> *mut u8 {
    match loc {
        // SAFETY: arena offsets were allocated inside the arena.
        Loc::Arena(at) => unsafe { base.add(at) },
        Loc::Raw(p) => p,
    }
}

/// Inputs in the arena's encoding, checked against `@main`'s types.
pub struct EncodedInputs(Vec<Vec<u8>>);

fn literal_bytes(l: &Literal) -> Vec<u8> {
    let mut out = Vec::with_capacity(l.len() * l.element.byte_size());
    match &l.data {
        smelt_compiler::literal::Data::F(v) => {
            v.iter().for_each(|&x| smelt_compiler::scalar::encode(l.element, x, &mut out))
        }
        smelt_compiler::literal::Data::I(v) => {
            v.iter().for_each(|&x| smelt_compiler::scalar::encode_int(l.element, x, &mut out))
        }
    }
    out
}

fn read_literal(p: *const u8, t: &TensorType) -> Literal {
    // SAFETY: `p` points at a value of type `t`.
    let bytes = unsafe { std::slice::from_raw_parts(p, byte_size(t)) };
    let d = DenseElements { ty: t.clone(), storage: DenseStorage::Inline(Arc::from(bytes)) };
    Literal::decode(&d, &Default::default()).expect("a value of its own type decodes")
}

fn write_literal(p: *mut u8, l: &Literal) {
    let bytes = literal_bytes(l);
    // SAFETY: `p` points at a value of `l`'s type and size.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len()) };
}

/// Per-dimension element strides of a tensor of `s` broadcast (numpy rules) to `out`.
fn broadcast_strides(s: &[u64], out: &[u64]) -> Vec<i64> {
    let mut strides = vec![0i64; out.len()];
    let mut acc = 1i64;
    for i in (0..s.len()).rev() {
        let d = out.len() - s.len() + i;
        strides[d] = if s[i] == 1 && out[d] != 1 { 0 } else { acc };
        acc *= s[i] as i64;
    }
    strides
}

fn f32_value(m: &Module, v: ValueId) -> bool {
    m.value_type(v).element() == Some(ElementType::F32)
}

impl Lower {
    fn own(&mut self, bytes: usize) -> *mut u8 {
        let mut b = vec![0u64; bytes.div_ceil(8).max(1)].into_boxed_slice();
        let p = b.as_mut_ptr() as *mut u8;
        self.owned.push(b);
        p
    }

    fn constant(&mut self, op: OpId) -> Result<Loc, String> {
        let m = self.module.clone();
        let Some(Attribute::Dense(d)) = m.op(op).attr("value") else { return Err("constant without value".into()) };
        let size = byte_size(&d.ty);
        let bytes: &[u8] = match &d.storage {
            DenseStorage::Inline(b) => b,
            DenseStorage::Resource(h) => m.resources.get(h).ok_or("missing resource")?.bytes(),
        };
        let aligned = (bytes.as_ptr() as usize).is_multiple_of(d.ty.element.byte_size().max(1));
        if bytes.len() == size && aligned {
            // In place: weights stay memory-mapped, read-only.
            return Ok(Loc::Raw(bytes.as_ptr() as *mut u8));
        }
        if bytes.len() == size {
            // Weights inline in a protobuf sit at arbitrary offsets; typed slices need alignment.
            let p = self.own(size);
            // SAFETY: `p` has `size` bytes.
            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, size) };
            return Ok(Loc::Raw(p));
        }
        let l = Literal::decode(d, &m.resources).ok_or("constant does not decode")?;
        let p = self.own(size);
        write_literal(p, &l);
        Ok(Loc::Raw(p))
    }

    /// The f32 contents of a constant operand, readable at compile time (for packing).
    fn constant_f32(&self, v: ValueId) -> Option<&[f32]> {
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
    fn scratch_bytes(&mut self, bytes: usize) -> Loc {
        let at = self.arena.alloc(bytes);
        self.temps.push(at);
        Loc::Arena(at)
    }

    fn scratch(&mut self, t: &TensorType) -> Loc {
        self.scratch_bytes(byte_size(t))
    }

    fn lower_op(&mut self, op: OpId) -> Result<Vec<Step>, String> {
        let m = self.module.clone();
        let o = m.op(op);
        if o.name() == names::KERNEL {
            let body = m.region(o.regions()[0]).blocks()[0];
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
    fn lower_sequence(&mut self, ops: &[OpId], out: ValueId) -> Result<Vec<Step>, String> {
        let m = self.module.clone();
        let mut steps = Vec::new();
        let mut i = 0;
        while i < ops.len() {
            let op = ops[i];
            let mut end = i + 1;
            let anchor = is_anchor(&m, op);
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
    fn native(&mut self, op: OpId) -> Result<Option<Step>, String> {
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
            _ => return Ok(None),
        };
        *self.info.native_steps.entry(o.name().to_string()).or_default() += 1;
        Ok(Some(step))
    }

    /// Attention per (batch, head), heads split over the workers: scores, softmax, then the value
    /// product.
    fn attention(&mut self, op: OpId) -> Result<Step, String> {
        let m = self.module.clone();
        let o = m.op(op);
        let dims = |v: ValueId| -> Result<Vec<u64>, String> { Ok(shape(&tensor_of(&m, v)?)) };
        let (qs, ks, vs, os) =
            (dims(o.operands()[0])?, dims(o.operands()[1])?, dims(o.operands()[2])?, dims(o.result())?);
        let r = os.len();
        let (lq, d, lk, dv) = (
            qs[qs.len() - 2] as usize,
            qs[qs.len() - 1] as usize,
            ks[ks.len() - 1] as usize,
            vs[vs.len() - 1] as usize,
        );
        let batch: Vec<u64> = os[..r - 2].to_vec();
        // Each operand as (where, first element, per-head strides, (row, column) strides):
        // materialized (dense), or a strided view of another value's buffer.
        let operand = |v: ValueId, s: &[u64]| {
            let (loc, offset, strides) = match self.views.get(&v) {
                Some(view) => (self.locs[&view.root], view.offset, view.strides.clone()),
                None => (self.locs[&v], 0, strided::dense_strides(s)),
            };
            let n = s.len();
            let mut head_strides = vec![0i64; batch.len()];
            for i in 0..n - 2 {
                if s[i] != 1 {
                    head_strides[batch.len() + 2 + i - n] = strides[i];
                }
            }
            (loc, offset, head_strides, (strides[n - 2], strides[n - 1]))
        };
        let q = operand(o.operands()[0], &qs);
        let k = operand(o.operands()[1], &ks);
        let v = operand(o.operands()[2], &vs);
        // The mask broadcast to the scores' shape [batch..., lq, lk].
        let mut scores_shape = batch.clone();
        scores_shape.extend([lq as u64, lk as u64]);
        let mask = match o.operands().get(3) {
            Some(&mv) => Some((
                self.locs[&mv],
                broadcast_strides(&dims(mv)?, &scores_shape),
                dims(mv)?.iter().product::<u64>() as usize,
            )),
            None => None,
        };
        let scale = o.float_attr("scale") as f32;
        let out_loc = self.locs[&o.result()];
        let softmax = crate::jit::RowProgram {
            op: crate::jit::RowOp::Softmax {
                log: false,
                scale,
                mask: mask.as_ref().map(|(_, st, _)| (st[st.len() - 2], st[st.len() - 1])),
            },
            len: lk,
            inner: 1,
        };
        let softmax = self.jit.compile_rows(&softmax)?;
        self.info.jit_functions += 1;
        // Every (batch..., head) index, in output order: heads are split over the workers.
        let mut heads: Vec<Vec<u64>> = Vec::new();
        for_each_index(&batch, |idx| heads.push(idx.to_vec()));
        *self.info.native_steps.entry(names::ATTENTION.into()).or_default() += 1;
        Ok(Box::new(move |base| {
            let out = Shared(resolve(out_loc, base) as *mut f32);
            let operands = [&q, &k, &v].map(|(loc, offset, head_strides, rc)| {
                // SAFETY: the offset of a view's first element lies inside its root.
                (Shared(unsafe { (resolve(*loc, base) as *mut f32).offset(*offset as isize) }), head_strides, *rc)
            });
            let mask = mask.as_ref().map(|(loc, st, _)| (Shared(resolve(*loc, base) as *mut f32), st));
            crate::workers::parallel_ranges(heads.len(), 1, |range| {
                let mut scores = vec![0.0f32; lq * lk];
                for head in range {
                    let idx = &heads[head];
                    // SAFETY: offsets, strides and lengths come from the checked shapes (and
                    // views' strides from the movement ops they replace); workers write
                    // disjoint heads of the output; the mask's rows for this head lie inside
                    // it (its broadcast strides over the scores' shape).
                    unsafe {
                        let matrix = |i: usize, rows: usize, cols: usize| {
                            let (at, head_strides, (rs, cs)) = &operands[i];
                            let start = at.get().offset(element_offset(idx, head_strides) as isize);
                            let (rs, cs) = (*rs as usize, *cs as usize);
                            let len = if rows * cols == 0 { 0 } else { (rows - 1) * rs + (cols - 1) * cs + 1 };
                            View::strided(std::slice::from_raw_parts(start, len), (rows, cols), (rs, cs))
                        };
                        let (q, kt, v) = (matrix(0, lq, d), matrix(1, d, lk), matrix(2, lk, dv));
                        let head_mask = mask.as_ref().map(|(at, st)| at.get().offset(element_offset(idx, st) as isize));
                        let normalize = |s: &mut [f32]| {
                            let buffers: Vec<*mut f32> = match head_mask {
                                Some(m) => vec![s.as_mut_ptr(), m, s.as_mut_ptr()],
                                None => vec![s.as_mut_ptr(), s.as_mut_ptr()],
                            };
                            softmax(buffers.as_ptr(), 0, lq as i64);
                        };
                        let out = std::slice::from_raw_parts_mut(out.get().add(head * lq * dv), lq * dv);
                        crate::ops::attention_head(q, kt, v, normalize, &mut scores, out);
                    }
                }
            });
            Ok(())
        }))
    }

    fn reference(&mut self, op: OpId) -> Result<Step, String> {
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

    fn elementwise(&mut self, ops: &[OpId]) -> Result<Step, String> {
        let m = self.module.clone();
        let mut b = ProgramBuilder::default();
        for &op in ops {
            b.op(&m, op)?;
        }
        let (prog, inputs) = (b.prog, b.inputs);
        let out = m.op(*ops.last().unwrap()).result();
        let out_shape = shape(&tensor_of(&m, out)?);
        // Per-dim strides of every input (BatchNorm parameters align at axis 1), then merge
        // dimensions that are contiguous for all.
        let mut strides: Vec<Vec<i64>> = Vec::new();
        for &v in &inputs {
            let s = shape(&tensor_of(&m, v)?);
            let aligned = if is_channel_param(&m, ops, v) {
                let mut a = vec![1u64; out_shape.len()];
                a[1] = s.iter().product();
                a
            } else {
                s
            };
            strides.push(broadcast_strides(&aligned, &out_shape));
        }
        let mut operands: Vec<strided::Operand> =
            inputs.iter().zip(strides).map(|(v, s)| strided::Operand::new(self.locs[v], s)).collect();
        operands.push(strided::Operand::new(self.locs[&out], strided::dense_strides(&out_shape)));
        let result = prog.len() as u32 - 1;
        self.strided(prog, result, &out_shape, operands)
    }

    /// How the convolution `anchor` (output shape `os`) runs: Winograd, depthwise planes or a
    /// packed GEMM, with its weights transformed or packed now.
    fn conv_plan(&mut self, m: &Module, anchor: OpId, os: &[u64]) -> Result<Conv, String> {
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
            strides: ints("strides"),
            pads: ints("pads"),
            dilations: ints("dilations"),
            depthwise: None,
            packed: Vec::new(),
            winograd: None,
        };
        let depthwise = g > 1 && g == conv.xs[1] && conv.os[1] == g;
        let window = conv.window();
        let winograd = match self.constant_f32(o.operands()[1]) {
            Some(wdata)
                if crate::winograd::Winograd::applies(
                    window.kernel,
                    window.strides,
                    window.dilations,
                    g,
                    [window.ho, window.wo],
                ) =>
            {
                let (cout, cin) = (conv.os[1], conv.xs[1]);
                let plan = crate::winograd::Winograd::new(
                    wdata,
                    (cout, cin),
                    (window.h, window.w),
                    (window.ho, window.wo),
                    (window.pads[0], window.pads[1]),
                );
                let scratch = self.scratch_bytes(plan.scratch_len() * 4);
                Some((plan, scratch))
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
        let depthwise = depthwise.then(|| crate::ops::Depthwise::new(window.clone()));
        let conv = Conv { depthwise, packed, winograd, ..conv };
        if conv.depthwise.is_some() {
            self.info.depthwise_steps += 1;
        } else {
            self.info.gemm_steps += 1;
        }
        Ok(conv)
    }

    /// A conv2d / matmul / gemm with its epilogue `ops[1..]`.
    fn anchor(&mut self, ops: &[OpId]) -> Result<Step, String> {
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
        if o.name() == names::CONV2D {
            if let Some(&bias) = o.operands().get(2) {
                let bi = b.input(bias);
                prefix_result = b.push(Ew::Add(prefix_result, bi));
            }
        }
        // The epilogue ops read the (scaled, biased) accumulator for the anchor's result.
        b.index.insert(acc, prefix_result);
        for &op in &ops[1..] {
            b.op(&m, op)?;
        }
        let (prog, inputs, index) = (b.prog, b.inputs, b.index);
        let result = *index.get(&out).unwrap_or(&prefix_result);
        // 2-D view of the output: conv [N, O, H, W] -> per (n, group) [O/g, H*W]; matmul
        // [..., M, N] -> per batch [M, N].
        let conv = o.name() == names::CONV2D;
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
        let conv_plan = if conv { Some(self.conv_plan(&m, anchor, &os)?) } else { None };
        // The micro-kernel (or the depthwise or Winograd output loop) applies the epilogue's
        // head in registers; the latter two take a bias by channel only, and no scale.
        let by_channel = conv_plan.as_ref().is_some_and(|c| c.depthwise.is_some() || c.winograd.is_some());
        let split = post::split(&prog, result, &strides)
            .filter(|(head, _)| !by_channel || (head.scale == 1.0 && head.bias.is_none_or(|b| b.per_row)));
        let (head, prog, result) = match split {
            Some((head, Some(rest))) => (Some(head), rest, result),
            Some((head, None)) => (Some(head), vec![Ew::Input(0)], 0),
            None => (None, prog, result),
        };
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
        let apply = Epilogue { head, f: epilogue, extra, extra_2d };
        match o.name() {
            names::CONV2D => {
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
type Block = (usize, usize, usize, usize);

/// An elementwise program under construction: ops appended in order, each distinct outside
/// value read once as an input.
#[derive(Default)]
struct ProgramBuilder {
    prog: Vec<Ew>,
    inputs: Vec<ValueId>,
    /// Where each value is in `prog`.
    index: HashMap<ValueId, u32>,
}

impl ProgramBuilder {
    fn push(&mut self, e: Ew) -> u32 {
        self.prog.push(e);
        self.prog.len() as u32 - 1
    }

    /// The program index of `v`, reading it as a new input the first time.
    fn input(&mut self, v: ValueId) -> u32 {
        if let Some(&i) = self.index.get(&v) {
            return i;
        }
        self.inputs.push(v);
        let i = self.push(Ew::Input(self.inputs.len() as u32 - 1));
        self.index.insert(v, i);
        i
    }

    /// Appends `op`. A constant operand with one value throughout (a clip bound, a scale)
    /// becomes an immediate rather than an input read per element.
    fn op(&mut self, m: &Module, op: OpId) -> Result<(), String> {
        let operands: Vec<u32> = m
            .op(op)
            .operands()
            .iter()
            .map(|&v| match (self.index.get(&v), splat_of(m, v)) {
                (None, Some(k)) => {
                    let i = self.push(Ew::Const(k as f32));
                    self.index.insert(v, i);
                    i
                }
                _ => self.input(v),
            })
            .collect();
        let r = lower_ew(m, op, &operands, &mut self.prog).ok_or("not elementwise-lowerable")?;
        self.index.insert(m.op(op).result(), r);
        Ok(())
    }
}

/// A compiled epilogue and where its extra inputs are.
struct Epilogue {
    /// What the micro-kernel applies before `f` (the head of the fused ops).
    head: Option<post::Head>,
    f: Option<EwFn>,
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
    unsafe fn apply(&self, c: *mut f32, ldc: usize, offsets: &[i64], block: Block, base: *mut u8) {
        let Some(f) = self.f else { return };
        let (r0, rows, c0, cols) = block;
        let mut ptrs: Vec<*mut f32> = Vec::with_capacity(self.extra.len() + 2);
        let start = c.add(r0 * ldc + c0);
        ptrs.push(start);
        for (((loc, _), (rs, cs)), off) in self.extra.iter().zip(&self.extra_2d).zip(offsets) {
            let p = resolve(*loc, base) as *mut f32;
            ptrs.push(p.offset((off + r0 as i64 * rs + c0 as i64 * cs) as isize));
        }
        ptrs.push(start);
        f(ptrs.as_ptr(), rows as i64, cols as i64);
    }

    /// The head for a `rows x cols` block of C whose extra inputs start at `offsets`.
    unsafe fn post(&self, offsets: &[i64], base: *mut u8, rows: usize, cols: usize) -> Post<'_> {
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
        Post { scale: head.scale, bias, lo: head.lo, hi: head.hi }
    }

    /// Where each extra input starts for the block at `dims`: (index, dimension) pairs.
    fn offsets(&self, dims: &[(usize, usize)]) -> Vec<i64> {
        let mut out = Vec::new();
        self.offsets_into(dims, &mut out);
        out
    }

    /// [`Epilogue::offsets`] into a reused buffer (per depthwise plane).
    fn offsets_into(&self, dims: &[(usize, usize)], out: &mut Vec<i64>) {
        out.clear();
        out.extend(self.extra.iter().map(|(_, s)| dims.iter().map(|&(i, d)| i as i64 * s[d]).sum::<i64>()));
    }
}

struct Conv {
    xs: Vec<usize>,
    ws: Vec<usize>,
    os: Vec<usize>,
    group: usize,
    strides: Vec<i64>,
    pads: Vec<i64>,
    dilations: Vec<i64>,
    /// One input channel per group and one output channel per group: a direct loop.
    depthwise: Option<crate::ops::Depthwise>,
    /// Per group, the weights packed at compile time (when they are constants).
    packed: Vec<crate::gemm::Packed>,
    /// A 3x3 stride-1 convolution with constant weights: Winograd F(2x2, 3x3) and its scratch.
    winograd: Option<(crate::winograd::Winograd, Loc)>,
}

impl Conv {
    fn is_pointwise(&self) -> bool {
        self.ws[2] == 1 && self.ws[3] == 1 && self.strides[..2] == [1, 1] && self.pads.iter().all(|&p| p == 0)
    }

    /// The window over one input plane.
    fn window(&self) -> crate::ops::Window {
        crate::ops::Window {
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

    unsafe fn run(&self, x: *const f32, w: *const f32, y: *mut f32, ep: &Epilogue, base: *mut u8) {
        let (n, c, h, wd) = (self.xs[0], self.xs[1], self.xs[2], self.xs[3]);
        let (o, ho, wo) = (self.os[1], self.os[2], self.os[3]);
        let (kh, kw) = (self.ws[2], self.ws[3]);
        let (cg, og) = (c / self.group, o / self.group);
        let hw = ho * wo;
        let y_len = n * o * hw;
        let ys = std::slice::from_raw_parts_mut(y, y_len);
        if let Some(plan) = &self.depthwise {
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
                let pre = crate::gemm::Prepacked { a: self.packed.get(g), b: None };
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
                    let im = crate::ops::Im2col { x: image, channels: cg, window: self.window() };
                    sgemm_prepacked(&wv, &im, pre, cblock, hw, false, post, &epilogue);
                }
            }
        }
    }
}

/// A batched matmul (numpy broadcasting over batch dimensions) or a gemm.
struct MatMul {
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
    fn new(a: &[u64], b: &[u64], out: &[u64], ta: bool, tb: bool) -> Result<MatMul, String> {
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
    fn fold_batch(self) -> MatMul {
        let rows = self.m * self.batch.iter().product::<u64>() as usize;
        MatMul { m: rows, a_len: rows * self.k, batch: Vec::new(), a_batch: Vec::new(), b_batch: Vec::new(), ..self }
    }

    unsafe fn run(&self, a: *const f32, b: *const f32, c: *mut f32, ep: &Epilogue, base: *mut u8) {
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
            let pre = crate::gemm::Prepacked { a: None, b: self.packed_b.as_ref() };
            let post = ep.post(&offsets, base, m, n);
            sgemm_prepacked(&av, &bv, pre, cs, n, false, post, &|r0, rows, c0, cols| {
                ep.apply(cptr.get(), n, &offsets, (r0, rows, c0, cols), shared.get())
            });
            i += 1;
        });
    }
}

/// The element offset of index `idx` under per-dimension `strides`.
fn element_offset(idx: &[u64], strides: &[i64]) -> i64 {
    idx.iter().zip(strides).map(|(&i, &s)| i as i64 * s).sum()
}

/// Merges adjacent dimensions that are contiguous for every stride vector; drops extent-1
/// dimensions.
fn merge_dims(dims: &[u64], strides: &[Vec<i64>]) -> (Vec<u64>, Vec<Vec<i64>>) {
    let keep: Vec<usize> = (0..dims.len()).filter(|&d| dims[d] != 1).collect();
    let mut out_dims: Vec<u64> = Vec::new();
    let mut out_strides: Vec<Vec<i64>> = vec![Vec::new(); strides.len()];
    for &d in &keep {
        let mergeable = !out_dims.is_empty()
            && strides.iter().zip(&out_strides).all(|(s, o)| *o.last().unwrap() == s[d] * dims[d] as i64);
        if mergeable {
            *out_dims.last_mut().unwrap() *= dims[d];
            for (s, o) in strides.iter().zip(&mut out_strides) {
                *o.last_mut().unwrap() = s[d];
            }
        } else {
            out_dims.push(dims[d]);
            for (s, o) in strides.iter().zip(&mut out_strides) {
                o.push(s[d]);
            }
        }
    }
    (out_dims, out_strides)
}

/// Whether an elementwise chain can be evaluated over its last op's shape: each result
/// broadcasts to the next (BatchNorm's channel-aligned parameters excluded).
fn broadcast_chain(m: &Module, ops: &[OpId]) -> bool {
    let dims = |op: OpId| tensor_of(m, m.op(op).result()).ok().and_then(|t| t.static_shape());
    ops.iter().all(|&o| m.op(o).name() != names::BATCH_NORM)
        && ops.windows(2).all(|w| match (dims(w[0]), dims(w[1])) {
            (Some(a), Some(b)) => smelt_compiler::dialect::infer::broadcasts_to(&a, &b),
            _ => false,
        })
}

fn is_anchor(m: &Module, op: OpId) -> bool {
    let o = m.op(op);
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
fn epilogue_mergeable(m: &Module, anchor: OpId, op: OpId) -> bool {
    if m.op(anchor).name() != names::CONV2D {
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
fn hw_col_stride(s: &[i64], os: &[u64]) -> Option<i64> {
    if os[3] == 1 {
        Some(s[2])
    } else if os[2] == 1 || s[2] == s[3] * os[3] as i64 {
        Some(s[3])
    } else {
        None
    }
}

fn is_conv_bias(m: &Module, conv: OpId, v: ValueId) -> bool {
    m.op(conv).operands().get(2) == Some(&v)
}

/// BatchNorm's scale, bias, mean and variance: 1-D, aligned with axis 1.
fn is_channel_param(m: &Module, ops: &[OpId], v: ValueId) -> bool {
    ops.iter().any(|&op| m.op(op).name() == names::BATCH_NORM && m.op(op).operands()[1..].contains(&v))
}

fn splat_of(m: &Module, v: ValueId) -> Option<f64> {
    let d = m.defining_op(v)?;
    match m.op(d).attr("value") {
        Some(Attribute::Dense(dense)) if dense.ty.num_elements() == Some(1) || dense.is_splat() => {
            Literal::decode(dense, &m.resources)?.to_f64().first().copied()
        }
        _ => None,
    }
}

/// Whether `op` lowers to an elementwise program: f32 throughout, one result, and an arm in
/// [`lower_ew`] that accepts its attributes.
fn ew_lowerable(m: &Module, op: OpId) -> bool {
    let o = m.op(op);
    if !o.operands().iter().chain(o.results()).all(|&v| f32_value(m, v)) || o.results().len() != 1 {
        return false;
    }
    let operands: Vec<u32> = (0..o.operands().len() as u32).collect();
    lower_ew(m, op, &operands, &mut Vec::new()).is_some()
}

/// Appends `op` (operands at program indices `x`) to `prog`; returns its result's index.
fn lower_ew(m: &Module, op: OpId, x: &[u32], prog: &mut Vec<Ew>) -> Option<u32> {
    let o = m.op(op);
    let float = |name: &str| o.float_attr(name) as f32;
    let mut push = |e: Ew| -> u32 {
        prog.push(e);
        prog.len() as u32 - 1
    };
    let r = match o.name() {
        names::ADD => push(Ew::Add(x[0], x[1])),
        names::SUB => push(Ew::Sub(x[0], x[1])),
        names::MUL => push(Ew::Mul(x[0], x[1])),
        names::DIV => push(Ew::Div(x[0], x[1])),
        names::MAX if x.len() == 2 => push(Ew::Max(x[0], x[1])),
        names::MIN if x.len() == 2 => push(Ew::Min(x[0], x[1])),
        names::NEG => push(Ew::Neg(x[0])),
        names::ABS => push(Ew::Abs(x[0])),
        names::SQRT => push(Ew::Sqrt(x[0])),
        names::EXP => push(Ew::Exp(x[0])),
        names::TANH => push(Ew::Tanh(x[0])),
        names::SIGMOID => push(Ew::Sigmoid(x[0])),
        names::ERF => push(Ew::Erf(x[0])),
        names::IDENTITY => x[0],
        names::LOG => push(Ew::Log(x[0])),
        names::SOFTSIGN => {
            let one = push(Ew::Const(1.0));
            let a = push(Ew::Abs(x[0]));
            let d = push(Ew::Add(one, a));
            push(Ew::Div(x[0], d))
        }
        names::SOFTPLUS => {
            // max(x, 0) + ln(1 + e^-|x|): no overflow for large x.
            let zero = push(Ew::Const(0.0));
            let one = push(Ew::Const(1.0));
            let pos = push(Ew::Max(x[0], zero));
            let a = push(Ew::Abs(x[0]));
            let na = push(Ew::Neg(a));
            let e = push(Ew::Exp(na));
            let s = push(Ew::Add(one, e));
            let l = push(Ew::Log(s));
            push(Ew::Add(pos, l))
        }
        // max(x, 0) + min(alpha (e^x - 1), 0) is ELU only for alpha >= 0.
        names::ELU | names::SELU if o.float_attr("alpha") >= 0.0 => {
            let selu = o.is(names::SELU);
            let alpha = float("alpha");
            let zero = push(Ew::Const(0.0));
            let one = push(Ew::Const(1.0));
            let k = push(Ew::Const(alpha));
            let pos = push(Ew::Max(x[0], zero));
            let e = push(Ew::Exp(x[0]));
            let em1 = push(Ew::Sub(e, one));
            let scaled = push(Ew::Mul(em1, k));
            let neg = push(Ew::Min(scaled, zero));
            let y = push(Ew::Add(pos, neg));
            if selu {
                let gamma = push(Ew::Const(float("gamma")));
                push(Ew::Mul(y, gamma))
            } else {
                y
            }
        }
        names::RELU => {
            let z = push(Ew::Const(0.0));
            push(Ew::Max(x[0], z))
        }
        names::RECIPROCAL => {
            let one = push(Ew::Const(1.0));
            push(Ew::Div(one, x[0]))
        }
        names::GELU => {
            let half = push(Ew::Const(0.5));
            let one = push(Ew::Const(1.0));
            let inner = if o.string_attr("approximate") == "tanh" {
                let x2 = push(Ew::Mul(x[0], x[0]));
                let x3 = push(Ew::Mul(x2, x[0]));
                let k = push(Ew::Const(0.044715));
                let kx3 = push(Ew::Mul(x3, k));
                let s = push(Ew::Add(x[0], kx3));
                let c = push(Ew::Const(0.797_884_6));
                let u = push(Ew::Mul(s, c));
                push(Ew::Tanh(u))
            } else {
                let c = push(Ew::Const(std::f32::consts::FRAC_1_SQRT_2));
                let u = push(Ew::Mul(x[0], c));
                push(Ew::Erf(u))
            };
            let p = push(Ew::Add(inner, one));
            let hx = push(Ew::Mul(x[0], half));
            push(Ew::Mul(hx, p))
        }
        names::SILU => {
            let s = push(Ew::Sigmoid(x[0]));
            push(Ew::Mul(x[0], s))
        }
        names::HARDSIGMOID | names::HARDSWISH => {
            let (alpha, beta) =
                if o.name() == names::HARDSWISH { (1.0 / 6.0, 0.5) } else { (float("alpha"), float("beta")) };
            let a = push(Ew::Const(alpha));
            let b = push(Ew::Const(beta));
            let ax = push(Ew::Mul(x[0], a));
            let t = push(Ew::Add(ax, b));
            let zero = push(Ew::Const(0.0));
            let one = push(Ew::Const(1.0));
            let lo = push(Ew::Max(t, zero));
            let hs = push(Ew::Min(lo, one));
            if o.name() == names::HARDSWISH {
                push(Ew::Mul(x[0], hs))
            } else {
                hs
            }
        }
        names::LEAKY_RELU | names::PRELU => {
            let slope = if o.name() == names::PRELU { x[1] } else { push(Ew::Const(float("alpha"))) };
            let zero = push(Ew::Const(0.0));
            let pos = push(Ew::Max(x[0], zero));
            let neg = push(Ew::Min(x[0], zero));
            let sn = push(Ew::Mul(neg, slope));
            push(Ew::Add(pos, sn))
        }
        names::CLIP => {
            let mut v = x[0];
            let slots = o.def.operands.len();
            let _ = slots;
            // clip(x, min?, max?): operands present in order; an absent bound does not clip.
            let names = smelt_compiler::dialect::OpView::new(m, op);
            if let Some(lo) = names.operand("min") {
                let i = o.operands().iter().position(|&u| u == lo)?;
                v = push(Ew::Max(v, x[i]));
            }
            if let Some(hi) = names.operand("max") {
                let i = o.operands().iter().position(|&u| u == hi)?;
                v = push(Ew::Min(v, x[i]));
            }
            v
        }
        names::BATCH_NORM => {
            // (x - mean) * scale / sqrt(var + eps) + bias
            let eps = push(Ew::Const(float("epsilon")));
            let ve = push(Ew::Add(x[4], eps));
            let sd = push(Ew::Sqrt(ve));
            let k = push(Ew::Div(x[1], sd));
            let c = push(Ew::Sub(x[0], x[3]));
            let s = push(Ew::Mul(c, k));
            push(Ew::Add(s, x[2]))
        }
        names::POW => match splat_of(m, o.operands()[1])? {
            1.0 => x[0],
            0.5 => push(Ew::Sqrt(x[0])),
            2.0 => push(Ew::Mul(x[0], x[0])),
            3.0 => {
                let x2 = push(Ew::Mul(x[0], x[0]));
                push(Ew::Mul(x2, x[0]))
            }
            _ => return None,
        },
        _ => return None,
    };
    Some(r)
}
