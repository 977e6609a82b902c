//! Every rewrite rule, as an example: a small program in the form exporters write, the form the
//! rule finds, and a check that both compute the same values on random inputs (the reference
//! interpreter is the oracle).
//!
//! Extraction here prefers the fewest ops (constant expressions cost nothing, kernels are not
//! grown), so the test sees the rule's result whenever the rule fired.

use smelt_compiler::literal::{Data, Literal};
use smelt_compiler::parser::parse_module;
use smelt_compiler::printer::{print_module, PrintOptions};
use smelt_compiler::verifier::verify;
use smelt_compiler::{ElementType, Module};
use smelt_passes::fusion::lang::{EGraph, Node};
use smelt_passes::fusion::{Limits, Program, Stats};
use smelt_passes::Pass;
use smelt_runtime::reference::{max_errors, run, run_function};

fn fewest_ops(eg: &EGraph, node: &Node) -> f64 {
    match node {
        Node::Kernel(..) => f64::INFINITY,
        Node::Op(..) if node.operands().iter().all(|&c| eg[c].data.constant) => 0.0,
        Node::Op(..) => 1.0,
        _ => 0.0,
    }
}

/// Saturates `text`'s function with the rules, extracts the smallest program and folds it.
fn rewrite(text: &str) -> (Module, Module, Stats) {
    rewrite_by(text, fewest_ops)
}

/// [`rewrite`] under another extraction cost.
fn rewrite_by(text: &str, cost: impl Fn(&EGraph, &Node) -> f64) -> (Module, Module, Stats) {
    let original = parse_module(text, "rule.mlir").unwrap_or_else(|d| panic!("{d:?}"));
    verify(&original).unwrap();
    let mut rewritten = original.clone();
    let func = rewritten.functions()[0];
    let mut program = Program::from_function(&rewritten, func).unwrap();
    let mut stats = Stats::default();
    program.saturate(&Limits { kernel_rounds: 0, ..Limits::default() }, &mut stats);
    let extraction = program.extract_by(cost);
    program.rebuild(&mut rewritten, &extraction, None).unwrap();
    smelt_passes::fold::fold_pass().run(&mut rewritten).unwrap();
    verify(&rewritten).unwrap_or_else(|d| panic!("{d:?}\n{}", print_module(&rewritten, PrintOptions::default())));
    (original, rewritten, stats)
}

/// Uniform values in [lo, hi) from a fixed-seed generator.
fn random(shape: &[u64], seed: u64, lo: f64, hi: f64) -> Literal {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let n: u64 = shape.iter().product();
    let values = (0..n)
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            lo + (hi - lo) * ((state >> 11) as f64 / (1u64 << 53) as f64)
        })
        .collect();
    Literal { shape: shape.to_vec(), element: ElementType::F32, data: Data::F(values) }
}

/// Runs both programs on the same random inputs and returns the largest relative error.
fn compare(original: &Module, rewritten: &Module, range: (f64, f64)) -> f64 {
    let func = original.functions()[0];
    let entry = original.body_of(func);
    let inputs: Vec<Literal> = original
        .block(entry)
        .args()
        .iter()
        .enumerate()
        .map(|(i, &a)| {
            let shape = original.value_type(a).as_tensor().unwrap().static_shape().unwrap();
            random(&shape, i as u64 + 1, range.0, range.1)
        })
        .collect();
    let (a, b) = (run(original, &inputs).unwrap(), run(rewritten, &inputs).unwrap());
    a.iter().zip(&b).map(|(x, y)| max_errors(y, x).1).fold(0.0, f64::max)
}

/// Asserts that rule `rule` fired, that the result holds `expect` and none of `gone`, and that
/// it computes what the original does.
fn check(rule: &str, text: &str, expect: &str, gone: &[&str]) {
    check_in(rule, text, expect, gone, (-2.0, 2.0));
}

