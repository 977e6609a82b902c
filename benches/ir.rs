//! IR throughput on a model-sized program: parsing, printing, verifying and canonicalizing a
//! generated function of ~12k ops (bigger than BERT-base after import).
//! `cargo bench --bench ir`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use smelt_compiler::parser::parse_module;
use smelt_compiler::printer::{print_module, PrintOptions};
use smelt_compiler::verifier::verify;
use smelt_passes::options::Options;
use smelt_passes::registry::create;
use std::fmt::Write;

/// A chain of conv/batch-norm/relu/add blocks with exporter-style shape arithmetic between them.
fn program(blocks: usize) -> String {
    let t = "tensor<1x64x56x56xf32>";
    let mut s = String::from("func.func @main(%x: tensor<1x64x56x56xf32>) -> tensor<1x64x56x56xf32> {\n");
    let _ = writeln!(s, "  %w = \"smelt.constant\"() {{value = dense_resource<w> : tensor<64x64x3x3xf32>}} : () -> tensor<64x64x3x3xf32>");
    let _ = writeln!(
        s,
        "  %p = \"smelt.constant\"() {{value = dense_resource<p> : tensor<64xf32>}} : () -> tensor<64xf32>"
    );
    let mut prev = "%x".to_string();
    for i in 0..blocks {
        let _ = writeln!(s, "  %c{i} = \"smelt.conv2d\"({prev}, %w) {{pads = array<i64: 1, 1, 1, 1>}} : ({t}, tensor<64x64x3x3xf32>) -> {t}");
        let _ = writeln!(s, "  %b{i} = \"smelt.batch_norm\"(%c{i}, %p, %p, %p, %p) : ({t}, tensor<64xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64xf32>) -> {t}");
        let _ = writeln!(s, "  %s{i} = \"smelt.shape\"(%b{i}) : ({t}) -> tensor<4xi64>");
        let _ = writeln!(s, "  %r{i} = \"smelt.reshape\"(%b{i}, %s{i}) : ({t}, tensor<4xi64>) -> tensor<?x?x?x?xf32>");
        let _ = writeln!(s, "  %q{i} = \"smelt.relu\"(%r{i}) : (tensor<?x?x?x?xf32>) -> tensor<?x?x?x?xf32>");
        let _ = writeln!(s, "  %a{i} = \"smelt.add\"(%q{i}, {prev}) : (tensor<?x?x?x?xf32>, {t}) -> {t}");
        prev = format!("%a{i}");
    }
    let _ = writeln!(s, "  return {prev} : {t}\n}}");
    s
}

fn bench(c: &mut Criterion) {
    let text = program(2000);
    let module = parse_module(&text, "bench.mlir").unwrap();
    let ops = module.op_count() as u64;
    let mut g = c.benchmark_group("ir");
    g.throughput(Throughput::Elements(ops));
    g.sample_size(20);
    g.bench_function("parse", |b| b.iter(|| parse_module(&text, "bench.mlir").unwrap()));
    g.bench_function("print", |b| b.iter(|| print_module(&module, PrintOptions::default())));
    g.bench_function("verify", |b| b.iter(|| verify(&module).unwrap()));
    g.bench_function("canonicalize", |b| {
        b.iter_batched(
            || module.clone(),
            |mut m| create("canonicalize", &Options::default()).unwrap().run(&mut m).unwrap(),
            criterion::BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
