//! Kernel formation: grows `Kernel` alternatives in the e-graph, one op at a time.
//!
//! Legality follows TVM's op patterns and IREE's dispatch regions: a kernel has one *anchor*
//! (conv, matmul, gemm, attention, pool, reduction) or is a pure elementwise chain;
//! - elementwise ops join as an epilogue when they do not broadcast the kernel's result to a
//!   larger shape; a pure elementwise chain may also join a consumer that broadcasts it, and is
//!   then recomputed per element of the larger shape (whether that pays is the cost model's call);
//! - a global pool joins as a reduction epilogue;
//! - a row reduction (softmax, layer_norm) takes an elementwise prologue, or follows a
//!   contraction whose rows it reduces (QK^T + softmax, linear + residual + LayerNorm);
//! - a pointwise convolution follows a depthwise one (MobileNet's separable block);
//! - after a global pool, pointwise convolutions and an elementwise op that scales the pooled
//!   input form squeeze-excite (EfficientNet).
//!
//! A value is absorbed into a kernel only when that kernel's op is its one consumer (as in TVM
//! and IREE), so no kernel recomputes what the program also needs elsewhere. Every alternative
//! is added beside the unfused ops, so the extractor, not this module, decides what to fuse.

use super::lang::{EGraph, Node, Operand, Template, TemplateOp};
use super::rules::{attrs, is_constant, tensor};
use egg::Id;
use rustc_hash::FxHashSet as HashSet;
use smelt_compiler::attributes::Attribute;
use smelt_compiler::dialect::OpClass;
use smelt_compiler::ir::{Module, OpId};
use smelt_compiler::names;

/// The largest kernel body grown.
pub const MAX_KERNEL_OPS: usize = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Computes from windows or contractions; takes an epilogue.
    Anchor,
    /// Reduces rows; takes an elementwise prologue and an epilogue.
    RowReduction,
    /// Maps elements (with broadcasting).
    Elementwise,
    /// Never inside a kernel (data movement, views, multi-result ops).
    Opaque,
}

/// The fusion role of an op, from its class in the op table.
pub fn role(name: &str) -> Role {
    match smelt_compiler::dialect::lookup(name).map(|d| d.class) {
        Some(OpClass::Contraction | OpClass::Window) => Role::Anchor,
        Some(OpClass::RowReduction) => Role::RowReduction,
        Some(OpClass::Elementwise) => Role::Elementwise,
        _ => Role::Opaque,
    }
}

/// A kernel candidate found in a class: its body and inputs.
#[derive(Clone)]
struct Candidate {
    template: Template,
    inputs: Vec<Id>,
}

fn single_op(eg: &EGraph, node: &Node) -> Option<Candidate> {
    let Node::Op(key, children) = node else { return None };
    if key.results != 1 || role(key.name) == Role::Opaque {
        return None;
    }
    let Some(Node::Attrs(attrs)) = eg[*children.last()?].nodes.first() else { return None };
    let operands = node.operands();
    let mut inputs: Vec<Id> = Vec::new();
    let mut mapped = Vec::new();
    for &c in operands {
        let c = eg.find(c);
        let i = inputs.iter().position(|&x| x == c).unwrap_or_else(|| {
            inputs.push(c);
            inputs.len() - 1
        });
        mapped.push(Operand::Arg(i as u32));
    }
    Some(Candidate {
        template: Template { ops: vec![TemplateOp { name: key.name, attrs: *attrs, operands: mapped }] },
        inputs,
    })
}

/// The kernels `class` may grow from: its ops alone and its kernel nodes; only the kernels in
/// `fresh` (canonical template and inputs) where given, the ones the last round added.
fn candidates(eg: &EGraph, class: Id, fresh: Option<&HashSet<(u32, Vec<Id>)>>) -> Vec<Candidate> {
    let mut out = Vec::new();
    if is_constant(eg, class) {
        return out;
    }
    for node in &eg[class].nodes {
        match node {
            Node::Kernel(t, inputs) => {
                let inputs: Vec<Id> = inputs.iter().map(|&i| eg.find(i)).collect();
                if fresh.is_some_and(|f| !f.contains(&(*t, inputs.clone()))) {
                    continue;
                }
                out.push(Candidate { template: eg.analysis.templates[*t as usize].clone(), inputs })
            }
            Node::Op(..) if fresh.is_none() => out.extend(single_op(eg, node)),
            _ => {}
        }
    }
    out
}

