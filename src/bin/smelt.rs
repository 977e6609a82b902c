//! `smelt`: user commands around the compiler.

use clap::{Args, Parser, Subcommand};
use smelt::commands::report::{MeasureOptions, ReportOptions};
use smelt::commands::run::RunOptions;
use smelt::driver::{fail, Failure, ModelSource};
use smelt_compiler::dialect::AttrDefault;
use smelt_passes::specialize::specialize_to_inputs;
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
    /// ONNX: accept what ONNX Runtime refuses but means one thing (a value produced twice: the
    /// last producer wins; a kernel_shape that contradicts the weights: the weights win)
    #[arg(long)]
    lenient: bool,
}

impl ModelArgs {
    fn source(&self) -> ModelSource {
        ModelSource {
            path: self.model.clone(),
            shapes: self.shape.clone(),
            weights: self.weights.clone(),
            lenient: self.lenient,
        }
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
        #[command(flatten)]
        how: RunOptions,
        /// an input tensor: NAME=FILE binds the input NAME; a plain FILE takes the next input not
        /// named; an .npz archive binds its arrays by name. Files are .npy, .npz or ONNX
        /// TensorProto (.pb). Default: seeded random inputs
        #[arg(long, value_name = "[NAME=]FILE")]
        input: Vec<String>,
        /// force a kernel variant instead of measuring (KIND=NAME, like conv3x3=im2col; also
        /// SMELT_VARIANT_<KIND>=NAME); repeatable
        #[arg(long, value_name = "KIND=NAME")]
        variant: Vec<String>,
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
        /// calibration profile (JSON): its measurements refine the target's roofline, and the
        /// kernel variants `smelt calibrate` chose on this CPU are taken without probing
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
        /// fuse without substitutions (merged parallel products): vertical fusion and
        /// recognitions only
        #[arg(long)]
        no_algebra: bool,
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
        /// seconds of alternating runs the in-context decisions may take, in all
        #[arg(long, default_value_t = smelt::commands::tune::DEFAULT_BUDGET_S)]
        budget: f64,
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
        #[command(flatten)]
        how: smelt::commands::plan::PlanArgs,
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
        Command::Run { model, how, input, variant } => {
            for v in &variant {
                let Some((kind, name)) = v.split_once('=') else {
                    return finish(Err(smelt::driver::fail(format!("--variant {v}: expected KIND=NAME"))));
                };
                smelt_runtime::variants::force(kind, Some(name));
            }
            finish(smelt::commands::run::run_model(&model.source(), &input, &how))
        }
        Command::Conformance { dirs, verbose, no_execute, mode } => {
            smelt::commands::conformance::conformance(&dirs, verbose, (!no_execute).then_some(mode.as_str()))
        }
        Command::Report { model, json, batch, target, cost_profile, measure, svg, iters, no_algebra } => {
            let measure = measure.then_some(MeasureOptions { svg, iters });
            let options = ReportOptions { json, batch, target, cost_profile, measure, algebra: !no_algebra };
            finish(smelt::commands::report::report(&model.source(), &options))
        }
        Command::Calibrate { o, quick, patterns, ops, target } => {
            finish(calibrate(&o, smelt::commands::calibrate::Options { quick, patterns, ops, target }))
        }
        Command::Tune { model, o, target, iters, max_rounds, budget, threads, json } => {
            let options = smelt::commands::tune::Options {
                target: &target,
                profile: std::path::Path::new(&o),
                iters,
                max_rounds,
                budget_s: budget,
            };
            finish(tune(&model, &options, threads, json))
        }
        Command::Plan { model, how } => finish(smelt::commands::plan::plan_command(&model.source(), &how)),
        Command::FitTarget { timings, target, o, json } => finish(fit_target(&timings, &target, o.as_deref(), json)),
        Command::Ops => {
            let mut text = String::new();
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
                let onnx = def.onnx.map(|o| format!("; imports ONNX {o}")).unwrap_or_default();
                text += &format!("{:<26} ({}) {{{}}}\n", def.name, operands.join(", "), attrs.join(", "));
                text += &format!("{:<26} {}\n", "", def.summary);
                text += &format!("{:<26} {:?}; FLOPs: {}{onnx}\n", "", def.class, def.flops);
            }
            finish(Ok(text))
        }
        Command::Irdl { o } => {
            let text = smelt_compiler::irdl::generate();
            finish(smelt::driver::write_output(&o, &text).map(|()| String::new()))
        }
    }
}

