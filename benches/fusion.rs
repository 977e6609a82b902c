//! Compile time of import + cleanup + fusion on the shared models (the target: under
//! 2 s each for ViT-B/16 and BERT-base in release), and of the default pipeline on chains of
//! 2,000 and 20,000 ops (linear time: under 10 s at 20,000). `cargo bench --bench fusion`.

use criterion::{criterion_group, criterion_main, Criterion};
use smelt_compiler::onnx::{import_file, ImportOptions, Weights};
use std::path::Path;
use std::time::Duration;

fn compile(file: &str) -> usize {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/models").join(file);
    let weights = if file.contains("graph-only") { Weights::Random { seed: 7 } } else { Weights::FromFiles };
    let mut m = import_file(&path, &ImportOptions { weights, ..Default::default() }).expect("model imports");
    smelt_passes::run_pipeline(&mut m, smelt_passes::DEFAULT_PIPELINE).expect("pipeline runs");
    m.op_count()
}

fn fusion(c: &mut Criterion) {
    let mut group = c.benchmark_group("import+cleanup+fuse");
    group.sample_size(10).measurement_time(Duration::from_secs(10));
    for file in ["resnet18.onnx", "mobilenet_v2.onnx", "bert_base.graph-only.onnx", "vit_b_16.graph-only.onnx"] {
        if Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/models").join(file).exists() {
            group.bench_function(file, |b| b.iter(|| compile(file)));
        }
    }
    group.finish();
}

/// A chain of `n` elementwise ops, four kinds in turn: every position may start or end a kernel.
fn chain(n: usize) -> String {
    let t = "tensor<1x64xf32>";
    let kinds = ["relu", "sigmoid", "tanh", "neg"];
    let mut text = format!("func.func @main(%v0: {t}) -> {t} {{\n");
    for i in 0..n {
        text += &format!("  %v{} = \"smelt.{}\"(%v{i}) : ({t}) -> {t}\n", i + 1, kinds[i % 4]);
    }
    text + &format!("  return %v{n} : {t}\n}}\n")
}

fn long_chains(c: &mut Criterion) {
    let mut group = c.benchmark_group("cleanup+fuse a chain");
    group.sample_size(10).measurement_time(Duration::from_secs(10));
    for n in [2_000, 20_000] {
        let module = smelt_compiler::parser::parse_module(&chain(n), "chain.mlir").expect("chain parses");
        group.bench_function(format!("{n} ops"), |b| {
            b.iter(|| {
                let mut m = module.clone();
                smelt_passes::run_pipeline(&mut m, smelt_passes::DEFAULT_PIPELINE).expect("pipeline runs");
                m.op_count()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, fusion, long_chains);
criterion_main!(benches);
