//! Cost models: how long a kernel takes on a target. One trait; the roofline model here is the
//! fallback every calibrated model (measured latencies) refines.
//!
//! A kernel's `Work` is what it computes and moves: FLOPs, the bytes it reads and writes at its
//! boundary, and the bytes of intermediates that a fused kernel keeps inside. Intermediates cost
//! nothing while they fit on chip, and full traffic once they do not.

use crate::characterize::op_cost;
use crate::fusion::kernels::{role, Role};
use smelt_compiler::ir::{Module, OpId, ValueId};
use smelt_compiler::names;
use smelt_compiler::profile::Profile;
use smelt_compiler::target::Target;
use smelt_compiler::{Attribute, ElementType};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Mutex;

#[derive(Clone, Debug, PartialEq)]
pub struct Work {
    pub flops: u64,
    /// Bytes read and written at the kernel's boundary.
    pub bytes: u64,
    /// Bytes of values produced and consumed inside a fused kernel.
    pub intermediate_bytes: u64,
    pub element: ElementType,
    /// The stable key measurements of this kernel are stored under: pattern, input and output
    /// shapes, element type (`conv_relu(1x64x56x56,64x64x3x3,64)->1x64x56x56:f32`).
    pub signature: String,
    /// For a fused kernel, each body op as it would run alone (op name, work): what the
    /// unfused alternative costs, which calibrated speedups scale.
    pub parts: Vec<(String, Work)>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Estimate {
    pub seconds: f64,
    pub flops: u64,
    /// Off-chip traffic the estimate charged.
    pub bytes: u64,
}

pub trait CostModel {
    fn name(&self) -> &str;
    /// The cost of one kernel of `pattern` (`conv_bn_relu`, or the op name when unfused).
    fn estimate(&self, pattern: &str, work: &Work) -> Estimate;
    /// What the estimates so far rested on that a user should know (fallbacks).
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
}

/// `max(FLOPs / peak, bytes / bandwidth) + launch overhead`, with intermediates charged as
/// traffic only when they exceed the on-chip capacity.
pub struct Roofline {
    pub target: Target,
}

impl CostModel for Roofline {
    fn name(&self) -> &str {
        "roofline"
    }

