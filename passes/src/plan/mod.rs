//! Launch plans: the fused kernels of a module mapped onto a target's compute units, with
//! launch geometry, buffers, predicted time and energy (`smelt plan`, `smelt-opt --emit=plan`).
//!
//! A plan is computed in four steps, each its own module:
//! 1. [`rebatch`] scales activations to the requested batch and retypes floats;
//! 2. [`describe`] turns each executed op or `smelt.kernel` into a [`describe::Launch`]: the
//!    iteration space (GEMM dimensions, attention heads, rows, elements) and its traffic;
//! 3. a mapper for the target's kind ([`gpu`], [`tpu`], [`kpu`], [`cpu`]) tiles that space onto
//!    the hardware — CTAs and waves over SMs with occupancy from registers and shared memory,
//!    passes over 128x128 MXUs, scratchpad-sized tiles with double-buffered DMA, threads and
//!    cache blocks — and prices it with a two-level roofline (off-chip memory and the on-chip
//!    level behind it) at the target's calibrated efficiencies;
//! 4. [`schedule`] places the launches in time: launch overhead, dependencies, and overlap of
//!    independent kernels on disjoint units where the target allows it.
//!
//! Inside a fused kernel, intermediates never leave the compute unit: the kernel computes
//! tile by tile (a register tile's epilogue, a row's normalization), so only its boundary
//! moves. Between launches, a value stays on chip while everything produced after it still fits in
//! half the on-chip capacity: its consumer reads it at on-chip bandwidth. That, and the launch
//! overhead a fused kernel saves, is why fusion pays more on a GPU than on a CPU.
//!
//! # JSON schema (`smelt.plan/1`)
//! Top level: `schema`, `target`, `kind`, `batch`, `dtype`, `launch` (`graph` or `stream`),
//! `predicted_latency_ms` (the scheduled makespan), `predicted_serial_ms` (no overlap),
//! `predicted_unfused_latency_ms` and `unfused_launches` (the same module before fusion, when
//! given), `launches`, `flops`, `dram_bytes`, `energy_j`, `utilization` (achieved over peak
//! FLOP/s), `launch_overhead_ms` (time the device waits on launches), `peak_activation_bytes`,
//! `buffers` and `kernels`.
//! Each buffer: `id`, `value` (the SSA name), `bytes`, `role` (`input`, `weight`, `activation`,
//! `output`), `producer` and `last_use` (kernel indices; absent for inputs and weights).
//! Each kernel, in launch order: `index`, `name`, `pattern`, `ops`, `shape` (the iteration
//! space, tagged by `class`), `geometry` (tagged by `unit`: `gpu`, `tpu`, `kpu`, `cpu`), `math`,
//! `bound` (`compute`, `memory` or `launch`), `flops`, `dram_bytes`, `on_chip_bytes`, `inputs`
//! and `outputs` (buffer ids), `predicted_us` (device time), `start_us`, `end_us`,
//! `launch_wait_us`, `units` (compute units it occupies), `utilization`, `energy_uj`.

pub mod cpu;
pub mod describe;
pub mod gpu;
pub mod kpu;
pub mod rebatch;
pub mod schedule;
pub mod tpu;

use describe::{Launch, Shape};
use serde::Serialize;
use smelt_compiler::ir::{Module, ValueId};
use smelt_compiler::names;
use smelt_compiler::ElementType;
use smelt_hardware::target::{Target, TargetKind};
use std::collections::HashMap;

/// How kernels reach the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LaunchMode {
    /// Captured once and replayed (CUDA Graphs, an XLA executable, a KPU program): each kernel
    /// costs only the device's per-kernel dispatch.
    Graph,
    /// Issued one by one from the host: each kernel also costs the host's launch overhead.
    Stream,
}

