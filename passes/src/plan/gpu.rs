//! GPU mapping: CTAs over streaming multiprocessors.
//!
//! A contraction is tiled into CTA tiles (`tm x tn`, stepping `tk` through K), optionally split
//! along K; each candidate's CTAs per SM follow from its threads, registers and shared memory,
//! its waves from the CTA count over the SMs, and its time from the busiest SM's share of the
//! work at the math's calibrated efficiency, scaled down for small tiles (less operand reuse)
//! and too few resident warps (latency not hidden). The fastest candidate wins, as a library's
//! heuristic would pick it. Everything else is a grid-stride map of 256-thread CTAs whose
//! bandwidth grows with the SMs it reaches.

use super::describe::Shape;
use super::{memory_seconds, Geometry, Job, Mapping};
use smelt_hardware::target::{GpuSpec, Target};

/// CTA tile candidates `(tm, tn, tk, threads)` for matrix-unit math and for CUDA-core f32.
const TENSOR_TILES: &[(u64, u64, u64, u32)] =
    &[(256, 128, 32, 256), (128, 128, 32, 256), (128, 64, 32, 128), (64, 64, 32, 128), (64, 32, 32, 64)];
const SIMT_TILES: &[(u64, u64, u64, u32)] =
    &[(128, 128, 8, 256), (128, 64, 8, 256), (64, 64, 8, 128), (64, 32, 8, 64), (32, 32, 8, 64)];
const SPLITS: &[u64] = &[1, 2, 4, 8, 16];
const MIN_SPLIT_K: u64 = 256;
/// Operand reuse (`tm tn / (tm + tn)`) of the tile the calibrated efficiency was reached with.
const REFERENCE_REUSE: f64 = 64.0;

struct Sm<'a> {
    target: &'a Target,
    g: &'a GpuSpec,
}

impl Sm<'_> {
    fn count(&self) -> u64 {
        self.target.compute_units as u64
    }

    fn ctas_per_sm(&self, threads: u32, registers: u32, shared: u64) -> u32 {
        let g = self.g;
        let by_threads = g.max_threads_per_sm / threads.max(1);
        let by_registers = g.registers_per_sm / (threads * registers).max(1);
        let by_shared =
            g.shared_memory_per_sm_bytes.checked_div(shared).map_or(u32::MAX, |c| c.min(u32::MAX as u64) as u32);
        g.max_ctas_per_sm.min(by_threads).min(by_registers).min(by_shared)
    }

    /// Fraction of the SM's rate reached with `warps` resident.
    fn latency_hiding(&self, warps: f64, tensor: bool) -> f64 {
        let needed = if tensor { self.g.warps_to_saturate as f64 / 2.0 } else { self.g.warps_to_saturate as f64 };
        (warps / needed).min(1.0)
    }

    /// Share of the chip's memory parallelism `sms` SMs engage.
    fn memory_share(&self, sms: u64) -> f64 {
        (sms as f64 * self.g.sm_memory_gbs * 1e9 / self.target.bandwidth()).min(1.0)
    }
}

