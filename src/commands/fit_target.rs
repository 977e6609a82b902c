//! `smelt fit-target`: calibrates a GPU target's efficiencies from measured fusion-pattern
//! timings (the format of `../shared/calibration/h100-fusion-patterns.json`).
//!
//! The ceilings give the contraction efficiency per math (measured matmul TFLOP/s over the
//! target's peak) and the bandwidth efficiency (measured copy over nominal). What no ceiling
//! measures — the time every kernel spends beyond its roofline, how far implicit-GEMM
//! convolutions fall below GEMMs, the vector units' efficiency — is fitted: each pattern is
//! built as a graph, fused for the target, planned fused and unfused, and the parameters are
//! chosen by coordinate descent to minimize the mean absolute log error against the graph-
//! replayed timings (`graph_fused_ms`, `graph_unfused_ms`: device time without host launch
//! overhead, which is what a plan in graph launch mode predicts). A two-fold split by pattern
//! entry reports how well a fit predicts timings it did not see.

use serde::Serialize;
use smelt_compiler::Module;
use smelt_hardware::gpu_patterns::GpuPatternTimings;
use smelt_hardware::target::Target;
use smelt_passes::cost::Roofline;
use smelt_passes::fuse::Fuse;
use smelt_passes::plan::{plan, LaunchMode, PlanOptions};
use std::sync::Arc;

struct Sample {
    pattern: String,
    shape: Vec<u64>,
    variant: &'static str,
    measured_ms: f64,
    module: Module,
}

