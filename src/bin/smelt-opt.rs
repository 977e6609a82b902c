//! `smelt-opt`: the mlir-opt-style driver. Reads MLIR text, verifies it, runs a pass pipeline
//! and prints the result.

use clap::{Arg, ArgAction, Command};
use smelt::driver::{
    display_name, is_onnx, load_onnx, parse_shapes, parse_weights, read_text, render, split_input, write_output,
    Failure,
};
use smelt_compiler::diagnostics::{Diagnostic, SourceMap};
use smelt_compiler::onnx::ImportOptions;
use smelt_compiler::parser::parse_module;
use smelt_compiler::printer::{print_module, PrintOptions};
use smelt_compiler::verifier::verify;
use smelt_compiler::Location;
use smelt_passes::options::Options;
use smelt_passes::pipeline::parse_pipeline;
use smelt_passes::registry::{self, PASSES};
use smelt_passes::{PassManager, PassManagerOptions};
use std::process::ExitCode;

fn command() -> Command {
    let mut cmd = Command::new("smelt-opt")
        .about("Smelt's optimizer driver: parse, verify, run passes, print (like mlir-opt)")
        .arg(Arg::new("input").default_value("-").help("input .mlir file ('-' for stdin)"))
        .arg(Arg::new("output").short('o').default_value("-").help("output file ('-' for stdout)"))
        .arg(
            Arg::new("pass-pipeline")
                .long("pass-pipeline")
                .value_name("PIPELINE")
                .help("textual pipeline, e.g. 'builtin.module(canonicalize,cse)'"),
        )
        .arg(
            Arg::new("print-ir-after-all")
                .long("mlir-print-ir-after-all")
                .visible_alias("print-ir-after-all")
                .action(ArgAction::SetTrue)
                .help("print the IR after every pass (to stderr)"),
        )
        .arg(
            Arg::new("print-ir-before-all")
                .long("mlir-print-ir-before-all")
                .visible_alias("print-ir-before-all")
                .action(ArgAction::SetTrue)
                .help("print the IR before every pass (to stderr)"),
        )
        .arg(
            Arg::new("print-ir-before")
                .long("mlir-print-ir-before")
                .visible_alias("print-ir-before")
                .value_name("PASS")
                .action(ArgAction::Append)
                .help("print the IR before the named pass"),
        )
        .arg(
            Arg::new("print-ir-after")
                .long("mlir-print-ir-after")
                .visible_alias("print-ir-after")
                .value_name("PASS")
                .action(ArgAction::Append)
                .help("print the IR after the named pass"),
        )
        .arg(
            Arg::new("timing")
                .long("mlir-timing")
                .visible_alias("timing")
                .action(ArgAction::SetTrue)
                .help("report wall time per pass (to stderr)"),
        )
        .arg(Arg::new("verify-diagnostics").long("verify-diagnostics").action(ArgAction::SetTrue).help(
            "check the diagnostics against the file's `// expected-error @+1 {{...}}` comments (also \
             expected-warning, -note, -remark; @above, @below, @+N, @-N) instead of printing them",
        ))
        .arg(
            Arg::new("verify-each")
                .long("verify-each")
                .value_parser(clap::value_parser!(bool))
                .default_value("true")
                .num_args(0..=1)
                .default_missing_value("true")
                .help("verify the IR after every pass"),
        )
        .arg(
            Arg::new("mlir-print-debuginfo")
                .long("mlir-print-debuginfo")
                .action(ArgAction::SetTrue)
                .help("print locations"),
        )
        .arg(
            Arg::new("split-input-file")
                .long("split-input-file")
                .action(ArgAction::SetTrue)
                .help("process chunks separated by '// -----' independently"),
        )
        .arg(
            Arg::new("shape")
                .long("shape")
                .value_name("NAME=DIMS")
                .action(ArgAction::Append)
                .help("ONNX: pin an input's shape, e.g. input=1x3x224x224"),
        )
        .arg(
            Arg::new("weights")
                .long("weights")
                .value_name("file|random[:SEED]")
                .default_value("file")
                .help("ONNX: where weights come from; 'random' for graph-only models"),
        )
        .arg(Arg::new("lenient").long("lenient").action(ArgAction::SetTrue).help(
            "ONNX: accept what ONNX Runtime refuses but means one thing (a value produced twice: the last \
             producer wins; a kernel_shape that contradicts the weights: the weights win)",
        ))
        .arg(Arg::new("emit").long("emit").value_parser(["mlir", "dot", "plan"]).default_value("mlir").help(
            "output: MLIR text, the op graph as Graphviz (kernels as clusters), or the launch plan \
                     (JSON) of the result on --target (default host)",
        ))
        .arg(
            Arg::new("target")
                .long("target")
                .value_name("NAME|FILE.toml")
                .help("target whose cost model `fuse` uses (sets fuse{target=...} where not given)"),
        )
        .arg(
            Arg::new("cost-profile")
                .long("cost-profile")
                .value_name("FILE")
                .help("calibration profile for `fuse` (sets fuse{cost-profile=...} where not given)"),
        )
        .arg(
            Arg::new("no-algebra")
                .long("no-algebra")
                .action(ArgAction::SetTrue)
                .help("`fuse` without substitutions: vertical fusion and recognitions only (sets fuse{algebra=false} where not given)"),
        )
        .arg(
            Arg::new("import-only")
                .long("import-only")
                .action(ArgAction::SetTrue)
                .help("ONNX: print the imported module without the default cleanup pipeline"),
        );
    for pass in PASSES {
        let options: Vec<String> =
            pass.options.iter().map(|o| format!("{}={} ({})", o.name, o.default, o.help)).collect();
        let help = match options.is_empty() {
            true => pass.summary.to_string(),
            false => format!("{}; options: {}", pass.summary, options.join(", ")),
        };
        cmd = cmd.arg(
            Arg::new(pass.name)
                .long(pass.name)
                .value_name("OPTIONS")
                .num_args(0..=1)
                .require_equals(true)
                .default_missing_value("")
                .action(ArgAction::Append)
                .help(help),
        );
    }
    cmd
}

