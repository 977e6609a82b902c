//! `smelt tune`: the measured feedback loop, in two phases.
//!
//! *Explore.* Measure the unfused ops, then repeatedly fuse under the calibrated cost model,
//! run, and record each kernel's time into the profile, until the chosen kernels stop
//! changing: the same kernels as the round before, or a choice made only of kernels an earlier
//! *fused* round measured (near-ties otherwise alternate forever).
//!
//! *Decide.* Exploration prices kernels measured in different programs: a kernel runs after
//! other neighbours, with other caches, and ResNet-18's convolutions measured 8% apart that
//! way, more than most fusion decisions are worth. So wherever the explored choice differs
//! from the roofline's, the two are compared in context: the roofline's program and the
//! candidate run in alternation with every step timed, and each differing choice (all its
//! places together) is compared round by round, as [`smelt_hardware::stats`] decides. It flips
//! only when the candidate's kernels are faster beyond their noise floor; otherwise the
//! profile records that the roofline's kernels stay. Last,
//! the whole tuned program and the roofline's run in alternation; if the tuned one is slower
//! beyond the noise floor, every flip is undone. A profile with decisions chooses as the
//! roofline does except where a decision flipped ([`smelt_passes::cost::Calibrated`]), so it
//! fuses exactly the program that was compared, whatever else it records.

use crate::measure::{explorer, measure, predictor, Measured};
use petgraph::unionfind::UnionFind;
use smelt_compiler::names;
use smelt_compiler::Module;
use smelt_hardware::profile::{DecidedKernel, FusionDecision, FusionProfile, Profile};
use smelt_hardware::stats::{self, Comparison, Interval};
use smelt_passes::cost::CostModel;
use smelt_passes::fuse::Fuse;
use smelt_passes::work::work_of;
use smelt_runtime::exec::{EncodedInputs, Executable};
use smelt_runtime::Literal;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Seconds of alternating runs `tune` gives its decisions unless told otherwise.
pub const DEFAULT_BUDGET_S: f64 = 30.0;

pub struct Options<'a> {
    pub target: &'a str,
    pub profile: &'a Path,
    pub iters: usize,
    pub max_rounds: usize,
    /// Seconds of alternating runs the decisions may take, in all.
    pub budget_s: f64,
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

/// A fusion decision as `tune` reports it: where the roofline chose some kernels and the
/// measurements others, both measured in the same program.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Flip {
    pub roofline: String,
    pub tuned: String,
    /// How many places in the model had this choice.
    pub count: usize,
    /// Whether the tuned kernels replaced the roofline's.
    pub flipped: bool,
    /// The roofline's kernels there, all places together, median over the rounds.
    pub roofline_choice_us: f64,
    /// The tuned kernels there, likewise.
    pub tuned_choice_us: f64,
    pub roofline_choice_ci: Option<Interval>,
    pub tuned_choice_ci: Option<Interval>,
    /// Tuned over roofline, round by round.
    pub ratio_ci: Option<Interval>,
    pub noise_floor: f64,
    pub rounds: u32,
    /// Why the decision came out this way.
    pub reason: String,
}

/// The tuned program against the roofline's, whole runs in alternation.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Acceptance {
    pub comparison: Comparison,
    /// Of the roofline's whole runs (an A/A comparison of consecutive runs).
    pub noise_floor: f64,
    pub rounds: usize,
    /// Why the flips were undone: together they measured slower than the roofline's program,
    /// or fused a program that differs from it where nothing was measured.
    pub undone: Option<String>,
    /// Places where the tuned program still differs from the roofline's without a flipped
    /// decision saying it should.
    pub unsettled: usize,
    /// The tuned program runs the roofline's kernels: the comparison is an A/A one, and what
    /// it shows is the noise between two compilations.
    pub identical: bool,
}

pub struct Tuned {
    pub rounds: Vec<Round>,
    /// Exploration reached a fixed point (see the module documentation).
    pub explored: bool,
    /// The tuned program: predictions from the profile beside fresh measurements.
    pub last: Measured,
    /// Every decision this run measured, flipped or not.
    pub decisions: Vec<Flip>,
    pub acceptance: Acceptance,
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
    /// Every difference from the roofline's program is a flip measured faster in context
    /// (none, where the flips were undone).
    pub fn converged(&self) -> bool {
        self.acceptance.unsettled == 0
    }

