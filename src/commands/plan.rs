//! `smelt plan`: fuse a model for a target and lay its kernels onto that target's hardware,
//! beside the plan of the same model unfused.

use crate::driver::{fail, Failure, ModelSource};
use smelt_compiler::diagnostics::SourceMap;
use smelt_compiler::Module;
use smelt_hardware::target::Target;
use smelt_passes::cost::{CostModel, Roofline};
use smelt_passes::fuse::Fuse;
use smelt_passes::plan::{plan, Dtype, Geometry, LaunchMode, Plan, PlanOptions};
use std::sync::Arc;

/// `smelt plan`'s options.
#[derive(clap::Args)]
pub struct PlanArgs {
    /// target: a shipped name (h100-sxm, h100-pcie, tpu-v4, kpu-t2, kpu-t100, i7-12700k,
    /// ryzen7, host) or a .toml file
    #[arg(long, default_value = "h100-sxm")]
    pub target: String,
    /// batch size to plan for (activations scale, weights do not)
    #[arg(long)]
    pub batch: Option<u64>,
    /// f32, tf32 (f32 storage, TF32 matrix units) or bf16
    #[arg(long, default_value = "f32")]
    pub dtype: String,
    /// graph (captured and replayed) or stream (each kernel launched from the host)
    #[arg(long, default_value = "graph")]
    pub launch: String,
    /// print the plan as one JSON object instead of the table
    #[arg(long)]
    pub json: bool,
    /// also write the JSON plan to this file
    #[arg(short, value_name = "FILE")]
    pub o: Option<String>,
    /// write the predicted schedule as a Chrome/Perfetto trace (the format of `smelt run
    /// --profile-kernels FILE`, so predicted and measured lay side by side)
    #[arg(long, value_name = "FILE")]
    pub trace: Option<String>,
    /// fuse without substitutions (merged parallel products): vertical fusion and
    /// recognitions only
    #[arg(long)]
    pub no_algebra: bool,
}

/// `smelt plan`: the plan of `model` as a table or JSON, written where `args` say.
pub fn plan_command(model: &ModelSource, args: &PlanArgs) -> Result<String, Failure> {
    let options = PlanOptions {
        batch: args.batch,
        dtype: Dtype::parse(&args.dtype).map_err(fail)?,
        launch: LaunchMode::parse(&args.launch).map_err(fail)?,
        algebra: !args.no_algebra,
    };
    let (_, cleaned) = model.load_static()?;
    let p = plan_model(&cleaned, &args.target, &options).map_err(|e| Failure(format!("{}: error: {e}", model.path)))?;
    let text = serde_json::to_string_pretty(&to_json(&model.path, &p)).expect("serializable") + "\n";
    if let Some(path) = &args.o {
        crate::driver::write_output(path, &text)?;
    }
    if let Some(path) = &args.trace {
        crate::trace::write(
            path,
            p.kernels.iter().map(|k| crate::trace::Span {
                name: &k.pattern,
                node: &k.name,
                start_us: k.start_us,
                duration_us: k.predicted_us,
                predicted_us: k.predicted_us,
            }),
        )?;
    }
    Ok(if args.json { text } else { table(&model.path, &p) })
}

/// Fuses `cleaned` under `target`'s cost model (a shipped name or a .toml path) and plans both
/// the fused and the unfused module.
pub fn plan_model(cleaned: &Module, target_spec: &str, options: &PlanOptions) -> Result<Plan, String> {
    let target = Target::load(target_spec)?;
    let mut fused = cleaned.clone();
    let model: Arc<dyn CostModel> = Arc::new(Roofline { target: target.clone() });
    smelt_passes::run_one(&mut fused, &mut Fuse::new(model).algebra(options.algebra))
        .map_err(|ds| crate::driver::render(&SourceMap::default(), &ds))?;
    let unfused = plan(cleaned, &target, options)?;
    Ok(plan(&fused, &target, options)?.with_unfused(&unfused))
}

/// The `--json` object: the plan's keys and the model's name.
pub fn to_json(model: &str, p: &Plan) -> serde_json::Value {
    let mut value = serde_json::to_value(p).expect("serializable");
    value["model"] = serde_json::Value::String(model.to_string());
    value
}