fn is_depthwise(eg: &EGraph, template: &Template, inputs: &[Id]) -> bool {
    let first = &template.ops[0];
    if first.name != names::CONV2D {
        return false;
    }
    let group = eg.analysis.attrs[first.attrs as usize].get("group").and_then(Attribute::as_int).unwrap_or(1);
    let Operand::Arg(x) = first.operands[0] else { return false };
    let channels = tensor(eg, inputs[x as usize]).and_then(|t| t.static_shape()).and_then(|s| s.get(1).copied());
    group > 1 && channels == Some(group as u64)
}

fn is_pointwise_conv(eg: &EGraph, node: &Node) -> bool {
    let Some(a) = node.attrs_class() else { return false };
    let group = attrs(eg, a).get("group").and_then(Attribute::as_int).unwrap_or(1);
    let w = node.operands().get(1).and_then(|&w| tensor(eg, w)).and_then(|t| t.static_shape());
    node.op_name() == Some(names::CONV2D)
        && group == 1
        && w.is_some_and(|s| s.len() == 4 && s[2] == 1 && s[3] == 1)
        && node.operands()[1..].iter().all(|&c| is_constant(eg, c))
        && attrs(eg, a).get("strides").and_then(Attribute::as_i64_array).is_none_or(|s| s.iter().all(|&x| x == 1))
}

/// Whether `node`, reading the result of `candidate` as operand `slot`, may join its kernel.
fn may_join(eg: &EGraph, node: &Node, slot: usize, class: Id, producer: Id, candidate: &Candidate) -> bool {
    if candidate.template.ops.len() >= MAX_KERNEL_OPS {
        return false;
    }
    let name = node.op_name().unwrap_or("");
    let same_shape = || {
        let out = tensor(eg, class).and_then(|t| t.static_shape());
        out.is_some() && out == tensor(eg, producer).and_then(|t| t.static_shape())
    };
    let template = &candidate.template;
    let all_elementwise = |ops: &[TemplateOp]| ops.iter().all(|o| role(o.name) == Role::Elementwise);
    let pooled = template.ops.iter().any(|o| o.name.starts_with("smelt.global_"));
    match role(name) {
        Role::Elementwise if same_shape() => true,
        Role::Elementwise => {
            let out = tensor(eg, class).and_then(|t| t.static_shape());
            // Squeeze-excite: the pooled, transformed scale multiplies the input the pool read.
            let squeeze_excite = pooled
                && node.operands().iter().any(|&o| {
                    let o = eg.find(o);
                    candidate.inputs.contains(&o) && tensor(eg, o).and_then(|t| t.static_shape()) == out
                });
            // Recompute under broadcast: an elementwise chain joins a consumer that broadcasts
            // its result, and is then evaluated once per element of the larger shape. That
            // saves a launch and the chain's result's round trip but repeats its arithmetic:
            // cheap for a scale, costly for a transcendental, which the cost model weighs.
            let no_batch_norm = |ops: &[TemplateOp]| ops.iter().all(|o| o.name != names::BATCH_NORM);
            let recompute = all_elementwise(&template.ops)
                && no_batch_norm(&template.ops)
                && name != names::BATCH_NORM
                && match (tensor(eg, producer).and_then(|t| t.static_shape()), out) {
                    (Some(from), Some(to)) => smelt_compiler::dialect::infer::broadcasts_to(&from, &to),
                    _ => false,
                };
            squeeze_excite || recompute
        }
        Role::RowReduction => {
            // Rows are whole after an elementwise prologue, or after a contraction whose rows
            // are the reduced (last) axis.
            let last_axis = {
                let rank = tensor(eg, class).and_then(|t| t.shape.as_ref().map(Vec::len)).unwrap_or(0) as i64;
                let axis =
                    node.attrs_class().map(|a| attrs(eg, a)).and_then(|a| a.get("axis").and_then(Attribute::as_int));
                axis.is_none_or(|a| a == -1 || a == rank - 1)
            };
            let after_contraction = matches!(template.ops[0].name, names::MATMUL | names::GEMM)
                && all_elementwise(&template.ops[1..])
                && last_axis;
            slot == 0 && same_shape() && (all_elementwise(&template.ops) || after_contraction)
        }
        // A global pool reduces the finished tiles: a reduction epilogue (ResNet's last block).
        Role::Anchor if matches!(name, names::GLOBAL_AVG_POOL | names::GLOBAL_MAX_POOL) => !pooled,
        Role::Anchor if slot == 0 && is_pointwise_conv(eg, node) => {
            let squeezed = tensor(eg, producer)
                .and_then(|t| t.static_shape())
                .is_some_and(|s| s.len() == 4 && s[2] == 1 && s[3] == 1);
            (is_depthwise(eg, template, &candidate.inputs) && all_elementwise(&template.ops[1..]))
                || (pooled && squeezed)
        }
        _ => false,
    }
}

