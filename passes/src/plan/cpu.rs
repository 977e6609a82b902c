//! CPU mapping: threads over cores, SIMD lanes, register tiles and cache blocks.
//!
//! A contraction runs as a packed GEMM: an `mr x nr` register tile (as many accumulators as
//! the vector registers allow, beside the operands), `kc` chosen so a k-slice of both panels
//! fits half of L1, `mc` so the packed A block fits half of L2, `nc` so the B panel fits half
//! of the shared L3 per core. Work splits across cores by register-tile rows and columns;
//! padding to whole register tiles is charged. Vector work splits into chunks of at least
//! 16 KiB per thread so that threads pay for themselves.

use super::describe::Shape;
use super::{memory_seconds, Geometry, Job, Mapping};
use smelt_hardware::target::Target;

pub fn map(target: &Target, job: &Job) -> Mapping {
    let cpu = target.cpu.as_ref().expect("a cpu target has a [cpu] section");
    let lanes = (cpu.simd_bits / (8 * job.element_bytes().max(1) as u32)).max(1);
    let cores = target.compute_units as u64;
    let fixed = target.efficiency.kernel_fixed_us * 1e-6;
    let (batch, m, n, k) = match job.launch.shape {
        Shape::Contraction { batch, m, n, k, .. } => (batch, m, n, k),
        Shape::Attention { heads, q, kv, d, dv } => (heads, q, kv, d + dv),
        _ => {
            let moved = job.traffic.dram_bytes + job.traffic.on_chip_bytes;
            let threads = moved.div_ceil(16 * 1024).clamp(1, cores);
            let share = threads as f64 / cores as f64;
            let compute =
                job.launch.flops as f64 / (target.vector_flops(job.element.name()) * target.efficiency.vector * share);
            let memory = memory_seconds(target, job.traffic, share.max(0.5));
            return Mapping {
                geometry: Geometry::Cpu {
                    threads: threads as u32,
                    simd_lanes: lanes,
                    register_tile: None,
                    cache_blocks: None,
                },
                compute_s: compute,
                memory_s: memory,
                seconds: compute.max(memory) + fixed,
                units: threads as u32,
            };
        }
    };
    // Accumulators take what the operands (one broadcast, nr / lanes loads) leave.
    let nr_vectors = 2u32;
    let nr = (nr_vectors * lanes) as u64;
    let mr = ((cpu.vector_registers.saturating_sub(nr_vectors + 1)) / nr_vectors).max(1) as u64;
    let level = |name: &str| target.memory_level(name).map(|l| l.bytes);
    let bytes = job.element_bytes().max(1);
    let kc = (level("l1").unwrap_or(32 << 10) / 2 / ((mr + nr) * bytes)).clamp(16, k.max(16));
    let mc = ((level("l2").unwrap_or(512 << 10) / 2 / (kc * bytes)) / mr * mr).max(mr);
    let l3 = target.memory.iter().rev().nth(1).map_or(16 << 20, |l| l.bytes);
    let nc = ((l3 / 2 / cores / (kc * bytes)) / nr * nr).max(nr);
    let tiles = batch * m.div_ceil(mr) * n.div_ceil(nr);
    let threads = tiles.div_ceil(16).clamp(1, cores);
    let core_rate = target.peak_flops(&job.math) / cores as f64 * job.contraction_efficiency(target);
    let padded = (batch * m.div_ceil(mr) * mr * n.div_ceil(nr) * nr * k * 2) as f64;
    let vector = job.vector_flops() as f64 / (target.vector_flops(job.element.name()) * target.efficiency.vector);
    let compute = padded / (threads as f64 * core_rate) + vector;
    // Packing reads each operand once more and writes it to cache-resident buffers.
    let mut traffic = job.traffic;
    traffic.on_chip_bytes += 2 * (batch * m * k + k * n) * bytes;
    let memory = memory_seconds(target, traffic, threads as f64 / cores as f64);
    Mapping {
        geometry: Geometry::Cpu {
            threads: threads as u32,
            simd_lanes: lanes,
            register_tile: Some([mr as u32, nr as u32]),
            cache_blocks: Some([mc.min(m), nc.min(n), kc.min(k)]),
        },
        compute_s: compute,
        memory_s: memory,
        seconds: compute.max(memory) + fixed,
        units: threads as u32,
    }
}