/// mlir-opt's spelling of long options with one dash (`-split-input-file`, `-canonicalize`):
/// an argument of one dash and several characters is taken as the long option, except a
/// known short option with its value attached (`-ofile`).
fn mlir_style_args(args: impl Iterator<Item = String>) -> Vec<String> {
    args.enumerate()
        .map(|(i, a)| {
            let single_dash_word = i > 0 && a.len() > 2 && a.starts_with('-') && !a.starts_with("--");
            if single_dash_word && !a.starts_with("-o") {
                format!("-{a}")
            } else {
                a
            }
        })
        .collect()
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(message)) => {
            eprint!("{message}");
            if !message.ends_with('\n') {
                eprintln!();
            }
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Failure> {
    let matches = command().get_matches_from(mlir_style_args(std::env::args()));
    let input = matches.get_one::<String>("input").unwrap().clone();
    let output = matches.get_one::<String>("output").unwrap().clone();

    // Pipeline: --pass-pipeline first, then per-pass flags in command-line order.
    let mut entries = match matches.get_one::<String>("pass-pipeline") {
        Some(text) => parse_pipeline(text)
            .map_err(|e| Failure(format!("error: invalid --pass-pipeline: {e}")))?
            .into_iter()
            .map(|e| (0, e.name, e.options))
            .collect(),
        None => Vec::new(),
    };
    for pass in PASSES {
        if matches.value_source(pass.name) != Some(clap::parser::ValueSource::CommandLine) {
            continue;
        }
        let values = matches.get_many::<String>(pass.name).into_iter().flatten();
        for (i, value) in matches.indices_of(pass.name).into_iter().flatten().zip(values) {
            // `--canonicalize=max-iterations=4` reads as the pipeline `canonicalize{max-iterations=4}`.
            let options = match value.is_empty() {
                true => Options::default(),
                false => {
                    parse_pipeline(&format!("{}{{{value}}}", pass.name))
                        .map_err(|e| Failure(format!("error: --{}={value}: {e}", pass.name)))?
                        .remove(0)
                        .options
                }
            };
            entries.push((i, pass.name.to_string(), options));
        }
    }
    entries.sort_by_key(|e| e.0);

    let options = PassManagerOptions {
        verify_each: *matches.get_one::<bool>("verify-each").unwrap(),
        print_ir_after_all: matches.get_flag("print-ir-after-all"),
        print_ir_before_all: matches.get_flag("print-ir-before-all"),
        print_ir_before: matches
            .get_many::<String>("print-ir-before")
            .map(|v| v.cloned().collect())
            .unwrap_or_default(),
        print_ir_after: matches.get_many::<String>("print-ir-after").map(|v| v.cloned().collect()).unwrap_or_default(),
        timing: matches.get_flag("timing"),
        print: PrintOptions { debug_info: matches.get_flag("mlir-print-debuginfo") },
    };
    let emit = match matches.get_one::<String>("emit").map(String::as_str) {
        Some("dot") => Emit::Dot,
        Some("plan") => Emit::Plan(matches.get_one::<String>("target").cloned().unwrap_or_else(|| "host".into())),
        _ => Emit::Mlir,
    };

    if is_onnx(&input) {
        let import = ImportOptions {
            shapes: parse_shapes(
                &matches.get_many::<String>("shape").map(|v| v.cloned().collect::<Vec<_>>()).unwrap_or_default(),
            )?,
            weights: parse_weights(matches.get_one::<String>("weights").unwrap())?,
            lenient: matches.get_flag("lenient"),
        };
        let module = load_onnx(&input, &import)?;
        if entries.is_empty() && !matches.get_flag("import-only") {
            entries = parse_pipeline(smelt_passes::DEFAULT_PIPELINE)
                .unwrap()
                .into_iter()
                .map(|e| (0, e.name, e.options))
                .collect();
        }
        if matches.get_flag("verify-diagnostics") {
            return Err(Failure(format!("{input}: error: --verify-diagnostics reads MLIR text, not ONNX")));
        }
        apply_cost_flags(&mut entries, &matches);
        let out =
            run_passes(module, &entries, &options, &emit).map_err(|ds| Failure(render(&SourceMap::default(), &ds)))?;
        return write_output(&output, &out);
    }

    apply_cost_flags(&mut entries, &matches);
    let text = read_text(&input)?;
    let name = display_name(&input).to_string();
    let mut sources = SourceMap::default();
    sources.add(&name, &text);
    let chunks = if matches.get_flag("split-input-file") { split_input(&text) } else { vec![text] };

    let verify_diagnostics = matches.get_flag("verify-diagnostics");
    let mut printed = Vec::new();
    let mut failures = String::new();
    for chunk in &chunks {
        let result = process(chunk, &name, &entries, &options, &emit);
        if verify_diagnostics {
            let expected = smelt::verify_diagnostics::expectations(&name, chunk).map_err(Failure)?;
            let produced = result.as_ref().err().cloned().unwrap_or_default();
            for problem in smelt::verify_diagnostics::check(&name, expected, &produced) {
                failures.push_str(&problem);
                failures.push('\n');
            }
            printed.extend(result.ok());
            continue;
        }
        match result {
            Ok(out) => printed.push(out),
            Err(ds) => failures.push_str(&render(&sources, &ds)),
        }
    }
    write_output(&output, &printed.join("// -----\n"))?;
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Failure(failures))
    }
}

