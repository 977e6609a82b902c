//! `fuse`: chooses kernel boundaries by equality saturation (see [`crate::fusion`]) under a
//! cost model — the roofline of `target`, refined by measurements from `cost-profile` — and
//! rewrites each function into `smelt.kernel` regions and the ops left unfused. Constant
//! expressions the rewrites introduce (folded BatchNorm weights) are evaluated afterwards.

use crate::cost::{self, CostModel};
use crate::fusion::{Limits, Program, Stats};
use crate::{Diagnostic, Pass};
use smelt_compiler::target::Target;
use smelt_compiler::{Location, Module};
use std::time::Duration;

pub struct Fuse {
    pub target: String,
    /// A calibration profile (JSON); empty for the roofline model alone.
    pub cost_profile: String,
    pub limits: Limits,
    /// Also price a tree extractor's choice, for comparison (`Stats::tree_extraction_ms`).
    pub compare_extractors: bool,
    /// What the last run did, one entry per function.
    pub stats: Vec<Stats>,
    pub notes: Vec<String>,
}

impl Default for Fuse {
    fn default() -> Self {
        Fuse {
            target: "host".into(),
            cost_profile: String::new(),
            limits: Limits::default(),
            compare_extractors: false,
            stats: Vec::new(),
            notes: Vec::new(),
        }
    }
}

pub const OPTIONS: &[crate::registry::PassOption] = &[
    crate::registry::PassOption {
        name: "target",
        help: "target description: a shipped name or a .toml path",
        default: "host",
    },
    crate::registry::PassOption {
        name: "cost-profile",
        help: "calibration profile (JSON) whose measurements refine the roofline",
        default: "",
    },
    crate::registry::PassOption { name: "max-iterations", help: "equality saturation iterations", default: "12" },
    crate::registry::PassOption { name: "max-nodes", help: "e-graph node limit", default: "200000" },
    crate::registry::PassOption {
        name: "time-limit-ms",
        help: "saturation time limit (a safety net)",
        default: "10000",
    },
];

impl Fuse {
    pub fn from_options(o: &crate::registry::Options) -> Result<Fuse, String> {
        Ok(Fuse {
            target: o.get(OPTIONS, "target")?,
            cost_profile: o.get(OPTIONS, "cost-profile")?,
            limits: Limits {
                iterations: o.get(OPTIONS, "max-iterations")?,
                nodes: o.get(OPTIONS, "max-nodes")?,
                time: Duration::from_millis(o.get(OPTIONS, "time-limit-ms")?),
                ..Limits::default()
            },
            ..Fuse::default()
        })
    }

    pub fn model(&self) -> Result<Box<dyn CostModel>, String> {
        cost::model(Target::load(&self.target)?, (!self.cost_profile.is_empty()).then_some(self.cost_profile.as_str()))
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
        let model = self.model().map_err(|e| Diagnostic::error(Location::Unknown, e))?;
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