/// The element type plans compute in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    /// f32 storage; contractions in the math the target uses for f32 (a GPU target may name
    /// TF32 tensor cores for convolutions, as cuDNN does by default).
    F32,
    /// f32 storage, every contraction on TF32 matrix units.
    Tf32,
    Bf16,
}

impl Dtype {
    pub fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "f32",
            Dtype::Tf32 => "tf32",
            Dtype::Bf16 => "bf16",
        }
    }

    pub fn parse(s: &str) -> Result<Dtype, String> {
        match s {
            "f32" => Ok(Dtype::F32),
            "tf32" => Ok(Dtype::Tf32),
            "bf16" => Ok(Dtype::Bf16),
            _ => Err(format!("unknown dtype '{s}' (expected f32, tf32 or bf16)")),
        }
    }
}

impl LaunchMode {
    pub fn name(self) -> &'static str {
        match self {
            LaunchMode::Graph => "graph",
            LaunchMode::Stream => "stream",
        }
    }

    pub fn parse(s: &str) -> Result<LaunchMode, String> {
        match s {
            "graph" => Ok(LaunchMode::Graph),
            "stream" => Ok(LaunchMode::Stream),
            _ => Err(format!("unknown launch mode '{s}' (expected graph or stream)")),
        }
    }
}

#[derive(Clone, Debug)]
pub struct PlanOptions {
    /// Batch to plan for; `None` keeps the model's.
    pub batch: Option<u64>,
    pub dtype: Dtype,
    pub launch: LaunchMode,
    /// The fused plan's fusion substitutes ops (`fuse{algebra}`).
    pub algebra: bool,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions { batch: None, dtype: Dtype::F32, launch: LaunchMode::Graph, algebra: true }
    }
}

/// Where one launch's bytes come from and go to.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Traffic {
    /// Off-chip memory.
    pub dram_bytes: u64,
    /// The on-chip level behind the compute units (L2, CMEM, L3, neighbouring scratchpads).
    pub on_chip_bytes: u64,
}

/// How a kernel is laid onto the hardware.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "unit", rename_all = "snake_case")]
pub enum Geometry {
    Gpu {
        grid: [u64; 3],
        block: [u32; 3],
        /// CTA tile `[m, n, k]` of a contraction.
        tile: Option<[u64; 3]>,
        split_k: u32,
        registers_per_thread: u32,
        shared_memory_bytes: u64,
        /// CTAs resident per SM (the tighter of threads, registers, shared memory, CTA limit).
        ctas_per_sm: u32,
        /// Resident warps over the SM's maximum.
        occupancy: f64,
        /// Rounds of CTAs over the SMs (the last may be partial: wave quantization).
        waves: u64,
        /// Useful over launched work in the last wave.
        last_wave_fill: f64,
        sms: u32,
    },
    Tpu {
        /// `mxu` for contractions, `vpu` for vector work.
        engine: &'static str,
        mxus: u32,
        /// 128x128 weight tiles loaded into the MXUs.
        weight_tiles: u64,
        /// Passes per product (3 for f32 on bf16 MXUs).
        passes: u32,
        rows_streamed: u64,
        /// Real MACs over the MACs of the padded tiles.
        padding_efficiency: f64,
        working_set_bytes: u64,
        fits_vmem: bool,
    },
    Kpu {
        tile_grid: [u64; 2],
        /// `[m, n, k-step]` of one tile's block.
        tile: [u64; 3],
        tiles: u32,
        rounds: u64,
        scratchpad_bytes: u64,
        double_buffered: bool,
        dma_transfers: u64,
    },
    Cpu {
        threads: u32,
        simd_lanes: u32,
        /// Micro-kernel register tile `[mr, nr]` of a contraction.
        register_tile: Option<[u32; 2]>,
        /// Cache blocks `[mc, nc, kc]`: A panel in L2, B panel in L3, k-slice in L1.
        cache_blocks: Option<[u64; 3]>,
    },
}

