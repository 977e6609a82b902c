//! Rewrite rules: algebra (BatchNorm folding, matmul + bias to gemm, transpose and reshape
//! cancellation) and recognition of decomposed exporter output (GELU, SiLU, HardSwish,
//! LayerNorm, Softmax, scaled-dot-product attention).
//!
//! Patterns are written in a short spelling, `(mul ?x (sigmoid ?x))`, that [`lhs`] expands to
//! the e-graph's form, where every op carries its attribute class as a last child
//! (`(smelt.mul ?x (smelt.sigmoid ?x ?_a0) ?_a1)`). Rules that need matched values (an epsilon,
//! a scale) are [`Build`] appliers: Rust that adds the replacement and returns its class.
//!
//! Every rule keeps the value of the class it fires on. The equivalence is checked numerically
//! by `tests/fusion_rules.rs` (reference interpreter on random inputs) and each rule has a lit
//! test under `lit-tests/fusion/`.

use super::lang::{Attrs, EGraph, Node, OpKey, Tensors};
use egg::{Applier, Id, Pattern, PatternAst, Rewrite, Subst, Symbol, Var};
use smelt_compiler::attributes::{Attribute, DenseElements};
use smelt_compiler::literal::Literal;
use smelt_compiler::names;
use smelt_compiler::types::TensorType;
use smelt_compiler::{Dim, ElementType};

/// Expands the short pattern spelling: `(name args...)` becomes `(smelt.name args... ?_aN)`;
/// `(name@v args...)` binds the attribute class to `?v`.
pub fn lhs(short: &str) -> Pattern<Node> {
    expand(short, &mut |attrs, n| attrs.map_or(format!("?_a{n}"), |v| format!("?{v}")))
        .parse()
        .unwrap_or_else(|e| panic!("pattern `{short}`: {e}"))
}

/// The right-hand spelling: ops get the empty attribute dictionary unless written `name@N`
/// (interned dictionary N).
pub fn rhs(short: &str) -> Pattern<Node> {
    expand(short, &mut |attrs, _| format!("attrs{}", attrs.unwrap_or("0")))
        .parse()
        .unwrap_or_else(|e| panic!("pattern `{short}`: {e}"))
}

fn expand(short: &str, attrs_child: &mut dyn FnMut(Option<&str>, usize) -> String) -> String {
    let mut out = String::new();
    let mut stack: Vec<Option<&str>> = Vec::new();
    let mut count = 0;
    let spaced = short.replace('(', " ( ").replace(')', " ) ");
    let mut tokens = spaced.split_whitespace().peekable();
    while let Some(tok) = tokens.next() {
        match tok {
            "(" => {
                let head = tokens.next().expect("an op after '('");
                let (name, attrs) = match head.split_once('@') {
                    Some((n, a)) => (n, Some(a)),
                    None => (head, None),
                };
                out.push_str(&format!("(smelt.{name} "));
                stack.push(attrs);
            }
            ")" => {
                let attrs = stack.pop().expect("balanced parentheses");
                out.push_str(&attrs_child(attrs, count));
                count += 1;
                out.push_str(") ");
            }
            other => {
                out.push_str(other);
                out.push(' ');
            }
        }
    }
    out
}

/// An applier written in Rust: builds the replacement for a match, or declines with `None`.
pub struct Build<F>(pub F);

impl<F> Applier<Node, Tensors> for Build<F>
where
    F: Fn(&mut EGraph, Id, &Subst) -> Option<Id> + Send + Sync,
{
    fn apply_one(
        &self,
        egraph: &mut EGraph,
        eclass: Id,
        subst: &Subst,
        _ast: Option<&PatternAst<Node>>,
        _rule: Symbol,
    ) -> Vec<Id> {
        match (self.0)(egraph, eclass, subst) {
            Some(new) if egraph.union(eclass, new) => vec![eclass],
            _ => vec![],
        }
    }
}

pub(super) fn var(name: &str) -> Var {
    name.parse().expect("a pattern variable")
}

// ---- queries on classes ----

pub fn splat(eg: &EGraph, id: Id) -> Option<f64> {
    eg[id].data.splat
}

fn splat_near(eg: &EGraph, id: Id, want: f64) -> bool {
    splat(eg, id).is_some_and(|v| (v - want).abs() <= 1e-3 * want.abs().max(1e-6))
}

