//! `fuse`: chooses kernel boundaries by equality saturation (see [`crate::fusion`]) under a
//! cost model — the roofline of `target`, refined by measurements from `cost-profile` — and
//! rewrites each function into `smelt.kernel` regions and the ops left unfused. Constant
//! expressions the rewrites introduce (folded BatchNorm weights) are evaluated afterwards.

use crate::cost::{self, CostModel, Roofline};
use crate::fusion::{Limits, Program, Stats};
use crate::options::{Options, PassOption};
use crate::{Diagnostic, Pass};
use smelt_compiler::Module;
use smelt_hardware::target::Target;
use std::sync::Arc;
use std::time::Duration;

pub struct Fuse {
    /// What kernels cost: the target's roofline, refined by a calibration profile.
    pub model: Arc<dyn CostModel>,
    pub limits: Limits,
    /// Also price a tree extractor's choice, for comparison (`Stats::tree_extraction_ms`).
    pub compare_extractors: bool,
    /// What the last run did, one entry per function.
    pub stats: Vec<Stats>,
    pub notes: Vec<String>,
}

impl Fuse {
    /// Fusion under `model`, with the default search limits.
    pub fn new(model: Arc<dyn CostModel>) -> Fuse {
        Fuse { model, limits: Limits::default(), compare_extractors: false, stats: Vec::new(), notes: Vec::new() }
    }
}

impl Fuse {
    /// With `false`, vertical fusion and recognitions only (`fuse{algebra=false}`).
    pub fn algebra(mut self, on: bool) -> Fuse {
        self.limits.algebra = on;
        self
    }
}

impl Default for Fuse {
    /// The roofline of the `host` target.
    fn default() -> Self {
        Fuse::new(Arc::new(Roofline { target: Target::host() }))
    }
}

pub const OPTIONS: &[PassOption] = &[
    PassOption { name: "target", help: "target description: a shipped name or a .toml path", default: "host" },
    PassOption {
        name: "cost-profile",
        help: "calibration profile (JSON) whose measurements refine the roofline",
        default: "",
    },
    PassOption { name: "max-iterations", help: "equality saturation iterations", default: "12" },
    PassOption { name: "max-nodes", help: "e-graph node limit", default: "200000" },
    PassOption { name: "time-limit-ms", help: "saturation time limit (a safety net)", default: "10000" },
    PassOption {
        name: "algebra",
        help: "also substitute which ops run (merge parallel products); false: vertical fusion and recognitions only",
        default: "true",
    },
];

impl Fuse {
    /// Parses the pass options: the only place a cost model is built from names.
    pub fn from_options(o: &Options) -> Result<Fuse, String> {
        let target = Target::load(&o.get::<String>(OPTIONS, "target")?)?;
        let profile: String = o.get(OPTIONS, "cost-profile")?;
        let model = cost::model(target, (!profile.is_empty()).then_some(profile.as_str()))?;
        Ok(Fuse {
            limits: Limits {
                iterations: o.get(OPTIONS, "max-iterations")?,
                nodes: o.get(OPTIONS, "max-nodes")?,
                time: Duration::from_millis(o.get(OPTIONS, "time-limit-ms")?),
                algebra: o.get(OPTIONS, "algebra")?,
                ..Limits::default()
            },
            ..Fuse::new(model)
        })
    }
}

impl Pass for Fuse {
    fn name(&self) -> &'static str {
        "fuse"
    }

    fn remarks(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
    }

    fn run(&mut self, m: &mut Module) -> Result<(), Diagnostic> {
        let model = self.model.clone();
        self.stats.clear();
        for func in m.functions() {
            let mut stats = Stats::default();
            let mut program = Program::from_function(m, func)?;
            program.saturate(&self.limits, &mut stats);
            let extraction = program.extract(model.as_ref(), self.compare_extractors, &mut stats);
            program.rebuild(m, &extraction, Some(model.as_ref()))?;
            self.stats.push(stats);
        }
        self.notes = model.notes();
        // Folded BatchNorm weights are constant expressions until evaluated.
        crate::fold::fold_pass().run(m)
    }
}