fn check_in(rule: &str, text: &str, expect: &str, gone: &[&str], range: (f64, f64)) {
    let (original, rewritten, stats) = rewrite(text);
    let printed = print_module(&rewritten, PrintOptions::default());
    assert!(stats.rules_applied.contains_key(rule), "{rule} did not fire: {:?}\n{printed}", stats.rules_applied);
    assert!(printed.contains(expect), "no {expect} in\n{printed}");
    for g in gone {
        assert!(!printed.contains(g), "{g} left in\n{printed}");
    }
    let err = compare(&original, &rewritten, range);
    assert!(err < 1e-5, "{rule}: relative error {err}\n{printed}");
}

const CONV_BN: &str = r#"
func.func @f(%x: tensor<1x2x5x5xf32>) -> tensor<1x3x5x5xf32> {
  %w = "smelt.constant"() {value = dense<[[[[0.5]], [[-1.0]]], [[[2.0]], [[0.25]]], [[[1.5]], [[-0.75]]]]> : tensor<3x2x1x1xf32>} : () -> tensor<3x2x1x1xf32>
  %g = "smelt.constant"() {value = dense<[1.5, 0.5, -2.0]> : tensor<3xf32>} : () -> tensor<3xf32>
  %b = "smelt.constant"() {value = dense<[0.1, -0.2, 0.3]> : tensor<3xf32>} : () -> tensor<3xf32>
  %m = "smelt.constant"() {value = dense<[0.3, 0.0, -1.0]> : tensor<3xf32>} : () -> tensor<3xf32>
  %v = "smelt.constant"() {value = dense<[2.0, 0.5, 1.0]> : tensor<3xf32>} : () -> tensor<3xf32>
  %0 = "smelt.conv2d"(%x, %w BIAS) {dilations = array<i64: 1, 1>, group = 1 : i64, pads = array<i64: 0, 0, 0, 0>, strides = array<i64: 1, 1>} : (tensor<1x2x5x5xf32>, tensor<3x2x1x1xf32> BIAS_TYPE) -> tensor<1x3x5x5xf32>
  %1 = "smelt.batch_norm"(%0, %g, %b, %m, %v) {epsilon = 1.0e-05 : f32} : (tensor<1x3x5x5xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>) -> tensor<1x3x5x5xf32>
  return %1 : tensor<1x3x5x5xf32>
}"#;

#[test]
fn batch_norm_folds_into_conv() {
    let text = CONV_BN.replace(" BIAS_TYPE", "").replace(" BIAS", "");
    check("fold-batch-norm-into-conv", &text, "smelt.conv2d", &["smelt.batch_norm", "smelt.mul"]);
}

#[test]
fn batch_norm_folds_into_biased_conv() {
    let text = CONV_BN.replace(" BIAS_TYPE", ", tensor<3xf32>").replace(" BIAS", ", %m");
    check("fold-batch-norm-into-biased-conv", &text, "smelt.conv2d", &["smelt.batch_norm"]);
}

