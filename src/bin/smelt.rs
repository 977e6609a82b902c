//! `smelt`: user commands around the compiler.

use clap::{Args, Parser, Subcommand};
use smelt::driver::{is_onnx, load_mlir, load_onnx, parse_shapes, parse_weights, read_text, Failure};
use smelt_compiler::diagnostics::SourceMap;
use smelt_compiler::dialect::AttrDefault;
use smelt_compiler::literal::Literal;
use smelt_compiler::names;
use smelt_compiler::onnx::ImportOptions;
use smelt_compiler::Module;
use smelt_hardware::target::Target;
use smelt_passes::characterize::{characterize, count_params, Characterization};
use smelt_passes::fuse::Fuse;
use smelt_passes::fusion::report::{fusion_report, seed_result, FusionReport};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "smelt", version, about = "Smelt: a deep-learning graph compiler with measured fusion costs")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// How to load a model: an ONNX file or MLIR text.
#[derive(Args)]
struct ModelArgs {
    /// the model: .onnx, or .mlir text
    model: String,
    /// ONNX: pin an input's shape (NAME=DIMS, like input=1x3x224x224); repeatable
    #[arg(long, value_name = "NAME=DIMS")]
    shape: Vec<String>,
    /// ONNX: where weights come from: file, random, or random:SEED
    #[arg(long, default_value = "file")]
    weights: String,
}

