//! The library's one-call analyses: what `smelt report`, `smelt plan` and `smelt tune` print
//! with `--json`, as values.

#![deny(missing_docs)]

use crate::driver::ModelSource;
use crate::error::{Error, Result};
use crate::session::{SessionOptions, WeightSource};
use std::path::Path;

fn source(path: &Path, options: &SessionOptions) -> ModelSource {
    ModelSource {
        path: path.display().to_string(),
        shapes: options
            .shapes
            .iter()
            .map(|(name, dims)| format!("{name}={}", smelt_compiler::onnx::join_dims(dims)))
            .collect(),
        weights: match options.weights {
            WeightSource::File => "file".to_string(),
            WeightSource::Random { seed } => format!("random:{seed}"),
        },
        lenient: false,
    }
}

/// The characterization and fusion report of the model at `path` under `options.target` and
/// `options.cost_profile`: the object `smelt report --json` prints (`flops_conv_matmul`,
/// `kernels_after`, `fusion`, ...).
///
/// ```
/// let path = std::env::temp_dir().join(format!("smelt-report-{}.mlir", std::process::id()));
/// std::fs::write(&path, r#"
/// func.func @main(%a: tensor<4x8xf32>, %b: tensor<8x2xf32>) -> tensor<4x2xf32> {
///   %y = "smelt.matmul"(%a, %b) : (tensor<4x8xf32>, tensor<8x2xf32>) -> tensor<4x2xf32>
///   return %y : tensor<4x2xf32>
/// }"#)?;
/// let report = smelt::report(&path, &Default::default())?;
/// assert_eq!(report["flops_conv_matmul"], 2 * 4 * 8 * 2);
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn report(path: impl AsRef<Path>, options: &SessionOptions) -> Result<serde_json::Value> {
    let source = source(path.as_ref(), options);
    let report_options = crate::commands::report::ReportOptions {
        json: true,
        batch: None,
        target: options.target.clone(),
        cost_profile: options.cost_profile.as_ref().map(|p| p.display().to_string()),
        measure: None,
        algebra: options.algebra,
    };
    Ok(crate::commands::report::analyse(&source, &report_options)?.to_json(&source.path))
}

/// The launch plan of the model at `path` for `target` (a shipped name such as `h100-sxm`, or
/// a `.toml` path), fused beside unfused: the object `smelt plan --json` prints.
pub fn plan(path: impl AsRef<Path>, target: &str, options: &SessionOptions) -> Result<serde_json::Value> {
    let source = source(path.as_ref(), options);
    let (_, cleaned) = source.load_static()?;
    let plan = crate::commands::plan::plan_model(
        &cleaned,
        target,
        &smelt_passes::plan::PlanOptions { algebra: options.algebra, ..Default::default() },
    )
    .map_err(|e| Error::Other(format!("{}: {e}", source.path)))?;
    Ok(crate::commands::plan::to_json(&source.path, &plan))
}

/// Tunes the model at `path` on this machine: measures its kernels, records them into the
/// calibration profile `profile` (created when missing) and re-fuses until the choice settles
/// or `max_rounds`; returns the object `smelt tune --json` prints.
pub fn tune(
    path: impl AsRef<Path>,
    profile: impl AsRef<Path>,
    options: &SessionOptions,
    max_rounds: usize,
) -> Result<serde_json::Value> {
    let source = source(path.as_ref(), options);
    let (_, module) = source.load_static()?;
    let inputs = crate::measure::random_inputs(&module).map_err(Error::Other)?;
    let (module, _) = smelt_passes::specialize::specialize_to_inputs(&module, &inputs).map_err(Error::Other)?;
    let threads = smelt_runtime::workers::set_threads(options.threads.unwrap_or(1));
    let profile = profile.as_ref();
    let tune_options = crate::commands::tune::Options {
        target: &options.target,
        profile,
        iters: 10,
        max_rounds,
        budget_s: crate::commands::tune::DEFAULT_BUDGET_S,
    };
    let tuned =
        crate::commands::tune::tune(&module, &inputs, &tune_options, &mut |_, _, _| {}).map_err(Error::Other)?;
    Ok(tuned.to_json(&source.path, &profile.display().to_string(), threads))
}