/// `--target`, `--cost-profile` and `--no-algebra` fill in the `fuse` options a pipeline
/// leaves unset.
fn apply_cost_flags(entries: &mut [(usize, String, Options)], matches: &clap::ArgMatches) {
    let no_algebra = matches.get_flag("no-algebra").then(|| "false".to_string());
    let given = [
        ("target", matches.get_one::<String>("target").cloned()),
        ("cost-profile", matches.get_one::<String>("cost-profile").cloned()),
        ("algebra", no_algebra),
    ];
    for (option, value) in given {
        let Some(value) = value else { continue };
        for (_, _, options) in entries.iter_mut().filter(|e| e.1 == "fuse") {
            options.0.entry(option.to_string()).or_insert_with(|| value.clone());
        }
    }
}

/// Parses, verifies and transforms one chunk; what fails comes back as diagnostics.
fn process(
    text: &str,
    name: &str,
    entries: &[(usize, String, Options)],
    options: &PassManagerOptions,
    emit: &Emit,
) -> Result<String, Vec<Diagnostic>> {
    let module = parse_module(text, name).map_err(|d| vec![d])?;
    verify(&module)?;
    run_passes(module, entries, options, emit)
}

fn run_passes(
    mut module: smelt_compiler::Module,
    entries: &[(usize, String, Options)],
    options: &PassManagerOptions,
    emit: &Emit,
) -> Result<String, Vec<Diagnostic>> {
    let unlocated = |e: String| vec![Diagnostic::error(Location::Unknown, e)];
    let mut pm = PassManager::new(options.clone());
    for (_, pass, opts) in entries {
        pm.add(registry::create(pass, opts).map_err(unlocated)?);
    }
    let mut log = std::io::stderr();
    let result = pm.run(&mut module, &mut log);
    if options.timing {
        eprint!("{}", pm.timing_report());
    }
    result?;
    Ok(match emit {
        Emit::Mlir => print_module(&module, options.print),
        Emit::Dot => smelt_compiler::dot::to_dot(&module),
        Emit::Plan(target) => {
            let target = smelt_hardware::target::Target::load(target).map_err(|e| unlocated(e.to_string()))?;
            let plan = smelt_passes::plan::plan(&module, &target, &smelt_passes::plan::PlanOptions::default())
                .map_err(unlocated)?;
            serde_json::to_string_pretty(&plan).expect("serializable") + "\n"
        }
    })
}

/// What `--emit` prints.
enum Emit {
    Mlir,
    Dot,
    /// The launch plan on the named target.
    Plan(String),
}