#[test]
fn batch_norm_with_runtime_statistics_stays() {
    let text = r#"
func.func @f(%x: tensor<1x2x4x4xf32>, %w: tensor<2x2x1x1xf32>, %s: tensor<2xf32>) -> tensor<1x2x4x4xf32> {
  %0 = "smelt.conv2d"(%x, %w) : (tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32>) -> tensor<1x2x4x4xf32>
  %1 = "smelt.batch_norm"(%0, %s, %s, %s, %s) : (tensor<1x2x4x4xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  return %1 : tensor<1x2x4x4xf32>
}"#;
    let (_, rewritten, stats) = rewrite(text);
    assert!(!stats.rules_applied.contains_key("fold-batch-norm-into-conv"));
    assert!(print_module(&rewritten, PrintOptions::default()).contains("smelt.batch_norm"));
}

#[test]
fn matmul_plus_bias_becomes_gemm() {
    let text = r#"
func.func @f(%a: tensor<3x4xf32>, %b: tensor<4x5xf32>, %c: tensor<5xf32>) -> tensor<3x5xf32> {
  %0 = "smelt.matmul"(%a, %b) : (tensor<3x4xf32>, tensor<4x5xf32>) -> tensor<3x5xf32>
  %1 = "smelt.add"(%0, %c) : (tensor<3x5xf32>, tensor<5xf32>) -> tensor<3x5xf32>
  return %1 : tensor<3x5xf32>
}"#;
    check("matmul-add-to-gemm", text, "smelt.gemm", &["smelt.matmul"]);
}

#[test]
fn transposes_compose_and_cancel() {
    let text = r#"
func.func @f(%x: tensor<2x3x4xf32>) -> (tensor<2x3x4xf32>, tensor<4x2x3xf32>) {
  %0 = "smelt.transpose"(%x) {perm = array<i64: 1, 2, 0>} : (tensor<2x3x4xf32>) -> tensor<3x4x2xf32>
  %1 = "smelt.transpose"(%0) {perm = array<i64: 2, 0, 1>} : (tensor<3x4x2xf32>) -> tensor<2x3x4xf32>
  %2 = "smelt.transpose"(%x) {perm = array<i64: 0, 2, 1>} : (tensor<2x3x4xf32>) -> tensor<2x4x3xf32>
  %3 = "smelt.transpose"(%2) {perm = array<i64: 1, 0, 2>} : (tensor<2x4x3xf32>) -> tensor<4x2x3xf32>
  return %1, %3 : tensor<2x3x4xf32>, tensor<4x2x3xf32>
}"#;
    let (original, rewritten, _) = rewrite(text);
    let printed = print_module(&rewritten, PrintOptions::default());
    assert_eq!(printed.matches("smelt.transpose").count(), 1, "{printed}");
    assert!(printed.contains("perm = array<i64: 2, 0, 1>"), "{printed}");
    assert!(printed.contains("return %arg0,"), "{printed}");
    assert!(compare(&original, &rewritten, (-1.0, 1.0)) < 1e-6);
}

#[test]
fn reshapes_collapse() {
    let text = r#"
func.func @f(%x: tensor<2x6xf32>) -> tensor<3x4xf32> {
  %s1 = "smelt.constant"() {value = dense<[12]> : tensor<1xi64>} : () -> tensor<1xi64>
  %s2 = "smelt.constant"() {value = dense<[3, 4]> : tensor<2xi64>} : () -> tensor<2xi64>
  %0 = "smelt.reshape"(%x, %s1) : (tensor<2x6xf32>, tensor<1xi64>) -> tensor<12xf32>
  %1 = "smelt.reshape"(%0, %s2) : (tensor<12xf32>, tensor<2xi64>) -> tensor<3x4xf32>
  %2 = "smelt.relu"(%1) : (tensor<3x4xf32>) -> tensor<3x4xf32>
  return %2 : tensor<3x4xf32>
}"#;
    let (original, rewritten, stats) = rewrite(text);
    let printed = print_module(&rewritten, PrintOptions::default());
    assert!(stats.rules_applied.contains_key("collapse-reshapes"));
    assert_eq!(printed.matches("smelt.reshape").count(), 1, "{printed}");
    assert!(compare(&original, &rewritten, (-1.0, 1.0)) < 1e-6);
}

fn unary_program(body: &str, constants: &[(&str, f64)]) -> String {
    let mut text = String::from("func.func @f(%x: tensor<2x7xf32>) -> tensor<2x7xf32> {\n");
    for (name, v) in constants {
        text +=
            &format!("  %{name} = \"smelt.constant\"() {{value = dense<{v:?}> : tensor<f32>}} : () -> tensor<f32>\n");
    }
    let ty = |v: &str| if constants.iter().any(|(n, _)| *n == v) { "tensor<f32>" } else { "tensor<2x7xf32>" };
    let mut last = String::new();
    for line in body.lines().map(str::trim).filter(|l| !l.is_empty()) {
        // `result = op operand...`
        let parts: Vec<&str> = line.split_whitespace().collect();
        let (r, op, args) = (parts[0], parts[2], &parts[3..]);
        let names: Vec<String> = args.iter().map(|a| format!("%{a}")).collect();
        let types: Vec<&str> = args.iter().map(|a| ty(a)).collect();
        text += &format!("  %{r} = \"smelt.{op}\"({}) : ({}) -> tensor<2x7xf32>\n", names.join(", "), types.join(", "));
        last = r.to_string();
    }
    text + &format!("  return %{last} : tensor<2x7xf32>\n}}\n")
}

#[test]
fn gelu_erf_forms_are_recognized() {
    let c = [("c", std::f64::consts::SQRT_2), ("one", 1.0), ("half", 0.5)];
    let torch = "t0 = div x c\n t1 = erf t0\n t2 = add t1 one\n t3 = mul x t2\n t4 = mul t3 half";
    check("recognize-gelu-erf-0", &unary_program(torch, &c), "smelt.gelu", &["smelt.erf"]);
    let half_first = "h = mul x half\n t0 = div x c\n t1 = erf t0\n t2 = add t1 one\n t4 = mul h t2";
    check("recognize-gelu-erf-2", &unary_program(half_first, &c), "smelt.gelu", &["smelt.erf"]);
    let c = [("c", std::f64::consts::FRAC_1_SQRT_2), ("one", 1.0), ("half", 0.5)];
    let mul_form = "t0 = mul x c\n t1 = erf t0\n t2 = add t1 one\n t3 = mul x t2\n t4 = mul t3 half";
    check("recognize-gelu-erf-mul-0", &unary_program(mul_form, &c), "smelt.gelu", &["smelt.erf"]);
}

#[test]
fn gelu_tanh_form_is_recognized() {
    let c =
        [("three", 3.0), ("k1", 0.044715), ("k2", (2.0 / std::f64::consts::PI).sqrt()), ("one", 1.0), ("half", 0.5)];
    let body = "p = pow x three\n q = mul p k1\n s = add x q\n u = mul s k2\n t = tanh u\n v = add t one\n h = mul x half\n r = mul h v";
    check("recognize-gelu-tanh-0", &unary_program(body, &c), "approximate = \"tanh\"", &["smelt.tanh"]);
}

#[test]
fn silu_and_hardswish_are_recognized() {
    check("recognize-silu", &unary_program("s = sigmoid x\n r = mul x s", &[]), "smelt.silu", &["smelt.sigmoid"]);
    let hs = unary_program("s = hardsigmoid x\n r = mul x s", &[])
        .replace("\"smelt.hardsigmoid\"(%x)", "\"smelt.hardsigmoid\"(%x) {alpha = 0.16666667 : f32, beta = 0.5 : f32}");
    check("recognize-hardswish", &hs, "smelt.hardswish", &["smelt.hardsigmoid"]);
    let relu6 = unary_program(
        "a = add x three\n c = clip a zero six\n m = mul x c\n r = div m six",
        &[("three", 3.0), ("zero", 0.0), ("six", 6.0)],
    );
    check_in("recognize-hardswish-relu6", &relu6, "smelt.hardswish", &["smelt.clip"], (-5.0, 5.0));
}

const LAYER_NORM: &str = r#"
func.func @f(%x: tensor<2x3x8xf32>, %g: tensor<8xf32>, %b: tensor<8xf32>) -> tensor<2x3x8xf32> {
  %ax = "smelt.constant"() {value = dense<[-1]> : tensor<1xi64>} : () -> tensor<1xi64>
  %two = "smelt.constant"() {value = dense<2.0> : tensor<f32>} : () -> tensor<f32>
  %eps = "smelt.constant"() {value = dense<1.0e-05> : tensor<f32>} : () -> tensor<f32>
  %m = "smelt.reduce_mean"(%x, %ax) : (tensor<2x3x8xf32>, tensor<1xi64>) -> tensor<2x3x1xf32>
  %d = "smelt.sub"(%x, %m) : (tensor<2x3x8xf32>, tensor<2x3x1xf32>) -> tensor<2x3x8xf32>
  %p = "smelt.pow"(%d, %two) : (tensor<2x3x8xf32>, tensor<f32>) -> tensor<2x3x8xf32>
  %v = "smelt.reduce_mean"(%p, %ax) : (tensor<2x3x8xf32>, tensor<1xi64>) -> tensor<2x3x1xf32>
  %ve = "smelt.add"(%v, %eps) : (tensor<2x3x1xf32>, tensor<f32>) -> tensor<2x3x1xf32>
  %s = "smelt.sqrt"(%ve) : (tensor<2x3x1xf32>) -> tensor<2x3x1xf32>
  %n = "smelt.div"(%d, %s) : (tensor<2x3x8xf32>, tensor<2x3x1xf32>) -> tensor<2x3x8xf32>
  AFFINE
}"#;

#[test]
fn layer_norm_is_recognized() {
    let affine = LAYER_NORM.replace(
        "AFFINE",
        "%y = \"smelt.mul\"(%n, %g) : (tensor<2x3x8xf32>, tensor<8xf32>) -> tensor<2x3x8xf32>\n  \
         %z = \"smelt.add\"(%y, %b) : (tensor<2x3x8xf32>, tensor<8xf32>) -> tensor<2x3x8xf32>\n  \
         return %z : tensor<2x3x8xf32>",
    );
    check("recognize-layer-norm", &affine, "smelt.layer_norm", &["smelt.reduce_mean", "smelt.pow"]);
    let plain = LAYER_NORM.replace("AFFINE", "return %n : tensor<2x3x8xf32>");
    check("recognize-layer-norm-plain", &plain, "smelt.layer_norm", &["smelt.reduce_mean"]);
}

#[test]
fn softmax_is_recognized() {
    let stable = r#"
func.func @f(%x: tensor<3x9xf32>) -> tensor<3x9xf32> {
  %ax = "smelt.constant"() {value = dense<[1]> : tensor<1xi64>} : () -> tensor<1xi64>
  %m = "smelt.reduce_max"(%x, %ax) : (tensor<3x9xf32>, tensor<1xi64>) -> tensor<3x1xf32>
  %d = "smelt.sub"(%x, %m) : (tensor<3x9xf32>, tensor<3x1xf32>) -> tensor<3x9xf32>
  %e = "smelt.exp"(%d) : (tensor<3x9xf32>) -> tensor<3x9xf32>
  %s = "smelt.reduce_sum"(%e, %ax) : (tensor<3x9xf32>, tensor<1xi64>) -> tensor<3x1xf32>
  %r = "smelt.div"(%e, %s) : (tensor<3x9xf32>, tensor<3x1xf32>) -> tensor<3x9xf32>
  return %r : tensor<3x9xf32>
}"#;
    check("recognize-stable-softmax", stable, "smelt.softmax", &["smelt.exp"]);
    let plain = stable
        .replace("  %m = \"smelt.reduce_max\"(%x, %ax) : (tensor<3x9xf32>, tensor<1xi64>) -> tensor<3x1xf32>\n", "")
        .replace("  %d = \"smelt.sub\"(%x, %m) : (tensor<3x9xf32>, tensor<3x1xf32>) -> tensor<3x9xf32>\n", "")
        .replace("\"smelt.exp\"(%d)", "\"smelt.exp\"(%x)");
    check("recognize-softmax", &plain, "smelt.softmax", &["smelt.exp"]);
}

/// BERT's attention: scaled by a multiplication, masked.
const ATTENTION: &str = r#"
func.func @f(%q: tensor<1x2x5x4xf32>, %kt: tensor<1x2x4x5xf32>, %v: tensor<1x2x5x4xf32>, %mask: tensor<1x1x5x5xf32>) -> tensor<1x2x5x4xf32> {
  %s = "smelt.constant"() {value = dense<0.5> : tensor<f32>} : () -> tensor<f32>
  %0 = "smelt.matmul"(%q, %kt) : (tensor<1x2x5x4xf32>, tensor<1x2x4x5xf32>) -> tensor<1x2x5x5xf32>
  %1 = "smelt.mul"(%0, %s) : (tensor<1x2x5x5xf32>, tensor<f32>) -> tensor<1x2x5x5xf32>
  %2 = "smelt.add"(%1, %mask) : (tensor<1x2x5x5xf32>, tensor<1x1x5x5xf32>) -> tensor<1x2x5x5xf32>
  %3 = "smelt.softmax"(%2) {axis = 3 : i64} : (tensor<1x2x5x5xf32>) -> tensor<1x2x5x5xf32>
  %4 = "smelt.matmul"(%3, %v) : (tensor<1x2x5x5xf32>, tensor<1x2x5x4xf32>) -> tensor<1x2x5x4xf32>
  return %4 : tensor<1x2x5x4xf32>
}"#;

#[test]
fn attention_is_recognized_in_each_spelling() {
    check("recognize-attention-scaled-masked", ATTENTION, "smelt.attention", &["smelt.softmax"]);
    let unmasked = ATTENTION
        .replace(
            "  %2 = \"smelt.add\"(%1, %mask) : (tensor<1x2x5x5xf32>, tensor<1x1x5x5xf32>) -> tensor<1x2x5x5xf32>\n",
            "",
        )
        .replace("\"smelt.softmax\"(%2)", "\"smelt.softmax\"(%1)");
    check("recognize-attention-scaled", &unmasked, "smelt.attention", &["smelt.softmax"]);
    let divided = unmasked.replace("\"smelt.mul\"(%0, %s)", "\"smelt.div\"(%0, %s)");
    check("recognize-attention-divided", &divided, "smelt.attention", &["smelt.softmax"]);
    let plain = unmasked
        .replace("  %1 = \"smelt.mul\"(%0, %s) : (tensor<1x2x5x5xf32>, tensor<f32>) -> tensor<1x2x5x5xf32>\n", "")
        .replace("\"smelt.softmax\"(%1)", "\"smelt.softmax\"(%0)");
    check("recognize-attention", &plain, "smelt.attention", &["smelt.softmax"]);
    // ViT: q and k_t each scaled by the fourth root of the head size.
    let split = r#"
func.func @f(%q: tensor<2x5x4xf32>, %kt: tensor<2x4x5xf32>, %v: tensor<2x5x4xf32>) -> tensor<2x5x4xf32> {
  %s = "smelt.constant"() {value = dense<0.70710678> : tensor<1xf32>} : () -> tensor<1xf32>
  %0 = "smelt.mul"(%q, %s) : (tensor<2x5x4xf32>, tensor<1xf32>) -> tensor<2x5x4xf32>
  %1 = "smelt.mul"(%kt, %s) : (tensor<2x4x5xf32>, tensor<1xf32>) -> tensor<2x4x5xf32>
  %2 = "smelt.matmul"(%0, %1) : (tensor<2x5x4xf32>, tensor<2x4x5xf32>) -> tensor<2x5x5xf32>
  %3 = "smelt.softmax"(%2) {axis = -1 : i64} : (tensor<2x5x5xf32>) -> tensor<2x5x5xf32>
  %4 = "smelt.matmul"(%3, %v) : (tensor<2x5x5xf32>, tensor<2x5x4xf32>) -> tensor<2x5x4xf32>
  return %4 : tensor<2x5x4xf32>
}"#;
    check("recognize-attention-split-scale", split, "scale = 0.49999", &["smelt.softmax"]);
}

#[test]
fn softmax_over_another_axis_is_not_attention() {
    let text = ATTENTION.replace("{axis = 3 : i64}", "{axis = 2 : i64}");
    let (_, rewritten, _) = rewrite(&text);
    assert!(!print_module(&rewritten, PrintOptions::default()).contains("smelt.attention"));
}

/// The lit tests of `fuse` as numeric checks: every function in them, fused by the full pass
/// (kernels included), computes what it computed before.
#[test]
fn fused_lit_examples_compute_the_same_values() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("lit-tests/fusion");
    for file in ["algebra.mlir", "batch-norm.mlir", "kernels.mlir", "recognize.mlir", "cost-profile.mlir"] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        let original = parse_module(&text, file).unwrap();
        let mut fused = original.clone();
        smelt_passes::fuse::Fuse::default().run(&mut fused).unwrap();
        verify(&fused).unwrap();
        for (&f, &g) in original.functions().iter().zip(&fused.functions()) {
            let entry = original.body_of(f);
            let inputs: Vec<Literal> = original
                .block(entry)
                .args()
                .iter()
                .enumerate()
                .map(|(i, &a)| {
                    random(
                        &original.value_type(a).as_tensor().unwrap().static_shape().unwrap(),
                        i as u64 + 3,
                        -2.0,
                        2.0,
                    )
                })
                .collect();
            let name = original.op(f).attr("sym_name").and_then(|n| n.as_str()).unwrap_or("?").to_string();
            // BatchNorm statistics read from inputs must be positive variances.
            let positive = |mut l: Literal| {
                if let Data::F(v) = &mut l.data {
                    v.iter_mut().for_each(|x| *x = x.abs() + 0.1);
                }
                l
            };
            let inputs: Vec<Literal> =
                if name.contains("statistics") { inputs.into_iter().map(positive).collect() } else { inputs };
            let (a, b) = (run_function(&original, f, &inputs).unwrap(), run_function(&fused, g, &inputs).unwrap());
            for (x, y) in a.iter().zip(&b) {
                let (abs, rel) = max_errors(y, x);
                assert!(rel < 1e-5 || abs < 1e-6, "{file} @{name}: abs {abs} rel {rel}");
            }
        }
    }
}