    /// The flips that stand.
    pub fn flips(&self) -> impl Iterator<Item = &Flip> {
        self.decisions.iter().filter(|d| d.flipped)
    }

    /// The `--json` object `smelt tune` prints for `model` tuned into `profile`.
    pub fn to_json(&self, model: &str, profile: &str, threads: usize) -> serde_json::Value {
        let last = &self.last;
        let a = &self.acceptance;
        let ms = |i: &Interval| i.scaled(1e-3);
        serde_json::json!({
            "model": model,
            "profile": profile,
            "threads": threads,
            "rounds": self.rounds.len(),
            "converged": self.converged(),
            "explored_to_fixed_point": self.explored,
            "unsettled_places": self.acceptance.unsettled,
            "predicted_ms": last.predicted_ms(),
            "measured_ms": a.comparison.candidate.median / 1e3,
            "measured_ci": ms(&a.comparison.candidate),
            "roofline_measured_ms": a.comparison.default.median / 1e3,
            "roofline_measured_ci": ms(&a.comparison.default),
            "ratio_ci": a.comparison.ratio,
            "noise_floor": a.noise_floor,
            "acceptance_rounds": a.rounds,
            "flips_undone": a.undone,
            "same_as_roofline": a.identical,
            "kernel_median_abs_error": last.kernel_median_error(),
            "model_abs_error": last.model_error(),
            "history": self.rounds,
            "kernels": last.kernels,
            "flips": self.flips().collect::<Vec<_>>(),
            "within_noise": self.decisions.iter().filter(|d| !d.flipped).collect::<Vec<_>>(),
        })
    }
}

/// Tunes `module` (cleaned, unfused) on `inputs`, recording into `options.profile`;
/// `progress(done, total, what)` hears of each step (the unfused run, each round, the
/// decisions, the comparison with the roofline's program).
pub fn tune(
    module: &Module,
    inputs: &[Literal],
    options: &Options,
    progress: &mut dyn FnMut(usize, usize, &str),
) -> Result<Tuned, String> {
    let target = options.target;
    // Records and decisions are labelled by the target's name, as the cost model looks them up
    // (`--target` may be a .toml path).
    let name = smelt_hardware::target::Target::load(target).map_err(String::from)?.name;
    let name = name.as_str();
    let path = options.profile;
    let steps = options.max_rounds.max(1) + 3;
    // The unfused ops first: every candidate kernel's parts then have measured times.
    progress(0, steps, "measuring the unfused ops");
    let roofline = predictor(target, None)?;
    let unfused = measure(module.clone(), inputs, options.iters, Some(roofline.as_ref()))?;
    record(path, &unfused, name)?;

    let mut rounds = Vec::new();
    let mut seen: std::collections::HashSet<String> = unfused.kernels.iter().map(|k| k.signature.clone()).collect();
    let mut seen_fused: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut previous: Option<Vec<String>> = None;
    let mut converged = false;
    // Every distinct program exploration chose: each one's differences from the roofline's
    // are decided below.
    let mut proposals: Vec<(Vec<String>, Module)> = Vec::new();
    for round in 1..=options.max_rounds.max(1) {
        progress(round, steps, &format!("round {round}: fuse, measure, record"));
        let model = explorer(target, path)?;
        let m = fused(module, &model)?;
        let measured = measure(m.clone(), inputs, options.iters, Some(model.as_ref()))?;
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
        record(path, &measured, name)?;
        if !proposals.iter().any(|(s, _)| *s == signatures) {
            proposals.push((signatures.clone(), m));
        }
        if previous.as_ref() == Some(&signatures) || measured_fused_before {
            converged = true;
            break;
        }
        previous = Some(signatures);
    }

    progress(steps - 2, steps, "deciding in context: the roofline's kernels against the explored ones");
    let roofline_module = fused(module, &roofline)?;
    let mut baseline = Baseline {
        original: Program::new(roofline_module.clone(), inputs)?,
        copy: Program::new(roofline_module, inputs)?,
    };
    let mut budget = Budget { left_s: options.budget_s, sessions_left: proposals.len() + SETTLING_PASSES + 1 };
    let mut decisions = Vec::new();
    // The latest proposals first: they rest on the most measurements.
    for (_, proposal) in proposals.into_iter().rev() {
        decisions.extend(decide(proposal, inputs, &mut baseline, name, path, &mut budget)?);
    }
    settle(path, name, &mut decisions)?;
    // Flips together can open a choice no proposal had (a pinned kernel next to a refused
    // one): the program the decisions fuse is a proposal too.
    for _ in 0..SETTLING_PASSES {
        let settled = fused(module, &calibrated(target, path)?)?;
        let before = decisions.len();
        decisions.extend(decide(settled, inputs, &mut baseline, name, path, &mut budget)?);
        if decisions.len() == before {
            break;
        }
        settle(path, name, &mut decisions)?;
    }

    progress(steps - 1, steps, "measuring the tuned program beside the roofline's");
    let mut acceptance = accept(module, inputs, &mut baseline, (target, name), path, &mut budget)?;
    if let Some(why) = acceptance.undone.clone() {
        Profile::update(path, |p| {
            for d in p.fusion_decisions.iter_mut().filter(|d| d.target == name && d.flipped) {
                d.flipped = false;
                d.unknown.insert("reason".into(), serde_json::Value::from(why.as_str()));
            }
        })
        .map_err(String::from)?;
        for d in decisions.iter_mut().filter(|d| d.flipped) {
            d.flipped = false;
            d.reason = why.clone();
        }
        let after = accept(module, inputs, &mut baseline, (target, name), path, &mut budget)?;
        acceptance = Acceptance { undone: Some(why), ..after };
    }
    let model = calibrated(target, path)?;
    let last = measure(fused(module, &model)?, inputs, options.iters, Some(model.as_ref()))?;
    // Under decisions the roofline and the flips choose, so more measurements price the
    // program's kernels without changing it; without any, they could.
    if !decisions.is_empty() {
        record(path, &last, name)?;
    }
    Ok(Tuned { rounds, explored: converged, last, decisions, acceptance })
}

