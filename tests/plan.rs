//! Launch plans (`smelt plan`): snapshots of every shared model on every shipped target, the
//! hardware limits every geometry must respect, what batch and fusion do to the predictions,
//! the H100 target's efficiencies against the measured H100 pattern timings, and the CLI.

mod common;

use common::{cleaned, models};
use serde_json::Value;
use smelt_compiler::Module;
use smelt_hardware::gpu_patterns::GpuPatternTimings;
use smelt_hardware::target::Target;
use smelt_passes::plan::{Geometry, Plan, PlanOptions};
use std::path::Path;
use std::process::Command;

const MODELS: [&str; 4] =
    ["resnet18.onnx", "mobilenet_v2.onnx", "vit_b_16.graph-only.onnx", "bert_base.graph-only.onnx"];
const H100_TIMINGS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/calibration/h100-fusion-patterns.json");

fn plan(module: &Module, target: &str, batch: u64) -> Plan {
    let options = PlanOptions { batch: Some(batch), ..PlanOptions::default() };
    smelt::commands::plan::plan_model(module, target, &options).unwrap()
}

fn check_geometry(p: &Plan, t: &Target) {
    for k in &p.kernels {
        assert!(k.predicted_us > 0.0 && k.end_us >= k.start_us + k.predicted_us * 0.999, "{}: {k:?}", p.target);
        assert!(k.units >= 1 && k.units <= t.compute_units, "{}: {k:?}", p.target);
        match &k.geometry {
            Geometry::Gpu { shared_memory_bytes, registers_per_thread, occupancy, block, ctas_per_sm, sms, .. } => {
                let g = t.gpu.as_ref().unwrap();
                assert!(*shared_memory_bytes * *ctas_per_sm as u64 <= g.shared_memory_per_sm_bytes, "{k:?}");
                assert!(*registers_per_thread <= g.max_registers_per_thread, "{k:?}");
                assert!(*registers_per_thread * block[0] * ctas_per_sm <= g.registers_per_sm, "{k:?}");
                assert!(*occupancy > 0.0 && *occupancy <= 1.0, "{k:?}");
                assert!(*sms <= t.compute_units, "{k:?}");
            }
            Geometry::Tpu { padding_efficiency, mxus, .. } => {
                assert!(*padding_efficiency > 0.0 && *padding_efficiency <= 1.0, "{k:?}");
                assert!(*mxus <= t.compute_units, "{k:?}");
            }
            Geometry::Kpu { scratchpad_bytes, tiles, .. } => {
                assert!(*scratchpad_bytes <= t.kpu.as_ref().unwrap().scratchpad_bytes, "{k:?}");
                assert!(*tiles <= t.compute_units, "{k:?}");
            }
            Geometry::Cpu { threads, .. } => assert!(*threads <= t.compute_units, "{k:?}"),
        }
    }
}

/// Every shared model on every shipped target: the per-kernel table and totals, and the
/// limits each geometry must respect.
#[test]
fn plans_of_every_model_on_every_target() {
    for model in MODELS {
        let module = cleaned(model);
        for target in Target::shipped() {
            let p = plan(&module, target, 1);
            check_geometry(&p, &Target::load(target).unwrap());
            assert!(p.predicted_latency_ms <= p.predicted_serial_ms * 1.000001, "{model} {target}");
            let name = format!(
                "plan_{}_{target}",
                model.trim_end_matches(".onnx").replace(".graph-only", "").replace('.', "_")
            );
            insta::assert_snapshot!(name, smelt::commands::plan::table(model, &p));
        }
    }
}

/// The seeds' direction: fusion saves more on a GPU (launches, off-chip traffic) than on a CPU,
/// and a batch of 32 uses the GPU better than a batch of 1.
#[test]
fn fusion_pays_more_on_the_gpu_and_batch_fills_it() {
    for model in ["resnet18.onnx", "mobilenet_v2.onnx"] {
        let module = cleaned(model);
        let speedup = |p: &Plan| p.predicted_unfused_latency_ms.unwrap() / p.predicted_latency_ms;
        let (gpu, cpu) = (plan(&module, "h100-sxm", 1), plan(&module, "host", 1));
        assert!(speedup(&gpu) > 1.1, "{model}: fusion on h100 {}", speedup(&gpu));
        assert!(speedup(&gpu) > speedup(&cpu), "{model}: h100 {} vs host {}", speedup(&gpu), speedup(&cpu));
        assert!(gpu.launches < gpu.unfused_launches.unwrap());
        assert!(gpu.dram_bytes <= gpu.unfused_dram_bytes.unwrap(), "{model}");
        let batched = plan(&module, "h100-sxm", 32);
        assert_eq!(batched.flops, 32 * gpu.flops, "{model}: activations scale exactly");
        assert!(batched.utilization > 2.0 * gpu.utilization, "{model}: {} vs {}", batched.utilization, gpu.utilization);
        assert!(batched.predicted_latency_ms < 32.0 * gpu.predicted_latency_ms);
    }
}