pub fn map(target: &Target, job: &Job) -> Mapping {
    let g = target.gpu.as_ref().expect("a gpu target has a [gpu] section");
    let sm = Sm { target, g };
    match job.launch.shape {
        Shape::Contraction { batch, m, n, k, .. } => contraction(&sm, job, batch, m, n, k),
        Shape::Attention { heads, q, kv, d, dv } => {
            // One CTA per 64 queries of a head, streaming K and V through shared memory.
            let tile_q = 64;
            let tiles = heads * q.div_ceil(tile_q);
            let mut mapping = contraction(&sm, job, heads, q, kv, d.max(dv));
            let sms = tiles.min(sm.count());
            let l2_reads = tiles * kv * (d + dv) * job.element_bytes();
            let mut traffic = job.traffic;
            traffic.on_chip_bytes += l2_reads;
            let memory = memory_seconds(target, traffic, sm.memory_share(sms));
            mapping.memory_s = mapping.memory_s.max(memory);
            mapping.seconds = mapping.compute_s.max(mapping.memory_s) + target.efficiency.kernel_fixed_us * 1e-6;
            if let Geometry::Gpu { grid, tile, .. } = &mut mapping.geometry {
                *grid = [q.div_ceil(tile_q), heads, 1];
                *tile = Some([tile_q, kv.min(64), d]);
            }
            mapping
        }
        Shape::Depthwise { planes, pixels, .. } => {
            // Convolution kernels reach less of either ceiling than a plain stream.
            let mut m = streaming(&sm, job, planes * pixels.div_ceil(256).max(1), 256);
            let fixed = target.efficiency.kernel_fixed_us * 1e-6;
            m.compute_s /= target.efficiency.convolution;
            m.memory_s /= target.efficiency.convolution;
            m.seconds = m.compute_s.max(m.memory_s) + fixed;
            m
        }
        Shape::Rows { rows, cols } => {
            // A warp per row up to 1024 columns, a CTA per row beyond.
            if cols <= 1024 {
                streaming(&sm, job, rows.div_ceil(8), 256)
            } else {
                streaming(&sm, job, rows, 256.min(cols.div_ceil(4) as u32).max(32))
            }
        }
        Shape::Elementwise { elements } => streaming(&sm, job, elements.div_ceil(1024).max(1), 256),
    }
}

fn contraction(sm: &Sm, job: &Job, batch: u64, m: u64, n: u64, k: u64) -> Mapping {
    let target = sm.target;
    let tensor = job.math != "f32";
    let tiles = if tensor { TENSOR_TILES } else { SIMT_TILES };
    let in_bytes = job.element_bytes();
    let stages = if tensor { 3 } else { 2 };
    let sm_rate = target.peak_flops(&job.math) / sm.count() as f64 * job.contraction_efficiency(target);
    let vector_rate = target.vector_flops(job.element.name()) / sm.count() as f64 * target.efficiency.vector;
    let fixed = target.efficiency.kernel_fixed_us * 1e-6;
    let step = sm.g.main_loop_step_ns * 1e-9;
    let l2_bw = super::on_chip_level(target).map_or(f64::INFINITY, |l| l.bandwidth_gbs * 1e9);
    let mut best: Option<Mapping> = None;
    for &(tm, tn, tk, threads) in tiles {
        let accumulators = (tm * tn) as u32 / threads;
        let registers = (accumulators + 40).min(sm.g.max_registers_per_thread);
        let shared = stages * (tm + tn) * tk * in_bytes;
        let ctas_limit = sm.ctas_per_sm(threads, registers, shared);
        if ctas_limit == 0 {
            continue;
        }
        for &split in SPLITS {
            let k_part = k.div_ceil(split);
            // Libraries split K only when each part keeps a long main loop.
            if split > 1 && k_part < MIN_SPLIT_K {
                break;
            }
            let ctas = batch * m.div_ceil(tm) * n.div_ceil(tn) * split;
            let per_sm = ctas.div_ceil(sm.count());
            let sms = ctas.min(sm.count());
            let resident = per_sm.min(ctas_limit as u64);
            let warps = (resident * threads as u64) as f64 / sm.g.warp_size as f64;
            let reuse = ((tm * tn) as f64 / (tm + tn) as f64 / REFERENCE_REUSE).min(1.0);
            let rate = sm_rate * reuse * sm.latency_hiding(warps, tensor);
            // The busiest SM computes its CTAs' full (padded) tiles; epilogues run on its
            // vector units over the tile it holds.
            let epilogue = job.vector_flops() as f64 / sms as f64 / vector_rate;
            // Resident CTAs overlap their K loops; each loop takes at least its steps'
            // latency.
            let loop_latency = per_sm.div_ceil(resident) as f64 * k_part.div_ceil(tk) as f64 * step;
            let compute = (per_sm as f64 * (2 * tm * tn * k_part) as f64 / rate).max(loop_latency) + epilogue;
            // Operands stream from L2 once per tile row and column; partial sums of a split
            // K are written and reduced through L2.
            let operand_reads = (batch * m * k * n.div_ceil(tn) + batch * k * n * m.div_ceil(tm)) * in_bytes;
            let partials = if split > 1 { 2 * split * batch * m * n * 4 } else { 0 };
            let mut traffic = job.traffic;
            traffic.on_chip_bytes += partials;
            let memory = memory_seconds(target, traffic, sm.memory_share(sms)).max(operand_reads as f64 / l2_bw);
            let reduction = if split > 1 { fixed } else { 0.0 };
            let seconds = compute.max(memory) + fixed + reduction;
            let waves = ctas.div_ceil(sm.count() * ctas_limit as u64);
            let last = ctas - (waves - 1) * sm.count() * ctas_limit as u64;
            let candidate = Mapping {
                geometry: Geometry::Gpu {
                    grid: [n.div_ceil(tn), m.div_ceil(tm), batch * split],
                    block: [threads, 1, 1],
                    tile: Some([tm, tn, tk]),
                    split_k: split as u32,
                    registers_per_thread: registers,
                    shared_memory_bytes: shared,
                    ctas_per_sm: ctas_limit,
                    occupancy: (ctas_limit * threads) as f64 / sm.g.max_threads_per_sm as f64,
                    waves,
                    last_wave_fill: last as f64 / (sm.count() * ctas_limit as u64) as f64,
                    sms: sms as u32,
                },
                compute_s: compute,
                memory_s: memory,
                seconds,
                units: sms as u32,
            };
            if best.as_ref().is_none_or(|b| candidate.seconds < b.seconds) {
                best = Some(candidate);
            }
        }
    }
    // A skinny product (a matrix-vector product at the extreme) runs better as a streaming
    // kernel: a warp per output column block, the operand read once, dot products on the
    // vector units.
    let mut skinny = streaming(sm, job, (batch * n).div_ceil(8).max(1), 256);
    let vector = job.launch.flops as f64 / (sm.count() as f64 * vector_rate);
    skinny.compute_s = skinny.compute_s.max(vector);
    skinny.seconds = skinny.compute_s.max(skinny.memory_s) + fixed;
    match best {
        Some(b) if b.seconds <= skinny.seconds => b,
        _ => skinny,
    }
}