/// Products cost 10, anything else that runs 1: a merge of n products (1 product, n slices)
/// is cheaper than n products whenever n >= 2.
fn products_dear(eg: &EGraph, node: &Node) -> f64 {
    match node.op_name() {
        Some("smelt.matmul" | "smelt.conv2d" | "smelt.gemm")
            if !node.operands().iter().all(|&c| eg[c].data.constant) =>
        {
            10.0
        }
        _ => fewest_ops(eg, node),
    }
}

fn dense(shape: &[u64], seed: u64) -> String {
    fn nested(values: &[f64], shape: &[u64]) -> String {
        match shape {
            [] => format!("{:.4}", values[0]),
            [_, rest @ ..] => {
                let step = rest.iter().product::<u64>() as usize;
                let parts: Vec<String> = values.chunks(step).map(|c| nested(c, rest)).collect();
                format!("[{}]", parts.join(", "))
            }
        }
    }
    let literal = random(shape, seed, -1.0, 1.0);
    let ty = ty(shape);
    format!("\"smelt.constant\"() {{value = dense<{}> : {ty}}} : () -> {ty}", nested(&literal.to_f64(), shape))
}

fn ty(shape: &[u64]) -> String {
    let dims: Vec<String> = shape.iter().map(u64::to_string).collect();
    format!("tensor<{}xf32>", dims.join("x"))
}