impl ModelArgs {
    /// Loads the model; returns it as imported and after the cleanup pipeline (unfused).
    fn load(&self) -> Result<(Module, Module), Failure> {
        let mut module = if is_onnx(&self.model) {
            let options = ImportOptions { shapes: parse_shapes(&self.shape)?, weights: parse_weights(&self.weights)? };
            load_onnx(&self.model, &options)?
        } else {
            let text = read_text(&self.model)?;
            let mut sources = SourceMap::default();
            sources.add(&self.model, &text);
            load_mlir(&text, &self.model, &sources)?
        };
        let imported = module.clone();
        smelt_passes::run_pipeline(&mut module, smelt_passes::CLEANUP_PIPELINE)
            .map_err(|ds| Failure(smelt::driver::render(&SourceMap::default(), &ds)))?;
        Ok((imported, module))
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run a model: `fused` runs the extracted kernels, `unfused` one kernel per op with every
    /// intermediate materialized, `both` compares them; `reference` uses the reference
    /// interpreter (f64, every value materialized), the oracle the others are checked against.
    Run {
        #[command(flatten)]
        model: ModelArgs,
        /// execution mode
        #[arg(long, default_value = "fused", value_parser = ["fused", "unfused", "both", "reference"])]
        mode: String,
        /// timed runs (after one warm-up run); the median is reported
        #[arg(long, default_value_t = 10)]
        iters: usize,
        /// worker threads every kernel splits its work over: products, convolutions, attention
        /// heads, rows of elementwise and reduction programs (default: all cores)
        #[arg(long)]
        threads: Option<usize>,
        /// time every kernel of the fused (else unfused) run beside its predicted time; with a
        /// FILE, also write a Chrome trace (opens in Perfetto)
        #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "")]
        profile_kernels: Option<String>,
        /// target and calibration profile the fusion decisions use
        #[arg(long, default_value = "host")]
        target: String,
        #[arg(long, value_name = "FILE")]
        cost_profile: Option<String>,
        /// append each kernel's measured time (of the fused, else the unfused run) to this
        /// calibration profile (created when missing; safe with concurrent writers)
        #[arg(long, value_name = "PROFILE")]
        record: Option<String>,
        /// input tensors as ONNX TensorProto files, in input order (default: seeded random)
        #[arg(long)]
        input: Vec<String>,
        /// write the first output as an ONNX TensorProto
        #[arg(long)]
        output: Option<String>,
        /// print one JSON object
        #[arg(long)]
        json: bool,
    },
    /// Run ONNX backend conformance cases (folders with model.onnx and test_data_set_*):
    /// import, verify and clean up each; unsupported operators and types are skipped.
    Conformance {
        /// case folders, or folders of case folders
        dirs: Vec<String>,
        /// also list the cases that pass
        #[arg(short, long)]
        verbose: bool,
        /// only import and verify; do not run the test data
        #[arg(long)]
        no_execute: bool,
        /// how to run each case: the JIT executor on the fused and the unfused module (`jit`),
        /// the reference interpreter, or all three
        #[arg(long, default_value = "all", value_parser = ["jit", "reference", "all"])]
        mode: String,
    },
    /// Characterize a model: FLOPs, parameters, bytes, arithmetic intensity, parallelism,
    /// concurrency and the compute/memory verdict per op and in total.
    Report {
        #[command(flatten)]
        model: ModelArgs,
        /// print one JSON object instead of the table
        #[arg(long)]
        json: bool,
        /// batch size to report at (activations scale, weights do not)
        #[arg(long)]
        batch: Option<u64>,
        /// target whose ridge point decides compute- versus memory-bound (name or .toml file)
        #[arg(long, default_value = "host")]
        target: String,
        /// calibration profile (JSON) whose measurements refine the target's roofline
        #[arg(long, value_name = "FILE")]
        cost_profile: Option<String>,
        /// also run the fused model (random inputs, one thread) and put each kernel's measured
        /// time beside its prediction
        #[arg(long)]
        measure: bool,
        /// with --measure: draw the kernels against the roofline ceilings into this SVG file
        #[arg(long, value_name = "FILE", requires = "measure")]
        svg: Option<String>,
        /// with --measure: timed runs
        #[arg(long, default_value_t = 10)]
        iters: usize,
    },
    /// Measure this machine into a calibration profile: compute and bandwidth ceilings, every
    /// op kind over a shape sweep, and the seeds' fusion patterns fused versus unfused through
    /// the JIT runtime (one thread). Merges into an existing profile.
    Calibrate {
        /// the profile to write (merged into when it exists)
        #[arg(short, default_value = "profile.json")]
        o: String,
        /// fewer shapes and trials (under two minutes)
        #[arg(long)]
        quick: bool,
        /// fusion pattern groups: linear, conv, attention, all, or none
        #[arg(long, default_value = "all", value_delimiter = ',')]
        patterns: Vec<String>,
        /// op kinds of the sweep (see the list in --help of `smelt calibrate`), all, or none
        #[arg(long, default_value = "all", value_delimiter = ',')]
        ops: Vec<String>,
        /// the target description the measurements belong to
        #[arg(long, default_value = "host")]
        target: String,
    },
    /// Close the loop: measure the unfused ops, then fuse under the calibrated model, run, and
    /// record each kernel's time into the profile, round after round, until the chosen kernels
    /// stop changing; print predicted against measured per kernel and for the model, and the
    /// fusion decisions that differ from the roofline's.
    Tune {
        #[command(flatten)]
        model: ModelArgs,
        /// the profile to record into (created when missing)
        #[arg(short, default_value = "profile.json")]
        o: String,
        #[arg(long, default_value = "host")]
        target: String,
        /// timed runs per measurement (after a warm-up run); medians are used
        #[arg(long, default_value_t = 10)]
        iters: usize,
        /// at most this many fuse -> run -> record rounds
        #[arg(long, default_value_t = 6)]
        max_rounds: usize,
        /// worker threads (predictions are for this count; default 1)
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// print one JSON object
        #[arg(long)]
        json: bool,
    },
    /// Map the fused kernels onto a target (GPU, TPU, KPU or CPU) and predict how they run:
    /// launch geometry, buffers, time, energy, beside the same model unfused.
    Plan {
        #[command(flatten)]
        model: ModelArgs,
        /// target: a shipped name (h100-sxm, h100-pcie, tpu-v4, kpu-t2, kpu-t100, i7-12700k,
        /// ryzen7, host) or a .toml file
        #[arg(long, default_value = "h100-sxm")]
        target: String,
        /// batch size to plan for (activations scale, weights do not)
        #[arg(long)]
        batch: Option<u64>,
        /// f32, tf32 (f32 storage, TF32 matrix units) or bf16
        #[arg(long, default_value = "f32")]
        dtype: String,
        /// graph (captured and replayed) or stream (each kernel launched from the host)
        #[arg(long, default_value = "graph")]
        launch: String,
        /// print the plan as one JSON object instead of the table
        #[arg(long)]
        json: bool,
        /// also write the JSON plan to this file
        #[arg(short, value_name = "FILE")]
        o: Option<String>,
    },
    /// Calibrate a GPU target's efficiencies from measured fusion-pattern timings (the format
    /// of h100-fusion-patterns.json, written by scripts/gpu_fusion_patterns.py) and write the
    /// calibrated target description.
    FitTarget {
        /// the measured pattern timings (JSON)
        timings: String,
        /// the GPU target to calibrate (name or .toml file)
        #[arg(long, default_value = "h100-sxm")]
        target: String,
        /// write the calibrated target description (TOML) here
        #[arg(short, value_name = "FILE")]
        o: Option<String>,
        /// print one JSON object instead of the table
        #[arg(long)]
        json: bool,
    },
    /// List the operations of the smelt dialect: operands, attributes with their defaults, class,
    /// the ONNX operator each imports from one to one, FLOP rule and summary.
    Ops,
    /// Write the dialect as IRDL, for `mlir-opt --irdl-file=...`.
    Irdl {
        /// output file ('-' for stdout)
        #[arg(short, default_value = "-")]
        o: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            model,
            mode,
            iters,
            threads,
            profile_kernels,
            target,
            cost_profile,
            record,
            input,
            output,
            json,
        } => {
            let how = RunOptions { mode, iters, threads, profile_kernels, target, cost_profile, record, output, json };
            finish(run_model(&model, &input, &how))
        }
        Command::Conformance { dirs, verbose, no_execute, mode } => {
            conformance(&dirs, verbose, (!no_execute).then_some(mode.as_str()))
        }
        Command::Report { model, json, batch, target, cost_profile, measure, svg, iters } => {
            let measure = measure.then_some(MeasureOptions { svg, iters });
            finish(report(&model, json, batch, &target, cost_profile.as_deref(), measure))
        }
        Command::Calibrate { o, quick, patterns, ops, target } => {
            finish(calibrate(&o, smelt::calibrate::Options { quick, patterns, ops, target }))
        }
        Command::Tune { model, o, target, iters, max_rounds, threads, json } => {
            finish(tune(&model, &o, &target, iters, max_rounds, threads, json))
        }
        Command::Plan { model, target, batch, dtype, launch, json, o } => {
            finish(plan(&model, &target, batch, &dtype, &launch, json, o.as_deref()))
        }
        Command::FitTarget { timings, target, o, json } => finish(fit_target(&timings, &target, o.as_deref(), json)),
        Command::Ops => {
            for def in smelt_compiler::dialect::all_ops() {
                let operands: Vec<String> = def.operands.iter().map(slot).collect();
                let attrs: Vec<String> = def
                    .attributes
                    .iter()
                    .map(|a| match (a.required, a.default) {
                        (true, _) => a.name.to_string(),
                        (false, AttrDefault::None) => format!("{}?", a.name),
                        (false, d) => format!("{} = {d}", a.name),
                    })
                    .collect();
                println!("{:<26} ({}) {{{}}}", def.name, operands.join(", "), attrs.join(", "));
                println!("{:<26} {}", "", def.summary);
                let onnx = def.onnx.map(|o| format!("; imports ONNX {o}")).unwrap_or_default();
                println!("{:<26} {:?}; FLOPs: {}{onnx}", "", def.class, def.flops);
            }
            ExitCode::SUCCESS
        }
        Command::Irdl { o } => {
            let text = smelt_compiler::irdl::generate();
            if o == "-" {
                print!("{text}");
            } else if let Err(e) = std::fs::write(&o, text) {
                eprintln!("{o}: error: cannot write: {e}");
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
    }
}

fn plan(
    model: &ModelArgs,
    target: &str,
    batch: Option<u64>,
    dtype: &str,
    launch: &str,
    json: bool,
    out: Option<&str>,
) -> Result<String, Failure> {
    use smelt_passes::plan::{Dtype, LaunchMode, PlanOptions};
    let fail = |e: String| Failure(format!("error: {e}"));
    let options = PlanOptions {
        batch,
        dtype: Dtype::parse(dtype).map_err(fail)?,
        launch: LaunchMode::parse(launch).map_err(fail)?,
    };
    let (_, cleaned) = model.load()?;
    let p = smelt::plan::plan_model(&cleaned, target, &options)
        .map_err(|e| Failure(format!("{}: error: {e}", model.model)))?;
    let mut value = serde_json::to_value(&p).expect("serializable");
    value["model"] = serde_json::Value::String(model.model.clone());
    let text = serde_json::to_string_pretty(&value).expect("serializable") + "\n";
    if let Some(path) = out {
        std::fs::write(path, &text).map_err(|e| Failure(format!("{path}: error: cannot write: {e}")))?;
    }
    Ok(if json { text } else { smelt::plan::table(&model.model, &p) })
}

fn fit_target(timings: &str, target: &str, out: Option<&str>, json: bool) -> Result<String, Failure> {
    let fail = |e: String| Failure(format!("error: {e}"));
    let calibration =
        smelt_hardware::gpu_patterns::GpuPatternTimings::load(std::path::Path::new(timings)).map_err(fail)?;
    let fit = smelt::fit_target::fit(&calibration, target).map_err(fail)?;
    if let Some(path) = out {
        let header = format!(
            "# {} with efficiencies fitted by `smelt fit-target` to {timings} ({}).\n",
            fit.target.name, fit.gpu
        );
        let text = toml::to_string(&fit.target).map_err(|e| fail(format!("cannot write the target: {e}")))?;
        std::fs::write(path, header + &text).map_err(|e| Failure(format!("{path}: error: cannot write: {e}")))?;
    }
    Ok(if json {
        serde_json::to_string_pretty(&fit).expect("serializable") + "\n"
    } else {
        smelt::fit_target::table(&fit)
    })
}

fn calibrate(path: &str, options: smelt::calibrate::Options) -> Result<String, Failure> {
    let fail = |e: String| Failure(format!("error: {e}"));
    for group in &options.patterns {
        if !smelt::calibrate::PATTERN_GROUPS.contains(&group.as_str()) && group != "all" && group != "none" {
            return Err(fail(format!(
                "unknown pattern group '{group}' (choose from {}, all, none)",
                smelt::calibrate::PATTERN_GROUPS.join(", ")
            )));
        }
    }
    for op in &options.ops {
        if !smelt::calibrate::SWEPT_OPS.contains(&op.as_str()) && op != "all" && op != "none" {
            return Err(fail(format!(
                "unknown op '{op}' for the sweep (choose from {}, all, none)",
                smelt::calibrate::SWEPT_OPS.join(", ")
            )));
        }
    }
    let bar = indicatif::ProgressBar::new(1);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {pos}/{len} {msg}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    let measured = smelt::calibrate::calibrate(&options, &mut |done, total, what| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
        bar.set_message(what.to_string());
    })
    .map_err(fail)?;
    bar.finish_and_clear();
    let merged = smelt_hardware::profile::Profile::update(std::path::Path::new(path), |p| {
        p.metadata = measured.metadata.clone();
        p.peaks = measured.peaks.clone();
        for o in &measured.operation_profiles {
            p.record_operation(o.clone());
        }
        for f in &measured.fusion_profiles {
            p.record_fusion(f.clone());
        }
        for r in &measured.kernel_records {
            p.record_kernel(r.clone());
        }
        p.clone()
    })
    .map_err(fail)?;
    Ok(smelt::calibrate::summary(&merged) + &format!("\nwrote {path}\n"))
}

fn tune(
    model: &ModelArgs,
    path: &str,
    target: &str,
    iters: usize,
    max_rounds: usize,
    threads: usize,
    json: bool,
) -> Result<String, Failure> {
    let fail = |e: String| Failure(format!("error: {e}"));
    let (_, module) = model.load()?;
    let inputs = smelt::measure::random_inputs(&module).map_err(fail)?;
    let (module, _) = specialize(&module, &inputs).map_err(fail)?;
    smelt_runtime::workers::set_threads(threads);
    let options = smelt::tune::Options { target, profile: std::path::Path::new(path), iters, max_rounds };
    let t = smelt::tune::tune(&module, &inputs, &options).map_err(fail)?;
    let last = &t.last;
    if json {
        let value = serde_json::json!({
            "model": model.model,
            "profile": path,
            "threads": threads,
            "rounds": t.rounds.len(),
            "converged": t.converged,
            "predicted_ms": last.predicted_ms(),
            "measured_ms": last.model_ms,
            "kernel_median_abs_error": last.kernel_median_error(),
            "model_abs_error": last.model_error(),
            "history": t.rounds,
            "kernels": last.kernels,
            "flips": t.flips,
            "roofline_measured_ms": t.roofline_measured_ms,
        });
        return Ok(serde_json::to_string_pretty(&value).expect("serializable") + "\n");
    }
    let mut out = String::new();
    for r in &t.rounds {
        out.push_str(&format!(
            "round {}: {} kernels ({} new), predicted {:.3} ms, measured {:.3} ms\n",
            r.round, r.kernels, r.new_kernels, r.predicted_ms, r.measured_ms
        ));
    }
    out.push_str(if t.converged { "converged: the kernels stopped changing\n" } else { "stopped at --max-rounds\n" });
    out.push('\n');
    out.push_str(&accuracy_table(last, None));
    if t.flips.is_empty() {
        out.push_str("no fusion decision differs from the roofline's\n");
    }
    for f in &t.flips {
        out.push_str(&format!(
            "flipped ({}x): roofline [{}] -> tuned [{}]: {:.1} us measured against {:.1} us for the roofline's\n",
            f.count, f.roofline, f.tuned, f.tuned_choice_us, f.roofline_choice_us
        ));
    }
    if let Some(ms) = t.roofline_measured_ms {
        out.push_str(&format!(
            "model: the roofline's fusion measured {ms:.3} ms, the tuned one {:.3} ms\n",
            last.model_ms
        ));
    }
    out.push_str(&format!("recorded into {path}\n"));
    Ok(out)
}

/// Predicted against measured time per kernel and for the model, with the errors, and each
/// kernel's GFLOP/s; with `peak` (of the cores the run used, measured in the same process),
/// also its share of it.
fn accuracy_table(measured: &smelt::measure::Measured, peak: Option<&Peak>) -> String {
    let kernels = &measured.kernels;
    let mut out = format!(
        "{:>4}  {:<32} {:<22} {:>11} {:>11} {:>7} {:>8}{}\n",
        "#",
        "kernel",
        "node",
        "predicted",
        "measured",
        "error",
        "GFLOP/s",
        if peak.is_some() { "  % peak" } else { "" }
    );
    for (i, k) in kernels.iter().enumerate() {
        let gflops = (k.flops > 0).then(|| k.flops as f64 / k.measured_us / 1e3);
        let rate = gflops.map_or(format!("{:>8}", "-"), |g| format!("{g:>8.1}"));
        let share = match (peak, gflops) {
            (None, _) => String::new(),
            (Some(p), Some(g)) => format!("{:>7.0}%", 100.0 * g / p.gflops()),
            (Some(_), None) => format!("{:>8}", "-"),
        };
        out.push_str(&format!(
            "{i:>4}  {:<32} {:<22} {:>8.1} us {:>8.1} us {:>6.1}% {rate}{share}\n",
            truncate(&k.pattern, 32),
            truncate(&k.label, 22),
            k.predicted_us,
            k.measured_us,
            k.error() * 100.0
        ));
    }
    out.push_str(&format!(
        "\nmodel: predicted {:.3} ms, measured {:.3} ms, error {:.1}%; median kernel error {:.1}%\n",
        measured.predicted_ms(),
        measured.model_ms,
        measured.model_error() * 100.0,
        measured.kernel_median_error() * 100.0
    ));
    if let Some(p) = peak {
        out.push_str(&format!(
            "peak: {:.1} GFLOP/s = {} x {:.1}, the {}-bit FMA peak of one core measured before the run \
             (FLOPs count the direct computation: a Winograd convolution can pass 100%)\n",
            p.gflops(),
            p.threads,
            p.core.gflops,
            p.core.bits
        ));
    }
    out
}

/// The vector FMA peak of the cores a run uses, measured just before it.
struct Peak {
    core: smelt_runtime::microbench::FmaPeak,
    threads: usize,
}

impl Peak {
    fn measure(threads: usize) -> Option<Peak> {
        Some(Peak { core: smelt_runtime::microbench::fma_peak(5)?, threads })
    }

