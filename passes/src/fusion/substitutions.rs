//! Substitutions in TASO's sense: rewrites that change which ops run, not only how ops group
//! into kernels. They are the `algebra` of `fuse` (`fuse{algebra=false}` leaves them out).
//!
//! - `merge-parallel-matmuls`: matmuls that read one input with constant 2-D weights of the same
//!   inner extent (an attention layer's Q, K and V projections) become one product with the
//!   weights concatenated along the columns; each original is a slice of its last axis. When
//!   every product adds a constant 1-D bias, the biases are concatenated too and the slices are
//!   taken after the add, so the merged product keeps its bias epilogue.
//! - `merge-parallel-convs`: convolutions that read one input with the same attributes (strides,
//!   pads, dilations, one group), constant weights of the same window and biases alike (all or
//!   none) become one convolution with the output channels concatenated; each original is a
//!   slice of the channel axis (Inception's and SqueezeNet's parallel 1x1 branches).
//!
//! - `NAME-before-slice` (one rule per one-operand elementwise op): `relu(slice(y))` is
//!   `slice(relu(y))`, so the merged product keeps its products' epilogue (Inception's ReLUs)
//!   and the slices read the finished values.
//!
//! Which products read a class is a property of its siblings, which egg's patterns cannot
//! express, so each rule is a [`ParallelProducts`] searcher (one match per input class with at
//! least two such products) and the same type as applier. Concatenated weights are constant
//! expressions, folded once after fusion. A merged product is never merged again (its weights
//! are a concatenation; its slices are already slices), so saturation ends.
//!
//! Whether a merge is used is the extractor's call: the merged product saves launches and
//! reads its input once; a slice costs a copy unless it aliases the merged result (one
//! contiguous range) or attention reads it in place ([`smelt_compiler::views`]).

use super::lang::{Attrs, EGraph, Node, Tensors};
use super::rules::{add_attrs, add_op, attrs, ints, is_constant, lhs, tensor, var, Build};
use egg::{Applier, Id, Language, PatternAst, Rewrite, SearchMatches, Searcher, Subst, Symbol, Var};
use smelt_compiler::attributes::Attribute;
use smelt_compiler::names;
use smelt_compiler::types::TensorType;
use smelt_compiler::{ElementType, Location};

/// Which products a rule merges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    MatMul,
    Conv,
}

impl Family {
    pub fn rule_name(self) -> &'static str {
        match self {
            Family::MatMul => "merge-parallel-matmuls",
            Family::Conv => "merge-parallel-convs",
        }
    }
}

/// The substitution rules, in a fixed order.
pub fn all() -> Vec<Rewrite<Node, Tensors>> {
    let mut rules: Vec<Rewrite<Node, Tensors>> = [Family::MatMul, Family::Conv]
        .into_iter()
        .map(|f| {
            Rewrite::new(f.rule_name(), ParallelProducts(f), ParallelProducts(f))
                .unwrap_or_else(|e| panic!("rule {}: {e}", f.rule_name()))
        })
        .collect();
    rules.extend(elementwise_before_slices());
    rules
}

/// `f(slice(y, ...))` = `slice(f(y), ...)` for every elementwise op of one operand.
fn elementwise_before_slices() -> Vec<Rewrite<Node, Tensors>> {
    let unary = smelt_compiler::dialect::all_ops().filter(|d| {
        d.class == smelt_compiler::dialect::OpClass::Elementwise
            && d.results.len() == 1
            && d.operands.len() == 1
            && matches!(d.operands[0].arity, smelt_compiler::dialect::Arity::One)
    });
    unary
        .map(|d| {
            let short = d.name.trim_start_matches("smelt.");
            let name = format!("{short}-before-slice");
            let op: &'static str = d.name;
            let searcher = lhs(&format!("({short}@a (slice ?y ?s ?e ?axes))"));
            let applier = Build(move |eg: &mut EGraph, _: Id, s: &Subst| {
                let [y, starts, ends, axes, a] = ["?y", "?s", "?e", "?axes", "?a"].map(|v| s[var(v)]);
                let applied = add_op(eg, op, &[y], a);
                let none = add_attrs(eg, Attrs::new());
                Some(add_op(eg, names::SLICE, &[applied, starts, ends, axes], none))
            });
            Rewrite::new(name.clone(), searcher, applier).unwrap_or_else(|e| panic!("rule {name}: {e}"))
        })
        .collect()
}

/// One product reading the shared input.
#[derive(Clone, Debug)]
struct Member {
    /// The product's class.
    product: Id,
    weight: Id,
    /// A constant bias: the add's operand (matmul) or the third operand (conv).
    bias: Option<Id>,
    /// The class that equals the slice: the bias add's (matmul with bias) or the product's.
    result: Id,
    /// Extent of the merged axis this product contributes.
    width: u64,
}