/// A grid of `ctas` CTAs of `threads` threads sweeping the data once (grid-stride beyond what
/// fits resident).
fn streaming(sm: &Sm, job: &Job, ctas: u64, threads: u32) -> Mapping {
    let target = sm.target;
    let ctas_limit = sm.ctas_per_sm(threads, 32, 0);
    let grid = ctas.min(sm.count() * ctas_limit as u64).max(1);
    let sms = grid.min(sm.count());
    let per_sm = grid.div_ceil(sm.count());
    let warps = (per_sm.min(ctas_limit as u64) * threads as u64) as f64 / sm.g.warp_size as f64;
    let vector_rate = target.vector_flops(job.element.name()) / sm.count() as f64 * target.efficiency.vector;
    let compute = job.launch.flops as f64 / (sms as f64 * vector_rate * sm.latency_hiding(warps, false));
    let memory = memory_seconds(target, job.traffic, sm.memory_share(sms));
    let waves = ctas.div_ceil(sm.count() * ctas_limit as u64);
    Mapping {
        geometry: Geometry::Gpu {
            grid: [grid, 1, 1],
            block: [threads, 1, 1],
            tile: None,
            split_k: 1,
            registers_per_thread: 32,
            shared_memory_bytes: 0,
            ctas_per_sm: ctas_limit,
            occupancy: (per_sm.min(ctas_limit as u64) * threads as u64) as f64 / sm.g.max_threads_per_sm as f64,
            waves,
            last_wave_fill: 1.0,
            sms: sms as u32,
        },
        compute_s: compute,
        memory_s: memory,
        seconds: compute.max(memory) + target.efficiency.kernel_fixed_us * 1e-6,
        units: sms as u32,
    }
}
