//! `smelt run`: a model run fused, unfused, both (compared), or by the reference interpreter,
//! timed, with per-kernel profiles, traces and profile records on request.

use crate::driver::{fail, Failure, ModelSource};
use crate::tables::{accuracy_table, Peak};
use smelt_compiler::diagnostics::SourceMap;
use smelt_compiler::literal::Literal;
use smelt_passes::fuse::Fuse;
use smelt_passes::specialize::specialize_to_inputs;

/// How `smelt run` runs a model.
pub struct RunOptions {
    pub mode: String,
    pub iters: usize,
    pub threads: Option<usize>,
    pub profile_kernels: Option<String>,
    pub target: String,
    pub cost_profile: Option<String>,
    pub record: Option<String>,
    /// Where outputs go as TensorProto files: the i-th path takes the i-th output; one folder
    /// takes every output as `output_<i>.pb` (the layout of ONNX's test data sets).
    pub output: Vec<String>,
    pub json: bool,
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
        let inputs = input
            .iter()
            .map(|p| smelt_runtime::tensor_io::read_tensor(std::path::Path::new(p)).map_err(fail))
            .collect::<Result<_, _>>()?;
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
                .run_pass(&mut Fuse::new(cost_model.clone()), &mut m, &mut std::io::stderr())
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
    Ok(if how.json { serde_json::to_string_pretty(&report).unwrap() + "\n" } else { text })
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

/// A Chrome trace (`chrome://tracing`, Perfetto) of one profiled run.
fn write_trace(path: &str, kernels: &[crate::measure::KernelTime]) -> Result<(), Failure> {
    let events: Vec<serde_json::Value> = kernels
        .iter()
        .map(|k| {
            serde_json::json!({
                "name": k.pattern, "cat": "kernel", "ph": "X", "ts": k.start_us, "dur": k.measured_us,
                "pid": 1, "tid": 1, "args": { "node": k.label, "predicted_us": k.predicted_us }
            })
        })
        .collect();
    let doc = serde_json::json!({ "traceEvents": events, "displayTimeUnit": "ms" });
    crate::driver::write_output(path, &serde_json::to_string_pretty(&doc).expect("serializable"))
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