    fn gflops(&self) -> f64 {
        self.core.gflops * self.threads as f64
    }
}

fn slot(s: &smelt_compiler::dialect::SlotDef) -> String {
    use smelt_compiler::dialect::Arity;
    match s.arity {
        Arity::One => s.name.to_string(),
        Arity::Optional => format!("{}?", s.name),
        Arity::Variadic => format!("{}...", s.name),
    }
}

/// Prints a command's output, or its error to stderr with a failing exit code.
fn finish(result: Result<String, Failure>) -> ExitCode {
    match result {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(f) => {
            eprintln!("{f}");
            ExitCode::FAILURE
        }
    }
}

struct MeasureOptions {
    svg: Option<String>,
    iters: usize,
}

fn report(
    model: &ModelArgs,
    json: bool,
    batch: Option<u64>,
    target_name: &str,
    cost_profile: Option<&str>,
    measure: Option<MeasureOptions>,
) -> Result<String, Failure> {
    let fail = |e: String| Failure(format!("error: {e}"));
    let target = Target::load(target_name).map_err(fail)?;
    let (imported, module) = model.load()?;
    let mut c = characterize(&module, &target, batch);
    c.params = count_params(&imported);
    let (fusion, fused) = fuse_and_report(&module, target_name, cost_profile)?;
    let measured = match &measure {
        None => None,
        Some(how) => {
            let inputs = smelt::measure::random_inputs(&module).map_err(fail)?;
            let (specialized, changed) = specialize(&module, &inputs).map_err(fail)?;
            let fused = if changed { fuse_and_report(&specialized, target_name, cost_profile)?.1 } else { fused };
            smelt_runtime::workers::set_threads(1);
            let cost_model = smelt::measure::predictor(target_name, cost_profile).map_err(fail)?;
            let m = smelt::measure::measure(fused, &inputs, how.iters, Some(cost_model.as_ref())).map_err(fail)?;
            if let Some(svg) = &how.svg {
                let (peak, bandwidth) = ceilings(&target, cost_profile).map_err(fail)?;
                smelt::roofline_svg::write(svg, &model.model, &m.kernels, peak, bandwidth).map_err(fail)?;
            }
            Some(m)
        }
    };
    let accuracy = measured.as_ref().map(|m| {
        serde_json::json!({
            "predicted_ms": m.predicted_ms(),
            "measured_ms": m.model_ms,
            "kernel_median_abs_error": m.kernel_median_error(),
            "model_abs_error": m.model_error(),
            "kernels": m.kernels,
        })
    });
    Ok(if json {
        let mut value = serde_json::to_value(&c).expect("serializable");
        value["model"] = serde_json::Value::String(model.model.clone());
        let f = serde_json::to_value(&fusion).expect("serializable");
        for key in ["kernels_before", "kernels_after", "traffic_bytes_before", "traffic_bytes_after", "pattern_counts"]
        {
            value[key] = f[key].clone();
        }
        value["fusion"] = f;
        if let Some(a) = accuracy {
            value["measured"] = a;
        }
        if let Some((ops, subgraphs, saved)) = seed_result(&model.model) {
            value["seeds"] = serde_json::json!({ "ops": ops, "subgraphs": subgraphs, "traffic_saved": saved });
        }
        serde_json::to_string_pretty(&value).expect("serializable") + "\n"
    } else {
        let mut text = report_table(&model.model, &c) + &fusion_table(&model.model, &fusion);
        if let Some(m) = &measured {
            text.push('\n');
            text.push_str(&accuracy_table(m, None));
        }
        text
    })
}

/// The ceilings a roofline picture draws: measured ones from the profile where it has them,
/// else one core of the target's nominal peak and its bandwidth.
fn ceilings(target: &Target, cost_profile: Option<&str>) -> Result<(f64, f64), String> {
    let nominal = (target.peak_flops("f32") / 1e9 / target.compute_units.max(1) as f64, target.memory_bandwidth_gbs);
    let Some(path) = cost_profile else { return Ok(nominal) };
    let p = smelt_hardware::profile::Profile::load(std::path::Path::new(path))?;
    Ok((p.peaks.measured_gflops.unwrap_or(nominal.0), p.peaks.measured_bandwidth_gbs.unwrap_or(nominal.1)))
}

/// Fuses a copy of the cleaned module the way the default pipeline does, with both extractors
/// priced, and compares it with the unfused module.
fn fuse_and_report(
    module: &Module,
    target: &str,
    cost_profile: Option<&str>,
) -> Result<(FusionReport, Module), Failure> {
    let target = Target::load(target).map_err(|e| Failure(format!("error: {e}")))?;
    let model = smelt_passes::cost::model(target, cost_profile).map_err(|e| Failure(format!("error: {e}")))?;
    let mut fuse = Fuse { compare_extractors: true, ..Fuse::new(model.clone()) };
    let mut fused = module.clone();
    smelt_passes::PassManager::default()
        .run_pass(&mut fuse, &mut fused, &mut std::io::stderr())
        .map_err(|ds| Failure(smelt::driver::render(&SourceMap::default(), &ds)))?;
    Ok((fusion_report(module, &fused, &fuse.stats, model.as_ref()), fused))
}

fn fusion_table(model: &str, f: &FusionReport) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let seeds = seed_result(model);
    let seed_kernels = seeds.map_or(String::new(), |(o, k, _)| format!("  (seeds: {o} ops -> {k} subgraphs)"));
    let seed_traffic = seeds.map_or(String::new(), |(_, _, t)| format!("  (seeds: {:.1}% saved)", t * 100.0));
    let _ = writeln!(out, "fusion            {} kernels -> {}{seed_kernels}", f.kernels_before, f.kernels_after);
    let _ = writeln!(
        out,
        "traffic           {}B -> {}B, {:.1}% saved{seed_traffic}",
        si(f.traffic_bytes_before as f64),
        si(f.traffic_bytes_after as f64),
        f.traffic_saved * 100.0
    );
    let _ = writeln!(
        out,
        "fused latency     {:.3} ms -> {:.3} ms predicted ({})",
        f.predicted_ms_before, f.predicted_ms_after, f.cost_model
    );
    let patterns: Vec<String> = f.pattern_counts.iter().map(|(p, n)| format!("{p} {n}")).collect();
    out.push_str(&wrapped("patterns          ", &patterns, ""));
    out
}