/// The per-kernel table and totals a person reads.
pub fn table(model: &str, p: &Plan) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{model} on {} ({}), batch {}, {}, {} launches",
        p.target,
        p.kind,
        p.batch,
        p.dtype.name(),
        p.launch.name()
    );
    let _ = writeln!(
        out,
        "{:>4}  {:<28} {:<26} {:>5} {:<7} {:>9} {:>9} {:>7}  geometry",
        "#", "kernel", "pattern", "math", "bound", "start_us", "time_us", "util"
    );
    for k in &p.kernels {
        let _ = writeln!(
            out,
            "{:>4}  {:<28} {:<26} {:>5} {:<7} {:>9.2} {:>9.2} {:>6.1}%  {}",
            k.index,
            clip(&k.name, 28),
            clip(&k.pattern, 26),
            k.math,
            k.bound,
            k.start_us,
            k.predicted_us,
            k.utilization * 100.0,
            geometry(&k.geometry)
        );
    }
    let _ = writeln!(
        out,
        "latency      {:.3} ms fused ({} launches), serial {:.3} ms",
        p.predicted_latency_ms, p.launches, p.predicted_serial_ms
    );
    if let (Some(u), Some(n)) = (p.predicted_unfused_latency_ms, p.unfused_launches) {
        let _ = writeln!(out, "unfused      {u:.3} ms ({n} launches): fusion {:.2}x", u / p.predicted_latency_ms);
    }
    if let Some(d) = p.unfused_dram_bytes {
        let _ = writeln!(
            out,
            "traffic      {:.1} MB off-chip fused, {:.1} MB unfused",
            p.dram_bytes as f64 / 1e6,
            d as f64 / 1e6
        );
    }
    let _ = writeln!(
        out,
        "launch wait  {:.3} ms; utilization {:.1}%; energy {:.4} J{}",
        p.launch_overhead_ms,
        p.utilization * 100.0,
        p.energy_j,
        p.unfused_energy_j.map_or(String::new(), |e| format!(" ({e:.4} J unfused)"))
    );
    out
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let tail: String = s.chars().rev().take(n - 1).collect::<Vec<_>>().into_iter().rev().collect();
        format!("~{tail}")
    }
}

fn geometry(g: &Geometry) -> String {
    match g {
        Geometry::Gpu { grid, block, tile, split_k, ctas_per_sm, waves, sms, .. } => {
            let tile = tile.map_or(String::new(), |t| format!(" tile {}x{}x{}", t[0], t[1], t[2]));
            let split = if *split_k > 1 { format!(" split-k {split_k}") } else { String::new() };
            format!(
                "grid {}x{}x{} block {}{tile}{split} {ctas_per_sm} CTA/SM {waves} wave(s) {sms} SMs",
                grid[0], grid[1], grid[2], block[0]
            )
        }
        Geometry::Tpu { engine, mxus, weight_tiles, passes, padding_efficiency, fits_vmem, .. } => format!(
            "{engine} {mxus} MXUs {weight_tiles} weight tiles x{passes} pad-eff {:.0}%{}",
            padding_efficiency * 100.0,
            if *fits_vmem { "" } else { " streams (exceeds VMEM)" }
        ),
        Geometry::Kpu { tile_grid, tile, tiles, rounds, scratchpad_bytes, .. } => format!(
            "blocks {}x{} of {}x{} k-step {} on {tiles} tiles x{rounds} rounds, {} KiB scratchpad",
            tile_grid[0],
            tile_grid[1],
            tile[0],
            tile[1],
            tile[2],
            scratchpad_bytes / 1024
        ),
        Geometry::Cpu { threads, simd_lanes, register_tile, cache_blocks } => {
            let mut s = format!("{threads} thread(s) x{simd_lanes} lanes");
            if let Some([mr, nr]) = register_tile {
                s += &format!(" reg {mr}x{nr}");
            }
            if let Some([mc, nc, kc]) = cache_blocks {
                s += &format!(" blocks mc {mc} nc {nc} kc {kc}");
            }
            s
        }
    }
}
