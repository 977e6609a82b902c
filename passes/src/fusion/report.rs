//! What fusion changed: kernels, off-chip traffic, FLOPs and predicted latency before and
//! after, kernels per pattern, and how the e-graph search went. `smelt report` prints it.
//!
//! Counting: a *kernel* is one launched unit — an executed op or a `smelt.kernel`; views
//! (reshape, flatten, squeeze, unsqueeze, identity, dropout), contiguous slices (they alias
//! their input) and the movement ops attention reads in place ([`smelt_compiler::views`])
//! launch nothing and count 0.
//! *Traffic* is what each kernel reads and writes at its boundary ([`op_cost`]), so values kept
//! inside a kernel no longer count.

use super::Stats;
use crate::characterize::executed_ops;
use crate::cost::CostModel;
use crate::work::{op_cost, work_of};
use serde::Serialize;
use smelt_compiler::names;
use smelt_compiler::views::{runs_nothing, strided_views};
use smelt_compiler::Module;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Serialize)]
pub struct FusionReport {
    pub kernels_before: usize,
    pub kernels_after: usize,
    pub traffic_bytes_before: u64,
    pub traffic_bytes_after: u64,
    /// 1 - after / before.
    pub traffic_saved: f64,
    pub flops_before: u64,
    pub flops_after: u64,
    /// Work the algebraic rewrites removed (BatchNorms folded into weights): `flops_before -
    /// flops_after` exactly, since kernel formation itself never changes FLOPs.
    pub flops_folded: u64,
    pub flops_conv_matmul_before: u64,
    pub flops_conv_matmul_after: u64,
    pub predicted_ms_before: f64,
    pub predicted_ms_after: f64,
    pub cost_model: String,
    /// Fused kernels (`smelt.kernel`) by pattern.
    pub pattern_counts: BTreeMap<String, usize>,
    /// Ops left unfused, by name.
    pub unfused_op_counts: BTreeMap<String, usize>,
    pub search: Vec<Stats>,
}

struct Totals {
    kernels: usize,
    traffic: u64,
    flops: u64,
    flops_mm: u64,
    predicted_s: f64,
}

fn totals(m: &Module, model: &dyn CostModel) -> Totals {
    let mut t = Totals { kernels: 0, traffic: 0, flops: 0, flops_mm: 0, predicted_s: 0.0 };
    let ops = executed_ops(m);
    let in_place = strided_views(m, &ops);
    for op in ops {
        let c = op_cost(m, op);
        t.flops += c.flops;
        t.flops_mm += c.flops_conv_matmul;
        if runs_nothing(m, op, &in_place) {
            continue;
        }
        t.kernels += 1;
        t.traffic += c.bytes_read + c.bytes_written;
        let pattern = m.op(op).attr("pattern").and_then(|a| a.as_str()).unwrap_or(m.op(op).name());
        t.predicted_s += model.estimate(pattern, &work_of(m, op)).seconds;
    }
    t
}

pub fn fusion_report(unfused: &Module, fused: &Module, stats: &[Stats], model: &dyn CostModel) -> FusionReport {
    let (b, a) = (totals(unfused, model), totals(fused, model));
    let mut pattern_counts = BTreeMap::new();
    let mut unfused_op_counts = BTreeMap::new();
    let ops = executed_ops(fused);
    let in_place = strided_views(fused, &ops);
    for op in ops {
        let o = fused.op(op);
        match o.attr("pattern").and_then(|p| p.as_str()) {
            Some(p) if o.name() == names::KERNEL => *pattern_counts.entry(p.to_string()).or_default() += 1,
            _ if runs_nothing(fused, op, &in_place) => {}
            _ => *unfused_op_counts.entry(o.name().to_string()).or_default() += 1,
        }
    }
    FusionReport {
        kernels_before: b.kernels,
        kernels_after: a.kernels,
        traffic_bytes_before: b.traffic,
        traffic_bytes_after: a.traffic,
        traffic_saved: if b.traffic == 0 { 0.0 } else { 1.0 - a.traffic as f64 / b.traffic as f64 },
        flops_before: b.flops,
        flops_after: a.flops,
        flops_folded: b.flops.saturating_sub(a.flops),
        flops_conv_matmul_before: b.flops_mm,
        flops_conv_matmul_after: a.flops_mm,
        predicted_ms_before: b.predicted_s * 1e3,
        predicted_ms_after: a.predicted_s * 1e3,
        cost_model: model.name().to_string(),
        pattern_counts,
        unfused_op_counts,
        search: stats.to_vec(),
    }
}

/// The seeds' partitioner results (`../shared/seeds`) for the models they measured: ops,
/// subgraphs, traffic saved.
pub fn seed_result(model_file: &str) -> Option<(usize, usize, f64)> {
    let stem = std::path::Path::new(model_file).file_stem()?.to_str()?;
    match stem {
        "resnet18" => Some((60, 32, 0.196)),
        "mobilenet_v2" => Some((141, 66, 0.420)),
        _ => None,
    }
}