/// A mapper's answer for one launch.
#[derive(Clone, Debug)]
pub struct Mapping {
    pub geometry: Geometry,
    pub compute_s: f64,
    pub memory_s: f64,
    /// Device time, launch excluded.
    pub seconds: f64,
    /// Compute units occupied.
    pub units: u32,
}

/// What a mapper is given.
pub struct Job<'a> {
    pub launch: &'a Launch,
    /// Math of the matrix units (`f32`, `tf32`, `bf16`).
    pub math: String,
    /// Element type of vector work.
    pub element: ElementType,
    pub traffic: Traffic,
}

impl Job<'_> {
    /// FLOPs off the matrix units.
    pub fn vector_flops(&self) -> u64 {
        self.launch.flops.saturating_sub(self.launch.matrix_flops)
    }

    /// The fraction of the matrix peak this launch's contraction reaches at best.
    pub fn contraction_efficiency(&self, target: &Target) -> f64 {
        let e = &target.efficiency;
        let conv = matches!(self.launch.shape, Shape::Contraction { op: names::CONV2D | names::QUANTIZED_CONV2D, .. });
        e.contraction(&self.math) * if conv { e.convolution } else { 1.0 }
    }

    pub fn element_bytes(&self) -> u64 {
        self.element.byte_size() as u64
    }
}

/// Seconds to move `traffic` when `share` of the chip's memory parallelism is engaged: the
/// slower of off-chip memory and the on-chip level all bytes pass through.
pub fn memory_seconds(target: &Target, traffic: Traffic, share: f64) -> f64 {
    let share = share.clamp(1e-6, 1.0);
    let dram = traffic.dram_bytes as f64 / (target.bandwidth() * target.efficiency.bandwidth * share);
    let on_chip_bw = on_chip_level(target).map_or(f64::INFINITY, |l| l.bandwidth_gbs * 1e9);
    let on_chip = (traffic.dram_bytes + traffic.on_chip_bytes) as f64 / (on_chip_bw * share);
    dram.max(on_chip)
}

/// The level between the compute units and off-chip memory that values live in between
/// kernels (L2, CMEM, L3): the next-to-last memory level.
pub fn on_chip_level(target: &Target) -> Option<&smelt_hardware::target::MemoryLevel> {
    target.memory.len().checked_sub(2).map(|i| &target.memory[i])
}