pub fn tensor(eg: &EGraph, id: Id) -> Option<&TensorType> {
    eg.analysis.ty(&eg[id].data).and_then(|t| t.as_tensor())
}

fn shape(eg: &EGraph, id: Id) -> Option<Vec<u64>> {
    tensor(eg, id).and_then(TensorType::static_shape)
}

pub fn is_constant(eg: &EGraph, id: Id) -> bool {
    eg[id].data.constant
}

/// The attribute dictionary of an attribute class.
pub fn attrs(eg: &EGraph, id: Id) -> Attrs {
    match eg[id].nodes.first() {
        Some(Node::Attrs(i)) => eg.analysis.attrs[*i as usize].clone(),
        _ => Attrs::new(),
    }
}

fn float_attr(eg: &EGraph, id: Id, name: &str, default: f64) -> f64 {
    attrs(eg, id).get(name).and_then(Attribute::as_float).unwrap_or(default)
}

/// The integer values of a constant class.
fn const_ints(eg: &EGraph, id: Id) -> Option<Vec<i64>> {
    let v = eg[id].data.value?;
    let m = &eg.analysis.scratch;
    let op = m.defining_op(v).filter(|&d| m.op(d).name() == names::CONSTANT)?;
    match m.op(op).attr("value") {
        Some(Attribute::Dense(d)) => Some(Literal::decode(d, &m.resources)?.to_i64()),
        _ => None,
    }
}

pub(super) fn add_attrs(eg: &mut EGraph, attrs: Attrs) -> Id {
    let i = eg.analysis.intern_attrs(attrs);
    eg.add(Node::Attrs(i))
}

pub(super) fn add_op(eg: &mut EGraph, name: &'static str, operands: &[Id], attrs: Id) -> Id {
    eg.add(Node::op(name, operands, attrs))
}

fn scalar(eg: &mut EGraph, element: ElementType, value: f64) -> Id {
    let leaf = eg.analysis.new_constant(DenseElements::from_f64(TensorType { shape: Some(vec![]), element }, &[value]));
    eg.add(Node::Leaf(leaf))
}

pub(super) fn ints(eg: &mut EGraph, values: &[i64]) -> Id {
    let ty = TensorType { shape: Some(vec![Dim::Known(values.len() as u64)]), element: ElementType::I64 };
    let leaf = eg.analysis.new_constant(DenseElements::from_i64(ty, values));
    eg.add(Node::Leaf(leaf))
}

fn filled(eg: &mut EGraph, shape: &[u64], element: ElementType, value: f64) -> Id {
    let ty = TensorType { shape: Some(shape.iter().map(|&d| Dim::Known(d)).collect()), element };
    let leaf = eg.analysis.new_constant(DenseElements::from_f64(ty, &[value]));
    eg.add(Node::Leaf(leaf))
}

fn rule(
    name: &str,
    searcher: &str,
    applier: impl Applier<Node, Tensors> + Send + Sync + 'static,
) -> Rewrite<Node, Tensors> {
    Rewrite::new(name, lhs(searcher), applier).unwrap_or_else(|e| panic!("rule {name}: {e}"))
}

/// Every rule, in a fixed order (the output must not depend on hash order).
pub fn all(t: &mut Tensors) -> Vec<Rewrite<Node, Tensors>> {
    let mut rules = Vec::new();
    rules.extend(batch_norm_folding());
    rules.extend(gemm_with_bias());
    rules.extend(transposes_and_reshapes());
    rules.extend(activations(t));
    rules.extend(normalizations());
    rules.extend(attention());
    rules
}

// ---- algebra ----

