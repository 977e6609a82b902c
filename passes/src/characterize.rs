//! Characterization: what each operation costs, independent of how it will be run.
//!
//! FLOPs are counted by each op's rule in the op table (`smelt_compiler::dialect::flops`
//! documents them; `smelt ops` lists them). Bytes: each distinct operand is read once and each result written once, at its element
//! size, except that a `gather` reads of its table only the rows it gathers (its result's
//! bytes, at most the table's). View ops (`reshape`, `flatten`, `squeeze`, `unsqueeze`,
//! `identity`, `dropout`) move no data and count 0 bytes. Weights are operands defined by
//! `smelt.constant`. Parameters are counted as PyTorch counts trainable parameters: elements
//! of floating-point constants, each once, except batch-norm running statistics (buffers) and
//! splat constants (fill values such as the zero biases exporters materialize).
//! A `smelt.kernel` counts its body's FLOPs and only its own operands and results as bytes:
//! intermediates inside a kernel never leave the chip.

use crate::cost::CostModel;
use crate::graph::OpGraph;
use crate::work::{dims, elements, op_cost, OpCost};
use crate::{Diagnostic, Pass};
use serde::Serialize;
use smelt_compiler::attributes::Attribute;
use smelt_compiler::ir::{Module, OpId, ValueId};
use smelt_compiler::names;
use smelt_compiler::ElementType;
use smelt_hardware::target::Target;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Parameters read by each op: floating-point weights, each counted once, excluding batch-norm
/// running statistics and splats.
fn params_per_op(m: &Module, ops: &[OpId]) -> HashMap<OpId, u64> {
    let mut counted = HashSet::new();
    let mut per_op = HashMap::new();
    for &op in ops {
        let mut p = 0;
        for (slot, &v) in m.op(op).operands().iter().enumerate() {
            let buffer = m.op(op).name() == names::BATCH_NORM && slot >= 3;
            let float = m.value_type(v).element().is_some_and(ElementType::is_float);
            if float && !buffer && is_weight(m, v) && counted.insert(v) {
                p += elements(m.value_type(v));
            }
        }
        per_op.insert(op, p);
    }
    per_op
}

/// The model's parameter count, on the module as imported: cleanup may fold weights into other
/// constants (a gather of an embedding by constant positions), which changes what the compiled
/// program reads but not what the model has.
pub fn count_params(imported: &Module) -> u64 {
    params_per_op(imported, &executed_ops(imported)).values().sum()
}

/// A constant that holds real data (not a splat fill value).
fn is_weight(m: &Module, v: ValueId) -> bool {
    let Some(d) = m.defining_op(v).filter(|d| m.op(*d).name() == names::CONSTANT) else { return false };
    m.op(d).attr("value").and_then(Attribute::as_dense).is_some_and(|dense| !dense.is_splat())
}

/// Work available in parallel inside one op, from its first result's shape: NCHW gives
/// (N, C, H x W); [B, S, D] gives (B, D, S); [M, N] gives (M, N, 1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Parallelism {
    pub batch: u64,
    pub channel: u64,
    pub spatial: u64,
}

fn parallelism(m: &Module, op: OpId) -> Parallelism {
    let d = m.op(op).results().first().map(|r| dims(m.value_type(*r))).unwrap_or_default();
    let (batch, channel, spatial) = match d.as_slice() {
        [] => (1, 1, 1),
        [c] => (1, *c, 1),
        [b, c] => (*b, *c, 1),
        [b, s, c] => (*b, *c, *s),
        [b, c, rest @ ..] => (*b, *c, rest.iter().product()),
    };
    Parallelism { batch, channel, spatial }
}