#[derive(Clone, Debug, Serialize)]
pub struct Buffer {
    pub id: usize,
    pub value: String,
    pub bytes: u64,
    pub role: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub producer: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_use: Option<usize>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PlannedKernel {
    pub index: usize,
    pub name: String,
    pub pattern: String,
    pub ops: Vec<&'static str>,
    pub shape: Shape,
    pub geometry: Geometry,
    pub math: String,
    pub bound: &'static str,
    pub flops: u64,
    pub dram_bytes: u64,
    pub on_chip_bytes: u64,
    pub inputs: Vec<usize>,
    pub outputs: Vec<usize>,
    pub predicted_us: f64,
    pub start_us: f64,
    pub end_us: f64,
    pub launch_wait_us: f64,
    pub units: u32,
    pub utilization: f64,
    pub energy_uj: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    pub schema: &'static str,
    pub target: String,
    pub kind: &'static str,
    pub batch: u64,
    pub dtype: Dtype,
    pub launch: LaunchMode,
    pub predicted_latency_ms: f64,
    pub predicted_serial_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predicted_unfused_latency_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unfused_launches: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unfused_dram_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unfused_energy_j: Option<f64>,
    pub launches: usize,
    pub flops: u64,
    pub dram_bytes: u64,
    pub energy_j: f64,
    pub utilization: f64,
    pub launch_overhead_ms: f64,
    pub peak_activation_bytes: u64,
    pub buffers: Vec<Buffer>,
    pub kernels: Vec<PlannedKernel>,
}

impl Plan {
    /// Records the unfused plan of the same model beside this one.
    pub fn with_unfused(mut self, unfused: &Plan) -> Plan {
        self.predicted_unfused_latency_ms = Some(unfused.predicted_latency_ms);
        self.unfused_launches = Some(unfused.launches);
        self.unfused_dram_bytes = Some(unfused.dram_bytes);
        self.unfused_energy_j = Some(unfused.energy_j);
        self
    }
}

/// The math a launch's matrix work runs in.
fn math_of(target: &Target, launch: &Launch, dtype: Dtype) -> String {
    // Integer products run on the target's int8 matrix units where it has them.
    if matches!(launch.shape, Shape::Contraction { op: names::QUANTIZED_CONV2D, .. })
        && target.peak_tflops.contains_key("i8")
    {
        return "i8".to_string();
    }
    let math = match dtype {
        Dtype::Bf16 => "bf16",
        Dtype::Tf32 => "tf32",
        Dtype::F32 => match (&target.gpu, &launch.shape) {
            (Some(g), Shape::Contraction { op: names::CONV2D | names::QUANTIZED_CONV2D, .. }) => {
                g.f32_conv_math.as_str()
            }
            (Some(g), Shape::Contraction { .. } | Shape::Attention { .. }) => g.f32_matmul_math.as_str(),
            _ => "f32",
        },
    };
    if target.peak_tflops.contains_key(math) {
        math.to_string()
    } else {
        "f32".to_string()
    }
}

/// Maps one launch on `target`.
pub fn map(target: &Target, job: &Job) -> Mapping {
    match target.kind {
        TargetKind::Gpu => gpu::map(target, job),
        TargetKind::Tpu => tpu::map(target, job),
        TargetKind::Kpu => kpu::map(target, job),
        TargetKind::Cpu => cpu::map(target, job),
    }
}

fn value_bytes(m: &Module, v: ValueId) -> u64 {
    m.value_type(v).as_tensor().and_then(|t| t.byte_size()).unwrap_or(0)
}

/// Plans `@main` of `module` on `target`.
pub fn plan(module: &Module, target: &Target, options: &PlanOptions) -> Result<Plan, String> {
    let batch = options.batch.unwrap_or_else(|| rebatch::model_batch(module));
    let element = if options.dtype == Dtype::Bf16 { ElementType::BF16 } else { ElementType::F32 };
    let m = rebatch::rebatch(module, batch, element)?;
    let launches = describe::launches(&m);

    // Buffers: every value a launch reads or writes, with its producer and last use. Values
    // that pass through view ops, or that attention reads in place, keep the identity of what
    // they view.
    let func = m.functions().first().copied().ok_or("the module has no function to plan")?;
    let entry = m.body_of(func);
    let mut alias: HashMap<ValueId, ValueId> = HashMap::new();
    let in_place = smelt_compiler::views::strided_views(&m, &m.block_ops(entry).collect::<Vec<_>>());
    for op in m.block_ops(entry) {
        let o = m.op(op);
        if smelt_compiler::views::runs_nothing(&m, op, &in_place) {
            if let (Some(&src), Some(&dst)) = (o.operands().first(), o.results().first()) {
                let root = alias.get(&src).copied().unwrap_or(src);
                alias.insert(dst, root);
            }
        }
    }
    let root = |v: ValueId| alias.get(&v).copied().unwrap_or(v);
    let returned: Vec<ValueId> =
        m.block_terminator(entry).map(|t| m.op(t).operands().iter().map(|&v| root(v)).collect()).unwrap_or_default();
    let args: Vec<ValueId> = m.block(entry).args().to_vec();
    let mut buffers: Vec<Buffer> = Vec::new();
    let mut buffer_of: HashMap<ValueId, usize> = HashMap::new();
    let mut buffer = |v: ValueId, m: &Module, buffers: &mut Vec<Buffer>| -> usize {
        *buffer_of.entry(v).or_insert_with(|| {
            let is_weight = m.defining_op(v).is_some_and(|d| m.op(d).name() == names::CONSTANT);
            let role = if args.contains(&v) {
                "input"
            } else if is_weight {
                "weight"
            } else if returned.contains(&v) {
                "output"
            } else {
                "activation"
            };
            let value = format!("%{}", v.index());
            buffers.push(Buffer {
                id: buffers.len(),
                value,
                bytes: value_bytes(m, v),
                role,
                producer: None,
                last_use: None,
            });
            buffers.len() - 1
        })
    };

    let on_chip_window = target.on_chip_bytes / 2;
    let mut produced_at: HashMap<usize, u64> = HashMap::new(); // buffer -> bytes produced before it
    let mut produced_total: u64 = 0;
    let mut jobs = Vec::new();
    let mut io: Vec<(Vec<usize>, Vec<usize>)> = Vec::new();
    for (index, launch) in launches.iter().enumerate() {
        let mut inputs = Vec::new();
        for &v in &launch.inputs {
            let b = buffer(root(v), &m, &mut buffers);
            if !inputs.contains(&b) {
                inputs.push(b);
            }
            buffers[b].last_use = Some(index);
        }
        let outputs: Vec<usize> = launch.outputs.iter().map(|&v| buffer(root(v), &m, &mut buffers)).collect();
        let mut traffic = Traffic::default();
        for &b in &inputs {
            let bytes = buffers[b].bytes;
            let resident = produced_at.get(&b).is_some_and(|&at| produced_total - at <= on_chip_window);
            if resident {
                traffic.on_chip_bytes += bytes;
            } else {
                traffic.dram_bytes += bytes;
            }
        }
        for &b in &outputs {
            buffers[b].producer = Some(index);
            let bytes = buffers[b].bytes;
            if buffers[b].role != "output" && bytes <= on_chip_window {
                traffic.on_chip_bytes += bytes;
            } else {
                traffic.dram_bytes += bytes;
            }
            produced_total += bytes;
            produced_at.insert(b, produced_total);
        }
        let math = math_of(target, launch, options.dtype);
        jobs.push((math, traffic));
        io.push((inputs, outputs));
    }

    let mut mappings = Vec::new();
    for (launch, (math, traffic)) in launches.iter().zip(&jobs) {
        let job = Job { launch, math: math.clone(), element, traffic: *traffic };
        mappings.push(map(target, &job));
    }

    // Dependencies through buffers.
    let mut graph = schedule::LaunchGraph::with_capacity(mappings.len(), mappings.len());
    let nodes: Vec<_> = mappings.iter().map(|m| graph.add_node((m.seconds, m.units))).collect();
    for (consumer, (ins, _)) in io.iter().enumerate() {
        for producer in ins.iter().filter_map(|&b| buffers[b].producer) {
            graph.update_edge(nodes[producer], nodes[consumer], ());
        }
    }
    let (gap_s, host_s) = launch_costs(target, options.launch);
    let slots = schedule::schedule(&graph, target.compute_units, target.concurrent_kernels, gap_s, host_s);

    let pj_flop = target.energy_pj_per_flop * 1e-12;
    let pj_byte = target.energy_pj_per_byte * 1e-12;
    // On-chip traffic costs about a tenth of off-chip per byte.
    let pj_on_chip = pj_byte / 10.0;
    let mut kernels = Vec::new();
    for (index, ((launch, mapping), (inputs, outputs))) in launches.iter().zip(&mappings).zip(io).enumerate() {
        let (math, traffic) = &jobs[index];
        let slot = &slots[index];
        let peak = if launch.matrix_flops > 0 { target.peak_flops(math) } else { target.vector_flops(element.name()) };
        let energy = launch.flops as f64 * pj_flop
            + traffic.dram_bytes as f64 * pj_byte
            + traffic.on_chip_bytes as f64 * pj_on_chip;
        let bound = if mapping.seconds < gap_s.max(host_s) {
            "launch"
        } else if mapping.compute_s >= mapping.memory_s {
            "compute"
        } else {
            "memory"
        };
        kernels.push(PlannedKernel {
            index,
            name: launch.label.clone(),
            pattern: launch.pattern.clone(),
            ops: launch.ops.clone(),
            shape: launch.shape.clone(),
            geometry: mapping.geometry.clone(),
            math: math.clone(),
            bound,
            flops: launch.flops,
            dram_bytes: traffic.dram_bytes,
            on_chip_bytes: traffic.on_chip_bytes,
            inputs,
            outputs,
            predicted_us: mapping.seconds * 1e6,
            start_us: slot.start_s * 1e6,
            end_us: slot.end_s * 1e6,
            launch_wait_us: slot.wait_s * 1e6,
            units: mapping.units,
            utilization: if mapping.seconds > 0.0 { launch.flops as f64 / (mapping.seconds * peak) } else { 0.0 },
            energy_uj: energy * 1e6,
        });
    }
    let makespan = slots.iter().map(|s| s.end_s).fold(0.0, f64::max);
    let serial: f64 = mappings.iter().map(|m| m.seconds + gap_s.max(host_s)).sum();
    let flops: u64 = launches.iter().map(|l| l.flops).sum();
    let dram: u64 = kernels.iter().map(|k| k.dram_bytes).sum();
    let dynamic: f64 = kernels.iter().map(|k| k.energy_uj * 1e-6).sum();
    let peak_activations = peak_live_bytes(&buffers, launches.len());
    // Utilization against the peak of the math most of the work runs in.
    let main_math = launches.iter().zip(&jobs).max_by_key(|(l, _)| l.matrix_flops).map_or("f32", |(_, j)| j.0.as_str());
    let peak = target.peak_flops(main_math);
    Ok(Plan {
        schema: "smelt.plan/1",
        target: target.name.clone(),
        kind: target.kind.name(),
        batch,
        dtype: options.dtype,
        launch: options.launch,
        predicted_latency_ms: makespan * 1e3,
        predicted_serial_ms: serial * 1e3,
        predicted_unfused_latency_ms: None,
        unfused_launches: None,
        unfused_dram_bytes: None,
        unfused_energy_j: None,
        launches: kernels.len(),
        flops,
        dram_bytes: dram,
        energy_j: dynamic + target.idle_watts * makespan,
        utilization: if makespan > 0.0 { flops as f64 / (makespan * peak) } else { 0.0 },
        launch_overhead_ms: slots.iter().map(|s| s.wait_s).sum::<f64>() * 1e3,
        peak_activation_bytes: peak_activations,
        buffers,
        kernels,
    })
}

/// `(device gap between dependent kernels, host time to issue one)`.
pub fn launch_costs(target: &Target, mode: LaunchMode) -> (f64, f64) {
    match (&target.gpu, mode) {
        (Some(g), LaunchMode::Graph) => (g.graph_launch_us * 1e-6, 0.0),
        (Some(g), LaunchMode::Stream) => (g.graph_launch_us * 1e-6, target.launch_overhead_us * 1e-6),
        (None, _) => (target.launch_overhead_us * 1e-6, 0.0),
    }
}

/// The most bytes of activations (not inputs or weights) live at once, in launch order.
fn peak_live_bytes(buffers: &[Buffer], launches: usize) -> u64 {
    let mut delta = vec![0i128; launches + 2];
    for b in buffers.iter().filter(|b| matches!(b.role, "activation" | "output")) {
        let Some(p) = b.producer else { continue };
        let end = b.last_use.unwrap_or(launches).max(p);
        delta[p] += b.bytes as i128;
        delta[end + 1] -= b.bytes as i128;
    }
    let mut live = 0i128;
    let mut peak = 0i128;
    for d in delta {
        live += d;
        peak = peak.max(live);
    }
    peak as u64
}