/// Whether computing `class` by `node` leaves `producer` no reader outside the kernel: every
/// op that read `producer` in the input program is `class` itself, or feeds only `class` and
/// is not read by `node` (then it is dead once `class` is computed by `node`). A recognized
/// composite is the common case: `silu(x)` in the class of `mul(x, sigmoid(x))`, whose
/// `sigmoid(x)` nothing else reads, leaves the convolution producing `x` to the SiLU kernel.
pub(crate) fn consumed_only_by(eg: &EGraph, producer: Id, class: Id, node: &Node) -> bool {
    let reads: Vec<Id> = node.operands().iter().map(|&o| eg.find(o)).collect();
    let data = &eg[producer].data;
    let consumers: Vec<Id> = data.consumers.iter().map(|&c| eg.find(c)).collect();
    // A consumer reading the value twice (`mul(x, x)`) is one reader; uses the classes do not
    // account for (function results) make it unabsorbable.
    if (data.uses as usize) != consumers.len() {
        return false;
    }
    consumers.iter().all(|&c| c == class || (!reads.contains(&c) && feeds_only(eg, c, class, 3)))
}

/// Whether every reader of `c` in the input program is `class`, directly or through at most
/// `depth` more classes that feed only `class`.
pub(crate) fn feeds_only(eg: &EGraph, c: Id, class: Id, depth: usize) -> bool {
    let data = &eg[c].data;
    let consumers: Vec<Id> = data.consumers.iter().map(|&x| eg.find(x)).collect();
    !consumers.is_empty()
        && data.uses as usize == consumers.len()
        && consumers.iter().all(|&x| x == class || (depth > 0 && feeds_only(eg, x, class, depth - 1)))
}

/// Appends `node` (reading the candidate's result) to the candidate's body.
fn extend(eg: &EGraph, node: &Node, producer: Id, c: &Candidate) -> Option<(Template, Vec<Id>)> {
    let Node::Op(key, children) = node else { return None };
    let Some(Node::Attrs(attrs)) = eg[*children.last()?].nodes.first() else { return None };
    let mut template = c.template.clone();
    let mut inputs = c.inputs.clone();
    let root = (template.ops.len() - 1) as u32;
    let mut operands = Vec::new();
    for &operand in node.operands() {
        let operand = eg.find(operand);
        if operand == producer {
            operands.push(Operand::Op(root));
        } else {
            let i = inputs.iter().position(|&x| x == operand).unwrap_or_else(|| {
                inputs.push(operand);
                inputs.len() - 1
            });
            operands.push(Operand::Arg(i as u32));
        }
    }
    template.ops.push(TemplateOp { name: key.name, attrs: *attrs, operands });
    Some((template, inputs))
}

