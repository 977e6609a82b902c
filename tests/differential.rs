//! A bounded fuzz run in every test run: random small ONNX graphs (random operators,
//! attributes, weights and run-time shape inputs) imported, then run by the reference
//! interpreter, unfused and fused; the three agree, or every failure is a clean error.
//! `SMELT_FUZZ_CASES=N` runs more graphs; a failing seed is printed, and its model written to
//! `target/differential-SEED.onnx` to keep as a regression. Inputs the `run_graph` fuzz target
//! found (`fuzz/regressions/run_graph-*`) are replayed here.

mod random_graph;

use prost::Message;
use random_graph::{check, random_graph, Rng};

#[test]
fn random_graphs_agree_fused_unfused_and_in_reference() {
    let cases: u64 = std::env::var("SMELT_FUZZ_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(150);
    let (mut failures, mut compared, mut refused) = (Vec::new(), 0, std::collections::BTreeMap::new());
    for seed in 0..cases {
        let (model, inputs) = random_graph(&mut Rng::seeded(seed * 7919 + 1));
        let outcome = std::panic::catch_unwind(|| check(&model, &inputs));
        let failure = match outcome {
            Ok(Ok(None)) => {
                compared += 1;
                continue;
            }
            Ok(Ok(Some(why))) => {
                *refused.entry(why.chars().take(60).collect::<String>()).or_insert(0) += 1;
                continue;
            }
            Ok(Err(e)) => e,
            Err(_) => "panicked".to_string(),
        };
        let path = format!("{}/target/differential-{seed}.onnx", env!("CARGO_MANIFEST_DIR"));
        let _ = std::fs::write(&path, model.encode_to_vec());
        failures.push(format!("seed {seed} ({path}): {failure}"));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Errors are for the graphs that should fail (negative repeats); most graphs run.
    assert!(compared * 10 >= cases * 8, "{compared} of {cases} compared; refused: {refused:#?}");
}

/// Every input the `run_graph` fuzz target kept (`fuzz/regressions/run_graph-*`) builds the
/// same graph here and passes the same check.
#[test]
fn fuzzer_found_graphs_stay_fixed() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if !path.file_name().unwrap().to_string_lossy().starts_with("run_graph-") {
            continue;
        }
        let (model, inputs) = random_graph(&mut Rng::from_bytes(&std::fs::read(&path).unwrap()));
        if let Err(e) = check(&model, &inputs) {
            panic!("{}: {e}", path.display());
        }
        replayed += 1;
    }
    assert!(replayed > 0, "no run_graph regressions in {}", dir.display());
}
