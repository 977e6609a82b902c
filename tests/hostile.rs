//! Hostile input and hostile surroundings: every case ends in a clear error or a correct
//! result, never a panic, a signal or a silent success.

use std::io::Read;
use std::process::{Command, Stdio};

fn model(name: &str) -> String {
    format!("{}/../shared/models/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn no_panic(stderr: &[u8]) {
    let text = String::from_utf8_lossy(stderr);
    assert!(!text.contains("panicked"), "{text}");
}

#[test]
fn output_into_a_full_disk_is_an_error_naming_the_output() {
    let runs: [(&str, Vec<String>); 3] = [
        ("smelt-opt", vec![model("mobilenet_v2.onnx")]),
        ("smelt", vec!["ops".into()]),
        ("smelt", vec!["report".into(), model("mobilenet_v2.onnx"), "--json".into()]),
    ];
    for (bin, args) in runs {
        let exe = if bin == "smelt" { env!("CARGO_BIN_EXE_smelt") } else { env!("CARGO_BIN_EXE_smelt-opt") };
        let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
        let out = Command::new(exe).args(&args).stdout(full).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{bin} {args:?}");
        no_panic(&out.stderr);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("standard output: error: cannot write"), "{bin} {args:?}: {stderr}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_smelt-opt"))
        .args([&model("mobilenet_v2.onnx"), "-o", "/dev/full"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/dev/full: error: cannot write"));
}

#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    // More output than a pipe holds, so the writer meets the closed end whatever the timing.
    let mut child = Command::new(env!("CARGO_BIN_EXE_smelt-opt"))
        .arg(model("mobilenet_v2.onnx"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut stderr = Vec::new();
    child.stderr.take().unwrap().read_to_end(&mut stderr).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}: {}", String::from_utf8_lossy(&stderr));
    assert!(stderr.is_empty(), "{}", String::from_utf8_lossy(&stderr));
}

/// Runs `smelt run` on `mlir` with `inputs` (written as TensorProto files) in every mode;
/// returns each mode's exit code and stderr.
fn run_every_mode(mlir: &str, inputs: &[smelt_compiler::literal::Literal]) -> Vec<(String, Option<i32>, String)> {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.mlir");
    std::fs::write(&model, mlir).unwrap();
    let mut args = vec!["run".to_string(), model.to_str().unwrap().to_string(), "--iters".into(), "1".into()];
    for (i, literal) in inputs.iter().enumerate() {
        let path = dir.path().join(format!("in{i}.pb"));
        smelt_runtime::tensor_io::write_tensor(&path, &format!("in{i}"), literal).unwrap();
        args.extend(["--input".to_string(), path.to_str().unwrap().to_string()]);
    }
    ["fused", "unfused", "reference"]
        .iter()
        .map(|mode| {
            let out = Command::new(env!("CARGO_BIN_EXE_smelt")).args(&args).args(["--mode", mode]).output().unwrap();
            (mode.to_string(), out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
        })
        .collect()
}

fn ints(values: &[i64]) -> smelt_compiler::literal::Literal {
    use smelt_compiler::literal::{Data, Literal};
    Literal {
        shape: vec![values.len() as u64],
        element: smelt_compiler::types::ElementType::I64,
        data: Data::I(values.to_vec()),
    }
}

fn floats(shape: &[u64], value: f64) -> smelt_compiler::literal::Literal {
    use smelt_compiler::literal::{Data, Literal};
    let n = shape.iter().product::<u64>() as usize;
    Literal { shape: shape.to_vec(), element: smelt_compiler::types::ElementType::F32, data: Data::F(vec![value; n]) }
}

#[test]
fn sizes_from_data_are_checked_before_anything_is_allocated() {
    let tile = "func.func @main(%x: tensor<2x3xf32>, %r: tensor<2xi64>) -> tensor<?x?xf32> {\n  \
                %0 = \"smelt.tile\"(%x, %r) : (tensor<2x3xf32>, tensor<2xi64>) -> tensor<?x?xf32>\n  \
                return %0 : tensor<?x?xf32>\n}\n";
    let expand = "func.func @main(%x: tensor<1x1xf32>, %s: tensor<2xi64>) -> tensor<?x?xf32> {\n  \
                  %0 = \"smelt.expand\"(%x, %s) : (tensor<1x1xf32>, tensor<2xi64>) -> tensor<?x?xf32>\n  \
                  return %0 : tensor<?x?xf32>\n}\n";
    let cases = [
        (tile, vec![floats(&[2, 3], 1.0), ints(&[-1, 1])], "negative entry"),
        // Wraps in 32 bits, then in 64 bits.
        (expand, vec![floats(&[1, 1], 1.0), ints(&[65536, 65537])], "memory limit"),
        (expand, vec![floats(&[1, 1], 1.0), ints(&[1 << 32, (1 << 32) + 1])], "64 bits"),
    ];
    for (text, inputs, reason) in cases {
        for (mode, code, stderr) in run_every_mode(text, &inputs) {
            no_panic(stderr.as_bytes());
            assert_eq!(code, Some(1), "{mode}: {stderr}");
            assert!(stderr.contains(reason), "{mode}: {stderr}");
        }
    }
}

#[test]
fn a_stride_past_the_only_window_is_never_taken() {
    for stride in [1i64 << 31, 1 << 62] {
        let text = format!(
            "func.func @main(%x: tensor<1x1x4x4xf32>) -> tensor<1x1x1x1xf32> {{\n  \
             %w = \"smelt.constant\"() {{value = dense<2.0> : tensor<1x1x1x1xf32>}} : () -> tensor<1x1x1x1xf32>\n  \
             %0 = \"smelt.conv2d\"(%x, %w) {{strides = array<i64: {stride}, {stride}>}} : (tensor<1x1x4x4xf32>, tensor<1x1x1x1xf32>) -> tensor<1x1x1x1xf32>\n  \
             return %0 : tensor<1x1x1x1xf32>\n}}\n"
        );
        for (mode, code, stderr) in run_every_mode(&text, &[floats(&[1, 1, 4, 4], 1.5)]) {
            no_panic(stderr.as_bytes());
            assert_eq!(code, Some(0), "stride {stride}, {mode}: {stderr}");
        }
    }
}

#[test]
fn a_range_without_end_is_an_error() {
    let text = "func.func @main(%a: tensor<f32>, %b: tensor<f32>, %d: tensor<f32>) -> tensor<?xf32> {\n  \
                %0 = \"smelt.range\"(%a, %b, %d) : (tensor<f32>, tensor<f32>, tensor<f32>) -> tensor<?xf32>\n  \
                return %0 : tensor<?xf32>\n}\n";
    let scalar = |v: f64| smelt_compiler::literal::Literal { shape: vec![], ..floats(&[], v) };
    for (mode, code, stderr) in run_every_mode(text, &[scalar(0.0), scalar(f64::INFINITY), scalar(1.0)]) {
        no_panic(stderr.as_bytes());
        assert_eq!(code, Some(1), "{mode}: {stderr}");
        assert!(stderr.contains("no finite length"), "{mode}: {stderr}");
    }
}

#[test]
fn weights_cannot_change_under_a_loaded_model() {
    // The module holds the weights it read: truncating the file afterwards changes nothing.
    let dir = tempfile::tempdir().unwrap();
    for file in ["resnet18.onnx", "resnet18.weights"] {
        std::fs::copy(model(file), dir.path().join(file)).unwrap();
    }
    let path = dir.path().join("resnet18.onnx");
    let options = smelt_compiler::onnx::ImportOptions::default();
    let mut module = smelt_compiler::onnx::import_file(&path, &options).unwrap();
    std::fs::OpenOptions::new().write(true).open(dir.path().join("resnet18.weights")).unwrap().set_len(16).unwrap();
    smelt_passes::run_pipeline(&mut module, smelt_passes::DEFAULT_PIPELINE).unwrap();
    let data = std::path::Path::new(&model("resnet18.test_data_set_0")).to_path_buf();
    let input = smelt_runtime::tensor_io::read_tensor(&data.join("input_0.pb")).unwrap();
    let expected = smelt_runtime::tensor_io::read_tensor(&data.join("output_0.pb")).unwrap();
    let mut exe = smelt_runtime::exec::Executable::compile(module).unwrap();
    let out = exe.run(&[input]).unwrap();
    let (_, rel) = smelt_runtime::reference::max_errors(&out[0], &expected);
    assert!(rel < 1e-3, "relative error {rel}");
}

#[test]
fn an_integer_quotient_out_of_its_type_is_an_error() {
    use smelt_compiler::literal::{Data, Literal};
    let text = "func.func @main(%a: tensor<i32>, %b: tensor<i32>) -> tensor<i32> {\n  \
                %0 = \"smelt.div\"(%a, %b) : (tensor<i32>, tensor<i32>) -> tensor<i32>\n  \
                return %0 : tensor<i32>\n}\n";
    let int =
        |v: i64| Literal { shape: vec![], element: smelt_compiler::types::ElementType::I32, data: Data::I(vec![v]) };
    for (divisor, reason) in [(-1, "overflows i32"), (0, "division by zero")] {
        for (mode, code, stderr) in run_every_mode(text, &[int(i32::MIN as i64), int(divisor)]) {
            no_panic(stderr.as_bytes());
            assert_eq!(code, Some(1), "{mode}: {stderr}");
            assert!(stderr.contains(reason), "{mode}: {stderr}");
        }
    }
}

/// Under an address-space limit (`ulimit -v`) a model that needs more is an error naming the
/// value and its size in every mode, even where `SMELT_MEMORY_LIMIT` asks for more: the
/// allocator would refuse, and Rust aborts where an allocation fails.
#[test]
fn a_model_larger_than_the_address_space_is_an_error_not_an_abort() {
    let text = "func.func @main(%x: tensor<1x1xf32>) -> tensor<1x1xf32> {\n  \
                %s = \"smelt.constant\"() {value = dense<[40000, 40000]> : tensor<2xi64>} : () -> tensor<2xi64>\n  \
                %0 = \"smelt.expand\"(%x, %s) : (tensor<1x1xf32>, tensor<2xi64>) -> tensor<40000x40000xf32>\n  \
                %1 = \"smelt.reduce_sum\"(%0) {keepdims = true} : (tensor<40000x40000xf32>) -> tensor<1x1xf32>\n  \
                return %1 : tensor<1x1xf32>\n}\n";
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("big.mlir");
    std::fs::write(&model, text).unwrap();
    for mode in ["fused", "unfused", "reference"] {
        let out = Command::new("bash")
            .args(["-c", "ulimit -v 4000000 && exec \"$0\" \"$@\"", env!("CARGO_BIN_EXE_smelt"), "run"])
            .arg(&model)
            .args(["--iters", "1", "--mode", mode])
            .env("SMELT_MEMORY_LIMIT", "1T")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        no_panic(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{mode}: {stderr}");
        assert!(stderr.contains("smelt.expand") && stderr.contains("over the memory limit"), "{mode}: {stderr}");
    }
}