/// Adds one more op to every kernel candidate that can take it; returns the kernel nodes that
/// were new (template and inputs). Given the last round's (`fresh`), grows only those: every
/// older candidate was extended by an earlier round, and adding kernel nodes changes no other
/// candidate's prospects. Deterministic: classes and nodes are visited in id and node order.
pub fn grow(eg: &mut EGraph, roots: &[Id], fresh: Option<&[(u32, Vec<Id>)]>) -> Vec<(u32, Vec<Id>)> {
    let fresh: Option<HashSet<(u32, Vec<Id>)>> =
        fresh.map(|f| f.iter().map(|(t, inputs)| (*t, inputs.iter().map(|&i| eg.find(i)).collect())).collect());
    let mut classes: Vec<Id> = eg.classes().map(|c| c.id).collect();
    classes.sort();
    let mut additions: Vec<(Id, Template, Vec<Id>)> = Vec::new();
    for &class in &classes {
        if is_constant(eg, class) {
            continue;
        }
        for node in &eg[class].nodes {
            if !matches!(node, Node::Op(k, _) if k.results == 1) {
                continue;
            }
            for (slot, &producer) in node.operands().iter().enumerate() {
                let producer = eg.find(producer);
                if producer == class || roots.contains(&producer) || !consumed_only_by(eg, producer, class, node) {
                    continue;
                }
                for candidate in candidates(eg, producer, fresh.as_ref()) {
                    if may_join(eg, node, slot, class, producer, &candidate) {
                        if let Some((t, inputs)) = extend(eg, node, producer, &candidate) {
                            // A kernel must not read its own result.
                            if !inputs.contains(&class) {
                                additions.push((class, t, inputs));
                            }
                        }
                    }
                }
            }
        }
    }
    let mut added = Vec::new();
    for (class, template, inputs) in additions {
        let t = eg.analysis.intern_template(template);
        let node = Node::Kernel(t, inputs.clone());
        if eg.lookup(node.clone()).is_some() {
            continue;
        }
        let id = eg.add(node);
        eg.union(class, id);
        added.push((t, inputs));
    }
    eg.rebuild();
    added
}

/// A readable name for a kernel body, the key calibration data is stored under:
/// `conv_bn_relu`, `dwconv_relu6_conv`, `matmul_bias_gelu`, `attention`.
pub fn pattern_name(m: &Module, ops: &[OpId]) -> String {
    let constant = |v| crate::work::computed_at_compile_time(m, v);
    let parts: Vec<String> = ops
        .iter()
        .map(|&op| {
            let o = m.op(op);
            let operands = o.operands();
            match o.name() {
                names::CONV2D => {
                    let group = o.int_attr("group");
                    let channels = m
                        .value_type(operands[0])
                        .as_tensor()
                        .and_then(|t| t.static_shape())
                        .and_then(|s| s.get(1).copied());
                    if group > 1 && channels == Some(group as u64) { "dwconv" } else { "conv" }.to_string()
                }
                names::GEMM => "linear".into(),
                names::BATCH_NORM => "bn".into(),
                names::LAYER_NORM => "layernorm".into(),
                names::GLOBAL_AVG_POOL => "gap".into(),
                names::GLOBAL_MAX_POOL => "gmp".into(),
                names::ADD if operands.iter().any(|&v| constant(v)) => "bias".into(),
                names::MUL if operands.iter().any(|&v| constant(v)) => "scale".into(),
                names::CLIP => {
                    let bound = |i: usize| {
                        operands.get(i).and_then(|&v| m.defining_op(v)).and_then(|d| match m.op(d).attr("value") {
                            Some(Attribute::Dense(d)) => smelt_compiler::literal::Literal::decode(d, &m.resources)
                                .and_then(|l| l.to_f64().first().copied()),
                            _ => None,
                        })
                    };
                    if bound(1) == Some(0.0) && bound(2) == Some(6.0) { "relu6" } else { "clip" }.to_string()
                }
                other => other.trim_start_matches("smelt.").to_string(),
            }
        })
        .collect();
    parts.join("_")
}

/// The classes a kernel node computes inside its body, in body order (the last is the
/// kernel's own class): each body op looked up as the e-node it was grown from. Stops at the
/// first op that is not in the e-graph (a body read from an existing `smelt.kernel`).
pub fn absorbed(eg: &EGraph, template: &Template, inputs: &[Id]) -> Vec<Id> {
    let mut classes: Vec<Id> = Vec::new();
    for top in &template.ops {
        let Some(attrs) = eg.lookup(Node::Attrs(top.attrs)) else { break };
        let mut children: Vec<Id> = Vec::new();
        for o in &top.operands {
            match *o {
                Operand::Arg(i) => children.push(inputs[i as usize]),
                Operand::Op(i) => children.push(classes[i as usize]),
            }
        }
        children.push(attrs);
        match eg.lookup(Node::Op(super::lang::OpKey { name: top.name, results: 1 }, children)) {
            Some(c) => classes.push(c),
            None => break,
        }
    }
    classes
}
