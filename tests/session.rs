//! The library API: a `Session` loads a model once, runs it on named, typed tensors and
//! reproduces ONNX Runtime's stored outputs; a symbolic model compiles once per input shape;
//! bad feeds are errors that name the input.

use smelt::{Error, Mode, Session, SessionOptions, Tensor, TensorData};

mod common;

fn model(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/models").join(name)
}

fn max_rel_error(got: &[f32], want: &[f32]) -> f32 {
    let scale = want.iter().fold(0f32, |m, x| m.max(x.abs())).max(f32::MIN_POSITIVE);
    got.iter().zip(want).fold(0f32, |m, (a, b)| m.max((a - b).abs())) / scale
}

#[test]
fn resnet18_matches_onnxruntime_through_the_api() {
    let dir = common::models();
    let mut session = Session::new(dir.join("resnet18.onnx")).unwrap();
    assert_eq!(session.inputs()[0].name, "input");
    assert_eq!(session.inputs()[0].shape, vec![Some(1), Some(3), Some(224), Some(224)]);
    let x = Tensor::read(dir.join("resnet18.test_data_set_0/input_0.pb")).unwrap();
    let want = Tensor::read(dir.join("resnet18.test_data_set_0/output_0.pb")).unwrap();
    let outputs = session.run(&[("input", &x)]).unwrap();
    assert_eq!(outputs.len(), 1);
    assert_eq!(outputs[0].0, session.outputs()[0].name);
    let got = outputs[0].1.as_slice::<f32>().expect("f32 logits");
    assert!(max_rel_error(got, want.as_slice::<f32>().unwrap()) < 1e-4);
    // A second run reuses the executable and gives the same bits.
    let again = session.run(&[("input", &x)]).unwrap();
    assert_eq!(again[0].1, outputs[0].1);
}

#[test]
fn a_symbolic_batch_runs_at_every_batch_and_matches_the_reference() {
    let path = model("symbolic_batch_cnn/model.onnx");
    let mut fused = Session::new(&path).unwrap();
    let mut reference =
        Session::with_options(&path, SessionOptions { mode: Mode::Reference, ..Default::default() }).unwrap();
    assert_eq!(fused.inputs()[0].shape, vec![None, Some(3), Some(16), Some(16)]);
    assert_eq!(fused.inputs()[0].dim_names, vec![Some("N".to_string()), None, None, None]);
    assert_eq!(fused.outputs()[0].dim_names, vec![Some("N".to_string()), None]);
    for batch in [1u64, 3, 2, 3] {
        let n = (batch * 3 * 16 * 16) as usize;
        let x =
            Tensor::from_vec(vec![batch, 3, 16, 16], (0..n).map(|i| ((i % 17) as f32 - 8.0) / 8.0).collect()).unwrap();
        let got = fused.run(&[("x", &x)]).unwrap();
        let want = reference.run(&[("x", &x)]).unwrap();
        assert_eq!(got[0].1.shape(), want[0].1.shape());
        assert_eq!(got[0].1.shape()[0], batch);
        assert!(max_rel_error(got[0].1.as_slice().unwrap(), want[0].1.as_slice().unwrap()) < 1e-5);
    }
}

#[test]
fn half_precision_inputs_and_outputs_stay_half() {
    let dir = model("fp16_cnn_half_io");
    let mut session = Session::new(dir.join("model.onnx")).unwrap();
    let x = Tensor::read(dir.join("test_data_set_0/input_0.pb")).unwrap();
    assert!(matches!(x.data(), TensorData::F16(_)));
    let want = Tensor::read(dir.join("test_data_set_0/output_0.pb")).unwrap();
    let name = session.inputs()[0].name.clone();
    let got = session.run(&[(&name, &x)]).unwrap();
    let (TensorData::F16(got), TensorData::F16(want)) = (got[0].1.data(), want.data()) else {
        panic!("f16 outputs expected");
    };
    let got: Vec<f32> = got.iter().map(|h| h.to_f32()).collect();
    let want: Vec<f32> = want.iter().map(|h| h.to_f32()).collect();
    assert!(max_rel_error(&got, &want) < 2e-2);
}

#[test]
fn bad_feeds_name_the_input() {
    let mut session = Session::new(model("symbolic_batch_cnn/model.onnx")).unwrap();
    let good = Tensor::from_vec(vec![1, 3, 16, 16], vec![0f32; 768]).unwrap();
    let wrong_shape = Tensor::from_vec(vec![1, 4, 16, 16], vec![0f32; 1024]).unwrap();
    let wrong_type = Tensor::from_vec(vec![1, 3, 16, 16], vec![0i64; 768]).unwrap();
    let message = |e: Error| match e {
        Error::Input { name, reason } => format!("{name}: {reason}"),
        other => panic!("an input error expected, got {other}"),
    };
    let e = message(session.run(&[("y", &good)]).unwrap_err());
    assert!(e.starts_with("y: the model has no such input (its inputs: x)"), "{e}");
    let e = message(session.run(&[]).unwrap_err());
    assert!(e.contains("x: not given"), "{e}");
    let e = message(session.run(&[("x", &good), ("x", &good)]).unwrap_err());
    assert!(e.contains("given twice"), "{e}");
    let e = message(session.run(&[("x", &wrong_shape)]).unwrap_err());
    assert!(e.contains("dimension 1 is 3 in the model"), "{e}");
    let e = message(session.run(&[("x", &wrong_type)]).unwrap_err());
    assert!(e.contains("is f32 in the model but the given tensor is tensor<1x3x16x16xi64>"), "{e}");
}

#[test]
fn load_errors_name_the_file() {
    let e = Session::new("/nonexistent/model.onnx").err().unwrap();
    assert!(matches!(e, Error::Load(_)));
    assert!(e.to_string().contains("/nonexistent/model.onnx"), "{e}");
    let e = Session::from_bytes(b"not a model".to_vec(), "mem.onnx", SessionOptions::default()).err().unwrap();
    assert!(e.to_string().contains("mem.onnx") && e.to_string().contains("not a valid ONNX model"), "{e}");
}

#[test]
fn tensors_round_trip_through_npy_npz_and_tensorproto() {
    let dir = tempfile::tempdir().unwrap();
    let tensors = [
        Tensor::from_vec(vec![2, 3], vec![1.5f32, -2.0, 3.25, 0.0, 1e-7, -1e9]).unwrap(),
        Tensor::from_vec(vec![4], vec![1i64, -2, i64::MAX, 0]).unwrap(),
        Tensor::from_vec(vec![2, 2], vec![true, false, false, true]).unwrap(),
        Tensor::from_vec(vec![3], vec![0u8, 7, 255]).unwrap(),
        Tensor::from_vec(vec![], vec![2.5f64]).unwrap(),
    ];
    for (i, t) in tensors.iter().enumerate() {
        for ext in ["npy", "pb"] {
            let path = dir.path().join(format!("t{i}.{ext}"));
            t.write(&path, "t").unwrap();
            assert_eq!(&Tensor::read(&path).unwrap(), t, "{ext}");
        }
    }
    let half = Tensor::from_vec(vec![1], vec![half::f16::from_f32(1.0)]).unwrap();
    let e = half.write(dir.path().join("h.npy"), "h").unwrap_err().to_string();
    assert!(e.contains("f16 has no .npy writer"), "{e}");
    let corrupt = dir.path().join("bad.npy");
    std::fs::write(&corrupt, b"\x93NUMPY garbage").unwrap();
    let e = Tensor::read(&corrupt).unwrap_err().to_string();
    assert!(e.starts_with(corrupt.to_str().unwrap()), "{e}");
}