    fn estimate(&self, _pattern: &str, work: &Work) -> Estimate {
        let spill = if work.intermediate_bytes > self.target.on_chip_bytes { 2 * work.intermediate_bytes } else { 0 };
        let bytes = work.bytes + spill;
        let compute = work.flops as f64 / self.target.peak_flops(work.element.name());
        let memory = bytes as f64 / self.target.bandwidth();
        Estimate { seconds: compute.max(memory) + self.target.launch_overhead_us * 1e-6, flops: work.flops, bytes }
    }
}

/// The work of one executed op; a `smelt.kernel` is the work of its body.
pub fn work_of(m: &Module, op: OpId) -> Work {
    if m.op(op).name() == names::KERNEL {
        let body = m.region(m.op(op).regions()[0]).blocks()[0];
        let ops: Vec<OpId> = m.block_ops(body).filter(|&o| m.op(o).name() != names::YIELD).collect();
        let pattern = m.op(op).attr("pattern").and_then(|a| a.as_str()).unwrap_or("kernel").to_string();
        return kernel_work(m, &pattern, &ops, m.block(body).args(), m.op(op).results());
    }
    let c = op_cost(m, op);
    let o = m.op(op);
    let pattern = o.name().trim_start_matches("smelt.");
    let mut work = Work {
        flops: c.flops,
        bytes: c.bytes_read + c.bytes_written,
        intermediate_bytes: 0,
        element: element_of(m, o.results()),
        signature: signature(m, pattern, o.operands(), o.results()),
        parts: Vec::new(),
    };
    if o.name() == names::ATTENTION {
        attention_parts(m, op, &mut work);
    }
    work
}

/// `attention` is a fused kernel in one op: its parts are the ops it stands for, and its
/// scores (and probabilities) are intermediates.
fn attention_parts(m: &Module, op: OpId, work: &mut Work) {
    let o = m.op(op);
    let dims = |v: ValueId| m.value_type(v).as_tensor().and_then(|t| t.static_shape()).unwrap_or_default();
    let (q, k, v, out) = (dims(o.operands()[0]), dims(o.operands()[1]), dims(o.operands()[2]), dims(o.result()));
    let (Some(&lk), Some(&d), Some(&dv)) = (k.last(), q.last(), v.last()) else { return };
    let size = |s: &[u64]| s.iter().product::<u64>();
    let width = work.element.byte_size() as u64;
    let scores = size(&out).checked_div(dv).map_or(0, |s| s * lk);
    let part = |pattern: &str, flops: u64, bytes: u64| {
        let w =
            Work { flops, bytes, intermediate_bytes: 0, signature: String::new(), parts: Vec::new(), ..work.clone() };
        (format!("smelt.{pattern}"), w)
    };
    let (sb, qkb) = (scores * width, (size(&q) + size(&k)) * width);
    let mut parts = vec![part("matmul", 2 * scores * d, qkb + sb), part("mul", scores, 2 * sb)];
    if o.operands().len() > 3 {
        let mask = size(&dims(o.operands()[3])) * width;
        parts.push(part("add", scores, 2 * sb + mask));
    }
    parts.push(part("softmax", 5 * scores, 2 * sb));
    parts.push(part("matmul", 2 * size(&out) * lk, sb + (size(&v) + size(&out)) * width));
    work.intermediate_bytes = (parts.len() as u64 - 1) * sb;
    work.parts = parts;
}

/// The work of `ops` run as one kernel reading `inputs` and producing `outputs`: the body's
/// FLOPs, its boundary bytes, and the bytes of every other value it computes as intermediates.
pub fn kernel_work(m: &Module, pattern: &str, ops: &[OpId], inputs: &[ValueId], outputs: &[ValueId]) -> Work {
    let bytes = |v: &ValueId| m.value_type(*v).as_tensor().and_then(|t| t.byte_size()).unwrap_or(0);
    let mut seen = HashSet::new();
    let boundary: u64 =
        inputs.iter().filter(|v| seen.insert(**v)).map(bytes).sum::<u64>() + outputs.iter().map(bytes).sum::<u64>();
    let inner = ops.iter().flat_map(|&o| m.op(o).results()).filter(|r| !outputs.contains(r)).map(bytes).sum();
    let parts: Vec<(String, Work)> = ops.iter().map(|&o| (m.op(o).name().to_string(), work_of(m, o))).collect();
    // A pure elementwise kernel evaluates its whole body once per output element, so a part
    // computed on a smaller shape and broadcast is recomputed that many more times.
    let elements = |v: ValueId| m.value_type(v).as_tensor().and_then(|t| t.num_elements()).unwrap_or(1).max(1);
    let pure_elementwise = ops.iter().all(|&o| role(m.op(o).name()) == Role::Elementwise);
    let out_elements = outputs.first().map_or(1, |&v| elements(v));
    let recomputed = |op: OpId, flops: u64| match (pure_elementwise, m.op(op).results().first()) {
        (true, Some(&r)) => flops * (out_elements / elements(r)).max(1),
        _ => flops,
    };
    Work {
        flops: ops.iter().zip(&parts).map(|(&o, (_, w))| recomputed(o, w.flops)).sum(),
        bytes: boundary,
        intermediate_bytes: inner,
        element: element_of(m, outputs),
        signature: signature(m, pattern, inputs, outputs),
        parts,
    }
}

fn element_of(m: &Module, results: &[ValueId]) -> ElementType {
    results.first().and_then(|r| m.value_type(*r).element()).unwrap_or(ElementType::F32)
}

/// The constant defining `v` when a kernel copies it into its body instead of taking it as an
/// operand (splats and scalars: cheaper to rematerialize than to pass).
pub fn inlined_constant(m: &Module, v: ValueId) -> Option<OpId> {
    m.defining_op(v).filter(|&d| {
        m.op(d).name() == names::CONSTANT
            && matches!(m.op(d).attr("value"), Some(Attribute::Dense(d)) if d.is_splat() || d.ty.num_elements() == Some(1))
    })
}

/// Inputs a kernel inlines are left out, so the signature the extractor prices a candidate
/// under is the one the built kernel is measured under.
fn signature(m: &Module, pattern: &str, inputs: &[ValueId], outputs: &[ValueId]) -> String {
    let inputs: Vec<ValueId> = inputs.iter().copied().filter(|&v| inlined_constant(m, v).is_none()).collect();
    let shape = |v: &ValueId| match m.value_type(*v).as_tensor().and_then(|t| t.static_shape()) {
        Some(s) => s.iter().map(u64::to_string).collect::<Vec<_>>().join("x"),
        None => "?".into(),
    };
    let ins: Vec<String> = inputs.iter().map(shape).collect();
    let outs: Vec<String> = outputs.iter().map(shape).collect();
    format!("{pattern}({})->{}:{}", ins.join(","), outs.join(","), element_of(m, outputs))
}

/// The cost model for `target`, calibrated by `profile` when one is given.
pub fn model(target: Target, profile: Option<&str>) -> Result<Box<dyn CostModel>, String> {
    let roofline = Roofline { target };
    Ok(match profile {
        None => Box::new(roofline),
        Some(path) => Box::new(Calibrated::new(roofline, Profile::load(std::path::Path::new(path))?)),
    })
}

/// Measurements first, the roofline where nothing was measured:
/// 1. a kernel record with the exact signature: its measured median;
/// 2. a fusion profile of the pattern: the unfused parts' estimates times the measured
///    fused/unfused ratio (interpolated in log FLOPs between measured sizes); without one, but
///    with measured parts, the parts' estimates less the saving the roofline predicts;
/// 3. operation profiles of the op: the roofline times the measured/roofline ratio, likewise
///    interpolated;
/// 4. the roofline, with a note (`notes`) saying nothing was measured for the pattern.
pub struct Calibrated {
    pub roofline: Roofline,
    pub profile: Profile,
    records: HashMap<String, f64>,
    notes: Mutex<BTreeSet<String>>,
}

impl Calibrated {
    pub fn new(roofline: Roofline, profile: Profile) -> Calibrated {
        let records = profile
            .kernel_records
            .iter()
            .filter(|r| r.measured_us > 0.0)
            .map(|r| (r.signature.clone(), r.measured_us * 1e-6))
            .collect();
        Calibrated { roofline, profile, records, notes: Mutex::new(BTreeSet::new()) }
    }

