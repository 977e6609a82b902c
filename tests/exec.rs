//! The JIT executor against the reference interpreter and ONNX Runtime's outputs: the shared
//! models fused and unfused, randomized convolutions, products and broadcasts, and a poisoned
//! arena (every value is written before it is read).

use smelt_compiler::dialect::fold::{Data, Literal};
use smelt_compiler::onnx::{import_file, ImportOptions, Weights};
use smelt_compiler::parser::parse_module;
use smelt_compiler::{ElementType, Module};
use smelt_runtime::exec::Executable;
use smelt_runtime::reference::{max_errors, run};
use smelt_runtime::tensor_io::read_tensor;
use std::path::Path;

fn models() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/models"))
}

fn load(file: &str, fused: bool) -> Module {
    let weights = if file.contains("graph-only") { Weights::Random { seed: 3 } } else { Weights::FromFiles };
    let mut m = import_file(&models().join(file), &ImportOptions { weights, ..Default::default() }).unwrap();
    let pipeline = if fused { smelt_passes::DEFAULT_PIPELINE } else { smelt_passes::CLEANUP_PIPELINE };
    smelt_passes::run_pipeline(&mut m, pipeline).unwrap();
    m
}

#[test]
fn shared_models_reproduce_onnx_runtime_fused_and_unfused() {
    for model in ["resnet18", "mobilenet_v2"] {
        let data = models().join(format!("{model}.test_data_set_0"));
        let input = read_tensor(&data.join("input_0.pb")).unwrap();
        let expected = read_tensor(&data.join("output_0.pb")).unwrap();
        for fused in [true, false] {
            let mut exe = Executable::compile(load(&format!("{model}.onnx"), fused)).unwrap();
            exe.poison();
            let out = exe.run(std::slice::from_ref(&input)).unwrap();
            let (abs, rel) = max_errors(&out[0], &expected);
            println!("{model} fused={fused}: abs {abs:.2e} rel {rel:.2e}; {:?}", exe.info);
            assert!(rel < 1e-4, "{model} fused={fused}: rel {rel}");
            assert!(exe.info.reference_steps.is_empty(), "{model}: {:?}", exe.info.reference_steps);
        }
    }
}

#[test]
fn transformers_with_random_weights_run_fused_and_unfused_alike() {
    for model in ["bert_base.graph-only.onnx", "vit_b_16.graph-only.onnx"] {
        let fused = load(model, true);
        let func = fused.functions()[0];
        let entry = fused.region(fused.op(func).regions()[0]).blocks()[0];
        let inputs: Vec<Literal> = fused
            .block(entry)
            .args()
            .iter()
            .map(|&a| {
                let t = fused.value_type(a).as_tensor().unwrap().clone();
                let shape = t.static_shape().unwrap();
                let n: u64 = shape.iter().product();
                let data = if t.element.is_float() {
                    Data::F((0..n).map(|i| ((i * 37 % 101) as f64 - 50.0) / 50.0).collect())
                } else {
                    Data::I((0..n).map(|i| (i * 7 % 100) as i64).collect())
                };
                Literal { shape, element: t.element, data }
            })
            .collect();
        let a = Executable::compile(fused).unwrap().run(&inputs).unwrap();
        let b = Executable::compile(load(model, false)).unwrap().run(&inputs).unwrap();
        for (x, y) in a.iter().zip(&b) {
            assert!(x.to_f64().iter().all(|v| v.is_finite()), "{model}");
            let (abs, rel) = max_errors(x, y);
            assert!(rel < 1e-4, "{model}: abs {abs} rel {rel}");
        }
    }
}

struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }

    fn tensor(&mut self, shape: &[u64]) -> Literal {
        let n: u64 = shape.iter().product();
        let data = Data::F((0..n).map(|_| self.next(2001) as f64 / 1000.0 - 1.0).collect());
        Literal { shape: shape.to_vec(), element: ElementType::F32, data }
    }
}

fn ty(s: &[u64]) -> String {
    let dims: Vec<String> = s.iter().map(u64::to_string).collect();
    format!("tensor<{}xf32>", dims.join("x"))
}

/// Fused (the full pipeline) and unfused executions equal the reference interpreter.
fn check(text: &str, inputs: &[Literal]) {
    let module = parse_module(text, "random.mlir").unwrap_or_else(|d| panic!("{d:?}\n{text}"));
    let want = run(&module, inputs).unwrap();
    let mut fused = module.clone();
    smelt_passes::run_pipeline(&mut fused, "builtin.module(fuse)").unwrap();
    for m in [module, fused] {
        let mut exe = Executable::compile(m).unwrap();
        // One worker and two: the split over workers (columns, rows, planes) must not matter.
        // Other tests may run meanwhile with either setting; both are correct for them too.
        for threads in [1, 2] {
            smelt_runtime::gemm::set_threads(threads);
            exe.poison();
            let got = exe.run(inputs).unwrap();
            for (g, w) in got.iter().zip(&want) {
                let (abs, rel) = max_errors(g, w);
                assert!(
                    abs <= 1e-4 * (1.0 + rel.max(0.0)) || rel < 1e-5,
                    "abs {abs} rel {rel} threads {threads}\n{text}"
                );
            }
        }
        smelt_runtime::gemm::set_threads(1);
    }
}