/// Parallel matmuls and convolutions on random shapes that meet the rules' conditions (bias or
/// not, 2-D and 3-D inputs, strided windows) merge into one product whose slices compute what
/// each original did.
#[test]
fn parallel_products_merge() {
    let mut seed = 1;
    for case in 0..8 {
        let n = 2 + case % 3;
        let biased = case % 2 == 0;
        let mut body = String::new();
        let mut results = Vec::new();
        let (input, rule, product) = if case < 4 {
            let (rows, k) = (2 + case as u64, 3 + case as u64);
            let x = if case % 2 == 0 { vec![rows, k] } else { vec![2, rows, k] };
            for i in 0..n {
                let width = 2 + ((case + i) % 4) as u64;
                let mut out = x.clone();
                *out.last_mut().unwrap() = width;
                seed += 1;
                body += &format!("  %w{i} = {}\n", dense(&[k, width], seed));
                body += &format!(
                    "  %p{i} = \"smelt.matmul\"(%x, %w{i}) : ({}, {}) -> {}\n",
                    ty(&x),
                    ty(&[k, width]),
                    ty(&out)
                );
                let mut result = format!("%p{i}");
                if biased {
                    seed += 1;
                    body += &format!("  %b{i} = {}\n", dense(&[width], seed));
                    body += &format!(
                        "  %r{i} = \"smelt.add\"(%p{i}, %b{i}) : ({}, {}) -> {}\n",
                        ty(&out),
                        ty(&[width]),
                        ty(&out)
                    );
                    result = format!("%r{i}");
                }
                results.push((result, ty(&out)));
            }
            (ty(&x), "merge-parallel-matmuls", "smelt.matmul")
        } else {
            let (c, hw, window, stride) = (2 + case as u64 % 3, 6, 1 + 2 * (case as u64 % 2), 1 + case as u64 / 6);
            let x = vec![1, c, hw, hw];
            let attrs = format!(
                "{{dilations = array<i64: 1, 1>, group = 1 : i64, pads = array<i64: 1, 1, 1, 1>, strides = array<i64: {stride}, {stride}>}}"
            );
            let side = (hw + 2 - window) / stride + 1;
            for i in 0..n {
                let outc = 1 + ((case + i) % 3) as u64;
                let out = vec![1, outc, side, side];
                seed += 1;
                body += &format!("  %w{i} = {}\n", dense(&[outc, c, window, window], seed));
                let (bias, bias_ty) = if biased {
                    seed += 1;
                    body += &format!("  %b{i} = {}\n", dense(&[outc], seed));
                    (format!(", %b{i}"), format!(", {}", ty(&[outc])))
                } else {
                    (String::new(), String::new())
                };
                body += &format!(
                    "  %p{i} = \"smelt.conv2d\"(%x, %w{i}{bias}) {attrs} : ({}, {}{bias_ty}) -> {}\n",
                    ty(&x),
                    ty(&[outc, c, window, window]),
                    ty(&out)
                );
                results.push((format!("%p{i}"), ty(&out)));
            }
            (ty(&x), "merge-parallel-convs", "smelt.conv2d")
        };
        let names: Vec<&str> = results.iter().map(|r| r.0.as_str()).collect();
        let types: Vec<&str> = results.iter().map(|r| r.1.as_str()).collect();
        let text = format!(
            "func.func @f(%x: {input}) -> ({}) {{\n{body}  return {} : {}\n}}",
            types.join(", "),
            names.join(", "),
            types.join(", ")
        );
        let (original, rewritten, stats) = rewrite_by(&text, products_dear);
        let printed = print_module(&rewritten, PrintOptions::default());
        assert_eq!(stats.rules_applied.get(rule), Some(&n), "{text}\n{printed}");
        // A 2-D matmul with its bias may come out as the gemm it also equals.
        let products = printed.matches(product).count() + printed.matches("smelt.gemm").count();
        assert_eq!(products, 1, "{printed}");
        assert_eq!(printed.matches("smelt.slice").count(), n, "{printed}");
        assert!(!printed.contains("smelt.concat"), "weights not folded:\n{printed}");
        let err = compare(&original, &rewritten, (-2.0, 2.0));
        assert!(err < 1e-5, "{rule}: relative error {err}\n{text}\n{printed}");
    }
}

