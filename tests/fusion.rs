//! Fusion on the shared models: fewer kernels and more traffic saved than the seeds' partitioner,
//! FLOPs accounted exactly, decisions that follow the cost profile, deterministic output, and
//! snapshots (insta) of the fused IR and the fusion report under the roofline and under the
//! checked-in sample profile (`profiles/seeds-i7-12700k.json`).

mod common;

use common::{cleaned, models};
use serde_json::Value;
use smelt_compiler::printer::{print_module, PrintOptions};
use smelt_compiler::verifier::verify;
use smelt_compiler::Module;
use smelt_hardware::target::Target;
use smelt_passes::fuse::Fuse;
use smelt_passes::fusion::report::{fusion_report, FusionReport};
use smelt_passes::Pass;
use std::process::Command;

const SAMPLE_PROFILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/profiles/seeds-i7-12700k.json");

fn fuse(module: &Module, profile: Option<&str>) -> (Module, FusionReport) {
    // The sample profile was measured for (and prices only) the i7-12700k target.
    let target = if profile.is_some() { Target::load("i7-12700k").unwrap() } else { Target::host() };
    let model = smelt_passes::cost::model(target, profile).unwrap();
    let mut fuse = Fuse::new(model.clone());
    let mut fused = module.clone();
    fuse.run(&mut fused).unwrap();
    verify(&fused).unwrap();
    let report = fusion_report(module, &fused, &fuse.stats, model.as_ref());
    (fused, report)
}

