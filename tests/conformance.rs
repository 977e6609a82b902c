//! `smelt conformance` over ONNX's backend cases in `../shared/onnx-tests`: every case either
//! imports, verifies, cleans up and reproduces its expected outputs three ways — the reference
//! interpreter, the JIT executor on the fused module and on the unfused module — or is skipped
//! as unsupported; none fails.

use std::process::Command;

#[test]
fn every_supported_conformance_case_imports_and_verifies() {
    let root = format!("{}/../shared/onnx-tests", env!("CARGO_MANIFEST_DIR"));
    let dirs = ["node", "pytorch-converted", "pytorch-operator"].map(|d| format!("{root}/{d}"));
    let out = Command::new(env!("CARGO_BIN_EXE_smelt")).arg("conformance").args(&dirs).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    let last = stdout.lines().last().unwrap();
    let numbers: Vec<u64> = last.split(|c: char| !c.is_ascii_digit()).filter_map(|n| n.parse().ok()).collect();
    let [passed, failed, skipped] = numbers[..] else { panic!("unexpected closing line: {last}") };
    assert!(out.status.success(), "conformance reported failures");
    assert_eq!(failed, 0);
    assert!(passed >= 949, "only {passed} cases pass");
    assert_eq!(passed + skipped, 957, "every case is counted");
}
