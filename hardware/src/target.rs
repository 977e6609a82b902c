//! Hardware target descriptions: data files (`hardware/targets/*.toml`, shipped inside the
//! binary) or any TOML file of the same shape given by path.
//!
//! The top-level fields are what every cost model needs (peaks, bandwidth, launch overhead,
//! energy). The kind-specific section (`[gpu]`, `[tpu]`, `[kpu]`, `[cpu]`) is what a launch
//! plan maps kernels onto; `[efficiency]` holds the fractions of peak that real kernels reach,
//! nominal in the shipped files unless a comment names the measurement they were fitted to.

use crate::HardwareError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    Cpu,
    Gpu,
    Tpu,
    Kpu,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub name: String,
    pub description: String,
    pub kind: TargetKind,
    /// Cores, SMs, MXUs or tiles.
    pub compute_units: u32,
    pub clock_ghz: f64,
    /// Peak dense throughput per math type (`f32`, `tf32`, `bf16`, ...) of the matrix units
    /// (tensor cores, MXUs, PE arrays; SIMD FMA on a CPU), in TFLOP/s.
    pub peak_tflops: BTreeMap<String, f64>,
    /// Peak of the vector (non-matrix) units per element type, in TFLOP/s: what elementwise
    /// work, reductions and depthwise convolutions run on. Missing types fall back to
    /// `peak_tflops`.
    #[serde(default)]
    pub vector_tflops: BTreeMap<String, f64>,
    pub memory_bandwidth_gbs: f64,
    /// Fixed cost of launching one kernel from the host, one after another.
    pub launch_overhead_us: f64,
    /// Bytes that stay on chip (last-level cache, shared memory, scratchpads).
    pub on_chip_bytes: u64,
    pub energy_pj_per_flop: f64,
    pub energy_pj_per_byte: f64,
    /// Power drawn while the chip is on, whatever it computes.
    #[serde(default)]
    pub idle_watts: f64,
    /// Whether independent kernels may run at the same time on disjoint compute units.
    #[serde(default)]
    pub concurrent_kernels: bool,
    /// The memory hierarchy, nearest first, ending with off-chip memory.
    #[serde(default)]
    pub memory: Vec<MemoryLevel>,
    #[serde(default)]
    pub efficiency: Efficiency,
    pub gpu: Option<GpuSpec>,
    pub tpu: Option<TpuSpec>,
    pub kpu: Option<KpuSpec>,
    pub cpu: Option<CpuSpec>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryLevel {
    pub name: String,
    /// Capacity; per compute unit when `per_unit`.
    pub bytes: u64,
    #[serde(default)]
    pub per_unit: bool,
    /// Aggregate bandwidth over all units.
    pub bandwidth_gbs: f64,
    pub latency_ns: f64,
}

/// Fractions of peak that real kernels reach: what a roofline multiplies its ceilings by.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Efficiency {
    /// Of the matrix peak, by a well-shaped contraction (largest tiles, enough work).
    pub contraction: f64,
    /// Per math type, where measured (overrides `contraction`).
    pub contraction_by_math: BTreeMap<String, f64>,
    /// Of `contraction`, what implicit-GEMM convolutions reach (window addressing, small
    /// channel counts).
    pub convolution: f64,
    /// Of the vector peak.
    pub vector: f64,
    /// Of the off-chip bandwidth, by a large streaming kernel.
    pub bandwidth: f64,
    /// Time every kernel spends beyond its roofline (ramp-up, tail, synchronization), in
    /// microseconds; launch overhead is separate.
    pub kernel_fixed_us: f64,
}

impl Default for Efficiency {
    fn default() -> Self {
        Efficiency {
            contraction: 0.8,
            contraction_by_math: BTreeMap::new(),
            convolution: 1.0,
            vector: 0.7,
            bandwidth: 0.85,
            kernel_fixed_us: 0.0,
        }
    }
}

impl Efficiency {
    pub fn contraction(&self, math: &str) -> f64 {
        self.contraction_by_math.get(math).copied().unwrap_or(self.contraction)
    }
}

/// A GPU's streaming multiprocessors (`compute_units` of them).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuSpec {
    pub warp_size: u32,
    pub max_threads_per_sm: u32,
    pub max_ctas_per_sm: u32,
    pub registers_per_sm: u32,
    pub max_registers_per_thread: u32,
    pub shared_memory_per_sm_bytes: u64,
    /// Warps an SM needs resident to hide latency at full rate.
    pub warps_to_saturate: u32,
    /// Bandwidth one SM can pull from memory on its own: how few CTAs limit a memory-bound
    /// kernel.
    pub sm_memory_gbs: f64,
    /// Shortest time one iteration of a CTA's K loop takes however little it computes: the
    /// latency of staging the next operand slices that the pipeline stages do not hide.
    pub main_loop_step_ns: f64,
    /// Per-kernel cost inside a captured graph (CUDA Graphs), replacing `launch_overhead_us`.
    pub graph_launch_us: f64,
    /// Math that f32 convolutions and matmuls run in: `f32` (CUDA cores) or `tf32` (tensor
    /// cores, what cuDNN does for convolutions by default in PyTorch).
    pub f32_conv_math: String,
    pub f32_matmul_math: String,
}