/// `batch_norm(conv2d(x, w, b?))` with constant weights and statistics becomes `conv2d(x, w * k,
/// (b - mean) * k + beta)` with `k = gamma / sqrt(var + eps)` per output channel. The new weights
/// are constant expressions the fold pass evaluates once; where folding is impossible the
/// batch_norm stays and becomes a per-channel affine epilogue of the conv's kernel.
fn batch_norm_folding() -> Vec<Rewrite<Node, Tensors>> {
    let fold = |with_bias: bool| {
        move |eg: &mut EGraph, root: Id, s: &Subst| -> Option<Id> {
            let [x, w, gamma, beta, mean, var_, bn, conv] =
                ["?x", "?w", "?gamma", "?beta", "?mean", "?var", "?bn", "?conv"].map(|v| s[var(v)]);
            let bias = with_bias.then(|| s[var("?b")]);
            let statics = [w, gamma, beta, mean, var_].into_iter().chain(bias);
            if !statics.clone().all(|c| is_constant(eg, c)) {
                return None;
            }
            let wt = tensor(eg, w)?.clone();
            let ws = wt.static_shape()?;
            let element = wt.element;
            let eps = float_attr(eg, bn, "epsilon", 1e-5);
            let eps = scalar(eg, element, eps);
            let none = add_attrs(eg, Attrs::new());
            let v_eps = add_op(eg, names::ADD, &[var_, eps], none);
            let std = add_op(eg, names::SQRT, &[v_eps], none);
            let k = add_op(eg, names::DIV, &[gamma, std], none);
            let mut target = vec![ws[0] as i64];
            target.extend(std::iter::repeat_n(1, ws.len() - 1));
            let target = ints(eg, &target);
            let k_col = add_op(eg, names::RESHAPE, &[k, target], none);
            let w2 = add_op(eg, names::MUL, &[w, k_col], none);
            let shifted = match bias {
                Some(b) => add_op(eg, names::SUB, &[b, mean], none),
                None => add_op(eg, names::NEG, &[mean], none),
            };
            let scaled = add_op(eg, names::MUL, &[shifted, k], none);
            let b2 = add_op(eg, names::ADD, &[scaled, beta], none);
            let folded = add_op(eg, names::CONV2D, &[x, w2, b2], conv);
            // The folded conv stands for both ops: keep both locations.
            let conv_class =
                eg[root].nodes.iter().find(|n| n.op_name() == Some(names::BATCH_NORM)).map(|n| n.operands()[0]);
            let locs = conv_class.and_then(|c| eg[c].data.loc.clone()).into_iter().chain(eg[root].data.loc.clone());
            let loc = smelt_compiler::Location::fused(locs);
            eg[folded].data.loc = Some(loc.clone());
            eg[root].data.loc = Some(loc);
            Some(folded)
        }
    };
    vec![
        rule(
            "fold-batch-norm-into-conv",
            "(batch_norm@bn (conv2d@conv ?x ?w) ?gamma ?beta ?mean ?var)",
            Build(fold(false)),
        ),
        rule(
            "fold-batch-norm-into-biased-conv",
            "(batch_norm@bn (conv2d@conv ?x ?w ?b) ?gamma ?beta ?mean ?var)",
            Build(fold(true)),
        ),
    ]
}

/// `matmul(a, b) + c` with 2-D `a`, `b` and `c` broadcasting to the product: `gemm(a, b, c)`.
fn gemm_with_bias() -> Vec<Rewrite<Node, Tensors>> {
    let build = |eg: &mut EGraph, root: Id, s: &Subst| -> Option<Id> {
        let (a, b, c) = (s[var("?a")], s[var("?b")], s[var("?c")]);
        let (sa, sb) = (shape(eg, a)?, shape(eg, b)?);
        let ok = sa.len() == 2 && sb.len() == 2 && shape(eg, c)?.len() <= 2;
        // The add must not broadcast the product to a larger shape.
        if !ok || shape(eg, root)? != [sa[0], sb[1]] {
            return None;
        }
        let none = add_attrs(eg, Attrs::new());
        Some(add_op(eg, names::GEMM, &[a, b, c], none))
    };
    vec![
        rule("matmul-add-to-gemm", "(add (matmul ?a ?b) ?c)", Build(build)),
        rule("add-matmul-to-gemm", "(add ?c (matmul ?a ?b))", Build(build)),
    ]
}