/// `head` then the comma-separated `items` and `tail`, wrapped under the value column so the
/// table stays within 100 columns.
fn wrapped(head: &str, items: &[String], tail: &str) -> String {
    let mut out = String::new();
    let mut line = head.to_string();
    for (i, item) in items.iter().enumerate() {
        let piece = if i + 1 == items.len() { format!("{item}{tail}") } else { format!("{item}, ") };
        if line.chars().count() + piece.trim_end().chars().count() > 100 {
            out.push_str(line.trim_end());
            out.push('\n');
            line = " ".repeat(18);
        }
        line.push_str(&piece);
    }
    out.push_str(&line);
    out.push('\n');
    out
}

fn si(v: f64) -> String {
    match v {
        v if v >= 1e12 => format!("{:.2} T", v / 1e12),
        v if v >= 1e9 => format!("{:.2} G", v / 1e9),
        v if v >= 1e6 => format!("{:.2} M", v / 1e6),
        v if v >= 1e3 => format!("{:.2} K", v / 1e3),
        v => format!("{v:.0} "),
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let tail: String = s.chars().rev().take(n - 1).collect::<Vec<_>>().into_iter().rev().collect();
        format!("~{tail}")
    }
}

/// The human-readable report, at most 100 columns wide.
fn report_table(model: &str, c: &Characterization) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "{model}  (target {}, ridge point {:.1} FLOP/B, batch {})", c.target, c.ridge_point, c.batch);
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:>4}  {:<14} {:<26} {:>10} {:>10} {:>7} {:>14} {:>7}",
        "#", "op", "name", "FLOP", "bytes", "FLOP/B", "NxCxS", "bound"
    );
    for r in &c.per_op {
        let par = format!("{}x{}x{}", r.parallelism.batch, r.parallelism.channel, r.parallelism.spatial);
        let _ = writeln!(
            out,
            "{:>4}  {:<14} {:<26} {:>10} {:>10} {:>7.1} {:>14} {:>7}",
            r.index,
            truncate(r.op.trim_start_matches("smelt."), 14),
            truncate(&r.name, 26),
            si(r.cost.flops as f64),
            si((r.cost.bytes_read + r.cost.bytes_written) as f64),
            r.arithmetic_intensity,
            truncate(&par, 14),
            r.bound
        );
    }
    let _ = writeln!(out);
    let counts: Vec<String> =
        c.op_counts.iter().map(|(k, v)| format!("{} {v}", k.trim_start_matches("smelt."))).collect();
    out.push_str(&wrapped(&format!("ops               {} (", c.ops), &counts, ")"));
    let _ = writeln!(out, "FLOPs             {} total, {} in conv/matmul/gemm", c.flops_total, c.flops_conv_matmul);
    let _ = writeln!(out, "parameters        {}", c.params);
    let _ = writeln!(
        out,
        "bytes             {}B read ({}B weights), {}B written, {}B total",
        si(c.bytes_read as f64),
        si(c.weight_bytes as f64),
        si(c.bytes_written as f64),
        si(c.bytes_total as f64)
    );
    let _ = writeln!(out, "intensity         {:.1} FLOP/B", c.arithmetic_intensity);
    let _ = writeln!(
        out,
        "latency           {:.3} ms predicted on {} (roofline, one op after another)",
        c.predicted_ms, c.target
    );
    let _ = writeln!(
        out,
        "concurrency       {} stages, critical path {} ops, at most {} ops in parallel",
        c.concurrency.stages, c.concurrency.critical_path, c.concurrency.max_parallel
    );
    let compute = c.per_op.iter().filter(|r| r.bound == "compute").count();
    let memory = c.per_op.iter().filter(|r| r.bound == "memory").count();
    let _ = writeln!(out, "verdict           {compute} ops compute-bound, {memory} memory-bound on {}", c.target);
    out
}

