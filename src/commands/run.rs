//! `smelt run`: a model run fused, unfused, both (compared), or by the reference interpreter,
//! timed, with per-kernel profiles, traces and profile records on request.

use crate::driver::{fail, Failure, ModelSource};
use crate::tables::{accuracy_table, Peak};
use smelt_compiler::diagnostics::SourceMap;
use smelt_compiler::literal::Literal;
use smelt_passes::fuse::Fuse;
use smelt_passes::specialize::specialize_to_inputs;

/// How `smelt run` runs a model (its command-line options).
#[derive(clap::Args)]
pub struct RunOptions {
    /// execution mode
    #[arg(long, default_value = "fused", value_parser = ["fused", "unfused", "both", "reference"])]
    pub mode: String,
    /// timed runs (after one warm-up run); the median is reported
    #[arg(long, default_value_t = 10)]
    pub iters: usize,
    /// worker threads every kernel splits its work over: products, convolutions, attention
    /// heads, rows of elementwise and reduction programs (default: all cores)
    #[arg(long)]
    pub threads: Option<usize>,
    /// time every kernel of the fused (else unfused) run beside its predicted time; with a
    /// FILE, also write a Chrome trace (opens in Perfetto)
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "")]
    pub profile_kernels: Option<String>,
    /// target and calibration profile the fusion decisions use
    #[arg(long, default_value = "host")]
    pub target: String,
    /// calibration profile (JSON): its measurements price the fusion, and the kernel
    /// variants `smelt calibrate` chose on this CPU are taken without probing
    #[arg(long, value_name = "FILE")]
    pub cost_profile: Option<String>,
    /// append each kernel's measured time (of the fused, else the unfused run) to this
    /// calibration profile (created when missing; safe with concurrent writers)
    #[arg(long, value_name = "PROFILE")]
    pub record: Option<String>,
    /// write outputs as ONNX TensorProto files: repeat for the 2nd, 3rd, ... output, or give
    /// one folder for every output as `output_<i>.pb`
    #[arg(long)]
    pub output: Vec<String>,
    /// write every output into this folder as `<output name>.npy` (or .pb, see --output-format)
    #[arg(long, value_name = "DIR")]
    pub save_outputs: Option<String>,
    /// the files --save-outputs writes
    #[arg(long, default_value = "npy", value_parser = ["npy", "pb"])]
    pub output_format: String,
    /// print one JSON object
    #[arg(long)]
    pub json: bool,
    /// fuse without substitutions (merged parallel products): vertical fusion and
    /// recognitions only
    #[arg(long)]
    pub no_algebra: bool,
}

