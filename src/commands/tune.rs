//! `smelt tune`: the measured feedback loop. Measure the unfused ops, then repeatedly fuse under
//! the calibrated cost model, run, and record each kernel's measured time into the profile,
//! until the chosen kernels stop changing: the same kernels as the round before, or a choice
//! made only of kernels an earlier *fused* round measured (near-ties otherwise alternate
//! forever). The last round's predictions then rest on earlier measurements of its kernels in a
//! fused program, so its predicted-versus-measured comparison is out of sample. Measurements
//! from the unfused run do not count for that: there a kernel runs after different neighbours,
//! with different caches (ResNet-18's convolutions measured 8% apart).

use crate::measure::{measure, predictor, Measured};
use petgraph::unionfind::UnionFind;
use smelt_compiler::names;
use smelt_compiler::Module;
use smelt_hardware::profile::{FusionProfile, Profile};
use smelt_passes::cost::CostModel;
use smelt_passes::fuse::Fuse;
use smelt_runtime::Literal;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

pub struct Options<'a> {
    pub target: &'a str,
    pub profile: &'a Path,
    pub iters: usize,
    pub max_rounds: usize,
}

/// One extract -> run -> record round.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Round {
    pub round: usize,
    pub kernels: usize,
    pub predicted_ms: f64,
    pub measured_ms: f64,
    /// Kernels whose signature no earlier round ran.
    pub new_kernels: usize,
}

/// Nodes the roofline fused one way and the tuned model another.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Flip {
    pub roofline: String,
    pub tuned: String,
    /// How many places in the model made this change.
    pub count: usize,
    /// The roofline's kernels there, measured, in total.
    pub roofline_choice_us: f64,
    /// The tuned kernels there, measured, in total.
    pub tuned_choice_us: f64,
}

pub struct Tuned {
    pub rounds: Vec<Round>,
    pub converged: bool,
    /// The last round: predictions from earlier measurements beside fresh ones.
    pub last: Measured,
    pub flips: Vec<Flip>,
    /// The whole model as the roofline alone fused it, measured beside the tuned choice; only
    /// when some decision flipped.
    pub roofline_measured_ms: Option<f64>,
}

/// `module` fused under `model`: the same model that then predicts its kernels' times.
fn fused(module: &Module, model: &Arc<dyn CostModel>) -> Result<Module, String> {
    let mut m = module.clone();
    smelt_passes::run_one(&mut m, &mut Fuse::new(model.clone()))
        .map_err(|ds| ds.iter().map(|d| d.message.clone()).collect::<Vec<_>>().join("; "))?;
    Ok(m)
}

/// Records every kernel's time and, for each fused kernel whose parts were all measured alone,
/// the fused/unfused ratio as a fusion profile of its pattern: kernels of the same pattern at
/// other shapes are then priced by a measured ratio instead of the roofline's saving.
fn record(path: &Path, measured: &Measured, target: &str) -> Result<(), String> {
    Profile::update(path, |p| {
        p.label(target);
        for r in measured.records(target) {
            p.record_kernel(r);
        }
        for k in measured.kernels.iter().filter(|k| k.parts.len() > 1) {
            let alone: Option<Vec<f64>> = k
                .parts
                .iter()
                .map(|(_, sig)| {
                    p.kernel_records.iter().find(|r| &r.signature == sig && r.target == target).map(|r| r.measured_us)
                })
                .collect();
            let Some(alone) = alone else { continue };
            let unfused_us: f64 = alone.iter().sum();
            let mut extra = BTreeMap::new();
            extra.insert("signature".to_string(), serde_json::Value::from(k.signature.clone()));
            extra.insert("source".to_string(), serde_json::Value::from("smelt tune"));
            p.record_fusion(FusionProfile {
                fusion_pattern: k.pattern.clone(),
                operators: k.parts.iter().map(|(op, _)| op.clone()).collect(),
                num_operators: k.parts.len() as u32,
                unfused_latency_ms: unfused_us / 1e3,
                fused_latency_ms: k.measured_us / 1e3,
                unfused_memory_bytes: 0,
                fused_memory_bytes: k.bytes,
                speedup_factor: unfused_us / k.measured_us.max(f64::MIN_POSITIVE),
                flops: Some(k.flops),
                extra_params: extra,
                num_trials: measured.trials,
                ..FusionProfile::default()
            });
        }
    })
    .map_err(String::from)
}

