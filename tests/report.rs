//! `smelt report`: exact FLOP counts against PyTorch's FlopCounterMode, and the JSON interface.

use serde_json::Value;
use std::process::Command;

fn report(model: &str, extra: &[&str]) -> Value {
    let path = format!("{}/../shared/models/{model}", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(env!("CARGO_BIN_EXE_smelt")).args(["report", &path, "--json"]).args(extra).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// PyTorch FlopCounterMode's conv + linear + matmul FLOPs at batch 1 (../shared/models/README.md).
#[test]
fn conv_and_matmul_flops_equal_pytorch_flop_counter() {
    let resnet = report("resnet18.onnx", &[]);
    assert_eq!(resnet["flops_conv_matmul"], 3_628_146_688u64);
    assert_eq!(report("mobilenet_v2.onnx", &[])["flops_conv_matmul"], 601_548_544u64);
    let bert = report("bert_base.graph-only.onnx", &["--weights=random"]);
    assert_eq!(bert["flops_conv_matmul"], 22_348_431_360u64);
    assert_eq!(bert["flops_conv_matmul_torch_counter"], 22_348_431_360u64);
    // FlopCounterMode counts torch.nn.MultiheadAttention's fused inference path as zero; the
    // true count includes the QKV/output projections and attention matmuls of its 12 layers.
    let vit = report("vit_b_16.graph-only.onnx", &["--weights=random"]);
    assert_eq!(vit["flops_conv_matmul_torch_counter"], 22_542_249_984u64);
    assert_eq!(vit["flops_conv_matmul"], 35_127_656_448u64);
}

#[test]
fn report_json_has_the_documented_keys() {
    let r = report("resnet18.onnx", &[]);
    for key in [
        "ops",
        "flops_total",
        "flops_conv_matmul",
        "params",
        "bytes_total",
        "op_counts",
        "concurrency",
        "per_op",
        "ridge_point",
    ] {
        assert!(r.get(key).is_some(), "missing key {key}");
    }
    assert_eq!(r["ops"], 69);
    assert_eq!(r["op_counts"]["smelt.conv2d"], 20);
    // torchvision's ResNet-18 has 11,689,512 parameters (running statistics are buffers).
    assert_eq!(r["params"], 11_689_512u64);
    let first = &r["per_op"][0];
    assert_eq!(first["op"], "smelt.conv2d");
    assert_eq!(first["bound"], "compute");
    assert_eq!(first["parallelism"]["channel"], 64);
}

#[test]
fn batch_scales_activations_not_weights() {
    let one = report("resnet18.onnx", &[]);
    let eight = report("resnet18.onnx", &["--batch", "8"]);
    assert_eq!(eight["flops_total"].as_u64().unwrap(), 8 * one["flops_total"].as_u64().unwrap());
    assert_eq!(eight["weight_bytes"], one["weight_bytes"]);
    assert_eq!(eight["batch"], 8);
}

#[test]
fn targets_change_the_verdict() {
    let host = report("resnet18.onnx", &["--target", "host"]);
    let h100 = report("resnet18.onnx", &["--target", "h100-sxm"]);
    let compute = |r: &Value| r["per_op"].as_array().unwrap().iter().filter(|o| o["bound"] == "compute").count();
    assert!(compute(&host) > compute(&h100), "a higher ridge point makes fewer ops compute-bound");
}

#[test]
fn report_table_fits_100_columns() {
    for (model, extra) in [("resnet18.onnx", None), ("bert_base.graph-only.onnx", Some("--weights=random"))] {
        let path = format!("{}/../shared/models/{model}", env!("CARGO_MANIFEST_DIR"));
        let out = Command::new(env!("CARGO_BIN_EXE_smelt")).args(["report", &path]).args(extra).output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        let first = text.lines().next().unwrap();
        for line in text.lines().skip(1) {
            assert!(line.chars().count() <= 100, "{model}: line wider than 100 columns:\n{line}");
        }
        assert!(first.contains("ridge point"), "{first}");
        assert!(text.contains("FLOPs "));
    }
}

#[test]
fn roofline_latency_is_predicted_per_target() {
    let host = report("resnet18.onnx", &["--target", "host"]);
    let h100 = report("resnet18.onnx", &["--target", "h100-sxm"]);
    let (h, g) = (host["predicted_ms"].as_f64().unwrap(), h100["predicted_ms"].as_f64().unwrap());
    // 3.64 GFLOP at the host's 186 GFLOP/s peak is 19.6 ms before memory time and overheads.
    assert!(h > 19.5 && h < 60.0, "host prediction {h} ms");
    assert!(g < h / 10.0, "an H100 is predicted far faster: {g} ms");
    let per_op: f64 = host["per_op"].as_array().unwrap().iter().map(|o| o["predicted_us"].as_f64().unwrap()).sum();
    assert!((per_op / 1e3 - h).abs() < 1e-6 * h.max(1.0));
}