/// Comparisons of the program the decisions fuse, for choices the flips opened.
const SETTLING_PASSES: usize = 2;

/// Alternating rounds per comparison, at least and at most.
const MIN_ROUNDS: usize = 20;
const MAX_ROUNDS: usize = 400;

/// What is left of `--budget`, shared out over the comparisons still to come.
struct Budget {
    left_s: f64,
    sessions_left: usize,
}

impl Budget {
    fn next_session(&mut self) -> f64 {
        let share = self.left_s / self.sessions_left.max(1) as f64;
        self.sessions_left = self.sessions_left.saturating_sub(1);
        share
    }

    fn spend(&mut self, seconds: f64) {
        self.left_s = (self.left_s - seconds).max(0.0);
    }
}

/// A compiled program with its inputs bound, and what each of its executed ops is.
struct Program {
    exe: Executable,
    inputs: EncodedInputs,
    placed: Vec<Placed>,
}

/// An executed op (a kernel or an op left unfused) as decisions name it.
struct Placed {
    /// Position in `@main`'s body.
    index: usize,
    nodes: Vec<String>,
    kernel: DecidedKernel,
}

impl Program {
    fn new(module: Module, inputs: &[Literal]) -> Result<Program, String> {
        let placed = placed(&module)?;
        let exe = Executable::compile(module)?;
        let inputs = exe.encode_inputs(inputs)?;
        Ok(Program { exe, inputs, placed })
    }

    /// One run with every step timed: the time of each placed op (in `placed` order) and
    /// of the whole run, in microseconds.
    fn timed_run(&mut self) -> Result<(Vec<f64>, f64), String> {
        let run = self.exe.profile_run(&self.inputs)?;
        let position: BTreeMap<usize, usize> = self.placed.iter().enumerate().map(|(i, p)| (p.index, i)).collect();
        let mut per_op = vec![0.0; self.placed.len()];
        for (info, t) in self.exe.steps().zip(&run.step_us) {
            if let Some(&i) = position.get(&info.op_index) {
                per_op[i] += t;
            }
        }
        Ok((per_op, run.total_us))
    }

