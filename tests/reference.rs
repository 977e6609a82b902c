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

/// NaN and the infinities through the reference semantics, as ONNX Runtime 1.32 computes them
/// (its outputs for these inputs, written down): the oracle propagates NaN where IEEE does.
#[test]
fn nan_and_infinities_follow_onnx_runtime() {
    use smelt_compiler::literal::{Data, Literal};
    use smelt_compiler::types::ElementType;
    let (nan, inf) = (f64::NAN, f64::INFINITY);
    let x = [nan, inf, -inf, -0.0, 1e30, -1e30, 1.5, -1.5];
    let slope = [0.1, 0.1, 0.1, 0.1, 0.1, 0.1, inf, nan];
    let cases: [(&str, &str, [f64; 8]); 9] = [
        ("relu", "\"smelt.relu\"(%x)", [nan, inf, 0.0, 0.0, 1e30, 0.0, 1.5, 0.0]),
        ("max", "\"smelt.max\"(%x, %z)", [nan, inf, 0.0, 0.0, 1e30, 0.0, 1.5, 0.0]),
        ("min", "\"smelt.min\"(%x, %z)", [nan, 0.0, -inf, 0.0, 0.0, -1e30, 0.0, -1.5]),
        ("clip", "\"smelt.clip\"(%x, %lo, %hi)", [nan, 1.0, -1.0, 0.0, 1.0, -1.0, 1.0, -1.0]),
        ("prelu", "\"smelt.prelu\"(%x, %s)", [nan, inf, -inf, 0.0, 1e30, -1e29, 1.5, nan]),
        ("sigmoid", "\"smelt.sigmoid\"(%x)", [nan, 1.0, 0.0, 0.5, 1.0, 0.0, 0.817_574_4, 0.182_425_6]),
        ("silu", "\"smelt.silu\"(%x)", [nan, inf, nan, 0.0, 1e30, 0.0, 1.226_361_6, -0.273_638_3]),
        ("hardswish", "\"smelt.hardswish\"(%x)", [nan, inf, nan, 0.0, 1e30, 0.0, 1.125, -0.375]),
        (
            "softplus",
            "\"smelt.softplus\"(%x)",
            [nan, inf, 0.0, std::f64::consts::LN_2, 1e30, 0.0, 1.701_413_3, 0.201_413_3],
        ),
    ];
    let t = "tensor<8xf32>";
    let literal =
        |v: &[f64]| Literal { shape: vec![v.len() as u64], element: ElementType::F32, data: Data::F(v.to_vec()) };
    for (name, call, expected) in cases {
        let text = format!(
            "func.func @main(%x: {t}, %s: {t}) -> {t} {{\n  %z = \"smelt.constant\"() {{value = dense<0.0> : {t}}} : () -> {t}\n  \
             %lo = \"smelt.constant\"() {{value = dense<-1.0> : tensor<f32>}} : () -> tensor<f32>\n  \
             %hi = \"smelt.constant\"() {{value = dense<1.0> : tensor<f32>}} : () -> tensor<f32>\n  \
             %r = {call} : {} -> {t}\n  return %r : {t}\n}}\n",
            match name {
                "max" | "min" | "prelu" => format!("({t}, {t})"),
                "clip" => format!("({t}, tensor<f32>, tensor<f32>)"),
                _ => format!("({t})"),
            }
        );
        let module = smelt_compiler::parser::parse_module(&text, "special.mlir").unwrap();
        let outputs = run(&module, &[literal(&x), literal(&slope)]).unwrap();
        let out = outputs[0].to_f64();
        for (i, (a, e)) in out.iter().zip(expected).enumerate() {
            let same = (a.is_nan() && e.is_nan()) || a == &e || (a - e).abs() <= 1e-6 * e.abs().max(1.0);
            assert!(same, "{name}({}) is {a}, ONNX Runtime gives {e}", x[i]);
        }
    }
}
