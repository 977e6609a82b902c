//! Measured GPU fusion-pattern timings: the format `scripts/gpu_fusion_patterns.py` writes
//! (and `../shared/calibration/h100-fusion-patterns.json` is in). Each pattern is timed
//! fused and unfused, both launched one by one (`*_ms`) and replayed from a CUDA graph
//! (`graph_*_ms`, no host overhead); `ceilings` holds the measured matmul rates per math,
//! copy bandwidth (read + write) and an empty kernel's time.

use crate::HardwareError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GpuPatternTimings {
    pub gpu: String,
    pub ceilings: Ceilings,
    pub patterns: Vec<PatternTiming>,
    /// Fields this version does not know, kept.
    #[serde(flatten)]
    pub unknown: BTreeMap<String, serde_json::Value>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Ceilings {
    pub fp32_matmul_tflops: f64,
    pub tf32_matmul_tflops: f64,
    pub bf16_matmul_tflops: f64,
    #[serde(rename = "copy_GBps_rw")]
    pub copy_gbps_rw: f64,
    pub empty_kernel_ms: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PatternTiming {
    /// The seeds' pattern name (`Conv2d_BatchNorm2d_ReLU`).
    pub pattern: String,
    /// The seeds' shape convention: linear `[M, K, N]`, conv `[B, C, H, W]`, attention
    /// `[B, H, S, D]`.
    pub shape: Vec<u64>,
    pub unfused_ms: f64,
    pub fused_ms: f64,
    pub graph_unfused_ms: f64,
    pub graph_fused_ms: f64,
    #[serde(flatten)]
    pub unknown: BTreeMap<String, serde_json::Value>,
}

impl GpuPatternTimings {
    pub fn load(path: &std::path::Path) -> Result<GpuPatternTimings, HardwareError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| HardwareError::io(path, "read", e))?;
        let c: GpuPatternTimings = serde_json::from_str(&text).map_err(|e| HardwareError::Syntax {
            origin: name.clone(),
            what: "not a GPU pattern calibration",
            reason: e.to_string(),
        })?;
        let bad = |v: f64| !(v.is_finite() && v > 0.0);
        let k = &c.ceilings;
        if [k.fp32_matmul_tflops, k.tf32_matmul_tflops, k.bf16_matmul_tflops, k.copy_gbps_rw].into_iter().any(bad) {
            return Err(HardwareError::invalid(name, "ceilings must be positive numbers"));
        }
        for p in &c.patterns {
            if [p.graph_fused_ms, p.graph_unfused_ms].into_iter().any(bad) {
                return Err(HardwareError::invalid(
                    name,
                    format!("pattern {} {:?}: timings must be positive numbers", p.pattern, p.shape),
                ));
            }
        }
        Ok(c)
    }
}