    fn run(&mut self) -> Result<f64, String> {
        let t = std::time::Instant::now();
        self.exe.run_encoded(&self.inputs)?;
        Ok(t.elapsed().as_secs_f64() * 1e6)
    }
}

fn placed(m: &Module) -> Result<Vec<Placed>, String> {
    let func = smelt_compiler::signature::main_function(m)?;
    let entry = m.body_of(func);
    let mut placed = Vec::new();
    for (index, op) in m.block_ops(entry).enumerate() {
        let o = m.op(op);
        if matches!(o.name(), names::RETURN | names::CONSTANT) || o.def.is_view() {
            continue;
        }
        let work = work_of(m, op);
        let pattern = o.attr("pattern").and_then(|p| p.as_str()).map(str::to_string);
        let pattern = pattern.unwrap_or_else(|| o.name().trim_start_matches("smelt.").to_string());
        let label = smelt_runtime::exec::label_of(&o.loc);
        placed.push(Placed {
            index,
            nodes: label.split('+').filter(|n| !n.is_empty()).map(str::to_string).collect(),
            kernel: DecidedKernel { pattern, fused: !work.parts.is_empty(), signature: work.signature },
        });
    }
    Ok(placed)
}

/// A choice on which two programs differ, wherever it occurs: for each place, the placed ops
/// of each side that cover the same ONNX nodes.
struct Choice {
    decision: FusionDecision,
    places: Vec<(Vec<usize>, Vec<usize>)>,
}