#[test]
fn random_convolutions_with_epilogues_match_the_reference() {
    let mut r = Lcg(11);
    for _ in 0..40 {
        let group = [1, 1, 2, 3][r.next(4) as usize];
        let cin = group * (1 + r.next(3));
        let depthwise = r.next(4) == 0;
        let (group, cout) = if depthwise { (cin, cin) } else { (group, group * (1 + r.next(4))) };
        let (kh, kw) = (1 + r.next(3), 1 + r.next(3));
        let (sh, sw) = (1 + r.next(2), 1 + r.next(2));
        let (dh, dw) = (1 + r.next(2), 1 + r.next(2));
        let pads = [r.next(3), r.next(3), r.next(3), r.next(3)];
        let (n, h, w) = (1 + r.next(2), kh * dh + r.next(6), kw * dw + r.next(7));
        let ho = (h + pads[0] + pads[2] - (dh * (kh - 1) + 1)) / sh + 1;
        let wo = (w + pads[1] + pads[3] - (dw * (kw - 1) + 1)) / sw + 1;
        let (xs, ws, bs, os) = ([n, cin, h, w], [cout, cin / group, kh, kw], [cout], [n, cout, ho, wo]);
        let residual = r.next(2) == 0;
        let text = format!(
            "func.func @main(%x: {}, %w: {}, %b: {}, %r: {}) -> {} {{\n  \
             %0 = \"smelt.conv2d\"(%x, %w, %b) {{dilations = array<i64: {dh}, {dw}>, group = {group} : i64, pads = array<i64: {}, {}, {}, {}>, strides = array<i64: {sh}, {sw}>}} : ({}, {}, {}) -> {}\n  \
             %1 = \"smelt.{}\"(%0, %r) : ({}, {}) -> {}\n  \
             %2 = \"smelt.relu\"(%1) : ({}) -> {}\n  return %2 : {}\n}}",
            ty(&xs), ty(&ws), ty(&bs), ty(&os), ty(&os),
            pads[0], pads[1], pads[2], pads[3], ty(&xs), ty(&ws), ty(&bs), ty(&os),
            if residual { "add" } else { "mul" }, ty(&os), ty(&os), ty(&os), ty(&os), ty(&os), ty(&os),
        );
        let inputs = [r.tensor(&xs), r.tensor(&ws), r.tensor(&bs), r.tensor(&os)];
        check(&text, &inputs);
    }
}

#[test]
fn random_products_and_broadcasts_match_the_reference() {
    let mut r = Lcg(5);
    for _ in 0..30 {
        let (m, k, n) = (1 + r.next(20), 1 + r.next(40), 1 + r.next(30));
        let batch = 1 + r.next(3);
        let a = [batch, m, k];
        let b = if r.next(2) == 0 { vec![k, n] } else { vec![batch, k, n] };
        let out = [batch, m, n];
        let bias = [[n].to_vec(), [m, 1].to_vec(), [1].to_vec()][r.next(3) as usize].clone();
        let text = format!(
            "func.func @main(%a: {}, %b: {}, %c: {}) -> {} {{\n  \
             %0 = \"smelt.matmul\"(%a, %b) : ({}, {}) -> {}\n  \
             %1 = \"smelt.add\"(%0, %c) : ({}, {}) -> {}\n  \
             %2 = \"smelt.gelu\"(%1) : ({}) -> {}\n  \
             %3 = \"smelt.softmax\"(%2) : ({}) -> {}\n  return %3 : {}\n}}",
            ty(&a),
            ty(&b),
            ty(&bias),
            ty(&out),
            ty(&a),
            ty(&b),
            ty(&out),
            ty(&out),
            ty(&bias),
            ty(&out),
            ty(&out),
            ty(&out),
            ty(&out),
            ty(&out),
            ty(&out),
        );
        let inputs = [r.tensor(&a), r.tensor(&b), r.tensor(&bias)];
        check(&text, &inputs);
    }
}

