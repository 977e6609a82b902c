//! KPU mapping: output blocks over tiles, each block's operands streamed by DMA into a
//! double-buffered scratchpad.
//!
//! A contraction's output is cut into `b x b` blocks (multiples of the PE array's side); the
//! K loop advances in steps whose A and B slices, twice over (double buffering), plus the
//! accumulator block fit the tile's scratchpad. Blocks are dealt to tiles in rounds; each step
//! takes the longer of its compute and its DMA, whose bandwidth the busy tiles share. The
//! block size with the shortest schedule wins. Vector work streams through the tiles the same
//! way with no reuse.

use super::describe::Shape;
use super::{memory_seconds, Geometry, Job, Mapping};
use smelt_hardware::target::Target;

const BLOCKS: &[u64] = &[256, 128, 64, 32, 16, 8];

pub fn map(target: &Target, job: &Job) -> Mapping {
    let kpu = target.kpu.as_ref().expect("a kpu target has a [kpu] section");
    let (batch, m, n, k) = match job.launch.shape {
        Shape::Contraction { batch, m, n, k, .. } => (batch, m, n, k),
        Shape::Attention { heads, q, kv, d, dv } => (heads, q, kv, d + dv),
        _ => return streaming(target, job),
    };
    let units = target.compute_units as u64;
    let pe = kpu.pe_dim as u64;
    let bytes = job.element_bytes();
    let tile_rate = target.peak_flops(&job.math) / units as f64 * job.contraction_efficiency(target);
    let vector_rate = target.vector_flops(job.element.name()) * target.efficiency.vector;
    let bandwidth = target.bandwidth() * target.efficiency.bandwidth;
    let setup = kpu.dma_setup_us * 1e-6;
    let mut best: Option<Mapping> = None;
    for &b in BLOCKS.iter().filter(|&&b| b >= pe && b % pe == 0) {
        let accumulator = b * b * 4;
        if accumulator >= kpu.scratchpad_bytes {
            continue;
        }
        // The largest K step whose double-buffered slices fit beside the accumulator.
        let step = ((kpu.scratchpad_bytes - accumulator) / (2 * 2 * b * bytes)).min(k).max(1);
        if step < pe.min(k) {
            continue;
        }
        let (bm, bn) = (m.div_ceil(b), n.div_ceil(b));
        let blocks = batch * bm * bn;
        let tiles = blocks.min(units);
        let rounds = blocks.div_ceil(units);
        let steps = k.div_ceil(step);
        // PE padding: a block edge shorter than the array leaves PEs idle.
        let used = |extent: u64| (extent.min(b) as f64 / extent.min(b).div_ceil(pe).max(1) as f64 / pe as f64).min(1.0);
        let step_compute = (2 * b * b * step) as f64 / (tile_rate * used(m) * used(n));
        let step_bytes = 2 * b * step * bytes;
        // The busy tiles share the memory bandwidth; each engine sets its transfers up in turn.
        let setups = tiles.div_ceil(kpu.dma_engines.max(1) as u64) as f64 * setup;
        let step_dma = (step_bytes * tiles) as f64 / bandwidth + setups;
        let write_back = (b * b * bytes * tiles) as f64 / bandwidth;
        // Double buffering overlaps each step's DMA with the previous step's compute; the
        // first load and the write-back do not overlap.
        let per_block = steps as f64 * step_compute.max(step_dma) + step_dma + write_back;
        let epilogue = job.vector_flops() as f64 / vector_rate;
        let compute = rounds as f64 * steps as f64 * step_compute + epilogue;
        let seconds = rounds as f64 * per_block + epilogue + target.efficiency.kernel_fixed_us * 1e-6;
        let memory = memory_seconds(target, job.traffic, 1.0);
        let seconds = seconds.max(memory);
        let candidate = Mapping {
            geometry: Geometry::Kpu {
                tile_grid: [bm, bn * batch],
                tile: [b, b, step],
                tiles: tiles as u32,
                rounds,
                scratchpad_bytes: accumulator + 2 * 2 * b * step * bytes,
                double_buffered: true,
                dma_transfers: blocks * (steps * 2 + 1),
            },
            compute_s: compute,
            memory_s: memory,
            seconds,
            units: tiles as u32,
        };
        if best.as_ref().is_none_or(|c| candidate.seconds < c.seconds) {
            best = Some(candidate);
        }
    }
    best.unwrap_or_else(|| streaming(target, job))
}

fn streaming(target: &Target, job: &Job) -> Mapping {
    let kpu = target.kpu.as_ref().expect("a kpu target has a [kpu] section");
    let moved = job.traffic.dram_bytes + job.traffic.on_chip_bytes;
    // Chunks of a third of the scratchpad: input, output and the next input in flight.
    let chunk = (kpu.scratchpad_bytes / 3).max(1);
    let chunks = moved.div_ceil(chunk).max(1);
    let tiles = chunks.min(target.compute_units as u64);
    let share = tiles as f64 / target.compute_units as f64;
    let compute =
        job.launch.flops as f64 / (target.vector_flops(job.element.name()) * target.efficiency.vector * share);
    let memory = memory_seconds(target, job.traffic, 1.0) + kpu.dma_setup_us * 1e-6 * chunks.div_ceil(tiles) as f64;
    Mapping {
        geometry: Geometry::Kpu {
            tile_grid: [tiles, 1],
            tile: [chunk / job.element_bytes().max(1), 1, 1],
            tiles: tiles as u32,
            rounds: chunks.div_ceil(tiles),
            scratchpad_bytes: chunk * 3,
            double_buffered: true,
            dma_transfers: chunks * 2,
        },
        compute_s: compute,
        memory_s: memory,
        seconds: compute.max(memory) + target.efficiency.kernel_fixed_us * 1e-6,
        units: tiles as u32,
    }
}