/// A TPU chip's matrix units (`compute_units` MXUs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TpuSpec {
    /// Systolic array side (128 for 128x128 MXUs).
    pub mxu_dim: u32,
    pub tensor_cores: u32,
    /// Vector memory per TensorCore: what one fused kernel's tiles must fit in.
    pub vmem_bytes: u64,
    /// MXU passes per f32 product (bf16 multi-pass emulation: 3 for XLA's `HIGH`).
    pub f32_passes: u32,
}

/// A KPU: a grid of tiles, each a PE array with a scratchpad, fed by DMA.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KpuSpec {
    /// Side of each tile's PE array.
    pub pe_dim: u32,
    pub scratchpad_bytes: u64,
    pub dma_engines: u32,
    /// Fixed cost of one DMA transfer.
    pub dma_setup_us: f64,
}

/// A CPU's cores (`compute_units` of them).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CpuSpec {
    pub simd_bits: u32,
    pub fma_units: u32,
    pub vector_registers: u32,
}

const SHIPPED: &[(&str, &str)] = &[
    ("host", include_str!("../targets/host.toml")),
    ("i7-12700k", include_str!("../targets/i7-12700k.toml")),
    ("ryzen7", include_str!("../targets/ryzen7.toml")),
    ("h100-pcie", include_str!("../targets/h100-pcie.toml")),
    ("h100-sxm", include_str!("../targets/h100-sxm.toml")),
    ("tpu-v4", include_str!("../targets/tpu-v4.toml")),
    ("kpu-t2", include_str!("../targets/kpu-t2.toml")),
    ("kpu-t100", include_str!("../targets/kpu-t100.toml")),
];

impl TargetKind {
    pub fn name(self) -> &'static str {
        match self {
            TargetKind::Cpu => "cpu",
            TargetKind::Gpu => "gpu",
            TargetKind::Tpu => "tpu",
            TargetKind::Kpu => "kpu",
        }
    }
}

