//! Hardware target descriptions: data files (`compiler/targets/*.toml`, shipped inside the
//! binary) or any TOML file of the same shape given by path.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
    /// Cores, SMs, TensorCore MXUs or tiles.
    pub compute_units: u32,
    pub clock_ghz: f64,
    /// Peak dense throughput per element type name (`f32`, `bf16`, ...), in TFLOP/s.
    pub peak_tflops: BTreeMap<String, f64>,
    pub memory_bandwidth_gbs: f64,
    /// Fixed cost of launching one kernel.
    pub launch_overhead_us: f64,
    /// Bytes that stay on chip (last-level cache, shared memory, scratchpads).
    pub on_chip_bytes: u64,
    pub energy_pj_per_flop: f64,
    pub energy_pj_per_byte: f64,
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

impl Target {
    /// Names of the shipped targets.
    pub fn shipped() -> impl Iterator<Item = &'static str> {
        SHIPPED.iter().map(|(n, _)| *n)
    }

    /// A shipped target by name, or a TOML file by path.
    pub fn load(name_or_path: &str) -> Result<Target, String> {
        if let Some((_, text)) = SHIPPED.iter().find(|(n, _)| *n == name_or_path) {
            return Self::parse(text, name_or_path);
        }
        if name_or_path.ends_with(".toml") {
            let text =
                std::fs::read_to_string(name_or_path).map_err(|e| format!("{name_or_path}: cannot read: {e}"))?;
            return Self::parse(&text, name_or_path);
        }
        Err(format!(
            "unknown target '{name_or_path}' (shipped: {}; or give a .toml file)",
            Self::shipped().collect::<Vec<_>>().join(", ")
        ))
    }

    pub fn parse(text: &str, origin: &str) -> Result<Target, String> {
        let t: Target = toml::from_str(text).map_err(|e| format!("{origin}: invalid target description: {e}"))?;
        if !t.peak_tflops.contains_key("f32") || t.memory_bandwidth_gbs <= 0.0 {
            return Err(format!("{origin}: a target needs peak_tflops.f32 and a positive memory_bandwidth_gbs"));
        }
        Ok(t)
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

    #[test]
    fn every_shipped_target_loads() {
        for name in Target::shipped() {
            let t = Target::load(name).unwrap();
            assert_eq!(t.name, name);
            assert!(t.ridge_point("f32") > 0.0);
        }
        assert!(Target::load("nope").unwrap_err().contains("h100-sxm"));
    }
}