/// Every folder under `dirs` (or `dirs` themselves) that holds a `model.onnx`, sorted.
fn conformance_cases(dirs: &[String]) -> Vec<std::path::PathBuf> {
    let mut cases = Vec::new();
    for dir in dirs {
        let dir = std::path::Path::new(dir);
        if dir.join("model.onnx").is_file() {
            cases.push(dir.to_path_buf());
            continue;
        }
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                if e.path().join("model.onnx").is_file() {
                    cases.push(e.path());
                }
            }
        }
    }
    cases.sort();
    cases
}

fn conformance(dirs: &[String], verbose: bool, execute: Option<&str>) -> ExitCode {
    let cases = conformance_cases(dirs);
    if cases.is_empty() {
        eprintln!("error: no conformance cases (folders with model.onnx) under {}", dirs.join(", "));
        return ExitCode::FAILURE;
    }
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    let mut skip_reasons: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for case in &cases {
        let name = case.file_name().map_or_else(|| case.display().to_string(), |n| n.to_string_lossy().into_owned());
        let first_line = |s: &str| s.lines().next().unwrap_or_default().to_string();
        match conformance_case(case, execute) {
            Ok(()) => {
                passed += 1;
                if verbose {
                    println!("PASS {name}");
                }
            }
            Err((true, why)) => {
                skipped += 1;
                let reason = first_line(&why);
                let short = reason.split(": error: ").nth(1).unwrap_or(&reason).to_string();
                *skip_reasons.entry(short.split(" in node").next().unwrap_or_default().to_string()).or_default() += 1;
                if verbose {
                    println!("SKIP {name}: {short}");
                }
            }
            Err((false, why)) => {
                failed += 1;
                println!("FAIL {name}: {}", first_line(&why));
            }
        }
    }
    if !skip_reasons.is_empty() {
        println!("skipped, by reason:");
        let mut reasons: Vec<_> = skip_reasons.into_iter().collect();
        reasons.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        for (reason, n) in reasons {
            println!("  {n:>4}  {reason}");
        }
    }
    println!("{passed} passed, {failed} failed, {skipped} skipped");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Imports, verifies and cleans one case, then (with `execute`) runs every `test_data_set_*`
/// — through the JIT executor on the fused and on the unfused module, and/or the reference
/// interpreter — and compares with ONNX's tolerances (|actual - expected| <= 1e-7 + 1e-3
/// |expected|). `Err((unsupported, message))`.
fn conformance_case(case: &std::path::Path, execute: Option<&str>) -> Result<(), (bool, String)> {
    let sources = SourceMap::default();
    let mut module = smelt_compiler::onnx::import_file(&case.join("model.onnx"), &ImportOptions::default())
        .map_err(|e| (e.unsupported, smelt::driver::render(&sources, &[e.diagnostic])))?;
    smelt_compiler::verifier::verify(&module).map_err(|ds| (false, smelt::driver::render(&sources, &ds)))?;
    smelt_passes::run_pipeline(&mut module, smelt_passes::CLEANUP_PIPELINE)
        .map_err(|ds| (false, smelt::driver::render(&sources, &ds)))?;
    let unfused = module.clone();
    let fuse = |m: &mut Module| {
        smelt_passes::run_pipeline(m, "builtin.module(fuse)").map_err(|ds| smelt::driver::render(&sources, &ds))
    };
    fuse(&mut module).map_err(|e| (false, e))?;
    let Some(mode) = execute else { return Ok(()) };
    let mut runs: Vec<&str> = Vec::new();
    if mode != "jit" {
        runs.push("reference");
    }
    if mode != "reference" {
        runs.extend(["fused", "unfused"]);
    }
    for name in runs {
        for set in test_data_sets(case) {
            // Shapes that depend on input values are specialized before fusion, as `smelt run`
            // does.
            let mut run = |inputs: &[Literal]| {
                if name == "reference" {
                    return smelt_runtime::reference::run(&module, inputs);
                }
                let (mut specialized, changed) = specialize(&unfused, inputs)?;
                if name == "fused" {
                    if changed {
                        fuse(&mut specialized)?;
                    } else {
                        specialized = module.clone();
                    }
                }
                smelt_runtime::exec::Executable::compile(specialized)?.run(inputs)
            };
            check_test_data(&mut run, &set).map_err(|e| (false, format!("{name}: {}: {e}", set.display())))?;
        }
    }
    Ok(())
}

/// The module specialized to concrete inputs where its shapes depend on them (as any executor
/// with static memory plans must): argument types take the inputs' shapes, then integer
/// inputs (shapes, pads, indices) and, if shapes are still open, small float inputs (scales,
/// range bounds) become constants, and cleanup propagates and folds. Returns the module
/// unchanged (and `false`) when every shape is already static.
fn specialize(m: &Module, inputs: &[Literal]) -> Result<(Module, bool), String> {
    if all_static(m) {
        return Ok((m.clone(), false));
    }
    let mut last = Err("no specialization tried".to_string());
    for bake_small_floats in [false, true] {
        let mut s = m.clone();
        let func = *s.functions().first().ok_or("the module has no function")?;
        let entry = s.body_of(func);
        let args = s.block(entry).args().to_vec();
        let first = s.block_ops(entry).next().ok_or("empty function")?;
        for (&a, l) in args.iter().zip(inputs) {
            s.set_value_type(a, smelt_compiler::Type::Tensor(l.ty()));
            if l.element.is_integer() || (bake_small_floats && l.len() <= 16) {
                let c = s.create_op(
                    smelt_compiler::OpSpec::new(names::CONSTANT)
                        .attr("value", smelt_compiler::Attribute::Dense(l.to_dense()))
                        .results([smelt_compiler::Type::Tensor(l.ty())]),
                );
                s.insert_op_before(first, c);
                let v = s.op(c).result();
                s.replace_all_uses(a, v);
            }
        }
        smelt_passes::rewrite::sync_function_signatures(&mut s);
        last = smelt_passes::run_pipeline(&mut s, "builtin.module(canonicalize)")
            .map_err(|ds| ds.iter().map(|d| d.message.clone()).collect::<Vec<_>>().join("; "))
            .map(|()| (s, true));
        if last.as_ref().is_ok_and(|(s, _)| all_static(s)) {
            break;
        }
    }
    last
}

fn all_static(m: &Module) -> bool {
    m.functions().iter().all(|&f| {
        let entry = m.body_of(f);
        m.walk_pre_order(f)
            .iter()
            .flat_map(|&op| m.op(op).results().to_vec())
            .chain(m.block(entry).args().iter().copied())
            .all(|v| m.value_type(v).as_tensor().is_none_or(|t| t.static_shape().is_some()))
    })
}

fn test_data_sets(case: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut sets: Vec<_> = std::fs::read_dir(case)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("test_data_set_")))
        .collect();
    sets.sort();
    sets
}

