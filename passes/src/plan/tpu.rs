//! TPU mapping: weight-stationary passes over the MXUs, vector work on the VPU.
//!
//! A contraction's `k x n` operand is cut into `mxu_dim`-square weight tiles; each is loaded
//! into an MXU and the `m` rows of the other operand stream through it (plus the array's fill
//! and drain). Tiles are dealt round-robin over the MXUs; f32 takes several bf16 passes.
//! Padding to the array's side is charged in full. A kernel whose working set exceeds VMEM
//! re-streams its left operand from HBM for each group of weight tiles.

use super::describe::Shape;
use super::{memory_seconds, Geometry, Job, Mapping};
use smelt_hardware::target::Target;

pub fn map(target: &Target, job: &Job) -> Mapping {
    let t = target.tpu.as_ref().expect("a tpu target has a [tpu] section");
    let (batch, m, n, k) = match job.launch.shape {
        Shape::Contraction { batch, m, n, k, .. } => (batch, m, n, k),
        // Scores and values: two products per head, modeled as one of the wider width.
        Shape::Attention { heads, q, kv, d, dv } => (heads, q, kv, d + dv),
        _ => return vector(target, job),
    };
    let dim = t.mxu_dim as u64;
    let mxus = target.compute_units as u64;
    let passes = if job.math == "f32" { t.f32_passes.max(1) } else { 1 };
    let weight_tiles = batch * k.div_ceil(dim) * n.div_ceil(dim);
    let rounds = (weight_tiles * passes as u64).div_ceil(mxus);
    let clock = target.clock_ghz * 1e9;
    // Streaming `m` rows plus fill and drain of the array, per weight tile.
    let cycles = rounds * (m + 2 * dim);
    // The array's own rate is in the cycles; the efficiency is what stalls between tiles cost.
    let mxu_s = cycles as f64 / clock / job.contraction_efficiency(target);
    let vector_s = job.vector_flops() as f64 / (target.vector_flops(job.element.name()) * target.efficiency.vector);
    let padded = (weight_tiles * dim * dim * m) as f64;
    let padding_efficiency = (batch * m * n * k) as f64 / padded;
    let bytes = job.element_bytes();
    let working_set = (m * k + k * n + m * n) * bytes;
    let fits = working_set <= t.vmem_bytes;
    let mut traffic = job.traffic;
    if !fits {
        // The left operand streams again for every VMEM-sized group of weight tiles.
        let groups = (k * n * bytes).div_ceil(t.vmem_bytes / 2).max(1);
        traffic.dram_bytes += (groups - 1) * batch * m * k * bytes;
    }
    let memory = memory_seconds(target, traffic, 1.0);
    let compute = mxu_s + vector_s;
    Mapping {
        geometry: Geometry::Tpu {
            engine: "mxu",
            mxus: weight_tiles.min(mxus) as u32,
            weight_tiles,
            passes,
            rows_streamed: m,
            padding_efficiency,
            working_set_bytes: working_set,
            fits_vmem: fits,
        },
        compute_s: compute,
        memory_s: memory,
        seconds: compute.max(memory) + target.efficiency.kernel_fixed_us * 1e-6,
        units: target.compute_units,
    }
}

fn vector(target: &Target, job: &Job) -> Mapping {
    let t = target.tpu.as_ref().expect("a tpu target has a [tpu] section");
    let compute = job.launch.flops as f64 / (target.vector_flops(job.element.name()) * target.efficiency.vector);
    let memory = memory_seconds(target, job.traffic, 1.0);
    let working_set = job.traffic.dram_bytes + job.traffic.on_chip_bytes;
    Mapping {
        geometry: Geometry::Tpu {
            engine: "vpu",
            mxus: 0,
            weight_tiles: 0,
            passes: 0,
            rows_streamed: 0,
            padding_efficiency: 1.0,
            working_set_bytes: working_set,
            fits_vmem: working_set <= t.vmem_bytes,
        },
        compute_s: compute,
        memory_s: memory,
        seconds: compute.max(memory) + target.efficiency.kernel_fixed_us * 1e-6,
        units: target.compute_units,
    }
}
