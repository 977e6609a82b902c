//! Runs the lit suite in `lit-tests/` with LLVM's real `lit` and `FileCheck` against the
//! binaries cargo just built.

use std::path::Path;
use std::process::Command;

fn find_lit() -> Option<String> {
    ["/usr/lib/llvm-22/bin/lit", "lit-22", "lit"]
        .into_iter()
        .find(|c| Command::new(c).arg("--version").output().is_ok_and(|o| o.status.success()))
        .map(str::to_string)
}

#[test]
fn lit_suite_passes() {
    let lit = find_lit().expect("lit is not installed: run the README's test command, which installs llvm-22-tools");
    let bin = Path::new(env!("CARGO_BIN_EXE_smelt-opt")).parent().unwrap();
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("lit-tests");
    let out = Command::new(lit).arg("-sv").arg(&suite).env("SMELT_BIN_DIR", bin).output().expect("run lit");
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "lit reported failures");
    let passed = stdout.lines().find(|l| l.contains("Passed")).unwrap_or_default();
    println!("lit: {passed}");
}
