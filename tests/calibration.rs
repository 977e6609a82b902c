//! The measured feedback loop through the CLI: `smelt calibrate` writes a profile the cost
//! model reads, `smelt run --record` appends kernels (concurrently without loss), `smelt tune`
//! reaches a fixed point, reports its accuracy and flips a roofline decision to one that measures
//! faster, `smelt report --measure` draws the roofline.
//! Accuracy targets are benchmarks (BENCHMARKS.md), not assertions here: this machine is noisy.

use smelt_hardware::profile::Profile;
use std::path::Path;
use std::process::Command;

fn smelt(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_smelt")).args(args).output().unwrap();
    assert!(out.status.success(), "smelt {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

const MLP: &str = r#"func.func @main(%x: tensor<32x64xf32>, %w: tensor<64x64xf32>, %b: tensor<64xf32>, %v: tensor<64x16xf32>) -> tensor<32x16xf32> {
  %0 = "smelt.matmul"(%x, %w) : (tensor<32x64xf32>, tensor<64x64xf32>) -> tensor<32x64xf32>
  %1 = "smelt.add"(%0, %b) : (tensor<32x64xf32>, tensor<64xf32>) -> tensor<32x64xf32>
  %2 = "smelt.gelu"(%1) : (tensor<32x64xf32>) -> tensor<32x64xf32>
  %3 = "smelt.matmul"(%2, %v) : (tensor<32x64xf32>, tensor<64x16xf32>) -> tensor<32x16xf32>
  %4 = "smelt.relu"(%3) : (tensor<32x16xf32>) -> tensor<32x16xf32>
  return %4 : tensor<32x16xf32>
}
"#;

const CONV: &str = r#"func.func @main(%x: tensor<1x64x56x56xf32>) -> tensor<1x64x56x56xf32> {
  %w = "smelt.constant"() {value = dense<0.01> : tensor<64x64x3x3xf32>} : () -> tensor<64x64x3x3xf32>
  %y = "smelt.conv2d"(%x, %w) {pads = array<i64: 1, 1, 1, 1>} : (tensor<1x64x56x56xf32>, tensor<64x64x3x3xf32>) -> tensor<1x64x56x56xf32>
  return %y : tensor<1x64x56x56xf32>
}
"#;

fn mlp(dir: &Path) -> String {
    let path = dir.join("mlp.mlir");
    std::fs::write(&path, MLP).unwrap();
    path.display().to_string()
}

#[test]
fn calibrate_writes_the_seeds_summary_and_a_profile_the_cost_model_reads() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("p.json");
    let p = profile.to_str().unwrap();
    let out = smelt(&["calibrate", "--quick", "--patterns", "conv", "--ops", "relu,matmul", "-o", p]);
    assert!(out.contains("Conv2d_BatchNorm2d_ReLU") && out.contains("verdict"), "{out}");
    let loaded = Profile::load(&profile).unwrap();
    assert!(loaded.peaks.measured_gflops.unwrap() > 0.0 && loaded.peaks.measured_bandwidth_gbs.unwrap() > 0.0);
    assert_eq!(loaded.fusion_profiles.len(), 5, "one per conv pattern");
    assert!(loaded.operation_profiles.iter().any(|o| o.op == "relu") && !loaded.kernel_records.is_empty());
    assert!(!loaded.metadata.cpu_model.is_empty() || !loaded.metadata.isa_features.is_empty());
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        let peak = &loaded.peaks.unknown["fma_peak"];
        assert!(peak["gflops"].as_f64().unwrap() > 0.0 && peak["bits"].as_u64().unwrap() >= 256, "{peak}");
        assert!(out.contains("FMA peak (1 core): micro-kernel"), "{out}");
    }
    // The cost model reads it: fusing with it prices kernels from measurements.
    let fused = Command::new(env!("CARGO_BIN_EXE_smelt-opt"))
        .args([mlp(dir.path()).as_str(), "--cost-profile", p])
        .output()
        .unwrap();
    assert!(fused.status.success(), "{}", String::from_utf8_lossy(&fused.stderr));
    // The kernel variants it chose on this CPU are stored and printed; a run given the profile
    // takes them instead of measuring (flipped here, so taking them shows).
    assert!(out.contains("Kernel variants chosen by measurement on"), "{out}");
    let mut flipped = loaded.clone();
    let (cpu, chosen) = flipped.kernel_variants.iter_mut().next().expect("variants stored for this CPU");
    let key = "conv3x3/1x64x56x56->64 threads=1 among winograd|im2col";
    let was = chosen.get(key).unwrap_or_else(|| panic!("{key} not among {chosen:?} on {cpu}")).clone();
    let other = if was == "winograd" { "im2col" } else { "winograd" };
    chosen.insert(key.to_string(), other.to_string());
    flipped.save(&profile).unwrap();
    let conv = dir.path().join("conv.mlir");
    std::fs::write(&conv, CONV).unwrap();
    let run = smelt(&["run", conv.to_str().unwrap(), "--threads", "1", "--iters", "1", "--cost-profile", p, "--json"]);
    let report: serde_json::Value = serde_json::from_str(&run).unwrap();
    assert_eq!(report["fused"]["variants"][format!("conv3x3: {other}")], 1, "{run}");
    let bad = Command::new(env!("CARGO_BIN_EXE_smelt")).args(["calibrate", "--patterns", "vision"]).output().unwrap();
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("unknown pattern group 'vision'"));
}