    fn roofline_seconds(&self, flops: u64, bytes: u64, element: ElementType) -> f64 {
        let w = Work { flops, bytes, intermediate_bytes: 0, element, signature: String::new(), parts: Vec::new() };
        self.roofline.estimate("", &w).seconds
    }
}

/// How much worse a kernel assembled from measured parts is assumed to be than the arithmetic
/// says: such an estimate must beat a measured alternative by more than measurement noise
/// before the extractor prefers it, so `smelt tune` does not chase ties between equivalent
/// kernels (BatchNorm folded or kept as an epilogue) round after round. 10%: at 3% MobileNet-V2's
/// rounds kept trying such variants and ended slower than the roofline's choice.
pub const UNMEASURED_MARGIN: f64 = 0.10;

/// Ops whose work a fused kernel still does in full: fusion saves only the traffic around them.
const CONTRACTIONS: &[&str] = &["conv2d", "matmul", "gemm", "attention"];

/// Linear interpolation of `points` (size, value) in log size, clamped at the ends.
fn interpolate(points: &mut [(f64, f64)], at: f64) -> Option<f64> {
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    let x = at.max(1.0).ln();
    let first = points.first()?;
    if points.len() == 1 || x <= first.0.max(1.0).ln() {
        return Some(first.1);
    }
    for w in points.windows(2) {
        let (x0, x1) = (w[0].0.max(1.0).ln(), w[1].0.max(1.0).ln());
        if x <= x1 {
            let t = if x1 > x0 { (x - x0) / (x1 - x0) } else { 0.0 };
            return Some(w[0].1 + t * (w[1].1 - w[0].1));
        }
    }
    points.last().map(|p| p.1)
}

impl CostModel for Calibrated {
    fn name(&self) -> &str {
        "calibrated"
    }

    fn notes(&self) -> Vec<String> {
        let missing = self.notes.lock().map(|n| n.iter().cloned().collect::<Vec<_>>()).unwrap_or_default();
        if missing.is_empty() {
            return Vec::new();
        }
        vec![format!(
            "nothing measured for {}; the {} roofline estimated them",
            missing.join(", "),
            self.roofline.target.name
        )]
    }