/// The shipped H100-SXM efficiencies are the ones `smelt fit-target` finds in the measured H100
/// pattern timings, and with them the plans predict those timings — including ones the fit
/// did not see.
#[test]
fn h100_target_is_fitted_to_the_measured_patterns() {
    let calibration = GpuPatternTimings::load(Path::new(H100_TIMINGS)).unwrap();
    let fit = smelt::commands::fit_target::fit(&calibration, "h100-sxm").unwrap();
    let shipped = Target::load("h100-sxm").unwrap();
    let (e, s) = (&fit.efficiency, &shipped.efficiency);
    for (fitted, ours, what) in [
        (e.kernel_fixed_us, s.kernel_fixed_us, "kernel_fixed_us"),
        (e.convolution, s.convolution, "convolution"),
        (e.vector, s.vector, "vector"),
        (e.bandwidth, s.bandwidth, "bandwidth"),
        (fit.graph_launch_us, shipped.gpu.as_ref().unwrap().graph_launch_us, "graph_launch_us"),
        (fit.main_loop_step_ns, shipped.gpu.as_ref().unwrap().main_loop_step_ns, "main_loop_step_ns"),
    ] {
        assert!((fitted - ours).abs() <= 1e-9 + 0.02 * ours.abs(), "{what}: fitted {fitted}, shipped {ours}");
    }
    assert_eq!(e.contraction_by_math, s.contraction_by_math);
    assert!(fit.skipped.is_empty(), "{:?}", fit.skipped);
    assert_eq!(fit.rows.len(), 2 * calibration.patterns.len());
    assert!(fit.fitted_median_error < 0.15, "fitted median error {}", fit.fitted_median_error);
    assert!(fit.held_out_median_error < 0.2, "held-out median error {}", fit.held_out_median_error);
    assert!(fit.fitted_median_error <= fit.nominal_median_error + 1e-9);
    assert!(fit.predicted_mean_speedup > 1.0 && fit.measured_mean_speedup > 1.0);
}

fn smelt(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_smelt")).args(args).output().unwrap()
}

