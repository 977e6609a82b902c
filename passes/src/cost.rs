//! Cost models: how long a kernel takes on a target. One trait; the roofline model here is the
//! fallback every calibrated model (measured latencies) refines.
//!
//! A kernel's `Work` is what it computes and moves: FLOPs, the bytes it reads and writes at its
//! boundary, and the bytes of intermediates that a fused kernel keeps inside. Intermediates cost
//! nothing while they fit on chip, and full traffic once they do not.

use crate::characterize::op_cost;
use smelt_compiler::ir::{Module, OpId};
use smelt_compiler::target::Target;
use smelt_compiler::ElementType;

#[derive(Clone, Debug, PartialEq)]
pub struct Work {
    pub flops: u64,
    /// Bytes read and written at the kernel's boundary.
    pub bytes: u64,
    /// Bytes of values produced and consumed inside a fused kernel.
    pub intermediate_bytes: u64,
    pub element: ElementType,
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

/// The work of one executed op; a `smelt.kernel` counts the results its body keeps inside
/// (everything but what it yields) as intermediates.
pub fn work_of(m: &Module, op: OpId) -> Work {
    let c = op_cost(m, op);
    let element = m.op(op).results().first().and_then(|r| m.value_type(*r).element()).unwrap_or(ElementType::F32);
    let mut intermediate_bytes = 0;
    if m.op(op).name() == "smelt.kernel" {
        let body = m.region(m.op(op).regions()[0]).blocks()[0];
        let yielded: Vec<_> = m.block_terminator(body).map(|y| m.op(y).operands().to_vec()).unwrap_or_default();
        for inner in m.block_ops(body) {
            for r in m.op(inner).results() {
                if !yielded.contains(r) {
                    intermediate_bytes += m.value_type(*r).as_tensor().and_then(|t| t.byte_size()).unwrap_or(0);
                }
            }
        }
    }
    Work { flops: c.flops, bytes: c.bytes_read + c.bytes_written, intermediate_bytes, element }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> Roofline {
        Roofline { target: Target::load("host").unwrap() }
    }

    #[test]
    fn compute_bound_work_runs_at_peak() {
        let r = host();
        let w = Work { flops: 186_000_000_000, bytes: 0, intermediate_bytes: 0, element: ElementType::F32 };
        let e = r.estimate("matmul", &w);
        assert!((e.seconds - 1.0).abs() < 1e-3, "{}", e.seconds);
    }

    #[test]
    fn memory_bound_work_runs_at_bandwidth_and_spills_past_the_cache() {
        let r = host();
        let fits = Work { flops: 0, bytes: 20_000_000_000, intermediate_bytes: 1 << 20, element: ElementType::F32 };
        assert!((r.estimate("relu", &fits).seconds - 1.0).abs() < 1e-3);
        let spills = Work { intermediate_bytes: 1 << 30, ..fits.clone() };
        assert!(r.estimate("relu", &spills).seconds > r.estimate("relu", &fits).seconds);
    }
}