fn transposes_and_reshapes() -> Vec<Rewrite<Node, Tensors>> {
    let transposes = |eg: &mut EGraph, _: Id, s: &Subst| -> Option<Id> {
        let (x, inner, outer) = (s[var("?x")], s[var("?p1")], s[var("?p2")]);
        let perm = |id| attrs(eg, id).get("perm").and_then(Attribute::as_i64_array).map(<[i64]>::to_vec);
        let (p1, p2) = (perm(inner)?, perm(outer)?);
        if p1.len() != p2.len() {
            return None;
        }
        let composed: Vec<i64> = p2.iter().map(|&i| p1.get(i as usize).copied()).collect::<Option<_>>()?;
        if composed.iter().enumerate().all(|(i, &p)| p == i as i64) {
            return Some(x);
        }
        let a = add_attrs(eg, Attrs::from([("perm".to_string(), Attribute::I64Array(composed))]));
        Some(add_op(eg, names::TRANSPOSE, &[x], a))
    };
    let reshapes = |eg: &mut EGraph, _: Id, s: &Subst| -> Option<Id> {
        let (x, target, a) = (s[var("?x")], s[var("?s2")], s[var("?r2")]);
        // A 0 in the outer target copies the inner shape's extent, which changes meaning.
        if const_ints(eg, target)?.contains(&0) {
            return None;
        }
        Some(add_op(eg, names::RESHAPE, &[x, target], a))
    };
    vec![
        rule("compose-transposes", "(transpose@p2 (transpose@p1 ?x))", Build(transposes)),
        rule("collapse-reshapes", "(reshape@r2 (reshape@r1 ?x ?s1) ?s2)", Build(reshapes)),
    ]
}

// ---- recognition ----

fn activations(t: &mut Tensors) -> Vec<Rewrite<Node, Tensors>> {
    let tanh = t.intern_attrs(Attrs::from([("approximate".to_string(), Attribute::String("tanh".into()))]));
    let erf_gelu = |eg: &mut EGraph, _: Id, s: &Subst| {
        let (c, one, half) = (s[var("?c")], s[var("?one")], s[var("?half")]);
        splat_near(eg, one, 1.0) && splat_near(eg, half, 0.5) && splat_near(eg, c, std::f64::consts::SQRT_2)
    };
    let erf_gelu_mul = |eg: &mut EGraph, _: Id, s: &Subst| {
        let (c, one, half) = (s[var("?c")], s[var("?one")], s[var("?half")]);
        splat_near(eg, one, 1.0) && splat_near(eg, half, 0.5) && splat_near(eg, c, std::f64::consts::FRAC_1_SQRT_2)
    };
    let tanh_gelu = |eg: &mut EGraph, _: Id, s: &Subst| {
        let [one, half, three, k1, k2] = ["?one", "?half", "?three", "?k1", "?k2"].map(|v| s[var(v)]);
        splat_near(eg, one, 1.0)
            && splat_near(eg, half, 0.5)
            && splat_near(eg, three, 3.0)
            && splat_near(eg, k1, 0.044715)
            && splat_near(eg, k2, (2.0 / std::f64::consts::PI).sqrt())
    };
    let hard_sigmoid = |eg: &mut EGraph, _: Id, s: &Subst| {
        let a = s[var("?hs")];
        (float_attr(eg, a, "alpha", 0.2) - 1.0 / 6.0).abs() < 1e-6
            && (float_attr(eg, a, "beta", 0.5) - 0.5).abs() < 1e-6
    };
    let relu6_form = |eg: &mut EGraph, _: Id, s: &Subst| {
        let [three, zero, six, six2] = ["?three", "?zero", "?six", "?six2"].map(|v| s[var(v)]);
        splat_near(eg, three, 3.0)
            && splat(eg, zero) == Some(0.0)
            && splat_near(eg, six, 6.0)
            && splat_near(eg, six2, 6.0)
    };
    let erf_forms = [
        "(mul (mul ?x (add (erf (div ?x ?c)) ?one)) ?half)",
        "(mul ?half (mul ?x (add (erf (div ?x ?c)) ?one)))",
        "(mul (mul ?x ?half) (add (erf (div ?x ?c)) ?one))",
        "(mul (mul ?half ?x) (add (erf (div ?x ?c)) ?one))",
        "(mul ?x (mul (add (erf (div ?x ?c)) ?one) ?half))",
    ];
    let mut rules = Vec::new();
    for (i, form) in erf_forms.iter().enumerate() {
        rules.push(rule(&format!("recognize-gelu-erf-{i}"), form, cond(erf_gelu, rhs("(gelu ?x)"))));
        let mul_form = form.replace("(div ?x ?c)", "(mul ?x ?c)");
        rules.push(rule(&format!("recognize-gelu-erf-mul-{i}"), &mul_form, cond(erf_gelu_mul, rhs("(gelu ?x)"))));
    }
    let inner = "(tanh (mul (add ?x (mul (pow ?x ?three) ?k1)) ?k2))";
    for (i, form) in [
        format!("(mul (mul ?x ?half) (add {inner} ?one))"),
        format!("(mul (mul ?x (add {inner} ?one)) ?half)"),
        format!("(mul ?half (mul ?x (add {inner} ?one)))"),
    ]
    .iter()
    .enumerate()
    {
        rules.push(rule(&format!("recognize-gelu-tanh-{i}"), form, cond(tanh_gelu, rhs(&format!("(gelu@{tanh} ?x)")))));
    }
    rules.push(rule("recognize-silu", "(mul ?x (sigmoid ?x))", rhs("(silu ?x)")));
    rules.push(rule("recognize-silu-commuted", "(mul (sigmoid ?x) ?x)", rhs("(silu ?x)")));
    rules.push(rule("recognize-hardswish", "(mul ?x (hardsigmoid@hs ?x))", cond(hard_sigmoid, rhs("(hardswish ?x)"))));
    rules.push(rule(
        "recognize-hardswish-relu6",
        "(div (mul ?x (clip (add ?x ?three) ?zero ?six)) ?six2)",
        cond(relu6_form, rhs("(hardswish ?x)")),
    ));
    rules
}

