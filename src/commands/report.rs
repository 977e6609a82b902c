//! `smelt report`: what a model computes and moves (characterization), what fusion made of
//! it, and, measured, how the predictions held.

use crate::driver::{fail, Failure, ModelSource};
use crate::tables::{accuracy_table, si, truncate, wrapped};
use smelt_compiler::diagnostics::SourceMap;
use smelt_compiler::Module;
use smelt_hardware::target::Target;
use smelt_passes::characterize::{characterize, count_params, Characterization};
use smelt_passes::fuse::Fuse;
use smelt_passes::fusion::report::{fusion_report, seed_result, FusionReport};
use smelt_passes::specialize::specialize_to_inputs;

/// `smelt report --measure`: run the fused model and report predicted against measured times.
pub struct MeasureOptions {
    /// Also draw the roofline picture here.
    pub svg: Option<String>,
    pub iters: usize,
}

/// What `smelt report` reports on.
pub struct ReportOptions {
    pub json: bool,
    /// Characterize at this batch (the model's own when absent).
    pub batch: Option<u64>,
    pub target: String,
    pub cost_profile: Option<String>,
    pub measure: Option<MeasureOptions>,
    /// Fuse with substitutions (`fuse{algebra}`).
    pub algebra: bool,
}

/// `smelt report`: the characterization and fusion report of `model`, as text or JSON, with
/// predicted against measured kernel times when `options.measure` asks.
pub fn report(model: &ModelSource, options: &ReportOptions) -> Result<String, Failure> {
    let analysis = analyse(model, options)?;
    Ok(if options.json {
        serde_json::to_string_pretty(&analysis.to_json(&model.path)).expect("serializable") + "\n"
    } else {
        let mut text =
            report_table(&model.path, &analysis.characterization) + &fusion_table(&model.path, &analysis.fusion);
        if let Some(m) = &analysis.measured {
            text.push('\n');
            text.push_str(&accuracy_table(m, None));
        }
        text
    })
}

/// What `smelt report` found: the characterization, the fusion report and, when asked, the
/// fused model measured against its predictions.
pub struct Analysis {
    pub characterization: Characterization,
    pub fusion: FusionReport,
    pub measured: Option<crate::measure::Measured>,
}

impl Analysis {
    /// The `--json` object: the characterization's keys, the fusion summary, the measurement.
    pub fn to_json(&self, model: &str) -> serde_json::Value {
        let mut value = serde_json::to_value(&self.characterization).expect("serializable");
        value["model"] = serde_json::Value::String(model.to_string());
        let f = serde_json::to_value(&self.fusion).expect("serializable");
        for key in ["kernels_before", "kernels_after", "traffic_bytes_before", "traffic_bytes_after", "pattern_counts"]
        {
            value[key] = f[key].clone();
        }
        value["fusion"] = f;
        if let Some(m) = &self.measured {
            value["measured"] = serde_json::json!({
                "predicted_ms": m.predicted_ms(),
                "measured_ms": m.model_ms,
                "kernel_median_abs_error": m.kernel_median_error(),
                "model_abs_error": m.model_error(),
                "kernels": m.kernels,
            });
        }
        if let Some((ops, subgraphs, saved)) = seed_result(model) {
            value["seeds"] = serde_json::json!({ "ops": ops, "subgraphs": subgraphs, "traffic_saved": saved });
        }
        value
    }
}

/// Characterizes and fuses `model` (and measures it when `options.measure` asks).
pub fn analyse(model: &ModelSource, options: &ReportOptions) -> Result<Analysis, Failure> {
    let (batch, target_name, cost_profile, measure) =
        (options.batch, options.target.as_str(), options.cost_profile.as_deref(), &options.measure);
    let target = Target::load(target_name).map_err(fail)?;
    let (imported, module) = model.load_static()?;
    let mut c = characterize(&module, &target, batch);
    c.params = count_params(&imported);
    let (fusion, fused) = fuse_and_report(&module, target_name, cost_profile, options.algebra)?;
    let measured = match measure {
        None => None,
        Some(how) => {
            let inputs = crate::measure::random_inputs(&module).map_err(fail)?;
            let (specialized, changed) = specialize_to_inputs(&module, &inputs).map_err(fail)?;
            let fused = if changed {
                fuse_and_report(&specialized, target_name, cost_profile, options.algebra)?.1
            } else {
                fused
            };
            smelt_runtime::workers::set_threads(1);
            let cost_model = crate::measure::predictor(target_name, cost_profile).map_err(fail)?;
            let m = crate::measure::measure(fused, &inputs, how.iters, Some(cost_model.as_ref())).map_err(fail)?;
            if let Some(svg) = &how.svg {
                let (peak, bandwidth) = ceilings(&target, cost_profile).map_err(fail)?;
                crate::roofline_svg::write(svg, &model.path, &m.kernels, peak, bandwidth).map_err(fail)?;
            }
            Some(m)
        }
    };
    Ok(Analysis { characterization: c, fusion, measured })
}

