//! The executor: compiles `@main` into a list of steps over one memory arena, and runs it.
//!
//! - **Memory plan.** Every value gets a byte range in one arena, assigned in execution order by
//!   first fit with liveness-based reuse (a value's range is free after its last use). Views
//!   (reshape, flatten, squeeze, unsqueeze, identity) alias their input; movement ops that
//!   only attention reads are strided views of their root ([`smelt_compiler::views`]), never
//!   run. Weights are read in place from the module's resources (memory-mapped files). Kernel intermediates and
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
//!
//! Files: `lower` (the memory plan and each op's step), `arena` (first-fit placement),
//! `anchor` (conv / matmul / gemm with epilogues), `elementwise` (JIT programs of op chains),
//! `attention`, `reduce` (rows, reductions, pools), `movement` and `strided` (copies as
//! strided programs), `post` (the epilogue head the micro-kernel applies in registers).

use crate::gemm::{sgemm_prepacked, Bias, Post, View};
use crate::jit::{Elementwise, Ew, EwFn, Jit};
use crate::ops::for_each_index;
use crate::workers::Shared;
use crate::ExecError;
use smelt_compiler::attributes::{Attribute, DenseElements, DenseStorage};
use smelt_compiler::dialect::eval::evaluate;
use smelt_compiler::ir::{Module, OpId, Operation, ValueId};
use smelt_compiler::literal::Literal;
use smelt_compiler::names;
use smelt_compiler::views::{self, StridedView};
use smelt_compiler::{ElementType, TensorType};
use std::collections::HashMap;
use std::sync::Arc;

mod anchor;
mod arena;
mod attention;
mod elementwise;
mod lower;
mod movement;
mod post;
mod reduce;
mod strided;

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
    /// The widest vector ISA the GEMM and vector math run on here.
    pub kernel_isa: String,
    /// Variants chosen by measurement (`crate::variants`), with how many ops use each.
    pub variants: std::collections::BTreeMap<String, usize>,
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

/// One run timed step by step.
#[derive(Clone, Debug)]
pub struct ProfiledRun {
    pub total_us: f64,
    /// Each step's time, in step order.
    pub step_us: Vec<f64>,
    /// Each step's start within the run.
    pub start_us: Vec<f64>,
}

pub struct Executable {
    module: Arc<Module>,
    steps: Vec<(StepInfo, Step)>,
    arena: smelt_compiler::memory::Pages,
    inputs: Vec<(usize, TensorType)>,
    outputs: Vec<(Loc, TensorType)>,
    _owned: Vec<smelt_compiler::memory::Pages>,
    _jit: Jit,
    pub info: ExecInfo,
}

// SAFETY: an executable owns everything its steps point at (the arena, weights behind its
// `Arc<Module>`, owned buffers, the JIT code) and keeps no thread-affine state between runs
// (the thread-locals a step touches are per-call scratch), so it may move to another thread.
// It is not `Sync`: a run mutates the arena.
unsafe impl Send for Executable {}

/// How compile errors caused by data-dependent shapes begin.
pub const DYNAMIC: &str = "dynamic shape";

/// Whether `o`'s result aliases its first operand's bytes (a view with one result).
fn is_view(o: &Operation) -> bool {
    o.def.is_view() && o.results().len() == 1
}