fn cond(
    c: impl Fn(&mut EGraph, Id, &Subst) -> bool + Send + Sync + 'static,
    applier: Pattern<Node>,
) -> egg::ConditionalApplier<impl egg::Condition<Node, Tensors>, Pattern<Node>> {
    egg::ConditionalApplier { condition: c, applier }
}

/// Whether the reduction axes of `reduce` (an operand class) are exactly the last axis of `x`.
fn reduces_last_axis(eg: &EGraph, x: Id, axes: Id) -> bool {
    let (Some(rank), Some(axes)) = (shape(eg, x).map(|s| s.len() as i64), const_ints(eg, axes)) else {
        return false;
    };
    axes.len() == 1 && (axes[0] == -1 || axes[0] == rank - 1)
}

fn keeps_dims(eg: &EGraph, a: Id) -> bool {
    attrs(eg, a).get("keepdims").and_then(Attribute::as_bool).unwrap_or(true)
}

fn normalizations() -> Vec<Rewrite<Node, Tensors>> {
    // (x - mean(x)) / sqrt(mean((x - mean(x))^2) + eps), then * gamma + beta.
    let normalized = "(div (sub ?x (reduce_mean@m1 ?x ?ax1)) \
                      (sqrt (add (reduce_mean@m2 (pow (sub ?x (reduce_mean@m1 ?x ?ax1)) ?two) ?ax2) ?eps)))";
    let layer_norm = |affine: bool| {
        move |eg: &mut EGraph, _: Id, s: &Subst| -> Option<Id> {
            let [x, ax1, ax2, two, eps, m1, m2] =
                ["?x", "?ax1", "?ax2", "?two", "?eps", "?m1", "?m2"].map(|v| s[var(v)]);
            let ok = reduces_last_axis(eg, x, ax1)
                && reduces_last_axis(eg, x, ax2)
                && keeps_dims(eg, m1)
                && keeps_dims(eg, m2)
                && splat_near(eg, two, 2.0);
            let epsilon = splat(eg, eps)?;
            let xt = tensor(eg, x)?.clone();
            let width = *xt.static_shape()?.last()?;
            if !ok {
                return None;
            }
            let (gamma, beta) = if affine {
                let (g, b) = (s[var("?gamma")], s[var("?beta")]);
                let fits = |id| {
                    shape(eg, id).is_some_and(|sh| sh.iter().product::<u64>() == width && sh.last() == Some(&width))
                };
                if !fits(g) || !fits(b) {
                    return None;
                }
                (g, b)
            } else {
                (filled(eg, &[width], xt.element, 1.0), filled(eg, &[width], xt.element, 0.0))
            };
            let a = add_attrs(
                eg,
                Attrs::from([
                    ("axis".to_string(), Attribute::Int(-1, ElementType::I64)),
                    ("epsilon".to_string(), Attribute::Float(epsilon, ElementType::F32)),
                ]),
            );
            Some(add_op(eg, names::LAYER_NORM, &[x, gamma, beta], a))
        }
    };
    let softmax = |eg: &mut EGraph, _: Id, s: &Subst| -> Option<Id> {
        let (x, ax) = (s[var("?x")], s[var("?ax")]);
        if !reduces_last_axis(eg, x, ax) || !keeps_dims(eg, s[var("?r")]) {
            return None;
        }
        let a = add_attrs(eg, Attrs::from([("axis".to_string(), Attribute::Int(-1, ElementType::I64))]));
        Some(add_op(eg, names::SOFTMAX, &[x], a))
    };
    let stable_softmax = move |eg: &mut EGraph, root: Id, s: &Subst| -> Option<Id> {
        if !reduces_last_axis(eg, s[var("?x")], s[var("?axm")]) || !keeps_dims(eg, s[var("?rm")]) {
            return None;
        }
        softmax(eg, root, s)
    };
    vec![
        rule("recognize-layer-norm", &format!("(add (mul {normalized} ?gamma) ?beta)"), Build(layer_norm(true))),
        rule("recognize-layer-norm-plain", normalized, Build(layer_norm(false))),
        rule("recognize-softmax", "(div (exp ?x) (reduce_sum@r (exp ?x) ?ax))", Build(softmax)),
        rule(
            "recognize-stable-softmax",
            "(div (exp (sub ?x (reduce_max@rm ?x ?axm))) (reduce_sum@r (exp (sub ?x (reduce_max@rm ?x ?axm))) ?ax))",
            Build(stable_softmax),
        ),
    ]
}

