//! `smelt conformance`: ONNX's backend test cases (a folder with `model.onnx` and
//! `test_data_set_*`) imported, verified, cleaned, fused and run, and compared with the
//! expected outputs at ONNX's tolerances.

use crate::driver::{fail, write_output, Failure};
use smelt_compiler::diagnostics::SourceMap;
use smelt_compiler::literal::Literal;
use smelt_compiler::onnx::ImportOptions;
use smelt_compiler::Module;
use smelt_passes::specialize::specialize_to_inputs;
use std::process::ExitCode;

/// Every folder under `dirs` (or `dirs` themselves) that holds a `model.onnx`, sorted.
pub fn conformance_cases(dirs: &[String]) -> Vec<std::path::PathBuf> {
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

pub fn conformance(dirs: &[String], verbose: bool, execute: Option<&str>) -> ExitCode {
    match run_cases(dirs, verbose, execute) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(f) => {
            eprintln!("{f}");
            ExitCode::FAILURE
        }
    }
}

/// One line of the report, as soon as it is known (a run over every case takes minutes).
fn say(line: &str) -> Result<(), Failure> {
    write_output("-", &format!("{line}\n"))
}

/// Runs the cases; whether every one passed or was skipped.
fn run_cases(dirs: &[String], verbose: bool, execute: Option<&str>) -> Result<bool, Failure> {
    let cases = conformance_cases(dirs);
    if cases.is_empty() {
        return Err(fail(format!("no conformance cases (folders with model.onnx) under {}", dirs.join(", "))));
    }
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    let mut skip_reasons: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    let bar = crate::progress::bar(cases.len() as u64);
    // Report lines print above the bar.
    let say = |line: &str| bar.suspend(|| say(line));
    for case in &cases {
        let name = case.file_name().map_or_else(|| case.display().to_string(), |n| n.to_string_lossy().into_owned());
        bar.set_message(name.clone());
        bar.inc(1);
        let first_line = |s: &str| s.lines().next().unwrap_or_default().to_string();
        match conformance_case(case, execute) {
            Ok(()) => {
                passed += 1;
                if verbose {
                    say(&format!("PASS {name}"))?;
                }
            }
            Err((true, why)) => {
                skipped += 1;
                let reason = first_line(&why);
                let short = reason.split(": error: ").nth(1).unwrap_or(&reason).to_string();
                *skip_reasons.entry(short.split(" in node").next().unwrap_or_default().to_string()).or_default() += 1;
                if verbose {
                    say(&format!("SKIP {name}: {short}"))?;
                }
            }
            Err((false, why)) => {
                failed += 1;
                say(&format!("FAIL {name}: {}", first_line(&why)))?;
            }
        }
    }
    bar.finish_and_clear();
    if !skip_reasons.is_empty() {
        say("skipped, by reason:")?;
        let mut reasons: Vec<_> = skip_reasons.into_iter().collect();
        reasons.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        for (reason, n) in reasons {
            say(&format!("  {n:>4}  {reason}"))?;
        }
    }
    say(&format!("{passed} passed, {failed} failed, {skipped} skipped"))?;
    Ok(failed == 0)
}

/// Imports, verifies and cleans one case, then (with `execute`) runs every `test_data_set_*`
/// — through the JIT executor on the fused and on the unfused module, and/or the reference
/// interpreter — and compares with ONNX's tolerances (|actual - expected| <= 1e-7 + 1e-3
/// |expected|). `Err((unsupported, message))`.
pub fn conformance_case(case: &std::path::Path, execute: Option<&str>) -> Result<(), (bool, String)> {
    let sources = SourceMap::default();
    let mut module = smelt_compiler::onnx::import_file(&case.join("model.onnx"), &ImportOptions::default())
        .map_err(|e| (e.unsupported, crate::driver::render(&sources, &[e.diagnostic])))?;
    smelt_compiler::verifier::verify(&module).map_err(|ds| (false, crate::driver::render(&sources, &ds)))?;
    smelt_passes::run_pipeline(&mut module, smelt_passes::CLEANUP_PIPELINE)
        .map_err(|ds| (false, crate::driver::render(&sources, &ds)))?;
    let unfused = module.clone();
    let fuse = |m: &mut Module| {
        smelt_passes::run_pipeline(m, "builtin.module(fuse)").map_err(|ds| crate::driver::render(&sources, &ds))
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
                let (mut specialized, changed) = specialize_to_inputs(&unfused, inputs)?;
                if name == "fused" {
                    if changed {
                        fuse(&mut specialized)?;
                    } else {
                        specialized = module.clone();
                    }
                }
                Ok(smelt_runtime::exec::Executable::compile(specialized)?.run(inputs)?)
            };
            check_test_data(&mut run, &set).map_err(|e| (false, format!("{name}: {}: {e}", set.display())))?;
        }
    }
    Ok(())
}

pub fn test_data_sets(case: &std::path::Path) -> Vec<std::path::PathBuf> {
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

pub fn numbered(dir: &std::path::Path, prefix: &str) -> Vec<std::path::PathBuf> {
    (0..).map(|i| dir.join(format!("{prefix}_{i}.pb"))).take_while(|p| p.is_file()).collect()
}

type Runner<'a> = dyn FnMut(&[Literal]) -> Result<Vec<Literal>, String> + 'a;

pub fn check_test_data(run: &mut Runner, set: &std::path::Path) -> Result<(), String> {
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