fn tensor_of(m: &Module, v: ValueId) -> Result<TensorType, String> {
    let t = m.value_type(v).as_tensor().ok_or("a non-tensor value")?.clone();
    let Some(shape) = t.static_shape() else {
        return Err(format!("{DYNAMIC}: a value of type {t} (pin input shapes with --shape)"));
    };
    smelt_compiler::memory::check(&format!("a value of type {t}"), &shape, t.element.byte_size() as u64)?;
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

struct Lower {
    module: Arc<Module>,
    jit: Jit,
    locs: HashMap<ValueId, Loc>,
    owned: Vec<smelt_compiler::memory::Pages>,
    info: ExecInfo,
    arena: arena::Arena,
    /// Arena ranges of the op being lowered that die with it (kernel intermediates, im2col).
    temps: Vec<usize>,
    /// Kernel block arguments and the values they stand for.
    outer: HashMap<ValueId, ValueId>,
    /// Values never materialized: attention reads them in place ([`smelt_compiler::views`]).
    views: HashMap<ValueId, StridedView>,
}

impl Executable {
    /// Runs on `inputs` (checked against `@main`'s types); returns the outputs.
    pub fn run(&mut self, inputs: &[Literal]) -> Result<Vec<Literal>, ExecError> {
        let encoded = self.encode_inputs(inputs)?;
        self.run_encoded(&encoded)?;
        Ok(self.outputs())
    }

    /// `inputs` checked against `@main`'s types and encoded as the arena holds them, once, so
    /// that timed runs ([`Executable::run_encoded`]) measure the model, not the conversion.
    pub fn encode_inputs(&self, inputs: &[Literal]) -> Result<EncodedInputs, ExecError> {
        let m = &*self.module;
        let func = smelt_compiler::signature::main_function(m).map_err(ExecError::Module)?;
        smelt_compiler::signature::check_inputs(m, func, inputs).map_err(ExecError::Input)?;
        let bytes = inputs.iter().map(Literal::to_bytes).collect();
        Ok(EncodedInputs(bytes))
    }

    /// Inputs given as bytes in the arena's encoding (little-endian, the element type's width:
    /// what a typed host buffer holds), checked against the compiled types, element counts and
    /// byte lengths; no conversion through [`Literal`].
    pub fn encode_raw(&self, inputs: &[RawTensor]) -> Result<EncodedInputs, ExecError> {
        let m = &*self.module;
        let func = smelt_compiler::signature::main_function(m).map_err(ExecError::Module)?;
        let names = smelt_compiler::signature::input_names(m, func);
        if inputs.len() != self.inputs.len() {
            return Err(ExecError::Input(format!(
                "the model takes {} inputs ({}), {} given",
                self.inputs.len(),
                names.join(", "),
                inputs.len()
            )));
        }
        for ((raw, (_, t)), name) in inputs.iter().zip(&self.inputs).zip(&names) {
            smelt_compiler::signature::check_input(name, t, raw.element, raw.shape).map_err(ExecError::Input)?;
            if raw.bytes.len() != byte_size(t) {
                return Err(ExecError::Input(format!(
                    "input '{name}' ({t}) needs {} bytes, {} given",
                    byte_size(t),
                    raw.bytes.len()
                )));
            }
        }
        Ok(EncodedInputs(inputs.iter().map(|raw| raw.bytes.to_vec()).collect()))
    }

    /// The types of the outputs, in order.
    pub fn output_types(&self) -> Vec<TensorType> {
        self.outputs.iter().map(|(_, t)| t.clone()).collect()
    }

    /// Output `index` of the last run, as the arena holds it (the encoding
    /// [`Executable::encode_raw`] takes), copied out.
    pub fn output_bytes(&self, index: usize) -> Vec<u8> {
        let base = self.arena.as_ptr();
        let (loc, t) = &self.outputs[index];
        // SAFETY: `loc` holds a value of type `t` (its whole byte size) for the executable's life.
        unsafe { std::slice::from_raw_parts(resolve(*loc, base), byte_size(t)) }.to_vec()
    }

    /// Copies the inputs into their arena ranges (every run needs this: the arena reuses an
    /// input's range once the input is dead) and runs every step; [`Executable::outputs`] then
    /// reads the results.
    pub fn run_encoded(&mut self, inputs: &EncodedInputs) -> Result<(), ExecError> {
        self.place_inputs(inputs);
        self.run_steps(|_, step| step())
    }

    /// The outputs of the last run.
    pub fn outputs(&self) -> Vec<Literal> {
        let base = self.arena.as_ptr();
        self.outputs.iter().map(|(loc, t)| read_literal(resolve(*loc, base), t)).collect()
    }

    fn place_inputs(&mut self, inputs: &EncodedInputs) {
        let base = self.arena.as_ptr();
        for (bytes, (at, _)) in inputs.0.iter().zip(&self.inputs) {
            // SAFETY: the input's range was allocated with exactly this size, which
            // `encode_inputs` checked `bytes` against.
            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), base.add(*at), bytes.len()) };
        }
    }

    /// Runs every step, through `wrap` (which may time it), on the arena as it is: callers
    /// place the inputs first. A step's error names its op and node.
    fn run_steps(
        &self,
        mut wrap: impl FnMut(&StepInfo, &dyn Fn() -> Result<(), String>) -> Result<(), String>,
    ) -> Result<(), ExecError> {
        let base = self.arena.as_ptr();
        for (info, step) in &self.steps {
            wrap(info, &|| step(base)).map_err(|reason| ExecError::Step {
                op: info.name.clone(),
                label: info.label.clone(),
                reason,
            })?;
        }
        Ok(())
    }

    /// Runs on `inputs` `iters` times timing every step; returns each step's median.
    pub fn profile(&mut self, inputs: &EncodedInputs, iters: usize) -> Result<Vec<StepTime>, ExecError> {
        let mut samples: Vec<Vec<f64>> = vec![Vec::new(); self.steps.len()];
        let mut starts = vec![0.0; self.steps.len()];
        for _ in 0..iters.max(1) {
            let run = self.profile_run(inputs)?;
            for (s, t) in samples.iter_mut().zip(run.step_us) {
                s.push(t);
            }
            starts = run.start_us;
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

    /// One run with every step timed: for comparisons that alternate programs run by run.
    pub fn profile_run(&mut self, inputs: &EncodedInputs) -> Result<ProfiledRun, ExecError> {
        let mut step_us = Vec::with_capacity(self.steps.len());
        let mut start_us = Vec::with_capacity(self.steps.len());
        self.place_inputs(inputs);
        let run_start = std::time::Instant::now();
        self.run_steps(|_, step| {
            let t = std::time::Instant::now();
            start_us.push((t - run_start).as_secs_f64() * 1e6);
            step()?;
            step_us.push(t.elapsed().as_secs_f64() * 1e6);
            Ok(())
        })?;
        Ok(ProfiledRun { total_us: run_start.elapsed().as_secs_f64() * 1e6, step_us, start_us })
    }

    /// What each step is, in the order [`Executable::profile_run`] times them.
    pub fn steps(&self) -> impl Iterator<Item = &StepInfo> {
        self.steps.iter().map(|(info, _)| info)
    }

    pub fn module(&self) -> &Module {
        &self.module
    }

    /// Fills the arena with NaNs: a run after this must still produce exact outputs, which
    /// shows every value is written before it is read.
    pub fn poison(&mut self) {
        self.arena.as_mut_slice().fill(0xff);
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

/// One input tensor as raw bytes in the arena's encoding ([`Executable::encode_raw`]).
#[derive(Clone, Copy, Debug)]
pub struct RawTensor<'a> {
    pub element: ElementType,
    pub shape: &'a [u64],
    pub bytes: &'a [u8],
}

fn read_literal(p: *const u8, t: &TensorType) -> Literal {
    // SAFETY: `p` points at a value of type `t`.
    let bytes = unsafe { std::slice::from_raw_parts(p, byte_size(t)) };
    let d = DenseElements { ty: t.clone(), storage: DenseStorage::Inline(Arc::from(bytes)) };
    Literal::decode(&d, &Default::default()).expect("a value of its own type decodes")
}

fn write_literal(p: *mut u8, l: &Literal) {
    let bytes = l.to_bytes();
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
