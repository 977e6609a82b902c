//! Bytes steer a random small ONNX graph (operators, attributes, weights, run-time shape
//! inputs; `tests/random_graph`), which then runs in reference, unfused and fused modes: the
//! three agree, or each failure is a clean error. A disagreement or a panic is a crash.
#![no_main]

#[allow(dead_code)] // `Rng::seeded` is for the seeded test run
#[path = "../../tests/random_graph/mod.rs"]
mod random_graph;

use libfuzzer_sys::fuzz_target;
use random_graph::{check, random_graph, Rng};

fuzz_target!(|data: &[u8]| {
    let (model, inputs) = random_graph(&mut Rng::from_bytes(data));
    if let Err(disagreement) = check(&model, &inputs) {
        panic!("{disagreement}");
    }
});
