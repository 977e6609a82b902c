//! Measuring compiled modules: per-kernel medians beside what a cost model predicted, and the
//! whole run's median. `smelt run --record`, `smelt tune`, `smelt report --measure` and
//! `smelt calibrate` all measure through here, so their numbers mean the same thing.

use smelt_compiler::ir::OpId;
use smelt_compiler::Module;
use smelt_hardware::profile::KernelRecord;
use smelt_hardware::target::Target;
use smelt_hardware::HardwareError;
use smelt_passes::cost::CostModel;
use smelt_passes::work::work_of;
use smelt_runtime::exec::Executable;
use smelt_runtime::Literal;
use std::sync::Arc;

/// The cost model whose predictions stand beside this process's measurements: `target` (a
/// shipped name or a .toml path) on the worker threads the runtime is set to, calibrated by
/// `profile` when one is given (whose kernel variants for this CPU the runtime then takes).
pub fn predictor(target: &str, profile: Option<&str>) -> Result<Arc<dyn CostModel>, HardwareError> {
    let target = Target::load(target)?.on_threads(smelt_runtime::workers::threads());
    if let Some(path) = profile {
        adopt_kernel_variants(std::path::Path::new(path))?;
    }
    smelt_passes::cost::model(target, profile)
}

/// [`predictor`] for `smelt tune`'s exploration: the profile's measurements choose the
/// kernels, its fusion decisions do not.
pub fn explorer(target: &str, profile: &std::path::Path) -> Result<Arc<dyn CostModel>, HardwareError> {
    let target = Target::load(target)?.on_threads(smelt_runtime::workers::threads());
    adopt_kernel_variants(profile)?;
    let p = smelt_hardware::profile::Profile::load(profile)?;
    p.check_prices(&target.name, &profile.display().to_string())?;
    let roofline = smelt_passes::cost::Roofline { target };
    Ok(Arc::new(smelt_passes::cost::Calibrated::exploring(roofline, p)))
}

/// The kernel variants `smelt calibrate` chose on this CPU and stored in the profile at `path`
/// decide ahead of the per-CPU cache and of probing.
pub fn adopt_kernel_variants(path: &std::path::Path) -> Result<(), HardwareError> {
    let profile = smelt_hardware::profile::Profile::load(path)?;
    if let Some(chosen) = profile.kernel_variants.get(&smelt_runtime::variants::cpu_id()) {
        smelt_runtime::variants::adopt(chosen);
    }
    Ok(())
}

/// One executed op (a kernel or an op left unfused) of a measured run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct KernelTime {
    /// Position in `@main`'s body.
    pub index: usize,
    /// The kernel's pattern, or the op name without its dialect.
    pub pattern: String,
    /// ONNX node names it came from.
    pub label: String,
    pub signature: String,
    pub flops: u64,
    pub bytes: u64,
    pub predicted_us: f64,
    /// Median over the profiled runs (the sum of the op's steps' medians).
    pub measured_us: f64,
    /// Start offset within the last profiled run, for traces.
    pub start_us: f64,
    /// A kernel's body ops as they would run alone: (op, signature).
    #[serde(skip)]
    pub parts: Vec<(String, String)>,
}

impl KernelTime {
    /// |predicted - measured| / measured.
    pub fn error(&self) -> f64 {
        relative_error(self.predicted_us, self.measured_us)
    }
}

pub fn relative_error(predicted: f64, measured: f64) -> f64 {
    if measured > 0.0 {
        (predicted - measured).abs() / measured
    } else {
        0.0
    }
}

/// A module measured on given inputs.
pub struct Measured {
    /// Median of whole runs.
    pub model_ms: f64,
    pub kernels: Vec<KernelTime>,
    pub outputs: Vec<Literal>,
    pub info: smelt_runtime::exec::ExecInfo,
    pub compile_ms: f64,
    pub trials: u32,
    /// (90th - 10th percentile) / median of the whole runs.
    pub spread: f64,
}

impl Measured {
    /// What the cost model predicted for the whole run: kernels run one after another.
    pub fn predicted_ms(&self) -> f64 {
        self.kernels.iter().map(|k| k.predicted_us).sum::<f64>() / 1e3
    }

    /// The median kernel's relative prediction error.
    pub fn kernel_median_error(&self) -> f64 {
        let mut errors: Vec<f64> = self.kernels.iter().map(KernelTime::error).collect();
        errors.sort_by(f64::total_cmp);
        errors.get(errors.len() / 2).copied().unwrap_or(0.0)
    }