fn calibrated(target: &str, path: &Path) -> Result<Arc<dyn CostModel>, String> {
    Ok(predictor(target, Some(&path.display().to_string()))?)
}

impl Tuned {
    /// The `--json` object `smelt tune` prints for `model` tuned into `profile`.
    pub fn to_json(&self, model: &str, profile: &str, threads: usize) -> serde_json::Value {
        let last = &self.last;
        serde_json::json!({
            "model": model,
            "profile": profile,
            "threads": threads,
            "rounds": self.rounds.len(),
            "converged": self.converged,
            "predicted_ms": last.predicted_ms(),
            "measured_ms": last.model_ms,
            "kernel_median_abs_error": last.kernel_median_error(),
            "model_abs_error": last.model_error(),
            "history": self.rounds,
            "kernels": last.kernels,
            "flips": self.flips,
            "roofline_measured_ms": self.roofline_measured_ms,
        })
    }
}

/// Tunes `module` (cleaned, unfused) on `inputs`, recording into `options.profile`;
/// `progress(done, total, what)` hears of each step (the unfused run, each round, the
/// comparison with the roofline's program).
pub fn tune(
    module: &Module,
    inputs: &[Literal],
    options: &Options,
    progress: &mut dyn FnMut(usize, usize, &str),
) -> Result<Tuned, String> {
    let target = options.target;
    let path = options.profile;
    let steps = options.max_rounds.max(1) + 2;
    // The unfused ops first: every candidate kernel's parts then have measured times.
    progress(0, steps, "measuring the unfused ops");
    let roofline = predictor(target, None)?;
    let unfused = measure(module.clone(), inputs, options.iters, Some(roofline.as_ref()))?;
    record(path, &unfused, target)?;

    let mut rounds = Vec::new();
    let mut seen: std::collections::HashSet<String> = unfused.kernels.iter().map(|k| k.signature.clone()).collect();
    let mut seen_fused: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut previous: Option<Vec<String>> = None;
    let mut converged = false;
    let mut last = None;
    for round in 1..=options.max_rounds.max(1) {
        progress(round, steps, &format!("round {round}: fuse, measure, record"));
        let model = calibrated(target, path)?;
        let m = fused(module, &model)?;
        let measured = measure(m, inputs, options.iters, Some(model.as_ref()))?;
        let mut signatures: Vec<String> = measured.kernels.iter().map(|k| k.signature.clone()).collect();
        signatures.sort();
        rounds.push(Round {
            round,
            kernels: measured.kernels.len(),
            predicted_ms: measured.predicted_ms(),
            measured_ms: measured.model_ms,
            new_kernels: signatures.iter().filter(|s| !seen.contains(*s)).count(),
        });
        let measured_fused_before = signatures.iter().all(|s| seen_fused.contains(s));
        seen.extend(signatures.iter().cloned());
        seen_fused.extend(signatures.iter().cloned());
        record(path, &measured, target)?;
        last = Some(measured);
        if previous.as_ref() == Some(&signatures) || measured_fused_before {
            converged = true;
            break;
        }
        previous = Some(signatures);
    }
    let last = last.expect("at least one round");
    progress(steps - 1, steps, "measuring the roofline's program beside the tuned one");
    let (flips, roofline_measured_ms) =
        flips(module, inputs, &roofline, calibrated(target, path)?, options.iters, &last)?;
    Ok(Tuned { rounds, converged, last, flips, roofline_measured_ms })
}

