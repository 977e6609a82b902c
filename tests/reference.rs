//! The reference interpreter reproduces ONNX Runtime's outputs for the shared models
//! (`*.test_data_set_0`), before and after cleanup, and after fusion.

use smelt_compiler::onnx::{import_file, ImportOptions};
use smelt_runtime::reference::{max_errors, run};
use smelt_runtime::tensor_io::read_tensor;
use std::path::Path;

fn check(model: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/models");
    let data = dir.join(format!("{}.test_data_set_0", model.trim_end_matches(".onnx")));
    let input = read_tensor(&data.join("input_0.pb")).unwrap();
    let expected = read_tensor(&data.join("output_0.pb")).unwrap();
    let mut m = import_file(&dir.join(model), &ImportOptions::default()).unwrap();
    let raw = run(&m, std::slice::from_ref(&input)).unwrap();
    smelt_passes::run_pipeline(&mut m, smelt_passes::CLEANUP_PIPELINE).unwrap();
    let cleaned = run(&m, std::slice::from_ref(&input)).unwrap();
    smelt_passes::run_pipeline(&mut m, "builtin.module(fuse)").unwrap();
    smelt_compiler::verifier::verify(&m).unwrap();
    let fused = run(&m, &[input]).unwrap();
    for (stage, out) in [("imported", &raw[0]), ("cleaned", &cleaned[0]), ("fused", &fused[0])] {
        assert_eq!(out.shape, expected.shape, "{model} {stage}");
        let (abs, rel) = max_errors(out, &expected);
        println!("{model} {stage}: max abs err {abs:.3e}, rel {rel:.3e}");
        assert!(rel < 1e-4, "{model} {stage}: relative error {rel} (abs {abs})");
    }
}

#[test]
fn resnet18_matches_onnx_runtime() {
    check("resnet18.onnx");
}

#[test]
fn mobilenet_v2_matches_onnx_runtime() {
    check("mobilenet_v2.onnx");
}