/// `smelt run`: runs `model` on `input` tensor files (seeded random inputs when none) as
/// `how.mode` says, and reports times, errors and output summaries.
pub fn run_model(model: &ModelSource, input: &[String], how: &RunOptions) -> Result<String, Failure> {
    let (module, inputs) = if input.is_empty() {
        let (_, module) = model.load_static()?;
        let inputs = crate::measure::random_inputs(&module).map_err(fail)?;
        (module, inputs)
    } else {
        let (_, module) = model.load()?;
        let inputs = read_inputs(&module, input)?;
        (module, inputs)
    };
    let (module, specialized) = specialize_to_inputs(&module, &inputs).map_err(fail)?;
    let threads = smelt_runtime::workers::set_threads(how.threads.unwrap_or(usize::MAX));
    if let Some(asked) = how.threads.filter(|&asked| asked > threads) {
        eprintln!("note: --threads {asked}: this process may run on {threads} cores; using {threads} threads");
    }
    let mut report = serde_json::json!({ "mode": how.mode, "threads": threads, "specialized_to_inputs": specialized });
    let all_outputs: Vec<Literal>;
    let mut text = String::new();
    if how.mode == "reference" {
        let start = std::time::Instant::now();
        let outputs = smelt_runtime::reference::run(&module, &inputs).map_err(fail)?;
        let ms = start.elapsed().as_secs_f64() * 1e3;
        report["reference_ms"] = ms.into();
        report["outputs"] = summarize(&outputs);
        text.push_str(&format!("reference: {ms:.1} ms\n"));
        all_outputs = outputs;
    } else {
        // Kernels are timed one by one only when asked for (a table, a trace or a record),
        // and only in the run they are reported from: the fused one, else the unfused.
        let cost_model = crate::measure::predictor(&how.target, how.cost_profile.as_deref()).map_err(fail)?;
        let per_kernel = how.profile_kernels.is_some() || how.record.is_some();
        let priced = |reported: bool| (per_kernel && reported).then_some(cost_model.as_ref());
        let mut fused = None;
        let mut unfused = None;
        if how.mode == "unfused" || how.mode == "both" {
            let t = crate::measure::measure(module.clone(), &inputs, how.iters, priced(how.mode == "unfused"))
                .map_err(fail)?;
            report["unfused_ms"] = t.model_ms.into();
            report["peak_bytes_unfused"] = t.info.peak_bytes.into();
            report["unfused"] = exec_json(&t);
            text.push_str(&format!("unfused: {:.3} ms median, peak {} bytes\n", t.model_ms, t.info.peak_bytes));
            unfused = Some(t);
        }
        if how.mode == "fused" || how.mode == "both" {
            // Fused by the model that prices its kernels: the target on these threads.
            let mut m = module.clone();
            smelt_passes::PassManager::default()
                .run_pass(&mut Fuse::new(cost_model.clone()).algebra(!how.no_algebra), &mut m, &mut std::io::stderr())
                .map_err(|ds| Failure(crate::driver::render(&SourceMap::default(), &ds)))?;
            let t = crate::measure::measure(m, &inputs, how.iters, priced(true)).map_err(fail)?;
            report["fused_ms"] = t.model_ms.into();
            report["peak_bytes_fused"] = t.info.peak_bytes.into();
            report["fused"] = exec_json(&t);
            text.push_str(&format!("fused:   {:.3} ms median, peak {} bytes\n", t.model_ms, t.info.peak_bytes));
            fused = Some(t);
        }
        if let (Some(f), Some(u)) = (&fused, &unfused) {
            report["speedup"] = (u.model_ms / f.model_ms).into();
            let (mut abs, mut rel) = (0.0f64, 0.0f64);
            for (a, b) in f.outputs.iter().zip(&u.outputs) {
                let (x, y) = smelt_runtime::reference::max_errors(a, b);
                abs = abs.max(x);
                rel = rel.max(y);
            }
            report["max_abs_err"] = abs.into();
            report["max_rel_err"] = rel.into();
            text.push_str(&format!("speedup {:.2}x, max abs err {abs:.3e}, rel {rel:.3e}\n", u.model_ms / f.model_ms));
        }
        if let Some(profiled) = fused.as_ref().or(unfused.as_ref()).filter(|_| per_kernel) {
            if let Some(trace) = &how.profile_kernels {
                report["kernels"] = serde_json::to_value(&profiled.kernels).expect("serializable");
                let peak = Peak::measure(threads);
                if let Some(p) = &peak {
                    report["peak_gflops"] = p.gflops().into();
                }
                text.push_str(&accuracy_table(profiled, peak.as_ref()));
                if !trace.is_empty() {
                    write_trace(trace, &profiled.kernels)?;
                }
            }
            if let Some(path) = &how.record {
                let records = profiled.records(&how.target);
                let n = records.len();
                smelt_hardware::profile::Profile::update(std::path::Path::new(path), |p| {
                    p.label(&how.target);
                    for r in records {
                        p.record_kernel(r);
                    }
                })
                .map_err(fail)?;
                report["recorded"] = n.into();
                text.push_str(&format!("recorded {n} kernels into {path}\n"));
            }
        }
        let outputs = fused.or(unfused).map(|t| t.outputs).unwrap_or_default();
        report["outputs"] = summarize(&outputs);
        all_outputs = outputs;
    }
    for (i, o) in report["outputs"].as_array().into_iter().flatten().enumerate() {
        text.push_str(&format!(
            "output {i}: {} {} mean {:.6}\n",
            o["shape"],
            o["element"],
            o["mean"].as_f64().unwrap_or(0.0)
        ));
    }
    write_outputs(&how.output, &all_outputs)?;
    if let Some(dir) = &how.save_outputs {
        save_outputs(dir, &how.output_format, &module, &all_outputs)?;
    }
    Ok(if how.json { serde_json::to_string_pretty(&report).unwrap() + "\n" } else { text })
}