fn numbered(dir: &std::path::Path, prefix: &str) -> Vec<std::path::PathBuf> {
    (0..).map(|i| dir.join(format!("{prefix}_{i}.pb"))).take_while(|p| p.is_file()).collect()
}

type Runner<'a> = dyn FnMut(&[Literal]) -> Result<Vec<Literal>, String> + 'a;

fn check_test_data(run: &mut Runner, set: &std::path::Path) -> Result<(), String> {
    use smelt_runtime::tensor_io::read_tensor;
    let inputs = numbered(set, "input").iter().map(|p| read_tensor(p)).collect::<Result<Vec<_>, _>>()?;
    let expected = numbered(set, "output").iter().map(|p| read_tensor(p)).collect::<Result<Vec<_>, _>>()?;
    let actual = run(&inputs)?;
    if actual.len() != expected.len() {
        return Err(format!("{} outputs, expected {}", actual.len(), expected.len()));
    }
    for (k, (a, e)) in actual.iter().zip(&expected).enumerate() {
        if a.shape != e.shape {
            return Err(format!("output {k} has shape {:?}, expected {:?}", a.shape, e.shape));
        }
        for (i, (x, y)) in a.to_f64().iter().zip(e.to_f64().iter()).enumerate() {
            let close = (x - y).abs() <= 1e-7 + 1e-3 * y.abs() || (x.is_nan() && y.is_nan()) || x == y;
            if !close {
                return Err(format!("output {k} element {i} is {x}, expected {y}"));
            }
        }
    }
    Ok(())
}