/// Attention with odd sequence lengths and head sizes, heads split over workers, masks that
/// broadcast over heads or rows.
#[test]
fn random_attention_matches_the_reference() {
    let mut r = Lcg(31);
    for _ in 0..12 {
        let (batch, heads) = (1 + r.next(2), 1 + r.next(4));
        let (lq, lk, d, dv) = (1 + r.next(20), 1 + r.next(20), 1 + r.next(16), 1 + r.next(16));
        let (q, k, v, out) =
            ([batch, heads, lq, d], [batch, heads, d, lk], [batch, heads, lk, dv], [batch, heads, lq, dv]);
        let mask = [[batch, 1, 1, lk], [1, 1, lq, lk], [batch, heads, lq, lk]][r.next(3) as usize];
        let masked = r.next(2) == 0;
        let (tq, tk, tv, to, tm) = (ty(&q), ty(&k), ty(&v), ty(&out), ty(&mask));
        let (mask_arg, mask_operand, mask_type) =
            if masked { (format!(", %m: {tm}"), ", %m".to_string(), format!(", {tm}")) } else { Default::default() };
        let text = format!(
            "func.func @main(%q: {tq}, %k: {tk}, %v: {tv}{mask_arg}) -> {to} {{\n  \
             %0 = \"smelt.attention\"(%q, %k, %v{mask_operand}) {{scale = 0.3 : f32}} : ({tq}, {tk}, {tv}{mask_type}) -> {to}\n  \
             return %0 : {to}\n}}"
        );
        let mut inputs = vec![r.tensor(&q), r.tensor(&k), r.tensor(&v)];
        if masked {
            inputs.push(r.tensor(&mask));
        }
        check(&text, &inputs);
    }
}

/// Elementwise chains on a smaller shape fused into a consumer that broadcasts them: the kernel
/// evaluates the chain per element of the larger shape, each input read through its own
/// broadcast strides (ranks differ, ones anywhere).
#[test]
fn chains_recomputed_under_broadcast_match_the_reference() {
    let mut r = Lcg(23);
    for _ in 0..30 {
        let out: Vec<u64> = (0..2 + r.next(3)).map(|_| 1 + r.next(7)).collect();
        // The chain's shape: a suffix of the output's with some dimensions set to one.
        let rank = 1 + r.next(out.len() as u64) as usize;
        let small: Vec<u64> = out[out.len() - rank..].iter().map(|&d| if r.next(2) == 0 { 1 } else { d }).collect();
        let side: Vec<u64> = small.iter().map(|&d| if r.next(3) == 0 { 1 } else { d }).collect();
        let [u1, u2] = [
            ["exp", "tanh", "sigmoid", "gelu", "neg"][r.next(5) as usize],
            ["relu", "erf", "abs", "silu"][r.next(4) as usize],
        ];
        let binary = ["mul", "add", "sub", "max"][r.next(4) as usize];
        let (s, o, d) = (ty(&small), ty(&out), ty(&side));
        let text = format!(
            "func.func @main(%x: {s}, %z: {d}, %y: {o}) -> {o} {{\n  \
             %0 = \"smelt.{u1}\"(%x) : ({s}) -> {s}\n  \
             %1 = \"smelt.add\"(%0, %z) : ({s}, {d}) -> {s}\n  \
             %2 = \"smelt.{u2}\"(%1) : ({s}) -> {s}\n  \
             %3 = \"smelt.{binary}\"(%y, %2) : ({o}, {s}) -> {o}\n  \
             %4 = \"smelt.tanh\"(%3) : ({o}) -> {o}\n  return %4 : {o}\n}}"
        );
        let inputs = [r.tensor(&small), r.tensor(&side), r.tensor(&out)];
        check(&text, &inputs);
    }
}

/// The arena reuses a dead input's range: every profiled run must place the inputs again
/// (the ids here were once overwritten by the floats after them, and the next gather failed).
#[test]
fn profiling_places_the_inputs_before_every_run() {
    let text = r#"func.func @main(%ids: tensor<32xi64>, %table: tensor<16x4xf32>) -> tensor<32x4xf32> {
  %0 = "smelt.gather"(%table, %ids) {axis = 0 : i64} : (tensor<16x4xf32>, tensor<32xi64>) -> tensor<32x4xf32>
  %1 = "smelt.neg"(%0) : (tensor<32x4xf32>) -> tensor<32x4xf32>
  %2 = "smelt.mul"(%1, %1) : (tensor<32x4xf32>, tensor<32x4xf32>) -> tensor<32x4xf32>
  return %2 : tensor<32x4xf32>
}"#;
    let module = parse_module(text, "ids.mlir").unwrap();
    let ids = Literal { shape: vec![32], element: ElementType::I64, data: Data::I((0..32).map(|i| i % 16).collect()) };
    let table = Literal { shape: vec![16, 4], element: ElementType::F32, data: Data::F(vec![-7.5; 64]) };
    let inputs = [ids, table];
    let mut exe = Executable::compile(module).unwrap();
    let expected = exe.run(&inputs).unwrap();
    let steps = exe.profile(&exe.encode_inputs(&inputs).unwrap(), 5).unwrap();
    assert!(steps.iter().all(|s| s.median_us >= 0.0));
    assert_eq!(exe.run(&inputs).unwrap(), expected);
}