impl Target {
    /// Names of the shipped targets.
    pub fn shipped() -> impl Iterator<Item = &'static str> {
        SHIPPED.iter().map(|(n, _)| *n)
    }

    /// The shipped description of the machine Smelt runs on (`host`).
    pub fn host() -> Target {
        Self::parse(SHIPPED[0].1, SHIPPED[0].0).expect("the shipped host target parses")
    }

    /// A shipped target by name, or a TOML file by path.
    pub fn load(name_or_path: &str) -> Result<Target, HardwareError> {
        if let Some((_, text)) = SHIPPED.iter().find(|(n, _)| *n == name_or_path) {
            return Self::parse(text, name_or_path);
        }
        if name_or_path.ends_with(".toml") {
            let text = std::fs::read_to_string(name_or_path).map_err(|e| HardwareError::io(name_or_path, "read", e))?;
            return Self::parse(&text, name_or_path);
        }
        Err(HardwareError::UnknownTarget {
            name: name_or_path.to_string(),
            shipped: Self::shipped().collect::<Vec<_>>().join(", "),
        })
    }

    pub fn parse(text: &str, origin: &str) -> Result<Target, HardwareError> {
        let t: Target = toml::from_str(text).map_err(|e| HardwareError::Syntax {
            origin: origin.to_string(),
            what: "invalid target description",
            reason: e.to_string(),
        })?;
        let invalid = |reason: String| Err(HardwareError::invalid(origin, reason));
        if !t.peak_tflops.contains_key("f32") {
            return invalid("a target needs peak_tflops.f32".into());
        }
        if let Some(reason) = t.out_of_range() {
            return invalid(reason);
        }
        let e = &t.efficiency;
        let fractions = [e.contraction, e.convolution, e.vector, e.bandwidth]
            .into_iter()
            .chain(e.contraction_by_math.values().copied());
        if fractions.into_iter().any(|f| !(f > 0.0 && f <= 1.0)) {
            return invalid("[efficiency] fractions must lie in (0, 1]".into());
        }
        let section = match t.kind {
            TargetKind::Gpu => t.gpu.is_some(),
            TargetKind::Tpu => t.tpu.is_some(),
            TargetKind::Kpu => t.kpu.is_some(),
            TargetKind::Cpu => t.cpu.is_some(),
        };
        if !section {
            return invalid(format!("a {:?} target needs its [{}] section", t.kind, t.kind.name()));
        }
        if let Some(g) = &t.gpu {
            for math in [&g.f32_conv_math, &g.f32_matmul_math] {
                if !t.peak_tflops.contains_key(math.as_str()) {
                    return invalid(format!("[gpu] names math '{math}' that peak_tflops lacks"));
                }
            }
        }
        Ok(t)
    }

    /// The first number no machine can have (a zero count, a peak that is not positive and
    /// finite, a negative cost), named by its field: every cost model divides by or adds these.
    fn out_of_range(&self) -> Option<String> {
        let mut positive: Vec<(String, f64)> = vec![
            ("compute_units".into(), self.compute_units.into()),
            ("clock_ghz".into(), self.clock_ghz),
            ("memory_bandwidth_gbs".into(), self.memory_bandwidth_gbs),
        ];
        let peaks = [("peak_tflops", &self.peak_tflops), ("vector_tflops", &self.vector_tflops)];
        for (table, values) in peaks {
            positive.extend(values.iter().map(|(k, v)| (format!("{table}.{k}"), *v)));
        }
        let mut non_negative: Vec<(String, f64)> = vec![
            ("launch_overhead_us".into(), self.launch_overhead_us),
            ("energy_pj_per_flop".into(), self.energy_pj_per_flop),
            ("energy_pj_per_byte".into(), self.energy_pj_per_byte),
            ("idle_watts".into(), self.idle_watts),
            ("efficiency.kernel_fixed_us".into(), self.efficiency.kernel_fixed_us),
        ];
        for (i, level) in self.memory.iter().enumerate() {
            positive.push((format!("memory[{i}].bytes"), level.bytes as f64));
            positive.push((format!("memory[{i}].bandwidth_gbs"), level.bandwidth_gbs));
            non_negative.push((format!("memory[{i}].latency_ns"), level.latency_ns));
        }
        if let Some(g) = &self.gpu {
            for (name, v) in [
                ("warp_size", g.warp_size),
                ("max_threads_per_sm", g.max_threads_per_sm),
                ("max_ctas_per_sm", g.max_ctas_per_sm),
                ("registers_per_sm", g.registers_per_sm),
                ("max_registers_per_thread", g.max_registers_per_thread),
                ("warps_to_saturate", g.warps_to_saturate),
            ] {
                positive.push((format!("gpu.{name}"), v.into()));
            }
            positive.push(("gpu.shared_memory_per_sm_bytes".into(), g.shared_memory_per_sm_bytes as f64));
            positive.push(("gpu.sm_memory_gbs".into(), g.sm_memory_gbs));
            non_negative.push(("gpu.main_loop_step_ns".into(), g.main_loop_step_ns));
            non_negative.push(("gpu.graph_launch_us".into(), g.graph_launch_us));
        }
        if let Some(t) = &self.tpu {
            for (name, v) in [("mxu_dim", t.mxu_dim), ("tensor_cores", t.tensor_cores), ("f32_passes", t.f32_passes)] {
                positive.push((format!("tpu.{name}"), v.into()));
            }
            positive.push(("tpu.vmem_bytes".into(), t.vmem_bytes as f64));
        }
        if let Some(k) = &self.kpu {
            positive.push(("kpu.pe_dim".into(), k.pe_dim.into()));
            positive.push(("kpu.dma_engines".into(), k.dma_engines.into()));
            positive.push(("kpu.scratchpad_bytes".into(), k.scratchpad_bytes as f64));
            non_negative.push(("kpu.dma_setup_us".into(), k.dma_setup_us));
        }
        if let Some(c) = &self.cpu {
            for (name, v) in
                [("simd_bits", c.simd_bits), ("fma_units", c.fma_units), ("vector_registers", c.vector_registers)]
            {
                positive.push((format!("cpu.{name}"), v.into()));
            }
        }
        let bad = |(name, v): &(String, f64), rule: &str| format!("{name} must be {rule}, not {v}");
        positive
            .iter()
            .find(|(_, v)| !(v.is_finite() && *v > 0.0))
            .map(|field| bad(field, "positive and finite"))
            .or_else(|| {
                non_negative
                    .iter()
                    .find(|(_, v)| !(v.is_finite() && *v >= 0.0))
                    .map(|f| bad(f, "finite and not negative"))
            })
    }

    /// This target as a program limited to `threads` worker threads sees it: for a CPU, that
    /// many of its cores (at most all) with their share of the compute peaks, so predictions
    /// follow `--threads`; memory bandwidth stays, one core already drawing most of it. Other
    /// kinds are returned as they are: threads split host work only.
    pub fn on_threads(mut self, threads: usize) -> Target {
        let cores = (threads.max(1) as u32).min(self.compute_units);
        if self.kind != TargetKind::Cpu || cores == self.compute_units {
            return self;
        }
        let share = cores as f64 / self.compute_units as f64;
        for peak in self.peak_tflops.values_mut().chain(self.vector_tflops.values_mut()) {
            *peak *= share;
        }
        self.compute_units = cores;
        self
    }

    /// Peak FLOP/s of the vector units for an element type.
    pub fn vector_flops(&self, element: &str) -> f64 {
        match self.vector_tflops.get(element).or_else(|| self.vector_tflops.get("f32")) {
            Some(t) => t * 1e12,
            None => self.peak_flops(element),
        }
    }

    /// The memory level named `name` (`l2`, `hbm`, ...).
    pub fn memory_level(&self, name: &str) -> Option<&MemoryLevel> {
        self.memory.iter().find(|l| l.name == name)
    }

    /// Peak FLOP/s for an element type (falls back to f32).
    pub fn peak_flops(&self, element: &str) -> f64 {
        self.peak_tflops.get(element).or_else(|| self.peak_tflops.get("f32")).copied().unwrap_or(0.0) * 1e12
    }

    pub fn bandwidth(&self) -> f64 {
        self.memory_bandwidth_gbs * 1e9
    }

    /// FLOP per byte above which a kernel is compute-bound.
    pub fn ridge_point(&self, element: &str) -> f64 {
        self.peak_flops(element) / self.bandwidth()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every numeric leaf of a shipped target's TOML, by its dotted path.
    fn numeric_fields(value: &toml::Value, path: &str, out: &mut Vec<String>) {
        match value {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    numeric_fields(v, &if path.is_empty() { k.clone() } else { format!("{path}.{k}") }, out)
                }
            }
            toml::Value::Integer(_) | toml::Value::Float(_) => out.push(path.to_string()),
            _ => {}
        }
    }

    fn with_field(text: &str, path: &str, new: toml::Value) -> String {
        let mut doc: toml::Value = toml::from_str(text).unwrap();
        let mut at = &mut doc;
        for key in path.split('.') {
            at = at.get_mut(key).unwrap();
        }
        *at = new;
        toml::to_string(&doc).unwrap()
    }

    #[test]
    fn no_number_a_machine_cannot_have_is_accepted() {
        for (name, text) in SHIPPED {
            let mut fields = Vec::new();
            numeric_fields(&toml::from_str(text).unwrap(), "", &mut fields);
            assert!(fields.len() > 8, "{name}");
            for field in &fields {
                for bad in [toml::Value::Float(-1.0), toml::Value::Float(f64::NAN), toml::Value::Float(f64::INFINITY)] {
                    let err = Target::parse(&with_field(text, field, bad.clone()), "t.toml");
                    assert!(err.is_err(), "{name}: {field} = {bad} accepted");
                }
            }
        }
        let zeros = [
            ("host", "peak_tflops.f32"),
            ("host", "memory_bandwidth_gbs"),
            ("h100-sxm", "gpu.max_ctas_per_sm"),
            ("h100-sxm", "gpu.max_threads_per_sm"),
            ("h100-sxm", "gpu.registers_per_sm"),
            ("tpu-v4", "tpu.mxu_dim"),
            ("tpu-v4", "tpu.vmem_bytes"),
            ("kpu-t2", "kpu.pe_dim"),
        ];
        for (name, field) in zeros {
            let text = SHIPPED.iter().find(|(n, _)| *n == name).unwrap().1;
            let err = Target::parse(&with_field(text, field, toml::Value::Integer(0)), "t.toml").unwrap_err();
            assert!(err.to_string().contains(field) && err.to_string().contains("t.toml"), "{err}");
        }
    }

    #[test]
    fn every_shipped_target_loads() {
        for name in Target::shipped() {
            let t = Target::load(name).unwrap();
            assert_eq!(t.name, name);
            assert!(t.ridge_point("f32") > 0.0);
        }
        let unknown = Target::load("nope").unwrap_err();
        assert!(matches!(unknown, HardwareError::UnknownTarget { .. }) && unknown.to_string().contains("h100-sxm"));
    }

    #[test]
    fn a_cpu_on_fewer_threads_has_their_share_of_the_peaks() {
        let host = Target::load("host").unwrap();
        let one = host.clone().on_threads(1);
        assert_eq!(one.compute_units, 1);
        assert!((one.peak_flops("f32") * 2.0 - host.peak_flops("f32")).abs() < 1.0);
        assert_eq!(one.memory_bandwidth_gbs, host.memory_bandwidth_gbs);
        assert_eq!(host.clone().on_threads(64), host, "more threads than cores change nothing");
        let gpu = Target::load("h100-sxm").unwrap();
        assert_eq!(gpu.clone().on_threads(1), gpu);
    }
}