struct RunOptions {
    mode: String,
    iters: usize,
    threads: Option<usize>,
    profile_kernels: Option<String>,
    target: String,
    cost_profile: Option<String>,
    record: Option<String>,
    output: Option<String>,
    json: bool,
}

fn run_model(model: &ModelArgs, input: &[String], how: &RunOptions) -> Result<String, Failure> {
    let (_, module) = model.load()?;
    let inputs = if input.is_empty() {
        smelt::measure::random_inputs(&module).map_err(|e| Failure(format!("error: {e}")))?
    } else {
        input
            .iter()
            .map(|p| {
                smelt_runtime::tensor_io::read_tensor(std::path::Path::new(p))
                    .map_err(|e| Failure(format!("error: {e}")))
            })
            .collect::<Result<_, _>>()?
    };
    let fail = |e: String| Failure(format!("error: {e}"));
    let (module, specialized) = specialize(&module, &inputs).map_err(|e| Failure(format!("error: {e}")))?;
    let threads = smelt_runtime::workers::set_threads(how.threads.unwrap_or(usize::MAX));
    if let Some(asked) = how.threads.filter(|&asked| asked > threads) {
        eprintln!("note: --threads {asked}: this process may run on {threads} cores; using {threads} threads");
    }
    let mut report = serde_json::json!({ "mode": how.mode, "threads": threads, "specialized_to_inputs": specialized });
    let first_output: Option<Literal>;
    let mut text = String::new();
    if how.mode == "reference" {
        let start = std::time::Instant::now();
        let outputs = smelt_runtime::reference::run(&module, &inputs).map_err(|e| Failure(format!("error: {e}")))?;
        let ms = start.elapsed().as_secs_f64() * 1e3;
        report["reference_ms"] = ms.into();
        report["outputs"] = summarize(&outputs);
        text.push_str(&format!("reference: {ms:.1} ms\n"));
        first_output = outputs.into_iter().next();
    } else {
        // Kernels are timed one by one only when asked for (a table, a trace or a record),
        // and only in the run they are reported from: the fused one, else the unfused.
        let cost_model = smelt::measure::predictor(&how.target, how.cost_profile.as_deref()).map_err(fail)?;
        let per_kernel = how.profile_kernels.is_some() || how.record.is_some();
        let priced = |reported: bool| (per_kernel && reported).then_some(cost_model.as_ref());
        let mut fused = None;
        let mut unfused = None;
        if how.mode == "unfused" || how.mode == "both" {
            let t = smelt::measure::measure(module.clone(), &inputs, how.iters, priced(how.mode == "unfused"))
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
                .map_err(|ds| Failure(smelt::driver::render(&SourceMap::default(), &ds)))?;
            let t = smelt::measure::measure(m, &inputs, how.iters, priced(true)).map_err(fail)?;
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
        first_output = outputs.into_iter().next();
    }
    for (i, o) in report["outputs"].as_array().into_iter().flatten().enumerate() {
        text.push_str(&format!(
            "output {i}: {} {} mean {:.6}\n",
            o["shape"],
            o["element"],
            o["mean"].as_f64().unwrap_or(0.0)
        ));
    }
    if let (Some(path), Some(first)) = (&how.output, &first_output) {
        smelt_runtime::tensor_io::write_tensor(std::path::Path::new(path), "output", first)
            .map_err(|e| Failure(format!("error: {e}")))?;
    }
    Ok(if how.json { serde_json::to_string_pretty(&report).unwrap() + "\n" } else { text })
}

/// A Chrome trace (`chrome://tracing`, Perfetto) of one profiled run.
fn write_trace(path: &str, kernels: &[smelt::measure::KernelTime]) -> Result<(), Failure> {
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
    std::fs::write(path, serde_json::to_string_pretty(&doc).expect("serializable"))
        .map_err(|e| Failure(format!("error: {path}: cannot write: {e}")))
}

fn exec_json(t: &smelt::measure::Measured) -> serde_json::Value {
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
