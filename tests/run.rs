//! `smelt run` as a user drives it: inputs from files, every output to files.

use smelt_compiler::literal::{Data, Literal};
use smelt_compiler::types::ElementType;
use smelt_runtime::tensor_io::{read_tensor, write_tensor};
use std::process::Command;

const TWO_RESULTS: &str = "func.func @main(%x: tensor<2x3xf32>) -> (tensor<2x3xf32>, tensor<2x3xf32>) {\n  \
    %0 = \"smelt.relu\"(%x) : (tensor<2x3xf32>) -> tensor<2x3xf32>\n  \
    %1 = \"smelt.neg\"(%x) : (tensor<2x3xf32>) -> tensor<2x3xf32>\n  \
    return %0, %1 : tensor<2x3xf32>, tensor<2x3xf32>\n}\n";

#[test]
fn every_output_is_written_to_a_folder_or_one_path_each() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("two.mlir");
    std::fs::write(&model, TWO_RESULTS).unwrap();
    let x = [-1.5, 2.0, -0.5, 3.0, 0.0, -4.0];
    let input = dir.path().join("x.pb");
    let literal = Literal { shape: vec![2, 3], element: ElementType::F32, data: Data::F(x.to_vec()) };
    write_tensor(&input, "x", &literal).unwrap();
    let run = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_smelt"))
            .args(["run", model.to_str().unwrap(), "--iters", "1", "--input", input.to_str().unwrap()])
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    let expect = |path: &std::path::Path, f: fn(f64) -> f64| {
        let got = read_tensor(path).unwrap();
        assert_eq!(got.to_f64().to_vec(), x.iter().map(|&v| f(v)).collect::<Vec<_>>(), "{}", path.display());
    };
    let folder = dir.path().join("outs/");
    run(&["--output", folder.to_str().unwrap()]);
    expect(&folder.join("output_0.pb"), |v| v.max(0.0));
    expect(&folder.join("output_1.pb"), |v| -v);
    let (a, b) = (dir.path().join("a.pb"), dir.path().join("b.pb"));
    run(&["--output", a.to_str().unwrap(), "--output", b.to_str().unwrap()]);
    expect(&a, |v| v.max(0.0));
    expect(&b, |v| -v);
}