#[test]
fn plan_cli_prints_the_documented_json_and_writes_the_plan() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plan.json");
    let model = models().join("resnet18.onnx");
    let out = smelt(&[
        "plan",
        model.to_str().unwrap(),
        "--target",
        "h100-sxm",
        "--batch",
        "32",
        "--json",
        "-o",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in ["predicted_latency_ms", "predicted_unfused_latency_ms", "energy_j"] {
        assert!(v[key].as_f64().is_some_and(|x| x > 0.0), "{key}: {}", v[key]);
    }
    assert_eq!(v["schema"], "smelt.plan/1");
    assert_eq!(v["batch"], 32);
    let kernels = v["kernels"].as_array().unwrap();
    assert!(!kernels.is_empty());
    let first = &kernels[0];
    for key in ["geometry", "inputs", "outputs", "predicted_us", "energy_uj", "start_us"] {
        assert!(!first[key].is_null(), "{key} missing in {first}");
    }
    // Buffers named by kernels exist.
    let buffers = v["buffers"].as_array().unwrap();
    for k in kernels {
        for b in k["inputs"].as_array().unwrap().iter().chain(k["outputs"].as_array().unwrap()) {
            assert!((b.as_u64().unwrap() as usize) < buffers.len());
        }
    }
    assert_eq!(serde_json::from_str::<Value>(&std::fs::read_to_string(&file).unwrap()).unwrap(), v);

    // Stream launches cost the host's overhead per kernel on top.
    let stream = smelt(&["plan", model.to_str().unwrap(), "--launch", "stream", "--json"]);
    let s: Value = serde_json::from_slice(&stream.stdout).unwrap();
    let graph = smelt(&["plan", model.to_str().unwrap(), "--json"]);
    let g: Value = serde_json::from_slice(&graph.stdout).unwrap();
    assert!(s["predicted_latency_ms"].as_f64() > g["predicted_latency_ms"].as_f64());

    // smelt-opt prints the plan of the IR its pipeline leaves.
    let opt = Command::new(env!("CARGO_BIN_EXE_smelt-opt"))
        .args([model.to_str().unwrap(), "--emit=plan", "--target", "tpu-v4"])
        .output()
        .unwrap();
    assert!(opt.status.success(), "{}", String::from_utf8_lossy(&opt.stderr));
    let p: Value = serde_json::from_slice(&opt.stdout).unwrap();
    assert_eq!(p["target"], "tpu-v4");
    assert_eq!(p["kernels"].as_array().unwrap().len(), g["kernels"].as_array().unwrap().len());
}

#[test]
fn plan_and_fit_errors_name_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    let model = models().join("resnet18.onnx");
    let model = model.to_str().unwrap();
    let corrupt = dir.path().join("corrupt.json");
    std::fs::write(&corrupt, "{\"patterns\": [").unwrap();
    let bad_target = dir.path().join("bad.toml");
    std::fs::write(&bad_target, "name = \"x\"\nkind = \"gpu\"\n").unwrap();
    for (args, expected) in [
        (vec!["plan", model, "--target", "nope"], "unknown target 'nope'"),
        (vec!["plan", model, "--dtype", "f64"], "unknown dtype 'f64'"),
        (vec!["plan", model, "--launch", "eager"], "unknown launch mode"),
        (vec!["plan", model, "--batch", "0"], "batch 0"),
        (vec!["plan", model, "--target", bad_target.to_str().unwrap()], "invalid target description"),
        (vec!["fit-target", corrupt.to_str().unwrap()], "not a GPU pattern calibration"),
        (vec!["fit-target", H100_TIMINGS, "--target", "host"], "calibrate GPU targets only"),
    ] {
        let out = smelt(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(expected), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

/// `smelt fit-target -o` writes a target description that loads and plans.
#[test]
fn fitted_target_file_loads_and_plans() {
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("h100-fit.toml");
    let out = smelt(&["fit-target", H100_TIMINGS, "--target", "h100-pcie", "-o", toml.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let fit: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(fit["fitted_median_error"].as_f64().unwrap() < 0.3);
    let t = Target::load(toml.to_str().unwrap()).unwrap();
    assert_eq!(t.name, "h100-pcie");
    let p = plan(&cleaned("mobilenet_v2.onnx"), toml.to_str().unwrap(), 1);
    assert!(p.predicted_latency_ms > 0.0);
}

#[test]
fn plan_trace_lays_the_predicted_schedule_out_as_run_traces_do() {
    let dir = tempfile::tempdir().unwrap();
    let (trace, measured) = (dir.path().join("plan.trace.json"), dir.path().join("run.trace.json"));
    let model = models().join("resnet18.onnx");
    let out = smelt(&["plan", model.to_str().unwrap(), "--json", "--trace", trace.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&trace).unwrap()).unwrap();
    let events = doc["traceEvents"].as_array().unwrap();
    let kernels = plan["kernels"].as_array().unwrap();
    assert_eq!(events.len(), kernels.len());
    for (e, k) in events.iter().zip(kernels) {
        assert_eq!(
            (&e["ph"], &e["name"], &e["ts"], &e["dur"]),
            (&"X".into(), &k["pattern"], &k["start_us"], &k["predicted_us"])
        );
    }
    // The measured trace has the same events' shape.
    let out = smelt(&["run", model.to_str().unwrap(), "--iters", "1", "--profile-kernels", measured.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&measured).unwrap()).unwrap();
    let keys = |e: &Value| e.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&doc["traceEvents"][0]), keys(&events[0]));
}

/// A QDQ network's convolutions are planned on a GPU's int8 matrix units (priced at its int8
/// peak); the host, which names no int8 rate, prices them as f32 products.
#[test]
fn quantized_convolutions_plan_on_int8_units() {
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/models/qdq_cnn/model.onnx"));
    let mut m = smelt_compiler::onnx::import_file(path, &Default::default()).unwrap();
    smelt_passes::run_pipeline(&mut m, smelt_passes::CLEANUP_PIPELINE).unwrap();
    for (target, math) in [("h100-sxm", "i8"), ("host", "f32")] {
        let p = plan(&m, target, 1);
        let quantized: Vec<_> = p.kernels.iter().filter(|k| k.ops.contains(&"smelt.quantized_conv2d")).collect();
        assert!(!quantized.is_empty(), "{target}: no quantized convolution planned");
        for k in quantized {
            assert_eq!(k.math, math, "{target}: {k:?}");
        }
    }
}
