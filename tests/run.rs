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

/// Two named inputs and two named outputs, as an ONNX export has them.
const NAMED: &str = "func.func @main(%a: tensor<2x2xf32>, %b: tensor<2x2xf32>) -> (tensor<2x2xf32>, tensor<2x2xf32>) \
    attributes {input_names = [\"a\", \"b\"], output_names = [\"sum\", \"diff/0\"]} {\n  \
    %0 = \"smelt.add\"(%a, %b) : (tensor<2x2xf32>, tensor<2x2xf32>) -> tensor<2x2xf32>\n  \
    %1 = \"smelt.sub\"(%a, %b) : (tensor<2x2xf32>, tensor<2x2xf32>) -> tensor<2x2xf32>\n  \
    return %0, %1 : tensor<2x2xf32>, tensor<2x2xf32>\n}\n";

#[test]
fn inputs_bind_by_name_from_npy_and_npz_and_outputs_save_as_npy() {
    use smelt::Tensor;
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("named.mlir");
    std::fs::write(&model, NAMED).unwrap();
    let a = Tensor::from_vec(vec![2, 2], vec![1f32, 2.0, 3.0, 4.0]).unwrap();
    let b = Tensor::from_vec(vec![2, 2], vec![10f32, 20.0, 30.0, 40.0]).unwrap();
    let (a_npy, b_npy) = (dir.path().join("a.npy"), dir.path().join("b.npy"));
    a.write(&a_npy, "a").unwrap();
    b.write(&b_npy, "b").unwrap();
    let smelt = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_smelt"))
            .args(["run", model.to_str().unwrap(), "--iters", "1"])
            .args(args)
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).to_string())
    };
    let saved = dir.path().join("saved");
    let (b_spec, a_spec) = (format!("b={}", b_npy.display()), format!("a={}", a_npy.display()));
    // Named in reverse order, so positional reading would swap them.
    let (code, err) = smelt(&["--input", &b_spec, "--input", &a_spec, "--save-outputs", saved.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    let sum = Tensor::read(saved.join("sum.npy")).unwrap();
    let diff = Tensor::read(saved.join("diff_0.npy")).unwrap();
    assert_eq!(sum.as_slice::<f32>().unwrap(), &[11.0, 22.0, 33.0, 44.0]);
    assert_eq!(diff.as_slice::<f32>().unwrap(), &[-9.0, -18.0, -27.0, -36.0]);

    // A named input and a positional one fill the rest in order; .pb outputs on request.
    let (code, err) = smelt(&[
        "--input",
        &b_spec,
        "--input",
        a_npy.to_str().unwrap(),
        "--save-outputs",
        saved.to_str().unwrap(),
        "--output-format",
        "pb",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(Tensor::read(saved.join("diff_0.pb")).unwrap(), diff);

    // An .npz archive binds by its array names.
    let npz = dir.path().join("feed.npz");
    let mut writer = ndarray_npy::NpzWriter::new(std::fs::File::create(&npz).unwrap());
    writer.add_array("a", &ndarray::arr2(&[[1f32, 2.0], [3.0, 4.0]])).unwrap();
    writer.add_array("b", &ndarray::arr2(&[[1f32, 1.0], [1.0, 1.0]])).unwrap();
    writer.finish().unwrap();
    let saved_npz = dir.path().join("from_npz");
    let (code, err) = smelt(&["--input", npz.to_str().unwrap(), "--save-outputs", saved_npz.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(Tensor::read(saved_npz.join("sum.npy")).unwrap().as_slice::<f32>().unwrap(), &[2.0, 3.0, 4.0, 5.0]);

    // Mistakes name the input.
    let (code, err) = smelt(&["--input", &format!("c={}", a_npy.display())]);
    assert_eq!(code, Some(1));
    assert!(err.contains("the model has no input 'c' (its inputs: a, b)"), "{err}");
    let (code, err) = smelt(&["--input", &a_spec]);
    assert_eq!(code, Some(1));
    assert!(err.contains("input 'b' is not given"), "{err}");
    let (code, err) = smelt(&["--input", &a_spec, "--input", &a_spec]);
    assert_eq!(code, Some(1));
    assert!(err.contains("input 'a' is given twice"), "{err}");
}