#[test]
fn kernel_profiles_report_rates_against_the_peak_measured_beside_them() {
    let dir = tempfile::tempdir().unwrap();
    let model = mlp(dir.path());
    let out = smelt(&["run", &model, "--iters", "2", "--threads", "1", "--profile-kernels"]);
    let header = out.lines().find(|l| l.contains("predicted")).unwrap_or_else(|| panic!("{out}"));
    assert!(header.contains("GFLOP/s"), "{out}");
    // Each kernel (both are products) reports a positive rate; where the CPU has a vector FMA
    // the peak is measured, and each kernel's share of it is the last column.
    let with_peak = header.contains("% peak");
    let rates: Vec<f64> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|f| f.first().is_some_and(|i| i.parse::<usize>().is_ok()))
        .map(|f| f[f.len() - 1 - with_peak as usize].parse().unwrap_or_else(|_| panic!("{f:?}")))
        .collect();
    assert!(rates.len() == 2 && rates.iter().all(|&r| r > 0.0), "{rates:?}\n{out}");
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        assert!(header.contains("% peak") && out.contains("FMA peak of one core"), "{out}");
    }
}

#[test]
fn concurrent_recording_runs_lose_no_kernel() {
    let dir = tempfile::tempdir().unwrap();
    let model = mlp(dir.path());
    let profile = dir.path().join("shared.json");
    let p = profile.to_str().unwrap();
    let runs: Vec<_> = ["fused", "unfused", "fused", "unfused"]
        .iter()
        .map(|mode| {
            Command::new(env!("CARGO_BIN_EXE_smelt"))
                .args(["run", &model, "--mode", mode, "--iters", "2", "--threads", "1", "--record", p])
                .spawn()
                .unwrap()
        })
        .collect();
    for mut r in runs {
        assert!(r.wait().unwrap().success());
    }
    let recorded = Profile::load(&profile).unwrap().kernel_records;
    let fused = smelt(&["run", &model, "--mode", "fused", "--iters", "1", "--json"]);
    let unfused = smelt(&["run", &model, "--mode", "unfused", "--iters", "1", "--json"]);
    let steps = |json: &str, key: &str| {
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        v[key]["steps"].as_u64().unwrap() as usize
    };
    // Distinct signatures of both runs, each recorded once with the trials of both its runs.
    assert!(recorded.len() >= steps(&fused, "fused").max(steps(&unfused, "unfused")), "{recorded:?}");
    assert!(recorded.iter().all(|r| r.trials == 4 && r.measured_us > 0.0), "{recorded:?}");
}

