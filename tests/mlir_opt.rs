//! Real MLIR checks Smelt's printed IR, for the printed form of every lit test chunk:
//! 1. `mlir-opt-22 --allow-unregistered-dialect` parses and verifies every chunk exactly as
//!    printed (syntax, SSA scoping, `func.func`/`return` semantics);
//! 2. `mlir-opt-22 --irdl-file=<generated from the op registry>` verifies every chunk whose ops
//!    IRDL can express (see `smelt_compiler::irdl`) against the dialect definition.

mod common;

use smelt_compiler::printer::PrintOptions;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

fn mlir_opt() -> String {
    ["/usr/lib/llvm-22/bin/mlir-opt", "mlir-opt-22"]
        .into_iter()
        .find(|c| Command::new(c).arg("--version").output().is_ok_and(|o| o.status.success()))
        .expect("mlir-opt-22 is not installed: run the README's test command, which installs mlir-22-tools")
        .to_string()
}

fn run_mlir_opt(args: &[String], chunks: &[String]) {
    let mut child = Command::new(mlir_opt())
        .args(args)
        .arg("--split-input-file")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(chunks.join("// -----\n").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "mlir-opt {args:?} rejected printed IR:\n{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn mlir_verifies_every_printed_lit_test_generically() {
    let chunks: Vec<String> =
        common::printed_lit_chunks(PrintOptions { debug_info: true }).into_iter().map(|c| c.1).collect();
    run_mlir_opt(&["--allow-unregistered-dialect".to_string()], &chunks);
    println!("mlir-opt verified {} printed chunks as generic IR", chunks.len());
}

#[test]
fn mlir_verifies_printed_lit_tests_against_the_generated_irdl() {
    let dir = std::env::temp_dir().join(format!("smelt-irdl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let irdl = dir.join("smelt.irdl.mlir");
    std::fs::write(&irdl, smelt_compiler::irdl::generate()).unwrap();

    let inexpressible: Vec<&str> = smelt_compiler::dialect::all_ops()
        .filter(|d| d.dialect() == "smelt" && !smelt_compiler::irdl::expressible(d))
        .map(|d| d.name)
        .collect();
    let all = common::printed_lit_chunks(PrintOptions { debug_info: true });
    let checkable: Vec<String> = all
        .iter()
        .filter(|(_, text)| !inexpressible.iter().any(|op| text.contains(&format!("\"{op}\""))))
        .map(|c| c.1.clone())
        .collect();
    assert!(checkable.len() * 2 > all.len(), "most lit chunks must be checkable against IRDL");
    run_mlir_opt(&[format!("--irdl-file={}", irdl.display())], &checkable);
    println!("mlir-opt verified {} of {} printed chunks against the IRDL dialect", checkable.len(), all.len());
    let _ = std::fs::remove_dir_all(Path::new(&dir));
}