/// Products that can be merged, grouped by what must agree: the attributes, and for
/// convolutions whether they have a bias. Matmuls merge with their biases when every one adds
/// a bias, else as bare products.
fn groups(eg: &EGraph, x: Id, family: Family) -> Vec<Vec<Member>> {
    let x = eg.find(x);
    if is_constant(eg, x) {
        return Vec::new();
    }
    let Some(xt) = tensor(eg, x).cloned() else { return Vec::new() };
    let Some(xs) = xt.static_shape() else { return Vec::new() };
    let mut parents: Vec<Id> = eg[x].parents().map(|p| eg.find(p)).collect();
    parents.sort();
    parents.dedup();
    let mut keyed: Vec<((Id, bool), Vec<Member>)> = Vec::new();
    for p in parents {
        if holds(eg, p, names::SLICE) {
            continue;
        }
        let found = eg[p].nodes.iter().find_map(|node| {
            let m = member(eg, x, &xs, xt.element, p, node, family)?;
            Some((eg.find(node.attrs_class()?), m))
        });
        let Some((attrs, m)) = found else { continue };
        let key = (attrs, family == Family::Conv && m.bias.is_some());
        match keyed.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(m),
            None => keyed.push((key, vec![m])),
        }
    }
    keyed
        .into_iter()
        .map(|(_, members)| independent(eg, members))
        .map(|mut members| {
            if family == Family::MatMul && members.iter().any(|m| m.bias.is_none()) {
                for m in &mut members {
                    (m.bias, m.result) = (None, m.product);
                }
            }
            members
        })
        .filter(|members| members.len() >= 2 && same_weight_frame(eg, members))
        .collect()
}

/// Leaves out a product another member reads: a convolution and, in the class of the
/// BatchNorm after it, the same convolution with the BatchNorm folded in read one input, but
/// merging a value with its own consumer computes it twice.
fn independent(eg: &EGraph, members: Vec<Member>) -> Vec<Member> {
    let reads = |m: &Member, c: Id| eg[m.result].nodes.iter().any(|n| n.children().iter().any(|&k| eg.find(k) == c));
    let read_by_another =
        |a: &Member| members.iter().any(|b| b.product != a.product && (reads(b, a.result) || reads(b, a.product)));
    members.iter().filter(|a| !read_by_another(a)).cloned().collect()
}

fn holds(eg: &EGraph, class: Id, name: &str) -> bool {
    eg[class].nodes.iter().any(|n| n.op_name() == Some(name))
}

fn member(eg: &EGraph, x: Id, xs: &[u64], element: ElementType, p: Id, node: &Node, family: Family) -> Option<Member> {
    let operands = node.operands();
    let weight = eg.find(*operands.get(1)?);
    if eg.find(operands[0]) != x || weight == x || !is_constant(eg, weight) || holds(eg, weight, names::CONCAT) {
        return None;
    }
    let wt = tensor(eg, weight)?;
    let ws = wt.static_shape()?;
    if wt.element != element {
        return None;
    }
    match (family, node.op_name()?) {
        (Family::MatMul, names::MATMUL) => {
            if ws.len() != 2 || xs.len() < 2 || xs[xs.len() - 1] != ws[0] {
                return None;
            }
            let (bias, result) = match bias_add(eg, p, ws[1], element) {
                // Its bias add is a slice already: merged with its bias before.
                Some((_, q)) if holds(eg, q, names::SLICE) => return None,
                Some((b, q)) => (Some(b), q),
                None => (None, p),
            };
            Some(Member { product: p, weight, bias, result, width: ws[1] })
        }
        (Family::Conv, names::CONV2D) => {
            let a = attrs(eg, node.attrs_class()?);
            if a.get("group").and_then(Attribute::as_int).unwrap_or(1) != 1 || ws.len() != 4 {
                return None;
            }
            let bias = match operands.get(2) {
                Some(&b) => {
                    let b = eg.find(b);
                    let ok = is_constant(eg, b) && tensor(eg, b)?.static_shape()? == [ws[0]];
                    Some(b).filter(|_| ok)?
                }
                None => return Some(Member { product: p, weight, bias: None, result: p, width: ws[0] }),
            };
            Some(Member { product: p, weight, bias: Some(bias), result: p, width: ws[0] })
        }
        _ => None,
    }
}

/// A class `add(p, b)` (either order) with `b` a constant of shape `[width]`: its bias and class.
fn bias_add(eg: &EGraph, p: Id, width: u64, element: ElementType) -> Option<(Id, Id)> {
    let mut parents: Vec<Id> = eg[p].parents().map(|q| eg.find(q)).collect();
    parents.sort();
    parents.dedup();
    parents.into_iter().find_map(|q| {
        eg[q].nodes.iter().find_map(|n| {
            if n.op_name() != Some(names::ADD) {
                return None;
            }
            let ops: Vec<Id> = n.operands().iter().map(|&c| eg.find(c)).collect();
            let b = match ops.as_slice() {
                [a, b] if *a == p && *b != p => *b,
                [b, a] if *a == p && *b != p => *b,
                _ => return None,
            };
            let bt = tensor(eg, b)?;
            (is_constant(eg, b) && bt.element == element && bt.static_shape()? == [width]).then_some((b, q))
        })
    })
}