#[test]
fn tune_reports_its_rounds_and_accuracy_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let model = mlp(dir.path());
    let profile = dir.path().join("tuned.json");
    let out = smelt(&["tune", &model, "-o", profile.to_str().unwrap(), "--iters", "5", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let rounds = v["rounds"].as_u64().unwrap();
    assert!((1..=6).contains(&rounds), "{out}");
    for key in ["predicted_ms", "measured_ms", "kernel_median_abs_error", "model_abs_error"] {
        let x = v[key].as_f64().unwrap_or_else(|| panic!("{key} in {out}"));
        assert!(x.is_finite() && x >= 0.0, "{key} = {x}");
    }
    // Decided with error bars: the whole program beside the roofline's, and the noise floor.
    assert!(v["converged"].as_bool().unwrap() && v["unsettled_places"] == 0, "{out}");
    for key in ["measured_ci", "roofline_measured_ci", "ratio_ci"] {
        let ci = &v[key];
        let (lo, median, hi) = (ci["lo"].as_f64().unwrap(), ci["median"].as_f64().unwrap(), ci["hi"].as_f64().unwrap());
        assert!(0.0 < lo && lo <= median && median <= hi, "{key} in {out}");
    }
    assert!(v["noise_floor"].as_f64().unwrap() >= 0.0, "{out}");
    // Every kernel of the tuned program is in the profile, so the next fusion prices it exactly.
    let recorded = Profile::load(&profile).unwrap();
    for k in v["kernels"].as_array().unwrap() {
        let sig = k["signature"].as_str().unwrap();
        assert!(recorded.kernel_records.iter().any(|r| r.signature == sig), "{sig} not recorded");
    }
}

/// A gate computed on one row and broadcast over many. The roofline sees the gate's FLOPs as
/// free beside the traffic and recomputes the chain in every row of the product; measured, the
/// transcendentals dominate, and the tuned model computes the gate once.
const GATE: &str = r#"func.func @main(%x: tensor<1x1024xf32>, %y: tensor<128x1024xf32>) -> tensor<128x1024xf32> {
  %0 = "smelt.gelu"(%x) : (tensor<1x1024xf32>) -> tensor<1x1024xf32>
  %1 = "smelt.tanh"(%0) : (tensor<1x1024xf32>) -> tensor<1x1024xf32>
  %2 = "smelt.sigmoid"(%1) : (tensor<1x1024xf32>) -> tensor<1x1024xf32>
  %3 = "smelt.mul"(%y, %2) : (tensor<128x1024xf32>, tensor<1x1024xf32>) -> tensor<128x1024xf32>
  return %3 : tensor<128x1024xf32>
}
"#;

#[test]
fn measurements_flip_a_roofline_fusion_to_a_choice_that_measures_faster() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("gate.mlir");
    std::fs::write(&model, GATE).unwrap();
    let profile = dir.path().join("gate.json");
    let out = smelt(&["tune", model.to_str().unwrap(), "-o", profile.to_str().unwrap(), "--iters", "5", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    // The roofline fuses the whole chain into the broadcasting product...
    let flips = v["flips"].as_array().unwrap();
    let recompute = flips.iter().find(|f| f["roofline"] == "gelu_tanh_sigmoid_mul").unwrap_or_else(|| panic!("{out}"));
    // ...the measured profile keeps the gate out of the per-row kernel...
    let tuned = recompute["tuned"].as_str().unwrap();
    assert!(!tuned.contains("_mul"), "{tuned}");
    // ...and that choice measures faster, kernel for kernel and for the whole model. The
    // recomputed chain costs ~128x the gate's arithmetic, far beyond this machine's noise.
    let (roofline_us, tuned_us) =
        (recompute["roofline_choice_us"].as_f64().unwrap(), recompute["tuned_choice_us"].as_f64().unwrap());
    assert!(tuned_us * 2.0 < roofline_us, "{out}");
    let (roofline_ms, tuned_ms) = (v["roofline_measured_ms"].as_f64().unwrap(), v["measured_ms"].as_f64().unwrap());
    assert!(tuned_ms * 2.0 < roofline_ms, "{out}");
    // The decision carries its interval, beyond the noise floor...
    let ratio = &recompute["ratio_ci"];
    assert!(ratio["hi"].as_f64().unwrap() < 1.0 - recompute["noise_floor"].as_f64().unwrap(), "{out}");
    // ...and the profile alone fuses the program that was measured: `smelt-opt` with it
    // keeps the gate out of the product too, and differs nowhere else.
    assert!(v["converged"].as_bool().unwrap(), "{out}");
    let fused = Command::new(env!("CARGO_BIN_EXE_smelt-opt"))
        .arg(&model)
        .arg(format!("--pass-pipeline=builtin.module(fuse{{cost-profile={}}})", profile.display()))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&fused.stdout);
    assert!(fused.status.success() && !text.contains("gelu_tanh_sigmoid_mul"), "{text}");
    let decided = Profile::load(&profile).unwrap().fusion_decisions;
    assert!(decided.iter().any(|d| d.flipped && d.ratio.is_some()), "{decided:?}");
}

#[test]
fn report_measure_puts_predictions_beside_measurements_and_draws_the_roofline() {
    let dir = tempfile::tempdir().unwrap();
    let model = mlp(dir.path());
    let svg = dir.path().join("roofline.svg");
    let out = smelt(&["report", &model, "--measure", "--iters", "3", "--svg", svg.to_str().unwrap(), "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let kernels = v["measured"]["kernels"].as_array().unwrap();
    assert!(!kernels.is_empty() && kernels.iter().all(|k| k["measured_us"].as_f64().unwrap() > 0.0));
    let picture = std::fs::read_to_string(&svg).unwrap();
    assert!(picture.starts_with("<svg") && picture.contains("GFLOP/s") && picture.contains("measured"));
}
