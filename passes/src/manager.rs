//! The pass manager: runs passes in order with MLIR-style instrumentation — verification after
//! each pass, IR printing before/after chosen passes, and a wall-time report.

use crate::{Diagnostic, Pass};
use smelt_compiler::printer::{print_module, PrintOptions};
use smelt_compiler::verifier::verify;
use smelt_compiler::Module;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct PassManagerOptions {
    pub verify_each: bool,
    pub print_ir_after_all: bool,
    pub print_ir_before_all: bool,
    pub print_ir_before: Vec<String>,
    pub print_ir_after: Vec<String>,
    pub timing: bool,
    pub print: PrintOptions,
}

impl Default for PassManagerOptions {
    fn default() -> Self {
        PassManagerOptions {
            verify_each: true,
            print_ir_after_all: false,
            print_ir_before_all: false,
            print_ir_before: Vec::new(),
            print_ir_after: Vec::new(),
            timing: false,
            print: PrintOptions::default(),
        }
    }
}

#[derive(Default)]
pub struct PassManager {
    passes: Vec<Box<dyn Pass>>,
    pub options: PassManagerOptions,
    /// Wall time per pass run, filled by `run`.
    pub timings: Vec<(&'static str, Duration)>,
}

impl PassManager {
    pub fn new(options: PassManagerOptions) -> Self {
        PassManager { passes: Vec::new(), options, timings: Vec::new() }
    }

    pub fn add(&mut self, pass: Box<dyn Pass>) {
        self.passes.push(pass);
    }

    pub fn is_empty(&self) -> bool {
        self.passes.is_empty()
    }

    /// Runs every pass; instrumentation output (IR dumps) goes to `log`.
    pub fn run(&mut self, m: &mut Module, log: &mut dyn std::io::Write) -> Result<(), Vec<Diagnostic>> {
        let mut passes = std::mem::take(&mut self.passes);
        let result = passes.iter_mut().try_for_each(|pass| self.run_pass(pass.as_mut(), m, log));
        self.passes = passes;
        result
    }

    /// Runs one pass the caller keeps (to read its statistics after), instrumented like the
    /// passes of a pipeline: IR dumps, timing, remarks, and verification after it.
    pub fn run_pass(
        &mut self,
        pass: &mut dyn Pass,
        m: &mut Module,
        log: &mut dyn std::io::Write,
    ) -> Result<(), Vec<Diagnostic>> {
        let name = pass.name();
        if self.options.print_ir_before_all || self.options.print_ir_before.iter().any(|n| n == name) {
            let _ =
                writeln!(log, "// -----// IR Dump Before {name} //----- //\n{}", print_module(m, self.options.print));
        }
        let start = Instant::now();
        pass.run(m).map_err(|d| vec![d])?;
        self.timings.push((name, start.elapsed()));
        for remark in pass.remarks() {
            let _ = writeln!(log, "note: {remark} (pass '{name}')");
        }
        if self.options.verify_each {
            verify(m).map_err(|mut errors| {
                for e in &mut errors {
                    e.message = format!("{} (after pass '{name}')", e.message);
                }
                errors
            })?;
        }
        if self.options.print_ir_after_all || self.options.print_ir_after.iter().any(|n| n == name) {
            let _ =
                writeln!(log, "// -----// IR Dump After {name} //----- //\n{}", print_module(m, self.options.print));
        }
        Ok(())
    }

    /// MLIR-style `--timing` report.
    pub fn timing_report(&self) -> String {
        let total: Duration = self.timings.iter().map(|t| t.1).sum();
        let mut out = String::new();
        out.push_str("===-------------------------------------------------------------------------===\n");
        out.push_str("                         ... Execution time report ...\n");
        out.push_str("===-------------------------------------------------------------------------===\n");
        out.push_str(&format!("  Total Execution Time: {:.4} seconds\n\n", total.as_secs_f64()));
        out.push_str("  ----Wall Time----  ----Name----\n");
        for (name, t) in &self.timings {
            let pct = if total.is_zero() { 0.0 } else { 100.0 * t.as_secs_f64() / total.as_secs_f64() };
            out.push_str(&format!("    {:.4} ({:5.1}%)  {name}\n", t.as_secs_f64(), pct));
        }
        out.push_str(&format!("    {:.4} (100.0%)  Total\n", total.as_secs_f64()));
        out
    }
}

/// Runs `pass` on `module` with default instrumentation (verified after).
pub fn run_one(module: &mut Module, pass: &mut dyn Pass) -> Result<(), Vec<Diagnostic>> {
    PassManager::default().run_pass(pass, module, &mut std::io::sink())
}

/// Runs a textual pipeline (`DEFAULT_PIPELINE`, say) on `module` with default instrumentation.
pub fn run_pipeline(module: &mut Module, pipeline: &str) -> Result<(), Vec<Diagnostic>> {
    let mut pm = PassManager::default();
    let error = |e: String| vec![Diagnostic::error(smelt_compiler::Location::Unknown, e)];
    for entry in crate::pipeline::parse_pipeline(pipeline).map_err(error)? {
        pm.add(crate::registry::create(&entry.name, &entry.options).map_err(error)?);
    }
    pm.run(module, &mut std::io::sink())
}