/// `softmax(scale * (q @ k_t) + mask) @ v` in the spellings exporters produce: the scale as a
/// multiplication or division of the scores, or split over q and k_t (ViT); the mask optional.
fn attention() -> Vec<Rewrite<Node, Tensors>> {
    #[derive(Clone, Copy)]
    enum Scale {
        None,
        Mul,
        Div,
        Split,
    }
    let build = |scale_form: Scale, masked: bool| {
        move |eg: &mut EGraph, _: Id, s: &Subst| -> Option<Id> {
            let [q, k, v, sm] = ["?q", "?k", "?v", "?sm"].map(|n| s[var(n)]);
            let rank = shape(eg, q)?.len();
            let axis = attrs(eg, sm).get("axis").and_then(Attribute::as_int).unwrap_or(-1);
            if axis != -1 && axis != rank as i64 - 1 {
                return None;
            }
            let scale = match scale_form {
                Scale::None => 1.0,
                Scale::Mul => splat(eg, s[var("?s")])?,
                Scale::Div => 1.0 / splat(eg, s[var("?s")])?,
                Scale::Split => splat(eg, s[var("?s1")])? * splat(eg, s[var("?s2")])?,
            };
            let mut operands = vec![q, k, v];
            if masked {
                operands.push(s[var("?mask")]);
            }
            let a = add_attrs(eg, Attrs::from([("scale".to_string(), Attribute::Float(scale, ElementType::F32))]));
            Some(add_op(eg, names::ATTENTION, &operands, a))
        }
    };
    let forms = [
        ("", "(matmul ?q ?k)", Scale::None),
        ("-scaled", "(mul (matmul ?q ?k) ?s)", Scale::Mul),
        ("-divided", "(div (matmul ?q ?k) ?s)", Scale::Div),
        ("-split-scale", "(matmul (mul ?q ?s1) (mul ?k ?s2))", Scale::Split),
    ];
    let mut rules = Vec::new();
    for (suffix, scores, scale) in forms {
        rules.push(rule(
            &format!("recognize-attention{suffix}"),
            &format!("(matmul (softmax@sm {scores}) ?v)"),
            Build(build(scale, false)),
        ));
        rules.push(rule(
            &format!("recognize-attention{suffix}-masked"),
            &format!("(matmul (softmax@sm (add {scores} ?mask)) ?v)"),
            Build(build(scale, true)),
        ));
    }
    rules
}

/// The op key of a single-result op (for code that builds nodes by name).
pub fn key(name: &'static str) -> OpKey {
    OpKey { name, results: 1 }
}