/// Where `tuned` chose other kernels than `roofline`: places are the smallest groups of both
/// sides' ops that cover the same nodes; places with the same kernels on each side are one
/// choice.
fn choices(roofline: &[Placed], tuned: &[Placed], target: &str) -> Vec<Choice> {
    let n = roofline.len();
    let mut groups_of = UnionFind::<usize>::new(n + tuned.len());
    let mut owner: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, p) in roofline.iter().enumerate().chain(tuned.iter().enumerate().map(|(j, p)| (n + j, p))) {
        for node in &p.nodes {
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
    let mut places: BTreeMap<usize, (Vec<usize>, Vec<usize>)> = BTreeMap::new();
    for i in 0..n + tuned.len() {
        let place = places.entry(groups_of.find_mut(i)).or_default();
        if i < n {
            place.0.push(i);
        } else {
            place.1.push(i - n);
        }
    }
    let kernels = |ids: &[usize], side: &[Placed]| {
        let mut ks: Vec<DecidedKernel> = ids.iter().map(|&i| side[i].kernel.clone()).collect();
        ks.sort_by(|a, b| (&a.signature, &a.pattern).cmp(&(&b.signature, &b.pattern)));
        ks
    };
    let mut choices: Vec<Choice> = Vec::new();
    for (r, t) in places.into_values() {
        let (rk, tk) = (kernels(&r, roofline), kernels(&t, tuned));
        if r.is_empty() || t.is_empty() || rk == tk {
            continue;
        }
        let decision = FusionDecision { target: target.to_string(), roofline: rk, tuned: tk, ..Default::default() };
        match choices.iter_mut().find(|c| c.decision.same_choice(&decision)) {
            Some(c) => c.places.push((r, t)),
            None => choices.push(Choice { decision, places: vec![(r, t)] }),
        }
    }
    choices
}

/// Compares, in context, every choice on which `proposal` differs from the roofline's program
/// and the profile has not decided, and records the decisions.
fn decide(
    proposal: Module,
    inputs: &[Literal],
    baseline: &mut Baseline,
    name: &str,
    path: &Path,
    budget: &mut Budget,
) -> Result<Vec<Flip>, String> {
    let session_s = budget.next_session();
    let decided = Profile::load(path).map_err(String::from)?.fusion_decisions;
    let proposal_placed = placed(&proposal)?;
    let open: Vec<Choice> = choices(&baseline.original.placed, &proposal_placed, name)
        .into_iter()
        .filter(|c| !decided.iter().any(|d| d.same_choice(&c.decision)))
        .collect();
    if open.is_empty() {
        return Ok(Vec::new());
    }
    let started = std::time::Instant::now();
    let mut tuned = Program::new(proposal, inputs)?;
    // Per program (the roofline's, its copy, the proposal), per round: each op's time.
    let times = baseline.alongside(&mut tuned, session_s, |p| Ok(p.timed_run()?.0))?;
    budget.spend(started.elapsed().as_secs_f64());
    let mut flips = Vec::new();
    for choice in open {
        let mut d = choice.decision.clone();
        let (roofline_ops, tuned_ops) = regions(&choice, &baseline.original.placed, &proposal_placed);
        let sum = |runs: &[Vec<f64>], ops: &[usize]| -> Vec<f64> {
            runs.iter().map(|run| ops.iter().map(|&i| run[i]).sum()).collect()
        };
        let roofline = sum(&times[0], &roofline_ops);
        let copy = sum(&times[1], &roofline_ops);
        let tuned = sum(&times[2], &tuned_ops);
        let c = Comparison::of(&roofline, &tuned);
        d.noise_floor = stats::noise_floor(&roofline, &copy);
        d.flipped = c.replaces_default(d.noise_floor);
        d.roofline_us = Some(c.default);
        d.tuned_us = Some(c.candidate);
        d.ratio = Some(c.ratio);
        d.rounds = roofline.len() as u32;
        let reason = if d.flipped {
            "flipped: faster beyond the noise floor"
        } else if c.slower_than_default(d.noise_floor) {
            "kept: the tuned kernels measured slower"
        } else {
            "kept: within noise"
        };
        d.unknown.insert("reason".into(), serde_json::Value::from(reason));
        flips.push(report(&d, choice.places.len(), reason.to_string()));
        Profile::update(path, |p| p.record_decision(d)).map_err(String::from)?;
    }
    Ok(flips)
}

/// Where two flipped decisions replace the same roofline kernels by different ones, only the
/// faster stays flipped.
fn settle(path: &Path, target: &str, decisions: &mut [Flip]) -> Result<(), String> {
    const BEATEN: &str = "kept: another alternative there measured faster";
    let beaten: Vec<FusionDecision> = Profile::update(path, |p| {
        let flipped: Vec<FusionDecision> =
            p.fusion_decisions.iter().filter(|d| d.target == target && d.flipped).cloned().collect();
        let ratio = |d: &FusionDecision| d.ratio.map_or(f64::INFINITY, |r| r.median);
        let beaten: Vec<FusionDecision> = flipped
            .iter()
            .filter(|d| flipped.iter().any(|o| o.roofline == d.roofline && o.tuned != d.tuned && ratio(o) < ratio(d)))
            .cloned()
            .collect();
        for d in p.fusion_decisions.iter_mut().filter(|d| beaten.iter().any(|b| b.same_choice(d))) {
            d.flipped = false;
            d.unknown.insert("reason".into(), serde_json::Value::from(BEATEN));
        }
        beaten
    })
    .map_err(String::from)?;
    for b in &beaten {
        let r = report(b, 0, String::new());
        for d in decisions.iter_mut().filter(|d| d.flipped && d.roofline == r.roofline && d.tuned == r.tuned) {
            d.flipped = false;
            d.reason = BEATEN.to_string();
        }
    }
    Ok(())
}

fn report(d: &FusionDecision, count: usize, reason: String) -> Flip {
    let names = |ks: &[DecidedKernel]| ks.iter().map(|k| k.pattern.clone()).collect::<Vec<_>>().join(" + ");
    Flip {
        roofline: names(&d.roofline),
        tuned: names(&d.tuned),
        count,
        flipped: d.flipped,
        roofline_choice_us: d.roofline_us.map_or(0.0, |i| i.median),
        tuned_choice_us: d.tuned_us.map_or(0.0, |i| i.median),
        roofline_choice_ci: d.roofline_us,
        tuned_choice_ci: d.tuned_us,
        ratio_ci: d.ratio,
        noise_floor: d.noise_floor,
        rounds: d.rounds,
        reason,
    }
}

/// The program the profile now fuses against the roofline's, whole runs in alternation.
fn accept(
    module: &Module,
    inputs: &[Literal],
    baseline: &mut Baseline,
    (target, name): (&str, &str),
    path: &Path,
    budget: &mut Budget,
) -> Result<Acceptance, String> {
    let started = std::time::Instant::now();
    let session_s = budget.next_session();
    let mut tuned = Program::new(fused(module, &calibrated(target, path)?)?, inputs)?;
    let times = baseline.alongside(&mut tuned, session_s, Program::run)?;
    let count = times[0].len();
    budget.spend(started.elapsed().as_secs_f64());
    let comparison = Comparison::of(&times[0], &times[2]);
    let noise_floor = stats::noise_floor(&times[0], &times[1]);
    let differing = choices(&baseline.original.placed, &tuned.placed, name);
    let flipped = Profile::load(path).map_err(String::from)?.fusion_decisions;
    let unsettled = differing
        .iter()
        .filter(|c| !flipped.iter().any(|d| d.flipped && d.same_choice(&c.decision)))
        .map(|c| c.places.len())
        .sum();
    let undone = if differing.is_empty() {
        None
    } else if comparison.ratio.median > 1.0 + noise_floor {
        Some("undone: the tuned program measured slower than the roofline's as a whole".to_string())
    } else if unsettled > 0 {
        Some(format!("undone: the flips together fused {unsettled} places that were not measured"))
    } else {
        None
    };
    Ok(Acceptance { comparison, noise_floor, rounds: count, undone, unsettled, identical: differing.is_empty() })
}

/// The ops a choice's time is summed over, on each side: its places, and the op right after
/// each place where both programs run the same one there. That op reads what the place
/// wrote, and how the place left the caches shows in its time.
fn regions(choice: &Choice, roofline: &[Placed], tuned: &[Placed]) -> (Vec<usize>, Vec<usize>) {
    let (mut r_ops, mut t_ops) = (Vec::new(), Vec::new());
    for (r, t) in &choice.places {
        r_ops.extend(r);
        t_ops.extend(t);
        let next = |ids: &[usize], side: &[Placed]| ids.iter().max().map(|&i| i + 1).filter(|&i| i < side.len());
        if let (Some(nr), Some(nt)) = (next(r, roofline), next(t, tuned)) {
            if roofline[nr].nodes == tuned[nt].nodes && roofline[nr].kernel == tuned[nt].kernel {
                r_ops.push(nr);
                t_ops.push(nt);
            }
        }
    }
    (r_ops, t_ops)
}

/// The roofline's program, compiled twice: alternating the two copies measures the noise
/// floor, placement effects included.
struct Baseline {
    original: Program,
    copy: Program,
}

impl Baseline {
    /// Runs the roofline's program, its copy and `tuned` in alternation, as many rounds as
    /// `budget_s` buys (a warm-up round says how many), the order turning each round so no
    /// program always runs after the same one; `measure` runs one and says what it measured.
    /// Returns the three programs' measurements, round by round.
    fn alongside<T>(
        &mut self,
        tuned: &mut Program,
        budget_s: f64,
        mut measure: impl FnMut(&mut Program) -> Result<T, String>,
    ) -> Result<[Vec<T>; 3], String> {
        let warm = std::time::Instant::now();
        for program in [&mut self.original, &mut self.copy, &mut *tuned] {
            measure(program)?;
        }
        let count = stats::rounds_within(budget_s, warm.elapsed().as_secs_f64(), MIN_ROUNDS, MAX_ROUNDS);
        let mut times: [Vec<T>; 3] = [Vec::with_capacity(count), Vec::with_capacity(count), Vec::with_capacity(count)];
        for round in 0..count {
            for k in 0..3 {
                let which = (round + k) % 3;
                let program = match which {
                    0 => &mut self.original,
                    1 => &mut self.copy,
                    _ => &mut *tuned,
                };
                times[which].push(measure(program)?);
            }
        }
        Ok(times)
    }
}