/// The ceilings a roofline picture draws: measured ones from the profile where it has them,
/// else one core of the target's nominal peak and its bandwidth.
fn ceilings(target: &Target, cost_profile: Option<&str>) -> Result<(f64, f64), String> {
    let nominal = (target.peak_flops("f32") / 1e9 / target.compute_units.max(1) as f64, target.memory_bandwidth_gbs);
    let Some(path) = cost_profile else { return Ok(nominal) };
    let p = smelt_hardware::profile::Profile::load(std::path::Path::new(path))?;
    p.check_prices(&target.name, path)?;
    Ok((p.peaks.measured_gflops.unwrap_or(nominal.0), p.peaks.measured_bandwidth_gbs.unwrap_or(nominal.1)))
}

/// Fuses a copy of the cleaned module the way the default pipeline does, with both extractors
/// priced, and compares it with the unfused module.
fn fuse_and_report(
    module: &Module,
    target: &str,
    cost_profile: Option<&str>,
    algebra: bool,
) -> Result<(FusionReport, Module), Failure> {
    let target = Target::load(target).map_err(fail)?;
    let model = smelt_passes::cost::model(target, cost_profile).map_err(fail)?;
    let mut fuse = Fuse { compare_extractors: true, ..Fuse::new(model.clone()).algebra(algebra) };
    let mut fused = module.clone();
    smelt_passes::PassManager::default()
        .run_pass(&mut fuse, &mut fused, &mut std::io::stderr())
        .map_err(|ds| Failure(crate::driver::render(&SourceMap::default(), &ds)))?;
    Ok((fusion_report(module, &fused, &fuse.stats, model.as_ref()), fused))
}

fn fusion_table(model: &str, f: &FusionReport) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let seeds = seed_result(model);
    let seed_kernels = seeds.map_or(String::new(), |(o, k, _)| format!("  (seeds: {o} ops -> {k} subgraphs)"));
    let seed_traffic = seeds.map_or(String::new(), |(_, _, t)| format!("  (seeds: {:.1}% saved)", t * 100.0));
    let _ = writeln!(out, "fusion            {} kernels -> {}{seed_kernels}", f.kernels_before, f.kernels_after);
    let _ = writeln!(
        out,
        "traffic           {}B -> {}B, {:.1}% saved{seed_traffic}",
        si(f.traffic_bytes_before as f64),
        si(f.traffic_bytes_after as f64),
        f.traffic_saved * 100.0
    );
    let _ = writeln!(
        out,
        "fused latency     {:.3} ms -> {:.3} ms predicted ({})",
        f.predicted_ms_before, f.predicted_ms_after, f.cost_model
    );
    let patterns: Vec<String> = f.pattern_counts.iter().map(|(p, n)| format!("{p} {n}")).collect();
    out.push_str(&wrapped("patterns          ", &patterns, ""));
    out
}

/// `head` then the comma-separated `items` and `tail`, wrapped under the value column so the
/// table stays within 100 columns.
/// The human-readable report, at most 100 columns wide.
fn report_table(model: &str, c: &Characterization) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "{model}  (target {}, ridge point {:.1} FLOP/B, batch {})", c.target, c.ridge_point, c.batch);
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:>4}  {:<14} {:<26} {:>10} {:>10} {:>7} {:>14} {:>7}",
        "#", "op", "name", "FLOP", "bytes", "FLOP/B", "NxCxS", "bound"
    );
    for r in &c.per_op {
        let par = format!("{}x{}x{}", r.parallelism.batch, r.parallelism.channel, r.parallelism.spatial);
        let _ = writeln!(
            out,
            "{:>4}  {:<14} {:<26} {:>10} {:>10} {:>7.1} {:>14} {:>7}",
            r.index,
            truncate(r.op.trim_start_matches("smelt."), 14),
            truncate(&r.name, 26),
            si(r.cost.flops as f64),
            si((r.cost.bytes_read + r.cost.bytes_written) as f64),
            r.arithmetic_intensity,
            truncate(&par, 14),
            r.bound
        );
    }
    let _ = writeln!(out);
    let counts: Vec<String> =
        c.op_counts.iter().map(|(k, v)| format!("{} {v}", k.trim_start_matches("smelt."))).collect();
    out.push_str(&wrapped(&format!("ops               {} (", c.ops), &counts, ")"));
    let _ = writeln!(out, "FLOPs             {} total, {} in conv/matmul/gemm", c.flops_total, c.flops_conv_matmul);
    let _ = writeln!(out, "parameters        {}", c.params);
    let _ = writeln!(
        out,
        "bytes             {}B read ({}B weights), {}B written, {}B total",
        si(c.bytes_read as f64),
        si(c.weight_bytes as f64),
        si(c.bytes_written as f64),
        si(c.bytes_total as f64)
    );
    let _ = writeln!(out, "intensity         {:.1} FLOP/B", c.arithmetic_intensity);
    let _ = writeln!(
        out,
        "latency           {:.3} ms predicted on {} (roofline, one op after another)",
        c.predicted_ms, c.target
    );
    let _ = writeln!(
        out,
        "concurrency       {} stages, critical path {} ops, at most {} ops in parallel",
        c.concurrency.stages, c.concurrency.critical_path, c.concurrency.max_parallel
    );
    let compute = c.per_op.iter().filter(|r| r.bound == "compute").count();
    let memory = c.per_op.iter().filter(|r| r.bound == "memory").count();
    let _ = writeln!(out, "verdict           {compute} ops compute-bound, {memory} memory-bound on {}", c.target);
    out
}