fn fit_target(timings: &str, target: &str, out: Option<&str>, json: bool) -> Result<String, Failure> {
    let calibration =
        smelt_hardware::gpu_patterns::GpuPatternTimings::load(std::path::Path::new(timings)).map_err(fail)?;
    let fit = smelt::commands::fit_target::fit(&calibration, target).map_err(fail)?;
    if let Some(path) = out {
        let header = format!(
            "# {} with efficiencies fitted by `smelt fit-target` to {timings} ({}).\n",
            fit.target.name, fit.gpu
        );
        let text = toml::to_string(&fit.target).map_err(|e| fail(format!("cannot write the target: {e}")))?;
        smelt::driver::write_output(path, &(header + &text))?;
    }
    Ok(if json {
        serde_json::to_string_pretty(&fit).expect("serializable") + "\n"
    } else {
        smelt::commands::fit_target::table(&fit)
    })
}

fn calibrate(path: &str, options: smelt::commands::calibrate::Options) -> Result<String, Failure> {
    for group in &options.patterns {
        if !smelt::commands::calibrate::PATTERN_GROUPS.contains(&group.as_str()) && group != "all" && group != "none" {
            return Err(fail(format!(
                "unknown pattern group '{group}' (choose from {}, all, none)",
                smelt::commands::calibrate::PATTERN_GROUPS.join(", ")
            )));
        }
    }
    for op in &options.ops {
        if !smelt::commands::calibrate::SWEPT_OPS.contains(&op.as_str()) && op != "all" && op != "none" {
            return Err(fail(format!(
                "unknown op '{op}' for the sweep (choose from {}, all, none)",
                smelt::commands::calibrate::SWEPT_OPS.join(", ")
            )));
        }
    }
    let bar = smelt::progress::bar(1);
    let measured = smelt::commands::calibrate::calibrate(&options, &mut |done, total, what| {
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
        for (cpu, chosen) in &measured.kernel_variants {
            p.kernel_variants.entry(cpu.clone()).or_default().extend(chosen.clone());
        }
        p.clone()
    })
    .map_err(fail)?;
    Ok(smelt::commands::calibrate::summary(&merged) + &format!("\nwrote {path}\n"))
}

fn tune(
    model: &ModelArgs,
    options: &smelt::commands::tune::Options,
    threads: usize,
    json: bool,
) -> Result<String, Failure> {
    let (_, module) = model.source().load_static()?;
    let inputs = smelt::measure::random_inputs(&module).map_err(fail)?;
    let (module, _) = specialize_to_inputs(&module, &inputs).map_err(fail)?;
    smelt_runtime::workers::set_threads(threads);
    let path = options.profile.display().to_string();
    let bar = smelt::progress::bar(1);
    let t = smelt::commands::tune::tune(&module, &inputs, options, &mut |done, total, what| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
        bar.set_message(what.to_string());
    })
    .map_err(fail)?;
    bar.finish_and_clear();
    if json {
        let value = t.to_json(&model.model, &path, threads);
        return Ok(serde_json::to_string_pretty(&value).expect("serializable") + "\n");
    }
    Ok(smelt::tables::tune_report(&t) + &format!("recorded into {path}\n"))
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
    match result.and_then(|text| smelt::driver::write_output("-", &text)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("{f}");
            ExitCode::FAILURE
        }
    }
}