/// Whether the weights differ only along the merged axis.
fn same_weight_frame(eg: &EGraph, members: &[Member]) -> bool {
    let frame = |m: &Member| {
        let mut s = tensor(eg, m.weight).and_then(TensorType::static_shape)?;
        match s.len() {
            2 => s[1] = 0,
            _ => s[0] = 0,
        }
        Some(s)
    };
    let first = frame(&members[0]);
    first.is_some() && members.iter().all(|m| frame(m) == first)
}

/// Finds input classes read by mergeable products.
#[derive(Clone, Copy, Debug)]
pub struct ParallelProducts(pub Family);

impl Searcher<Node, Tensors> for ParallelProducts {
    fn search_eclass_with_limit(&self, eg: &EGraph, eclass: Id, limit: usize) -> Option<SearchMatches<'_, Node>> {
        (limit > 0 && !groups(eg, eclass, self.0).is_empty()).then(|| SearchMatches {
            eclass,
            substs: vec![Subst::with_capacity(0)],
            ast: None,
        })
    }

    fn vars(&self) -> Vec<Var> {
        Vec::new()
    }
}

impl Applier<Node, Tensors> for ParallelProducts {
    fn apply_one(
        &self,
        eg: &mut EGraph,
        x: Id,
        _subst: &Subst,
        _ast: Option<&PatternAst<Node>>,
        _rule: Symbol,
    ) -> Vec<Id> {
        let mut changed = Vec::new();
        for mut members in groups(eg, x, self.0) {
            members.sort_by_key(|m| m.product);
            changed.extend(merge(eg, eg.find(x), &members, self.0));
        }
        changed
    }
}

/// Adds the merged product and unions every member's result with its slice.
fn merge(eg: &mut EGraph, x: Id, members: &[Member], family: Family) -> Vec<Id> {
    let (weight_axis, out_axis) = match family {
        Family::MatMul => (1, tensor(eg, members[0].product).and_then(|t| t.rank()).unwrap_or(1) as i64 - 1),
        Family::Conv => (0, 1),
    };
    let weights: Vec<Id> = members.iter().map(|m| m.weight).collect();
    let weight = concat(eg, &weights, weight_axis);
    let biases: Option<Vec<Id>> = members.iter().map(|m| m.bias).collect();
    let bias = biases.map(|b| concat(eg, &b, 0));
    let product_node = members[0].product;
    let product_attrs = eg[product_node]
        .nodes
        .iter()
        .find(|n| n.op_name() == Some(family_op(family)))
        .and_then(Node::attrs_class)
        .expect("a member's class holds its product");
    let merged = match (family, bias) {
        (Family::MatMul, None) => eg.add(Node::op(names::MATMUL, &[x, weight], product_attrs)),
        (Family::MatMul, Some(b)) => {
            let product = eg.add(Node::op(names::MATMUL, &[x, weight], product_attrs));
            let none = add_attrs(eg, Attrs::new());
            add_op(eg, names::ADD, &[product, b], none)
        }
        (Family::Conv, None) => eg.add(Node::op(names::CONV2D, &[x, weight], product_attrs)),
        (Family::Conv, Some(b)) => eg.add(Node::op(names::CONV2D, &[x, weight, b], product_attrs)),
    };
    let loc = Location::fused(members.iter().filter_map(|m| eg[m.result].data.loc.clone()));
    eg[merged].data.loc = Some(loc);
    eg.analysis.substituted.push((merged, family.rule_name()));
    let mut changed = Vec::new();
    let mut at = 0i64;
    for m in members {
        let width = m.width as i64;
        let (starts, ends, axes) = (ints(eg, &[at]), ints(eg, &[at + width]), ints(eg, &[out_axis]));
        let none = add_attrs(eg, Attrs::new());
        let slice = add_op(eg, names::SLICE, &[merged, starts, ends, axes], none);
        if eg.union(m.result, slice) {
            changed.push(m.result);
        }
        at += width;
    }
    changed
}

fn family_op(family: Family) -> &'static str {
    match family {
        Family::MatMul => names::MATMUL,
        Family::Conv => names::CONV2D,
    }
}

fn concat(eg: &mut EGraph, parts: &[Id], axis: i64) -> Id {
    let a = add_attrs(eg, Attrs::from([("axis".to_string(), Attribute::Int(axis, ElementType::I64))]));
    add_op(eg, names::CONCAT, parts, a)
}