    fn estimate(&self, pattern: &str, work: &Work) -> Estimate {
        let estimate = |seconds| Estimate { seconds, flops: work.flops, bytes: work.bytes };
        if let Some(&s) = self.records.get(&work.signature) {
            return estimate(s);
        }
        let pattern = pattern.trim_start_matches("smelt.");
        let mut fused: Vec<(f64, f64)> = self
            .profile
            .fusion_profiles
            .iter()
            .filter(|f| f.fusion_pattern.eq_ignore_ascii_case(pattern))
            .filter_map(|f| Some((f.flops.unwrap_or(work.flops) as f64, f.fused_ratio()?)))
            .collect();
        if !work.parts.is_empty() {
            let unfused = || work.parts.iter().map(|(p, w)| self.estimate(p, w).seconds).sum::<f64>();
            if let Some(ratio) = interpolate(&mut fused, work.flops as f64) {
                return estimate(unfused() * ratio);
            }
            // No measured ratio for the pattern, but measured parts: the parts' times less the
            // time the roofline says fusing them saves (the intermediates' traffic and launches).
            // Absolute, not proportional: a slow measured product must not earn a larger saving
            // for absorbing the same ReLU. The saving comes out of the absorbed ops' measured
            // time only; the products' work stays.
            if work.parts.iter().any(|(_, w)| self.records.contains_key(&w.signature)) {
                let roof_parts: f64 = work.parts.iter().map(|(p, w)| self.roofline.estimate(p, w).seconds).sum();
                let saving = (roof_parts - self.roofline.estimate(pattern, work).seconds).max(0.0);
                let absorbed: f64 = work
                    .parts
                    .iter()
                    .filter(|(p, _)| !CONTRACTIONS.contains(&p.trim_start_matches("smelt.")))
                    .map(|(p, w)| self.estimate(p, w).seconds)
                    .sum();
                return estimate((unfused() - saving.min(absorbed)) * (1.0 + UNMEASURED_MARGIN));
            }
        }
        let mut ops: Vec<(f64, f64)> = self
            .profile
            .operation_profiles
            .iter()
            .filter(|o| o.op == pattern && o.latency_ms > 0.0)
            .map(|o| {
                let roof = self.roofline_seconds(o.flops, o.bytes, work.element);
                let size = if o.flops > 0 { o.flops } else { o.bytes };
                (size as f64, if roof > 0.0 { o.latency_ms * 1e-3 / roof } else { 1.0 })
            })
            .collect();
        let roof = self.roofline.estimate(pattern, work);
        let size = if work.flops > 0 { work.flops } else { work.bytes };
        match interpolate(&mut ops, size as f64) {
            Some(ratio) => Estimate { seconds: roof.seconds * ratio, ..roof },
            None => {
                if let Ok(mut n) = self.notes.lock() {
                    n.insert(pattern.to_string());
                }
                roof
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn work(bytes: u64) -> Work {
        Work {
            flops: 0,
            bytes,
            intermediate_bytes: 0,
            element: ElementType::F32,
            signature: String::new(),
            parts: Vec::new(),
        }
    }

    fn host() -> Roofline {
        Roofline { target: Target::load("host").unwrap() }
    }

    #[test]
    fn compute_bound_work_runs_at_peak() {
        let r = host();
        let w = Work { flops: 186_000_000_000, ..work(0) };
        let e = r.estimate("matmul", &w);
        assert!((e.seconds - 1.0).abs() < 1e-3, "{}", e.seconds);
    }

    #[test]
    fn memory_bound_work_runs_at_bandwidth_and_spills_past_the_cache() {
        let r = host();
        let fits = Work { intermediate_bytes: 1 << 20, ..work(20_000_000_000) };
        assert!((r.estimate("relu", &fits).seconds - 1.0).abs() < 1e-3);
        let spills = Work { intermediate_bytes: 1 << 30, ..fits.clone() };
        assert!(r.estimate("relu", &spills).seconds > r.estimate("relu", &fits).seconds);
    }

    fn calibrated(json: &str) -> Calibrated {
        Calibrated::new(host(), Profile::parse(json, "test.json").unwrap())
    }

    fn fused(parts: Vec<(String, Work)>, signature: &str) -> Work {
        let flops = parts.iter().map(|(_, w)| w.flops).sum();
        Work { flops, bytes: 1 << 20, signature: signature.into(), parts, ..work(0) }
    }

    #[test]
    fn an_exact_kernel_record_wins() {
        let c = calibrated(r#"{"kernel_records": [{"signature": "relu(4)->4:f32", "measured_us": 7.5}]}"#);
        let w = Work { signature: "relu(4)->4:f32".into(), ..work(16) };
        assert!((c.estimate("relu", &w).seconds - 7.5e-6).abs() < 1e-15);
        assert!(c.notes().is_empty());
    }

    #[test]
    fn a_fusion_profile_scales_the_unfused_parts_by_the_measured_ratio() {
        let c = calibrated(r#"{"fusion_profiles": [{"fusion_pattern": "conv_relu", "speedup_factor": 2.0}]}"#);
        let parts = vec![
            (names::CONV2D.to_string(), Work { flops: 1_000_000_000, ..work(1 << 20) }),
            (names::RELU.to_string(), work(1 << 22)),
        ];
        let unfused: f64 = parts.iter().map(|(p, w)| c.roofline.estimate(p, w).seconds).sum();
        let estimate = c.estimate("conv_relu", &fused(parts, "")).seconds;
        assert!((estimate - unfused / 2.0).abs() < 1e-12 * unfused, "{estimate} vs {unfused}");
    }

    #[test]
    fn measured_sizes_are_interpolated_in_log_flops() {
        let c = calibrated(
            r#"{"fusion_profiles": [
                {"fusion_pattern": "p", "unfused_latency_ms": 1.0, "fused_latency_ms": 0.5, "flops": 1000},
                {"fusion_pattern": "p", "unfused_latency_ms": 1.0, "fused_latency_ms": 1.0, "flops": 100000}]}"#,
        );
        let part = |flops| vec![(names::RELU.to_string(), Work { flops, ..work(1 << 20) })];
        let ratio = |flops| {
            let w = fused(part(flops), "");
            c.estimate("p", &w).seconds / c.roofline.estimate(names::RELU, &w.parts[0].1).seconds
        };
        assert!((ratio(1000) - 0.5).abs() < 1e-9);
        assert!((ratio(10_000) - 0.75).abs() < 1e-9, "{}", ratio(10_000));
        assert!((ratio(10) - 0.5).abs() < 1e-9 && (ratio(10_000_000) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn an_unmeasured_kernel_of_measured_parts_saves_what_the_roofline_saves() {
        let c = calibrated(
            r#"{"kernel_records": [{"signature": "conv2d(a)->b:f32", "measured_us": 300.0},
                                    {"signature": "relu(b)->b:f32", "measured_us": 150.0}]}"#,
        );
        let conv = Work { flops: 1_000_000_000, signature: "conv2d(a)->b:f32".into(), ..work(1 << 20) };
        let relu = Work { signature: "relu(b)->b:f32".into(), ..work(1 << 21) };
        let parts = vec![("conv2d".to_string(), conv), ("relu".to_string(), relu)];
        let kernel = fused(parts.clone(), "conv_relu(a)->b:f32");
        let roof_parts: f64 = parts.iter().map(|(p, w)| c.roofline.estimate(p, w).seconds).sum();
        let saving = roof_parts - c.roofline.estimate("conv_relu", &kernel).seconds;
        assert!(saving > 0.0, "fusing saves the relu's traffic");
        let expected = (450e-6 - saving) * (1.0 + UNMEASURED_MARGIN);
        assert!((c.estimate("conv_relu", &kernel).seconds - expected).abs() < 1e-12);
        // The product's measured time stays whatever the roofline says fusion saves.
        let c = calibrated(
            r#"{"kernel_records": [{"signature": "conv2d(a)->b:f32", "measured_us": 300.0},
                                    {"signature": "relu(b)->b:f32", "measured_us": 1.0}]}"#,
        );
        assert!((c.estimate("conv_relu", &kernel).seconds - 300e-6 * (1.0 + UNMEASURED_MARGIN)).abs() < 1e-12);
    }

    #[test]
    fn unmeasured_patterns_fall_back_to_the_roofline_with_a_note() {
        let c = calibrated("{}");
        let w = work(1 << 20);
        assert_eq!(c.estimate("relu", &w), c.roofline.estimate("relu", &w));
        assert_eq!(c.notes(), vec!["nothing measured for relu; the host roofline estimated them".to_string()]);
    }

    #[test]
    fn operation_profiles_rescale_the_roofline() {
        let c = calibrated(r#"{"operation_profiles": [{"op": "relu", "bytes": 1048576, "latency_ms": 1.0}]}"#);
        let measured = c.estimate("relu", &work(1 << 20)).seconds;
        assert!((measured - 1e-3).abs() < 1e-9, "{measured}");
    }
}