#[derive(Clone, Debug, Serialize)]
pub struct FitRow {
    pub pattern: String,
    pub shape: Vec<u64>,
    /// `fused` or `unfused`.
    pub variant: &'static str,
    pub measured_ms: f64,
    /// With the target's efficiencies as given.
    pub nominal_ms: f64,
    pub fitted_ms: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Fit {
    pub gpu: String,
    #[serde(skip)]
    pub target: Target,
    pub efficiency: smelt_hardware::target::Efficiency,
    pub main_loop_step_ns: f64,
    pub graph_launch_us: f64,
    /// Median |predicted / measured - 1| over all rows.
    pub nominal_median_error: f64,
    pub fitted_median_error: f64,
    /// Fitted on every other entry, evaluated on the rest (both ways).
    pub held_out_median_error: f64,
    /// Fused over unfused speedup, measured and predicted, averaged over patterns.
    pub measured_mean_speedup: f64,
    pub predicted_mean_speedup: f64,
    pub skipped: Vec<String>,
    pub rows: Vec<FitRow>,
}

fn predict(target: &Target, samples: &[&Sample]) -> Result<Vec<f64>, String> {
    let options = PlanOptions { launch: LaunchMode::Graph, ..PlanOptions::default() };
    samples.iter().map(|s| plan(&s.module, target, &options).map(|p| p.predicted_latency_ms)).collect()
}

fn log_error(target: &Target, samples: &[&Sample]) -> Result<f64, String> {
    let predicted = predict(target, samples)?;
    Ok(predicted.iter().zip(samples).map(|(p, s)| (p / s.measured_ms).ln().abs()).sum::<f64>() / samples.len() as f64)
}

fn median_error(predicted: &[f64], measured: &[f64]) -> f64 {
    let mut e: Vec<f64> = predicted.iter().zip(measured).map(|(p, m)| (p / m - 1.0).abs()).collect();
    e.sort_by(f64::total_cmp);
    e.get(e.len() / 2).copied().unwrap_or(0.0)
}

/// The parameters no ceiling measures, with the grids they are searched over.
type Setter = fn(&mut Target, f64);
fn parameters() -> Vec<(Vec<f64>, Setter)> {
    let grid =
        |lo: f64, hi: f64, step: f64| (0..=((hi - lo) / step).round() as usize).map(|i| lo + i as f64 * step).collect();
    vec![
        (grid(0.0, 8.0, 0.25), |t, v| t.efficiency.kernel_fixed_us = v),
        (grid(0.05, 1.0, 0.05), |t, v| t.efficiency.convolution = v),
        (grid(0.1, 1.0, 0.05), |t, v| t.efficiency.vector = v),
        (grid(0.25, 3.0, 0.25), |t, v| {
            if let Some(g) = &mut t.gpu {
                g.graph_launch_us = v;
            }
        }),
        (grid(0.0, 400.0, 10.0), |t, v| {
            if let Some(g) = &mut t.gpu {
                g.main_loop_step_ns = v;
            }
        }),
    ]
}

fn descend(start: &Target, samples: &[&Sample]) -> Result<Target, String> {
    let mut best = start.clone();
    let mut best_error = log_error(&best, samples)?;
    for _ in 0..3 {
        for (grid, set) in parameters() {
            for &v in &grid {
                let mut t = best.clone();
                set(&mut t, v);
                let e = log_error(&t, samples)?;
                if e < best_error - 1e-12 {
                    (best, best_error) = (t, e);
                }
            }
        }
    }
    Ok(best)
}

/// Fits `target_spec`'s efficiencies to `calibration`.
pub fn fit(calibration: &GpuPatternTimings, target_spec: &str) -> Result<Fit, String> {
    let nominal = Target::load(target_spec)?;
    if nominal.gpu.is_none() {
        return Err(format!("{target_spec}: GPU pattern timings calibrate GPU targets only"));
    }
    let mut samples = Vec::new();
    let mut skipped = Vec::new();
    for p in &calibration.patterns {
        let Some(case) = crate::commands::calibrate::pattern(&p.pattern, &p.shape) else {
            skipped.push(format!("{} {:?}: not one of the seeds' patterns at a shape of its rank", p.pattern, p.shape));
            continue;
        };
        let unfused = case.module()?;
        let mut fused = unfused.clone();
        smelt_passes::run_one(&mut fused, &mut Fuse::new(Arc::new(Roofline { target: nominal.clone() })))
            .map_err(|ds| format!("fusing {}: {ds:?}", p.pattern))?;
        for (variant, module, measured_ms) in
            [("fused", fused, p.graph_fused_ms), ("unfused", unfused, p.graph_unfused_ms)]
        {
            samples.push(Sample { pattern: p.pattern.clone(), shape: p.shape.clone(), variant, measured_ms, module });
        }
    }
    if samples.is_empty() {
        return Err("no pattern in the calibration is one Smelt can build".into());
    }

    // What the ceilings measure directly; the fitted parameters start from neutral values, so
    // a fit does not depend on what the target file already says.
    let mut start = nominal.clone();
    let neutral = smelt_hardware::target::Efficiency::default();
    start.efficiency.kernel_fixed_us = 1.0;
    start.efficiency.convolution = neutral.convolution;
    start.efficiency.vector = neutral.vector;
    if let Some(g) = &mut start.gpu {
        g.graph_launch_us = 1.0;
        g.main_loop_step_ns = 100.0;
    }
    let c = &calibration.ceilings;
    for (math, tflops) in
        [("f32", c.fp32_matmul_tflops), ("tf32", c.tf32_matmul_tflops), ("bf16", c.bf16_matmul_tflops)]
    {
        if let Some(peak) = nominal.peak_tflops.get(math) {
            start.efficiency.contraction_by_math.insert(math.to_string(), round((tflops / peak).min(1.0)));
        }
    }
    start.efficiency.bandwidth = round((c.copy_gbps_rw / nominal.memory_bandwidth_gbs).min(1.0));

    let all: Vec<&Sample> = samples.iter().collect();
    let fitted = descend(&start, &all)?;
    let measured: Vec<f64> = all.iter().map(|s| s.measured_ms).collect();
    let nominal_ms = predict(&nominal, &all)?;
    let fitted_ms = predict(&fitted, &all)?;

    // Two folds by pattern entry (fused and unfused of one entry stay together).
    let mut held_out_predicted = vec![0.0; all.len()];
    for fold in 0..2 {
        let train: Vec<&Sample> =
            all.iter().enumerate().filter(|(i, _)| (i / 2) % 2 != fold).map(|(_, s)| *s).collect();
        let test: Vec<usize> = (0..all.len()).filter(|i| (i / 2) % 2 == fold).collect();
        let t = descend(&start, &train)?;
        let p = predict(&t, &test.iter().map(|&i| all[i]).collect::<Vec<_>>())?;
        for (&i, v) in test.iter().zip(p) {
            held_out_predicted[i] = v;
        }
    }
    let speedups = |ms: &[f64]| {
        let pairs: Vec<f64> = ms.chunks(2).map(|c| c[1] / c[0]).collect();
        pairs.iter().sum::<f64>() / pairs.len() as f64
    };
    let rows = all
        .iter()
        .zip(nominal_ms.iter().zip(&fitted_ms))
        .map(|(s, (&n, &f))| FitRow {
            pattern: s.pattern.clone(),
            shape: s.shape.clone(),
            variant: s.variant,
            measured_ms: s.measured_ms,
            nominal_ms: n,
            fitted_ms: f,
        })
        .collect();
    let mut target = fitted;
    target.efficiency.kernel_fixed_us = round(target.efficiency.kernel_fixed_us);
    target.efficiency.convolution = round(target.efficiency.convolution);
    target.efficiency.vector = round(target.efficiency.vector);
    let (main_loop_step_ns, graph_launch_us) =
        target.gpu.as_ref().map_or((0.0, 0.0), |g| (g.main_loop_step_ns, g.graph_launch_us));
    Ok(Fit {
        gpu: calibration.gpu.clone(),
        efficiency: target.efficiency.clone(),
        main_loop_step_ns,
        graph_launch_us,
        target,
        nominal_median_error: median_error(&nominal_ms, &measured),
        fitted_median_error: median_error(&fitted_ms, &measured),
        held_out_median_error: median_error(&held_out_predicted, &measured),
        measured_mean_speedup: speedups(&measured),
        predicted_mean_speedup: speedups(&fitted_ms),
        skipped,
        rows,
    })
}

fn round(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// The table `smelt fit-target` prints.
pub fn table(fit: &Fit) -> String {
    use std::fmt::Write;
    let mut out = format!("GPU pattern timings from {}\n", fit.gpu);
    let _ = writeln!(
        out,
        "{:<36} {:<16} {:<8} {:>11} {:>11} {:>11}",
        "pattern", "shape", "variant", "measured_us", "nominal_us", "fitted_us"
    );
    for r in &fit.rows {
        let shape: Vec<String> = r.shape.iter().map(u64::to_string).collect();
        let _ = writeln!(
            out,
            "{:<36} {:<16} {:<8} {:>11.2} {:>11.2} {:>11.2}",
            r.pattern,
            shape.join("x"),
            r.variant,
            r.measured_ms * 1e3,
            r.nominal_ms * 1e3,
            r.fitted_ms * 1e3
        );
    }
    let e = &fit.efficiency;
    let _ = writeln!(
        out,
        "fitted: kernel_fixed_us {} graph_launch_us {} main_loop_step_ns {} convolution {} vector {} bandwidth {} contraction {:?}",
        e.kernel_fixed_us, fit.graph_launch_us, fit.main_loop_step_ns, e.convolution, e.vector, e.bandwidth, e.contraction_by_math
    );
    let _ = writeln!(
        out,
        "median |error|: nominal {:.1}%, fitted {:.1}%, held out {:.1}%",
        fit.nominal_median_error * 100.0,
        fit.fitted_median_error * 100.0,
        fit.held_out_median_error * 100.0
    );
    let _ = writeln!(
        out,
        "fusion speedup (mean over patterns): measured {:.2}x, predicted {:.2}x",
        fit.measured_mean_speedup, fit.predicted_mean_speedup
    );
    for s in &fit.skipped {
        let _ = writeln!(out, "skipped: {s}");
    }
    out
}