/// Where the tuned module's kernels differ from what the roofline alone would have chosen:
/// groups of kernels covering the same ONNX nodes, compared as wholes. Where any differ, the
/// roofline's module is run too, so both sides of every flip are measurements; its whole-run
/// median is returned beside them.
fn flips(
    module: &Module,
    inputs: &[Literal],
    roofline: &Arc<dyn CostModel>,
    model: Arc<dyn CostModel>,
    iters: usize,
    tuned: &Measured,
) -> Result<(Vec<Flip>, Option<f64>), String> {
    let roofline_module = fused(module, roofline)?;
    let m = &roofline_module;
    let func = smelt_compiler::signature::main_function(m)?;
    let entry = m.body_of(func);
    // (position in the body, pattern, nodes covered, time).
    let mut chosen: Vec<(usize, String, Vec<String>, f64)> = Vec::new();
    for (index, op) in m.block_ops(entry).enumerate() {
        let o = m.op(op);
        if matches!(o.name(), names::RETURN | names::CONSTANT) || o.def.is_view() {
            continue;
        }
        let pattern = o.attr("pattern").and_then(|p| p.as_str()).map(str::to_string);
        let pattern = pattern.unwrap_or_else(|| o.name().trim_start_matches("smelt.").to_string());
        chosen.push((index, pattern, nodes(&smelt_runtime::exec::label_of(&o.loc)), 0.0));
    }
    let tuned_kernels: Vec<(usize, String, Vec<String>, f64)> =
        tuned.kernels.iter().map(|k| (k.index, k.pattern.clone(), nodes(&k.label), k.measured_us)).collect();

    // Both sides' kernels joined into groups through the nodes they cover.
    let n = chosen.len();
    let mut groups_of = UnionFind::<usize>::new(n + tuned_kernels.len());
    let mut owner: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, (_, _, ns, _)) in chosen.iter().enumerate().chain(tuned_kernels.iter().enumerate().map(|(j, k)| (n + j, k)))
    {
        for node in ns {
            match owner.get(node.as_str()) {
                Some(&o) => {
                    groups_of.union(o, i);
                }
                None => {
                    owner.insert(node, i);
                }
            }
        }
    }
    let mut groups: BTreeMap<usize, (Vec<usize>, Vec<usize>)> = BTreeMap::new();
    for i in 0..n + tuned_kernels.len() {
        let g = groups.entry(groups_of.find_mut(i)).or_default();
        if i < n {
            g.0.push(i);
        } else {
            g.1.push(i - n);
        }
    }
    let names = |ids: &[usize], side: &[(usize, String, Vec<String>, f64)]| {
        ids.iter().map(|&i| side[i].1.clone()).collect::<Vec<_>>().join(" + ")
    };
    let differing: Vec<&(Vec<usize>, Vec<usize>)> = groups
        .values()
        .filter(|(r, t)| !r.is_empty() && !t.is_empty() && names(r, &chosen) != names(t, &tuned_kernels))
        .collect();
    if differing.is_empty() {
        return Ok((Vec::new(), None));
    }
    let measured = measure(roofline_module.clone(), inputs, iters, Some(model.as_ref()))?;
    for k in &measured.kernels {
        if let Some(c) = chosen.iter_mut().find(|c| c.0 == k.index) {
            c.3 = k.measured_us;
        }
    }
    let mut flips: BTreeMap<(String, String), Flip> = BTreeMap::new();
    for (r, t) in differing {
        let (before, after) = (names(r, &chosen), names(t, &tuned_kernels));
        let f = flips.entry((before.clone(), after.clone())).or_insert(Flip {
            roofline: before,
            tuned: after,
            count: 0,
            roofline_choice_us: 0.0,
            tuned_choice_us: 0.0,
        });
        f.count += 1;
        f.roofline_choice_us += r.iter().map(|&i| chosen[i].3).sum::<f64>();
        f.tuned_choice_us += t.iter().map(|&j| tuned_kernels[j].3).sum::<f64>();
    }
    Ok((flips.into_values().collect(), Some(measured.model_ms)))
}

fn nodes(label: &str) -> Vec<String> {
    label.split('+').filter(|n| !n.is_empty()).map(str::to_string).collect()
}
