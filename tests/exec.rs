//! The JIT executor against the reference interpreter and ONNX Runtime's outputs: the shared
//! models fused and unfused, randomized convolutions, products and broadcasts, and a poisoned
//! arena (every value is written before it is read).

use smelt_compiler::literal::{Data, Literal};
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
        let entry = fused.body_of(func);
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
            smelt_runtime::workers::set_threads(threads);
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
        smelt_runtime::workers::set_threads(1);
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
        // The last op: a clamp the micro-kernel applies, or an activation run at full width
        // on each finished block (`vmath`).
        let act = ["relu", "silu", "gelu", "sigmoid", "hardswish", "mish", "tanh"][r.next(7) as usize];
        let text = format!(
            "func.func @main(%x: {}, %w: {}, %b: {}, %r: {}) -> {} {{\n  \
             %0 = \"smelt.conv2d\"(%x, %w, %b) {{dilations = array<i64: {dh}, {dw}>, group = {group} : i64, pads = array<i64: {}, {}, {}, {}>, strides = array<i64: {sh}, {sw}>}} : ({}, {}, {}) -> {}\n  \
             %1 = \"smelt.{}\"(%0, %r) : ({}, {}) -> {}\n  \
             %2 = \"smelt.{act}\"(%1) : ({}) -> {}\n  return %2 : {}\n}}",
            ty(&xs), ty(&ws), ty(&bs), ty(&os), ty(&os),
            pads[0], pads[1], pads[2], pads[3], ty(&xs), ty(&ws), ty(&bs), ty(&os),
            if residual { "add" } else { "mul" }, ty(&os), ty(&os), ty(&os), ty(&os), ty(&os), ty(&os),
        );
        let inputs = [r.tensor(&xs), r.tensor(&ws), r.tensor(&bs), r.tensor(&os)];
        check(&text, &inputs);
    }
}

