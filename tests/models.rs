//! The models of `tests/models/`, built with the onnx helper in the shapes exporters write
//! (`scripts/make_test_models.py`), each with ONNX Runtime's outputs stored beside it: every
//! one imports, and its fused and unfused runs and the reference interpreter reproduce ONNX
//! Runtime's outputs on every stored data set.

use std::process::Command;

#[test]
fn every_exported_model_matches_onnxruntime() {
    let root = format!("{}/tests/models", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(env!("CARGO_BIN_EXE_smelt")).args(["conformance", "-v", &root]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    let cases = std::fs::read_dir(&root).unwrap().filter(|e| e.as_ref().unwrap().path().is_dir()).count();
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.lines().last(), Some(format!("{cases} passed, 0 failed, 0 skipped").as_str()));
}

#[test]
fn an_input_that_contradicts_a_static_dimension_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let model = format!("{}/tests/models/symbolic_batch_cnn/model.onnx", env!("CARGO_MANIFEST_DIR"));
    let input = dir.path().join("x.pb");
    let wrong = smelt_compiler::Literal {
        shape: vec![2, 4, 16, 16],
        element: smelt_compiler::ElementType::F32,
        data: smelt_compiler::literal::Data::F(vec![0.0; 2 * 4 * 16 * 16]),
    };
    smelt_runtime::tensor_io::write_tensor(&input, "x", &wrong).unwrap();
    for mode in ["fused", "reference"] {
        let out = Command::new(env!("CARGO_BIN_EXE_smelt"))
            .args(["run", &model, "--mode", mode, "--input", input.to_str().unwrap()])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("input 'x' dimension 1 is 3 in the model"), "{stderr}");
    }
}

#[test]
fn analyses_of_a_symbolic_model_bind_its_free_dimensions_to_one() {
    let model = format!("{}/tests/models/symbolic_batch_cnn/model.onnx", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(env!("CARGO_BIN_EXE_smelt")).args(["report", &model, "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("dynamic 'x' dimension 0 taken as 1"));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // 2 x (8 x 3x3x3 x 16x16 + 16 x 8x3x3 x 8x8) for the convolutions, 2 x 16 x 10 for the
    // product, at batch 1.
    let expected = 2 * (8 * 27 * 256 + 16 * 72 * 64) + 2 * 16 * 10;
    assert_eq!(report["flops_conv_matmul"].as_u64(), Some(expected));
}