/// Products whose weights are not constant, or differ in inner extent or attributes, stay apart.
#[test]
fn products_that_differ_do_not_merge() {
    let text = r#"
func.func @f(%x: tensor<1x2x6x6xf32>, %w: tensor<3x2x1x1xf32>) -> (tensor<1x3x6x6xf32>, tensor<1x3x6x6xf32>, tensor<1x3x3x3xf32>) {
  %v = "smelt.constant"() {value = dense<0.5> : tensor<3x2x1x1xf32>} : () -> tensor<3x2x1x1xf32>
  %0 = "smelt.conv2d"(%x, %w) : (tensor<1x2x6x6xf32>, tensor<3x2x1x1xf32>) -> tensor<1x3x6x6xf32>
  %1 = "smelt.conv2d"(%x, %v) : (tensor<1x2x6x6xf32>, tensor<3x2x1x1xf32>) -> tensor<1x3x6x6xf32>
  %2 = "smelt.conv2d"(%x, %v) {strides = array<i64: 2, 2>} : (tensor<1x2x6x6xf32>, tensor<3x2x1x1xf32>) -> tensor<1x3x3x3xf32>
  return %0, %1, %2 : tensor<1x3x6x6xf32>, tensor<1x3x6x6xf32>, tensor<1x3x3x3xf32>
}"#;
    let (_, _, stats) = rewrite_by(text, products_dear);
    assert!(!stats.rules_applied.contains_key("merge-parallel-convs"), "{:?}", stats.rules_applied);
}