/// Bias and clamp (ReLU6, a clip, a ReLU) straight after a convolution or a product: the
/// micro-kernels and depthwise planes apply them in registers. Depthwise planes up to 40
/// wide with strides 1 to 3 (vectors running past a row, the last ones stored masked), and
/// products wide enough that B is read in place.
#[test]
fn random_clamped_epilogues_run_in_registers_and_match_the_reference() {
    let mut r = Lcg(47);
    for case in 0..40 {
        let (lo, hi) = [(0.0, 6.0), (-0.5, 0.5), (0.0, f32::INFINITY), (-1.0, -1.0)][r.next(4) as usize];
        let clip = |x: &str, t: &str| {
            if hi == f32::INFINITY {
                format!("\"smelt.relu\"({x}) : ({t}) -> {t}")
            } else {
                format!("\"smelt.clip\"({x}, %lo, %hi) : ({t}, tensor<f32>, tensor<f32>) -> {t}")
            }
        };
        // Half the cases scale the product first (attention's 1 / sqrt(d), gemm's alpha); a
        // scale of 1 is the identity multiply.
        let scale = [1.0f32, 0.375][r.next(2) as usize];
        let scaled = |x: &str, t: &str| format!("\"smelt.mul\"({x}, %scale) : ({t}, tensor<f32>) -> {t}");
        let bounds = format!(
            "%lo = \"smelt.constant\"() {{value = dense<{lo:?}> : tensor<f32>}} : () -> tensor<f32>\n  \
             %hi = \"smelt.constant\"() {{value = dense<{:?}> : tensor<f32>}} : () -> tensor<f32>\n  \
             %scale = \"smelt.constant\"() {{value = dense<{scale:?}> : tensor<f32>}} : () -> tensor<f32>",
            if hi == f32::INFINITY { 0.0 } else { hi }
        );
        if case % 2 == 0 {
            let c = 1 + r.next(6);
            let depthwise = r.next(3) != 0;
            let (cout, group) = if depthwise { (c, c) } else { (1 + r.next(20), 1) };
            let (k, s, pad) = (1 + r.next(3), 1 + r.next(3), r.next(2));
            let (h, w) = (k + r.next(12), k + r.next(40));
            let (ho, wo) = ((h + 2 * pad - k) / s + 1, (w + 2 * pad - k) / s + 1);
            let (xs, ws, bs, os) = ([1, c, h, w], [cout, c / group, k, k], [cout], [1, cout, ho, wo]);
            let text = format!(
                "func.func @main(%x: {}, %w: {}, %b: {}) -> {} {{\n  {bounds}\n  \
                 %c = \"smelt.conv2d\"(%x, %w, %b) {{group = {group} : i64, pads = array<i64: {pad}, {pad}, {pad}, {pad}>, strides = array<i64: {s}, {s}>}} : ({}, {}, {}) -> {}\n  \
                 %0 = {}\n  \
                 %1 = {}\n  return %1 : {}\n}}",
                ty(&xs), ty(&ws), ty(&bs), ty(&os), ty(&xs), ty(&ws), ty(&bs), ty(&os), scaled("%c", &ty(&os)), clip("%0", &ty(&os)), ty(&os),
            );
            check(&text, &[r.tensor(&xs), r.tensor(&ws), r.tensor(&bs)]);
        } else {
            let (m, k, n) = (1 + r.next(40), 1 + r.next(40), 1 + r.next(70));
            let (a, b, out) = ([m, k], [k, n], [m, n]);
            let bias = if r.next(2) == 0 { vec![n] } else { vec![m, 1] };
            let text = format!(
                "func.func @main(%a: {}, %b: {}, %c: {}) -> {} {{\n  {bounds}\n  \
                 %p = \"smelt.matmul\"(%a, %b) : ({}, {}) -> {}\n  \
                 %0 = {}\n  \
                 %1 = \"smelt.add\"(%0, %c) : ({}, {}) -> {}\n  \
                 %2 = {}\n  return %2 : {}\n}}",
                ty(&a),
                ty(&b),
                ty(&bias),
                ty(&out),
                ty(&a),
                ty(&b),
                ty(&out),
                scaled("%p", &ty(&out)),
                ty(&out),
                ty(&bias),
                ty(&out),
                clip("%1", &ty(&out)),
                ty(&out),
            );
            check(&text, &[r.tensor(&a), r.tensor(&b), r.tensor(&bias)]);
        }
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

/// Attention over a fused QKV product split the way ViT-B/16's export splits it (reshape,
/// transpose, a select per operand, transposes into heads, the keys into `K^T`): the unfused
/// executor reads all three operands in place as strided views, none copied; when the keys
/// are also returned, their chain is copied as before. Both match the reference.
#[test]
fn attention_reads_split_projections_in_place() {
    let mut r = Lcg(7);
    for case in 0..6 {
        let (heads, lq, d) = (1 + r.next(4), 1 + r.next(20), 1 + r.next(16));
        let keys_returned = case % 3 == 2;
        let (x, split, moved) = ([lq, 3 * heads * d], [lq, 3, heads, d], [3, heads, lq, d]);
        let (head, kt, out) = ([1, heads, lq, d], [heads, d, lq], [1, heads, lq, d]);
        let (tx, ts, tm, th, tk) = (ty(&x), ty(&split), ty(&moved), ty(&[heads, lq, d]), ty(&kt));
        let (tq, tkt, to) = (ty(&head), ty(&[1, heads, d, lq]), ty(&out));
        let select = |i: usize, name: &str| {
            format!(
                "%i{i} = \"smelt.constant\"() {{value = dense<{i}> : tensor<i64>}} : () -> tensor<i64>\n  \
                 %{name} = \"smelt.gather\"(%m, %i{i}) {{axis = 0 : i64}} : ({tm}, tensor<i64>) -> {th}\n  "
            )
        };
        let (returned, result_types, results) = if keys_returned {
            (format!(", {tk}"), format!("({to}, {tk})"), ", %kt")
        } else {
            (String::new(), to.clone(), "")
        };
        let text = format!(
            "func.func @main(%x: {tx}) -> {result_types} {{\n  \
             %s0 = {shape_split}\n  \
             %s = \"smelt.reshape\"(%x, %s0) : ({tx}, tensor<4xi64>) -> {ts}\n  \
             %m = \"smelt.transpose\"(%s) {{perm = array<i64: 1, 2, 0, 3>}} : ({ts}) -> {tm}\n  \
             {sq}{sk}{sv}\
             %kt = \"smelt.transpose\"(%k) {{perm = array<i64: 0, 2, 1>}} : ({th}) -> {tk}\n  \
             %h0 = {shape_head}\n  \
             %h1 = {shape_keys}\n  \
             %q4 = \"smelt.reshape\"(%q, %h0) : ({th}, tensor<4xi64>) -> {tq}\n  \
             %k4 = \"smelt.reshape\"(%kt, %h1) : ({tk}, tensor<4xi64>) -> {tkt}\n  \
             %v4 = \"smelt.reshape\"(%v, %h0) : ({th}, tensor<4xi64>) -> {tq}\n  \
             %0 = \"smelt.attention\"(%q4, %k4, %v4) {{scale = 0.25 : f32}} : ({tq}, {tkt}, {tq}) -> {to}\n  \
             return %0{results} : {to}{returned}\n}}",
            shape_split = ints(&[lq as i64, 3, heads as i64, d as i64]),
            shape_head = ints(&[1, heads as i64, lq as i64, d as i64]),
            shape_keys = ints(&[1, heads as i64, d as i64, lq as i64]),
            sq = select(0, "q"),
            sk = select(1, "k"),
            sv = select(2, "v"),
        );
        let inputs = [r.tensor(&x)];
        check(&text, &inputs);
        let exe = Executable::compile(parse_module(&text, "split.mlir").unwrap()).unwrap();
        // Reshape, transpose, three selects, the keys' transpose, three reshapes; with the
        // keys returned, the split stays a copy (the keys' select reads it), and the views are
        // the selects and reshapes of queries and values and the reshape of the copied keys.
        let views = if keys_returned { 5 } else { 9 };
        assert_eq!(exe.info.strided_views, views, "{text}");
        assert!(!exe.info.native_steps.contains_key("smelt.transpose") || keys_returned, "{text}");
    }
}

/// Attention over a merged QKV product cut the way `merge-parallel-products` cuts it (a slice
/// of the last axis per operand, then BERT's reshape and transpose into heads): every slice,
/// reshape and transpose is a strided view, none copied, and the result matches the reference.
#[test]
fn attention_reads_sliced_projections_in_place() {
    let mut r = Lcg(11);
    for _ in 0..6 {
        let (heads, lq, d) = (1 + r.next(4), 1 + r.next(20), 1 + r.next(16));
        let width = heads * d;
        let (tx, tw, th) = (ty(&[1, lq, 3 * width]), ty(&[1, lq, width]), ty(&[1, lq, heads, d]));
        let (tq, tk) = (ty(&[1, heads, lq, d]), ty(&[1, heads, d, lq]));
        let operand = |i: u64, name: &str, perm: &str, tout: &str| {
            format!(
                "%{name}s = \"smelt.slice\"(%x, %b{i}, %e{i}, %axis) : ({tx}, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> {tw}\n  \
                 %{name}r = \"smelt.reshape\"(%{name}s, %heads) : ({tw}, tensor<4xi64>) -> {th}\n  \
                 %{name} = \"smelt.transpose\"(%{name}r) {{perm = array<i64: {perm}>}} : ({th}) -> {tout}\n  "
            )
        };
        let bounds: String = (0..3)
            .map(|i| {
                format!("%b{i} = {}\n  %e{i} = {}\n  ", ints(&[(i * width) as i64]), ints(&[((i + 1) * width) as i64]))
            })
            .collect();
        let text = format!(
            "func.func @main(%x: {tx}) -> {tq} {{\n  \
             {bounds}%axis = {axis}\n  \
             %heads = {shape_heads}\n  \
             {q}{k}{v}\
             %0 = \"smelt.attention\"(%q, %k, %v) {{scale = 0.25 : f32}} : ({tq}, {tk}, {tq}) -> {tq}\n  \
             return %0 : {tq}\n}}",
            axis = ints(&[-1]),
            shape_heads = ints(&[1, lq as i64, heads as i64, d as i64]),
            q = operand(0, "q", "0, 2, 1, 3", &tq),
            k = operand(1, "k", "0, 2, 3, 1", &tk),
            v = operand(2, "v", "0, 2, 1, 3", &tq),
        );
        check(&text, &[r.tensor(&[1, lq, 3 * width])]);
        let exe = Executable::compile(parse_module(&text, "sliced.mlir").unwrap()).unwrap();
        assert_eq!(exe.info.strided_views, 9, "{text}");
    }
}

/// Channel ranges of a batch-1 NCHW value (what a merged convolution's slices are) alias it when
/// they start on a 64-byte boundary, and are copied otherwise; both match the reference, read
/// by a convolution and returned.
#[test]
fn contiguous_slices_alias_their_input() {
    let mut r = Lcg(31);
    for case in 0..8 {
        let (c, hw) = (4 + r.next(12), [4, 5, 8][case % 3]);
        let (from, to) = (r.next(c / 2), c / 2 + r.next(c / 2) + 1);
        let (tx, ts) = (ty(&[1, c, hw, hw]), ty(&[1, to - from, hw, hw]));
        let (tw, tout) = (ty(&[3, to - from, 1, 1]), ty(&[1, 3, hw, hw]));
        let text = format!(
            "func.func @main(%x: {tx}, %w: {tw}) -> ({tout}, {ts}) {{\n  \
             %r = \"smelt.relu\"(%x) : ({tx}) -> {tx}\n  \
             %b = {b}\n  %e = {e}\n  %a = {a}\n  \
             %s = \"smelt.slice\"(%r, %b, %e, %a) : ({tx}, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> {ts}\n  \
             %y = \"smelt.conv2d\"(%s, %w) : ({ts}, {tw}) -> {tout}\n  \
             return %y, %s : {tout}, {ts}\n}}",
            b = ints(&[from as i64]),
            e = ints(&[to as i64]),
            a = ints(&[1]),
        );
        check(&text, &[r.tensor(&[1, c, hw, hw]), r.tensor(&[3, to - from, 1, 1])]);
        let exe = Executable::compile(parse_module(&text, "slice.mlir").unwrap()).unwrap();
        let aligned = (from * hw * hw * 4) % 64 == 0;
        assert_eq!(exe.info.native_steps.contains_key("smelt.slice"), !aligned, "{text}");
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

/// `check`, and the unfused module runs `ops` natively (JIT row, pool or copy programs), none
/// through the reference semantics.
fn check_native(text: &str, inputs: &[Literal]) {
    check(text, inputs);
    let module = parse_module(text, "random.mlir").unwrap();
    let exe = Executable::compile(module).unwrap();
    assert!(exe.info.reference_steps.is_empty(), "{:?}\n{text}", exe.info.reference_steps);
}

fn ints(values: &[i64]) -> String {
    let v: Vec<String> = values.iter().map(i64::to_string).collect();
    format!(
        "\"smelt.constant\"() {{value = dense<[{}]> : tensor<{}xi64>}} : () -> tensor<{}xi64>",
        v.join(", "),
        v.len(),
        v.len()
    )
}

/// LRN over ranks 3 to 5, odd and even sizes, the betas with paths of their own (one half,
/// three quarters, one) and the general power; the floating-point remainder broadcast, with
/// quotients beyond what an f32 integer holds and zero and infinite divisors.
#[test]
fn random_lrn_and_remainders_run_natively_and_match_the_reference() {
    let mut r = Lcg(77);
    for case in 0..24 {
        let rank = 3 + r.next(3) as usize;
        let xs: Vec<u64> = (0..rank).map(|_| 1 + r.next(7)).collect();
        let tx = ty(&xs);
        let size = 1 + r.next(6);
        let beta = [0.5, 0.75, 1.0, 0.6][case % 4];
        let text = format!(
            "func.func @main(%x: {tx}) -> {tx} {{\n  %0 = \"smelt.lrn\"(%x) {{size = {size} : i64, beta = {beta:?} : f32, alpha = 0.05 : f32, bias = 1.5 : f32}} : ({tx}) -> {tx}\n  return %0 : {tx}\n}}"
        );
        let mut x = r.tensor(&xs);
        if let Data::F(v) = &mut x.data {
            v.iter_mut().for_each(|e| *e *= 30.0);
        }
        check_native(&text, &[x]);
    }
    for _ in 0..12 {
        let xs: Vec<u64> = (0..3).map(|_| 1 + r.next(6)).collect();
        let ys: Vec<u64> = xs.iter().map(|&d| if r.next(2) == 0 { 1 } else { d }).collect();
        let (tx, ty_) = (ty(&xs), ty(&ys));
        let text = format!(
            "func.func @main(%x: {tx}, %y: {ty_}) -> {tx} {{\n  %0 = \"smelt.mod\"(%x, %y) {{fmod = 1 : i64}} : ({tx}, {ty_}) -> {tx}\n  return %0 : {tx}\n}}"
        );
        let mut x = r.tensor(&xs);
        let mut y = r.tensor(&ys);
        if let (Data::F(a), Data::F(b)) = (&mut x.data, &mut y.data) {
            // Values an f32 holds: the reference computes on the literal's values as given.
            a.iter_mut().enumerate().for_each(|(i, e)| *e = (*e * [1.0, 1e3, 3e9, -7e20][i % 4]) as f32 as f64);
            for (i, e) in b.iter_mut().enumerate() {
                *e = [*e, 0.0, f64::INFINITY, 0.37][i % 4] as f32 as f64;
            }
        }
        check_native(&text, &[x, y]);
    }
}

/// Resize in every mode and coordinate transformation (crops with extrapolation included),
/// antialiased or not, excluding outside taps or not, by scales or to sizes, over ranks 3
/// and 4: constant scales and sizes run as native separable passes.
#[test]
fn random_resizes_run_natively_and_match_the_reference() {
    let mut r = Lcg(2026);
    let modes = ["nearest", "linear", "cubic"];
    let transforms = [
        "half_pixel",
        "asymmetric",
        "align_corners",
        "pytorch_half_pixel",
        "half_pixel_symmetric",
        "tf_crop_and_resize",
    ];
    let nearest = ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"];
    for case in 0..48 {
        let rank = 3 + r.next(2) as usize;
        let xs: Vec<u64> = (0..rank).map(|d| if d < rank - 2 { 1 + r.next(3) } else { 1 + r.next(9) }).collect();
        let (mode, ctm) = (modes[case % 3], transforms[r.next(6) as usize]);
        let by_scales = ctm != "tf_crop_and_resize" && r.next(2) == 0;
        let factors = [0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 0.25];
        let scales: Vec<f64> =
            (0..rank).map(|d| if d < rank - 2 { 1.0 } else { factors[r.next(7) as usize] }).collect();
        let os: Vec<u64> = if by_scales {
            xs.iter().zip(&scales).map(|(&x, &f)| ((x as f64 * f).floor() as u64).max(1)).collect()
        } else {
            xs.iter().enumerate().map(|(d, &x)| if d < rank - 2 { x } else { 1 + r.next(12) }).collect()
        };
        let scales: Vec<f64> =
            if by_scales { scales.iter().zip(&xs).zip(&os).map(|((&f, _), _)| f).collect() } else { Vec::new() };
        let floats = |v: &[f64]| {
            let body: Vec<String> = v.iter().map(|f| format!("{f:?}")).collect();
            format!(
                "\"smelt.constant\"() {{value = dense<[{}]> : tensor<{}xf32>}} : () -> tensor<{}xf32>",
                body.join(", "),
                v.len(),
                v.len()
            )
        };
        let empty = "\"smelt.constant\"() {value = dense<> : tensor<0xf32>} : () -> tensor<0xf32>".to_string();
        let roi = if ctm == "tf_crop_and_resize" {
            let starts: Vec<f64> =
                (0..rank).map(|d| if d < rank - 2 { 0.0 } else { [0.0, 0.1, -0.2][r.next(3) as usize] }).collect();
            let ends: Vec<f64> =
                (0..rank).map(|d| if d < rank - 2 { 1.0 } else { [1.0, 0.8, 1.3][r.next(3) as usize] }).collect();
            floats(&[starts, ends].concat())
        } else {
            empty.clone()
        };
        let roi_ty =
            if ctm == "tf_crop_and_resize" { format!("tensor<{}xf32>", 2 * rank) } else { "tensor<0xf32>".into() };
        let (scales_def, scales_ty) =
            if by_scales { (floats(&scales), format!("tensor<{rank}xf32>")) } else { (empty, "tensor<0xf32>".into()) };
        let sizes: Vec<i64> = os.iter().map(|&d| d as i64).collect();
        let (sizes_operand, sizes_def, sizes_ty) = if by_scales {
            (String::new(), String::new(), String::new())
        } else {
            (", %sizes".to_string(), format!("  %sizes = {}\n", ints(&sizes)), format!(", tensor<{rank}xi64>"))
        };
        let mut attrs = vec![format!("mode = \"{mode}\""), format!("coordinate_transformation_mode = \"{ctm}\"")];
        attrs.push(format!("nearest_mode = \"{}\"", nearest[r.next(4) as usize]));
        if r.next(2) == 0 {
            attrs.push("antialias = true".into());
        }
        if r.next(3) == 0 {
            attrs.push("exclude_outside = true".into());
        }
        if mode == "cubic" && r.next(2) == 0 {
            attrs.push("cubic_coeff_a = -0.5 : f32".into());
        }
        attrs.push("extrapolation_value = 0.25 : f32".into());
        let (tx, to) = (ty(&xs), ty(&os));
        let text = format!(
            "func.func @main(%x: {tx}) -> {to} {{\n  %roi = {roi}\n  %scales = {scales_def}\n{sizes_def}  \
             %0 = \"smelt.resize\"(%x, %roi, %scales{sizes_operand}) {{{}}} : ({tx}, {roi_ty}, {scales_ty}{sizes_ty}) -> {to}\n  \
             return %0 : {to}\n}}",
            attrs.join(", ")
        );
        check_native(&text, &[r.tensor(&xs)]);
    }
}

/// Casts between f32 and the integer types run natively and agree with the reference:
/// truncation toward zero, wrapping to the width, and exact widening back.
#[test]
fn integer_casts_run_natively_and_match_the_reference() {
    let mut r = Lcg(8);
    for int in ["ui8", "i8", "i32", "i64"] {
        let (tf, ti) = ("tensor<4x33xf32>", format!("tensor<4x33x{int}>"));
        let text = format!(
            "func.func @main(%x: {tf}) -> {tf} {{\n  %0 = \"smelt.cast\"(%x) {{to = {int}}} : ({tf}) -> {ti}\n  \
             %1 = \"smelt.cast\"(%0) {{to = f32}} : ({ti}) -> {tf}\n  return %1 : {tf}\n}}"
        );
        let mut x = r.tensor(&[4, 33]);
        if let Data::F(v) = &mut x.data {
            // Values an f32 holds: the reference casts the literal's values as given.
            v.iter_mut().enumerate().for_each(|(i, e)| *e = (*e * [1.0, 150.0, 300.0, 70000.0][i % 4]) as f32 as f64);
        }
        check_native(&text, &[x]);
    }
}

/// Group normalization over ranks 3 to 5, one group to one a channel (instance norm).
#[test]
fn random_group_norms_run_natively_and_match_the_reference() {
    let mut r = Lcg(5);
    for _ in 0..20 {
        let rank = 3 + r.next(3) as usize;
        let groups = 1 + r.next(4);
        let mut xs: Vec<u64> = (0..rank).map(|_| 1 + r.next(6)).collect();
        xs[1] = groups * (1 + r.next(3));
        let (tx, tc) = (ty(&xs), ty(&[xs[1]]));
        let text = format!(
            "func.func @main(%x: {tx}, %s: {tc}, %b: {tc}) -> {tx} {{\n  %0 = \"smelt.group_norm\"(%x, %s, %b) {{num_groups = {groups} : i64, epsilon = 1.0e-03 : f32}} : ({tx}, {tc}, {tc}) -> {tx}\n  return %0 : {tx}\n}}"
        );
        check_native(&text, &[r.tensor(&xs), r.tensor(&[xs[1]]), r.tensor(&[xs[1]])]);
    }
}

/// Transposed convolutions with strides, dilations, groups, output padding and paddings of
/// either sign, with and without bias, batches of one and two.
#[test]
fn random_transposed_convolutions_run_natively_and_match_the_reference() {
    let mut r = Lcg(23);
    let mut checked = 0;
    for case in 0..30 {
        let group = 1 + r.next(2);
        let (cin, cog) = (group * (1 + r.next(3)), 1 + r.next(3));
        let (k, s, d) =
            ([1 + r.next(3), 1 + r.next(3)], [1 + r.next(3), 1 + r.next(2)], [1 + r.next(2), 1 + r.next(2)]);
        let xs = [1 + r.next(2), cin, 1 + r.next(5), 1 + r.next(5)];
        let pads: Vec<i64> = (0..4).map(|_| r.next(3) as i64 - 1).collect();
        let extra = [r.next(s[0]) as i64, r.next(s[1]) as i64];
        let out: Vec<i64> = (0..2)
            .map(|i| (s[i] * (xs[2 + i] - 1) + (k[i] - 1) * d[i] + 1) as i64 + extra[i] - pads[i] - pads[i + 2])
            .collect();
        if out.iter().any(|&e| e < 1) {
            continue;
        }
        let out: Vec<u64> = out.iter().map(|&e| e as u64).collect();
        let (ws, os) = ([cin, cog, k[0], k[1]], [xs[0], cog * group, out[0], out[1]]);
        let (tx, tw, to, tb) = (ty(&xs), ty(&ws), ty(&os), ty(&[cog * group]));
        let bias = case % 2 == 0;
        let (b_arg, b_use, b_ty) =
            if bias { (format!(", %b: {tb}"), ", %b", format!(", {tb}")) } else { (String::new(), "", String::new()) };
        let text = format!(
            "func.func @main(%x: {tx}, %w: {tw}{b_arg}) -> {to} {{\n  %0 = \"smelt.conv_transpose\"(%x, %w{b_use}) {{strides = array<i64: {}, {}>, dilations = array<i64: {}, {}>, pads = array<i64: {}, {}, {}, {}>, output_padding = array<i64: {}, {}>, group = {group} : i64}} : ({tx}, {tw}{b_ty}) -> {to}\n  return %0 : {to}\n}}",
            s[0], s[1], d[0], d[1], pads[0], pads[1], pads[2], pads[3], extra[0], extra[1]
        );
        let mut inputs = vec![r.tensor(&xs), r.tensor(&ws)];
        if bias {
            inputs.push(r.tensor(&[cog * group]));
        }
        check_native(&text, &inputs);
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} of 30 random cases had an output");
}

/// Softmax, log-softmax, layer_norm, reduce_* over contiguous axes, global and windowed pools
/// with odd shapes, padding, strides and dilations.
#[test]
fn random_reductions_and_windows_run_natively_and_match_the_reference() {
    let mut r = Lcg(41);
    for case in 0..60 {
        let rank = 2 + r.next(3) as usize;
        let xs: Vec<u64> = (0..rank).map(|_| 1 + r.next(9)).collect();
        let tx = ty(&xs);
        let text = match case % 5 {
            0 => {
                let op = ["softmax", "log_softmax"][r.next(2) as usize];
                format!(
                    "func.func @main(%x: {tx}) -> {tx} {{\n  %0 = \"smelt.{op}\"(%x) {{axis = -1 : i64}} : ({tx}) -> {tx}\n  return %0 : {tx}\n}}"
                )
            }
            1 => {
                let axis = r.next(rank as u64) as usize;
                let tp = ty(&xs[axis..]);
                format!(
                    "func.func @main(%x: {tx}, %s: {tp}, %b: {tp}) -> {tx} {{\n  \
                     %0 = \"smelt.layer_norm\"(%x, %s, %b) {{axis = {axis} : i64, epsilon = 1.0e-05 : f32}} : ({tx}, {tp}, {tp}) -> {tx}\n  \
                     return %0 : {tx}\n}}"
                )
            }
            2 => {
                let op = ["sum", "mean", "max", "min", "prod"][r.next(5) as usize];
                let first = r.next(rank as u64) as usize;
                let last = first + r.next((rank - first) as u64) as usize;
                let keep = r.next(2) == 0;
                let axes: Vec<i64> =
                    (first..=last).map(|a| a as i64 - if r.next(2) == 0 { rank as i64 } else { 0 }).collect();
                let os: Vec<u64> = (0..rank)
                    .filter_map(|d| if (first..=last).contains(&d) { keep.then_some(1) } else { Some(xs[d]) })
                    .collect();
                let (to, n) = (ty(&os), axes.len());
                format!(
                    "func.func @main(%x: {tx}) -> {to} {{\n  %a = {}\n  \
                     %0 = \"smelt.reduce_{op}\"(%x, %a) {{keepdims = {keep}}} : ({tx}, tensor<{n}xi64>) -> {to}\n  return %0 : {to}\n}}",
                    ints(&axes)
                )
            }
            3 => {
                let xs = [xs[0], xs[1], 1 + r.next(9), 1 + r.next(9)];
                let (tx, to) = (ty(&xs), ty(&[xs[0], xs[1], 1, 1]));
                let op = ["global_avg_pool", "global_max_pool"][r.next(2) as usize];
                let inputs = [r.tensor(&xs)];
                check_native(
                    &format!("func.func @main(%x: {tx}) -> {to} {{\n  %0 = \"smelt.{op}\"(%x) : ({tx}) -> {to}\n  return %0 : {to}\n}}"),
                    &inputs,
                );
                continue;
            }
            _ => {
                let (kh, kw) = (1 + r.next(3), 1 + r.next(3));
                let (sh, sw) = (1 + r.next(2), 1 + r.next(3));
                let (dh, dw) = (1 + r.next(2), 1 + r.next(2));
                let pads = [r.next(kh), r.next(kw), r.next(kh), r.next(kw)];
                let (h, w) = (kh * dh + r.next(8), kw * dw + r.next(9));
                let ho = (h + pads[0] + pads[2] - (dh * (kh - 1) + 1)) / sh + 1;
                let wo = (w + pads[1] + pads[3] - (dw * (kw - 1) + 1)) / sw + 1;
                let (xs, os) = ([xs[0], xs[1], h, w], [xs[0], xs[1], ho, wo]);
                let (tx, to) = (ty(&xs), ty(&os));
                let op = ["max_pool", "avg_pool"][r.next(2) as usize];
                let include = r.next(2) == 0;
                let inputs = [r.tensor(&xs)];
                check_native(
                    &format!(
                        "func.func @main(%x: {tx}) -> {to} {{\n  \
                         %0 = \"smelt.{op}\"(%x) {{count_include_pad = {include}, dilations = array<i64: {dh}, {dw}>, kernel_shape = array<i64: {kh}, {kw}>, pads = array<i64: {}, {}, {}, {}>, strides = array<i64: {sh}, {sw}>}} : ({tx}) -> {to}\n  \
                         return %0 : {to}\n}}",
                        pads[0], pads[1], pads[2], pads[3]
                    ),
                    &inputs,
                );
                continue;
            }
        };
        let mut inputs = vec![r.tensor(&xs)];
        if case % 5 == 1 {
            let axis = text.split("axis = ").nth(1).unwrap().split(' ').next().unwrap().parse::<usize>().unwrap();
            inputs.push(r.tensor(&xs[axis..]));
            inputs.push(r.tensor(&xs[axis..]));
        }
        check_native(&text, &inputs);
    }
}

/// Concat, split, slice (negative steps, clamped bounds), transpose, expand, tile, constant
/// padding (negative pads crop) and gathers by constant indices, as JIT strided copies.
#[test]
fn random_data_movement_runs_natively_and_matches_the_reference() {
    let mut r = Lcg(43);
    for case in 0..96 {
        let rank = 1 + r.next(4) as usize;
        let xs: Vec<u64> = (0..rank).map(|_| 1 + r.next(6)).collect();
        let tx = ty(&xs);
        let axis = r.next(rank as u64) as usize;
        let body_and_output = |os: &[u64], line: String| (ty(os), line);
        let mut extra_inputs: Vec<(String, Vec<u64>)> = Vec::new();
        let (to, line) = match case % 8 {
            0 => {
                let other: Vec<u64> =
                    xs.iter().enumerate().map(|(d, &n)| if d == axis { 1 + r.next(4) } else { n }).collect();
                let mut os = xs.clone();
                os[axis] += other[axis];
                extra_inputs.push(("y".into(), other.clone()));
                let (ty_o, to) = (ty(&other), ty(&os));
                body_and_output(
                    &os,
                    format!("\"smelt.concat\"(%x, %y) {{axis = {axis} : i64}} : ({tx}, {ty_o}) -> {to}"),
                )
            }
            1 => {
                let first = r.next(xs[axis]);
                let mut a = xs.clone();
                a[axis] = first;
                let mut b = xs.clone();
                b[axis] -= first;
                let (ta, tb) = (ty(&a), ty(&b));
                let line = format!(
                    "%s = {}\n  %p:2 = \"smelt.split\"(%x, %s) {{axis = {axis} : i64}} : ({tx}, tensor<2xi64>) -> ({ta}, {tb})\n  \
                     %0 = \"smelt.concat\"(%p#1, %p#0) {{axis = {axis} : i64}} : ({tb}, {ta}) -> {tx}",
                    ints(&[first as i64, (xs[axis] - first) as i64])
                );
                (tx.clone(), line)
            }
            2 => {
                let n = xs[axis] as i64;
                let step = [1, 2, -1, -2][r.next(4) as usize];
                let (start, end) = (r.next(n as u64 + 2) as i64 - 1, r.next(n as u64 + 4) as i64 - 2);
                let (start, end) =
                    if step < 0 { (end.max(start), start.min(end) - 1) } else { (start.min(end), start.max(end) + 1) };
                let (s, e) = smelt_compiler::dialect::infer::slice_bounds(start, end, step, n);
                let len = if step > 0 { (e - s + step - 1) / step } else { (s - e - step - 1) / -step }.max(0) as u64;
                let mut os = xs.clone();
                os[axis] = len;
                let to = ty(&os);
                let line = format!(
                    "%b = {}\n  %e = {}\n  %a = {}\n  %t = {}\n  \
                     %0 = \"smelt.slice\"(%x, %b, %e, %a, %t) : ({tx}, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> {to}",
                    ints(&[start]),
                    ints(&[end]),
                    ints(&[axis as i64]),
                    ints(&[step])
                );
                (to, line)
            }
            3 => {
                let mut perm: Vec<usize> = (0..rank).collect();
                for i in (1..rank).rev() {
                    perm.swap(i, r.next(i as u64 + 1) as usize);
                }
                let os: Vec<u64> = perm.iter().map(|&p| xs[p]).collect();
                let p: Vec<String> = perm.iter().map(usize::to_string).collect();
                let to = ty(&os);
                body_and_output(
                    &os,
                    format!("\"smelt.transpose\"(%x) {{perm = array<i64: {}>}} : ({tx}) -> {to}", p.join(", ")),
                )
            }
            4 => {
                let small: Vec<u64> = xs.iter().map(|&d| if r.next(2) == 0 { 1 } else { d }).collect();
                extra_inputs.push(("y".into(), small.clone()));
                let ts = ty(&small);
                let shape: Vec<i64> = xs.iter().map(|&d| d as i64).collect();
                let line = format!(
                    "%s = {}\n  %e = \"smelt.expand\"(%y, %s) : ({ts}, tensor<{rank}xi64>) -> {tx}\n  %0 = \"smelt.add\"(%e, %x) : ({tx}, {tx}) -> {tx}",
                    ints(&shape)
                );
                (tx.clone(), line)
            }
            5 => {
                let reps: Vec<i64> = (0..rank).map(|_| 1 + r.next(3) as i64).collect();
                let os: Vec<u64> = xs.iter().zip(&reps).map(|(&d, &k)| d * k as u64).collect();
                let to = ty(&os);
                let line =
                    format!("%k = {}\n  %0 = \"smelt.tile\"(%x, %k) : ({tx}, tensor<{rank}xi64>) -> {to}", ints(&reps));
                (to, line)
            }
            6 => {
                let mut pads: Vec<i64> = Vec::new();
                let mut os = xs.clone();
                let (mut before, mut after) = (Vec::new(), Vec::new());
                for &d in &xs {
                    let b = r.next(4) as i64 - 1;
                    let a = (r.next(4) as i64 - 1).max(1 - d as i64 - b);
                    before.push(b);
                    after.push(a);
                }
                pads.extend(&before);
                pads.extend(&after);
                for d in 0..rank {
                    os[d] = (xs[d] as i64 + before[d] + after[d]) as u64;
                }
                let to = ty(&os);
                let line = format!(
                    "%p = {}\n  %v = \"smelt.constant\"() {{value = dense<0.5> : tensor<f32>}} : () -> tensor<f32>\n  \
                     %0 = \"smelt.pad\"(%x, %p, %v) : ({tx}, tensor<{}xi64>, tensor<f32>) -> {to}",
                    ints(&pads),
                    pads.len()
                );
                (to, line)
            }
            _ => {
                // Scalar indices too, as ViT selects its query, key and value.
                let n = xs[axis] as i64;
                let count = 1 + r.next(4) as usize;
                let idx: Vec<i64> = (0..count).map(|_| r.next(2 * n as u64) as i64 - n).collect();
                let scalar = count == 1 && r.next(2) == 0;
                let mut os = xs[..axis].to_vec();
                if !scalar {
                    os.push(count as u64);
                }
                os.extend(&xs[axis + 1..]);
                let to = ty(&os);
                let (index, index_ty) = if scalar {
                    (
                        format!("\"smelt.constant\"() {{value = dense<{}> : tensor<i64>}} : () -> tensor<i64>", idx[0]),
                        "tensor<i64>".to_string(),
                    )
                } else {
                    (ints(&idx), format!("tensor<{count}xi64>"))
                };
                let line = format!(
                    "%i = {index}\n  %0 = \"smelt.gather\"(%x, %i) {{axis = {axis} : i64}} : ({tx}, {index_ty}) -> {to}"
                );
                (to, line)
            }
        };
        let line = if line.contains("%0 =") { line } else { format!("%0 = {line}") };
        let args: String = extra_inputs.iter().map(|(n, s)| format!(", %{n}: {}", ty(s))).collect();
        let text = format!("func.func @main(%x: {tx}{args}) -> {to} {{\n  {line}\n  return %0 : {to}\n}}");
        let mut inputs = vec![r.tensor(&xs)];
        inputs.extend(extra_inputs.iter().map(|(_, s)| r.tensor(s)));
        check_native(&text, &inputs);
    }
}

/// Every elementwise op of the op table that takes and gives f32 runs as a JIT program (never
/// the reference semantics) and matches the reference interpreter elementwise, NaN for NaN:
/// an op added to the table with a lowering is checked here without a test of its own.
#[test]
fn every_elementwise_op_of_the_table_lowers_and_matches_the_reference() {
    use smelt_compiler::dialect::{all_ops, Arity, OpClass};
    let ty = "tensor<3x37xf32>";
    let mut rng = Lcg(11);
    let (mut checked, mut by_reference, mut mismatches) = (Vec::new(), Vec::new(), Vec::new());
    for def in all_ops().filter(|d| d.class == OpClass::Elementwise) {
        let operands = def.operands.iter().filter(|s| s.arity == Arity::One).count();
        let args: Vec<String> = (0..operands).map(|i| format!("%a{i}: {ty}")).collect();
        let uses: Vec<String> = (0..operands).map(|i| format!("%a{i}")).collect();
        let types = vec![ty; operands].join(", ");
        let text = format!(
            "func.func @main({}) -> {ty} {{\n  %r = \"{}\"({}) : ({types}) -> {ty}\n  return %r : {ty}\n}}\n",
            args.join(", "),
            def.name,
            uses.join(", ")
        );
        // Ops whose operands are not all f32 of one shape (where, batch_norm, not) or whose
        // result is not f32 (comparisons) do not verify here: they have tests of their own.
        let Ok(module) = parse_module(&text, "elementwise.mlir") else { continue };
        if smelt_compiler::verifier::verify(&module).is_err() {
            continue;
        }
        // Each operand holds NaN, both infinities, -0 and huge values somewhere the others
        // hold ordinary numbers: IEEE propagation is part of the semantics compared.
        let special = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, 1e30, -1e30];
        let inputs: Vec<Literal> = (0..operands)
            .map(|k| {
                let mut data: Vec<f64> = (0..3 * 37).map(|_| (rng.next(6001) as f64 - 3000.0) / 1000.0).collect();
                for (j, &x) in special.iter().enumerate() {
                    data[40 * k + 3 * j + 1] = x;
                }
                Literal { shape: vec![3, 37], element: ElementType::F32, data: Data::F(data) }
            })
            .collect();
        let expected = run(&module, &inputs).unwrap();
        let mut exe = Executable::compile(module).unwrap();
        if !exe.info.reference_steps.is_empty() {
            by_reference.push(def.name);
            continue;
        }
        let actual = exe.run(&inputs).unwrap();
        for (i, (a, e)) in actual[0].to_f64().iter().zip(expected[0].to_f64().iter()).enumerate() {
            let close = a == e || (a - e).abs() <= 1e-6 + 2e-6 * e.abs() || (a.is_nan() && e.is_nan());
            if !close {
                let x: Vec<f64> = inputs.iter().map(|l| l.to_f64()[i]).collect();
                mismatches.push(format!("{}{x:?} is {a}, the reference gives {e}", def.name));
            }
        }
        checked.push(def.name);
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    println!("checked {checked:?}; by reference: {by_reference:?}");
    // A tensor exponent has no JIT lowering (splat exponents do, inside kernels).
    assert_eq!(by_reference, ["smelt.pow"], "elementwise ops without a JIT lowering");
    assert!(checked.len() >= 25, "only {checked:?}");
}

/// A contiguous elementwise space is cut into rows for the workers, its last elements as one
/// shorter row: every element is computed once, at one and at two threads.
#[test]
fn long_contiguous_elementwise_spaces_split_over_workers() {
    let ty = "tensor<1x3x150x151xf32>";
    let text = format!(
        "func.func @main(%x: {ty}, %y: {ty}) -> {ty} {{\n  %s = \"smelt.sigmoid\"(%x) : ({ty}) -> {ty}\n  %r = \"smelt.mul\"(%s, %y) : ({ty}, {ty}) -> {ty}\n  return %r : {ty}\n}}\n"
    );
    let n = 3 * 150 * 151;
    let inputs: Vec<Literal> = (0..2)
        .map(|k| Literal {
            shape: vec![1, 3, 150, 151],
            element: ElementType::F32,
            data: Data::F((0..n).map(|i| ((i * (7 + k)) % 101) as f64 / 25.0 - 2.0).collect()),
        })
        .collect();
    let mut m = parse_module(&text, "split.mlir").unwrap();
    smelt_passes::run_pipeline(&mut m, smelt_passes::DEFAULT_PIPELINE).unwrap();
    let expected = run(&m, &inputs).unwrap();
    for threads in [1, 2] {
        smelt_runtime::workers::set_threads(threads);
        let mut exe = Executable::compile(m.clone()).unwrap();
        exe.poison();
        let out = exe.run(&inputs).unwrap();
        let (abs, _) = max_errors(&out[0], &expected[0]);
        assert!(abs < 1e-6 && out[0].to_f64().iter().all(|v| v.is_finite()), "{threads} threads: abs {abs}");
    }
    smelt_runtime::workers::set_threads(1);
}

/// A bias and then an activation after a convolution (depthwise or not) or a product: the
/// bias goes in registers and the activation runs at full width on each finished block
/// (`vmath`, no JIT epilogue); the fused module matches the reference, on one and two
/// threads, on a poisoned arena.
#[test]
fn random_activation_epilogues_run_at_full_width_and_match_the_reference() {
    let mut r = Lcg(91);
    for case in 0..24 {
        let act = ["silu", "gelu", "sigmoid", "tanh", "hardswish", "mish"][case % 6];
        let (text, inputs) = if case % 2 == 0 {
            let c = 1 + r.next(6);
            let depthwise = r.next(2) == 0;
            let (cout, group) = if depthwise { (c, c) } else { (1 + r.next(20), 1) };
            let (k, s, pad) = (1 + r.next(3), 1 + r.next(2), r.next(2));
            let (h, w) = (k + r.next(12), k + r.next(40));
            let (ho, wo) = ((h + 2 * pad - k) / s + 1, (w + 2 * pad - k) / s + 1);
            let (xs, ws, bs, os) = ([1, c, h, w], [cout, c / group, k, k], [cout], [1, cout, ho, wo]);
            let text = format!(
                "func.func @main(%x: {}, %w: {}, %b: {}) -> {} {{\n  \
                 %c = \"smelt.conv2d\"(%x, %w, %b) {{group = {group} : i64, pads = array<i64: {pad}, {pad}, {pad}, {pad}>, strides = array<i64: {s}, {s}>}} : ({}, {}, {}) -> {}\n  \
                 %1 = \"smelt.{act}\"(%c) : ({}) -> {}\n  return %1 : {}\n}}",
                ty(&xs), ty(&ws), ty(&bs), ty(&os), ty(&xs), ty(&ws), ty(&bs), ty(&os), ty(&os), ty(&os), ty(&os),
            );
            (text, vec![r.tensor(&xs), r.tensor(&ws), r.tensor(&bs)])
        } else {
            let (m, k, n) = (1 + r.next(40), 1 + r.next(40), 1 + r.next(70));
            let (a, b, bias, out) = ([m, k], [k, n], [n], [m, n]);
            let text = format!(
                "func.func @main(%a: {}, %b: {}, %c: {}) -> {} {{\n  \
                 %p = \"smelt.matmul\"(%a, %b) : ({}, {}) -> {}\n  \
                 %1 = \"smelt.add\"(%p, %c) : ({}, {}) -> {}\n  \
                 %2 = \"smelt.{act}\"(%1) : ({}) -> {}\n  return %2 : {}\n}}",
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
            );
            (text, vec![r.tensor(&a), r.tensor(&b), r.tensor(&bias)])
        };
        check(&text, &inputs);
        let mut fused = parse_module(&text, "act.mlir").unwrap();
        smelt_passes::run_pipeline(&mut fused, "builtin.module(fuse)").unwrap();
        let info = Executable::compile(fused).unwrap().info;
        assert!(info.native_steps.keys().any(|k| k.starts_with("vmath")), "{act}: {:?}\n{text}", info.native_steps);
        assert_eq!(info.jit_functions, 0, "{act}: the epilogue compiled a JIT program\n{text}");
    }
}

/// `values` as an MLIR dense literal of `shape` (nested brackets).
fn nested<T: std::fmt::Debug>(shape: &[u64], values: &[T]) -> String {
    match shape {
        [] => format!("{:?}", values[0]),
        [_] => format!("[{}]", values.iter().map(|v| format!("{v:?}")).collect::<Vec<_>>().join(", ")),
        [n, rest @ ..] => {
            let step = values.len() / *n as usize;
            let parts: Vec<String> = values.chunks(step).map(|c| nested(rest, c)).collect();
            format!("[{}]", parts.join(", "))
        }
    }
}

/// Every depthwise variant this CPU has (vectors of output columns, 8 or 16 wide; vectors of
/// channels), forced one by one, matches the reference: narrow and wide planes, kernels of 3,
/// 5 and 7, strides, dilations, channel counts that leave a partial block, with a bias, an
/// activation and a residual in the epilogue.
#[test]
fn every_depthwise_variant_matches_the_reference() {
    let mut r = Lcg(23);
    let blocked = if std::arch::is_x86_feature_detected!("avx512f") {
        Some("channels-16")
    } else if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        Some("channels-8")
    } else {
        None
    };
    for case in 0..10 {
        let c = [3, 8, 16, 21, 40][case % 5];
        let k = [3, 5, 7][r.next(3) as usize];
        let (s, dilation) = ([1, 1, 2][r.next(3) as usize], if case == 7 { 2 } else { 1 });
        let pad = dilation * (k / 2);
        let (h, w) = (dilation * (k - 1) + 1 + r.next(14), dilation * (k - 1) + 1 + r.next(30));
        let (ho, wo) = ((h + 2 * pad - dilation * (k - 1) - 1) / s + 1, (w + 2 * pad - dilation * (k - 1) - 1) / s + 1);
        let (xs, ws, bs, os) = ([1, c, h, w], [c, 1, k, k], [c], [1, c, ho, wo]);
        let weights: Vec<f32> = r.tensor(&ws).to_f64().iter().map(|&v| v as f32).collect();
        let text = format!(
            "func.func @main(%x: {}, %b: {}, %r: {}) -> {} {{\n  \
             %w = \"smelt.constant\"() {{value = dense<{}> : {}}} : () -> {}\n  \
             %c = \"smelt.conv2d\"(%x, %w, %b) {{group = {c} : i64, pads = array<i64: {pad}, {pad}, {pad}, {pad}>, strides = array<i64: {s}, {s}>, dilations = array<i64: {dilation}, {dilation}>}} : ({}, {}, {}) -> {}\n  \
             %1 = \"smelt.silu\"(%c) : ({}) -> {}\n  \
             %2 = \"smelt.add\"(%1, %r) : ({}, {}) -> {}\n  return %2 : {}\n}}",
            ty(&xs), ty(&bs), ty(&os), ty(&os), nested(&ws, &weights), ty(&ws), ty(&ws),
            ty(&xs), ty(&ws), ty(&bs), ty(&os), ty(&os), ty(&os), ty(&os), ty(&os), ty(&os), ty(&os),
        );
        let inputs = [r.tensor(&xs), r.tensor(&bs), r.tensor(&os)];
        for variant in ["columns-8", "columns-16"].into_iter().chain(blocked) {
            smelt_runtime::variants::force("depthwise", Some(variant));
            check(&text, &inputs);
            let mut fused = parse_module(&text, "variant.mlir").unwrap();
            smelt_passes::run_pipeline(&mut fused, "builtin.module(fuse)").unwrap();
            let info = Executable::compile(fused).unwrap().info;
            let ran = info.variants.keys().find(|k| k.starts_with("depthwise: ")).cloned();
            if variant != "columns-16" || std::arch::is_x86_feature_detected!("avx512f") {
                assert_eq!(ran, Some(format!("depthwise: {variant}")), "{:?}\n{text}", info.variants);
            }
        }
    }
    smelt_runtime::variants::force("depthwise", None);
}

/// A 3x3 stride-1 convolution runs as Winograd or as an im2col product, whichever measures
/// faster here; forced either way, both match the reference, and the choice is reported.
#[test]
fn both_convolution_variants_match_the_reference() {
    let mut r = Lcg(5);
    let (xs, ws, bs, os) = ([1, 6, 13, 11], [9, 6, 3, 3], [9], [1, 9, 13, 11]);
    let text = format!(
        "func.func @main(%x: {}) -> {} {{\n  \
         %w = \"smelt.constant\"() {{value = dense<0.25> : {}}} : () -> {}\n  \
         %b = \"smelt.constant\"() {{value = dense<-0.5> : {}}} : () -> {}\n  \
         %c = \"smelt.conv2d\"(%x, %w, %b) {{pads = array<i64: 1, 1, 1, 1>}} : ({}, {}, {}) -> {}\n  \
         %1 = \"smelt.relu\"(%c) : ({}) -> {}\n  return %1 : {}\n}}",
        ty(&xs),
        ty(&os),
        ty(&ws),
        ty(&ws),
        ty(&bs),
        ty(&bs),
        ty(&xs),
        ty(&ws),
        ty(&bs),
        ty(&os),
        ty(&os),
        ty(&os),
        ty(&os),
    );
    let inputs = [r.tensor(&xs)];
    for variant in ["winograd", "im2col"] {
        smelt_runtime::variants::force("conv3x3", Some(variant));
        check(&text, &inputs);
        let mut fused = parse_module(&text, "variant.mlir").unwrap();
        smelt_passes::run_pipeline(&mut fused, "builtin.module(fuse)").unwrap();
        let info = Executable::compile(fused).unwrap().info;
        assert_eq!(info.variants.get(&format!("conv3x3: {variant}")), Some(&1), "{:?}", info.variants);
        assert_eq!(info.winograd_steps, usize::from(variant == "winograd"));
    }
    smelt_runtime::variants::force("conv3x3", None);
}

/// An image product with few rows reads the image in place or packs it, whichever measures
/// faster; forced either way, both match the reference, and the choice is reported.
#[test]
fn both_image_product_variants_match_the_reference() {
    let mut r = Lcg(8);
    let (xs, ws, os) = ([1, 5, 23, 37], [20, 5, 3, 3], [1, 20, 12, 19]);
    let text = format!(
        "func.func @main(%x: {}) -> {} {{\n  \
         %w = \"smelt.constant\"() {{value = dense<0.125> : {}}} : () -> {}\n  \
         %c = \"smelt.conv2d\"(%x, %w) {{pads = array<i64: 1, 1, 1, 1>, strides = array<i64: 2, 2>}} : ({}, {}) -> {}\n  \
         %1 = \"smelt.relu\"(%c) : ({}) -> {}\n  return %1 : {}\n}}",
        ty(&xs), ty(&os), ty(&ws), ty(&ws), ty(&xs), ty(&ws), ty(&os), ty(&os), ty(&os), ty(&os),
    );
    let inputs = [r.tensor(&xs)];
    for variant in ["in-place", "packed"] {
        smelt_runtime::variants::force("gemm-b", Some(variant));
        check(&text, &inputs);
        let mut fused = parse_module(&text, "variant.mlir").unwrap();
        smelt_passes::run_pipeline(&mut fused, "builtin.module(fuse)").unwrap();
        let info = Executable::compile(fused).unwrap().info;
        assert_eq!(info.variants.get(&format!("gemm-b: {variant}")), Some(&1), "{:?}", info.variants);
    }
    smelt_runtime::variants::force("gemm-b", None);
}

/// Random QDQ convolutions and products (8-bit input grids of either sign, int8 weights per
/// channel, a bias, the next quantize-dequantize and a residual add after them) through the
/// whole pipeline: `integer-products` makes them integer kernels, which equal the reference
/// interpreter fused and unfused, on one worker and two. Where float rounding decides a tie
/// of the output grid the results may differ by one step of it, at a few elements.
#[test]
fn random_quantized_products_match_the_reference() {
    let mut r = Lcg(23);
    let floats = |r: &mut Lcg, n: u64| {
        (0..n).map(|_| format!("{:.4}", 0.002 + r.next(100) as f64 / 10_000.0)).collect::<Vec<_>>().join(", ")
    };
    for case in 0..16 {
        let signed = r.next(2) == 0;
        let (grid, zero) = if signed { ("i8", r.next(20) as i64 - 10) } else { ("ui8", r.next(40) as i64 + 100) };
        let conv = case % 2 == 0;
        let (xs, ws, os, w_axis, outs, product) = if conv {
            let (cin, cout, k) = (1 + r.next(9), 1 + r.next(40), 1 + 2 * r.next(2));
            let (h, s) = (k + 3 + r.next(14), 1 + r.next(2));
            let ho = (h + 2 * (k / 2) - k) / s + 1;
            let attrs = format!("{{pads = array<i64: {p}, {p}, {p}, {p}>, strides = array<i64: {s}, {s}>}}", p = k / 2);
            (vec![1, cin, h, h], vec![cout, cin, k, k], vec![1, cout, ho, ho], 0, cout, ("conv2d", attrs))
        } else {
            let (m, kk, n) = (1 + r.next(30), 1 + r.next(70), 1 + r.next(50));
            (vec![2, m, kk], vec![kk, n], vec![2, m, n], 1, n, ("matmul", String::new()))
        };
        let wt = |s: &[u64]| ty(s).replace("xf32>", "xi8>");
        let n_weights: u64 = ws.iter().product();
        let values: Vec<i64> = (0..n_weights).map(|_| r.next(255) as i64 - 127).collect();
        let bias = if conv {
            format!(
                "%b = \"smelt.constant\"() {{value = dense<[{}]> : tensor<{outs}xf32>}} : () -> tensor<{outs}xf32>\n  ",
                floats(&mut r, outs)
            )
        } else {
            String::new()
        };
        let b_ty = format!("tensor<{outs}xf32>");
        let text = format!(
            "func.func @main(%x: {xt}, %res: {ot}) -> {ot} {{\n  \
             %s = \"smelt.constant\"() {{value = dense<0.02> : tensor<f32>}} : () -> tensor<f32>\n  \
             %z = \"smelt.constant\"() {{value = dense<{zero}> : tensor<{grid}>}} : () -> tensor<{grid}>\n  \
             %w = \"smelt.constant\"() {{value = dense<{weights}> : {wt}}} : () -> {wt}\n  \
             %ws = \"smelt.constant\"() {{value = dense<[{scales}]> : {b_ty}}} : () -> {b_ty}\n  \
             %wz = \"smelt.constant\"() {{value = dense<0> : tensor<{outs}xi8>}} : () -> tensor<{outs}xi8>\n  \
             {bias}%ys = \"smelt.constant\"() {{value = dense<0.05> : tensor<f32>}} : () -> tensor<f32>\n  \
             %yz = \"smelt.constant\"() {{value = dense<128> : tensor<ui8>}} : () -> tensor<ui8>\n  \
             %q = \"smelt.quantize_linear\"(%x, %s, %z) : ({xt}, tensor<f32>, tensor<{grid}>) -> {xq}\n  \
             %dq = \"smelt.dequantize_linear\"(%q, %s, %z) : ({xq}, tensor<f32>, tensor<{grid}>) -> {xt}\n  \
             %dw = \"smelt.dequantize_linear\"(%w, %ws, %wz) {{axis = {w_axis} : i64}} : ({wt}, {b_ty}, tensor<{outs}xi8>) -> {wft}\n  \
             %p = \"smelt.{op}\"(%dq, %dw{bias_operand}) {attrs} : ({xt}, {wft}{bias_ty}) -> {ot}\n  \
             %yq = \"smelt.quantize_linear\"(%p, %ys, %yz) : ({ot}, tensor<f32>, tensor<ui8>) -> {oq}\n  \
             %y = \"smelt.dequantize_linear\"(%yq, %ys, %yz) : ({oq}, tensor<f32>, tensor<ui8>) -> {ot}\n  \
             %out = \"smelt.add\"(%y, %res) : ({ot}, {ot}) -> {ot}\n  return %out : {ot}\n}}",
            xt = ty(&xs),
            ot = ty(&os),
            xq = ty(&xs).replace("xf32>", &format!("x{grid}>")),
            oq = ty(&os).replace("xf32>", "xui8>"),
            weights = nested(&ws, &values),
            wt = wt(&ws),
            wft = ty(&ws),
            scales = floats(&mut r, outs),
            op = product.0,
            attrs = product.1,
            bias_operand = if conv { ", %b" } else { "" },
            bias_ty = if conv { format!(", {b_ty}") } else { String::new() },
        );
        let module = parse_module(&text, "quantized.mlir").unwrap_or_else(|d| panic!("{d:?}\n{text}"));
        let inputs = [r.tensor(&xs), r.tensor(&os)];
        let want = run(&module, &inputs).unwrap();
        for pipeline in [smelt_passes::DEFAULT_PIPELINE, smelt_passes::CLEANUP_PIPELINE] {
            let mut m = module.clone();
            smelt_passes::run_pipeline(&mut m, pipeline).unwrap();
            let mut exe = Executable::compile(m).unwrap();
            assert!(exe.info.native_steps.keys().any(|k| k.starts_with("int8")), "{:?}\n{text}", exe.info);
            for threads in [1, 2] {
                smelt_runtime::workers::set_threads(threads);
                exe.poison();
                let got = exe.run(&inputs).unwrap();
                let (Data::F(g), Data::F(w)) = (&got[0].data, &want[0].data) else { panic!("f32 outputs") };
                let off: Vec<(usize, f64, f64)> = g
                    .iter()
                    .zip(w)
                    .enumerate()
                    .filter(|(_, (a, b))| (*a - *b).abs() > 1e-5)
                    .map(|(i, (a, b))| (i, *a, *b))
                    .collect();
                let one_step = off.iter().all(|(_, a, b)| (a - b).abs() <= 0.05 * 1.001);
                assert!(
                    one_step && off.len() * 100 <= g.len().max(100),
                    "case {case} threads {threads}: {off:?}\n{text}"
                );
            }
            smelt_runtime::workers::set_threads(1);
        }
    }
}

/// `quantize_dynamic`'s model (DynamicQuantizeLinear: scale and zero point computed from the
/// data) compiles to native steps only, fused and unfused.
#[test]
fn dynamic_quantization_runs_without_reference_steps() {
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/models/dynamic_quantized/model.onnx"));
    for pipeline in [smelt_passes::DEFAULT_PIPELINE, smelt_passes::CLEANUP_PIPELINE] {
        let mut m = import_file(path, &ImportOptions::default()).unwrap();
        smelt_passes::run_pipeline(&mut m, pipeline).unwrap();
        let exe = Executable::compile(m).unwrap();
        assert!(exe.info.reference_steps.is_empty(), "{pipeline}: {:?}", exe.info.reference_steps);
        assert!(exe.info.native_steps.contains_key("smelt.quantize_linear"), "{:?}", exe.info);
    }
}