    pub fn model_error(&self) -> f64 {
        relative_error(self.predicted_ms(), self.model_ms)
    }

    /// The measurements as profile records for `target`.
    pub fn records(&self, target: &str) -> Vec<KernelRecord> {
        self.kernels
            .iter()
            .map(|k| KernelRecord {
                signature: k.signature.clone(),
                pattern: k.pattern.clone(),
                target: target.to_string(),
                flops: k.flops,
                bytes: k.bytes,
                predicted_us: k.predicted_us,
                measured_us: k.measured_us,
                trials: self.trials,
                parts: k.parts.iter().map(|(_, signature)| signature.clone()).collect(),
                ..KernelRecord::default()
            })
            .collect()
    }
}

/// Compiles `module`, runs it once to warm up and times `iters` whole runs; with a `model`, then
/// `iters` runs with every step timed, each executed op priced by `model` as the extractor
/// would (without one, `kernels` stays empty).
pub fn measure(
    module: Module,
    inputs: &[Literal],
    iters: usize,
    model: Option<&dyn CostModel>,
) -> Result<Measured, String> {
    let start = std::time::Instant::now();
    let mut exe = Executable::compile(module)?;
    let compile_ms = start.elapsed().as_secs_f64() * 1e3;
    // Timed runs copy pre-encoded inputs in and leave the outputs in place: what is measured is
    // the model, as an engine with bound inputs runs it, not the conversion of literals.
    let encoded = exe.encode_inputs(inputs)?;
    exe.run_encoded(&encoded)?;
    let mut times = Vec::with_capacity(iters);
    for _ in 0..iters.max(1) {
        let t = std::time::Instant::now();
        exe.run_encoded(&encoded)?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let outputs = exe.outputs();
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    let spread = (at(0.9) - at(0.1)) / at(0.5).max(f64::MIN_POSITIVE);
    let steps = match model {
        Some(_) => exe.profile(&encoded, iters)?,
        None => Vec::new(),
    };
    let m = exe.module();
    let ops: Vec<OpId> = {
        let func = smelt_compiler::signature::main_function(m)?;
        let entry = m.body_of(func);
        m.block_ops(entry).collect()
    };
    let mut kernels: Vec<KernelTime> = Vec::new();
    for s in &steps {
        if let Some(k) = kernels.last_mut().filter(|k| k.index == s.step.op_index) {
            k.measured_us += s.median_us;
            continue;
        }
        let op = ops[s.step.op_index];
        let work = work_of(m, op);
        let pattern = m.op(op).attr("pattern").and_then(|p| p.as_str()).map(str::to_string);
        let pattern = pattern.unwrap_or_else(|| m.op(op).name().trim_start_matches("smelt.").to_string());
        kernels.push(KernelTime {
            index: s.step.op_index,
            predicted_us: model.map_or(0.0, |model| model.estimate(&pattern, &work).seconds * 1e6),
            pattern,
            label: smelt_runtime::exec::label_of(&m.op(op).loc),
            signature: work.signature.clone(),
            flops: work.flops,
            bytes: work.bytes,
            measured_us: s.median_us,
            start_us: s.start_us,
            parts: work
                .parts
                .iter()
                .map(|(p, w)| (p.trim_start_matches("smelt.").to_string(), w.signature.clone()))
                .collect(),
        });
    }
    Ok(Measured {
        model_ms: times[times.len() / 2],
        kernels,
        outputs,
        info: exe.info.clone(),
        compile_ms,
        trials: iters.max(1) as u32,
        spread,
    })
}

/// Seeded random inputs of `@main`'s argument types (integers 0 or 1, floats in [-1, 1)).
pub fn random_inputs(m: &Module) -> Result<Vec<Literal>, String> {
    use smelt_compiler::literal::Data;
    let func = smelt_compiler::signature::main_function(m)?;
    let entry = m.body_of(func);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    m.block(entry)
        .args()
        .iter()
        .map(|a| {
            let ty = m.value_type(*a).as_tensor().and_then(|t| t.static_shape().map(|s| (s, t.element)));
            let (shape, element) = ty.ok_or("random inputs need static input shapes (use --shape)")?;
            let n: u64 = shape.iter().product();
            let data = if element.is_float() {
                Data::F((0..n).map(|_| (next() >> 11) as f64 / (1u64 << 52) as f64 - 1.0).collect())
            } else {
                Data::I((0..n).map(|_| (next() & 1) as i64).collect())
            };
            Ok(Literal { shape, element, data })
        })
        .collect()
}