/// The input tensors `specs` name, in the model's input order: `NAME=FILE` binds an input by
/// name, an `.npz` archive binds each of its arrays by name, and plain files fill the remaining
/// inputs in order. Files are `.npy`, `.npz` or ONNX `TensorProto`.
fn read_inputs(module: &smelt_compiler::Module, specs: &[String]) -> Result<Vec<Literal>, Failure> {
    use crate::tensor::Tensor;
    let func = smelt_compiler::signature::main_function(module).map_err(fail)?;
    let names = smelt_compiler::signature::input_names(module, func);
    let mut named: Vec<Option<Tensor>> = vec![None; names.len()];
    let mut bind = |name: &str, tensor: Tensor, from: &str| -> Result<(), Failure> {
        let Some(i) = names.iter().position(|n| n == name) else {
            return Err(fail(format!("{from}: the model has no input '{name}' (its inputs: {})", names.join(", "))));
        };
        if named[i].replace(tensor).is_some() {
            return Err(fail(format!("{from}: input '{name}' is given twice")));
        }
        Ok(())
    };
    let mut positional = Vec::new();
    for spec in specs {
        // `NAME=FILE`, unless a file is literally called that.
        let by_name = spec.split_once('=').filter(|_| !std::path::Path::new(spec).exists());
        if let Some((name, file)) = by_name {
            bind(name, Tensor::read(file).map_err(fail)?, spec)?;
        } else if spec.ends_with(".npz") {
            for (name, tensor) in Tensor::read_npz(spec).map_err(fail)? {
                bind(&name, tensor, spec)?;
            }
        } else {
            positional.push(Tensor::read(spec).map_err(fail)?);
        }
    }
    let mut positional = positional.into_iter();
    let mut inputs = Vec::new();
    for (slot, name) in named.into_iter().zip(&names) {
        match slot.or_else(|| positional.next()) {
            Some(t) => inputs.push(t.to_literal()),
            None => return Err(fail(format!("input '{name}' is not given (inputs: {})", names.join(", ")))),
        }
    }
    if positional.next().is_some() {
        return Err(fail(format!("more input files than the model's {} inputs ({})", names.len(), names.join(", "))));
    }
    Ok(inputs)
}

/// Writes every output as `dir/<output name>.<format>` (names made file-safe).
fn save_outputs(dir: &str, format: &str, module: &smelt_compiler::Module, outputs: &[Literal]) -> Result<(), Failure> {
    let func = smelt_compiler::signature::main_function(module).map_err(fail)?;
    let names = smelt_compiler::signature::output_names(module, func);
    let dir = std::path::Path::new(dir);
    std::fs::create_dir_all(dir).map_err(|e| Failure(format!("{}: error: cannot create: {e}", dir.display())))?;
    for (name, o) in names.iter().zip(outputs) {
        let file: String =
            name.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
        let tensor = crate::tensor::Tensor::from_literal(o).map_err(fail)?;
        tensor.write(dir.join(format!("{file}.{format}")), name).map_err(fail)?;
    }
    Ok(())
}

/// Writes `outputs` where `paths` say ([`RunOptions::output`]).
fn write_outputs(paths: &[String], outputs: &[Literal]) -> Result<(), Failure> {
    let folder = match paths {
        [one] if one.ends_with('/') || std::path::Path::new(one).is_dir() => Some(std::path::Path::new(one)),
        _ => None,
    };
    if let Some(dir) = folder {
        std::fs::create_dir_all(dir).map_err(|e| Failure(format!("{}: error: cannot create: {e}", dir.display())))?;
        for (i, o) in outputs.iter().enumerate() {
            let name = format!("output_{i}");
            smelt_runtime::tensor_io::write_tensor(&dir.join(format!("{name}.pb")), &name, o).map_err(fail)?;
        }
        return Ok(());
    }
    if paths.len() > outputs.len() {
        return Err(fail(format!("{} --output paths for {} outputs", paths.len(), outputs.len())));
    }
    for (i, (path, o)) in paths.iter().zip(outputs).enumerate() {
        smelt_runtime::tensor_io::write_tensor(std::path::Path::new(path), &format!("output_{i}"), o).map_err(fail)?;
    }
    Ok(())
}

/// A trace of one profiled run ([`crate::trace`]).
fn write_trace(path: &str, kernels: &[crate::measure::KernelTime]) -> Result<(), Failure> {
    crate::trace::write(
        path,
        kernels.iter().map(|k| crate::trace::Span {
            name: &k.pattern,
            node: &k.label,
            start_us: k.start_us,
            duration_us: k.measured_us,
            predicted_us: k.predicted_us,
        }),
    )
}

fn exec_json(t: &crate::measure::Measured) -> serde_json::Value {
    let mut v = serde_json::to_value(&t.info).expect("serializable");
    v["compile_ms"] = t.compile_ms.into();
    v
}

fn summarize(outputs: &[Literal]) -> serde_json::Value {
    outputs
        .iter()
        .map(|o| {
            let v = o.to_f64();
            let mean = if v.is_empty() { 0.0 } else { v.iter().sum::<f64>() / v.len() as f64 };
            serde_json::json!({ "shape": o.shape, "element": o.element.name(), "mean": mean })
        })
        .collect()
}
