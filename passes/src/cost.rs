//! Cost models: how long a kernel takes on a target. One trait; the roofline model here is the
//! fallback every calibrated model (measured latencies) refines.
//!
//! A kernel's `Work` is what it computes and moves: FLOPs, the bytes it reads and writes at its
//! boundary, and the bytes of intermediates that a fused kernel keeps inside. Intermediates cost
//! nothing while they fit on chip, and full traffic once they do not.

use crate::work::Work;
use smelt_compiler::ElementType;
use smelt_hardware::profile::Profile;
use smelt_hardware::target::Target;
use smelt_hardware::HardwareError;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug, PartialEq)]
pub struct Estimate {
    pub seconds: f64,
    pub flops: u64,
    /// Off-chip traffic the estimate charged.
    pub bytes: u64,
}

/// Shared by every pass and thread that prices kernels (`Fuse` holds one).
pub trait CostModel: Send + Sync {
    fn name(&self) -> &str;
    /// The cost of one kernel of `pattern` (`conv_bn_relu`, or the op name when unfused).
    fn estimate(&self, pattern: &str, work: &Work) -> Estimate;
    /// What the extractor weighs a kernel at: its estimate, unless a decision measured in
    /// context says otherwise.
    fn choice_seconds(&self, pattern: &str, work: &Work) -> f64 {
        self.estimate(pattern, work).seconds
    }
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

/// The cost model for `target`, calibrated by `profile` when one is given.
pub fn model(target: Target, profile: Option<&str>) -> Result<Arc<dyn CostModel>, HardwareError> {
    let roofline = Roofline { target };
    Ok(match profile {
        None => Arc::new(roofline),
        Some(path) => {
            let profile = Profile::load(std::path::Path::new(path))?;
            profile.check_prices(&roofline.target.name, path)?;
            Arc::new(Calibrated::new(roofline, profile))
        }
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
///
/// Where the profile holds fusion decisions `smelt tune` measured in context, they choose
/// ([`CostModel::choice_seconds`]): the kernels a flip chose win, the fused ones it chose against
/// cannot be chosen, and everywhere else the roofline chooses, so a tuned program is
/// the roofline's with the measured flips and nothing that was not measured in place. The
/// estimates stay the measured ones. A profile without decisions (`smelt calibrate`) chooses
/// by its measured prices.
pub struct Calibrated {
    pub roofline: Roofline,
    pub profile: Profile,
    records: HashMap<String, f64>,
    /// Measured fused kernels: their parts' signatures (sorted) and time.
    measured_kernels: Vec<(Vec<String>, f64)>,
    /// The profile holds `smelt tune`'s decisions for this target: they choose.
    decided: bool,
    /// Kernels and unfused ops a flip chose.
    pinned: BTreeSet<String>,
    /// Fused kernels a flip chose against.
    refused: BTreeSet<String>,
    notes: Mutex<BTreeSet<String>>,
}

impl Calibrated {
    pub fn new(roofline: Roofline, profile: Profile) -> Calibrated {
        let records = profile
            .kernel_records
            .iter()
            .filter(|r| r.measured_us > 0.0 && (r.target.is_empty() || r.target == roofline.target.name))
            .map(|r| (r.signature.clone(), r.measured_us * 1e-6))
            .collect();
        let measured_kernels = profile
            .kernel_records
            .iter()
            .filter(|r| r.measured_us > 0.0 && r.parts.len() > 1)
            .filter(|r| r.target.is_empty() || r.target == roofline.target.name)
            .map(|r| {
                let mut parts = r.parts.clone();
                parts.sort();
                (parts, r.measured_us * 1e-6)
            })
            .collect();
        let decisions: Vec<_> = profile
            .fusion_decisions
            .iter()
            .filter(|d| d.target.is_empty() || d.target == roofline.target.name)
            .collect();
        let fused = |ks: &[smelt_hardware::profile::DecidedKernel]| {
            ks.iter().filter(|k| k.fused).map(|k| k.signature.clone()).collect::<Vec<_>>()
        };
        // Elsewhere the roofline chooses anyway: only flips need pinning, ops left unfused
        // included (a flip may be to split a kernel).
        let pinned: BTreeSet<String> =
            decisions.iter().filter(|d| d.flipped).flat_map(|d| d.tuned.iter().map(|k| k.signature.clone())).collect();
        // A decision kept the roofline's kernels: the roofline chooses them anyway, and
        // refusing the tuned ones could refuse a kernel the roofline chose somewhere else.
        let refused = decisions
            .iter()
            .filter(|d| d.flipped)
            .flat_map(|d| fused(&d.roofline))
            .filter(|s| !pinned.contains(s))
            .collect();
        let decided = !decisions.is_empty();
        Calibrated {
            roofline,
            profile,
            records,
            measured_kernels,
            decided,
            pinned,
            refused,
            notes: Mutex::new(BTreeSet::new()),
        }
    }

    /// The same measurements, choosing by them alone: what `smelt tune` explores with before
    /// it decides.
    pub fn exploring(roofline: Roofline, mut profile: Profile) -> Calibrated {
        profile.fusion_decisions.clear();
        Calibrated::new(roofline, profile)
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
        self.measured(pattern, work)
    }

    /// See the type's documentation: decisions, then the roofline, where there are decisions.
    fn choice_seconds(&self, pattern: &str, work: &Work) -> f64 {
        if !self.decided {
            return self.measured(pattern, work).seconds;
        }
        if self.pinned.contains(&work.signature) {
            return 0.0;
        }
        // Unfused ops are never refused: something must compute every value.
        if !work.parts.is_empty() && self.refused.contains(&work.signature) {
            return f64::INFINITY;
        }
        self.roofline.estimate(pattern, work).seconds
    }
}

impl Calibrated {
    /// The longest measured fused kernel whose parts are a strict subset of `work`'s.
    fn measured_subset(&self, work: &Work) -> f64 {
        let mut parts: Vec<&str> = work.parts.iter().map(|(_, w)| w.signature.as_str()).collect();
        parts.sort();
        let contains = |subset: &[String]| {
            let mut rest = parts.iter();
            subset.iter().all(|s| rest.any(|p| p == s))
        };
        self.measured_kernels
            .iter()
            .filter(|(sub, _)| sub.len() < parts.len() && contains(sub))
            .map(|(_, t)| *t)
            .fold(0.0, f64::max)
    }

    /// The estimate from measurements alone (steps 1 to 4), before decisions.
    fn measured(&self, pattern: &str, work: &Work) -> Estimate {
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
                // A kernel that does all a measured kernel does and more (a BatchNorm kept as
                // an epilogue where the measured kernel had it folded) takes at least as long:
                // its parts were measured alone, in another program, the measured kernel in
                // place, and the two are not comparable otherwise.
                let composed = unfused() - saving.min(absorbed);
                return estimate(composed.max(self.measured_subset(work)) * (1.0 + UNMEASURED_MARGIN));
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
    use smelt_compiler::names;

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

    #[test]
    fn decisions_choose_the_kernels_they_measured_faster_and_the_roofline_the_rest() {
        let records = r#"{"signature": "conv2d(a)->b:f32", "measured_us": 300.0},
                         {"signature": "relu(b)->b:f32", "measured_us": 10.0},
                         {"signature": "conv_relu(a)->b:f32", "measured_us": 330.0},
                         {"signature": "relu_add(b)->b:f32", "measured_us": 5.0}"#;
        let decision = |flipped: bool| {
            format!(
                r#"{{"kernel_records": [{records}], "fusion_decisions": [
                    {{"target": "host", "flipped": {flipped},
                      "roofline": [{{"pattern": "conv_relu", "signature": "conv_relu(a)->b:f32", "fused": true}}],
                      "tuned": [{{"pattern": "conv2d", "signature": "conv2d(a)->b:f32", "fused": false}},
                                {{"pattern": "relu_add", "signature": "relu_add(b)->b:f32", "fused": true}}]}}]}}"#
            )
        };
        let conv = Work { flops: 1_000_000_000, signature: "conv2d(a)->b:f32".into(), ..work(1 << 20) };
        let relu = Work { signature: "relu(b)->b:f32".into(), ..work(1 << 21) };
        let kernel = fused(vec![("conv2d".into(), conv.clone()), ("relu".into(), relu.clone())], "conv_relu(a)->b:f32");
        let other = fused(vec![("relu".into(), relu)], "relu_add(b)->b:f32");

        let kept = calibrated(&decision(false));
        // Measured slower than its parts (330 against 310), but the roofline's choice: the
        // roofline weighs both sides, and chooses as it did.
        assert_eq!(kept.choice_seconds("conv_relu", &kernel), kept.roofline.estimate("conv_relu", &kernel).seconds);
        assert_eq!(kept.choice_seconds("relu_add", &other), kept.roofline.estimate("relu_add", &other).seconds);
        // Unfused ops are never refused, and undecided ones are weighed by the roofline.
        assert_eq!(kept.choice_seconds("conv2d", &conv), kept.roofline.estimate("conv2d", &conv).seconds);
        // What kernels are predicted to take stays what was measured.
        assert!((kept.estimate("conv_relu", &kernel).seconds - 330e-6).abs() < 1e-12);
        assert!((kept.estimate("relu_add", &other).seconds - 5e-6).abs() < 1e-12);

        let flipped = calibrated(&decision(true));
        assert!(flipped.choice_seconds("conv_relu", &kernel).is_infinite());
        assert_eq!(flipped.choice_seconds("relu_add", &other), 0.0);
        assert_eq!(flipped.choice_seconds("conv2d", &conv), 0.0);

        // Exploring ignores the decisions: measured prices choose.
        let exploring = Calibrated::exploring(host(), Profile::parse(&decision(false), "t.json").unwrap());
        assert!((exploring.choice_seconds("conv_relu", &kernel) - 330e-6).abs() < 1e-12);
    }

    #[test]
    fn a_kernel_that_does_more_than_a_measured_one_is_not_priced_below_it() {
        // conv_relu measured in place at 500 us; its parts alone, in the unfused program, 300
        // and 10. The same kernel with an unfolded BatchNorm must not look cheaper.
        let c = calibrated(
            r#"{"kernel_records": [{"signature": "conv2d(a)->b:f32", "measured_us": 300.0},
                                    {"signature": "relu(b)->b:f32", "measured_us": 10.0},
                                    {"signature": "batch_norm(b)->b:f32", "measured_us": 10.0},
                                    {"signature": "conv_relu(a)->b:f32", "measured_us": 500.0,
                                     "parts": ["conv2d(a)->b:f32", "relu(b)->b:f32"]}]}"#,
        );
        let part = |op: &str, flops| {
            (
                op.to_string(),
                Work {
                    flops,
                    signature: format!("{op}({})->b:f32", if op == "conv2d" { "a" } else { "b" }),
                    ..work(1 << 20)
                },
            )
        };
        let parts = vec![part("conv2d", 1_000_000_000), part("batch_norm", 0), part("relu", 0)];
        let unfolded = fused(parts, "conv_bn_relu(a)->b:f32");
        let price = c.estimate("conv_bn_relu", &unfolded).seconds;
        assert!((price - 500e-6 * (1.0 + UNMEASURED_MARGIN)).abs() < 1e-12, "{price}");
    }
}