/// One row of the report.
#[derive(Clone, Debug, Serialize)]
pub struct OpReport {
    pub index: usize,
    pub op: &'static str,
    pub name: String,
    #[serde(flatten)]
    pub cost: OpCost,
    pub params: u64,
    pub arithmetic_intensity: f64,
    pub parallelism: Parallelism,
    pub stage: usize,
    /// "compute", "memory", or "none" (no FLOPs and no traffic).
    pub bound: &'static str,
    /// Roofline latency on the target, in microseconds.
    pub predicted_us: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Concurrency {
    /// Topological stages: ops whose inputs are all ready after the previous stages.
    pub stages: usize,
    /// Ops on the longest dependency chain.
    pub critical_path: usize,
    /// The most ops in one stage.
    pub max_parallel: usize,
    pub stage_widths: Vec<usize>,
}

/// The whole-model characterization. Field names are a stable interface (see `smelt report`).
#[derive(Clone, Debug, Serialize)]
pub struct Characterization {
    pub target: String,
    pub ridge_point: f64,
    pub batch: u64,
    pub ops: usize,
    pub op_counts: BTreeMap<&'static str, usize>,
    pub flops_total: u64,
    pub flops_conv_matmul: u64,
    /// `flops_conv_matmul` as PyTorch's FlopCounterMode reports it: without the ops exported
    /// from inside `torch.nn.MultiheadAttention`, whose fused inference path
    /// (`aten._native_multi_head_attention`) FlopCounterMode counts as zero. Equal to
    /// `flops_conv_matmul` for models without that module or without exporter provenance.
    pub flops_conv_matmul_torch_counter: u64,
    pub params: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub bytes_total: u64,
    pub weight_bytes: u64,
    pub arithmetic_intensity: f64,
    /// Sum of the ops' roofline latencies (executed one after another), in milliseconds.
    pub predicted_ms: f64,
    pub concurrency: Concurrency,
    pub per_op: Vec<OpReport>,
}

const MULTIHEAD_ATTENTION: &str = "torch.nn.modules.activation.MultiheadAttention";

/// Whether the importer recorded `loc` as exported from inside a PyTorch module of `class`.
fn from_module(loc: &smelt_compiler::Location, class: &str) -> bool {
    use smelt_compiler::Location;
    match loc {
        Location::Name { name, child } => {
            name.ends_with(&format!("({class})")) || child.as_deref().is_some_and(|c| from_module(c, class))
        }
        Location::Fused(parts) => parts.iter().any(|p| from_module(p, class)),
        _ => false,
    }
}

/// A readable name for an op: the PyTorch module scope the importer recorded, else the
/// location's name, else the op name.
pub fn op_label(m: &Module, op: OpId) -> String {
    use smelt_compiler::Location;
    fn scope(l: &Location) -> Option<String> {
        match l {
            Location::Name { name, child } => {
                child.as_deref().and_then(scope).or_else(|| name.split_once(" (").map(|(s, _)| s.to_string()))
            }
            Location::Fused(parts) => parts.iter().find_map(scope),
            _ => None,
        }
    }
    fn name(l: &Location) -> Option<String> {
        match l {
            Location::Name { name, .. } => Some(name.to_string()),
            Location::Fused(parts) => {
                let names: Vec<String> = parts.iter().filter_map(name).collect();
                (!names.is_empty()).then(|| names.join("+"))
            }
            _ => None,
        }
    }
    let loc = &m.op(op).loc;
    scope(loc).or_else(|| name(loc)).unwrap_or_else(|| m.op(op).name().trim_start_matches("smelt.").to_string())
}

/// The ops that execute: everything in `@main`'s body but constants and the return.
pub fn executed_ops(m: &Module) -> Vec<OpId> {
    let Some(func) = m.functions().into_iter().next() else { return Vec::new() };
    let entry = m.body_of(func);
    m.block_ops(entry).filter(|&op| !matches!(m.op(op).name(), names::CONSTANT | names::RETURN)).collect()
}

/// Characterizes `@main` against `target`. `batch` rescales activations (not weights) from the
/// model's own batch, the first dimension of its first input; every op here is independent
/// across the batch, so the scaling is exact.
pub fn characterize(m: &Module, target: &Target, batch: Option<u64>) -> Characterization {
    let ops = executed_ops(m);
    let model_batch = m
        .functions()
        .first()
        .and_then(|f| m.region(m.op(*f).regions()[0]).blocks().first().copied())
        .and_then(|b| m.block(b).args().first().copied())
        .and_then(|a| dims(m.value_type(a)).first().copied())
        .unwrap_or(1)
        .max(1);
    let batch = batch.unwrap_or(model_batch);
    let scale = |v: u64| (v as u128 * batch as u128 / model_batch as u128) as u64;

    let per_op_params = params_per_op(m, &ops);

    let stage_of = OpGraph::new(m, &ops).stages();
    let stages = stage_of.iter().copied().max().unwrap_or(0);
    let mut stage_widths = vec![0; stages];
    for s in &stage_of {
        stage_widths[s - 1] += 1;
    }

    let mut per_op = Vec::new();
    let mut op_counts = BTreeMap::new();
    let (mut flops, mut mm, mut mm_torch, mut read, mut written, mut weights) = (0, 0, 0, 0, 0, 0);
    let roofline = crate::cost::Roofline { target: target.clone() };
    let mut predicted = 0.0;
    for (index, &op) in ops.iter().enumerate() {
        let raw = op_cost(m, op);
        let cost = OpCost {
            flops: scale(raw.flops),
            flops_conv_matmul: scale(raw.flops_conv_matmul),
            bytes_read: scale(raw.bytes_read - raw.weight_bytes) + raw.weight_bytes,
            bytes_written: scale(raw.bytes_written),
            weight_bytes: raw.weight_bytes,
        };
        let traffic = cost.bytes_read + cost.bytes_written;
        let intensity = if traffic == 0 { 0.0 } else { cost.flops as f64 / traffic as f64 };
        let element = m.op(op).results().first().and_then(|r| m.value_type(*r).element()).map_or("f32", |e| e.name());
        let bound = if cost.flops == 0 && traffic == 0 {
            "none"
        } else if intensity >= target.ridge_point(element) {
            "compute"
        } else {
            "memory"
        };
        let mut work = crate::work::work_of(m, op);
        (work.flops, work.bytes) = (cost.flops, traffic);
        let predicted_us = if bound == "none" { 0.0 } else { roofline.estimate(m.op(op).name(), &work).seconds * 1e6 };
        predicted += predicted_us;
        let mut par = parallelism(m, op);
        par.batch = scale(par.batch);
        flops += cost.flops;
        mm += cost.flops_conv_matmul;
        if !from_module(&m.op(op).loc, MULTIHEAD_ATTENTION) {
            mm_torch += cost.flops_conv_matmul;
        }
        read += cost.bytes_read;
        written += cost.bytes_written;
        weights += cost.weight_bytes;
        *op_counts.entry(m.op(op).name()).or_default() += 1;
        per_op.push(OpReport {
            index,
            op: m.op(op).name(),
            name: op_label(m, op),
            params: per_op_params[&op],
            arithmetic_intensity: intensity,
            parallelism: par,
            stage: stage_of[index],
            bound,
            predicted_us,
            cost,
        });
    }
    let total = read + written;
    Characterization {
        target: target.name.clone(),
        ridge_point: target.ridge_point("f32"),
        batch,
        ops: ops.len(),
        op_counts,
        flops_total: flops,
        flops_conv_matmul: mm,
        flops_conv_matmul_torch_counter: mm_torch,
        params: per_op_params.values().sum(),
        bytes_read: read,
        bytes_written: written,
        bytes_total: total,
        weight_bytes: weights,
        arithmetic_intensity: if total == 0 { 0.0 } else { flops as f64 / total as f64 },
        predicted_ms: predicted / 1e3,
        concurrency: Concurrency {
            stages,
            critical_path: stages,
            max_parallel: stage_widths.iter().copied().max().unwrap_or(0),
            stage_widths,
        },
        per_op,
    }
}

/// `characterize`: annotates every executed op with `smelt.flops` and `smelt.bytes` (discardable
/// attributes), so costs show up in printed IR and snapshots.
#[derive(Default)]
pub struct Characterize;

impl Pass for Characterize {
    fn name(&self) -> &'static str {
        "characterize"
    }