fn report_json(model: &str, extra: &[&str]) -> Value {
    let path = models().join(model);
    let out = Command::new(env!("CARGO_BIN_EXE_smelt"))
        .args(["report", path.to_str().unwrap(), "--json"])
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Seeds: ResNet-18 60 ops -> 32 subgraphs, 19.6% traffic saved; MobileNet-V2 141 -> 66, 42.0%.
#[test]
fn fewer_kernels_and_more_traffic_saved_than_the_seeds() {
    for (model, seed_kernels, seed_saved, expect_kernels) in
        [("resnet18.onnx", 32, 0.196, 22), ("mobilenet_v2.onnx", 66, 0.420, 36)]
    {
        let r = report_json(model, &[]);
        let (before, after) = (r["kernels_before"].as_u64().unwrap(), r["kernels_after"].as_u64().unwrap());
        let (tb, ta) = (r["traffic_bytes_before"].as_f64().unwrap(), r["traffic_bytes_after"].as_f64().unwrap());
        let saved = 1.0 - ta / tb;
        println!("{model}: {before} -> {after} kernels, traffic {tb} -> {ta} ({:.1}% saved)", saved * 100.0);
        assert_eq!(after, expect_kernels, "{model}");
        assert!(after < seed_kernels && saved > seed_saved, "{model}");
        assert_eq!(r["seeds"]["subgraphs"], seed_kernels);
        // No BatchNorm survives: every one folded into its conv.
        assert!(r["fusion"]["unfused_op_counts"].get("smelt.batch_norm").is_none());
        assert!(r["pattern_counts"].as_object().unwrap().keys().all(|p| !p.contains("bn")));
    }
}

/// Kernel formation never changes FLOPs; BatchNorm folding removes exactly the BatchNorms'.
#[test]
fn flops_are_accounted_exactly() {
    for model in ["resnet18.onnx", "mobilenet_v2.onnx"] {
        let r = report_json(model, &[]);
        let f = &r["fusion"];
        assert_eq!(f["flops_conv_matmul_before"], f["flops_conv_matmul_after"], "{model}");
        assert_eq!(f["flops_conv_matmul_after"], r["flops_conv_matmul"], "{model}");
        let bn_flops: u64 = r["per_op"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["op"] == "smelt.batch_norm")
            .map(|o| o["flops"].as_u64().unwrap())
            .sum();
        assert!(bn_flops > 0);
        assert_eq!(f["flops_folded"].as_u64().unwrap(), bn_flops, "{model}");
        assert_eq!(f["flops_after"].as_u64().unwrap() + bn_flops, f["flops_before"].as_u64().unwrap(), "{model}");
    }
}

/// With measurements in which fused attention ran slower than its parts, the extractor keeps
/// attention unfused; under the roofline every layer's attention is one op.
#[test]
fn the_profile_decides_attention_fusion() {
    let bert = cleaned("bert_base.graph-only.onnx");
    let (roofline, r) = fuse(&bert, None);
    let (measured, m) = fuse(&bert, Some(SAMPLE_PROFILE));
    let count = |m: &Module, op: &str| print_module(m, PrintOptions::default()).matches(op).count();
    assert_eq!(count(&roofline, "\"smelt.attention\""), 12);
    assert_eq!(count(&roofline, "\"smelt.softmax\""), 0);
    assert_eq!(count(&measured, "\"smelt.attention\""), 0);
    assert_eq!(count(&measured, "\"smelt.softmax\""), 12);
    assert_eq!(r.cost_model, "roofline");
    assert_eq!(m.cost_model, "calibrated");
}

/// The greedy DAG extractor's choice never costs more than a tree extractor's, priced the same
/// way (each shared value once).
#[test]
fn dag_extraction_is_no_worse_than_tree_extraction() {
    for model in ["resnet18.onnx", "mobilenet_v2.onnx", "bert_base.graph-only.onnx", "vit_b_16.graph-only.onnx"] {
        let module = cleaned(model);
        let mut fuse = Fuse { compare_extractors: true, ..Fuse::default() };
        let mut fused = module.clone();
        fuse.run(&mut fused).unwrap();
        let s = &fuse.stats[0];
        let tree = s.tree_extraction_ms.unwrap();
        println!("{model}: dag {:.4} ms, tree {tree:.4} ms", s.dag_extraction_ms);
        assert!(s.dag_extraction_ms <= tree * (1.0 + 1e-9), "{model}");
    }
}

#[test]
fn fusion_output_is_deterministic() {
    for model in ["bert_base.graph-only.onnx", "vit_b_16.graph-only.onnx"] {
        let run = || {
            let out = Command::new(env!("CARGO_BIN_EXE_smelt-opt"))
                .args([models().join(model).to_str().unwrap(), "--weights=random", "--mlir-print-debuginfo"])
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            out.stdout
        };
        let first = run();
        assert!(String::from_utf8_lossy(&first).contains("smelt.kernel"));
        assert_eq!(first, run(), "{model}");
    }
}

/// Kernels keep the locations of the ops they replace.
#[test]
fn kernels_carry_the_fused_locations() {
    let (fused, _) = fuse(&cleaned("resnet18.onnx"), None);
    let text = print_module(&fused, PrintOptions { debug_info: true });
    let kernel = text.lines().find(|l| l.contains("pattern = \"conv_relu\"")).unwrap();
    assert!(kernel.contains("loc(fused["), "{kernel}");
    for part in ["conv1 (torch.nn.modules.conv.Conv2d)", "bn1 (torch", "relu (torch"] {
        assert!(kernel.contains(part), "{part} missing from {kernel}");
    }
}

fn snapshot_name(model: &str, profile: &str) -> String {
    format!("{}_{profile}", model.trim_end_matches(".onnx").replace(".graph-only", "").replace('.', "_"))
}

/// Snapshots of the fused IR (weights are printed as resource handles) and of the report.
#[test]
fn fused_models_snapshots() {
    for model in ["resnet18.onnx", "mobilenet_v2.onnx", "vit_b_16.graph-only.onnx", "bert_base.graph-only.onnx"] {
        let module = cleaned(model);
        for (profile, path) in [("roofline", None), ("sample_profile", Some(SAMPLE_PROFILE))] {
            let (fused, report) = fuse(&module, path);
            let name = snapshot_name(model, profile);
            insta::assert_snapshot!(format!("ir_{name}"), print_module(&fused, PrintOptions::default()));
            let mut value = serde_json::to_value(&report).unwrap();
            // The search statistics include a time-limit stop reason only when hit; keep them,
            // but not their wall times.
            value["model"] = Value::String(model.to_string());
            for search in value["search"].as_array_mut().unwrap() {
                search["search_ms"] = Value::Null;
                search["extraction_ms"] = Value::Null;
            }
            insta::assert_snapshot!(format!("report_{name}"), serde_json::to_string_pretty(&value).unwrap());
        }
    }
}

/// BERT-base's Q, K and V projections merge into one product per layer whose slices attention
/// reads in place (24 kernels fewer over 12 layers); `--no-algebra` keeps them apart.
#[test]
fn bert_projections_merge_unless_algebra_is_off() {
    let model = "bert_base.graph-only.onnx";
    let with = report_json(model, &["--weights", "random"]);
    let without = report_json(model, &["--weights", "random", "--no-algebra"]);
    let kernels = |r: &Value| r["kernels_after"].as_u64().unwrap();
    assert!(kernels(&without) >= kernels(&with) + 24, "{} vs {}", kernels(&with), kernels(&without));
    let search = |r: &Value| r["fusion"]["search"][0].clone();
    assert_eq!(search(&with)["substitutions"]["merge-parallel-matmuls"], 12);
    assert_eq!(search(&without)["substitutions"], serde_json::json!({}));
    assert!(search(&with)["stop_reason"].as_str().unwrap().contains("Saturated"));
    assert!(with["fusion"]["unfused_op_counts"].get("smelt.slice").is_none(), "slices are views");
}