    fn run(&mut self, m: &mut Module) -> Result<(), Diagnostic> {
        for op in executed_ops(m) {
            let c = op_cost(m, op);
            let attrs = &mut m.op_mut(op).attributes;
            attrs.insert("smelt.flops".into(), Attribute::Int(c.flops as i64, ElementType::I64));
            attrs.insert(
                "smelt.bytes".into(),
                Attribute::Int((c.bytes_read + c.bytes_written) as i64, ElementType::I64),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smelt_compiler::parser::parse_module;

    /// The ops of `source`'s function, in order, with the module.
    fn ops(source: &str) -> (Module, Vec<OpId>) {
        let m = parse_module(source, "test.mlir").unwrap();
        let ops = executed_ops(&m);
        (m, ops)
    }

    /// An embedding lookup reads the rows it gathers, not the table: 3 rows of 8 floats from a
    /// 1000-row table, plus the 3 indices.
    #[test]
    fn a_gather_reads_only_the_gathered_rows_of_its_table() {
        let (m, ops) = ops(r#"
func.func @lookup(%x: tensor<1000x8xf32>, %i: tensor<3xi64>) -> (tensor<3x8xf32>, tensor<3x8xf32>) {
  %g = "smelt.gather"(%x, %i) {axis = 0 : i64} : (tensor<1000x8xf32>, tensor<3xi64>) -> tensor<3x8xf32>
  %k = "smelt.kernel"(%x, %i) ({
  ^bb0(%t: tensor<1000x8xf32>, %j: tensor<3xi64>):
    %r = "smelt.gather"(%t, %j) {axis = 0 : i64} : (tensor<1000x8xf32>, tensor<3xi64>) -> tensor<3x8xf32>
    "smelt.yield"(%r) : (tensor<3x8xf32>) -> ()
  }) : (tensor<1000x8xf32>, tensor<3xi64>) -> tensor<3x8xf32>
  %n = "smelt.neg"(%x) : (tensor<1000x8xf32>) -> tensor<1000x8xf32>
  return %g, %k : tensor<3x8xf32>, tensor<3x8xf32>
}
"#);
        let read = |name: &str| {
            let op = ops.iter().copied().find(|&o| m.op(o).name() == name).unwrap();
            op_cost(&m, op).bytes_read
        };
        assert_eq!(read(names::GATHER), 3 * 8 * 4 + 3 * 8);
        assert_eq!(read(names::KERNEL), 3 * 8 * 4 + 3 * 8);
        assert_eq!(read(names::NEG), 1000 * 8 * 4, "any other reader reads the whole table");
    }
}
